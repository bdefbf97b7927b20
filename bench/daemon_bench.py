#!/usr/bin/env python3
"""Daemon start-up time, idle RSS and idle wake-ups, with every in-tree plugin loaded.

usage: bench/daemon_bench.py BUILD_DIR [--runs N] [--idle-seconds S] [--plugins core|no-http|all]

- start: exec of `clusterd run` → the "ready" log line (the daemon prints its CLOCK_MONOTONIC
  timestamp there; we take ours just before exec), median and range of N runs.
- idle RSS: VmRSS of the daemon after start, once idle; also PSS and private (unshared) memory.
- wake-ups: context switches of all the daemon's threads during S idle seconds (with no
  configured timers this should be 0).
Loopback only; every process is started here and stopped by PID.
"""
import argparse, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

# The core: a static list (empty) and the command transport.
CORE_PLUGINS = """
[clusterd]
control_socket = "{dir}/clusterd.sock"
[transports.t]
plugin = "command"
connect = ["/bin/true"]
disconnect = ["/bin/true"]
resync_interval = 0
[topologies.static]
strategy = "epmd"
transport = "t"
[topologies.static.config]
hosts = []
"""

# Every in-tree plugin, each configured so that it has next to nothing to do: the erlang
# transport manages a node that does not exist (it retries with backoff: those are its
# configured timers); the strategies have empty inputs, a dead resolver on loopback, or no
# polling; gossip listens on loopback and stays silent (no local node name to announce).
NO_HTTP_PLUGINS = CORE_PLUGINS + """
[transports.beam]
plugin = "erlang"
node = "nobody@127.0.0.1"
cookie = "bench"
list_interval = "infinity"
resync_interval = 0
[topologies.local]
strategy = "local_epmd"
transport = "beam"
[topologies.local.config]
polling_interval = "infinity"
host = "127.0.0.1"
[topologies.hosts]
strategy = "erlang_hosts"
transport = "t"
[topologies.hosts.config]
hosts_file = "{dir}/hosts.erlang"
timeout = "1h"
[topologies.gossip]
strategy = "gossip"
transport = "beam"
[topologies.gossip.config]
if_addr = "127.0.0.1"
multicast_if = "127.0.0.1"
port = {gossip_port}
[topologies.dns]
strategy = "dns_poll"
transport = "t"
[topologies.dns.config]
query = "nodes.invalid"
node_basename = "app"
resolver = "127.0.0.1:{dead_port}"
polling_interval = "1h"
[topologies.k8s_dns]
strategy = "kubernetes_dns"
transport = "t"
[topologies.k8s_dns.config]
service = "app-headless"
application_name = "app"
resolver = "127.0.0.1:{dead_port}"
polling_interval = "1h"
[topologies.k8s_srv]
strategy = "kubernetes_dnssrv"
transport = "t"
[topologies.k8s_srv.config]
service = "app-headless"
namespace = "default"
application_name = "app"
resolver = "127.0.0.1:{dead_port}"
polling_interval = "1h"
"""

# ... plus the two HTTP strategies, asking a closed port on loopback: libcurl and its TLS stack
# get loaded (the daemon opens libcurl on first HTTP use only).
ALL_PLUGINS = NO_HTTP_PLUGINS + """
[topologies.rancher]
strategy = "rancher"
transport = "t"
[topologies.rancher.config]
node_basename = "app"
metadata_url = "http://127.0.0.1:{dead_port}/latest/self/service"
polling_interval = "1h"
[topologies.k8s]
strategy = "kubernetes"
transport = "t"
[topologies.k8s.config]
kubernetes_node_basename = "app"
kubernetes_selector = "app=app"
kubernetes_master = "127.0.0.1:{dead_port}"
kubernetes_namespace = "default"
kubernetes_service_account_path = "{dir}"
polling_interval = "1h"
"""



def free_port(kind):
    """A port nothing listens on now (the kernel's pick, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def one_run(clusterd, idle_seconds, config):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.toml")
        with open(path, "w") as f:
            f.write(config.format(dir=d, gossip_port=free_port("udp"), dead_port=free_port("tcp")))
        open(os.path.join(d, "hosts.erlang"), "w").close()
        with open(os.path.join(d, "token"), "w") as f:
            f.write("bench-token\n")
        log = open(os.path.join(d, "log"), "w+")
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([clusterd, "run", "-c", path], stdout=log, stderr=log)
        try:
            ready_ns = None
            deadline = time.monotonic() + 10
            while ready_ns is None and time.monotonic() < deadline:
                log.seek(0)
                m = re.search(r"ready: .*monotonic_ns=(\d+)", log.read())
                if m:
                    ready_ns = int(m.group(1))
                else:
                    time.sleep(0.005)
            if ready_ns is None:
                raise RuntimeError("clusterd did not become ready")
            rss = read_status(proc.pid, "VmRSS")
            with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                rollup = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[0].endswith(":") and l.split()[1].isdigit()}
            unique = rollup["Private_Clean"] + rollup["Private_Dirty"]
            before = switches(proc.pid)
            time.sleep(idle_seconds)  # measuring an idle period, not synchronising
            after = switches(proc.pid)
            return (ready_ns - t0) / 1e6, rss, after - before, rollup["Pss"], unique
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    ap.add_argument("--plugins", choices=["core", "no-http", "all"], default="core",
                    help="core: epmd + command; no-http: every in-tree plugin but the two HTTP "
                         "strategies; all: every in-tree plugin (libcurl gets loaded)")
    a = ap.parse_args()
    clusterd = os.path.join(a.build_dir, "bin", "clusterd")
    config = {"core": CORE_PLUGINS, "no-http": NO_HTTP_PLUGINS, "all": ALL_PLUGINS}[a.plugins]
    results = [one_run(clusterd, a.idle_seconds, config) for _ in range(a.runs)]
    start = [r[0] for r in results]
    rss = [r[1] for r in results]
    wake = [r[2] for r in results]
    print(f"start→ready   median {statistics.median(start):.1f} ms  (min {min(start):.1f}, max {max(start):.1f}, n={len(start)})")
    print(f"idle RSS      median {statistics.median(rss) / 1024:.2f} MB  (min {min(rss) / 1024:.2f}, max {max(rss) / 1024:.2f})")
    pss = [r[3] for r in results]
    unique = [r[4] for r in results]
    print(f"idle PSS      median {statistics.median(pss) / 1024:.2f} MB  (shared library pages split among their users)")
    print(f"idle private  median {statistics.median(unique) / 1024:.2f} MB  (pages no other process shares)")
    print(f"idle wake-ups median {statistics.median(wake)} in {a.idle_seconds:.0f} s  (max {max(wake)})")


if __name__ == "__main__":
    sys.exit(main())
