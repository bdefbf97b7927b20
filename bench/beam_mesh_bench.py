#!/usr/bin/env python3
"""Time to full mesh of real BEAM nodes driven by clusterd (local_epmd + erlang, nodes="local").

usage: bench/beam_mesh_bench.py BUILD_DIR [--runs 5] [--already 3,5,10] [--launch 3,5] [--embedded]

- already running: N nodes are up (and a hidden watcher is connected to each); clock starts
  just before clusterd is exec'd, stops when the watcher sees every node with N-1 peers.
- launch everything: clock starts before the N `erl` processes and clusterd are launched
  together (libcluster's anchor definition, erlang.md §4.4).
Prints median and range per case. Loopback only, a private epmd; all processes by PID.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from beam import Cluster, wait_for  # noqa: E402

CONFIG = """
[clusterd]
control_socket = "{dir}/clusterd.sock"
log_level = "warn"
[transports.beam]
plugin = "erlang"
nodes = "local"
epmd_port = {port}
cookie_file = "{cookie}"
local_poll_interval = "100ms"
[topologies.local]
strategy = "local_epmd"
[topologies.local.config]
epmd_port = {port}
polling_interval = "100ms"
"""


def one_run(build, n, launch, embedded):
    with tempfile.TemporaryDirectory(prefix="clusterd-bench-") as d:
        cluster = Cluster(d)
        daemon = watcher = None
        try:
            path = os.path.join(d, "c.toml")
            with open(path, "w") as f:
                f.write(CONFIG.format(dir=d, port=cluster.epmd_port, cookie=cluster.cookie_file))
            names = [f"b{i}" for i in range(n)]
            cmd = [os.path.join(build, "bin", "clusterd"), "run", "-c", path]
            if launch:
                t0 = time.time_ns()
                nodes = [cluster.start(x, wait=False, embedded=embedded) for x in names]
                daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster.env)
                wait_for(lambda: set(names) <= cluster.registered(), 60, "nodes")
                watcher = cluster.mesh_watcher(nodes)
            else:
                nodes = cluster.start_many(names, embedded=embedded)
                watcher = cluster.mesh_watcher(nodes)
                assert watcher.stdout.readline().strip() == "READY"
                t0 = time.time_ns()
                daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster.env)
            line = ""
            for _ in range(3):
                line = watcher.stdout.readline().strip()
                if line != "READY":
                    break
            if not line.startswith("MESH"):
                raise RuntimeError(f"no full mesh: {line!r}")
            return (int(line.split()[1]) - t0) / 1e6
        finally:
            for p in (daemon, watcher):
                if p:
                    p.kill()
                    p.wait(timeout=20)
            cluster.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--already", default="3,5,10")
    ap.add_argument("--launch", default="3,5")
    ap.add_argument("--embedded", action="store_true", help="start nodes with -mode embedded")
    a = ap.parse_args()
    mode = "embedded" if a.embedded else "interactive"
    cases = [(int(n), False) for n in a.already.split(",") if n] + [(int(n), True) for n in a.launch.split(",") if n]
    for n, launch in cases:
        times = [one_run(a.build_dir, n, launch, a.embedded) for _ in range(a.runs)]
        what = "launch everything → full mesh" if launch else "already running → full mesh"
        print(f"N={n:<3} {what:32} ({mode}): median {statistics.median(times):7.1f} ms"
              f"  range {min(times):.1f}–{max(times):.1f}  n={len(times)}", flush=True)


if __name__ == "__main__":
    main()
