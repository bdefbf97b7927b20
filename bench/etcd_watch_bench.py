#!/usr/bin/env python3
"""etcd watch event -> transport connect called, with the etcd strategy (a node that registers
itself is seen by the others as soon as etcd commits its key; libcluster-style polling of a
registry every 5 s would make it wait 2.5 s on average).

usage: bench/etcd_watch_bench.py BUILD_DIR [--events 200] [--runs 3]

Starts a real etcd (Debian's etcd-server) on free loopback ports with a temporary data
directory (the Etcd helper of tests/integration/test_etcd.py) and a clusterd whose `command`
transport is a bash one-liner appending "NODE $EPOCHREALTIME" to a file. Each event is a put of
<prefix>/<node> through etcd's JSON gateway, one at a time, the next after the previous
connect ran. Two latencies per event (wall clock, one machine): from just before the put is
sent (includes etcd's commit and fsync) and from the moment etcd acknowledged it, to the
moment bash ran for the node (includes the watch stream, parsing, the reconciler and spawning
bash). Printed: p50/p90/p99 of each run, and the median over the runs. Loopback only;
processes by PID.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from beam import wait_for  # noqa: E402
from connect_recorder import connects, transport_config  # noqa: E402
from test_etcd import Etcd, b64  # noqa: E402

PREFIX = "/bench/nodes"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def one_run(bin_dir, events):
    work = tempfile.mkdtemp(prefix="clusterd-etcd-bench-")
    etcd = daemon = None
    try:
        etcd = Etcd(work)
        record = os.path.join(work, "connects")
        config = "\n".join([
            "[clusterd]", 'log_level = "warn"', *transport_config(record),
            "[topologies.e]", 'strategy = "etcd"', 'transport = "cmd"',
            "[topologies.e.config]", f"endpoints = {harness.toml_list([etcd.url])}",
            f"prefix = {harness.toml_string(PREFIX)}", "register = false", ""])
        daemon = harness.Daemon(config, bin_dir)
        daemon.start()
        wait_for(lambda: "watch" in (harness.topology(daemon.status(), "e") or {})
                 .get("details", {}), 30, "the watch")

        from_send, from_ack = [], []
        for i in range(events):
            node = f"n{i}@10.9.{i // 250}.{i % 250 + 1}"
            body = json.dumps({"key": b64(f"{PREFIX}/{node}"), "value": b64(node)}).encode()
            sent = time.time()
            with urllib.request.urlopen(urllib.request.Request(
                    f"{etcd.url}/v3/kv/put", data=body, method="POST"), timeout=10) as r:
                r.read()
            acked = time.time()
            at = float(wait_for(lambda: connects(record).get(node), 30, f"connect of {node}", 0.002))
            from_send.append((at - sent) * 1000)
            from_ack.append((at - acked) * 1000)
        return from_send, from_ack
    finally:
        if daemon is not None:
            daemon.close()
        if etcd is not None:
            etcd.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    summary = {"put sent": [], "put acknowledged": []}
    for run in range(args.runs):
        from_send, from_ack = one_run(bin_dir, args.events)
        for name, values in (("put sent", from_send), ("put acknowledged", from_ack)):
            figures = [percentile(values, q) for q in (0.5, 0.9, 0.99)]
            summary[name].append(figures)
            print(f"run {run + 1}: {name} -> connect running, {len(values)} events: "
                  f"p50 {figures[0]:.1f} ms, p90 {figures[1]:.1f} ms, p99 {figures[2]:.1f} ms, "
                  f"max {max(values):.1f} ms")
    for name, runs in summary.items():
        med = [statistics.median(r[i] for r in runs) for i in range(3)]
        print(f"median of {args.runs} runs: {name} -> connect running: p50 {med[0]:.1f} ms, "
              f"p90 {med[1]:.1f} ms, p99 {med[2]:.1f} ms")
    print("polling a registry every 5 s instead: a new node waits 2500 ms on average")


if __name__ == "__main__":
    main()
