#!/usr/bin/env python3
"""Integration test: the DNS strategies (dns_poll, kubernetes_dns, kubernetes_dnssrv) in the
real clusterd against a real dnsmasq on 127.0.0.1 (started by the test, answering only from its
own hosts file and --srv-host options), with the `command` transport recording every connect
and disconnect (the helper script of test_command_transport.py).

Checks: A, AAAA and SRV answers give libcluster's node names (IPv6 compressed); a removed
record is disconnected (disconnect = "removed") and a re-added one connected again; NXDOMAIN, a
dead resolver and a resolver that never answers keep the last good set (no disconnect), are
shown as discovery_error and logged once; partial answers (A answered, AAAA refused by dnsmasq)
connect the answered part, keep the failed part's nodes and name it in the status; an SRV name
that starts failing keeps its nodes; a round every 5 s by default whatever the TTL, TTL-driven
only with follow_ttl; CLUSTER_DOMAIN; bad configuration fails the topology with the key and its
position.

    test_dns.py --bin-dir <dir of clusterd, clusterctl>
"""

import os
import re
import socket
import sys
import threading
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import connected_nodes, node_states, toml_list, toml_string, topology  # noqa: E402
from local_servers import Dnsmasq  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402

WAIT = 20.0


def command_transport(work, with_list=True):
    lines = ["[transports.cmd]", 'plugin = "command"',
             f"connect = {toml_list([work.cmd, 'connect'])}",
             f"disconnect = {toml_list([work.cmd, 'disconnect'])}"]
    if with_list:
        lines += [f"list_nodes = {toml_list([work.cmd, 'list'])}", 'resync_interval = "300ms"']
    return "\n".join(lines) + "\n"


def topology_table(name, strategy, disconnect=None, **config):
    lines = [f"[topologies.{name}]", f"strategy = {toml_string(strategy)}",
             'transport = "cmd"', 'backoff_initial = "100ms"', 'backoff_max = "200ms"']
    if disconnect:
        lines.append(f"disconnect = {toml_string(disconnect)}")
    lines.append(f"[topologies.{name}.config]")
    lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else toml_string(v)}"
              for k, v in config.items()]
    return "\n".join(lines) + "\n"


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


class CountingUdp:
    """A resolver that never answers: counts the queries it swallows (on a thread)."""

    def __init__(self, port):
        self.count = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.1)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                self.sock.recvfrom(4096)
                self.count += 1
            except socket.timeout:
                pass
            except OSError:
                return

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


class WithDns(unittest.TestCase):
    """Base: one Workdir (helper scripts), one dnsmasq and one daemon per class."""

    HOSTS = {}
    SRV = {}
    TTL = 0
    ENV = None
    HOST_KEYS = ""  # more [clusterd] keys

    @classmethod
    def config(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-dns-")
        cls.dns = None
        cls.d = None
        try:
            cls.dns = Dnsmasq(cls.work.path, local_domains=("test", "cluster.test"), ttl=cls.TTL,
                              srv=cls.SRV, hosts=cls.HOSTS)
            env = dict(os.environ, **cls.ENV) if cls.ENV else None
            cls.d = harness.Daemon('[clusterd]\nlog_level = "debug"\n' + cls.HOST_KEYS + "\n" +
                                   cls.config(),
                                   harness.ARGS.bin_dir, env=env)
            cls.d.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.close()
        if cls.dns is not None:
            cls.dns.stop()
        cls.work.close()

    def wait_nodes(self, name, expected, what):
        """Waits until topology `name` has exactly `expected` nodes, all connected."""
        expected = set(expected)
        return self.d.wait_until(
            lambda s: set(node_states(s, name)) == expected and
            connected_nodes(s, name) == expected, WAIT, what)

    def queries_logged(self, name):
        """How many queries for `name` dnsmasq has logged so far."""
        return self.dns.log_tail(100000).count(f"] {name} from 127.0.0.1")


# ---- dns_poll: A + AAAA, removal, NXDOMAIN, dead and silent resolver -------------------------

V4A, V4B, V6 = "app@198.18.0.1", "app@198.18.0.2", "app@fd00::1"
APP_HOSTS = {"app.test": ["198.18.0.1", "198.18.0.2", "fd00:0000:0000:0000:0000:0000:0000:0001"]}


class DnsPoll(WithDns):
    HOSTS = APP_HOSTS

    @classmethod
    def config(cls):
        return command_transport(cls.work) + "\n" + topology_table(
            "poll", "dns_poll", disconnect="removed", query="app.test", node_basename="app",
            resolver=cls.dns.address, polling_interval="200ms", query_timeout="300ms")

    def test_1_a_and_aaaa_give_libcluster_names(self):
        st = self.wait_nodes("poll", {V4A, V4B, V6}, "A and AAAA nodes connected")
        t = topology(st, "poll")
        self.assertEqual((t["state"], t["error"], t["discovery_error"]), ("running", "", ""))
        self.assertEqual(set(self.work.state()), {V4A, V4B, V6})  # connect ran for each
        self.assertIn("A app.test, AAAA app.test via " + self.dns.address,
                      t["details"]["lookups"])

    def test_2_removed_record_is_disconnected(self):
        self.dns.set_hosts({"app.test": ["198.18.0.1", "fd00::1"]})
        self.wait_nodes("poll", {V4A, V6}, "198.18.0.2 gone")
        poll(lambda: self.work.runs_for("disconnect", V4B) == 1, WAIT, "disconnect of .2")
        self.assertEqual(self.work.runs_for("disconnect", V4A), 0)
        self.assertEqual(self.work.runs_for("disconnect", V6), 0)

    def test_3_readded_record_connects_again(self):
        self.dns.set_hosts(APP_HOSTS)
        self.wait_nodes("poll", {V4A, V4B, V6}, ".2 back")
        poll(lambda: self.work.runs_for("connect", V4B) == 2, WAIT, "a second connect of .2")

    def assert_set_kept(self, disconnects_before):
        st = self.d.status()
        self.assertEqual(connected_nodes(st, "poll"), {V4A, V4B, V6}, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), disconnects_before)

    def test_4_nxdomain_keeps_the_last_good_set_and_logs_once(self):
        self.wait_nodes("poll", {V4A, V4B, V6}, "all three connected")
        before = len(self.work.argv_records("disconnect"))
        self.dns.set_hosts({})  # app.test no longer exists: NXDOMAIN
        st = self.d.wait_until(lambda s: "NXDOMAIN" in topology(s, "poll")["discovery_error"],
                               WAIT, "NXDOMAIN reported")
        self.assertIn("app.test", topology(st, "poll")["discovery_error"])
        # Several more failed rounds (each logged by dnsmasq) change nothing.
        seen = self.queries_logged("app.test")
        poll(lambda: self.queries_logged("app.test") >= seen + 6, WAIT, "3 more rounds")
        self.assert_set_kept(before)
        self.assertEqual(self.d.log_text().count("keeping the last good node set: DNS A query "
                                                 "for 'app.test'"), 1, self.d.log_tail())
        self.dns.set_hosts(APP_HOSTS)
        self.d.wait_until(lambda s: topology(s, "poll")["discovery_error"] == "", WAIT,
                          "the error cleared once answers are back")
        self.assert_set_kept(before)

    def test_5_dead_and_silent_resolver_keep_the_last_good_set(self):
        self.wait_nodes("poll", {V4A, V4B, V6}, "all three connected")
        before = len(self.work.argv_records("disconnect"))
        self.dns.stop()  # nothing listens: refused
        self.d.wait_until(lambda s: topology(s, "poll")["discovery_error"] != "", WAIT,
                          "the dead resolver reported")
        self.assert_set_kept(before)
        silent = CountingUdp(self.dns.port)  # now a resolver that never answers
        try:
            st = self.d.wait_until(
                lambda s: silent.count >= 6 and
                "no answer" in topology(s, "poll")["discovery_error"], WAIT,
                "timeouts reported after 3 silent rounds")
            self.assertIn("app.test", topology(st, "poll")["discovery_error"])
            self.assert_set_kept(before)
        finally:
            silent.close()
        self.dns.start()
        self.d.wait_until(lambda s: topology(s, "poll")["discovery_error"] == "", WAIT,
                          "the error cleared once the resolver is back")
        self.assert_set_kept(before)


# ---- partial answers: A answered, AAAA refused ----------------------------------------------

# Outside its --local domains dnsmasq answers what its hosts file and --srv-host options have,
# and, having no upstream, REFUSES the rest: AAAA of a name with only IPv4 addresses, or a name
# it does not know at all.
PART = "app.partial"
P4A, P4B, P6 = "app@198.18.3.1", "app@198.18.3.2", "app@fd00::31"
PART_ALL = {PART: ["198.18.3.1", "198.18.3.2", "fd00::31"]}
SRV_PART = "srvapp.prod.svc.partial"
PODS_PART = {"srvapp@srvapp-0." + SRV_PART, "srvapp@srvapp-1." + SRV_PART}


class PartialAnswers(WithDns):
    HOSTS = {PART: ["198.18.3.1"]}
    SRV = {SRV_PART: ["srvapp-0." + SRV_PART, "srvapp-1." + SRV_PART]}
    HOST_KEYS = 'metrics_listen = "127.0.0.1:0"\n'

    @classmethod
    def config(cls):
        r = cls.dns.address
        return "\n".join([
            command_transport(cls.work),
            # ip_family unset: "both", as libcluster.
            topology_table("part", "dns_poll", query=PART, node_basename="app", resolver=r,
                           polling_interval="200ms", query_timeout="300ms"),
            topology_table("srvpart", "kubernetes_dnssrv", service="srvapp", namespace="prod",
                           cluster_domain="partial", application_name="srvapp", resolver=r,
                           polling_interval="200ms", query_timeout="300ms"),
        ])

    def failed_part(self, st):
        return topology(st, "part")["details"].get("failed lookups", "")

    def metric(self, name, topo):
        """The value of counter `name` for topology `topo` on /metrics (0 when absent)."""
        url = "http://" + self.d.status()["metrics"] + "/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        m = re.search(rf'(?m)^{name}{{topology="{topo}"}} (\S+)$', text)
        return float(m.group(1)) if m else 0.0

    def more_rounds(self, name, rounds=3):
        """Waits until dnsmasq has logged `rounds` more rounds (A and AAAA) for `name`."""
        seen = self.queries_logged(name)
        poll(lambda: self.queries_logged(name) >= seen + 2 * rounds, WAIT, f"{rounds} rounds")

    def test_1_a_answered_aaaa_refused_connects_the_a_nodes(self):
        st = self.wait_nodes("part", {P4A}, "the A node connected although AAAA is refused")
        self.assertIn(P4A, self.work.state())  # connect ran
        t = topology(st, "part")
        self.assertEqual((t["state"], t["error"], t["discovery_error"]), ("running", "", ""))
        self.assertRegex(self.failed_part(st), rf"^DNS AAAA query for '{re.escape(PART)}' "
                                               r"via 127\.0\.0\.1:\d+: .*refused")
        self.more_rounds(PART)
        self.assertEqual(self.d.log_text().count("some DNS lookups failed"), 1, self.d.log_tail())
        # Counted as failed lookups, not as failed rounds.
        poll(lambda: self.metric("clusterd_dns_failed_lookups_total", "part") >= 3, WAIT,
             "failed AAAA lookups counted")
        self.assertEqual(self.metric("clusterd_discovery_errors_total", "part"), 0)

    def test_2_all_answered_clears_the_failed_part(self):
        self.dns.set_hosts(PART_ALL)
        st = self.wait_nodes("part", {P4A, P4B, P6}, "all three once AAAA answers")
        self.assertNotIn("failed lookups", topology(st, "part")["details"])
        self.assertIn("DNS lookups answer again", self.d.log_text())

    def test_3_a_failed_lookup_keeps_its_nodes_the_answered_one_removes(self):
        self.wait_nodes("part", {P4A, P4B, P6}, "all three connected")
        before = len(self.work.argv_records("disconnect"))
        self.dns.set_hosts({PART: ["198.18.3.1"]})  # A drops .2; AAAA is refused again
        st = self.wait_nodes("part", {P4A, P6}, ".2 removed by the A answer, fd00::31 kept")
        self.assertIn("AAAA query", self.failed_part(st))
        poll(lambda: self.work.runs_for("disconnect", P4B) == 1, WAIT, "disconnect of .2")
        self.more_rounds(PART)
        st = self.d.status()
        self.assertEqual(connected_nodes(st, "part"), {P4A, P6}, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), before + 1)
        self.assertEqual(self.work.runs_for("disconnect", P6), 0)

    def test_4_every_lookup_failing_keeps_everything(self):
        self.wait_nodes("part", {P4A, P6}, "the set of test 3")
        before = len(self.work.argv_records("disconnect"))
        self.dns.set_hosts({})  # A refused too
        st = self.d.wait_until(lambda s: "refused" in topology(s, "part")["discovery_error"],
                               WAIT, "the failed round reported")
        self.assertIn(f"DNS A query for '{PART}'", topology(st, "part")["discovery_error"])
        self.assertNotIn("failed lookups", topology(st, "part")["details"])  # all failed
        self.more_rounds(PART)
        st = self.d.status()
        self.assertEqual(connected_nodes(st, "part"), {P4A, P6}, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), before)

    def test_5_srv_name_that_starts_failing_keeps_its_nodes(self):
        self.wait_nodes("srvpart", PODS_PART, "both SRV targets")
        before = len(self.work.argv_records("disconnect"))
        self.dns.restart(srv={})  # SRV refused from now on
        st = self.d.wait_until(lambda s: "refused" in topology(s, "srvpart")["discovery_error"],
                               WAIT, "the refused SRV lookup reported")
        self.assertIn(f"DNS SRV query for '{SRV_PART}'", topology(st, "srvpart")["discovery_error"])
        seen = self.queries_logged(SRV_PART)
        poll(lambda: self.queries_logged(SRV_PART) >= seen + 3, WAIT, "3 more SRV rounds")
        st = self.d.status()
        self.assertEqual(connected_nodes(st, "srvpart"), PODS_PART, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), before)
        self.dns.restart(srv=self.SRV)
        st = self.d.wait_until(lambda s: topology(s, "srvpart")["discovery_error"] == "", WAIT,
                               "the error cleared once SRV answers again")
        self.assertEqual(connected_nodes(st, "srvpart"), PODS_PART, st)
        self.assertEqual(len(self.work.argv_records("disconnect")), before)


# ---- kubernetes_dns and kubernetes_dnssrv: names, namespace, CLUSTER_DOMAIN, TTL rule, SRV ----

SVC = "myapp-headless.prod.svc.cluster.test"
POD0, POD1 = "myapp-0." + SVC, "myapp-1." + SVC


class Kubernetes(WithDns):
    HOSTS = {SVC: ["198.18.1.1", "198.18.1.2", "fd00::11"],
             "headless.test": ["198.18.2.1", "fd00::21"]}
    SRV = {SVC: [POD0, POD1]}
    TTL = 30
    ENV = {"CLUSTER_DOMAIN": "cluster.test"}

    @classmethod
    def config(cls):
        r = cls.dns.address
        return "\n".join([
            command_transport(cls.work, with_list=False),
            # namespace + cluster_domain option: the A records only (libcluster's default).
            topology_table("k8s_ns", "kubernetes_dns", service="myapp-headless", namespace="prod",
                           cluster_domain="cluster.test", application_name="myapp", resolver=r,
                           polling_interval="200ms"),
            # service as given, A and AAAA, no polling_interval: every 5 s whatever the TTL.
            topology_table("k8s_both", "Cluster.Strategy.Kubernetes.DNS", service="headless.test",
                           ip_family="both", application_name="web", resolver=r),
            # follow_ttl: the next round when the TTL runs out (polling_interval the floor).
            topology_table("k8s_ttl", "kubernetes_dns", service="headless.test",
                           application_name="ttl", resolver=r, polling_interval="200ms",
                           follow_ttl=True),
            # SRV; the cluster domain from $CLUSTER_DOMAIN, as libcluster.
            topology_table("srv", "kubernetes_dnssrv", service="myapp-headless",
                           namespace="prod", application_name="myapp", resolver=r,
                           polling_interval="200ms"),
        ])

    def test_1_kubernetes_dns_names(self):
        self.wait_nodes("k8s_ns", {"myapp@198.18.1.1", "myapp@198.18.1.2"}, "A records only")
        self.wait_nodes("k8s_both", {"web@198.18.2.1", "web@fd00::21"}, "A and AAAA")

    def test_2_default_interval_is_5s_whatever_the_ttl(self):
        st = self.d.wait_until(
            lambda s: "last answer" in topology(s, "k8s_both")["details"] and
            "last answer" in topology(s, "k8s_ns")["details"], WAIT, "answers")
        both = topology(st, "k8s_both")["details"]["last answer"]
        self.assertIn("min TTL 30 s, next round in 5000 ms", both)  # libcluster's 5 s
        ns = topology(st, "k8s_ns")["details"]["last answer"]
        self.assertIn("min TTL 30 s, next round in 200 ms", ns)  # polling_interval as given
        # dnsmasq sees k8s_both's second round long before the 30 s TTL runs out.
        poll(lambda: self.dns.log_tail(100000).count("query[AAAA] headless.test from") >= 2,
             WAIT, "a second k8s_both round (AAAA queries are only k8s_both's)")

    def test_3_follow_ttl_waits_out_the_ttl(self):
        st = self.d.wait_until(lambda s: "last answer" in topology(s, "k8s_ttl")["details"],
                               WAIT, "an answer")
        self.assertIn("1 record(s), 1 node(s), min TTL 30 s, next round in 30000 ms",
                      topology(st, "k8s_ttl")["details"]["last answer"])

    def test_4_dnssrv_targets(self):
        st = self.wait_nodes("srv", {"myapp@" + POD0, "myapp@" + POD1}, "SRV targets")
        self.assertIn("SRV " + SVC + " via", topology(st, "srv")["details"]["lookups"])

    def test_5_srv_record_removed_and_readded(self):
        self.wait_nodes("srv", {"myapp@" + POD0, "myapp@" + POD1}, "both pods")
        self.dns.restart(srv={SVC: [POD0]})
        self.wait_nodes("srv", {"myapp@" + POD0}, "myapp-1 removed")
        poll(lambda: self.work.runs_for("disconnect", "myapp@" + POD1) == 1, WAIT,
             "myapp-1 disconnected (the strategy's default is disconnect = removed)")
        self.dns.restart(srv={SVC: [POD0, POD1]})
        self.wait_nodes("srv", {"myapp@" + POD0, "myapp@" + POD1}, "myapp-1 back")
        self.assertEqual(self.work.runs_for("disconnect", "myapp@" + POD0), 0)


# ---- configuration errors fail the topology, naming the key and where it is ----------------

class ConfigErrors(unittest.TestCase):
    """Bad values refuse the whole configuration, at `clusterd check` as at start and reload,
    each named with its key and position (declared constraints and the plugins' validate())."""

    def test_bad_values_are_refused_with_key_and_position(self):
        work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-dns-")
        try:
            config = "\n".join([
                command_transport(work, with_list=False),
                topology_table("bad_resolver", "dns_poll", query="app.test", node_basename="app",
                               resolver="dns.example:53"),
                topology_table("bad_name", "kubernetes_dnssrv", service="s", namespace="n",
                               application_name="a@b"),
                topology_table("empty_query", "dns_poll", query="", node_basename="app"),
                topology_table("forever", "kubernetes_dns", service="s", application_name="app",
                               polling_interval="infinity"),
            ])
        finally:
            work.close()
        rc, out, path, lines = harness.check_config(config, harness.ARGS.bin_dir)
        self.assertEqual(rc, 1, out)
        for line, value, key, message in [
                ('resolver = "dns.example:53"', '"dns', "bad_resolver.config.resolver",
                 '"dns.example" is not an IP'),
                ('application_name = "a@b"', '"a@b"', "bad_name.config.application_name",
                 '"a@b" is not the name part of a node name'),
                ('query = ""', '""', "empty_query.config.query", "must not be empty"),
                ('polling_interval = "infinity"', '"infinity"', "forever.config.polling_interval",
                 'must be a finite duration ("infinity" is not allowed here)')]:
            at = harness.problem_at(lines, path, line, value)
            self.assertIn(f"{at}topologies.{key}: ", out)
            self.assertRegex(out, rf"(?m)^{re.escape(at)}topologies\.{re.escape(key)}: .*"
                                  rf"{re.escape(message)}")
        self.assertIn("4 problem(s)", out)


def main(argv=None):
    return harness.run_tests([DnsPoll, PartialAnswers, Kubernetes, ConfigErrors], argv,
                             description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
