#!/usr/bin/env python3
"""exec strategy, stream mode: a "+name" line written by the command -> transport connect
running.

usage: bench/exec_bench.py BUILD_DIR [--events 200] [--runs 3]

Per run, one clusterd whose exec topology streams `/bin/cat FIFO` (so a line this script writes
into the FIFO is the command's output at once) and whose `command` transport is a bash
one-liner appending "NODE $EPOCHREALTIME" to a file. Event i writes "+bench-i@127.0.0.1"; its
latency = the time bash ran for that node minus the time the line was written (both wall
clock, one machine): it includes the pipe, the host's process service, the line parser, the
reconciler and spawning bash. Events go one at a time, the next after the previous connect
ran. Printed: p50 / p90 / p99 per run, and the medians over the runs. Loopback only; every
process is started here and stopped by PID.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from harness import toml_list  # noqa: E402
from test_command_transport import poll  # noqa: E402


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def connects(path):
    try:
        with open(path, encoding="utf-8") as f:
            return dict(line.split() for line in f if line.strip())
    except FileNotFoundError:
        return {}


def one_run(bin_dir, events):
    work = tempfile.mkdtemp(prefix="clusterd-exec-bench-")
    fifo = os.path.join(work, "lines")
    ran = os.path.join(work, "connects")
    os.mkfifo(fifo)
    connect = ["/bin/bash", "-c", 'echo "$1 $EPOCHREALTIME" >> ' + ran, "bash"]
    config = "\n".join([
        "[clusterd]", 'log_level = "warn"',
        "[transports.cmd]", 'plugin = "command"',
        f"connect = {toml_list(connect)}",
        "resync_interval = 0",
        "[topologies.main]", 'strategy = "exec"', 'transport = "cmd"',
        "[topologies.main.config]", 'mode = "stream"', f"command = {toml_list(['/bin/cat', fifo])}",
        ""])
    latencies = []
    try:
        with harness.Daemon(config, bin_dir) as d:
            # cat opens the FIFO for reading; this open completes once it has.
            with open(fifo, "w", encoding="utf-8") as lines:
                for i in range(events):
                    node = f"bench-{i}@127.0.0.1"
                    written = time.time()
                    lines.write(f"+{node}\n")
                    lines.flush()
                    at = poll(lambda: connects(ran).get(node), 20, f"the connect of {node}",
                              interval=0.001)
                    latencies.append((float(at) - written) * 1000)
            d.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    summary = {50: [], 90: [], 99: []}
    for run in range(args.runs):
        lat = one_run(bin_dir, args.events)
        figures = {p: pct(lat, p) for p in summary}
        for p, v in figures.items():
            summary[p].append(v)
        print(f"run {run + 1}: {len(lat)} lines -> connect running: "
              + ", ".join(f"p{p} {v:.2f} ms" for p, v in figures.items()))
    print(f"median of {args.runs} runs: "
          + ", ".join(f"p{p} {statistics.median(v):.2f} ms" for p, v in summary.items()))


if __name__ == "__main__":
    main()
