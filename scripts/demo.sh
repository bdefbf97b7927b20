#!/usr/bin/env bash
# The demo: installs dependencies, builds clusterd, starts three plain BEAM nodes on loopback
# with a generated cookie, runs clusterd on its embedded default configuration (local_epmd +
# the erlang transport managing every local node), prints the cluster as clusterctl and as a
# BEAM node see it, and stops everything it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/install-deps.sh
bash scripts/build.sh build
bin=$root/build/bin

work=$(mktemp -d /tmp/clusterd-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The nodes, clusterd and erl_call share a throwaway HOME, so the generated cookie in
# $HOME/.erlang.cookie is everybody's, and the user's own cookie is left alone.
export HOME=$work
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$HOME/.erlang.cookie"
chmod 400 "$HOME/.erlang.cookie"
export ERL_EPMD_ADDRESS=127.0.0.1

# Wait for `cond` (a shell command) to succeed, polling every 0.1 s for at most $2 seconds.
wait_for() {
  local cond=$1 limit=$2 i
  for ((i = 0; i < limit * 10; i++)); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $cond" >&2
  return 1
}

if ! epmd -names >/dev/null 2>&1; then
  epmd -address 127.0.0.1 & pids+=($!)
  wait_for "epmd -names" 10
fi
for n in demo1 demo2 demo3; do
  erl -name "$n@127.0.0.1" -noshell -noinput & pids+=($!)
done
wait_for "[ \$(epmd -names | grep -cE 'name demo[123] ') -eq 3 ]" 30
echo "== three BEAM nodes up: demo1, demo2, demo3 @127.0.0.1 (not connected to each other)"

sock=/run/clusterd/clusterd.sock
"$bin/clusterd" run > "$work/clusterd.log" 2>&1 & pids+=($!)
wait_for "[ \$($bin/clusterctl --socket $sock members | grep -c ' connected') -eq 2 ]" 30 ||
  { cat "$work/clusterd.log"; exit 1; }

echo "== clusterctl members"
"$bin/clusterctl" --socket "$sock" members
echo "== clusterctl status"
"$bin/clusterctl" --socket "$sock" status
echo "== as demo3@127.0.0.1 sees it: erlang:nodes()"
erl_call=/usr/lib/erlang/bin/erl_call
wait_for "[ \"\$($erl_call -name demo3@127.0.0.1 -a 'erlang nodes []' | tr -cd ',' | wc -c)\" = 1 ]" 10
"$erl_call" -name demo3@127.0.0.1 -a 'erlang nodes []'
echo
echo "== clusterd log"
cat "$work/clusterd.log"
