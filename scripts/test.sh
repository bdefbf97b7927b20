#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: once normally, once under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's start, in seconds since the run began: where CI's time goes.
step() { echo "== test.sh: $1 (at $SECONDS s)"; }
step "dependencies"
bash scripts/install-deps.sh
step "build"
bash scripts/build.sh build
step "tests"
(cd build && ctest --output-on-failure -j 2 --timeout 300)
# The sanitized tree: a unity build (it compiles in about half the time), and no fuzz_smoke
# (the normal tree's fuzz_smoke already runs every fuzzer under ASan+UBSan).
step "build-asan"
bash scripts/build.sh build-asan -DCLUSTERD_SANITIZE=ON -DCLUSTERD_BUILD_BENCH=OFF \
  -DCMAKE_UNITY_BUILD=ON -DCLUSTERD_FUZZ_SMOKE=OFF
step "tests under ASan+UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j 2 --timeout 300)
# Packages: .deb/.rpm from clean release trees, linted; then installed and exercised.
step "packages"
bash scripts/package.sh
step "package install test"
bash tests/packaging/install_test.sh
# The .deb under a real systemd (nspawn); exit 77 = this machine cannot boot a container.
step "systemd smoke"
rc=0; bash tests/packaging/systemd_smoke.sh || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]
step "done"
