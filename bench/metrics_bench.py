#!/usr/bin/env python3
"""The metrics listener's cost: scrape latency and size, and idle memory with and without it.

usage: bench/metrics_bench.py BUILD_DIR [--runs N] [--topologies N] [--nodes N] [--scrapes N]

Per run, one clusterd with T topologies (the epmd strategy, N static nodes each, all connected
through the command transport with connect = /bin/true) and metrics_listen on loopback.
Printed (median and range over the runs):
- /metrics round trip over a fresh connection (ms, p50 / p99 of S scrapes back to back), and
  the body size;
- VmRSS of the daemon after the scrapes, and of the same daemon without a listener (the
  listener's own cost).
Loopback only; every process is started here (through tests/integration/harness.py) and
stopped by PID.
"""
import argparse
import os
import statistics
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import toml_list  # noqa: E402


def config(topologies, nodes, listen):
    lines = ["[clusterd]", 'log_level = "warn"']
    if listen:
        lines.append('metrics_listen = "127.0.0.1:0"')
    lines += ["[transports.cmd]", 'plugin = "command"', 'connect = ["/bin/true"]',
              "resync_interval = 0"]
    for t in range(topologies):
        hosts = [f"n{i}@10.{t // 250}.{t % 250}.{i % 250}" for i in range(nodes)]
        lines += [f"[topologies.t{t}]", 'strategy = "epmd"', f"[topologies.t{t}.config]",
                  f"hosts = {toml_list(hosts)}"]
    return "\n".join(lines) + "\n"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def all_connected(status, expected):
    return sum(len(t["connected"]) for t in status["transports"]) >= expected


def one_run(bin_dir, topologies, nodes, scrapes):
    expected = topologies * nodes
    with harness.Daemon(config(topologies, nodes, True), bin_dir) as d:
        d.wait_until(lambda s: all_connected(s, expected), 120, "every node connected")
        url = f"http://{d.status()['metrics']}/metrics"
        times, size = [], 0
        for _ in range(scrapes):
            start = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as r:
                size = len(r.read())
            times.append((time.perf_counter() - start) * 1000)
        with_listener = rss_kb(d.pid)
    with harness.Daemon(config(topologies, nodes, False), bin_dir) as d:
        d.wait_until(lambda s: all_connected(s, expected), 120, "every node connected")
        without = rss_kb(d.pid)
    times.sort()
    return {"p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1],
            "bytes": size, "rss_with": with_listener, "rss_without": without}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build_dir")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--topologies", type=int, default=20)
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--scrapes", type=int, default=200)
    a = p.parse_args()
    bin_dir = os.path.join(os.path.abspath(a.build_dir), "bin")
    runs = [one_run(bin_dir, a.topologies, a.nodes, a.scrapes) for _ in range(a.runs)]

    def show(key, unit, fmt="{:.2f}"):
        values = [r[key] for r in runs]
        print(f"  {key:12} median {fmt.format(statistics.median(values))} {unit} "
              f"(range {fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})")

    print(f"metrics_bench: {a.topologies} topologies x {a.nodes} nodes, {a.scrapes} scrapes/run")
    show("p50", "ms")
    show("p99", "ms")
    show("bytes", "B", "{:.0f}")
    show("rss_with", "kB", "{:.0f}")
    show("rss_without", "kB", "{:.0f}")


if __name__ == "__main__":
    main()
