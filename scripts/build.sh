#!/usr/bin/env bash
# scripts/build.sh DIR [cmake options...]: configures (once) and builds clusterd into DIR.
# With ccache installed (install-deps.sh installs it) compiles go through it: CI builds four
# trees from one source, and a rebuild after a small change is seconds, not minutes.
set -euo pipefail
dir=$1; shift
cd "$(dirname "$0")/.."
source scripts/ccache.sh
[ -f "$dir/build.ninja" ] || cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${ccache_launcher[@]}" "$@"
cmake --build "$dir" -j "$(nproc)"
