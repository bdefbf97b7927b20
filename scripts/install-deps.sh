#!/usr/bin/env bash
# Installs what clusterd needs to build, test and run its demo on Debian bookworm (as root).
set -euo pipefail
packages=(
  build-essential ccache cmake ninja-build pkg-config git python3 clang-format clang libclang-rt-14-dev
  libboost1.81-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev nlohmann-json3-dev rapidjson-dev
  libc-ares-dev libssl-dev libexpat1-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
  erlang-base erlang-dev erlang-crypto dnsmasq-base openssl iproute2 procps binutils
  rpm lintian rpmlint man-db dpkg-dev file systemd debootstrap systemd-container
  libncurses-dev chromium python3-websocket tmux fonts-dejavu-core
  # test_etcd.py starts its own etcd on free loopback ports with a temporary data directory;
  # a system etcd that the package may start (on 2379) is neither used nor touched.
  etcd-server etcd-client
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
