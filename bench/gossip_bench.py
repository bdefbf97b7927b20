#!/usr/bin/env python3
"""Gossip: all clusterd instances up -> full mesh of real BEAM nodes, in network namespaces.

usage (root): bench/gossip_bench.py BUILD_DIR [--sizes 3,8] [--runs 5] [--options TOML]

Per run: N namespaces on one bridge (tests/integration/netns.py), each with its own epmd and a
running `erl -name nI@198.18.0.I`; a hidden watcher node connected to every node polls
erlang:nodes() every 5 ms. Then the N clusterd (gossip + erlang transport, one per namespace)
are launched back to back; the clock stops when the watcher sees every node with N-1 peers.
Prints, per N, the median and range of "mesh after the last clusterd was exec'd" (the target:
<= 100 ms), of "mesh after the first", and of "discovery": when the last daemon had heard all
N-1 others (from the daemons' "heard" log lines, ms resolution), after the last exec; the
difference to the mesh is the erlang transport's connection set-up and rpcs. Reference (libcluster Gossip, erlang.md 4.3): two
nodes reached full mesh ~1.0 s after launch; heartbeat gaps 0.4-3.9 s.
Everything it starts is stopped by PID; the namespaces are deleted after each run.
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from gossip_beam import NetBeam  # noqa: E402
from netns import Network  # noqa: E402


def one_run(bin_dir, n, options):
    with tempfile.TemporaryDirectory(prefix="clusterd-gbench-") as d, Network(n) as net:
        beam = NetBeam(net, d, bin_dir)
        try:
            nodes = beam.start_beams()
            watcher = beam.mesh_watcher(nodes, timeout=30)
            if watcher.stdout.readline().strip() != "READY":
                raise RuntimeError("the watcher did not connect to every node")
            paths = []
            for ns in net.nodes:
                text = beam.config(ns, options, clusterd=f'log_level = "info"\n'
                                   f'control_socket = "{d}/c{ns.index}.sock"')
                path = os.path.join(d, f"c{ns.index}.toml")
                with open(path, "w") as f:
                    f.write(text)
                paths.append((ns, path))
            first = None
            for ns, path in paths:
                last = time.time_ns()
                first = first or last
                with open(os.path.join(d, f"c{ns.index}.log"), "w") as log:
                    beam.procs.append(subprocess.Popen(
                        ns.cmd([os.path.join(bin_dir, "clusterd"), "run", "-c", path]),
                        stdin=subprocess.DEVNULL, stdout=log, stderr=log))
            mesh = NetBeam.mesh_result(watcher, 60)
            return (mesh - last) / 1e6, (mesh - first) / 1e6, (discovered(d, n) - last) / 1e6
        finally:
            beam.close()


def discovered(d, n):
    """Unix ns at which the last daemon logged hearing its (n-1)th peer."""
    done = []
    for i in range(1, n + 1):
        with open(os.path.join(d, f"c{i}.log")) as f:
            heard = [line.split()[0] for line in f if "] heard " in line]
        if len(heard) < n - 1:
            raise RuntimeError(f"clusterd {i} heard {len(heard)} of {n - 1} peers")
        stamp = datetime.datetime.strptime(heard[n - 2], "%Y-%m-%dT%H:%M:%S.%f")
        done.append(int(stamp.timestamp() * 1e9))  # the daemon logs local time
    return max(done)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("build_dir")
    parser.add_argument("--sizes", default="3,8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--options", default="", help="extra [topologies.gossip.config] TOML")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("gossip_bench: needs root (network namespaces)")
    bin_dir = os.path.join(os.path.abspath(args.build_dir), "bin")
    for n in [int(x) for x in args.sizes.split(",")]:
        after_last, after_first, discovery = [], [], []
        for _ in range(args.runs):
            a, b, c = one_run(bin_dir, n, args.options)
            after_last.append(a)
            after_first.append(b)
            discovery.append(c)
        print(f"{n} namespaces, {args.runs} runs: full mesh {statistics.median(after_last):.1f} ms "
              f"median after the last clusterd was exec'd (range {min(after_last):.1f}-"
              f"{max(after_last):.1f}); {statistics.median(after_first):.1f} ms after the first "
              f"(range {min(after_first):.1f}-{max(after_first):.1f}); every daemon had heard every "
              f"other {statistics.median(discovery):.1f} ms after the last exec (range "
              f"{min(discovery):.1f}-{max(discovery):.1f})", flush=True)


if __name__ == "__main__":
    main()
