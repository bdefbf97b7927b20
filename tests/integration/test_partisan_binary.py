#!/usr/bin/env python3
"""Integration test: the partisan transport's binary sessions (docs/control-protocol.md,
"Binary sessions"), through libclusterd-client (partisan_client_probe, a C program built with
it), between real clusterd processes over real sockets (loopback TCP between the daemons, the
control sockets between them and the probes). What is checked:
  - messages both ways: A's application sends, B's echoes every message back; every send is
    acknowledged as delivered and the echoes come back complete and in order (64 B and 64 KiB);
  - a binary sender reaches a JSON receiver (the two APIs share channels);
  - "no receiver" (a channel nobody receives on) and a node that is not a member;
  - a receiver that does not read: its daemon closes it as too slow, the sender's
    acknowledgements say so, nothing is buffered without limit, both daemons keep running;
  - a malformed frame ends that session with an error naming why; the daemon carries on;
  - a peer with read-only control access cannot open a binary session (root only);
  - the daemon stopping: an open session ends with the daemon's error, and a new one works
    once it is back.

    test_partisan_binary.py --bin-dir <dir of clusterd, clusterctl, partisan_client_probe>
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_partisan import Node, free_ports, overlay_config, up_members  # noqa: E402

WAIT = 20.0
CHANNELS = 'channels = ["default", "quiet", "slow"]\n'
NOBODY = 65534


def probe_path():
    return os.path.join(harness.ARGS.bin_dir, "partisan_client_probe")


def run_probe(node, channel, *args, timeout=60, **popen):
    """Runs the probe to completion against `node`; returns (exit status, stdout lines)."""
    r = subprocess.run([probe_path(), node.daemon.socket_path, channel] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout, **popen)
    return r.returncode, r.stdout.splitlines() + [f"stderr: {line}" for line in
                                                  r.stderr.splitlines()]


class Probe:
    """A probe left running (echo, stall, hold): started, READY awaited, output collected."""

    def __init__(self, node, channel, mode):
        self.proc = subprocess.Popen([probe_path(), node.daemon.socket_path, channel, mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if first != "READY":
            self.proc.kill()
            raise AssertionError(f"probe {mode} did not start: {first!r}")

    def finish(self, stdin_line=None, timeout=40):
        """Everything it printed after READY, once it exited (bounded)."""
        out, _ = self.proc.communicate(stdin_line, timeout=timeout)
        return self.proc.returncode, out.splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def field(lines, key):
    """The rest of the first output line starting with `key `."""
    for line in lines:
        if line.startswith(key + " ") or line == key:
            return line[len(key) + 1:]
    raise AssertionError(f"no '{key}' line in {lines}")


def logged(node, pattern):
    """Waits until the node's log has a line matching `pattern` (it may lag the socket)."""
    node.daemon.wait_until(lambda st: re.search(pattern, node.daemon.log_text()), WAIT,
                           f"{node.name} logs /{pattern}/")


def acks(lines):
    """(delivered, no receiver, too slow, refused, not sent) from a `send` probe's output."""
    return tuple(int(x) for x in field(lines, "acks").split())


class TwoNodes(unittest.TestCase):
    """A and B, each seeded with the other, with the channels default, quiet and slow."""

    @classmethod
    def setUpClass(cls):
        ports = free_ports(2)
        cls.names = [f"b{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports)]
        cls.nodes = []
        try:
            for i in range(2):
                node = Node(cls.names[i], "127.0.0.1", ports[i], [cls.names[1 - i]],
                            harness.ARGS.bin_dir, extra=CHANNELS)
                cls.nodes.append(node.start())
            for node in cls.nodes:
                want = set(cls.names) - {node.name}
                node.daemon.wait_until(lambda st, want=want: up_members(st) == want, WAIT,
                                       f"{node.name} sees its peer")
        except BaseException:
            cls.tearDownClass()
            raise
        cls.a, cls.b = cls.nodes

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes:
            node.stop()

    def tearDown(self):
        for node in self.nodes:
            self.assertTrue(node.daemon.running(), f"{node.name} is still running")

    def echo_on_b(self):
        echo = Probe(self.b, "default", "echo")
        self.addCleanup(echo.stop)
        return echo

    def test_open_answers_node_and_limit(self):
        rc, out = run_probe(self.a, "default", "open")
        self.assertEqual(rc, 0, out)
        self.assertEqual(field(out, "opened"), f"{self.a.name} 1048576")
        rc, out = run_probe(self.a, "nope", "open")
        self.assertEqual(rc, 1, out)
        self.assertIn("unknown channel 'nope'", field(out, "error:"))

    def test_messages_both_ways_acknowledged_and_in_order(self):
        self.echo_on_b()
        for count, size in ((2000, 64), (200, 65536)):
            rc, out = run_probe(self.a, "default", "send", self.b.name, count, size, "echo")
            self.assertEqual(rc, 0, out)
            self.assertEqual(acks(out), (count, 0, 0, 0, 0), out)
            self.assertEqual(field(out, "echoes"), f"{count} OK", out)

    def test_binary_sender_reaches_a_json_receiver(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT)
            s.connect(self.b.daemon.socket_path)
            s.sendall(b'{"cmd":"receive","transport":"overlay","channel":"quiet"}\n')
            reader = s.makefile("rb")
            self.assertTrue(json.loads(reader.readline()).get("ok"))
            rc, out = run_probe(self.a, "quiet", "sendwait", self.b.name, "hello json")
            self.assertEqual(field(out, "status"), "0 ", out)
            event = json.loads(reader.readline())
            self.assertEqual((event["event"], event["from"], event["data"]),
                             ("message", self.a.name, "hello json"))

    def test_no_receiver_and_not_a_member(self):
        rc, out = run_probe(self.a, "quiet", "send", self.b.name, 3, 32)
        self.assertEqual(rc, 0, out)
        self.assertEqual(acks(out), (0, 3, 0, 0, 0), out)
        self.assertIn(f"no receiver for channel 'quiet' on {self.b.name}", field(out, "reason"))
        rc, out = run_probe(self.a, "default", "sendwait", "ghost@127.0.0.1:1", "x")
        self.assertTrue(field(out, "status").startswith("4 ghost@127.0.0.1:1 is not an up member"),
                        out)

    def test_a_receiver_that_does_not_read_is_closed_as_too_slow(self):
        stall = Probe(self.b, "slow", "stall")
        self.addCleanup(stall.stop)
        # 48 MiB towards a session that reads nothing: more than the 16 MiB a session may
        # leave unread plus what the sockets hold.
        rc, out = run_probe(self.a, "slow", "send", self.b.name, 96, 512 * 1024)
        self.assertEqual(rc, 0, out)
        delivered, no_receiver, too_slow, refused, not_sent = acks(out)
        self.assertEqual(too_slow, 1, out)  # the message that overflowed it
        self.assertGreater(delivered, 0, out)
        self.assertEqual(delivered + no_receiver + too_slow, 96, out)  # the rest: it is gone
        self.assertIn("too slow", field(out, "reason"))
        rc, out = stall.finish("read\n")
        self.assertEqual(rc, 0, out)
        self.assertTrue(field(out, "closed:"), out)
        self.assertLess(int(field(out, "messages")), delivered + 1, out)
        logged(self.b, r"binary session \d+ \(pid \d+ uid \d+, channel 'slow'\) closed: "
                       r"too slow: \d+ bytes unread")

    def test_a_malformed_frame_ends_the_session_with_an_error(self):
        rc, out = run_probe(self.a, "default", "malformed")
        self.assertEqual(rc, 0, out)
        self.assertEqual(field(out, "closed:"), "malformed frame: unknown frame type")
        logged(self.a, r"binary session \d+ \(pid \d+ uid \d+, channel 'default'\) closed: "
                       r"malformed frame: unknown frame type")
        rc, out = run_probe(self.a, "default", "open")  # the next session is fine
        self.assertEqual(rc, 0, out)


class ReadOnlyPeer(unittest.TestCase):
    def test_a_read_only_peer_cannot_open_a_binary_session(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to connect as another user")
        port = free_ports(1)[0]
        name = f"r1@127.0.0.1:{port}"
        node = Node(name, "127.0.0.1", port, [name], harness.ARGS.bin_dir)
        config_lists = 'control_read_uids = ["nobody"]\ncontrol_allow_groups = ["0"]\n'
        text = overlay_config(name, "127.0.0.1", port, [name])
        node.daemon = harness.Daemon("[clusterd]\n" + config_lists + text, harness.ARGS.bin_dir)
        node.daemon.start()
        self.addCleanup(node.stop)
        os.chmod(node.daemon.tmpdir, 0o755)  # the lists decide, not the file mode
        os.chmod(node.daemon.socket_path, 0o666)

        def as_nobody():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        rc, out = run_probe(node, "default", "open", preexec_fn=as_nobody)
        self.assertEqual(rc, 1, out)
        self.assertRegex(field(out, "error:"), f"permission denied: uid {NOBODY} may only send "
                         r"read-only requests \(.*open.* changes state\)")
        rc, out = run_probe(node, "default", "open")  # root may
        self.assertEqual(rc, 0, out)


class DaemonRestart(unittest.TestCase):
    def test_the_session_ends_with_the_daemons_error_and_a_new_one_opens(self):
        port = free_ports(1)[0]
        name = f"s1@127.0.0.1:{port}"
        node = Node(name, "127.0.0.1", port, [name], harness.ARGS.bin_dir).start()
        self.addCleanup(node.stop)
        hold = Probe(node, "default", "hold")
        self.addCleanup(hold.stop)
        node.stop()
        rc, out = hold.finish()
        self.assertEqual(rc, 0, out)
        self.assertIn(field(out, "closed:"), ("clusterd is stopping", "overlay stopped"))
        node.start()
        rc, out = run_probe(node, "default", "open")
        self.assertEqual(rc, 0, out)
        self.assertEqual(field(out, "opened"), f"{name} 1048576")


if __name__ == "__main__":
    sys.exit(harness.run_tests([TwoNodes, ReadOnlyPeer, DaemonRestart], description=__doc__))
