#!/usr/bin/env bash
# The .deb under a real systemd (252, bookworm's): a minimal bookworm tree (debootstrap from
# the Debian archive) booted with systemd-nspawn, the package installed with dpkg -i, and the
# service checked as systemd runs it: Type=notify reaches "active" with our STATUS= line,
# `systemctl reload` works, journald files our lines under their priorities, the process runs
# as the clusterd user with no capabilities, NoNewPrivs and a seccomp filter, the exposure
# score is <= 2.0, and `systemctl stop` ends it with status 0.
#   systemd_smoke.sh [PACKAGE_DIR]     (default build-deb/packages; needs root)
# Exit 77 (skipped, said loudly) when the machine cannot do it at all: no route to the Debian
# archive for debootstrap, or a kernel where nspawn cannot boot a container. Everything after
# the container's systemd is up is strict. The container shares the host's network; the only
# traffic is debootstrap's download from the archive.
set -euo pipefail
cd "$(dirname "$0")/../.."
pkgdir=${1:-build-deb/packages}
work=$(mktemp -d /tmp/clusterd-nspawn.XXXXXX)
root=$work/root
ns_pid=
pass=0

cleanup() {
  if [ -n "$ns_pid" ] && kill -0 "$ns_pid" 2>/dev/null; then
    kill -TERM "$ns_pid" 2>/dev/null || true  # nspawn: an orderly poweroff of the container
    for _ in $(seq 1 100); do kill -0 "$ns_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ns_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
skip() { echo "systemd_smoke: SKIPPED: $*" >&2; exit 77; }
fail() { echo "systemd_smoke: FAILED: $*" >&2; [ -f "$work/nspawn.log" ] && tail -20 "$work/nspawn.log" >&2; exit 1; }
ok() { echo "ok: $*"; pass=$((pass + 1)); }

deb=$(ls "$pkgdir"/clusterd_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no clusterd_*.deb in $pkgdir (run scripts/package.sh first)"
command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null \
  || fail "debootstrap and systemd-nspawn are needed (scripts/install-deps.sh installs them)"

# CLUSTERD_NSPAWN_CACHE=DIR keeps the bootstrapped tree there for repeated runs (each run
# still boots a fresh copy of it).
cache=${CLUSTERD_NSPAWN_CACHE:-}
if [ -n "$cache" ] && [ -x "$cache/usr/lib/systemd/systemd" ]; then
  cp -a "$cache" "$root"
else
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "systemd_smoke: debootstrap bookworm from $mirror"
  timeout 600 debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libcurl4,libssl3,libc-ares2,passwd,init-system-helpers,procps \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -5 "$work/debootstrap.log" >&2; skip "debootstrap failed (no access to the Debian archive?)"; }
  if [ -n "$cache" ]; then rm -rf "$cache"; cp -a "$root" "$cache"; fi
fi
cp "$deb" "$root/root/clusterd.deb"

# --register=no --keep-unit: there is no host systemd to register with.
setsid systemd-nspawn -D "$root" --register=no --keep-unit -b --console=passive \
  >"$work/nspawn.log" 2>&1 &
ns_pid=$!
leader= state=
for _ in $(seq 1 300); do  # up to 60 s
  kill -0 "$ns_pid" 2>/dev/null || break
  leader=$(pgrep -P "$ns_pid" | head -1 || true)
  if [ -n "$leader" ]; then
    state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
  fi
  sleep 0.2
done
case "$state" in
  running | degraded) ok "container's systemd is up ($state)" ;;
  *) tail -20 "$work/nspawn.log" >&2; skip "systemd-nspawn could not boot a container here" ;;
esac
in_ct() { nsenter -t "$leader" -a "$@"; }
wait_ct() {  # SECONDS COMMAND...: until the command succeeds inside the container
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 5))); do in_ct "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

in_ct dpkg -i /root/clusterd.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
ok "dpkg -i (the postinst enabled and started the unit)"
wait_ct 30 systemctl is-active --quiet clusterd || {
  in_ct systemctl status clusterd --no-pager || true; fail "clusterd did not become active"; }
ok "Type=notify: active once READY=1 arrived"
status=$(in_ct systemctl show -p StatusText --value clusterd)
[[ "$status" =~ ^[0-9]+/[0-9]+\ topologies\ running ]] || fail "StatusText is '$status'"
ok "STATUS= reached systemd: $status"

pid=$(in_ct systemctl show -p MainPID --value clusterd)
proc=$(in_ct cat "/proc/$pid/status")
uid=$(in_ct id -u clusterd)
grep -qE "^Uid:\s+$uid\s" <<<"$proc" || fail "not running as clusterd: $(grep ^Uid <<<"$proc")"
grep -qE "^CapEff:\s+0+$" <<<"$proc" || fail "capabilities: $(grep ^CapEff <<<"$proc")"
grep -qE "^NoNewPrivs:\s+1$" <<<"$proc" || fail "NoNewPrivs is not set"
grep -qE "^Seccomp:\s+2$" <<<"$proc" || fail "no seccomp filter"
ok "runs as clusterd (uid $uid), no capabilities, NoNewPrivs, seccomp filter"

score=$(in_ct systemd-analyze security clusterd 2>/dev/null | sed -n 's/.*Overall exposure level for clusterd.service: \([0-9.]*\).*/\1/p')
in_ct systemd-analyze security --threshold=20 clusterd >/dev/null 2>&1 \
  || fail "systemd-analyze security: exposure $score > 2.0"
ok "exposure $score (<= 2.0) as systemd computes it for the running unit"

in_ct systemctl reload clusterd || fail "systemctl reload"
wait_ct 20 sh -c 'journalctl -u clusterd -o cat | grep -q "reload done"' || fail "no 'reload done'"
in_ct systemctl is-active --quiet clusterd || fail "not active after reload"
ok "systemctl reload: SIGHUP, RELOADING=1 ... READY=1, still active"

# journald priorities: the start line is info (<6>), so -p warning must not show it, but
# -p info must; the packaged config without epmd logs warnings, which -p warning shows.
in_ct journalctl -u clusterd -p info -o cat | grep -q "clusterd .* starting" || fail "no info line"
if in_ct journalctl -u clusterd -p warning -o cat | grep -q "starting"; then
  fail "an info line is filed as a warning or worse: priorities are not passed on"
fi
wait_ct 20 sh -c 'journalctl -u clusterd -p warning -o cat | grep -q "epmd"' \
  || fail "the epmd warning is not filed as a warning"
if in_ct journalctl -u clusterd -o cat | grep -qE '^<[0-7]>|^[0-9]{4}-[0-9]{2}-[0-9]{2}T'; then
  fail "a line kept its <N> prefix or timestamp in the journal"
fi
ok "journald: info and warning lines under their priorities, no prefix or timestamp left"

in_ct systemctl stop clusterd || fail "systemctl stop"
in_ct systemctl is-active --quiet clusterd && fail "still active after stop"
code=$(in_ct systemctl show -p ExecMainStatus --value clusterd)
[ "$code" = 0 ] || fail "exit status $code after stop"
ok "systemctl stop: exit status 0"

echo "systemd_smoke: $pass passed, 0 failed"
