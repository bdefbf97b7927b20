#!/usr/bin/env python3
"""Integration test: what operators watch. The real clusterd with its metrics listener
(metrics_listen, Prometheus text on /metrics, /health, /ready), systemd's notification
protocol (READY=1, STATUS=, RELOADING=1, STOPPING=1 to a NOTIFY_SOCKET datagram socket that
the test binds) and journald priority prefixes (when $JOURNAL_STREAM names stderr).

Topologies: rancher against a local HTTP server (discovery rounds, errors and latency),
a static epmd list where one node's connect always fails (connect attempts and failures),
gossip bound to loopback (a malformed datagram is dropped and counted by reason), all on the
`command` transport. Nothing leaves 127.0.0.1.

    test_observability.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, toml_list, toml_string, topology  # noqa: E402
from local_servers import HttpServer  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402
from test_dns import command_transport, topology_table  # noqa: E402

WAIT = 20.0
FIXTURE = os.path.join(HERE, "..", "fixtures", "rancher", "self-service.json")
RANCHER_NODES = {"myapp@10.42.0.11", "myapp@10.42.0.12"}  # the third has no IP
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? '
                    r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


def parse_exposition(text):
    """{(name, frozenset(labels)): value}; fails on any line that is not valid 0.0.4 text,
    on a sample before its family's TYPE, and on a family declared twice."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in typed, f"family {name} declared twice"
            typed.add(name)
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, f"sample before TYPE: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(name, labels)] = float(m.group(4))
    return samples


def value(samples, name, **labels):
    """The sample of `name` whose labels include `labels` (exactly one must match)."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples match"
    return found[0]


def http(address, path, method="GET"):
    req = urllib.request.Request(f"http://{address}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_request(address, data, read=True):
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-obs-")
        cls.web = None
        cls.d = None
        try:
            with open(FIXTURE, encoding="utf-8") as f:
                cls.fixture = f.read()
            cls.served = os.path.join(cls.work.path, "www", "latest", "self", "service.json")
            os.makedirs(os.path.dirname(cls.served))
            cls.serve(cls.fixture)
            cls.web = HttpServer(os.path.join(cls.work.path, "www"), cls.work.path)
            cls.work.touch("down-bad@127.0.0.1")  # the command transport fails this connect
            cls.gossip_port = free_udp_port()
            config = ('[clusterd]\nmetrics_listen = "127.0.0.1:0"\n' +
                      command_transport(cls.work) + "\n" +
                      topology_table("r", "rancher", node_basename="myapp",
                                     metadata_url=cls.web.url("/latest/self/service"),
                                     polling_interval="200ms", request_timeout="2s") +
                      "[topologies.s]\nstrategy = \"epmd\"\ntransport = \"cmd\"\n"
                      "backoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\n"
                      "[topologies.s.config]\n"
                      f"hosts = {toml_list(['good@127.0.0.1', 'bad@127.0.0.1'])}\n"
                      "[topologies.g]\nstrategy = \"gossip\"\ntransport = \"cmd\"\n"
                      "[topologies.g.config]\n"
                      f"port = {cls.gossip_port}\nif_addr = \"127.0.0.1\"\n"
                      "broadcast_only = true\nmulticast_addr = \"127.0.0.1\"\n")
            cls.d = harness.Daemon(config, harness.ARGS.bin_dir)
            cls.d.start()
            cls.address = cls.d.status()["metrics"]
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.close(keep=harness.any_test_failed())
        if cls.web is not None:
            cls.web.stop()
        cls.work.close()

    @classmethod
    def serve(cls, text):
        tmp = cls.served + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, cls.served)

    def scrape(self):
        status, body = http(self.address, "/metrics")
        self.assertEqual(status, 200, body)
        return parse_exposition(body)

    def wait_metric(self, predicate, what):
        return poll(lambda: (lambda s: s if predicate(s) else None)(self.scrape()), WAIT, what)

    def test_listener_address_is_reported(self):
        self.assertRegex(self.address, r"^127\.0\.0\.1:[1-9][0-9]*$")
        self.assertIn("metrics on http://" + self.address, self.d.log_text())
        out = self.d.clusterctl("status").stdout
        self.assertRegex(out, r"(?m)^(not )?ready, metrics on http://" + re.escape(self.address) + "$")

    def test_topology_counts(self):
        self.d.wait_until(lambda s: connected_nodes(s, "r") == RANCHER_NODES, WAIT,
                          "rancher nodes connected")
        s = self.wait_metric(
            lambda s: value(s, "clusterd_topology_connected_nodes", topology="r") == 2 and
            value(s, "clusterd_topology_connected_nodes", topology="s") == 1,
            "connected counts")
        self.assertEqual(value(s, "clusterd_topology_up", topology="r", strategy="rancher",
                               transport="cmd"), 1)
        self.assertEqual(value(s, "clusterd_topology_discovered_nodes", topology="r"), 2)
        self.assertEqual(value(s, "clusterd_topology_desired_nodes", topology="r"), 2)
        self.assertEqual(value(s, "clusterd_topology_discovered_nodes", topology="s"), 2)
        self.assertEqual(value(s, "clusterd_topology_desired_nodes", topology="s"), 2)
        self.assertEqual(value(s, "clusterd_transport_up", transport="cmd", plugin="command"), 1)
        self.assertGreaterEqual(value(s, "clusterd_transport_connected_nodes", transport="cmd"), 3)
        self.assertEqual(value(s, "clusterd_ready"), 1)
        self.assertEqual(value(s, "clusterd_plugin_failures_total", topology="r"), 0)

    def test_connect_attempts_and_failures(self):
        s = self.wait_metric(
            lambda s: value(s, "clusterd_connect_failures_total", topology="s") >= 2,
            "two failed connects of bad@127.0.0.1")
        attempts = value(s, "clusterd_connect_attempts_total", topology="s")
        failures = value(s, "clusterd_connect_failures_total", topology="s")
        self.assertGreaterEqual(attempts, failures + 1)  # good@ connected once
        self.assertEqual(value(s, "clusterd_connect_failures_total", topology="r"), 0)

    def test_discovery_rounds_errors_and_latency(self):
        s = self.wait_metric(lambda s: value(s, "clusterd_discovery_rounds_total", topology="r") >= 2,
                             "two rancher rounds")
        self.assertEqual(value(s, "clusterd_discovery_errors_total", topology="r"), 0)
        count = value(s, "clusterd_discovery_duration_seconds_count", topology="r")
        self.assertGreaterEqual(count, 2)  # every rancher round makes an HTTP request
        self.assertEqual(value(s, "clusterd_discovery_duration_seconds_bucket", topology="r",
                               le="+Inf"), count)
        self.assertGreater(value(s, "clusterd_discovery_duration_seconds_sum", topology="r"), 0)
        # The static list makes no request: rounds, but no latency observed.
        self.assertGreaterEqual(value(s, "clusterd_discovery_rounds_total", topology="s"), 1)
        self.assertEqual(value(s, "clusterd_discovery_duration_seconds_count", topology="s"), 0)
        try:
            self.serve("{ not json")
            s = self.wait_metric(
                lambda s: value(s, "clusterd_discovery_errors_total", topology="r") >= 1,
                "a failed rancher round")
            self.assertEqual(value(s, "clusterd_topology_discovered_nodes", topology="r"), 2)
        finally:
            self.serve(self.fixture)

    def test_gossip_drops_by_reason(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for _ in range(3):
                u.sendto(b"\x00garbage that is no heartbeat", ("127.0.0.1", self.gossip_port))
        s = self.wait_metric(
            lambda s: sum(v for (n, ls), v in s.items()
                          if n == "clusterd_gossip_dropped_total" and
                          ("topology", "g") in ls) >= 3,
            "three gossip drops")
        reasons = {dict(ls)["reason"] for (n, ls) in s if n == "clusterd_gossip_dropped_total"}
        self.assertTrue(reasons, s)
        for reason in reasons:
            self.assertRegex(reason, r"^[a-z_]+$")

    def test_health_ready_and_errors(self):
        self.assertEqual(http(self.address, "/health"), (200, "ok\n"))
        status, body = http(self.address, "/ready")
        self.assertEqual(status, 200, body)
        self.assertRegex(body, r"^ready: 3/3 topologies running, [0-9]+ node\(s\) connected\n$")
        self.assertEqual(http(self.address, "/nope")[0], 404)
        self.assertEqual(http(self.address, "/metrics", method="POST")[0], 405)
        head = raw_request(self.address, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertIn(b"Content-Length: 3\r\n", head)
        self.assertTrue(head.endswith(b"\r\n\r\n"), head)  # no body
        self.assertTrue(raw_request(self.address, b"\x16\x03\x01garbage\r\n\r\n")
                        .startswith(b"HTTP/1.1 400 "))
        self.assertTrue(raw_request(self.address, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
                        .startswith(b"HTTP/1.1 400 "))

    def test_idle_connections_do_not_block_it(self):
        host, port = self.address.rsplit(":", 1)
        idle = []
        try:
            for _ in range(80):  # more than the listener's 64 at once
                idle.append(socket.create_connection((host, int(port)), timeout=5))
            # The extra ones are closed by the server, the first 64 wait for their 10 s
            # deadline; once the idle ones go, it answers again.
        finally:
            for s in idle:
                s.close()
        poll(lambda: http(self.address, "/health")[0] == 200 or None, WAIT,
             "/health after idle connections closed")
        self.assertTrue(self.d.running())


class Ready(unittest.TestCase):
    """A failed topology: /ready is 503 and the failure is counted."""

    def test_failed_topology_is_not_ready(self):
        work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-obs-")
        try:
            # A strategy plugin whose file is missing fails only its topology.
            config = ('[clusterd]\nmetrics_listen = "127.0.0.1:0"\n' + command_transport(work) +
                      "\n[topologies.ok]\nstrategy = \"epmd\"\n[topologies.ok.config]\n"
                      "hosts = []\n[topologies.broken]\nstrategy = \"no_such_strategy\"\n")
            with harness.Daemon(config, harness.ARGS.bin_dir) as d:
                address = d.status()["metrics"]
                status, body = http(address, "/ready")
                self.assertEqual(status, 503, body)
                self.assertIn("not ready: 1/2 topologies running", body)
                self.assertIn("failed: broken", body)
                self.assertEqual(http(address, "/health")[0], 200)
                s = parse_exposition(http(address, "/metrics")[1])
                self.assertEqual(value(s, "clusterd_ready"), 0)
                self.assertEqual(value(s, "clusterd_topology_up", topology="broken"), 0)
                self.assertEqual(value(s, "clusterd_plugin_failures_total", topology="broken",
                                       plugin="no_such_strategy"), 1)
                self.assertFalse(d.status()["ready"])
        finally:
            work.close()

    def test_bad_listen_address_is_a_config_error(self):
        exe = os.path.join(harness.ARGS.bin_dir, "clusterd")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.toml")
            with open(path, "w") as f:
                f.write('[clusterd]\nmetrics_listen = "localhost:9568"\n')
            import subprocess
            r = subprocess.run([exe, "check", "-c", path], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f"{path}:2:18: clusterd.metrics_listen: "
                          f"\"localhost:9568\" is not IP:PORT", r.stderr)

    def test_port_in_use_stops_the_start(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            d = harness.Daemon(f'[clusterd]\nmetrics_listen = "127.0.0.1:{port}"\n'
                               "allow_no_topologies = true\n",
                               harness.ARGS.bin_dir, start_timeout=10)
            with self.assertRaises(harness.DaemonError):
                d.start()
            try:
                self.assertEqual(d.proc.wait(timeout=10), 1)
                self.assertIn(f"metrics_listen 127.0.0.1:{port}: Address already in use",
                              d.log_text())
            finally:
                d.close()


class Notify(unittest.TestCase):
    """systemd's protocol, with the test as the service manager."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="clusterd-notify-")
        self.sock_path = os.path.join(self.tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.messages = []

    def tearDown(self):
        self.sock.close()
        for name in os.listdir(self.tmp):
            os.remove(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)

    def wait_message(self, predicate, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(data)
            if predicate(data):
                return data
        self.fail(f"no notification {what} within {timeout} s; got {self.messages}")

    def test_ready_status_reload_stopping(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        config = "[topologies.t]\nstrategy = \"epmd\"\n[topologies.t.config]\n" \
                 "hosts = [\"a@127.0.0.1\"]\n" \
                 "[transports.cmd]\nplugin = \"command\"\nconnect = [\"/bin/true\"]\n"
        d = harness.Daemon(config, harness.ARGS.bin_dir, env=env)
        d.start()
        try:
            ready = self.wait_message(lambda m: "READY=1" in m.split("\n"), "READY=1")
            self.assertEqual(ready, "READY=1\nSTATUS=1/1 topologies running, 0 node(s) connected")
            # The connect completes after start: the summary follows.
            self.wait_message(lambda m: m == "STATUS=1/1 topologies running, 1 node(s) connected",
                              "STATUS= after the connect")
            d.signal(signal.SIGHUP)
            self.wait_message(lambda m: m == "RELOADING=1", "RELOADING=1")
            done = self.wait_message(lambda m: m.startswith("READY=1"), "READY=1 after reload")
            self.assertEqual(done, "READY=1\nSTATUS=1/1 topologies running, 1 node(s) connected")
            # A broken file is rejected, and systemd hears that the daemon is ready again.
            d.rewrite_config("[topologies.t]\nstrategy = 5\n")
            d.signal(signal.SIGHUP)
            self.wait_message(lambda m: m == "RELOADING=1", "RELOADING=1 (bad config)")
            rejected = self.wait_message(lambda m: m.startswith("READY=1"), "READY=1 (bad config)")
            self.assertRegex(rejected, r"\nSTATUS=reload rejected \([0-9]+ problem\(s\)\); "
                                       r"1/1 topologies running")
            self.assertEqual(d.stop(), 0)
            self.wait_message(lambda m: m == "STOPPING=1", "STOPPING=1")
        finally:
            d.close(keep=harness.any_test_failed())

    def test_no_socket_no_notifications(self):
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        with harness.Daemon("[clusterd]\nallow_no_topologies = true\n", harness.ARGS.bin_dir,
                            env=env) as d:
            self.assertEqual(d.stop(), 0)
        self.sock.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            self.sock.recv(4096)


class Journal(unittest.TestCase):
    """Priority prefixes only when stderr is the journal stream $JOURNAL_STREAM names."""

    def run_daemon(self, journal_stream):
        # The harness sends stderr to stderr.log; JOURNAL_STREAM is set to that file's
        # device:inode, found after the harness created it, so start the daemon by hand.
        d = harness.Daemon("[topologies.t]\nstrategy = \"epmd\"\n[topologies.t.config]\n"
                           "hosts = []\n"
                           "[transports.cmd]\nplugin = \"command\"\nconnect = [\"/bin/true\"]\n",
                           harness.ARGS.bin_dir, start_timeout=WAIT)
        d.env = dict(os.environ)
        original_popen = harness.subprocess.Popen

        def popen(args, **kw):
            st = os.fstat(kw["stderr"].fileno())
            d.env["JOURNAL_STREAM"] = (f"{st.st_dev}:{st.st_ino}" if journal_stream
                                       else f"{st.st_dev}:{st.st_ino + 1}")
            kw["env"] = d.env
            return original_popen(args, **kw)

        harness.subprocess.Popen = popen
        try:
            d.start()
        finally:
            harness.subprocess.Popen = original_popen
        try:
            self.assertEqual(d.stop(), 0)
            return d.log_text()
        finally:
            d.close(keep=harness.any_test_failed())

    def test_priorities_under_journald(self):
        log = self.run_daemon(True)
        lines = [line for line in log.splitlines() if line]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[2-7]>[^<]", line)
        self.assertTrue(any(line.startswith("<6>clusterd ") for line in lines), log)

    def test_plain_text_when_stderr_is_not_the_journal(self):
        log = self.run_daemon(False)
        self.assertRegex(log.splitlines()[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")
        self.assertNotIn("<6>", log)


if __name__ == "__main__":
    sys.exit(harness.run_tests([Metrics, Ready, Notify, Journal],
                               description=__doc__.splitlines()[0]))
