#!/usr/bin/env python3
"""Integration test: the daemon's lifecycle contract, with the real clusterd.

Supervised restarts: the fixtures fx_flaky (a strategy) and fx_flaky_transport crash on demand
(a word written into their control file makes a timer callback throw) or refuse every start
("fail"); the daemon restarts them with exponential backoff and jitter (restart_backoff,
restart_max), shows it in the status ("restarting", restarts, next_restart_in_ms,
last_failure), in /metrics (clusterd_restarts_total) and in the log, and never spins. A
restarted transport's topologies connect their nodes again on the new instance.

Secrets re-read on SIGHUP: a topology or transport whose `*_file` secret changed gets a new
instance, the others are untouched, and the secret never appears in the log: the kubernetes
strategy's token_file against the Kubernetes API stand-in (tests/servers/k8s_api_server.py),
the erlang transport's cookie_file against a real BEAM node, and gossip's keys_file between two
clusterd daemons in network namespaces (root only).

    test_lifecycle.py --bin-dir <dir of clusterd> --fixtures-dir <dir of clusterd-fx_*.so>
"""

import os
import re
import signal
import sys
import tempfile
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, toml_list, toml_string, topology, transport  # noqa: E402

WAIT = 15.0
NODES = ["a@127.0.0.1", "b@127.0.0.1"]


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def metrics(d):
    with urllib.request.urlopen(f"http://{d.status()['metrics']}/metrics", timeout=5) as r:
        return r.read().decode()


def sample(text, name, labels):
    """The value of the sample NAME{LABELS...} (a dict, all of which must match)."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if m and m.group(1) == name:
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            if all(have.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    raise AssertionError(f"no sample {name}{labels} in\n{text}")


def flaky_config(fixtures_dir):
    return f"""
[clusterd]
plugin_path = {toml_list([fixtures_dir])}
restart_backoff = "100ms"
restart_max = "1s"
metrics_listen = "127.0.0.1:0"

[transports.flaky]
plugin = "fx_flaky_transport"
control_file = "@TMPDIR@/transport.ctl"

[transports.good]
plugin = "fx_good_transport"

[topologies.t]
strategy = "fx_flaky"
transport = "flaky"
backoff_initial = "50ms"
backoff_max = "100ms"
[topologies.t.config]
control_file = "@TMPDIR@/strategy.ctl"
nodes = {toml_list(NODES)}

[topologies.steady]
strategy = "fx_good_strategy"
transport = "good"
[topologies.steady.config]
nodes = {toml_list(["c@127.0.0.1"])}
"""


class Restarts(unittest.TestCase):
    def setUp(self):
        self.d = harness.Daemon(flaky_config(harness.ARGS.fixtures_dir), harness.ARGS.bin_dir)
        self.d.start()
        self.addCleanup(self.d.close)
        self.strategy_ctl = os.path.join(self.d.tmpdir, "strategy.ctl")
        self.transport_ctl = os.path.join(self.d.tmpdir, "transport.ctl")
        self.d.wait_until(lambda s: connected_nodes(s, "t") == set(NODES), WAIT,
                          "a and b connected")

    def restarted(self, kind, name, count):
        get = topology if kind == "topology" else transport
        return self.d.wait_until(
            lambda s: get(s, name)["restarts"] == count and get(s, name)["state"] == "running",
            WAIT, f"{kind} {name} running after restart {count}")

    def test_crashed_strategy_comes_back(self):
        for i in range(1, 4):
            write(self.strategy_ctl, f"crash {i}\n")
            st = self.restarted("topology", "t", i)
            t = topology(st, "t")
            self.assertIn("fixture: crashed on demand", t["last_failure"])
            self.assertEqual(t["error"], "")
            self.assertIsNone(t["next_restart_in_ms"])
            self.assertEqual(connected_nodes(st, "t"), set(NODES))
        st = self.d.status()
        self.assertTrue(st["ready"])
        self.assertEqual(topology(st, "steady")["restarts"], 0)
        self.assertEqual(transport(st, "flaky")["restarts"], 0)
        text = metrics(self.d)
        self.assertEqual(sample(text, "clusterd_restarts_total", {"topology": "t"}), 3)
        self.assertEqual(sample(text, "clusterd_restarts_total", {"topology": "steady"}), 0)
        self.assertEqual(sample(text, "clusterd_topology_up", {"topology": "t"}), 1)
        log = self.d.log_text()
        for i in range(1, 4):
            self.assertRegex(log, rf"\[topology t\] plugin threw from .*crashed on demand.*; "
                                  rf"restart {i} in \d+ ms")
            self.assertRegex(log, rf"\[topology t\] running \(.*, restart {i}\)")

    def test_crashed_transport_comes_back_and_its_topology_reconnects(self):
        connects_before = self.d.log_text().count("[topology t] connected to a@127.0.0.1")
        for i in range(1, 3):
            write(self.transport_ctl, f"crash {i}\n")
            self.restarted("transport", "flaky", i)
            # The new instance knows no connection: the topology connects its nodes again.
            st = self.d.wait_until(
                lambda s: set(transport(s, "flaky")["connected"]) == set(NODES)
                and connected_nodes(s, "t") == set(NODES), WAIT, "a and b connected again")
            self.assertIn("fixture: crashed on demand", transport(st, "flaky")["last_failure"])
        self.assertEqual(topology(st, "t")["restarts"], 0, "the topology was not restarted")
        self.assertEqual(topology(st, "t")["state"], "running")
        log = self.d.log_text()
        self.assertEqual(log.count("[topology t] connected to a@127.0.0.1"), connects_before + 2)
        self.assertRegex(log, r"\[transport flaky\] plugin threw from .*; restart 2 in \d+ ms")
        self.assertEqual(
            sample(metrics(self.d), "clusterd_restarts_total", {"transport": "flaky"}), 2)

    def test_failing_every_start_backs_off_and_recovers(self):
        write(self.strategy_ctl, "fail\n")  # crashes the running instance; every start fails
        st = self.d.wait_until(
            lambda s: topology(s, "t")["restarts"] >= 1 and topology(s, "t")["state"]
            == "restarting" and topology(s, "t")["error"] == "fixture: start refused",
            WAIT, "start refused, restarting")
        self.assertFalse(st["ready"])
        out = self.d.clusterctl("status").stdout
        self.assertRegex(out, r"topology t \(.*\): (restarting|starting)")
        self.assertRegex(out, r"restarts: \d+( \(next in \d+ ms\))?, last failure: fixture: "
                              r"start refused")
        # Watch a window of 3 s: with 100 ms doubling to a 1 s cap (jitter: half to all of
        # it), at most 7 attempts fit once at the cap; a loop without backoff would make thousands.
        first = topology(st, "t")["restarts"]
        waits = set()
        self.d.wait_until(lambda s: waits.add(topology(s, "t")["next_restart_in_ms"]) or
                          topology(s, "t")["restarts"] >= first + 5, WAIT, "5 more attempts")
        begin = self.d.status()
        t0 = time.monotonic()
        n0 = topology(begin, "t")["restarts"]
        end = self.d.wait_until(lambda s: time.monotonic() - t0 >= 3.0, 10, "a 3 s window",
                                interval=0.2)
        made = topology(end, "t")["restarts"] - n0
        self.assertLessEqual(made, 7, "restarts are not backed off")
        self.assertGreaterEqual(made, 2, "restarts stopped")
        self.assertGreaterEqual(max(w for w in waits if w is not None), 400,
                                f"the backoff did not grow: {sorted(w for w in waits if w)}")
        # A failed start logs once per attempt, with the growing wait.
        waits_logged = [int(w) for w in re.findall(
            r"\[topology t\] fixture: start refused; restart \d+ in (\d+) ms", self.d.log_text())]
        self.assertGreaterEqual(len(waits_logged), 5)
        self.assertLessEqual(max(waits_logged), 1000)
        self.assertGreaterEqual(max(waits_logged), 500)
        # It recovers at the next attempt (within the cap), and ready follows.
        write(self.strategy_ctl, "ok\n")
        st = self.d.wait_until(lambda s: topology(s, "t")["state"] == "running" and s["ready"],
                               WAIT, "running again")
        self.assertEqual(connected_nodes(st, "t"), set(NODES))
        # Stable for restart_max (1 s): the next failure waits restart_backoff again.
        stable_from = time.monotonic()
        self.d.wait_until(lambda s: time.monotonic() - stable_from >= 1.2, 10, "stable 1.2 s",
                          interval=0.2)
        restarts = topology(self.d.status(), "t")["restarts"]
        write(self.strategy_ctl, "crash again\n")
        self.restarted("topology", "t", restarts + 1)
        last_wait = int(re.findall(r"\[topology t\] plugin threw from .*; restart \d+ in (\d+) ms",
                                   self.d.log_text())[-1])
        self.assertLessEqual(last_wait, 100, "the backoff did not reset after a stable period")


# ---- secrets re-read on SIGHUP ------------------------------------------------------------

def restart_lines(log, label):
    return re.findall(rf"\[{label}\] restarting: the resolved value of (.*) changed", log)


class NoTopologyReload(unittest.TestCase):
    """Issue 14, point 8: a reload to an empty file, a blank one or one without topologies is
    rejected and everything keeps running (topologies, transports, the control socket, the
    metrics listener); with allow_no_topologies = true the transports alone are a valid
    configuration."""

    TRANSPORT = ('[transports.cmd]\nplugin = "command"\nconnect = ["/bin/true"]\n')
    CONFIG = ('[clusterd]\nmetrics_listen = "127.0.0.1:0"\n\n' + TRANSPORT +
              '[topologies.t]\nstrategy = "epmd"\n[topologies.t.config]\n'
              f"hosts = {toml_list(NODES)}\nepmd_check = false\n")

    def reload(self, d, text, raw=False):
        """Writes the file (`raw`: exactly `text`, without the harness's control_socket), sends
        SIGHUP and waits for the outcome in the log; returns the log lines it added."""
        before = d.log_text()
        if raw:
            write(d.config_path, text)
        else:
            d.rewrite_config(text)
        d.signal(signal.SIGHUP)
        done = re.compile(r"reload (done|rejected)")
        d.wait_until(lambda s: len(done.findall(d.log_text())) > len(done.findall(before)),
                     WAIT, "the reload's outcome in the log")
        return d.log_text()[len(before):]

    def test_rejected_and_everything_stays(self):
        d = harness.Daemon(self.CONFIG, harness.ARGS.bin_dir)
        d.start()
        self.addCleanup(d.close)
        d.wait_until(lambda s: connected_nodes(s, "t") == set(NODES), WAIT, "a and b connected")
        address = d.status()["metrics"]
        empty = f"{d.config_path}: the file is empty (nothing but blanks and comments)"
        none = f"{d.config_path}: topologies: no [topologies.NAME] table"
        for name, text, raw, problem in [("empty", "", True, empty),
                                         ("blank", "\n \n\t\n", True, empty),
                                         ("comments", "# emptied\n", True, empty),
                                         ("transports only", self.TRANSPORT, False, none)]:
            with self.subTest(name):
                added = self.reload(d, text, raw)
                self.assertIn(problem, added)
                self.assertIn("reload rejected (1 problem(s)); the running configuration stays",
                              added)
                self.assertNotIn("stopping", added)
                st = d.status()  # the same control socket answers
                self.assertEqual(topology(st, "t")["state"], "running")
                self.assertEqual(connected_nodes(st, "t"), set(NODES))
                self.assertEqual(transport(st, "cmd")["state"], "running")
                self.assertEqual(st["metrics"], address)
                self.assertIn("clusterd_", metrics(d))
        # The opt-in: the transport alone runs on; the topology stops.
        added = self.reload(d, "[clusterd]\nallow_no_topologies = true\n" + self.TRANSPORT)
        self.assertIn("reload done", added)
        st = d.status()
        self.assertEqual(st["topologies"], [])
        self.assertEqual(transport(st, "cmd")["state"], "running")


class KubernetesToken(unittest.TestCase):
    """token_file rotated: SIGHUP gives the topology a new instance with the new token."""

    @classmethod
    def setUpClass(cls):
        import test_kubernetes as k8s
        cls.k8s = k8s
        k8s.setUpModule()

    @classmethod
    def tearDownClass(cls):
        cls.k8s.ctl("PUT", "/tokens", [])
        cls.k8s.tearDownModule()

    def test_token_file_rotation(self):
        k8s = self.k8s
        sa = k8s.sa_dir("rotation", token="tok-sa")
        token_file = os.path.join(sa, "rotating-token")
        write(token_file, "tok-A\n")
        k8s.ctl("PUT", "/tokens", ["tok-sa", "tok-A"])

        def table(name, selector, extra=""):
            return f"""
[topologies.{name}]
strategy = "kubernetes"
[topologies.{name}.config]
kubernetes_node_basename = "app"
kubernetes_selector = {toml_string(selector)}
kubernetes_service_account_path = {toml_string(sa)}
kubernetes_ip_lookup_mode = "endpointslices"
polling_interval = "200ms"
{extra}"""
        config = (f"[clusterd]\nplugin_path = {toml_list([harness.ARGS.fixtures_dir])}\n"
                  'log_level = "debug"\n[transports.good]\nplugin = "fx_good_transport"\n' +
                  table("t", "app=rot", f"token_file = {toml_string(token_file)}") +
                  table("other", "app=other"))
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(k8s.API_PORT))
        with harness.Daemon(config, harness.ARGS.bin_dir, env=env) as d:
            d.wait_until(lambda s: all(set(harness.node_states(s, n)) == k8s.SLICE_NODES and
                                       k8s.discovery_error(s, n) == "" for n in ("t", "other")),
                         WAIT, "both topologies discover")
            k8s.ctl("PUT", "/tokens", ["tok-sa", "tok-B"])  # the API server rotated
            d.wait_until(lambda s: "HTTP 401" in k8s.discovery_error(s, "t"), WAIT, "401 shown")
            write(token_file, "tok-B\n")
            d.signal(signal.SIGHUP)
            d.wait_until(lambda s: k8s.discovery_error(s, "t") == "", WAIT, "the new token works")
            self.assertTrue(any(r["authorization"] == "Bearer tok-B"
                                for r in k8s.requests_for("app=rot")))
            st = d.status()
            self.assertEqual(k8s.discovery_error(st, "other"), "")
            log = d.log_text()
            self.assertEqual(restart_lines(log, "topology t"), ["token"])
            self.assertEqual(restart_lines(log, "topology other"), [])
            self.assertEqual(restart_lines(log, "transport good"), [])
            self.assertEqual(log.count("[topology other] running"), 1, "other was restarted")
            self.assertEqual(log.count("[topology t] running"), 2)
            for secret in ("tok-A", "tok-B", "tok-sa"):
                self.assertNotIn(secret, log)


class ErlangCookie(unittest.TestCase):
    """cookie_file corrected: SIGHUP restarts the erlang transport with the new cookie, which
    then meshes real BEAM nodes; its topology stays."""

    def test_cookie_file_rotation(self):
        import beam
        work = tempfile.TemporaryDirectory(prefix="clusterd-cookie-")
        self.addCleanup(work.cleanup)
        cluster = beam.Cluster(work.name)
        self.addCleanup(cluster.close)
        nodes = cluster.start_many(["n1", "n2"])
        cookie_file = os.path.join(work.name, "clusterd-cookie")
        wrong = "wrong-cookie-0123456789"
        write(cookie_file, wrong + "\n")
        config = f"""
[clusterd]
log_level = "debug"

[transports.beam]
plugin = "erlang"
nodes = "local"
epmd_port = {cluster.epmd_port}
cookie_file = {toml_string(cookie_file)}
local_poll_interval = "200ms"

[topologies.local]
strategy = "local_epmd"
[topologies.local.config]
epmd_port = {cluster.epmd_port}
polling_interval = "500ms"
"""
        with harness.Daemon(config, harness.ARGS.bin_dir) as d:
            d.wait_until(lambda s: transport(s, "beam")["state"] == "running", WAIT,
                         "transport running")
            self.assertFalse(cluster.full_mesh(nodes), "meshed with the wrong cookie")
            write(cookie_file, cluster.cookie + "\n")
            d.signal(signal.SIGHUP)
            beam.wait_for(lambda: cluster.full_mesh(nodes), 30, "full mesh", interval=0.2)
            log = d.log_text()
            self.assertEqual(restart_lines(log, "transport beam"), ["cookie"])
            self.assertEqual(restart_lines(log, "topology local"), [])
            self.assertEqual(log.count("[topology local] running"), 1, "the topology restarted")
            self.assertEqual(topology(d.status(), "local")["state"], "running")
            self.assertNotIn(cluster.cookie, log)
            self.assertNotIn(wrong, log)


def gossip_case():
    """test_gossip's GossipCase (network namespaces, root), imported only when run."""
    import test_gossip
    return test_gossip


class GossipKeys(unittest.TestCase):
    """keys_file rotated on one side: after SIGHUP the two daemons hear each other."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("network namespaces need root")
        g = gossip_case()
        self.g = g
        self.case = g.GossipCase("setUp")
        self.case.NAMESPACES = 2
        self.case.setUp()
        self.addCleanup(self.case.tearDown)

    def test_keys_file_rotation(self):
        g, case = self.g, self.case
        a, b = case.net.nodes
        files = {}
        for ns, key in ((a, g.KEY_A), (b, g.KEY_B)):
            files[ns.index] = os.path.join(case.work.name, f"keys-{ns.index}")
            write(files[ns.index], key + "\n")
        opts = 'heartbeat_interval = "200ms"\nkeys_file = '
        da = case.lone_daemon(a, opts + toml_string(files[a.index]))
        db = case.lone_daemon(b, opts + toml_string(files[b.index]))
        for d in (da, db):
            d.wait_until(lambda s: g.count(topology(s, "gossip")["details"],
                                           "dropped.unknown_key") >= 3,
                         WAIT, "heartbeats dropped for an unknown key")
        write(files[b.index], g.KEY_A + "\n")
        db.signal(signal.SIGHUP)
        for d in (da, db):
            d.wait_until(lambda s: g.count(topology(s, "gossip")["details"], "peers") == 1,
                         WAIT, "the peer heard with the new key")
        self.assertEqual(restart_lines(db.log_text(), "topology gossip"), ["keys"])
        self.assertEqual(restart_lines(db.log_text(), "transport beam"), [])
        self.assertEqual(restart_lines(da.log_text(), "topology gossip"), [])
        for d in (da, db):
            self.assertNotIn(g.KEY_A, d.log_text())
            self.assertNotIn(g.KEY_B, d.log_text())


if __name__ == "__main__":
    sys.exit(harness.run_tests([Restarts, NoTopologyReload, KubernetesToken, ErlangCookie,
                                GossipKeys],
                               description=__doc__))
