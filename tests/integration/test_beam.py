#!/usr/bin/env python3
"""clusterd against real BEAM nodes: local_epmd + the erlang transport (nodes = "local"), and
the partial-answer rule of erlang_hosts and epmd (a host whose EPMD refuses never stops the
others' nodes from being connected, and shows in the status).

Every node, the epmd and clusterd are started by the test on 127.0.0.1 (a private epmd on a
free port, bound to 127.0.0.1 only, so nothing touches a system epmd and 127.0.0.2 refuses);
the mesh is checked by rpc from an independent hidden probe node, not only through clusterd.
"""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from beam import ClusterTestCase  # noqa: E402
from harness import node_states, toml_string, topology, transport  # noqa: E402



def config(cluster, cookie_file=None, extra=""):
    return f"""
[clusterd]
log_level = "debug"

[transports.beam]
plugin = "erlang"
nodes = "local"
epmd_port = {cluster.epmd_port}
cookie_file = {toml_string(cookie_file or cluster.cookie_file)}
local_poll_interval = "200ms"

[topologies.local]
strategy = "local_epmd"
[topologies.local.config]
epmd_port = {cluster.epmd_port}
polling_interval = "500ms"
{extra}
"""


class BeamTest(ClusterTestCase):
    def test_full_mesh_3_and_5(self):
        nodes = self.cluster.start_many(["n1", "n2", "n3"])
        d = self.daemon(config(self.cluster))
        self.wait_mesh(nodes)
        nodes += self.cluster.start_many(["n4", "n5"])  # joined by the next local_epmd scan
        self.wait_mesh(nodes)
        st = d.status()
        self.assertEqual(transport(st, "beam")["state"], "running")
        self.assertEqual(topology(st, "local")["state"], "running")

    def test_killed_node_is_reported_and_reconnected_after_restart(self):
        nodes = self.cluster.start_many(["a", "b", "c"])
        d = self.daemon(config(self.cluster))
        self.wait_mesh(nodes)
        self.cluster.kill("c@127.0.0.1")
        d.wait_until(lambda s: "c@127.0.0.1" not in transport(s, "beam")["connected"], timeout=20)
        self.cluster.start("c")
        self.wait_mesh(nodes)

    def test_daemon_kill_9_drops_no_connection_and_relearns(self):
        nodes = self.cluster.start_many(["a", "b", "c"])
        d = self.daemon(config(self.cluster))
        self.wait_mesh(nodes)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        self.assertTrue(self.cluster.full_mesh(nodes), "the mesh survives clusterd's death")
        d2 = self.daemon(config(self.cluster))
        d2.wait_until(lambda s: len(transport(s, "beam")["connected"]) >= 2, timeout=20)
        self.assertTrue(self.cluster.full_mesh(nodes))

    def test_wrong_cookie_is_a_clear_error(self):
        self.cluster.start_many(["a", "b"])
        wrong = os.path.join(self.work.name, "wrong-cookie")
        with open(wrong, "w") as f:
            f.write("not-the-cookie")
        d = self.daemon(config(self.cluster, cookie_file=wrong))
        # The error names the node (by its epmd name until the handshake tells its full name).
        pattern = re.compile(r"(a@127\.0\.0\.1|'a' \(local epmd\)).*wrong cookie")
        d.wait_until(lambda s: pattern.search(d.log_text()), timeout=20, what="a wrong-cookie error")
        self.assertIsNone(d.proc.poll(), "clusterd keeps running")
        self.assertNotIn("not-the-cookie", d.log_text(), "the cookie is never logged")

    def test_hosts_erlang_syntax_error_fails_only_its_topology(self):
        nodes = self.cluster.start_many(["a", "b"])
        hosts = os.path.join(self.work.name, "hosts.erlang")
        with open(hosts, "w") as f:
            f.write("% our hosts\n'127.0.0.1'.\n'localhost'\n'oops.\n")
        extra = f"""
[topologies.hosts]
strategy = "Cluster.Strategy.ErlangHosts"
[topologies.hosts.config]
hosts_file = {toml_string(hosts)}
epmd_port = {self.cluster.epmd_port}
"""
        d = self.daemon(config(self.cluster, extra=extra))
        st = d.wait_until(lambda s: topology(s, "hosts")["state"] == "restarting", timeout=10)
        self.assertRegex(topology(st, "hosts")["error"], re.escape(hosts) + r":[34]\b")
        self.wait_mesh(nodes)  # the other topology goes on
        self.assertEqual(topology(d.status(), "local")["state"], "running")

    def strategy_only(self, strategy, config_lines):
        """The erlang transport with one topology of `strategy` (no local_epmd topology: the
        mesh can only come from it)."""
        return "\n".join([
            "[clusterd]", 'log_level = "debug"', "", "[transports.beam]", 'plugin = "erlang"',
            'nodes = "local"', f"epmd_port = {self.cluster.epmd_port}",
            f"cookie_file = {toml_string(self.cluster.cookie_file)}",
            'local_poll_interval = "200ms"', "", "[topologies.t]", f"strategy = {toml_string(strategy)}",
            'transport = "beam"', "[topologies.t.config]", f"epmd_port = {self.cluster.epmd_port}",
            *config_lines, ""])

    def test_erlang_hosts_partial_round_adds_the_answering_hosts_nodes(self):
        nodes = self.cluster.start_many(["a", "b"])
        hosts = os.path.join(self.work.name, "hosts.erlang")
        with open(hosts, "w") as f:
            f.write("'127.0.0.2'.\n'127.0.0.1'.\n")  # 127.0.0.2 refuses: no epmd there
        d = self.daemon(self.strategy_only("erlang_hosts", [
            f"hosts_file = {toml_string(hosts)}", 'timeout = "300ms"', 'epmd_timeout = "2s"']))
        self.wait_mesh(nodes)
        refused = f"127.0.0.2:{self.cluster.epmd_port}: connection refused"
        st = d.wait_until(lambda s: refused in topology(s, "t")["details"].get(
            "epmd unreachable", ""), timeout=10, what="the refusing host in the status")
        self.assertEqual(topology(st, "t")["discovery_error"], "")
        nodes += self.cluster.start_many(["c"])  # found by a later round
        self.wait_mesh(nodes)
        self.assertEqual(d.log_text().count(f"EPMD query failed (keeping the names these hosts "
                                            f"last reported): {refused}"), 1, "logged once")

    def test_epmd_strategy_connects_the_reachable_hosts_and_shows_the_refusing_one(self):
        nodes = self.cluster.start_many(["a", "b"])
        d = self.daemon(self.strategy_only("epmd", [
            'hosts = ["a@127.0.0.1", "b@127.0.0.1", "x@127.0.0.2", "late@127.0.0.1"]']))
        self.wait_mesh(nodes)
        port = self.cluster.epmd_port
        st = d.wait_until(
            lambda s: topology(s, "t")["details"].get("epmd unreachable") ==
            f"127.0.0.2:{port}: connection refused" and
            topology(s, "t")["details"].get("not registered in epmd") == "late@127.0.0.1",
            timeout=10, what="the refusing host and the missing node in the status")
        self.assertIn("x@127.0.0.2", node_states(st, "t"))  # desired, retried with backoff
        nodes += self.cluster.start_many(["late"])  # the host's reconciler retries it
        self.wait_mesh(nodes)

    def test_managed_node_absent_at_start(self):
        d = self.daemon(config(self.cluster))
        d.wait_until(lambda s: transport(s, "beam")["state"] == "running", timeout=10)
        nodes = self.cluster.start_many(["late1", "late2"])
        self.wait_mesh(nodes)


if __name__ == "__main__":
    sys.exit(harness.run_tests([BeamTest], description=__doc__))
