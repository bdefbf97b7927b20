#!/usr/bin/env python3
"""What the status page costs the daemon: idle RSS and wake-ups with the metrics listener off,
on with nobody looking, after a person looked (the page open in headless Chromium for a few
seconds, then closed), and while the page is open.

usage: bench/status_page_bench.py BUILD_DIR [--runs N] [--idle-seconds S]

Wake-ups: context switches of all the daemon's threads during S idle seconds (daemon_bench.py's
measure). Loopback only; the daemon and Chromium are started here and stopped by PID.
"""
import argparse, os, signal, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import cdp  # noqa: E402
from daemon_bench import CORE_PLUGINS, free_port, read_status, switches  # noqa: E402


def idle(pid, seconds):
    before = switches(pid)
    time.sleep(seconds)  # measuring an idle period, not synchronising
    return read_status(pid, "VmRSS"), switches(pid) - before


def one_run(clusterd, seconds):
    """{scenario: (rss KiB, wake-ups)} for one daemon."""
    with tempfile.TemporaryDirectory() as d:
        port = free_port("tcp")
        path = os.path.join(d, "c.toml")
        with open(path, "w") as f:
            f.write(CORE_PLUGINS.format(dir=d).replace(
                "[clusterd]\n", f'[clusterd]\nmetrics_listen = "127.0.0.1:{port}"\n', 1))
        log = open(os.path.join(d, "log"), "w")
        proc = subprocess.Popen([clusterd, "run", "-c", path], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("clusterd did not start")
                    time.sleep(0.02)
            time.sleep(0.5)  # let start-up settle before measuring
            out = {"listener on, nobody looking": idle(proc.pid, seconds)}
            with cdp.Browser() as b:
                b.open(f"http://127.0.0.1:{port}/")
                b.wait_for("window.clusterdPage.renders > 0", 20, "the page")
                out["page open (polls every 2 s)"] = idle(proc.pid, seconds)
            time.sleep(0.5)
            out["after the page was closed"] = idle(proc.pid, seconds)
            return out
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    a = ap.parse_args()
    clusterd = os.path.join(a.build_dir, "bin", "clusterd")
    runs = [one_run(clusterd, a.idle_seconds) for _ in range(a.runs)]
    print(f"{a.runs} runs, {a.idle_seconds:.0f} s each, medians (min-max):")
    for scenario in runs[0]:
        rss = [r[scenario][0] for r in runs]
        wake = [r[scenario][1] for r in runs]
        print(f"  {scenario:30} RSS {statistics.median(rss) / 1024:.2f} MB "
              f"({min(rss) / 1024:.2f}-{max(rss) / 1024:.2f}), wake-ups {statistics.median(wake)} "
              f"({min(wake)}-{max(wake)})")


if __name__ == "__main__":
    sys.exit(main())
