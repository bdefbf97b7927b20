#!/usr/bin/env python3
"""consul strategy: a change in Consul -> the transport's `connect` running, in the real daemon
(the plugin built out of tree against BUILD_DIR's SDK, as tests/integration/test_consul.py
does) against the Consul stand-in of tests/integration/consul_standin.py on loopback.

usage: bench/consul_bench.py BUILD_DIR [--changes 100] [--runs 3] [--poll-changes 20]
                             [--bin-dir DIR (default BUILD_DIR/bin)]

A change is a new passing instance of the service, written into the stand-in (its index grows
and a held blocking query answers, as Consul's would). It is timed from that write to the
`command` transport's connect script for the new node starting (the script logs the wall
clock as its first act: /bin/sh + date, ~2 ms of it is in the figure). Changes are paced
150-300 ms apart, above min_query_interval (100 ms), so each is a change on its own (polling:
150-1150 ms, so that changes fall anywhere in the polling period). Printed:
p50 and p99 of each run, and the median of the runs, with blocking queries (defaults: wait
"5m", min_query_interval "100ms"), then with blocking = false and polling_interval "1s" for
comparison. Loopback only; processes by PID.
"""
import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
import test_consul  # noqa: E402
from consul_standin import ConsulStandin  # noqa: E402
from harness import toml_list  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def one_run(bin_dir, workdir, changes, extra, pacing):
    consul = ConsulStandin()
    consul.add("seed", "10.1.0.1")
    log = os.path.join(workdir, "connects.log")
    script = os.path.join(workdir, "connect.sh")
    with open(script, "w", encoding="utf-8") as f:
        f.write(f'#!/bin/sh\necho "$(date +%s.%N) $1" >> {log}\n')
    os.chmod(script, 0o755)
    if os.path.exists(log):
        os.remove(log)
    config = "\n".join([
        "[clusterd]", f"plugin_path = {toml_list([test_consul.Consul.plugin_dir])}",
        "[transports.t]", 'plugin = "command"', f"connect = {toml_list([script])}",
        "[topologies.c]", 'strategy = "consul"', 'transport = "t"',
        "[topologies.c.config]", f'base_url = "{consul.url}"', 'service_name = "web"',
        'node_basename = "app"', 'list_using = ["health"]', "passing = true"] + extra) + "\n"
    d = harness.Daemon(config, bin_dir)
    latencies = []
    try:
        d.start()

        def connected():
            try:
                with open(log, encoding="utf-8") as f:
                    return {line.split()[1]: float(line.split()[0]) for line in f if line.strip()}
            except FileNotFoundError:
                return {}
        deadline = time.monotonic() + 30
        while "app@10.1.0.1" not in connected():
            if time.monotonic() > deadline:
                raise RuntimeError("the seed instance was never connected")
            time.sleep(0.01)
        for i in range(changes):
            time.sleep(random.uniform(*pacing))  # pacing between changes
            ip = f"10.2.{i // 250}.{i % 250 + 1}"
            written = time.time()
            consul.add(f"web-{i}", ip)
            node = f"app@{ip}"
            deadline = time.monotonic() + 30
            while node not in (seen := connected()):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node} was never connected")
                time.sleep(0.001)
            latencies.append((seen[node] - written) * 1000)
    finally:
        d.close()
        consul.stop()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-changes", type=int, default=20)
    parser.add_argument("--bin-dir", help="clusterd and clusterctl (default BUILD_DIR/bin)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    bin_dir = os.path.abspath(args.bin_dir or os.path.join(build, "bin"))
    harness.ARGS = argparse.Namespace(bin_dir=bin_dir, build_dir=build, cmake="cmake")
    work = os.path.join(build, "bench")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)  # ./consul-work: SDK + plugin build, kept
    test_consul.build_plugin()
    print("consul strategy: change in Consul (stand-in) -> connect running")
    for label, extra, changes, pacing in (
            ("blocking queries (defaults)", [], args.changes, (0.15, 0.3)),
            ('polling, polling_interval "1s"', ["blocking = false", 'polling_interval = "1s"'],
             args.poll_changes, (0.15, 1.15))):
        p50s, p99s = [], []
        for run in range(args.runs):
            lat = one_run(bin_dir, work, changes, extra, pacing)
            p50s.append(percentile(lat, 50))
            p99s.append(percentile(lat, 99))
            print(f"  {label}, run {run + 1}: {changes} changes, p50 {p50s[-1]:.1f} ms, "
                  f"p99 {p99s[-1]:.1f} ms, max {max(lat):.1f} ms")
        print(f"  {label}: median of {args.runs} runs: p50 {statistics.median(p50s):.1f} ms, "
              f"p99 {statistics.median(p99s):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
