#!/usr/bin/env python3
"""Integration test: the rancher strategy in the real clusterd against a local HTTP server
(tests/servers/http_server.py) serving the recorded Rancher 1.x metadata reply
(tests/fixtures/rancher/self-service.json) as /latest/self/service, with the `command`
transport recording every connect and disconnect.

Checks: node_basename@IP for the containers with an IP, the one without is skipped and shown
in the status; a container that appears is connected, one that leaves is disconnected
(disconnect = "removed"); an HTTP error, a malformed body and a dead server keep the last
good set and show as discovery_error.

    test_rancher.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, node_states, topology  # noqa: E402
from local_servers import HttpServer  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402
from test_dns import command_transport, topology_table  # noqa: E402

WAIT = 20.0
FIXTURE = os.path.join(HERE, "..", "fixtures", "rancher", "self-service.json")
N1, N2, N3 = "myapp@10.42.0.11", "myapp@10.42.0.12", "myapp@10.42.0.13"


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


class Rancher(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-rancher-")
        cls.web = None
        cls.d = None
        try:
            with open(FIXTURE, encoding="utf-8") as f:
                cls.fixture = json.load(f)
            cls.served = os.path.join(cls.work.path, "www", "latest", "self", "service.json")
            os.makedirs(os.path.dirname(cls.served))
            cls.serve(cls.fixture)
            cls.web = HttpServer(os.path.join(cls.work.path, "www"), cls.work.path)
            config = command_transport(cls.work) + "\n" + topology_table(
                "r", "Cluster.Strategy.Rancher", disconnect="removed", node_basename="myapp",
                metadata_url=cls.web.url("/latest/self/service"), polling_interval="200ms",
                request_timeout="2s")
            cls.d = harness.Daemon(config, harness.ARGS.bin_dir)
            cls.d.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.close()
        if cls.web is not None:
            cls.web.stop()
        cls.work.close()

    @classmethod
    def serve(cls, doc_or_text):
        text = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text)
        tmp = cls.served + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, cls.served)

    def wait_nodes(self, expected, what):
        expected = set(expected)
        return self.d.wait_until(lambda s: set(node_states(s, "r")) == expected and
                                 connected_nodes(s, "r") == expected, WAIT, what)

    def with_container(self, ip, name):
        doc = json.loads(json.dumps(self.fixture))
        doc["containers"].append({"name": name, "primary_ip": ip, "ips": [ip],
                                  "state": "running"})
        return doc

    def assert_kept(self, disconnects_before):
        st = self.d.status()
        self.assertEqual(connected_nodes(st, "r"), {N1, N2}, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), disconnects_before)

    def test_1_fixture_nodes_and_the_container_without_ip_skipped(self):
        st = self.wait_nodes({N1, N2}, "the two running containers")
        t = topology(st, "r")
        self.assertEqual((t["state"], t["error"], t["discovery_error"]), ("running", "", ""))
        self.assertEqual(t["details"]["containers without IP"], "prod-myapp-3: no IP")
        self.assertEqual(self.d.log_text().count("skipping containers without a usable IP"), 1)

    def test_2_container_added_then_removed(self):
        self.serve(self.with_container("10.42.0.13", "prod-myapp-4"))
        self.wait_nodes({N1, N2, N3}, "the new container connected")
        self.serve(self.fixture)
        self.wait_nodes({N1, N2}, "the new container gone")
        poll(lambda: self.work.runs_for("disconnect", N3) == 1, WAIT, "its disconnect")

    def test_3_http_error_and_malformed_body_keep_the_set(self):
        self.wait_nodes({N1, N2}, "the fixture's nodes")
        before = len(self.work.argv_records("disconnect"))
        os.remove(self.served)  # 404
        st = self.d.wait_until(lambda s: "HTTP 404" in topology(s, "r")["discovery_error"],
                               WAIT, "the 404 reported")
        self.assert_kept(before)
        self.serve('{"containers": [')
        st = self.d.wait_until(
            lambda s: "malformed Rancher metadata reply" in topology(s, "r")["discovery_error"],
            WAIT, "the malformed body reported")
        self.assert_kept(before)
        self.serve(self.fixture)
        self.d.wait_until(lambda s: topology(s, "r")["discovery_error"] == "", WAIT,
                          "the error cleared")
        self.assertEqual(self.d.log_text().count("HTTP 404"), 1, "logged once per change")
        self.assert_kept(before)

    def test_4_dead_server_keeps_the_set(self):
        self.wait_nodes({N1, N2}, "the fixture's nodes")
        before = len(self.work.argv_records("disconnect"))
        self.web.stop()
        self.d.wait_until(lambda s: "request to the Rancher metadata service failed" in
                          topology(s, "r")["discovery_error"], WAIT, "the dead server reported")
        self.assert_kept(before)


def main(argv=None):
    return harness.run_tests([Rancher], argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
