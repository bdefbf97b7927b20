#!/usr/bin/env python3
"""[hooks] throughput, and the control socket's latency while hooks run.

usage: bench/hooks_bench.py BUILD_DIR [--runs N] [--nodes N]

Per run, one clusterd: the epmd strategy with N static nodes, the command transport with
connect = /bin/true, on_nodeup = `true` (PATH-resolved), max_running = 4, queue_size = N, so
every connect completion runs one hook. Printed (median and range over the runs):
- hooks/s: N hook runs / time from the control socket answering to status showing ran = N;
- status round trip (ms, p50 / p99) sampled back to back while the hooks run, and idle after;
- a flood into a full queue (queue_size = 8, max_running = 1, a hook that sleeps 30 s): status p99
  while the N connects complete and their events are dropped, and the drop count; and the
  same N connects without hooks, as the baseline (the command transport's own spawns).
Loopback only; every process is started here (through tests/integration/harness.py) and
stopped by PID.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import toml_list  # noqa: E402


def config(nodes, hook, max_running, queue_size):
    return "\n".join([
        "[clusterd]", 'log_level = "warn"',
        "[hooks]", f"on_nodeup = {toml_list(hook)}" if hook else "", 'timeout = "60s"',
        f"max_running = {max_running}", f"queue_size = {queue_size}",
        "[transports.cmd]", 'plugin = "command"', 'connect = ["/bin/true"]',
        "resync_interval = 0",
        "[topologies.main]", 'strategy = "epmd"', "max_parallel = 64",
        "[topologies.main.config]", f"hosts = {toml_list(nodes)}", ""])


def timed_status(d):
    begin = time.perf_counter()
    st = d.status()
    return st, (time.perf_counter() - begin) * 1000


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def one_run(bin_dir, n):
    nodes = [f"n{i:04d}@127.0.0.1" for i in range(n)]
    out = {}
    with harness.Daemon(config(nodes, ["true"], 4, n), bin_dir) as d:
        begin = time.monotonic()
        busy = []
        for _ in range(100000):  # bounded by the deadline below as well
            st, ms = timed_status(d)
            if st["hooks"]["ran"] + st["hooks"]["failed"] >= n:
                break
            busy.append(ms)
            if time.monotonic() - begin > 120:
                raise RuntimeError(f"hooks did not finish: {st['hooks']}")
        out["hooks_per_s"] = n / (time.monotonic() - begin)
        out["failed"] = st["hooks"]["failed"]
        out["busy_p50"], out["busy_p99"] = pct(busy or [0], 50), pct(busy or [0], 99)
        idle = [timed_status(d)[1] for _ in range(200)]
        out["idle_p50"], out["idle_p99"] = pct(idle, 50), pct(idle, 99)
    # A hook that outlasts the flood (sleep itself would reject the NODE TOPOLOGY arguments).
    slow = os.path.join(tempfile.mkdtemp(prefix="clusterd-hooks-bench-"), "slow.sh")
    with open(slow, "w") as f:
        f.write("#!/bin/sh\nexec sleep 30\n")
    os.chmod(slow, 0o700)
    for key, hook in (("flood_p99", [slow]), ("nohooks_p99", None)):
        with harness.Daemon(config(nodes, hook, 1, 8), bin_dir) as d:
            samples = []
            for _ in range(100000):  # bounded
                st, ms = timed_status(d)
                samples.append(ms)
                if len(harness.transport(st, "cmd")["connected"]) == n:
                    break
            out[key] = pct(samples, 99)
            if hook:
                out["dropped"] = st["hooks"]["dropped"]
    shutil.rmtree(os.path.dirname(slow))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build_dir, "bin"))
    runs = [one_run(bin_dir, args.nodes) for _ in range(args.runs)]

    def show(key, label, fmt="{:.1f}"):
        values = [r[key] for r in runs]
        print(f"{label:<44} median {fmt.format(statistics.median(values))}  "
              f"range {fmt.format(min(values))}–{fmt.format(max(values))}")

    print(f"{args.nodes} nodes, {args.runs} runs, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")
    show("hooks_per_s", "hooks/s (max_running = 4, hook = true)", "{:.0f}")
    show("busy_p50", "status ms p50 while hooks run", "{:.2f}")
    show("busy_p99", "status ms p99 while hooks run", "{:.2f}")
    show("idle_p50", "status ms p50 idle", "{:.2f}")
    show("idle_p99", "status ms p99 idle", "{:.2f}")
    show("flood_p99", "status ms p99 during a flood into a full queue", "{:.2f}")
    show("nohooks_p99", "status ms p99, same connects, no hooks", "{:.2f}")
    show("dropped", "events dropped in that flood", "{:.0f}")
    show("failed", "hooks failed (should be 0)", "{:.0f}")


if __name__ == "__main__":
    main()
