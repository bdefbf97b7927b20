#!/usr/bin/env bash
# tests/packaging/install_test.sh [OUT_DIR]: installs the packages that scripts/package.sh
# built (OUT_DIR/build-deb, OUT_DIR/build-rpm) and checks them as an administrator and a
# plugin author would: files, conffile, service user, the unit; the installed daemon run as
# the service user without systemd (READY/RELOADING/STOPPING through a NOTIFY_SOCKET
# listener, SIGHUP, clusterctl, metrics); the SDK examples built out of tree against the
# installed SDK (find_package and pkg-config) and run from /usr/local/lib/clusterd/plugins;
# purge. The rpms are installed into a scratch root. Needs root; cleans up on failure too.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-$PWD}")
[ "$(id -u)" = 0 ] || { echo "install_test.sh: needs root" >&2; exit 1; }

PY=/usr/bin/python3  # not a pyenv shim: the service user must be able to run it
LOCAL_PLUGINS=/usr/local/lib/clusterd/plugins
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
shopt -s nullglob
deb_daemon=("$out"/build-deb/packages/clusterd_*.deb)
deb_dev=("$out"/build-deb/packages/clusterd-dev_*.deb)
rpms=("$out"/build-rpm/packages/*.rpm)
[ ${#deb_daemon[@]} = 1 ] && [ ${#deb_dev[@]} = 1 ] || { echo "no debs in $out/build-deb/packages: run scripts/package.sh" >&2; exit 1; }

checks=0 failures=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; exit 1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

work=$(mktemp -d /tmp/clusterd-install-test.XXXXXX)
chmod 755 "$work"
daemon_pid="" listener_pid="" standin_pid="" installed_local=()
cleanup() {
  local rc=$?
  set +e
  for pid in $daemon_pid $listener_pid $standin_pid; do
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; wait "$pid" 2>/dev/null; }
  done
  for f in "${installed_local[@]}"; do rm -f "$f"; done
  rmdir "$LOCAL_PLUGINS" /usr/local/lib/clusterd 2>/dev/null
  if dpkg-query -W -f='${Status}' clusterd 2>/dev/null | grep -q installed ||
     dpkg-query -W -f='${Status}' clusterd-dev 2>/dev/null | grep -q installed; then
    dpkg --purge clusterd-plugin-ec2 clusterd-plugin-consul clusterd-plugin-postgres clusterd-dev clusterd >/dev/null 2>&1
  fi
  [ $rc = 0 ] || { echo "--- daemon log"; cat "$work"/daemon*.log 2>/dev/null | tail -40; echo "--- notify"; cat "$work/notify.log" 2>/dev/null; }
  rm -rf "$work"
  if [ $rc = 0 ]; then echo "install_test: $checks passed, 0 failed"; else echo "install_test: $checks passed, 1 failed"; fi
  exit $rc
}
trap cleanup EXIT

# Waits up to $2 seconds until command $3... succeeds.
wait_until() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.05
  done
  ok "$what"
}
# The n-th (1-based) notify message matching the regex, after the line number $3.
notified() { tail -n +"$((${3:-0} + 1))" "$work/notify.log" | grep -E -c -- "$1" | { read -r n; [ "$n" -ge "${2:-1}" ]; }; }

# ---- install ----
if dpkg-query -W -f='${Status}' clusterd 2>/dev/null | grep -q installed; then
  dpkg --purge clusterd-plugin-ec2 clusterd-plugin-consul clusterd-plugin-postgres clusterd-dev clusterd >/dev/null 2>&1
fi
dpkg -i "${deb_daemon[0]}" "${deb_dev[0]}" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
ok "dpkg -i $(basename "${deb_daemon[0]}") $(basename "${deb_dev[0]}")"

for f in /usr/bin/clusterd /usr/bin/clusterctl; do check "$f is executable" test -x "$f"; done
for f in /etc/clusterd/clusterd.toml /usr/lib/systemd/system/clusterd.service /usr/lib/sysusers.d/clusterd.conf \
         /usr/share/man/man8/clusterd.8.gz /usr/share/man/man1/clusterctl.1.gz /usr/share/man/man5/clusterd.toml.5.gz \
         /usr/lib/"$multiarch"/clusterd/plugins/clusterd-local_epmd.so /usr/lib/"$multiarch"/clusterd/plugins/clusterd-erlang.so \
         /usr/include/clusterd/plugin.hpp /usr/lib/"$multiarch"/cmake/ClusterdSDK/ClusterdSDKConfig.cmake \
         /usr/lib/"$multiarch"/pkgconfig/clusterd-sdk.pc /usr/share/doc/clusterd/copyright /usr/share/doc/clusterd-dev/copyright \
         /usr/include/clusterd/client.h /usr/lib/"$multiarch"/libclusterd-client.a /usr/lib/"$multiarch"/pkgconfig/clusterd-client.pc; do
  check "$f installed" test -f "$f"
done
check "dpkg -L clusterd lists the daemon and plugins" \
  sh -c 'dpkg -L clusterd | grep -qx /usr/bin/clusterd && dpkg -L clusterd | grep -q "/clusterd/plugins/clusterd-epmd.so$"'
depends=$(dpkg-query -W -f='${Depends}' clusterd)
check "clusterd depends on the dlopen'ed libcurl4 and libssl3 ($depends)" \
  sh -c "echo '$depends' | grep -qw libcurl4 && echo '$depends' | grep -qw libssl3"
check "/etc/clusterd/clusterd.toml is a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' clusterd | grep -q '^ /etc/clusterd/clusterd.toml [0-9a-f]\{32\}$'"
check "/etc/clusterd/clusterd.toml is conf/clusterd.toml" cmp -s /etc/clusterd/clusterd.toml conf/clusterd.toml
check "system user clusterd with home /var/lib/clusterd" \
  sh -c 'getent passwd clusterd | cut -d: -f6 | grep -qx /var/lib/clusterd && getent group clusterd >/dev/null'
verify=$(systemd-analyze verify /usr/lib/systemd/system/clusterd.service 2>&1) || true
check "systemd-analyze verify of the installed unit is silent" test -z "$verify"
[ -z "$verify" ] || echo "$verify" >&2
check "the man pages render without warnings" sh -c '
  for page in clusterd.8 clusterctl.1 clusterd.toml.5; do
    [ -z "$(MANWIDTH=80 man --warnings "${page##*.}" "${page%.*}" 2>&1 >/dev/null)" ] || exit 1
    man -w "${page##*.}" "${page%.*}" >/dev/null || exit 1
  done'
check "clusterd.toml(5) documents the host keys and every built-in plugin" sh -c '
  man 5 clusterd.toml 2>/dev/null | grep -q metrics_listen &&
  for so in /usr/lib/'"$multiarch"'/clusterd/plugins/clusterd-*.so; do
    n=$(basename "$so" .so); man 5 clusterd.toml 2>/dev/null | grep -q "^   ${n#clusterd-} (" || { echo "missing ${n#clusterd-}"; exit 1; }
  done'
check "clusterd check passes on the packaged configuration" sh -c '/usr/bin/clusterd check -c /etc/clusterd/clusterd.toml >/dev/null'

# A local edit survives reinstalling the package (conffile, not overwritten).
echo "# local edit $$" >>/etc/clusterd/clusterd.toml
dpkg -i "${deb_daemon[0]}" </dev/null >"$work/dpkg2.log" 2>&1 || { cat "$work/dpkg2.log"; fail "dpkg -i again"; }
check "a local edit of /etc/clusterd/clusterd.toml survives dpkg -i" grep -qx "# local edit $$" /etc/clusterd/clusterd.toml

# ---- the installed daemon as the service user, without systemd ----
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
has_notify=0 has_metrics=0
grep -qa 'READY=1' /usr/bin/clusterd && has_notify=1
grep -qa 'clusterd_ready' /usr/bin/clusterd && has_metrics=1
mkdir -p "$work/run" && chown clusterd:clusterd "$work/run"
sock=$work/run/clusterd.sock
write_config() {  # $1: extra topology (or "")
  {
    echo '[clusterd]'
    echo "control_socket = \"$sock\""
    [ $has_metrics = 1 ] && echo "metrics_listen = \"127.0.0.1:$port\""
    echo '[transports.cmd]'
    echo 'plugin = "command"'
    echo 'connect = ["/bin/true"]'
    echo '[topologies.static]'
    echo 'strategy = "epmd"'
    echo 'config = { hosts = ["a@127.0.0.1", "b@127.0.0.1"] }'
    [ -z "$1" ] || printf '%s\n' "$1"
  } >"$work/test.toml.new"
  chmod 644 "$work/test.toml.new"
  mv "$work/test.toml.new" "$work/test.toml"
}
write_config ""
check "clusterd check accepts the test configuration" /usr/bin/clusterd check -c "$work/test.toml"

$PY tests/packaging/notify_listener.py "$work/notify.sock" "$work/notify.log" 120 &
listener_pid=$!
wait_until "notify listener up" 10 grep -q LISTENING "$work/notify.log" 2>/dev/null
NOTIFY_SOCKET=$work/notify.sock setpriv --reuid=clusterd --regid=clusterd --init-groups \
  /usr/bin/clusterd run -c "$work/test.toml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
runs_as_clusterd() { [ "$(ps -o user= -p "$daemon_pid" | tr -d ' ')" = clusterd ]; }
wait_until "the daemon runs as user clusterd" 10 runs_as_clusterd
if [ $has_notify = 1 ]; then
  wait_until "READY=1 from the daemon" 20 notified '(^|\|)READY=1(\||$)'
  check "a STATUS= line came with or after READY" notified '(^|\|)STATUS=.+'
else
  echo "SKIP: this clusterd has no sd_notify support (no READY=1 in the binary)"
fi
status_has() { /usr/bin/clusterctl --socket "$sock" status --json 2>/dev/null | $PY -c "
import json, sys
s = json.load(sys.stdin)
tops = {t['name']: t for t in s['topologies']}
want = sys.argv[1:]
sys.exit(0 if all(n in tops and tops[n]['state'] == 'running' and
                  {'a@127.0.0.1', 'b@127.0.0.1'} <= {x['name'] for x in tops[n]['nodes'] if x['state'] == 'connected'}
                  for n in want) else 1)" "$@"; }
wait_until "clusterctl status --json: topology static running, both nodes connected" 20 status_has static
check "clusterctl status (text) names the topology" sh -c "/usr/bin/clusterctl --socket '$sock' status | grep -q static"
check "clusterctl topologies" sh -c "/usr/bin/clusterctl --socket '$sock' topologies | grep -q '^static '"

# "STATUS BODY" of GET http://127.0.0.1:$port$1 ("000" when nothing answers).
http() { $PY - "http://127.0.0.1:$port$1" <<'PYEOF'
import sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print("000")
PYEOF
}
if [ $has_metrics = 1 ]; then
  ready_200() { [ "$(http /ready | head -1)" = 200 ]; }
  metrics_lines() { http /metrics | grep -q '^clusterd_'; }
  wait_until "GET /ready is 200" 10 ready_200
  check "GET /metrics has clusterd_ lines" metrics_lines
else
  echo "SKIP: this clusterd has no Prometheus listener"
fi

# SIGHUP with a new topology: RELOADING=1, then READY=1 again, and the topology runs.
write_config $'[topologies.second]\nstrategy = "epmd"\nconfig = { hosts = ["a@127.0.0.1", "b@127.0.0.1"] }'
before=$(wc -l <"$work/notify.log")
kill -HUP "$daemon_pid"
if [ $has_notify = 1 ]; then
  wait_until "RELOADING=1 after SIGHUP" 20 notified '(^|\|)RELOADING=1(\||$)' 1 "$before"
  reloading_at=$(grep -n -E '(^|\|)RELOADING=1(\||$)' "$work/notify.log" | tail -1 | cut -d: -f1)
  wait_until "READY=1 after RELOADING=1" 20 notified '(^|\|)READY=1(\||$)' 1 "$reloading_at"
fi
wait_until "the reloaded configuration runs (topologies static and second)" 20 status_has static second

# SIGTERM: STOPPING=1 and exit 0.
kill -TERM "$daemon_pid"
stopped() { ! kill -0 "$daemon_pid" 2>/dev/null || [ "$(ps -o stat= -p "$daemon_pid")" = Z ]; }
wait_until "the daemon exits after SIGTERM" 20 stopped
rc=0; wait "$daemon_pid" || rc=$?
daemon_pid=""
check "exit status 0 after SIGTERM (was $rc)" test "$rc" = 0
[ $has_notify = 0 ] || check "STOPPING=1 at exit" notified '(^|\|)STOPPING=1(\||$)'
wait "$listener_pid" 2>/dev/null || true
listener_pid=""

# ---- the third-party plugin packages, when package.sh built them ----
# The installed daemon runs the packaged consul plugin against the Consul stand-in of the
# integration tests (loopback; processes by PID).
run_consul() {
  $PY tests/integration/consul_standin.py --url-file "$work/consul.url" --instance web-1=10.0.1.1 &
  standin_pid=$!
  wait_until "the Consul stand-in listens" 20 test -s "$work/consul.url"
  cat >"$work/consul.toml" <<TOML
[clusterd]
control_socket = "$work/consul.sock"
[transports.cmd]
plugin = "command"
connect = ["/bin/true"]
[topologies.c]
strategy = "Cluster.Strategy.Consul"
transport = "cmd"
[topologies.c.config]
base_url = "$(cat "$work/consul.url")"
service_name = "web"
node_basename = "app"
TOML
  /usr/bin/clusterd run -c "$work/consul.toml" >"$work/daemon-consul.log" 2>&1 &
  daemon_pid=$!
  wait_until "the packaged consul plugin connects app@10.0.1.1 from the stand-in" 20 \
    sh -c "/usr/bin/clusterctl --socket '$work/consul.sock' status --json 2>/dev/null | grep -q '\"app@10.0.1.1\"'"
  kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
  kill -TERM "$standin_pid"; wait "$standin_pid" || true; standin_pid=""
}
# The packaged postgres plugin loads (with libpq) and describes its options: no server needed
# (tests/integration/test_postgres.py runs it against a real PostgreSQL).
describe_postgres() {
  check "postgres: channel_name required, password a secret" \
    sh -c "/usr/bin/clusterd plugins describe postgres | grep -q 'channel_name (string, required)' &&
           /usr/bin/clusterd plugins describe postgres | grep -q 'password (string, secret'"
}
for name in ec2 consul postgres; do
  plugin_deb=("$out"/build-$name-pkg/clusterd-plugin-"$name"_*.deb)
  [ ${#plugin_deb[@]} = 1 ] || continue
  dpkg -i "${plugin_deb[0]}" </dev/null >"$work/dpkg-$name.log" 2>&1 || { cat "$work/dpkg-$name.log"; fail "dpkg -i clusterd-plugin-$name"; }
  ok "dpkg -i $(basename "${plugin_deb[0]}")"
  check "the installed daemon finds $name in the packaged plugin dir" \
    sh -c "/usr/bin/clusterd plugins describe $name | grep -q 'file: /usr/lib/$multiarch/clusterd/plugins/clusterd-$name.so'"
  [ "$name" != consul ] || run_consul
  [ "$name" != postgres ] || describe_postgres
  dpkg --purge clusterd-plugin-"$name" >/dev/null || fail "dpkg --purge clusterd-plugin-$name"
  check "purged clusterd-plugin-$name" test ! -e "/usr/lib/$multiarch/clusterd/plugins/clusterd-$name.so"
done

# ---- the SDK, out of tree ----
examples=/usr/share/doc/clusterd-sdk/examples
[ -d "$examples" ] || examples=/usr/share/doc/clusterd-dev/examples
check "SDK examples installed" test -f "$examples/minimal-c/CMakeLists.txt"
cp -r "$examples" "$work/examples"
for ex in minimal-c minimal-cpp; do
  # No CMAKE_PREFIX_PATH: ClusterdSDK must be found in /usr.
  cmake -S "$work/examples/$ex" -B "$work/build-$ex" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCLUSTERD_PLUGIN_INSTALL_DIR="$LOCAL_PLUGINS" >"$work/$ex.log" 2>&1 &&
    cmake --build "$work/build-$ex" >>"$work/$ex.log" 2>&1 &&
    cmake --install "$work/build-$ex" >>"$work/$ex.log" 2>&1 || { cat "$work/$ex.log"; fail "find_package build of $ex"; }
  ok "$ex built with find_package(ClusterdSDK) and installed to $LOCAL_PLUGINS"
done
installed_local+=("$LOCAL_PLUGINS/clusterd-example_c.so" "$LOCAL_PLUGINS/clusterd-example_cpp.so")
# The same C plugin with plain cc and pkg-config, loaded through plugin_path.
mkdir -p "$work/pc"
cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags clusterd-sdk) "$work/examples/minimal-c/example_c.c" \
  -Wl,--version-script="$(pkg-config --variable=version_script clusterd-sdk)" -Wl,-z,defs \
  -o "$work/pc/clusterd-example_c.so" || fail "cc + pkg-config build of example_c"
ok "example_c built with cc + pkg-config clusterd-sdk"
check "pkg-config plugindir is the packaged plugin dir" \
  test "$(pkg-config --variable=plugindir clusterd-sdk)" = "/usr/lib/$multiarch/clusterd/plugins"

list=$(/usr/bin/clusterd plugins list)
check "clusterd plugins list shows example_c from /usr/local" grep -q "strategy *example_c " <<<"$list"
check "clusterd plugins list shows example_cpp" grep -q "strategy *example_cpp " <<<"$list"
check "describe example_cpp: the file in $LOCAL_PLUGINS" sh -c "/usr/bin/clusterd plugins describe example_cpp | grep -q 'file: $LOCAL_PLUGINS/clusterd-example_cpp.so'"
printf '[clusterd]\nplugin_path = ["%s"]\n[transports.t]\nplugin = "command"\nconnect = ["/bin/true"]\n' "$work/pc" >"$work/pc.toml"
check "plugin_path wins: example_c from the pkg-config build" \
  sh -c "/usr/bin/clusterd plugins describe example_c -c '$work/pc.toml' | grep -q 'file: $work/pc/clusterd-example_c.so'"

# The installed daemon runs the hand-installed examples.
cat >"$work/examples.toml" <<EOF
[clusterd]
control_socket = "$sock"
[transports.cmd]
plugin = "command"
connect = ["/bin/true"]
[topologies.ex_c]
strategy = "example_c"
config = { nodes = ["a@127.0.0.1", "b@127.0.0.1"] }
[topologies.ex_cpp]
strategy = "example_cpp"
config = { nodes = ["a@127.0.0.1", "b@127.0.0.1"] }
EOF
chmod 644 "$work/examples.toml"
setpriv --reuid=clusterd --regid=clusterd --init-groups \
  /usr/bin/clusterd run -c "$work/examples.toml" >"$work/daemon-examples.log" 2>&1 &
daemon_pid=$!
wait_until "the example strategies run and their nodes are connected" 20 status_has ex_c ex_cpp
kill -TERM "$daemon_pid"
wait_until "the daemon exits" 20 stopped
rc=0; wait "$daemon_pid" || rc=$?
daemon_pid=""
check "exit status 0 (was $rc)" test "$rc" = 0

# ---- purge ----
for f in "${installed_local[@]}"; do rm -f "$f"; done
installed_local=()
dpkg --purge clusterd-dev clusterd >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
check "purged: /usr/bin/clusterd gone" test ! -e /usr/bin/clusterd
check "purged: /etc/clusterd gone" test ! -e /etc/clusterd
check "purged: /var/lib/clusterd gone" test ! -e /var/lib/clusterd
check "purged: no clusterd package left" sh -c '! dpkg-query -W -f="\${Status}" clusterd 2>/dev/null | grep -q installed'

# ---- the rpms, into a scratch root ----
[ ${#rpms[@]} = 2 ] || fail "expected 2 rpms in $out/build-rpm/packages"
root=$work/rpmroot
rpm --root "$root" --initdb
rpm --root "$root" --nodeps --noscripts -ivh "${rpms[@]}" >"$work/rpm.log" 2>&1 || { cat "$work/rpm.log"; fail "rpm -ivh"; }
ok "rpm --root -ivh $(basename -a "${rpms[@]}" | tr '\n' ' ')"
rpm --root "$root" -ql clusterd clusterd-devel >"$work/rpm-files"
has_file() { grep -qx -- "$1" "$work/rpm-files"; }
check "rpm: plugins in /usr/lib64/clusterd/plugins" has_file /usr/lib64/clusterd/plugins/clusterd-local_epmd.so
check "rpm: SDK CMake package in /usr/lib64/cmake" has_file /usr/lib64/cmake/ClusterdSDK/ClusterdSDKConfig.cmake
check "rpm: pkg-config in /usr/lib64/pkgconfig" has_file /usr/lib64/pkgconfig/clusterd-sdk.pc
check "rpm: the unit" has_file /usr/lib/systemd/system/clusterd.service
check "rpm: clusterd.toml(5)" has_file /usr/share/man/man5/clusterd.toml.5.gz
check "rpm: nothing under /usr/lib/$multiarch" sh -c "! grep -q '/usr/lib/$multiarch' '$work/rpm-files'"
rpm --root "$root" -q --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' clusterd >"$work/rpm-flags"
check "rpm: clusterd.toml is %config(noreplace)" grep -qx '/etc/clusterd/clusterd.toml cn' "$work/rpm-flags"
rpm --root "$root" -qR clusterd >"$work/rpm-requires"
requires() { for r in "$@"; do grep -qxF "$r" "$work/rpm-requires" || return 1; done; }
check "rpm: requires the dlopen'ed libcurl, libssl, libcrypto" requires 'libcurl.so.4()(64bit)' 'libssl.so.3()(64bit)' 'libcrypto.so.3()(64bit)'
check "rpm: the plugin dir in clusterd-devel's CMake package is lib64" \
  grep -q 'lib64/clusterd/plugins' "$root/usr/lib64/cmake/ClusterdSDK/ClusterdSDKConfig.cmake"
