#!/usr/bin/env python3
"""clusterd with the SHIPPED configuration (conf/clusterd.toml: local_epmd + the erlang
transport, nodes = "local") against real BEAM nodes.

Only what points the configuration at the test's private processes changes (shipped_config):
the cookie file and the epmd port; the harness sets the control socket. Every timing default
stays, so these tests check what a user gets: the strategy does not poll (polling_interval =
"infinity") and learns every change from the transport, which polls the epmd on its adaptive
schedule. A private epmd on a free port, nodes on 127.0.0.1, the mesh checked by rpc from an
independent hidden probe.
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from beam import ClusterTestCase  # noqa: E402
from harness import toml_string, topology, transport  # noqa: E402

SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf",
                       "clusterd.toml")

def shipped_config(cluster, conf=SHIPPED, control_socket=None):
    """`conf` (default: the shipped one) pointed at `cluster`: cookie_file and the transport's
    and the topology's epmd_port added; control_socket replaced, or removed when None (the
    harness adds its own). Each edit must apply exactly once."""
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    socket_line = "" if control_socket is None else f"control_socket = {toml_string(control_socket)}"
    edits = [
        (r'(?m)^control_socket = "[^"\n]*"[^\n]*$', socket_line),
        (r'(?m)^(\[transports\.beam\]\n)',
         f"\\1cookie_file = {toml_string(cluster.cookie_file)}\nepmd_port = {cluster.epmd_port}\n"),
        (r'(?m)^(\[topologies\.local\.config\]\n)', f"\\1epmd_port = {cluster.epmd_port}\n"),
    ]
    for pattern, repl in edits:
        text, n = re.subn(pattern, lambda _m, r=repl: _m.expand(r), text)
        if n != 1:
            raise ValueError(f"{conf}: cannot patch {pattern!r} (found {n} times)")
    return text


class ShippedConfigTest(ClusterTestCase):
    WORK_PREFIX = "clusterd-shipped-"

    def daemon(self):
        return super().daemon(shipped_config(self.cluster))

    def test_the_strategy_does_not_poll_and_rescans_when_a_node_comes(self):
        nodes = self.cluster.start_many(["q1", "q2"])
        d = self.daemon()
        self.wait_mesh(nodes)
        # Stable: no discovery round for longer than local_epmd's default interval (5 s)
        # would allow; only the transport asks the epmd.
        d.wait_until(lambda s: topology(s, "local")["last_discovery_ms_ago"] >= 6000,
                     timeout=30, what="6 s without a local_epmd round")
        nodes.append(self.cluster.start("q3"))
        self.wait_mesh(nodes)
        # The transport found q3, and its report made the strategy rescan and discover it.
        d.wait_until(lambda s: "q3@127.0.0.1" in [n["name"] for n in topology(s, "local")["nodes"]],
                     timeout=10, what="local_epmd to discover q3")

    def test_launched_together_then_a_later_node_then_a_restarted_one(self):
        names = ["s1", "s2", "s3"]
        nodes = [self.cluster.start(n, wait=False) for n in names]  # launched with clusterd
        d = self.daemon()
        self.wait_mesh(nodes)
        # Later nodes are found by the transport's poll; the strategy rescans on its report.
        nodes.append(self.cluster.start("s4"))
        self.wait_mesh(nodes)
        self.cluster.kill("s2@127.0.0.1")
        d.wait_until(lambda s: "s2@127.0.0.1" not in transport(s, "beam")["connected"], timeout=20)
        self.cluster.start("s2")
        self.wait_mesh(nodes)
        st = d.status()
        self.assertEqual(topology(st, "local")["state"], "running")
        self.assertNotIn("discovery failed", d.log_text())


if __name__ == "__main__":
    sys.exit(harness.run_tests([ShippedConfigTest], description=__doc__))
