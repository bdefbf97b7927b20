#!/usr/bin/env python3
"""The control socket against hostile input (issue 14, point 1): loop stall and memory.

usage: bench/control_hostile_bench.py BUILD_DIR [--connections 100]

- one line of b"[" * (8 MiB - 1) + b"\\n": the slowest `status` answer while it is handled
  (requests back to back on other connections), peak RSS growth (VmHWM) and the RSS left after;
- one host command line with an 8 MiB string: the slowest `status` answer meanwhile;
- N connections each sending 8 MB without a newline: RSS growth while they are held, how many
  the daemon closed (its input budget), and the RSS left once they are gone.
Run it on two build trees to compare. Loopback Unix socket only; every process is started here
and stopped by PID.
"""
import argparse
import os
import socket
import sys
import threading
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


def kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1])


def status_seconds(path):
    began = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        while b"\n" not in s.recv(1 << 16):
            pass
    return time.monotonic() - began


def deep_line(d):
    for _ in range(3):
        status_seconds(d.socket_path)
    rss0, hwm0 = kib(d.pid), kib(d.pid, "VmHWM")
    done = threading.Event()

    def hostile():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(d.socket_path)
            s.sendall(b"[" * ((8 << 20) - 1) + b"\n")
            while s.recv(1 << 16):
                pass
        done.set()

    t = threading.Thread(target=hostile)
    t.start()
    worst = 0.0
    for _ in range(10000):
        worst = max(worst, status_seconds(d.socket_path))
        if done.is_set():
            break
    t.join()
    worst = max(worst, status_seconds(d.socket_path))
    print(f"8 MiB '[' line: slowest status {worst * 1000:8.1f} ms, peak RSS +"
          f"{(kib(d.pid, 'VmHWM') - hwm0) / 1024:7.1f} MiB, left +"
          f"{(kib(d.pid) - rss0) / 1024:7.1f} MiB")


def long_string_line(d):
    """A host command with an 8 MiB string: refused, and (now) never parsed by the host."""
    line = b'{"cmd":"status","data":"' + b"y" * ((8 << 20) - 100) + b'"}\n'
    done = threading.Event()

    def send():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(d.socket_path)
            s.sendall(line)
            while s.recv(1 << 16):
                pass
        done.set()

    t = threading.Thread(target=send)
    t.start()
    worst = 0.0
    for _ in range(10000):
        worst = max(worst, status_seconds(d.socket_path))
        if done.is_set():
            break
    t.join()
    print(f"8 MiB string in a host command: slowest status {worst * 1000:8.1f} ms")


def unterminated(d, n):
    rss0 = kib(d.pid)
    socks, closed = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.5)
        s.connect(d.socket_path)
        socks.append(s)
        sent = 0
        try:
            while sent < 8_000_000:
                sent += s.send(b"w" * min(1 << 20, 8_000_000 - sent))
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            closed += sent < 8_000_000
    held = kib(d.pid) - rss0
    worst = status_seconds(d.socket_path)
    for s in socks:
        s.close()
    deadline = time.monotonic() + 10
    while kib(d.pid) - rss0 > 1024 and time.monotonic() < deadline:
        status_seconds(d.socket_path)
    print(f"{n} x 8 MB without newline: RSS +{held / 1024:7.1f} MiB while held "
          f"({closed} not fully read), status {worst * 1000:.1f} ms, left +"
          f"{(kib(d.pid) - rss0) / 1024:7.1f} MiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--connections", type=int, default=100)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    fixtures = os.path.join(build, "tests", "fixtures", "plugins", "lib")
    with harness.Daemon(CONFIG.format(fixtures=fixtures), os.path.join(build, "bin")) as d:
        d.wait_until(lambda s: harness.transport(s, "fx")["control"], 10, "fx running")
        deep_line(d)
        deep_line(d)  # a second one: does the first leave the heap set up to keep memory?
        long_string_line(d)
        unterminated(d, args.connections)


if __name__ == "__main__":
    main()
