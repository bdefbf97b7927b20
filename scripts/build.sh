#!/usr/bin/env bash
# scripts/build.sh DIR [cmake options...]: configures (once) and builds clusterd into DIR.
set -euo pipefail
dir=$1; shift
cd "$(dirname "$0")/.."
[ -f "$dir/build.ninja" ] || cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$dir" -j "$(nproc)"
