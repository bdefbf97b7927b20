#!/usr/bin/env python3
"""Integration test: safe initial formation. Per topology, min_nodes and stable_for hold every
connect until enough nodes are discovered and the set has settled; [clusterd] ready_when =
"formed" holds READY=1 (and /ready, and "ready" in status) until every topology has formed, or
until ready_timeout. The default (no gate, ready_when = "started") is unchanged: READY=1 at
start.

Real parts only: BEAM nodes registered in a private epmd (local_epmd + the erlang transport,
nodes = "local"), checked by rpc from an independent hidden probe node; a real dnsmasq with the
`command` transport recording every connect; the test binds NOTIFY_SOCKET itself, as systemd
would. Nothing leaves 127.0.0.1.

    test_formation.py --bin-dir <dir of clusterd, clusterctl>
"""

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from beam import Cluster, wait_for  # noqa: E402
from harness import Daemon, toml_list, toml_string, topology, transport  # noqa: E402
from local_servers import Dnsmasq  # noqa: E402
from test_command_transport import Workdir  # noqa: E402

WAIT = 30.0
# Prints "WATCHING", then "NODEUP name" for every visible node that connects (erl -eval; the
# node keeps running).
NODEUP_LOGGER = ("spawn(fun() -> net_kernel:monitor_nodes(true), io:format(\"WATCHING~n\"), "
                 "(fun L() -> receive {nodeup, N} -> io:format(\"NODEUP ~s~n\", [N]), L() end "
                 "end)() end).")


class NotifySocket:
    """systemd's end of sd_notify: a datagram socket the daemon is pointed at."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def drain(self):
        """Every message that has arrived so far (without waiting)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return self.messages

    def ready_messages(self):
        return [m for m in self.drain() if "READY=1" in m.split("\n")]

    def wait_ready(self, timeout=WAIT):
        """Waits for READY=1; returns (the message, time.monotonic() when it arrived)."""
        deadline = time.monotonic() + timeout
        while not self.ready_messages():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no READY=1 within {timeout} s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.ready_messages()[0], time.monotonic()

    def close(self):
        self.sock.close()


def http(address, path):
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def formation(status, name="local"):
    return topology(status, name)["formation"]


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clusterd-form-")
        self.notify = NotifySocket(self.dir)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.close(keep=harness.any_test_failed())
        self.notify.close()
        if harness.any_test_failed():
            print(f"[test] kept {self.dir} (node logs)", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def daemon(self, text):
        d = Daemon(text, harness.ARGS.bin_dir,
                   env=dict(os.environ, NOTIFY_SOCKET=self.notify.path))
        self.daemons.append(d)
        d.start()
        return d


# ---- BEAM nodes in a private epmd ----------------------------------------------------------

class Beam(Base):
    def setUp(self):
        super().setUp()
        self.cluster = Cluster(self.dir)

    def tearDown(self):
        super().tearDown()
        self.cluster.close()

    def config(self, clusterd="", gate=""):
        return f"""
[clusterd]
log_level = "debug"
metrics_listen = "127.0.0.1:0"
{clusterd}

[transports.beam]
plugin = "erlang"
nodes = "local"
epmd_port = {self.cluster.epmd_port}
cookie_file = {toml_string(self.cluster.cookie_file)}
local_poll_interval = "100ms"

[topologies.local]
strategy = "local_epmd"
{gate}
[topologies.local.config]
epmd_port = {self.cluster.epmd_port}
polling_interval = "100ms"
"""

    def start(self, name):
        """A node that logs every visible node connecting to it (NODEUP name); hidden ones, such
        as clusterd's own node, do not count. (A probe node would register in the epmd that
        local_epmd reads, and count as a discovered node.)"""
        node = self.cluster.start(name, args=["-eval", NODEUP_LOGGER])
        wait_for(lambda: "WATCHING" in self.node_log(node), WAIT, f"{node} to watch")
        return node

    def node_log(self, node):
        with open(os.path.join(self.dir, node.split("@")[0] + ".log")) as f:
            return f.read()

    def nodeups(self, node):
        return re.findall(r"^NODEUP (\S+)$", self.node_log(node), re.M)

    def assert_no_connection(self, d, nodes):
        """Nothing connected, as the nodes themselves and as clusterd see it, after a few more
        discovery rounds (each one a step that would have connected)."""
        rounds = d.log_text().count(f"discovered {len(nodes)} node(s)")
        d.wait_until(lambda s: d.log_text().count(f"discovered {len(nodes)} node(s)") >= rounds + 3,
                     WAIT, "3 more discovery rounds")
        for node in nodes:
            self.assertEqual(self.nodeups(node), [], node)
        self.assertEqual(transport(d.status(), "beam")["connected"], [])
        self.assertNotIn("connecting to", d.log_text())

    def test_min_nodes_holds_connects_and_ready_until_formed(self):
        d = self.daemon(self.config('ready_when = "formed"\nready_timeout = "0s"',
                                    "min_nodes = 3"))
        address = d.status()["metrics"]
        a = self.start("a")
        d.wait_until(lambda s: formation(s)["nodes"] == 1, WAIT, "a discovered (the local node)")
        b = self.start("b")
        st = d.wait_until(lambda s: formation(s)["nodes"] == 2, WAIT, "b discovered")
        self.assertEqual(formation(st)["gate"], "waiting")
        self.assert_no_connection(d, [a, b])
        # Not ready, by every channel.
        self.assertEqual(self.notify.ready_messages(), [])
        self.assertFalse(d.status()["ready"])
        code, body = http(address, "/ready")
        self.assertEqual(code, 503)
        self.assertIn("; forming: local (waiting: 2 of 3 nodes)", body)
        out = d.clusterctl("status").stdout
        self.assertIn("  formation: waiting: 2 of 3 nodes\n", out)
        self.assertRegex(out, r"(?m)^not ready, metrics on ")

        c = self.start("c")
        message, _ = self.notify.wait_ready()
        # READY=1 came once the mesh was made: the release may start now and join.
        # (c may be connected before its watcher runs: a and b show every pair.)
        wait_for(lambda: set(self.nodeups(a)) == {b, c} and set(self.nodeups(b)) == {a, c}, WAIT,
                 "a and b to log the other two")
        self.assertRegex(message, r"^READY=1\nSTATUS=1/1 topologies running, [0-9]+ node\(s\) "
                                  r"connected$")
        st = d.status()
        self.assertTrue(st["ready"])
        self.assertTrue(formation(st)["formed"])
        self.assertEqual(http(address, "/ready")[0], 200)
        self.assertIn("  formation: formed\n", d.clusterctl("status").stdout)
        self.assertIn("[topology local] formation gate open: 3 node(s) discovered", d.log_text())
        self.assertEqual(len(self.notify.ready_messages()), 1)

    def test_stable_for_starts_again_with_each_new_node(self):
        d = self.daemon(self.config('ready_when = "formed"', 'min_nodes = 3\nstable_for = "3s"'))
        a, b = self.cluster.start_many(["a", "b"])
        d.wait_until(lambda s: formation(s)["nodes"] == 2, WAIT, "a and b discovered")
        self.assertRegex(d.clusterctl("status").stdout,
                         r"formation: waiting: 2 of 3 nodes, stable [0-9.]+ s of 3 s\n")
        before_c = time.monotonic()
        c = self.cluster.start("c")
        d.wait_until(lambda s: formation(s)["nodes"] == 3, WAIT, "c discovered")
        _, ready_at = self.notify.wait_ready()
        self.assertTrue(self.cluster.full_mesh([a, b, c]))
        # c was discovered after `before_c`, and the set had to stay unchanged for 3 s after.
        self.assertGreaterEqual(ready_at - before_c, 3.0)
        first_connect = re.search(r"connecting to", d.log_text())
        gate_open = d.log_text().find("formation gate open: 3 node(s) discovered")
        self.assertTrue(first_connect and 0 <= gate_open < first_connect.start(), d.log_tail())

    def test_ready_timeout_says_ready_and_why(self):
        a = self.cluster.start("a")  # before the daemon: erl may take seconds to start
        start = time.monotonic()
        d = self.daemon(self.config('ready_when = "formed"\nready_timeout = "5s"',
                                    "min_nodes = 3"))
        st = d.status()
        self.assertFalse(st["ready"])
        self.assertEqual(http(st["metrics"], "/ready")[0], 503)
        message, ready_at = self.notify.wait_ready()
        self.assertGreaterEqual(ready_at - start, 5.0)
        self.assertIn("READY=1", message)
        self.assertIn("ready_timeout (5s) passed before every topology formed, ready anyway: "
                      "topology local: waiting: 1 of 3 nodes", d.log_text())
        self.assertTrue(d.status()["ready"])
        self.assertEqual(http(st["metrics"], "/ready")[0], 200)
        # The gate itself still waits: READY=1 did not connect anything.
        self.assertEqual(formation(d.status())["gate"], "waiting")
        b, c = self.cluster.start_many(["b", "c"])
        wait_for(lambda: self.cluster.full_mesh([a, b, c]), WAIT, "mesh once 3 are there",
                 interval=0.2)

    def test_default_is_ready_at_start_and_connects_at_once(self):
        d = self.daemon(self.config())
        message, _ = self.notify.wait_ready(timeout=5)
        self.assertEqual(message, "READY=1\nSTATUS=1/1 topologies running, 0 node(s) connected")
        self.assertTrue(d.status()["ready"])
        a, b = self.cluster.start_many(["a", "b"])
        wait_for(lambda: self.cluster.full_mesh([a, b]), WAIT, "mesh of 2", interval=0.2)
        self.assertNotIn("formation gate", d.log_text())


# ---- DNS records appearing one by one (dnsmasq, the command transport) ---------------------

class Dns(Base):
    def setUp(self):
        super().setUp()
        self.cmd = Workdir(harness.ARGS.bin_dir, prefix="clusterd-form-dns-")
        self.dns = Dnsmasq(self.cmd.path, local_domains=("test",),
                           hosts={"app.test": ["198.18.0.1"]})

    def tearDown(self):
        super().tearDown()
        self.dns.stop()
        self.cmd.close()

    def test_records_one_by_one(self):
        c = self.cmd.cmd
        d = self.daemon(f"""
[clusterd]
ready_when = "formed"
[transports.cmd]
plugin = "command"
connect = {toml_list([c, "connect"])}
disconnect = {toml_list([c, "disconnect"])}
[topologies.web]
strategy = "dns_poll"
min_nodes = 3
[topologies.web.config]
query = "app.test"
node_basename = "app"
resolver = {toml_string(self.dns.address)}
polling_interval = "200ms"
""")
        d.wait_until(lambda s: formation(s, "web")["nodes"] == 1, WAIT, "one record")
        self.dns.set_hosts({"app.test": ["198.18.0.1", "198.18.0.2"]})
        d.wait_until(lambda s: formation(s, "web")["nodes"] == 2, WAIT, "two records")
        # Several more rounds (each one a query dnsmasq logs) connect nothing.
        seen = self.dns.log_tail(100000).count("] app.test from 127.0.0.1")
        wait_for(lambda: self.dns.log_tail(100000).count("] app.test from 127.0.0.1") >= seen + 6,
                 WAIT, "3 more rounds")
        self.assertEqual(self.cmd.argv_records("connect"), [])
        self.assertEqual(self.notify.ready_messages(), [])
        self.dns.set_hosts({"app.test": ["198.18.0.1", "198.18.0.2", "198.18.0.3"]})
        self.notify.wait_ready()
        self.assertEqual({argv[-1] for argv in self.cmd.argv_records("connect")},
                         {"app@198.18.0.1", "app@198.18.0.2", "app@198.18.0.3"})


# ---- SIGHUP before READY=1 ----------------------------------------------------------------

class Reload(Base):
    CONFIG = """
[clusterd]
{clusterd}
[transports.cmd]
plugin = "command"
connect = ["true"]
[topologies.t]
strategy = "epmd"
min_nodes = 3
[topologies.t.config]
hosts = ["a@127.0.0.1"]
"""

    def test_reload_while_waiting_says_nothing_until_ready(self):
        d = self.daemon(self.CONFIG.format(clusterd='ready_when = "formed"'))
        d.wait_until(lambda s: formation(s, "t")["nodes"] == 1, WAIT, "the static host")
        d.signal(signal.SIGHUP)
        d.wait_until(lambda s: "reload done" in d.log_text(), WAIT, "the reload")
        # Not ready yet: neither RELOADING=1 nor READY=1, only the summary.
        messages = self.notify.drain()
        self.assertEqual([m for m in messages if "READY=1" in m or "RELOADING=1" in m], [])
        self.assertIn("STATUS=1/1 topologies running, 0 node(s) connected; forming: t "
                      "(waiting: 1 of 3 nodes)", messages)
        d.rewrite_config(self.CONFIG.format(clusterd=""))  # ready_when back to "started"
        d.signal(signal.SIGHUP)
        message, _ = self.notify.wait_ready()
        self.assertEqual(message, "READY=1\nSTATUS=1/1 topologies running, 0 node(s) connected")


# ---- check ---------------------------------------------------------------------------------

class Check(unittest.TestCase):
    def test_ready_timeout_needs_ready_when_formed(self):
        text = '[clusterd]\nready_timeout = "30s"\n'
        rc, out, path, lines = harness.check_config(text, harness.ARGS.bin_dir)
        self.assertNotEqual(rc, 0)
        at = harness.problem_at(lines, path, "ready_timeout", '"30s"')
        self.assertIn(at + 'clusterd.ready_timeout: only used with ready_when = "formed" '
                      "(READY=1 is sent at start otherwise)", out)

    def test_bad_values_are_refused_with_their_position(self):
        text = ('[clusterd]\nready_when = "joined"\n[transports.t]\nplugin = "command"\n'
                'connect = ["true"]\n[topologies.x]\nstrategy = "epmd"\nmin_nodes = 0\n'
                'stable_for = "-1s"\n[topologies.x.config]\nhosts = []\n')
        rc, out, path, lines = harness.check_config(text, harness.ARGS.bin_dir)
        self.assertNotEqual(rc, 0)
        self.assertIn(harness.problem_at(lines, path, "ready_when", '"joined"') +
                      "clusterd.ready_when:", out)
        self.assertIn(harness.problem_at(lines, path, "min_nodes", "0") +
                      "topologies.x.min_nodes:", out)
        self.assertIn(harness.problem_at(lines, path, "stable_for", '"-1s"') +
                      "topologies.x.stable_for:", out)


if __name__ == "__main__":
    sys.exit(harness.run_tests([Check, Reload, Beam, Dns], description=__doc__))
