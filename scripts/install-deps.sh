#!/usr/bin/env bash
# Installs what clusterd needs to build, test and run its demo on Debian bookworm (as root).
set -euo pipefail
packages=(
  build-essential ccache cmake ninja-build pkg-config git python3 clang-format clang libclang-rt-14-dev
  libboost1.81-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev nlohmann-json3-dev rapidjson-dev
  libc-ares-dev libssl-dev libexpat1-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
  erlang-base erlang-dev erlang-crypto dnsmasq-base openssl iproute2 procps binutils
  rpm lintian rpmlint man-db dpkg-dev file systemd debootstrap systemd-container
  libpq-dev postgresql
  libncurses-dev chromium python3-websocket tmux fonts-dejavu-core
  # test_etcd.py starts its own etcd on free loopback ports with a temporary data directory;
  # a system etcd that the package may start (on 2379) is neither used nor touched.
  etcd-server etcd-client
  # bench/overlay_scale_bench.py: Serf side by side with the overlay (its RPC is msgpack over
  # TCP), and the CPU stress of half the daemons.
  serf python3-msgpack stress-ng
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# postgresql: the server binaries that tests/integration/test_postgres.py runs in a cluster of
# its own (initdb + pg_ctl in a temporary directory, a free port). No system cluster is made,
# so none runs or holds port 5432 (createcluster.d is read by postgresql-common's postinst).
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/clusterd-ci.conf
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
