#!/usr/bin/env python3
"""Integration test: the `partisan` listener against hostile peers (issue 14, points 4 and 5),
with real clusterd processes over loopback TCP.

  - 300 idle connections held to a node's port (reopened as they close), from one address
    and from thirty addresses (127.0.0.2.., loopback accepts any 127/8 source): a member
    restarted meanwhile is up again on both sides within
    RECOVERY seconds (23 s before the per-source limits and the reserved member slots); the
    target's CPU during the flood is printed;
  - an accepted connection that never says HELLO is closed after handshake_timeout;
  - a HELLO naming `x@h\\n<forged line>\\x1b[31m` with a bad MAC leaves no raw newline or
    escape byte in the log (the log service escapes every message);
  - garbage from hundreds of connections for a few seconds: a bounded number of log lines,
    a "suppressed N similar" summary, and the member stays up.

    test_overlay_hardening.py --bin-dir <dir of clusterd, clusterctl>
"""

import os
import random
import re
import selectors
import socket
import struct
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_partisan import OverlayCase, frame, hello, up_members  # noqa: E402

RECOVERY = 5.0  # seconds from the restarted member's start to both sides seeing it up
FLOOD = 300     # idle connections held open
HOLD = 5.0      # seconds of flood before the member restarts
LINE_START = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")


class IdleFlood:
    """Holds `count` idle TCP connections to `port`, spread over `sources` (local addresses),
    reopening each one as soon as the target closes it, until stop(). Counts the reopens."""

    def __init__(self, port, sources, count=FLOOD):
        self.port, self.sources, self.count = port, sources, count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _open(self, selector, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.sources[i % len(self.sources)], 0))
        s.connect_ex(("127.0.0.1", self.port))
        selector.register(s, selectors.EVENT_READ, i)

    def _run(self):
        selector = selectors.DefaultSelector()
        try:
            for i in range(self.count):
                self._open(selector, i)
            deadline = time.monotonic() + 120  # bounded whatever the test does
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.05):
                    try:
                        data = key.fileobj.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        continue  # a REJECT, or nothing at all: wait for the close
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    self._open(selector, key.data)
                    self.reopened += 1
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()
            selector.close()


def cpu_seconds(pid):
    """utime + stime of process `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class IdleConnections(OverlayCase):
    """Point 4: idle sockets must not lock a member out of the overlay."""

    def restart_under_flood(self, sources):
        names = self.start_chain(2, heartbeat="")  # the shipped timeouts and backoff
        self.wait_mesh(names)
        target, member = self.nodes
        with IdleFlood(target.port, sources) as flood:
            cpu0, t0 = cpu_seconds(target.daemon.pid), time.monotonic()
            # Held past the target's handshake deadline (3 s), so that the restart meets a
            # flood in its steady state.
            target.daemon.wait_until(
                lambda st: flood.reopened >= FLOOD and time.monotonic() - t0 >= HOLD,
                timeout=30, what="the flood held for a while")
            cpu = (cpu_seconds(target.daemon.pid) - cpu0) / (time.monotonic() - t0)
            member.daemon.proc.kill()  # kill -9 by PID, then a fresh incarnation
            member.daemon.proc.wait(10)
            member.stop()
            member.start()
            began = time.monotonic()
            self.wait_mesh(names, timeout=RECOVERY)
            recovered = time.monotonic() - began
            print(f"\n  flood from {len(sources)} address(es): member up again after "
                  f"{recovered:.2f} s; target CPU {100 * cpu:.0f} % over the first "
                  f"{HOLD:.0f} s; {flood.reopened} reopened connections", file=sys.stderr)
        self.assertTrue(target.daemon.running())
        self.assertLess(recovered, RECOVERY)

    def test_one_address(self):
        self.restart_under_flood(["127.0.0.2"])

    def test_thirty_addresses(self):
        self.restart_under_flood([f"127.0.0.{i}" for i in range(2, 32)])

    def test_a_silent_connection_is_closed_after_handshake_timeout(self):
        names = self.start_chain(2, extra='handshake_timeout = "1s"\n')
        self.wait_mesh(names)
        with socket.create_connection(("127.0.0.1", self.nodes[0].port), timeout=10) as s:
            began = time.monotonic()
            self.assertEqual(s.recv(100), b"", "closed without a word")
            closed = time.monotonic() - began
        self.assertGreater(closed, 0.5)
        self.assertLess(closed, 5.0)


def log_bytes(daemon):
    for f in daemon._files:
        f.flush()
    with open(daemon.stderr_path, "rb") as f:
        return f.read()


class LogSafety(OverlayCase):
    """Point 5: what a peer says cannot forge log lines or flood the log."""

    FORGED = "x@h\n2026-01-01T00:00:00.000 error forged line\x1b[31m"

    def test_a_forged_node_name_cannot_inject_lines_or_escapes(self):
        names = self.start_chain(2)
        self.wait_mesh(names)
        target = self.nodes[0]
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
            s.sendall(hello(node=self.FORGED))
            s.sendall(frame(1, 3, os.urandom(32)))  # AUTH with a MAC made of nothing
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass  # refused at the HELLO with our AUTH unread: the kernel resets, not closes
        target.daemon.wait_until(lambda st: b"refused peer" in log_bytes(target.daemon),
                                 timeout=10, what="the refusal logged")
        data = log_bytes(target.daemon)
        self.assertNotIn(b"\x1b", data)
        for line in data.splitlines():
            self.assertRegex(line, LINE_START, "every line is one of clusterd's")
        self.assertIn(b"x@h\\n2026-01-01T00:00:00.000 error forged line\\x1b[31m", data)

    def test_a_garbage_flood_is_rate_limited_with_a_summary(self):
        names = self.start_chain(2)
        self.wait_mesh(names)
        target = self.nodes[0]
        before = log_bytes(target.daemon).count(b"\n")
        rng = random.Random(14)
        sent, began = 0, time.monotonic()
        while time.monotonic() - began < 4.0 and sent < 20000:
            try:
                with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
                    kind = sent % 3
                    if kind == 0:
                        s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
                    elif kind == 1:
                        s.sendall(hello(cluster=f"other{sent}"))
                    else:
                        s.sendall(hello(node=f"n{sent}@127.0.0.1:{sent % 65535}"))
                        s.sendall(frame(1, 3, os.urandom(32)))
            except OSError:
                pass  # closed by the target first (refused or rejected): garbage all the same
            sent += 1
        target.daemon.wait_until(lambda st: b"suppressed" in log_bytes(target.daemon),
                                 timeout=20, what="a suppression summary")
        data = log_bytes(target.daemon)
        lines = data.count(b"\n") - before
        print(f"\n  {sent} garbage connections in 4 s: {lines} log lines", file=sys.stderr)
        self.assertGreater(sent, 300, "enough garbage to matter")
        self.assertLess(lines, 200)
        self.assertRegex(data, rb"\[transport overlay\] suppressed \d+ similar warning messages")
        self.assertTrue(target.daemon.running())
        self.assertEqual(up_members(target.daemon.status()), {names[1]})


if __name__ == "__main__":
    sys.exit(harness.run_tests([IdleConnections, LogSafety], description=__doc__))
