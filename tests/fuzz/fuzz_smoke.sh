#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang++ in a sub-build and fuzzes each for a
# bounded time, starting from a copy of its seed corpus (the seeds are never modified).
#   fuzz_smoke.sh FUZZ_SOURCE_DIR BUILD_DIR [SECONDS_PER_TARGET]
# Exit: 0 = no crash; 1 = a crash, leak, timeout or build failure (the reproducer is in
# BUILD_DIR/artifacts/); 77 = skipped: no clang++ or no libFuzzer runtime (Debian bookworm:
# apt-get install clang libclang-rt-14-dev). CLUSTERD_FUZZ_CXX overrides the compiler.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$2
seconds=${3:-20}
mkdir -p "$build"
build=$(cd "$build" && pwd)

cxx=${CLUSTERD_FUZZ_CXX:-}
if [[ -z $cxx ]]; then
  for c in clang++ clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$(command -v "$c"); break; fi
  done
fi
if [[ -z $cxx ]]; then
  echo "fuzz_smoke: skipped: no clang++ (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
probe=$build/probe
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }\n' \
  >"$probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe.cpp" -o "$probe" 2>"$probe.log"; then
  echo "fuzz_smoke: skipped: $cxx cannot link libFuzzer (apt-get install libclang-rt-14-dev):"
  cat "$probe.log"
  exit 77
fi

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$src" -B "$build/tree" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERD_FUZZ=ON >"$build/configure.log"
cmake --build "$build/tree" >"$build/build.log" || { cat "$build/build.log"; exit 1; }

status=0
mkdir -p "$build/artifacts"
for target in epmd hosts_erlang gossip rancher_metadata kubernetes partisan ec2 consul postgres metrics_http exec_lines etcd client_frame; do
  work=$build/corpus/$target
  rm -rf "$work"
  mkdir -p "$work"
  log=$build/$target.log
  echo "fuzz_smoke: $target for ${seconds}s"
  if "$build/tree/${target}_fuzz" "$work" "$src/corpus/$target" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/${target}-" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz_smoke: $target: ${runs:-?} runs, ${rate:-?} exec/s, no crash"
  else
    echo "fuzz_smoke: $target FAILED; the last lines of $log:"
    tail -n 40 "$log"
    ls -l "$build/artifacts"
    status=1
  fi
done
exit $status
