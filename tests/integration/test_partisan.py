#!/usr/bin/env python3
"""Integration test: the `partisan` overlay transport with real clusterd processes talking over
real TCP sockets (loopback, and network namespaces for the partition case).

Each daemon runs the epmd strategy as a static seed list (`hosts`, epmd_check = false) and the
partisan transport; node names carry the port (n1@127.0.0.1:PORT), so that several nodes share
one address. What is checked:
  - 5 daemons, each seeded with one other peer only: the full mesh forms (member lists);
  - kill -9 of one: the others report it down (at once: its sockets close) and it rejoins when
    restarted; a graceful stop is reported as "left";
  - wrong secret, secret on one side only, wrong cluster name, wrong protocol version, garbage
    and oversized frames: refused with the reason logged, no crash, nothing learned;
  - a partition (namespaces, the veth link set down: no FIN, only silence) is detected within
    heartbeat_timeout and heals when the link comes back;
  - messages through the control socket: in order and once; a dead peer is an error.

    test_partisan.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import netns  # noqa: E402
from harness import transport  # noqa: E402

WAIT = 20.0
SECRET = "integration-test-secret-0123456789"
HEARTBEAT = ('heartbeat_interval = "200ms"\n'
             'heartbeat_timeout = "1500ms"\n'
             'connect_timeout = "2s"\n'
             'max_backoff = "1s"\n')


def free_ports(count):
    """`count` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def overlay_config(name, address, port, seeds, *, secret=SECRET, cluster=None, extra="",
                   heartbeat=HEARTBEAT):
    lines = ["[transports.overlay]", 'plugin = "partisan"',
             f'node_name = "{name}"', f'listen = "{address}:{port}"', heartbeat + extra]
    if secret is not None:
        lines.append(f'secret = "{secret}"')
    if cluster is not None:
        lines.append(f'cluster = "{cluster}"')
    lines += ["[topologies.seed]", 'strategy = "epmd"', 'transport = "overlay"',
              "[topologies.seed.config]", f"hosts = {json.dumps(seeds)}", "epmd_check = false"]
    return "\n".join(lines) + "\n"


def up_members(status):
    return set(transport(status, "overlay")["connected"])


class Node:
    """One clusterd of the overlay: its name, port and the Daemon (restartable)."""

    def __init__(self, name, address, port, seeds, bin_dir, **options):
        self.name, self.address, self.port, self.seeds = name, address, port, seeds
        self.bin_dir, self.options = bin_dir, options
        self.daemon = None

    def start(self):
        config = overlay_config(self.name, self.address, self.port, self.seeds, **self.options)
        self.daemon = harness.Daemon(config, self.bin_dir)
        self.daemon.start()
        return self

    def stop(self):
        if self.daemon is not None:
            self.daemon.close()


class OverlayCase(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for node in self.nodes:
            node.stop()

    def start_chain(self, count, **options):
        """`count` nodes on loopback; node i is seeded with node i-1 only (node 1 with node 2)."""
        ports = free_ports(count)
        names = [f"n{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports)]
        for i in range(count):
            seed = names[i - 1] if i > 0 else names[1]
            node = Node(names[i], "127.0.0.1", ports[i], [seed], harness.ARGS.bin_dir, **options)
            self.nodes.append(node.start())
        return names

    def wait_mesh(self, names, nodes=None, timeout=WAIT):
        nodes = nodes or self.nodes
        try:
            for node in nodes:
                want = set(names) - {node.name}
                node.daemon.wait_until(lambda st, want=want: up_members(st) == want,
                                       timeout=timeout, what=f"{node.name} sees {sorted(want)}")
        except harness.WaitTimeout as e:
            views = []
            for node in nodes:  # every node's view and log: a mesh has more than one side
                if node.daemon.running():
                    views.append(f"{node.name}: {sorted(up_members(node.daemon.status()))}")
                views.append(node.daemon.log_tail(25))
            raise AssertionError(f"{e}\n" + "\n".join(views)) from None


class FullMesh(OverlayCase):
    def test_five_nodes_seeded_with_one_peer_each_form_a_full_mesh(self):
        names = self.start_chain(5)
        self.wait_mesh(names)
        for node in self.nodes:
            details = transport(node.daemon.status(), "overlay")["details"]
            self.assertEqual(details["members"], "4 up of 4")
            self.assertEqual(details["auth"], "hmac-sha256")
            self.assertNotIn(SECRET, node.daemon.log_text(), "the secret is never logged")

    def test_kill9_is_reported_down_and_the_restarted_node_rejoins(self):
        names = self.start_chain(5)
        self.wait_mesh(names)
        victim = self.nodes[2]
        victim.daemon.proc.kill()  # SIGKILL, by PID
        victim.daemon.proc.wait(10)
        others = [n for n in self.nodes if n is not victim]
        began = time.monotonic()
        for node in others:
            node.daemon.wait_until(lambda st: victim.name not in up_members(st), timeout=5.0,
                                   what=f"{node.name} reports {victim.name} down")
        elapsed = time.monotonic() - began
        self.assertLess(elapsed, 5.0)
        for node in others:
            self.assertIn(f"member {victim.name} down", node.daemon.log_text())
        victim.stop()
        victim.start()
        self.wait_mesh(names)

    def test_graceful_stop_is_reported_as_left(self):
        names = self.start_chain(3)
        self.wait_mesh(names)
        leaver = self.nodes[2]
        leaver.stop()
        for node in self.nodes[:2]:
            node.daemon.wait_until(lambda st: leaver.name not in up_members(st), timeout=5.0,
                                   what=f"{node.name} sees {leaver.name} leave")
            self.assertIn(f"nodedown {leaver.name}: left", node.daemon.log_text())


class Refusals(OverlayCase):
    """A peer that must not join: it is refused with the reason logged on both sides."""

    def refused(self, why_here, why_there, **options):
        names = self.start_chain(2)
        self.wait_mesh(names)
        port = free_ports(1)[0]
        intruder = Node(f"x@127.0.0.1:{port}", "127.0.0.1", port, [names[0]],
                        harness.ARGS.bin_dir, **options)
        self.nodes.append(intruder.start())
        target = self.nodes[0].daemon
        target.wait_until(lambda st: why_here in target.log_text(), timeout=WAIT,
                          what=f"the refusal '{why_here}' in {names[0]}'s log")
        intruder.daemon.wait_until(lambda st: why_there in intruder.daemon.log_text(),
                                   timeout=WAIT, what=f"'{why_there}' in the intruder's log")
        self.assertEqual(up_members(intruder.daemon.status()), set())
        for node in self.nodes[:2]:
            self.assertNotIn(intruder.name, up_members(node.daemon.status()))
            self.assertTrue(node.daemon.running())
        # The intruder learned nothing: not even the name of the node it dialed.
        self.assertNotIn(names[1], intruder.daemon.log_text())
        self.assertNotIn(SECRET, intruder.daemon.log_text() + target.log_text())

    def test_wrong_secret(self):
        self.refused("authentication failed (a different cluster secret?)",
                     "rejected by peer: authentication failed", secret="another-secret-0123456789")

    def test_no_secret_against_a_secret(self):
        self.refused("peer has no cluster secret (this node requires one)",
                     "rejected by peer: authentication required", secret=None)

    def test_wrong_cluster_name(self):
        self.refused("cluster name mismatch", "rejected by peer: cluster name mismatch",
                     cluster="another-cluster")


def frame(version, type_, payload):
    return struct.pack(">IBB", 2 + len(payload), version, type_) + payload


def wire_str(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def hello(cluster="clusterd", node="raw@127.0.0.1:1", version=1):
    payload = (wire_str(cluster) + wire_str(node) + wire_str("membership") + struct.pack(">H", 0) +
               struct.pack(">Q", 1) + wire_str("127.0.0.1:1") + os.urandom(32) + b"\x01")
    return frame(version, 1, payload)


def read_reject(sock, timeout=5.0):
    """Reads frames until a REJECT (returns its reason) or EOF (returns None)."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk
        while len(buf) >= 4:
            (length,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + length:
                break
            body, buf = buf[4:4 + length], buf[4 + length:]
            if body[1] == 5:
                (n,) = struct.unpack(">H", body[2:4])
                return body[4:4 + n].decode()
    return None


class RawPeers(OverlayCase):
    """Hand-made frames: the daemon refuses with a reason, stays up and keeps its members."""

    def test_bad_frames_are_refused_and_the_node_stays_up(self):
        names = self.start_chain(2)
        self.wait_mesh(names)
        target = self.nodes[0]
        cases = [
            (hello(version=2), "protocol version 2 is not supported (this node speaks 1)"),
            (hello(cluster="other"), "cluster name mismatch"),
            (frame(1, 9, b""), "expected HELLO"),
            (struct.pack(">I", 0x7FFFFFFF) + b"\x01\x01", "exceeds the limit"),
            (frame(1, 1, b"\x00\x05ab"), "malformed"),
        ]
        for data, reason in cases:
            with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
                s.sendall(data)
                got = read_reject(s)
            self.assertIsNotNone(got, f"a REJECT for {data[:16]!r}")
            self.assertIn(reason, got)
        # Random garbage, and connections that say nothing, are closed without a crash.
        rng = random.Random(7)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        with socket.create_connection(("127.0.0.1", target.port), timeout=5) as s:
            with_secret = read_reject(s, timeout=1.0)  # nothing is said before HELLO
            self.assertIsNone(with_secret)
        self.wait_mesh(names)
        self.assertTrue(target.daemon.running())
        log = target.daemon.log_text()
        self.assertIn("protocol version 2 is not supported", log)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=30)


def make_ca(directory, name):
    """A self-signed test CA (P-256) in `directory`; returns a function issuing certificates."""
    key, cert = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}")

    def issue(subject):
        leaf_key = os.path.join(directory, f"{subject}.key")
        leaf_csr = os.path.join(directory, f"{subject}.csr")
        leaf = os.path.join(directory, f"{subject}.pem")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", leaf_key, "-out", leaf_csr, "-subj", f"/CN={subject}")
        openssl("x509", "-req", "-in", leaf_csr, "-CA", cert, "-CAkey", key, "-CAcreateserial",
                "-out", leaf, "-days", "2")
        return (f'tls_cert_file = "{leaf}"\ntls_key_file = "{leaf_key}"\n'
                f'tls_ca_file = "{cert}"\n')
    return issue


class MutualTls(OverlayCase):
    """TLS under the handshake: certificates from the cluster CA mesh; others are refused."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="clusterd-tls-")
        self.cluster_ca = make_ca(self.dir, "cluster-ca")
        self.other_ca = make_ca(self.dir, "other-ca")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_tls_chain(self, count):
        ports = free_ports(count)
        names = [f"t{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports)]
        for i in range(count):
            seed = names[i - 1] if i > 0 else names[1]
            node = Node(names[i], "127.0.0.1", ports[i], [seed], harness.ARGS.bin_dir,
                        extra=self.cluster_ca(f"t{i + 1}"))
            self.nodes.append(node.start())
        return names

    def test_certificates_of_the_cluster_ca_form_a_mesh_with_the_secret_too(self):
        names = self.start_tls_chain(3)
        self.wait_mesh(names)
        details = transport(self.nodes[0].daemon.status(), "overlay")["details"]
        self.assertEqual((details["tls"], details["auth"]), ("mutual", "hmac-sha256"))

    def refused(self, extra, why_there):
        names = self.start_tls_chain(2)
        self.wait_mesh(names)
        port = free_ports(1)[0]
        intruder = Node(f"x@127.0.0.1:{port}", "127.0.0.1", port, [names[0]],
                        harness.ARGS.bin_dir, extra=extra)
        self.nodes.append(intruder.start())
        intruder.daemon.wait_until(lambda st: why_there in intruder.daemon.log_text(),
                                   timeout=WAIT, what=f"'{why_there}' in the intruder's log")
        target = self.nodes[0].daemon
        target.wait_until(lambda st: "TLS handshake failed" in target.log_text(), timeout=WAIT,
                          what="the refusal in the target's log")
        self.assertEqual(up_members(intruder.daemon.status()), set())
        self.assertEqual(up_members(target.status()), {names[1]})

    def test_a_certificate_of_another_ca_is_refused(self):
        self.refused(self.other_ca("x"), "TLS handshake failed")

    def test_a_peer_without_tls_is_refused(self):
        self.refused("", "Connection reset by peer")


class Session:
    """A control-socket session with a daemon's overlay: JSON lines both ways."""

    def __init__(self, daemon, request, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(daemon.socket_path)
        self.buffer = b""
        self.send(request)

    def send(self, message):
        self.sock.sendall((json.dumps(dict(message, transport="overlay")) + "\n").encode())

    def line(self, timeout=10.0):
        """The next line (parsed); None at EOF. Raises socket.timeout after `timeout`."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(raw)

    def close(self):
        self.sock.close()


class Messages(OverlayCase):
    """Application messages through the control socket (docs/control-protocol.md)."""

    def setUp(self):
        super().setUp()
        self.names = self.start_chain(3, extra='channels = ["default", "bulk:4"]\n')
        self.wait_mesh(self.names)
        self.sessions = []

    def tearDown(self):
        for session in self.sessions:
            session.close()
        super().tearDown()

    def session(self, node, request):
        s = Session(node.daemon, request)
        self.sessions.append(s)
        return s

    def receiver(self, node, channel="default"):
        r = self.session(node, {"cmd": "receive", "channel": channel})
        self.assertEqual(r.line().get("ok"), True)
        return r

    def test_members_lists_every_member_with_its_state(self):
        reply = self.session(self.nodes[0], {"cmd": "members"}).line()
        self.assertEqual(reply["self"]["node"], self.names[0])
        members = {m["node"]: m for m in reply["members"]}
        self.assertEqual(set(members), set(self.names[1:]))
        for m in members.values():
            self.assertEqual(m["state"], "up")
            self.assertIsNotNone(m["last_heard_ms_ago"])

    def test_subscribers_get_membership_events(self):
        events = self.session(self.nodes[0], {"cmd": "subscribe"})
        self.assertEqual(events.line().get("ok"), True)
        leaver = self.nodes[2]
        leaver.stop()  # graceful: LEAVE
        event = events.line(timeout=WAIT)
        self.assertEqual((event["event"], event["node"]), ("left", leaver.name))
        self.assertIsInstance(event["time_ms"], int)
        leaver.start()  # a new incarnation joins again
        seen = set()
        while ("up", leaver.name) not in seen:
            event = events.line(timeout=WAIT)
            seen.add((event["event"], event["node"]))
        self.nodes[1].daemon.proc.kill()  # a crash is "down", with the reason
        while True:
            event = events.line(timeout=WAIT)
            if event["node"] == self.names[1]:
                break
        self.assertEqual(event["event"], "down")  # a crash: closed or reset, never "left"
        self.assertNotEqual(event["reason"], "left")
        self.assertTrue(event["reason"])

    def test_messages_arrive_in_order_and_once(self):
        receiver = self.receiver(self.nodes[1])
        sender = self.session(self.nodes[0], {"cmd": "send", "to": self.names[1],
                                              "data": "m-0", "id": 0})
        count = 300
        for i in range(1, count):
            sender.send({"cmd": "send", "to": self.names[1], "data": f"m-{i}", "id": i})
        sender.send({"cmd": "send", "to": self.names[1], "data": "end", "id": count})
        replies = [sender.line() for _ in range(count + 1)]
        self.assertEqual([r["id"] for r in replies if r.get("ok")], list(range(count + 1)))
        got = []
        while True:
            event = receiver.line()
            self.assertEqual((event["event"], event["from"], event["channel"]),
                             ("message", self.names[0], "default"))
            if event["data"] == "end":
                break
            got.append(event["data"])
        self.assertEqual(got, [f"m-{i}" for i in range(count)], "in order, each once")

    def test_parallel_connections_keep_each_sessions_order(self):
        receiver = self.receiver(self.nodes[1], "bulk")
        senders = [self.session(self.nodes[0], {"cmd": "send", "to": self.names[1],
                                                "channel": "bulk", "data": f"{k}-0", "id": 0})
                   for k in range(4)]
        for k, sender in enumerate(senders):
            for i in range(1, 50):
                sender.send({"cmd": "send", "to": self.names[1], "channel": "bulk",
                             "data": f"{k}-{i}", "id": i})
        for sender in senders:
            self.assertTrue(all(sender.line().get("ok") for _ in range(50)))
        per_sender = {k: [] for k in range(4)}
        for _ in range(200):
            k, i = receiver.line()["data"].split("-")
            per_sender[int(k)].append(int(i))
        for k in range(4):
            self.assertEqual(per_sender[k], list(range(50)))

    def test_undeliverable_messages_are_errors(self):
        sender = self.session(self.nodes[0], {"cmd": "send", "to": self.names[1], "data": "x",
                                              "id": 1})
        self.assertIn("no receiver for channel 'default'", sender.line()["error"])
        sender.send({"cmd": "send", "to": "nobody@127.0.0.1:1", "data": "x", "id": 2})
        self.assertIn("is not an up member", sender.line()["error"])
        sender.send({"cmd": "send", "to": self.names[1], "channel": "nope", "data": "x", "id": 3})
        self.assertIn("unknown channel", sender.line()["error"])

    def test_a_dead_peer_is_an_error_for_the_sender_not_a_hang(self):
        self.receiver(self.nodes[1])  # never read: the daemon buffers (bounded)
        payload = "x" * 65536
        sender = self.session(self.nodes[0], {"cmd": "send", "to": self.names[1],
                                              "data": payload, "id": 0})
        for i in range(1, 50):
            sender.send({"cmd": "send", "to": self.names[1], "data": payload, "id": i})
        self.assertTrue(all(sender.line().get("ok") for _ in range(50)))
        self.nodes[1].daemon.proc.kill()  # SIGKILL, by PID
        for i in range(50, 60):  # racing the detection: in flight, or refused at once
            sender.send({"cmd": "send", "to": self.names[1], "data": payload, "id": i})
        replies = [sender.line(timeout=WAIT) for _ in range(10)]
        self.assertEqual(sorted(r["id"] for r in replies), list(range(50, 60)),
                         "every send is answered")
        for r in replies:
            self.assertTrue("lost before the acknowledgement" in r.get("error", "")
                            or "was lost" in r.get("error", "")
                            or "is not an up member" in r.get("error", ""), r)


def read_frame(sock):
    """One frame (type, payload) from a blocking socket; None at EOF."""
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (length,) = struct.unpack(">I", header)
    body = b""
    while len(body) < length:
        chunk = sock.recv(min(1 << 20, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return body[1], body[2:]


class StubPeer:
    """A hand-written overlay peer (no secret): it completes every handshake as `name`, then
    reads only the channels it is told to: so one connection can be stalled on purpose."""

    def __init__(self, name, port, read_channels):
        self.name, self.read_channels = name, set(read_channels)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.stopping = False
        self.sockets = []
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.sockets.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            kind, payload = read_frame(conn)  # HELLO: cluster, node, channel, ...
            fields, at = [], 0
            for _ in range(3):
                (n,) = struct.unpack(">H", payload[at:at + 2])
                fields.append(payload[at + 2:at + 2 + n].decode())
                at += 2 + n
            channel = fields[2]
            conn.sendall(frame(1, 2, os.urandom(32) + b"\x00"))  # CHALLENGE, no secret
            read_frame(conn)  # AUTH
            conn.sendall(frame(1, 4, wire_str(self.name) + struct.pack(">Q", 1) +
                               wire_str(self.name.split("@")[1]) + bytes(32)))  # WELCOME
            if channel not in self.read_channels:
                return  # stalled: never read again
            while True:
                got = read_frame(conn)
                if got is None:
                    return
                kind, payload = got
                if kind == 6:  # PING -> PONG
                    conn.sendall(frame(1, 7, payload))
                elif kind == 10:  # MESSAGE -> ACK delivered
                    conn.sendall(frame(1, 11, payload[:8] + b"\x00" + wire_str("")))
        except (OSError, TypeError, struct.error):
            return

    def close(self):
        self.stopping = True
        self.listener.close()
        for s in self.sockets:
            s.close()


class Channels(OverlayCase):
    def test_a_stalled_channel_does_not_block_another(self):
        stub_port, port = free_ports(2)
        stub_name = f"stub@127.0.0.1:{stub_port}"
        stub = StubPeer(stub_name, stub_port, ["membership", "default"])
        try:
            node = Node(f"a@127.0.0.1:{port}", "127.0.0.1", port, [stub_name],
                        harness.ARGS.bin_dir, secret=None,
                        extra='channels = ["default", "bulk"]\n',
                        heartbeat=HEARTBEAT.replace('"1500ms"', '"60s"'))
            self.nodes.append(node.start())
            self.wait_mesh([node.name, stub_name])
            bulk = Session(node.daemon, {"cmd": "send", "to": stub_name, "channel": "bulk",
                                         "data": "b" * (1 << 20), "id": 0})
            for i in range(1, 16):  # 16 MiB: far more than the socket buffers hold
                bulk.send({"cmd": "send", "to": stub_name, "channel": "bulk",
                           "data": "b" * (1 << 20), "id": i})
            small = Session(node.daemon, {"cmd": "send", "to": stub_name, "data": "hi", "id": 1})
            self.assertEqual(small.line(timeout=WAIT), {"id": 1, "ok": True})
            with self.assertRaises(socket.timeout):  # the stalled channel is still waiting
                bulk.line(timeout=0.5)
            bulk.close()
            small.close()
        finally:
            stub.close()


class Partition(unittest.TestCase):
    """Three namespaces; one is cut off (its veth link down: silence, no FIN) and healed."""

    def test_partition_is_detected_and_heals(self):
        with netns.Network(3) as net:
            nodes = []
            try:
                port = 9400
                names = [f"p{ns.index}@{ns.address}:{port}" for ns in net.nodes]
                for i, ns in enumerate(net.nodes):
                    bin_dir = ns.wrap_bin_dir(harness.ARGS.bin_dir)
                    seed = names[(i + 1) % len(names)]
                    node = Node(names[i], ns.address, port, [seed], bin_dir)
                    nodes.append(node.start())
                for node in nodes:
                    want = set(names) - {node.name}
                    node.daemon.wait_until(lambda st, want=want: up_members(st) == want,
                                           timeout=WAIT, what=f"{node.name} mesh")
                cut = nodes[2]
                net.partition(net.nodes[2])
                for node in nodes[:2]:
                    node.daemon.wait_until(lambda st: cut.name not in up_members(st),
                                           timeout=10.0, what=f"{node.name} sees {cut.name} down")
                cut.daemon.wait_until(lambda st: up_members(st) == set(), timeout=10.0,
                                      what="the cut-off node sees everyone down")
                self.assertIn("no heartbeat for", nodes[0].daemon.log_text())
                net.heal(net.nodes[2])
                for node in nodes:
                    want = set(names) - {node.name}
                    node.daemon.wait_until(lambda st, want=want: up_members(st) == want,
                                           timeout=WAIT, what=f"{node.name} healed")
            finally:
                for node in nodes:
                    node.stop()


if __name__ == "__main__":
    sys.exit(harness.run_tests([FullMesh, Refusals, RawPeers, MutualTls, Messages, Channels,
                                Partition],
                               description=__doc__))
