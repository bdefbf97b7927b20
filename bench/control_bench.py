#!/usr/bin/env python3
"""Control-socket sessions of the real clusterd (fixture transport fx_control): how fast lines
go through a session, host side included (socket, routing, plugin call, queue, write).

usage: bench/control_bench.py BUILD_DIR [--runs 5]

- one-shot: connect, {"cmd":"members","transport":"fx"}, read the line and EOF (per request)
- echo round trip on one open session, 64 B and 64 KiB lines (median and p99 per run)
- stream: 200000 short lines plugin -> client (lines/s)
- RSS of the daemon after all that
Prints the median over the runs (range in brackets). Loopback Unix socket only.
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402

CONFIG = """
[clusterd]
plugin_path = ["{fixtures}"]
log_level = "warn"
[transports.fx]
plugin = "fx_control"
"""


class Lines:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = b""

    def send(self, line):
        self.s.sendall(line + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def close(self):
        self.s.close()


def one_shot(path, n=500):
    times = []
    request = json.dumps({"cmd": "members", "transport": "fx"}).encode()
    for _ in range(n):
        began = time.perf_counter()
        c = Lines(path)
        c.send(request)
        assert c.line() is not None and c.line() is None
        c.close()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


def echo(path, size, n):
    c = Lines(path)
    c.send(json.dumps({"cmd": "echo", "transport": "fx"}).encode())
    c.line()
    line = json.dumps({"d": "x" * max(0, size - 10)}).encode()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        c.send(line)
        assert len(c.line()) == len(line)
        times.append(time.perf_counter() - began)
    c.close()
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def stream(path, count=200000):
    c = Lines(path)
    began = time.perf_counter()
    c.send(json.dumps({"cmd": "stream", "transport": "fx", "count": count}).encode())
    got = 0
    while c.line() is not None:
        got += 1
    assert got == count
    c.close()
    return count / (time.perf_counter() - began)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    fixtures = os.path.join(build, "tests", "fixtures", "plugins", "lib")
    results = {}
    for _ in range(args.runs):
        with harness.Daemon(CONFIG.format(fixtures=fixtures), os.path.join(build, "bin")) as d:
            d.wait_until(lambda s: harness.transport(s, "fx")["control"], 10, "fx running")
            rss0 = rss_kib(d.pid)
            figures = {"one-shot members request, us": one_shot(d.socket_path)}
            for size, n in ((64, 5000), (64 * 1024, 1000)):
                med, p99 = echo(d.socket_path, size, n)
                figures[f"echo {size} B round trip median, us"] = med
                figures[f"echo {size} B round trip p99, us"] = p99
            figures["stream lines/s (short lines)"] = stream(d.socket_path)
            figures["daemon RSS before, KiB"] = rss0
            figures["daemon RSS after, KiB"] = rss_kib(d.pid)
            for k, v in figures.items():
                results.setdefault(k, []).append(v)
    for k, values in results.items():
        print(f"{k:45s} {statistics.median(values):12.1f}  [{min(values):.1f} .. {max(values):.1f}]")


if __name__ == "__main__":
    main()
