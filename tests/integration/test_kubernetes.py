#!/usr/bin/env python3
"""Integration test: the `kubernetes` strategy in the real clusterd, against a real HTTPS server
(tests/servers/k8s_api_server.py, a test CA from tests/servers/make_test_pki.sh) serving the
recorded API answers of tests/fixtures/kubernetes, with the `command` transport recording every
connect and disconnect (the helper of test_command_transport.py).

Covers: node names for every mode x lookup mode (pods mode takes every pod with a podIP by
default, as libcluster; readiness = "ready" filters), the cluster domain
(kubernetes_cluster_name, kubernetes_cluster_domain); `plugins describe` tells the defaults the
code uses; the request (path, RFC 3986 selector, bearer
token re-read per request); 403 / 503 / malformed JSON keep the node set and show the reason
(logged once); token rotation; a node removed from the list is disconnected (disconnect =
"removed"); watch: list, then events on cue (ready pod connected, deleted slice disconnected),
BOOKMARK, 410 Expired -> re-list -> watch from the new resourceVersion, clean end -> resume;
TLS with the wrong CA or no CA fails closed; insecure_skip_tls_verify works and warns.

    test_kubernetes.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import node_states, toml_string, topology  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402

WAIT = 20.0
SERVERS = os.path.join(HERE, "..", "servers")
FIXTURES = os.path.join(HERE, "..", "fixtures", "kubernetes")

SERVER = None  # the k8s_api_server.py process
PKI = None     # temporary directory: test PKI and service-account directories
API_PORT = CONTROL_PORT = None

SLICE_NODES = {"app@10.4.0.11", "app@10.4.1.12", "app@fd00:10:4::11", "app@fd00:10:4::12"}
V6_NODES = {"app@fd00:10:4::11", "app@fd00:10:4::12"}


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def ctl(method, path, body=None):
    """A request to the server's control port; returns the decoded JSON or text."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{CONTROL_PORT}{path}", data=data,
                                 method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
    try:
        return json.loads(text)
    except ValueError:
        return text.decode()


def requests_for(selector, watch=None):
    out = [r for r in ctl("GET", "/requests") if r["query"].get("labelSelector") == selector]
    if watch is not None:
        out = [r for r in out if (r["query"].get("watch") == "1") == watch]
    return out


def sa_dir(name, ca="ca.crt", token="tok-1", namespace="prod"):
    """A service-account directory: token, ca.crt (a copy of PKI/`ca`, or none) and namespace."""
    d = os.path.join(PKI, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "token"), token + "\n")
    write(os.path.join(d, "namespace"), namespace + "\n")
    if ca:
        shutil.copyfile(os.path.join(PKI, ca), os.path.join(d, "ca.crt"))
    return d


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def setUpModule():
    global SERVER, PKI, API_PORT, CONTROL_PORT
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)
    PKI = tempfile.mkdtemp(prefix="clusterd-k8s-")
    subprocess.run(["sh", os.path.join(SERVERS, "make_test_pki.sh"), PKI], check=True,
                   timeout=60)
    port_file = os.path.join(PKI, "ports.json")
    SERVER = subprocess.Popen(
        [sys.executable, os.path.join(SERVERS, "k8s_api_server.py"), "--port-file", port_file,
         "--tls-cert", os.path.join(PKI, "server.crt"),
         "--tls-key", os.path.join(PKI, "server.key")],
        stdin=subprocess.DEVNULL)
    ports = json.loads(poll(lambda: os.path.exists(port_file) and open(port_file).read(),
                            WAIT, "the API server's port file"))
    API_PORT, CONTROL_PORT = ports["api"], ports["control"]
    ctl("PUT", "/list/endpoints", fixture("endpoints-list-gke-2018.json"))
    ctl("PUT", "/list/pods", fixture("pods-list-mixed.json"))
    ctl("PUT", "/list/endpointslices", fixture("endpointslices-list.json"))


def tearDownModule():
    if SERVER is not None:
        SERVER.kill()
        SERVER.wait(10)
    if PKI and not harness.any_test_failed():
        shutil.rmtree(PKI, ignore_errors=True)


def daemon(work, topologies, extra_transport=()):
    """A clusterd with the command transport `cmd` and the given topology tables, the API
    server in KUBERNETES_SERVICE_HOST/PORT."""
    lines = ["[clusterd]", 'log_level = "debug"', "",
             "[transports.cmd]", 'plugin = "command"',
             f"connect = [{toml_string(work.cmd)}, \"connect\"]",
             f"disconnect = [{toml_string(work.cmd)}, \"disconnect\"]", *extra_transport, ""]
    for name, table in topologies.items():
        lines += [f"[topologies.{name}]", 'strategy = "kubernetes"', 'transport = "cmd"',
                  'backoff_initial = "100ms"', 'backoff_max = "200ms"',
                  *table.pop("_topology", []), f"[topologies.{name}.config]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
               KUBERNETES_SERVICE_PORT=str(API_PORT))
    env.pop("CLUSTER_DOMAIN", None)
    return harness.Daemon("\n".join(lines), harness.ARGS.bin_dir, env=env)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) if isinstance(v, int) else toml_string(v)


def base(selector, sa, **more):
    table = {"kubernetes_node_basename": "app", "kubernetes_selector": selector,
             "kubernetes_service_account_path": sa, "polling_interval": "200ms"}
    table.update(more)
    return table


def discovery_error(status, name):
    return topology(status, name)["discovery_error"]


class DaemonCase(unittest.TestCase):
    """A clusterd (see daemon()) with the topology tables of the class's tables(), a work
    directory for the command transport's records; both closed after the class."""

    @classmethod
    def tables(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-k8s-cmd-")
        try:
            cls.d = daemon(cls.work, cls.tables())
            cls.d.start()
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()

    def test_zz_no_crash_and_no_sanitizer_report(self):
        self.assertTrue(self.d.running())
        self.assertNotRegex(self.d.log_text(), r"AddressSanitizer|runtime error:|terminate called")


# ---- names for every mode and lookup mode -----------------------------------------------------

class Names(DaemonCase):
    """One topology per (lookup mode, mode), plus readiness variants; polling."""

    EXPECTED = {
        "endpoints_ip": {"app@10.48.33.136"},
        "endpoints_dns": {"app@10-48-33-136.airatel-service-localization.pod.cluster.local"},
        "endpoints_hostname":
            {"app@my-hostname-0.svc.airatel-service-localization.svc.cluster.local"},
        # libcluster's pods mode, the default: every pod with an IP (ready or not, terminating
        # or not; the Pending myapp-2 has none). myapp-4 has no hostname.
        "pods_ip": {"app@10.4.0.11", "app@10.4.1.12", "app@10.4.0.14", "app@10.4.3.15"},
        "pods_dns": {"app@10-4-0-11.prod.pod.cluster.local",
                     "app@10-4-1-12.prod.pod.cluster.local",
                     "app@10-4-0-14.prod.pod.cluster.local",
                     "app@10-4-3-15.prod.pod.cluster.local"},
        "pods_hostname": {"app@myapp-0.svc.prod.svc.cluster.local",
                          "app@myapp-1.svc.prod.svc.cluster.local",
                          "app@myapp-3.svc.prod.svc.cluster.local"},
        "endpointslices_ip": SLICE_NODES,
        "endpointslices_dns": {"app@10-4-0-11.prod.pod.cluster.local",
                               "app@10-4-1-12.prod.pod.cluster.local",
                               "app@fd00-10-4--11.prod.pod.cluster.local",
                               "app@fd00-10-4--12.prod.pod.cluster.local"},
        "endpointslices_hostname": {"app@myapp-0.svc.prod.svc.cluster.local",
                                    "app@myapp-1.svc.prod.svc.cluster.local"},
        # Readiness filtering, on request: ready and not terminating.
        "pods_ready": {"app@10.4.0.11", "app@10.4.1.12"},
        # The cluster domain: libcluster's <kubernetes_cluster_name>.local, or any domain.
        "cluster_name": {"app@10-4-0-11.prod.pod.prod-eu.local",
                         "app@10-4-1-12.prod.pod.prod-eu.local",
                         "app@fd00-10-4--11.prod.pod.prod-eu.local",
                         "app@fd00-10-4--12.prod.pod.prod-eu.local"},
        "cluster_domain": {"app@myapp-0.myapp.prod.svc.k8s.example.com",
                           "app@myapp-1.myapp.prod.svc.k8s.example.com"},
        "slices_serving": SLICE_NODES | {"app@10.4.0.14"},
        "master_url": SLICE_NODES,
        "token_option": SLICE_NODES,
    }

    @classmethod
    def tables(cls):
        cls.sa = sa_dir("names")
        tables = {}
        for lookup in ("endpoints", "pods", "endpointslices"):
            for mode in ("ip", "dns", "hostname"):
                tables[f"{lookup}_{mode}"] = base(
                    "app=myapp", cls.sa, kubernetes_ip_lookup_mode=lookup, mode=mode,
                    kubernetes_service_name="svc")
        tables["pods_ready"] = base("app=myapp", cls.sa, kubernetes_ip_lookup_mode="pods",
                                    readiness="ready")
        tables["cluster_name"] = base("app=myapp", cls.sa, kubernetes_cluster_name="prod-eu",
                                      kubernetes_ip_lookup_mode="endpointslices", mode="dns")
        tables["cluster_domain"] = base("app=myapp", cls.sa,
                                        kubernetes_cluster_domain="k8s.example.com",
                                        kubernetes_ip_lookup_mode="endpointslices",
                                        mode="hostname")
        tables["slices_serving"] = base("app=myapp", cls.sa,
                                        kubernetes_ip_lookup_mode="endpointslices",
                                        readiness="serving")
        tables["master_url"] = base("app=master", cls.sa,
                                    kubernetes_ip_lookup_mode="endpointslices",
                                    kubernetes_master=f"https://127.0.0.1:{API_PORT}/")
        # A fixed token from a file (the secret's token_file), instead of the service account's.
        token_file = os.path.join(cls.sa, "fixed-token")
        with open(token_file, "w") as f:
            f.write("fixed-tok-9\n")
        tables["token_option"] = base("app=tok", cls.sa,
                                      kubernetes_ip_lookup_mode="endpointslices",
                                      token_file=token_file)
        return tables

    def test_names(self):
        def all_named(s):
            return all(set(node_states(s, t)) == names for t, names in self.EXPECTED.items())
        try:
            st = self.d.wait_until(all_named, WAIT, "every topology's node names")
        except harness.WaitTimeout:
            st = self.d.status()
            for t, names in self.EXPECTED.items():
                self.assertEqual(set(node_states(st, t)), names, t)
            raise
        for t in self.EXPECTED:
            self.assertEqual(discovery_error(st, t), "", t)
            self.assertEqual(topology(st, t)["details"].get("api"),
                             f"https://127.0.0.1:{API_PORT}", t)

    def test_describe_tells_the_defaults_the_code_uses(self):
        r = subprocess.run([os.path.join(harness.ARGS.bin_dir, "clusterd"), "plugins",
                            "describe", "kubernetes"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = " ".join(r.stdout.split())  # descriptions are wrapped
        # kubernetes_master: no literal default (KUBERNETES_SERVICE_HOST/PORT win).
        self.assertIn("default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT "
                      "when set (every pod has them), else kubernetes.default.svc", out)
        self.assertIn('Default as libcluster: "all" with pods (every pod with a podIP), '
                      '"ready" otherwise', out)
        self.assertIn("kubernetes_cluster_domain (string)", out)
        self.assertNotIn("kubernetes_master (string, default", out)
        self.assertNotIn("readiness (string, default", out)

    def test_request(self):
        self.d.wait_until(lambda s: set(node_states(s, "pods_ip")) == self.EXPECTED["pods_ip"],
                          WAIT, "pods listed")
        reqs = requests_for("app=myapp")
        paths = {r["path"] for r in reqs}
        self.assertEqual(paths, {"/api/v1/namespaces/prod/endpoints",
                                 "/api/v1/namespaces/prod/pods",
                                 "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices"})
        for r in reqs:
            self.assertEqual(r["raw_query"], "labelSelector=app%3Dmyapp", r)
            self.assertEqual(r["authorization"], "Bearer tok-1", r)
        # Polled: several rounds per topology by now.
        poll(lambda: len(requests_for("app=master")) >= 3, WAIT, "three polls of master_url")
        # The token option wins over the service account's token; it is never logged.
        tok = requests_for("app=tok")
        self.assertTrue(tok)
        self.assertEqual({r["authorization"] for r in tok}, {"Bearer fixed-tok-9"})
        self.assertNotIn("fixed-tok-9", self.d.log_text())


# ---- errors keep the set; token rotation; removal disconnects ------------------------------------

class Errors(DaemonCase):
    SEL = "app=err"

    @classmethod
    def tables(cls):
        cls.sa = sa_dir("errors")
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", fixture("endpointslices-list.json"))
        table = base(cls.SEL, cls.sa, kubernetes_ip_lookup_mode="endpointslices",
                     request_timeout="1s")
        table["_topology"] = ['disconnect = "removed"']
        return {"t": table}

    @classmethod
    def tearDownClass(cls):
        ctl("DELETE", "/error/endpointslices?selector=app%3Derr")
        ctl("DELETE", "/stall/endpointslices?selector=app%3Derr")
        ctl("PUT", "/tokens", [])
        super().tearDownClass()

    def connected(self, nodes):
        return self.d.wait_until(lambda s: nodes <= harness.connected_nodes(s, "t"), WAIT,
                                 f"{sorted(nodes)} connected")

    def test_1_errors_keep_the_set_and_show_the_reason_once(self):
        self.connected(SLICE_NODES)
        cases = [
            (403, fixture("status-403-forbidden.json").decode(),
             "HTTP 403 Forbidden: endpoints is forbidden: User"),
            (503, "upstream connect error", "HTTP 503: upstream connect error"),
        ]
        for code, body, text in cases:
            ctl("PUT", "/error/endpointslices?selector=app%3Derr", {"code": code, "body": body})
            st = self.d.wait_until(lambda s: text in discovery_error(s, "t"), WAIT,
                                   f"the {code} in the status")
            before = len(requests_for(self.SEL))
            poll(lambda: len(requests_for(self.SEL)) >= before + 3, WAIT, "three more failures")
            st = self.d.status()
            self.assertIn(text, discovery_error(st, "t"))
            self.assertEqual(harness.connected_nodes(st, "t"), SLICE_NODES, "the set shrank")
            self.assertEqual(set(node_states(st, "t")), SLICE_NODES)
            logged = [l for l in self.d.log_text().splitlines()
                      if "discovery failed" in l and f"HTTP {code}" in l]
            self.assertEqual(len(logged), 1, f"logged once per change of reason: {logged}")
        ctl("DELETE", "/error/endpointslices?selector=app%3Derr")
        # A server that never answers: request_timeout (1 s) ends each try.
        ctl("PUT", "/stall/endpointslices?selector=app%3Derr")
        try:
            st = self.d.wait_until(lambda s: "timed out" in discovery_error(s, "t"), WAIT,
                                   "the timeout in the status")
            self.assertEqual(harness.connected_nodes(st, "t"), SLICE_NODES, "the set shrank")
        finally:
            ctl("DELETE", "/stall/endpointslices?selector=app%3Derr")
        # Malformed JSON with 200.
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", b'{"items": [ {"metadata": ')
        self.d.wait_until(lambda s: "malformed JSON" in discovery_error(s, "t"), WAIT,
                          "malformed JSON in the status")
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", b'{"items": {"a": 1}}')
        st = self.d.wait_until(lambda s: "is not a list" in discovery_error(s, "t"), WAIT,
                               "wrong shape in the status")
        self.assertEqual(harness.connected_nodes(st, "t"), SLICE_NODES, "the set shrank")
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", fixture("endpointslices-list.json"))
        self.d.wait_until(lambda s: discovery_error(s, "t") == "", WAIT, "the error cleared")
        self.assertEqual(self.work.argv_records("disconnect"), [], "an error disconnected a node")
        self.assertIn("the Kubernetes API answers again", self.d.log_text())

    def test_2_token_rotation(self):
        self.connected(SLICE_NODES)
        ctl("PUT", "/tokens", ["tok-2"])  # the API server rotated: tok-1 is rejected now
        self.d.wait_until(lambda s: "HTTP 401" in discovery_error(s, "t"), WAIT, "401 shown")
        write(os.path.join(self.sa, "token"), "tok-2\n")
        self.d.wait_until(lambda s: discovery_error(s, "t") == "", WAIT, "the new token works")
        self.assertTrue(any(r["authorization"] == "Bearer tok-2" for r in requests_for(self.SEL)))
        self.assertNotIn("tok-1", self.d.log_text())
        self.assertNotIn("tok-2", self.d.log_text())

    def test_3_removed_node_is_disconnected(self):
        self.connected(SLICE_NODES)
        doc = json.loads(fixture("endpointslices-list.json"))
        doc["items"] = doc["items"][:1]  # the IPv6 slice is gone
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", json.dumps(doc).encode())
        self.d.wait_until(lambda s: set(node_states(s, "t")) == SLICE_NODES - V6_NODES, WAIT,
                          "the IPv6 nodes gone")
        poll(lambda: {a[-1] for a in self.work.argv_records("disconnect")} == V6_NODES, WAIT,
             "the IPv6 nodes disconnected")
        ctl("PUT", "/list/endpointslices?selector=app%3Derr", fixture("endpointslices-list.json"))
        self.connected(SLICE_NODES)


# ---- watch -----------------------------------------------------------------------------------

class Watch(DaemonCase):
    SEL = "app=watch"
    KEY = "endpointslices?selector=app%3Dwatch"

    @classmethod
    def tables(cls):
        cls.sa = sa_dir("watch")
        with open(os.path.join(FIXTURES, "endpointslices-watch.jsonl"), "rb") as f:
            cls.events = [line.rstrip(b"\n") for line in f if line.strip()]
        ctl("PUT", "/list/" + cls.KEY, fixture("endpointslices-list.json"))
        table = base(cls.SEL, cls.sa, kubernetes_ip_lookup_mode="endpointslices", watch=True,
                     polling_interval="1h")  # no polling: only the watch can bring changes
        table["_topology"] = ['disconnect = "removed"']
        return {"w": table}

    def watching(self, rv, count=1):
        """Waits for the count-th watch request from resourceVersion `rv`, and its stream."""
        def found():
            reqs = [r for r in requests_for(self.SEL, watch=True)
                    if r["query"].get("resourceVersion") == rv]
            return len(reqs) >= count and reqs
        reqs = poll(found, WAIT, f"a watch from resourceVersion {rv}")
        poll(lambda: ctl("GET", "/watchers").get("endpointslices?" + self.SEL, 0) >= 1, WAIT,
             "an open watch stream")
        return reqs[-1]

    def test_watch(self):
        self.d.wait_until(lambda s: SLICE_NODES <= harness.connected_nodes(s, "w"), WAIT,
                          "listed nodes connected")
        r = self.watching("481520")
        self.assertEqual(r["query"].get("allowWatchBookmarks"), "true", r)
        self.assertEqual(r["query"].get("labelSelector"), self.SEL, r)
        self.assertIn("timeoutSeconds", r["query"])
        self.assertEqual(r["authorization"], "Bearer tok-1")
        lists = len(requests_for(self.SEL, watch=False))

        # A new endpoint, not ready: nothing changes. Then it becomes ready: connected.
        ctl("POST", "/event/" + self.KEY, self.events[0])
        ctl("POST", "/event/" + self.KEY, self.events[1])
        self.d.wait_until(lambda s: "app@10.4.3.15" in harness.connected_nodes(s, "w"), WAIT,
                          "the pod that became ready connected")
        self.assertEqual(set(node_states(self.d.status(), "w")), SLICE_NODES | {"app@10.4.3.15"})
        # BOOKMARK, then the IPv6 slice is deleted: its nodes are disconnected.
        ctl("POST", "/event/" + self.KEY, self.events[2])
        ctl("POST", "/event/" + self.KEY, self.events[3])
        self.d.wait_until(lambda s: not V6_NODES & set(node_states(s, "w")), WAIT,
                          "the IPv6 nodes gone")
        poll(lambda: V6_NODES <= {a[-1] for a in self.work.argv_records("disconnect")}, WAIT,
             "the IPv6 nodes disconnected")
        self.assertEqual(len(requests_for(self.SEL, watch=False)), lists, "no re-list so far")

        # 410 Expired in the stream: a fresh list (now at 481600), then a watch from there.
        doc = json.loads(fixture("endpointslices-list.json"))
        doc["metadata"]["resourceVersion"] = "481600"
        ctl("PUT", "/list/" + self.KEY, json.dumps(doc).encode())
        ctl("POST", "/event/" + self.KEY, self.events[4])
        self.watching("481600")
        self.assertEqual(len(requests_for(self.SEL, watch=False)), lists + 1, "one re-list")
        st = self.d.wait_until(lambda s: set(node_states(s, "w")) == SLICE_NODES, WAIT,
                               "the re-listed set (IPv6 back, 10.4.3.15 not in the list)")
        self.assertEqual(discovery_error(st, "w"), "", "a 410 is no failure")
        self.assertIn("expired; re-listing", self.d.log_text())

        # The server ends the watch (timeoutSeconds): resume from the last resourceVersion,
        # here a bookmark's, without a list.
        bookmark = json.loads(self.events[2])
        bookmark["object"]["metadata"]["resourceVersion"] = "481700"
        ctl("POST", "/event/" + self.KEY, json.dumps(bookmark).encode())
        ctl("POST", "/end/" + self.KEY)
        self.watching("481700")
        self.assertEqual(len(requests_for(self.SEL, watch=False)), lists + 1, "no list on resume")
        self.assertTrue(self.d.running())


# ---- TLS ---------------------------------------------------------------------------------------

class Tls(DaemonCase):
    @classmethod
    def tables(cls):
        slices = {"kubernetes_ip_lookup_mode": "endpointslices"}
        return {
            "wrong_ca": base("app=wrongca", sa_dir("wrong-ca", ca="other-ca.crt"), **slices),
            "no_ca": base("app=noca", sa_dir("no-ca", ca=None), **slices),
            "insecure": base("app=insecure", sa_dir("insecure", ca=None),
                             insecure_skip_tls_verify=True, **slices),
        }

    def test_wrong_or_missing_ca_fails_closed(self):
        st = self.d.wait_until(
            lambda s: discovery_error(s, "wrong_ca") and discovery_error(s, "no_ca"), WAIT,
            "TLS failures in the status")
        for t in ("wrong_ca", "no_ca"):
            self.assertRegex(discovery_error(st, t), r"(?i)certificate|SSL|TLS", t)
            self.assertEqual(node_states(st, t), {}, t)
        self.assertEqual(requests_for("app=wrongca") + requests_for("app=noca"), [],
                         "a request got through an unverified connection")

    def test_insecure_skip_tls_verify_works_and_warns(self):
        st = self.d.wait_until(lambda s: set(node_states(s, "insecure")) == SLICE_NODES, WAIT,
                               "nodes through the unverified connection")
        self.assertEqual(discovery_error(st, "insecure"), "")
        self.assertRegex(self.d.log_text(), r"(?i)warn.*insecure_skip_tls_verify = true")
        self.assertEqual(len(re.findall(r"insecure_skip_tls_verify = true", self.d.log_text())), 1)


# ---- configuration errors fail the topology, naming the key and where it is ----------------

class ConfigErrors(unittest.TestCase):
    """Bad values refuse the whole configuration, at `clusterd check` as at start and reload,
    each named with its key and position (declared constraints and the plugin's validate())."""

    def test_bad_values_are_refused_with_key_and_position(self):
        sa = sa_dir("config")
        work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-k8s-cmd-")
        try:
            text = daemon(work, {
                "bad_basename": base("app=myapp", sa, kubernetes_node_basename="a@b"),
                "http_master": base("app=myapp", sa, kubernetes_master="http://127.0.0.1:1"),
                "empty_selector": base("", sa),
                "two_domains": base("app=myapp", sa, kubernetes_cluster_name="eu",
                                    kubernetes_cluster_domain="eu.example"),
                "bad_domain": base("app=myapp", sa, kubernetes_cluster_domain="a b"),
                "good": base("app=myapp", sa, kubernetes_ip_lookup_mode="pods"),
            }).config_text
        finally:
            work.close()
        rc, out, path, lines = harness.check_config(text, harness.ARGS.bin_dir)
        self.assertEqual(rc, 1, out)
        for key, value, message in [
                ("kubernetes_node_basename", '"a@b"', '"a@b" is not the name part of a node name'),
                ("kubernetes_master", '"http://', "only https:// is allowed"),
                ("kubernetes_selector", '""', "must not be empty"),
                ("kubernetes_cluster_domain", '"eu.example"',
                 "set either 'kubernetes_cluster_domain' or 'kubernetes_cluster_name', not both"),
                ("kubernetes_cluster_domain", '"a b"', "'a b' is not a DNS name")]:
            at = harness.problem_at(lines, path, f"{key} = {value}", value)
            self.assertRegex(out, rf"(?m)^{re.escape(at)}topologies\.\w+\.config\.{key}: .*"
                                  rf"{re.escape(message)}")
        self.assertNotIn("topologies.good", out)
        self.assertIn("5 problem(s)", out)


def main(argv=None):
    return harness.run_tests([Names, Errors, Watch, Tls, ConfigErrors], argv,
                             description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
