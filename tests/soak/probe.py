#!/usr/bin/env python3
"""The soak suite's observer, a process of its own so that the runner's threads (and their
share of the GIL) do not add to the latencies it measures.

    probe.py SOCKET PID OUT [--interval 0.2]

Every INTERVAL s it sends `status` to the control socket and records how long the whole
answer took (connect, request, one JSON line; 5 s at most, then the probe counts as a timeout);
every 5th round it also samples the daemon's VmRSS (/proc/PID/status) and its open file
descriptors (/proc/PID/fd). One JSON object per line goes to OUT, flushed at once:
    {"t": <monotonic s>, "status_ms": 1.9}            or "status_error": "..."
    {"t": ..., "rss_kb": 10240, "fds": 37}
It runs until SIGTERM or SIGINT, or the daemon's PID is gone; the loop is also bounded by
--max-seconds.
"""
import argparse
import json
import os
import signal
import socket
import time

_stop = False


def _on_signal(signum, frame):
    global _stop
    _stop = True


def status_ms(path, timeout=5.0):
    began = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while b"\n" not in buf:
            if time.monotonic() - began > timeout:
                raise TimeoutError("no complete answer")
            chunk = s.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed before a complete answer")
            buf += chunk
    elapsed = (time.monotonic() - began) * 1000.0
    if "error" in json.loads(buf.split(b"\n", 1)[0]):
        raise ValueError("status answered an error")
    return elapsed


def sample(pid):
    rss = None
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("pid", type=int)
    parser.add_argument("out")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--max-seconds", type=float, default=4 * 3600)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    end = time.monotonic() + args.max_seconds
    with open(args.out, "a", encoding="ascii") as out:
        for n in range(int(args.max_seconds / args.interval) + 1):
            if _stop or time.monotonic() > end or not os.path.exists(f"/proc/{args.pid}"):
                break
            began = time.monotonic()
            record = {"t": began}
            try:
                record["status_ms"] = round(status_ms(args.socket), 3)
            except (OSError, ValueError) as e:
                record["status_error"] = f"{type(e).__name__}: {e}"
            out.write(json.dumps(record) + "\n")
            if n % 5 == 0:
                try:
                    rss, fds = sample(args.pid)
                    out.write(json.dumps({"t": time.monotonic(), "rss_kb": rss, "fds": fds}) + "\n")
                except OSError:
                    break  # the daemon is gone
            out.flush()
            time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
