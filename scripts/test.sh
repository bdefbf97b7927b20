#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: once normally, once under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure -j 2 --timeout 300)
bash scripts/build.sh build-asan -DCLUSTERD_SANITIZE=ON -DCLUSTERD_BUILD_BENCH=OFF
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j 2 --timeout 300)
# Packages: .deb/.rpm from clean release trees, linted; then installed and exercised.
bash scripts/package.sh
bash tests/packaging/install_test.sh
# The .deb under a real systemd (nspawn); exit 77 = this machine cannot boot a container.
rc=0; bash tests/packaging/systemd_smoke.sh || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]
