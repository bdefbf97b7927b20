#!/usr/bin/env python3
"""Integration test: the third-party strategy consul (plugins/third_party/clusterd-plugin-consul),
built out of tree against this build's installed SDK (as test_ec2.py builds ec2), loaded by the
real clusterd through plugin_path, against the Consul stand-in of consul_standin.py on
127.0.0.1 (the real Consul is not packaged in Debian; the stand-in's docstring lists the fields
and behaviours it covers). The `command` transport records every connect and disconnect.

Checks: Health with passing (a critical instance is left out) through blocking queries
(index/wait carried, a change connected while a query was blocked), a removed instance
disconnected; Catalog and Agent under the alias Cluster.Strategy.Consul with a template over
dc and a tag; Multisite over a list of datacenters and over all of /v1/catalog/datacenters;
500 "No cluster leader", a garbage body and a hung agent (timeout) keep the last good set and
show as discovery_error; an index that goes backwards is reset (the next query is a plain
read); no X-Consul-Index: polled; polling with blocking = false; the ACL token from token_file
re-read after a 403 (rotation) and from access_token_file, never in the log or status; HTTPS
with a CA and a client certificate; self-registration with a TTL check kept passing and
deregistered at a clean stop; `clusterd check` refuses a bad list_using and template; the
shipped example passes check.

    test_consul.py --bin-dir <dir of clusterd, clusterctl> --build-dir <clusterd build tree>
                   --cmake <cmake>
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from consul_standin import ConsulStandin  # noqa: E402
from harness import connected_nodes, node_states, toml_list, toml_string, topology  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402

WAIT = 20.0
TOKEN_1, TOKEN_2 = "b1gsecret-acl-token-0001", "b1gsecret-acl-token-0002"


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)
    build_plugin()


def build_plugin():
    """The plugin built out of tree against this build's SDK (harness.build_third_party)."""
    Consul.plugin_dir = harness.build_third_party("consul")


def toml_value(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return toml_list(v)
    return toml_string(v)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=30)


class Consul(unittest.TestCase):
    plugin_dir = None

    def setUp(self):
        self.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-consul-")
        self.consul = None
        self.d = None

    def tearDown(self):
        if self.d is not None:
            self.d.close(keep=harness.any_test_failed())
        if self.consul is not None:
            self.consul.stop()
        self.work.close()

    def standin(self, **kwargs):
        self.consul = ConsulStandin(**kwargs)
        return self.consul

    def config_text(self, strategy="consul", local_node=None, **config):
        base = {"base_url": self.consul.url, "service_name": "web", "node_basename": "app",
                "polling_interval": "200ms", "request_timeout": "2s", "wait": "5s"}
        base.update(config)
        base = {k: v for k, v in base.items() if v is not None}
        transport = ["[transports.cmd]", 'plugin = "command"',
                     f"connect = {toml_list([self.work.cmd, 'connect'])}",
                     f"disconnect = {toml_list([self.work.cmd, 'disconnect'])}"]
        if local_node:
            transport.append(f"local_node = {toml_string(local_node)}")
        return "\n".join([
            "[clusterd]", f"plugin_path = {toml_list([self.plugin_dir])}", ""] + transport + [
            "", "[topologies.c]", f"strategy = {toml_string(strategy)}", 'transport = "cmd"',
            'disconnect = "removed"', 'backoff_initial = "100ms"', 'backoff_max = "200ms"',
            "[topologies.c.config]"] + [f"{k} = {toml_value(v)}" for k, v in base.items()]) + "\n"

    def start(self, **config):
        self.d = harness.Daemon(self.config_text(**config), harness.ARGS.bin_dir)
        self.d.start()

    def wait_nodes(self, expected, what):
        expected = set(expected)
        return self.d.wait_until(lambda s: set(node_states(s, "c")) == expected and
                                 connected_nodes(s, "c") == expected, WAIT, what)

    def wait_error(self, text, what):
        return self.d.wait_until(lambda s: text in topology(s, "c")["discovery_error"], WAIT,
                                 what)

    def wait_no_error(self, what):
        return self.d.wait_until(lambda s: topology(s, "c")["discovery_error"] == "", WAIT, what)

    def assert_no_secret(self, *values):
        status_text = json.dumps(self.d.status())
        for value in values:
            self.assertNotIn(value, self.d.log_text())
            self.assertNotIn(value, status_text)

    def test_1_health_passing_blocking_queries_and_removal(self):
        c = self.standin()
        c.add("web-1", "10.0.1.1")
        c.add("web-2", "10.0.1.2", service_address="10.9.1.2")  # ServiceAddress wins
        c.add("web-3", "10.0.1.3", status="critical")
        c.add("db-1", "10.0.2.1", service="db")
        self.start(list_using=["health"], passing=True)
        self.wait_nodes({"app@10.0.1.1", "app@10.9.1.2"}, "the passing web instances")
        # A blocking query is waiting (index + wait) when the change comes.
        poll(lambda: any(r["query"].get("index") for r in c.seen("/v1/health/service/web")),
             WAIT, "a blocking query")
        blocked = [r for r in c.seen("/v1/health/service/web") if r["query"].get("index")]
        self.assertEqual(blocked[0]["query"].get("wait"), "5000ms")
        self.assertEqual(blocked[0]["query"].get("passing"), "true")
        c.set_status("web-3", "passing")
        self.wait_nodes({"app@10.0.1.1", "app@10.9.1.2", "app@10.0.1.3"}, "web-3 passing")
        c.remove("web-1")
        self.wait_nodes({"app@10.9.1.2", "app@10.0.1.3"}, "web-1 gone")
        poll(lambda: self.work.runs_for("disconnect", "app@10.0.1.1") == 1, WAIT,
             "its disconnect")
        # Blocking: far fewer requests than 200 ms polling would make in that time.
        requests = c.seen("/v1/health/service/web")
        span = requests[-1]["time"] - requests[0]["time"]
        self.assertLess(len(requests), 6 + span / 0.2 / 2, requests)

    def test_2_catalog_and_agent_under_the_libcluster_name_with_template_and_tag(self):
        c = self.standin()
        c.add("web-1", "10.0.1.1", tags=["v1"])
        c.add("web-2", "10.0.1.2", tags=["v2"])
        c.add("web-a", "10.0.1.9", node="agent-1", tags=["v1"], service_address="10.0.3.9")
        c.add("web-b", "10.0.1.8", node="agent-1", tags=["v2"], service_address="10.0.3.8")
        self.start(strategy="Cluster.Strategy.Consul", tag="v1", dc="dc1",
                   list_using=["Cluster.Strategy.Consul.Catalog", "Agent"],
                   node_name_template="<%= node_basename %>-<%= dc %>@<%= ip %>")
        self.wait_nodes({"app-dc1@10.0.1.1", "app-dc1@10.0.3.9"},
                        "catalog's and the agent's v1 instances")
        catalog = c.seen("/v1/catalog/service/web")[0]["query"]
        self.assertEqual((catalog.get("dc"), catalog.get("tag")), ("dc1", "v1"))
        self.assertTrue(c.seen("/v1/agent/services"))

    def test_2b_selection_parameters_reach_the_agent(self):
        # filter, near, namespace and partition go to Consul as its query parameters, decoded
        # by the stand-in as Consul would (it does not evaluate them: Consul does).
        c = self.standin()
        c.add("web-1", "10.0.1.1")
        expression = 'Service.Meta.role == "app" and "v1" in Service.Tags'
        self.start(list_using=["health", "agent"], filter=expression, near="_agent",
                   namespace="team-a", partition="part-1")
        self.wait_nodes({"app@10.0.1.1"}, "the instance")
        health = c.seen("/v1/health/service/web")[0]["query"]
        self.assertEqual({k: health.get(k) for k in ("filter", "near", "ns", "partition")},
                         {"filter": expression, "near": "_agent", "ns": "team-a",
                          "partition": "part-1"})
        agent = c.seen("/v1/agent/services")[0]["query"]
        self.assertEqual((agent.get("filter"), agent.get("ns"), agent.get("near")),
                         (expression, "team-a", None))

    def test_3_multisite_listed_and_all_datacenters(self):
        c = self.standin(datacenters=("dc1", "dc2", "dc3"))
        c.add("web-1", "10.0.1.1", dc="dc1")
        c.add("web-2", "10.0.2.1", dc="dc2")
        c.add("web-3", "10.0.3.1", dc="dc3")
        self.start(list_using=["multisite"], datacenters=["dc1", "dc3"],
                   endpoints=["catalog", "health"])
        self.wait_nodes({"app@10.0.1.1", "app@10.0.3.1"}, "dc1 and dc3")
        self.assertEqual(c.seen("/v1/catalog/datacenters"), [])
        self.d.close()
        self.d = None
        self.start(list_using=["Cluster.Strategy.Consul.Multisite"], endpoints=["health"])
        st = self.wait_nodes({"app@10.0.1.1", "app@10.0.2.1", "app@10.0.3.1"},
                             "every datacenter")
        self.assertEqual(topology(st, "c")["details"]["datacenters"], "dc1, dc2, dc3")
        c.add("web-4", "10.0.2.2", dc="dc2")
        self.wait_nodes({"app@10.0.1.1", "app@10.0.2.1", "app@10.0.2.2", "app@10.0.3.1"},
                        "a new instance in dc2")

    def test_4_failures_keep_the_last_good_set(self):
        c = self.standin()
        c.add("web-1", "10.0.1.1")
        c.add("web-2", "10.0.1.2")
        both = {"app@10.0.1.1", "app@10.0.1.2"}
        self.start(list_using=["catalog"], request_timeout="1s")
        self.wait_nodes(both, "both instances")
        for mode, text in (("500", "answered HTTP 500: No cluster leader"),
                           ("garbage", "malformed reply: not JSON"),
                           ("hang", "failed")):
            c.set_mode(mode)
            st = self.wait_error(text, f"the {mode} reported")
            self.assertEqual(connected_nodes(st, "c"), both, st)
            self.assertEqual(topology(st, "c")["state"], "running")
            c.set_mode(None)
            self.wait_no_error(f"recovered from {mode}")
        self.assertEqual(self.work.argv_records("disconnect"), [])
        # The index goes backwards: the next query is a plain read (no index), then blocks again.
        count = len(c.seen("/v1/catalog/service/web"))
        c.rewind_index()
        poll(lambda: any(not r["query"].get("index")
                         for r in c.seen("/v1/catalog/service/web")[count:]), WAIT,
             "a plain read after the reset")
        c.add("web-3", "10.0.1.3")
        self.wait_nodes(both | {"app@10.0.1.3"}, "a change after the reset")
        # No X-Consul-Index: the query is polled (every polling_interval), not spun.
        c.set_mode("no-index")
        c.remove("web-3")
        self.wait_nodes(both, "web-3 gone, without an index")
        count = len(c.seen("/v1/catalog/service/web"))
        poll(lambda: len(c.seen("/v1/catalog/service/web")) >= count + 3, WAIT, "polls")
        window = c.seen("/v1/catalog/service/web")[count:count + 3]
        self.assertGreater(window[-1]["time"] - window[0]["time"], 0.3, window)

    def test_5_polling_mode(self):
        c = self.standin()
        c.add("web-1", "10.0.1.1")
        self.start(list_using=["health"], blocking=False)
        self.wait_nodes({"app@10.0.1.1"}, "the instance")
        poll(lambda: len(c.seen("/v1/health/service/web")) >= 3, WAIT, "three polls")
        c.add("web-2", "10.0.1.2")
        self.wait_nodes({"app@10.0.1.1", "app@10.0.1.2"}, "polled change")
        self.assertTrue(all(not r["query"].get("index") for r in c.seen("/v1/health/service/")))

    def test_6_token_file_rotation_after_403_and_access_token_file(self):
        c = self.standin(token=TOKEN_1)
        c.add("web-1", "10.0.1.1")
        self.work.write("token", TOKEN_1 + "\n")
        self.start(list_using=["health"], token_file=self.work.file("token"), wait="2s")
        self.wait_nodes({"app@10.0.1.1"}, "the instance, with the token")
        # The token rotates: the agent refuses the old one before the file changes. (web-2 is
        # added only once the 403 is seen: a query already blocking with the old token would
        # rightly return it.)
        c.set_token(TOKEN_2)
        st = self.wait_error("answered HTTP 403: ACL not found", "the 403 reported")
        self.assertEqual(connected_nodes(st, "c"), {"app@10.0.1.1"})
        c.add("web-2", "10.0.1.2")
        self.work.write("token", TOKEN_2 + "\n")
        self.wait_nodes({"app@10.0.1.1", "app@10.0.1.2"}, "working with the rotated token")
        self.wait_no_error("the 403 cleared")
        tokens = {r["token"] for r in c.seen("/v1/health/service/web")}
        self.assertEqual(tokens, {TOKEN_1, TOKEN_2})
        self.assert_no_secret(TOKEN_1, TOKEN_2)
        self.d.close()
        # access_token_file: read by clusterd at start.
        self.work.write("access_token", TOKEN_2 + "\n")
        self.start(list_using=["catalog"], access_token_file=self.work.file("access_token"))
        self.wait_nodes({"app@10.0.1.1", "app@10.0.1.2"}, "with access_token_file")
        self.assertEqual({r["token"] for r in c.seen("/v1/catalog/")}, {TOKEN_2})
        self.assert_no_secret(TOKEN_2)

    def test_7_https_with_ca_and_client_certificate(self):
        d = tempfile.mkdtemp(prefix="clusterd-consul-tls-", dir=self.work.path)
        ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test-ca")

        def issue(name, san):
            key, csr, cert = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "pem"))
            ext = os.path.join(d, f"{name}.ext")
            with open(ext, "w", encoding="utf-8") as f:
                f.write(f"subjectAltName={san}\n")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
            openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext)
            return cert, key

        server_cert, server_key = issue("server", "IP:127.0.0.1")
        client_cert, client_key = issue("client", "DNS:clusterd")
        c = self.standin(tls=(server_cert, server_key, ca))
        c.add("web-1", "10.0.1.1")
        self.start(list_using=["health"], ca_file=ca, client_cert_file=client_cert,
                   client_key_file=client_key)
        self.wait_nodes({"app@10.0.1.1"}, "over HTTPS with a client certificate")
        c.add("web-2", "10.0.1.2")
        self.wait_nodes({"app@10.0.1.1", "app@10.0.1.2"}, "a change over HTTPS")

    def test_8_self_registration_ttl_and_deregistration(self):
        c = self.standin()
        c.add("web-1", "10.0.1.1")
        self.start(list_using=["health"], passing=True, register=True, check_ttl="1500ms",
                   register_port=9100, local_node="app@10.0.1.50", node_basename=None)
        # The node_basename comes from the transport's local node; the registered instance
        # (this node itself) is never connected.
        st = self.wait_nodes({"app@10.0.1.1"}, "the other instance")
        registers = c.seen("/v1/agent/service/register", "PUT")
        self.assertEqual(len(registers), 1)
        body = json.loads(registers[0]["body"])
        self.assertEqual((body["ID"], body["Name"], body["Address"], body["Port"]),
                         ("web-app@10.0.1.50", "web", "10.0.1.50", 9100))
        self.assertEqual(body["Check"]["TTL"], "1500ms")
        self.assertIn("web-app@10.0.1.50", c.instances)
        poll(lambda: len(c.seen("/v1/agent/check/pass/", "PUT")) >= 2, WAIT, "TTL passes")
        self.assertIn("registered as web-app@10.0.1.50",
                      topology(st, "c")["details"]["registration"])
        self.d.stop()
        self.assertEqual(len(c.seen("/v1/agent/service/deregister/web-app%4010.0.1.50", "PUT")),
                         1, c.requests[-3:])
        self.assertNotIn("web-app@10.0.1.50", c.instances)

    def test_9_check_refuses_bad_endpoints_and_templates(self):
        self.standin()
        for config, key, message in [
                ({"list_using": ["health", "kv"]}, "list_using", '"kv" is not an endpoint'),
                ({"list_using": ["multisite"], "endpoints": ["multisite"]}, "endpoints",
                 "multisite cannot run inside multisite"),
                ({"node_name_template": "<%= node_basename %>@<%= host %>"},
                 "node_name_template", 'unknown variable "host"'),
                ({"node_name_template": "<% code %>"}, "node_name_template", "only <%= ip %>"),
                ({"client_cert_file": "/x.pem"}, "client_cert_file", "needs 'client_key_file'"),
                ({"access_token": "tok-7f3a9c-secret", "token_file": "/t"}, "access_token",
                 "token_file")]:
            with self.subTest(key=key, config=config):
                rc, out = harness.check_config(self.config_text(**config), harness.ARGS.bin_dir)[:2]
                self.assertEqual(rc, 1, out)
                self.assertIn(f"topologies.c.config.{key}", out)
                self.assertIn(message, out)
                self.assertNotIn("tok-7f3a9c", out)
        rc, out = harness.check_config(self.config_text(list_using=["health"]),
                                       harness.ARGS.bin_dir)[:2]
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.consul.requests, [])

    def test_10_the_shipped_example_passes_check(self):
        example = os.path.join(HERE, "..", "..", "conf", "plugins", "consul.toml.example")
        with open(example, encoding="utf-8") as f:
            text = f.read()
        self.assertNotRegex(text, r"(?m)^\[clusterd\]")
        rc, out = harness.check_config(
            f"[clusterd]\nplugin_path = {toml_list([self.plugin_dir])}\n\n{text}",
            harness.ARGS.bin_dir)[:2]
        self.assertEqual(rc, 0, out)


def main(argv=None):
    def add_arguments(parser):
        parser.add_argument("--build-dir", required=True, help="the clusterd build tree")
        parser.add_argument("--cmake", default="cmake", help="cmake to build the plugin with")
    return harness.run_tests([Consul], argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
