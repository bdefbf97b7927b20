#!/usr/bin/env bash
# scripts/package.sh [OUT_DIR]: builds the .deb and .rpm packages from clean release trees
# (OUT_DIR/build-deb, OUT_DIR/build-rpm; OUT_DIR defaults to the repository), then checks
# them: lintian (0 errors, 0 warnings), rpmlint (0 errors), the man pages (no warnings), the
# systemd unit (systemd-analyze verify silent, security exposure <= 2.0). Fails on any.
# CLUSTERD_PKG_UNITY=OFF builds without unity (slower; for finding unity name clashes).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$(realpath -m "${1:-$src}")
mkdir -p "$out"
unity=${CLUSTERD_PKG_UNITY:-ON}
jobs=$(($(nproc) < 2 ? $(nproc) : 2))
source scripts/ccache.sh
# The deb and rpm trees share ccache hits only if ccache sees paths relative to a directory
# holding both the sources and the trees.
ccache_base=$src
while [[ $ccache_base != / && "$out/" != "$ccache_base/"* ]]; do ccache_base=$(dirname "$ccache_base"); done
export CCACHE_BASEDIR=$ccache_base

phase_start=0
declare -a times=()
begin() { phase=$1; phase_start=$(date +%s.%N); echo "== $phase"; }
end() { times+=("$(awk -v p="$phase" -v a="$phase_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%-28s %6.1f s", p, b - a }')"); }
fail() { echo "package.sh: FAILED: $*" >&2; exit 1; }

# Debian's hardening flags (bindnow, fortify, stack protector). CMake ignores CPPFLAGS, so
# _FORTIFY_SOURCE is folded into CFLAGS/CXXFLAGS.
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
# The packages are stripped, so no debug info is generated (-g0 last wins; about a quarter of
# the compile time).
export CFLAGS="$CFLAGS $CPPFLAGS -g0" CXXFLAGS="$CXXFLAGS $CPPFLAGS -g0"

common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
        -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"
        -DCLUSTERD_BUILD_TESTS=OFF -DCLUSTERD_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD="$unity"
        "${ccache_launcher[@]}")

build_tree() {  # NAME FLAVOR GENERATOR [cmake args...]
  local name=$1 flavor=$2 gen=$3; shift 3
  local dir=$out/build-$name
  begin "$name: configure+build"
  # Flags are read at the first configure only: a tree from other flags would not be clean.
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qF -- "CMAKE_CXX_FLAGS:STRING=$CXXFLAGS" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  cmake -S "$src" -B "$dir" "${common[@]}" -DCLUSTERD_PKG_FLAVOR="$flavor" "$@" >"$dir/configure.log" \
    || { cat "$dir/configure.log"; fail "configure $name"; }
  cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1 \
    || { tail -50 "$dir/build.log"; fail "build $name (log: $dir/build.log)"; }
  end
  begin "$name: cpack"
  rm -rf "$dir/packages"
  (cd "$dir" && cpack -G "$gen" >"$dir/cpack.log" 2>&1) \
    || { cat "$dir/cpack.log"; find "$dir/_CPack_Packages" -name '*.log' -exec tail -30 {} + 2>/dev/null; fail "cpack $name"; }
  end
}

build_tree deb deb DEB
build_tree rpm rpm RPM -DCMAKE_INSTALL_LIBDIR=lib64 -DCMAKE_INSTALL_SO_NO_EXE=0

# The third-party plugins clusterd-plugin-NAME (each its own project and CPack), built as their
# packager would: against the clusterd-dev just built (unpacked to a stage), installing into
# the packaged daemon's plugin directory.
plugin_debs=()
third_party() {
  local name=$1 src=plugins/third_party/clusterd-plugin-$1
  [ -f "$src/CMakeLists.txt" ] || return 0
  begin "$name: configure+build+cpack"
  local tree=$out/build-$name-pkg
  rm -rf "$tree" && mkdir -p "$tree"
  dpkg-deb -x "$out"/build-deb/packages/clusterd-dev_*.deb "$tree/sdk"
  { cmake -S "$src" -B "$tree" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
      "${ccache_launcher[@]}" \
      -DCMAKE_PREFIX_PATH="$tree/sdk/usr" \
      -DCLUSTERD_PLUGIN_INSTALL_DIR="/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/clusterd/plugins" &&
    cmake --build "$tree" -j "$jobs" && (cd "$tree" && cpack -G DEB); } >"$tree/build.log" 2>&1 \
    || { tail -40 "$tree/build.log"; fail "clusterd-plugin-$name package (log: $tree/build.log)"; }
  local built=("$tree"/clusterd-plugin-"$name"_*.deb)
  [ ${#built[@]} -eq 1 ] || fail "expected 1 clusterd-plugin-$name .deb"
  plugin_debs+=("${built[0]}")
  end
}
third_party ec2
third_party consul
third_party postgres

shopt -s nullglob
debs=("$out"/build-deb/packages/*.deb)
rpms=("$out"/build-rpm/packages/*.rpm)
[ ${#debs[@]} -eq 2 ] || fail "expected 2 .deb files, got: ${debs[*]:-none}"
[ ${#rpms[@]} -eq 2 ] || fail "expected 2 .rpm files, got: ${rpms[*]:-none}"

begin "lintian"
lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "${debs[@]}" "${plugin_debs[@]}" \
  || fail "lintian"
end
begin "rpmlint"
rpmlint -c packaging/rpm/rpmlint.toml "${rpms[@]}" || fail "rpmlint"
end

begin "man pages"
for page in "$out"/build-deb/packaging/man/*.gz; do
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man $page: $warnings"
done
# Every built-in plugin is in clusterd.toml(5).
toml5=$(zcat "$out/build-deb/packaging/man/clusterd.toml.5.gz")
for so in "$out"/build-deb/lib/*/clusterd/plugins/clusterd-*.so; do
  name=$(basename "$so" .so); name=${name#clusterd-}
  grep -q "^\.SS $name (" <<<"$toml5" || fail "clusterd.toml(5) lacks plugin $name"
done
end

begin "systemd unit"
# verify needs ExecStart to exist: check a copy that points at the built daemon (the
# installed unit itself is verified by tests/packaging/install_test.sh after dpkg -i).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/clusterd|ExecStart=$out/build-deb/bin/clusterd|" packaging/clusterd.service >"$tmp/clusterd.service"
verify=$(systemd-analyze verify --man=no "$tmp/clusterd.service" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify printed: $verify"
security=$(systemd-analyze security --offline=true --threshold=20 packaging/clusterd.service 2>&1) \
  || { echo "$security"; fail "systemd-analyze security: exposure above 2.0"; }
grep -E "Overall exposure level" <<<"$security"
end

echo "== packages"
for f in "${debs[@]}" "${rpms[@]}" "${plugin_debs[@]}"; do printf '%8s  %s\n' "$(du -h "$f" | cut -f1)" "$f"; done
echo "== times"
printf '%s\n' "${times[@]}"
