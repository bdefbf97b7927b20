#!/usr/bin/env python3
"""Integration test: the third-party strategy ec2 (plugins/third_party/clusterd-plugin-ec2),
built out of tree exactly as its author would (the SDK of this build installed to a scratch
prefix, then find_package(ClusterdSDK) + clusterd_add_plugin), loaded by the real clusterd
through plugin_path, against a local threaded HTTP server on 127.0.0.1 that plays both
  - the instance metadata service, IMDSv2 only: PUT /latest/api/token first, any GET without
    that token is a 401; region, instance-id, the instance role and its credentials; and
  - the EC2 Query API: it recomputes the AWS SigV4 signature of every request from the
    credentials it knows (algorithm, scope with the region and service "ec2", SignedHeaders
    with host and x-amz-date, and x-amz-security-token for temporary credentials) and answers
    a wrong one with a real-shaped 401 AuthFailure; a right one gets the recorded-shape
    DescribeInstances pages of test/fixtures (two pages, joined by nextToken) with the
    request's filters applied (tag value, instance-state-name=running), as EC2 would.
The `command` transport records every connect and disconnect.

Checks: app_prefix@private-IP of the running, matching instances of both pages; stopped and
other-tag instances absent; an instance that goes away is disconnected; HTTP 500, a garbage
body and AuthFailure keep the last good set and show as discovery_error; credentials from
the configuration (secret via secret_access_key_file), from the environment (with a session
token) and from the instance role (with the region and this instance's own tag value from
the metadata) each work; the secret keys never appear in the daemon's log or status; a page 2
that fails after a good page 1 adds page 1's nodes, removes none, and shows as "partial
round" until a complete round.

    test_ec2.py --bin-dir <dir of clusterd, clusterctl> --build-dir <clusterd build tree>
                --cmake <cmake>
"""

import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, node_states, toml_list, toml_string, topology  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402
from test_dns import command_transport  # noqa: E402

WAIT = 20.0
PLUGIN_SRC = os.path.normpath(os.path.join(HERE, "..", "..", "plugins", "third_party",
                                           "clusterd-plugin-ec2"))
FIXTURES = os.path.join(PLUGIN_SRC, "test", "fixtures")
NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
REGION = "eu-west-3"
SELF_ID = "i-0selfexample00001"
ROLE = "clusterd-role"
PAGE2_TOKEN = "eyJ2IjoiMiIsImMiOiJwYWdlMiJ9"
CONFIG_KEY = ("AKIDCONFIGEXAMPLE001", "cfgSecretEXAMPLEwJalrXUtnFEMIK7MDENG00001", None)
ENV_KEY = ("ASIAENVEXAMPLE000002", "envSecretEXAMPLEwJalrXUtnFEMIK7MDENG0002",
           "envSessionTokenEXAMPLE/IQoJb3JpZ2luX2VjEXAMPLE=")
N11, N12, N21 = "myapp@10.0.1.11", "myapp@10.0.1.12", "myapp@10.0.2.21"
WEB = {N11, N12, N21}

ET.register_namespace("", NS)


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)
    build_plugin()


def build_plugin():
    """The plugin built out of tree against this build's SDK (harness.build_third_party)."""
    Ec2.plugin_dir = harness.build_third_party("ec2")


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def hmac256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class FakeAws:
    """IMDSv2 + EC2 DescribeInstances on one loopback port, on its own threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.imds_token = "imds-" + secrets.token_hex(8)
        self.keys = {k[0]: k for k in (CONFIG_KEY, ENV_KEY)}
        role = json.loads(read("role-credentials.json"))
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        role["Expiration"] = expires  # the fixture's would be in the past one day
        self.role_json = json.dumps(role)
        self.keys[role["AccessKeyId"]] = (role["AccessKeyId"], role["SecretAccessKey"],
                                          role["Token"])
        self.role_secret = role["SecretAccessKey"]
        self.has_role = True
        self.mode = None     # None | "500" | "garbage" | "authfailure" | "page2-503"
        self.hidden = set()  # instance ids left out of every answer
        self.log = []        # (kind, detail) of every request
        self.pages = {"": read("describe-instances-page1.xml"),
                      PAGE2_TOKEN: read("describe-instances-page2.xml")}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_PUT(self):
                fake.handle(self)

            def do_GET(self):
                fake.handle(self)

            def do_POST(self):
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def record(self, kind, detail=""):
        with self.lock:
            self.log.append((kind, detail))

    def seen(self, kind):
        with self.lock:
            return [d for k, d in self.log if k == kind]

    @staticmethod
    def reply(h, code, body, content_type="text/plain"):
        data = body.encode()
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path
        if path == "/latest/api/token":
            ttl = h.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if h.command != "PUT" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(h, 400, "Bad Request")
            self.record("imds-token")
            return self.reply(h, 200, self.imds_token)
        if path.startswith("/latest/meta-data/"):
            if h.headers.get("X-aws-ec2-metadata-token") != self.imds_token:
                self.record("imds-401", path)
                return self.reply(h, 401, "Unauthorized")
            item = path[len("/latest/meta-data/"):]
            self.record("imds", item)
            answers = {"placement/region": REGION, "instance-id": SELF_ID}
            if self.has_role:
                answers["iam/security-credentials/"] = ROLE
                answers["iam/security-credentials/" + ROLE] = self.role_json
            if item in answers:
                return self.reply(h, 200, answers[item])
            return self.reply(h, 404, "Not Found")
        if path == "/" and h.command == "POST":
            return self.ec2(h, body)
        return self.reply(h, 404, "Not Found")

    # -- EC2 --

    def check_signature(self, h, body):
        """The reason the SigV4 signature is wrong, or None; also returns the key id."""
        auth = h.headers.get("Authorization", "")
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)/(\d{8})/([a-z0-9-]+)/"
                         r"([a-z0-9]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), "
                         r"Signature=([0-9a-f]{64})", auth)
        if not m:
            return "Authorization has not the SigV4 shape", None
        akid, date, region, service, signed, signature = m.groups()
        amz_date = h.headers.get("X-Amz-Date", "")
        if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or amz_date[:8] != date:
            return "X-Amz-Date missing or not the credential's date", akid
        if (region, service) != (REGION, "ec2"):
            return f"scope {region}/{service}, expected {REGION}/ec2", akid
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "SignedHeaders lacks host or x-amz-date", akid
        key = self.keys.get(akid)
        if key is None:
            return "unknown access key id", akid
        _, secret, token = key
        if token is not None and (h.headers.get("X-Amz-Security-Token") != token
                                  or "x-amz-security-token" not in names):
            return "x-amz-security-token missing, wrong or not signed", akid
        canonical_headers = "".join(
            f"{n}:{' '.join((h.headers.get(n) or '').split())}\n" for n in names)
        canonical = "\n".join([h.command, "/", "", canonical_headers, signed,
                               sha256_hex(body)])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date,
                             f"{date}/{region}/{service}/aws4_request",
                             sha256_hex(canonical.encode())])
        k = hmac256(("AWS4" + secret).encode(), date)
        for part in (region, service, "aws4_request"):
            k = hmac256(k, part)
        if not hmac.compare_digest(hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest(),
                                   signature):
            return "signature does not match", akid
        return None, akid

    def ec2(self, h, body):
        why, akid = self.check_signature(h, body)
        if why is not None:
            self.record("ec2-refused", why)
            return self.reply(h, 401, read("auth-failure.xml"), "text/xml;charset=UTF-8")
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        if (form.get("Action"), form.get("Version")) != ("DescribeInstances", "2016-11-15"):
            return self.reply(h, 400, "unexpected action")
        self.record("ec2", {"akid": akid, "form": form})
        mode = self.mode
        if mode == "500":
            return self.reply(h, 500, "<Response><Errors><Error><Code>InternalError</Code>"
                              "<Message>An internal error has occurred</Message></Error>"
                              "</Errors></Response>", "text/xml")
        if mode == "garbage":
            return self.reply(h, 200, "<DescribeInstancesResponse><reservationSet><item>",
                              "text/xml")
        if mode == "authfailure":
            return self.reply(h, 401, read("auth-failure.xml"), "text/xml;charset=UTF-8")
        if "InstanceId.1" in form:
            if form["InstanceId.1"] != SELF_ID:
                return self.reply(h, 400, "unknown instance")
            return self.reply(h, 200, read("describe-instances-self.xml"), "text/xml")
        want = {"Filter.1.Name": "tag:cluster", "Filter.2.Name": "instance-state-name",
                "Filter.2.Value.1": "running"}
        if any(form.get(k) != v for k, v in want.items()) or "Filter.1.Value.1" not in form:
            return self.reply(h, 400, f"unexpected filters {form}")
        if mode == "page2-503" and form.get("NextToken"):
            return self.reply(h, 503, "<Response><Errors><Error><Code>Unavailable</Code>"
                              "<Message>The service is unavailable</Message></Error>"
                              "</Errors></Response>", "text/xml")
        page = self.pages.get(form.get("NextToken", ""))
        if page is None:
            return self.reply(h, 400, "bad NextToken")
        return self.reply(h, 200, self.filtered(page, form["Filter.1.Value.1"]), "text/xml")

    def filtered(self, page, tag_value):
        """The page as EC2 would answer it for tag:cluster=tag_value, state running."""
        root = ET.fromstring(page)
        q = lambda name: f"{{{NS}}}{name}"  # noqa: E731
        for reservation in list(root.find(q("reservationSet"))):
            instances = reservation.find(q("instancesSet"))
            for item in list(instances):
                state = item.find(f"{q('instanceState')}/{q('name')}").text
                tags = {t.find(q("key")).text: t.find(q("value")).text
                        for t in item.find(q("tagSet"))}
                iid = item.find(q("instanceId")).text
                if state != "running" or tags.get("cluster") != tag_value or iid in self.hidden:
                    instances.remove(item)
            if len(instances) == 0:
                root.find(q("reservationSet")).remove(reservation)
        return ET.tostring(root, encoding="unicode")


class Ec2(unittest.TestCase):
    plugin_dir = None

    def setUp(self):
        self.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-ec2-")
        self.aws = FakeAws()
        self.d = None

    def tearDown(self):
        if self.d is not None:
            self.d.close(keep=harness.any_test_failed())
        self.aws.stop()
        self.work.close()

    def config_text(self, **config):
        base = {"ec2_tagname": "cluster", "app_prefix": "myapp", "polling_interval": "200ms",
                "request_timeout": "2s", "endpoint": self.aws.url + "/",
                "imds_endpoint": self.aws.url}
        base.update(config)
        return "\n".join([
            "[clusterd]", f"plugin_path = {toml_list([self.plugin_dir])}", "",
            command_transport(self.work),
            "[topologies.e]", 'strategy = "ClusterEC2.Strategy.Tags"', 'transport = "cmd"',
            'disconnect = "removed"', 'backoff_initial = "100ms"', 'backoff_max = "200ms"',
            "[topologies.e.config]"] + [f"{k} = {toml_string(v)}" for k, v in base.items()]) + "\n"

    def start(self, env=None, **config):
        daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        daemon_env.update(env or {})
        self.d = harness.Daemon(self.config_text(**config), harness.ARGS.bin_dir, env=daemon_env)
        self.d.start()

    def check(self, **config):
        """`clusterd check` of a configuration: (exit code, output, config path, its lines)."""
        text = self.config_text(**config)
        self.work.write("check.toml", text)
        path = self.work.file("check.toml")
        r = subprocess.run([os.path.join(harness.ARGS.bin_dir, "clusterd"), "check", "-c", path],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout + r.stderr, path, text.splitlines()

    def wait_nodes(self, expected, what):
        expected = set(expected)
        return self.d.wait_until(lambda s: set(node_states(s, "e")) == expected and
                                 connected_nodes(s, "e") == expected, WAIT, what)

    def wait_error(self, text, what):
        return self.d.wait_until(lambda s: text in topology(s, "e")["discovery_error"], WAIT,
                                 what)

    def assert_no_secret(self, *secret_values):
        status_text = json.dumps(self.d.status())
        for value in secret_values:
            self.assertNotIn(value, self.d.log_text())
            self.assertNotIn(value, status_text)

    def ec2_calls(self):
        return self.aws.seen("ec2")

    def test_1_config_credentials_both_pages_failures_keep_the_set(self):
        secret_file = self.work.file("secret_access_key")
        self.work.write("secret_access_key", CONFIG_KEY[1] + "\n")
        self.start(region=REGION, ec2_tagvalue="web", access_key_id=CONFIG_KEY[0],
                   secret_access_key_file=secret_file)
        st = self.wait_nodes(WEB, "the running web instances of both pages")
        details = topology(st, "e")["details"]
        self.assertEqual(details["credentials"], "config")
        calls = self.ec2_calls()
        self.assertTrue(all(c["akid"] == CONFIG_KEY[0] for c in calls), calls)
        self.assertIn(PAGE2_TOKEN, [c["form"].get("NextToken") for c in calls])
        self.assertEqual(self.aws.seen("ec2-refused"), [])
        # Region and tag value configured: the metadata service is never asked.
        self.assertEqual(self.aws.seen("imds") + self.aws.seen("imds-token"), [])
        for absent in ("myapp@10.0.1.13", "myapp@10.0.1.14", "myapp@10.0.9.9"):
            self.assertNotIn(absent, node_states(st, "e"))

        # An instance that goes away is disconnected.
        self.aws.hidden = {"i-0a1b2c3d4e5f60021"}
        self.wait_nodes({N11, N12}, "page 2's instance gone")
        poll(lambda: self.work.runs_for("disconnect", N21) == 1, WAIT, "its disconnect")
        self.aws.hidden = set()
        self.wait_nodes(WEB, "it is back")
        disconnects = len(self.work.argv_records("disconnect"))

        for mode, text in (("500", "answered HTTP 500: InternalError: An internal error"),
                           ("garbage", "malformed reply: XML error"),
                           ("authfailure", "answered HTTP 401: AuthFailure: AWS was not able")):
            self.aws.mode = mode
            st = self.wait_error(text, f"the {mode} reported")
            self.assertEqual(connected_nodes(st, "e"), WEB, st)
            self.assertEqual(topology(st, "e")["state"], "running")
        self.aws.mode = None
        self.d.wait_until(lambda s: topology(s, "e")["discovery_error"] == "", WAIT,
                          "the error cleared")
        self.assertEqual(len(self.work.argv_records("disconnect")), disconnects)
        self.assert_no_secret(CONFIG_KEY[1])

    def test_1b_a_failed_page_adds_the_good_pages_nodes_and_removes_none(self):
        self.aws.mode = "page2-503"  # from the start: nothing was ever discovered
        self.start(region=REGION, ec2_tagvalue="web", access_key_id=CONFIG_KEY[0],
                   secret_access_key=CONFIG_KEY[1])
        st = self.wait_nodes({N11, N12}, "page 1's instances, although page 2 fails")
        partial = topology(st, "e")["details"].get("partial round", "")
        self.assertIn("EC2 DescribeInstances (page 2) answered HTTP 503: Unavailable", partial)
        self.assertIn("the nodes of pages 1-1 were added", partial)
        # A page-1 instance that goes away while page 2 fails is not removed: it may have
        # moved to the page that failed.
        self.aws.hidden = {"i-0a1b2c3d4e5f60011"}
        calls = len(self.ec2_calls())
        poll(lambda: len(self.ec2_calls()) >= calls + 4, WAIT, "two more rounds")
        st = self.wait_nodes({N11, N12}, "nothing removed")
        self.assertEqual(self.work.argv_records("disconnect"), [])
        # The next complete round decides: page 2's node is added, the gone one removed.
        self.aws.mode = None
        st = self.wait_nodes({N12, N21}, "the complete listing")
        poll(lambda: self.work.runs_for("disconnect", N11) == 1, WAIT, "its disconnect")
        self.assertNotIn("partial round", topology(st, "e")["details"])
        self.assertEqual(topology(st, "e")["discovery_error"], "")

    def test_2_environment_credentials_with_session_token_region_from_imds(self):
        self.start(ec2_tagvalue="web",
                   env={"AWS_ACCESS_KEY_ID": ENV_KEY[0], "AWS_SECRET_ACCESS_KEY": ENV_KEY[1],
                        "AWS_SESSION_TOKEN": ENV_KEY[2]})
        st = self.wait_nodes(WEB, "the web instances")
        details = topology(st, "e")["details"]
        self.assertEqual((details["credentials"], details["region"]), ("environment", REGION))
        self.assertTrue(all(c["akid"] == ENV_KEY[0] for c in self.ec2_calls()))
        self.assertEqual(self.aws.seen("ec2-refused"), [])
        self.assertEqual(self.aws.seen("imds"), ["placement/region"])
        self.assertEqual(self.aws.seen("imds-401"), [])
        self.assert_no_secret(ENV_KEY[1], ENV_KEY[2])

    def test_3_instance_role_region_and_own_tag_value_from_imds(self):
        self.start()
        st = self.wait_nodes(WEB, "the web instances (this instance's own tag value)")
        details = topology(st, "e")["details"]
        self.assertEqual(details["credentials"], "instance role " + ROLE)
        self.assertEqual(details["tag"], "cluster=web (own value)")
        role_akid = json.loads(self.aws.role_json)["AccessKeyId"]
        calls = self.ec2_calls()
        self.assertEqual(calls[0]["form"].get("InstanceId.1"), SELF_ID)
        self.assertTrue(all(c["akid"] == role_akid for c in calls))
        self.assertEqual(self.aws.seen("ec2-refused"), [])
        self.assertEqual(self.aws.seen("imds-401"), [])
        self.assertGreaterEqual(len(self.aws.seen("imds-token")), 1)
        # The server does insist on the IMDSv2 token.
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.aws.url + "/latest/meta-data/instance-id", timeout=5)
        self.assertEqual(e.exception.code, 401)
        self.assert_no_secret(self.aws.role_secret)

    def test_4_no_role_and_no_credentials_is_a_clear_error(self):
        self.aws.has_role = False
        self.start(region=REGION, ec2_tagvalue="web")
        st = self.wait_error("iam/security-credentials/", "the missing role reported")
        self.assertIn("HTTP 404", topology(st, "e")["discovery_error"])
        self.assertEqual(node_states(st, "e"), {})
        self.assertEqual(self.ec2_calls(), [])

    def test_5_check_refuses_half_credentials_and_a_bad_region_at_their_position(self):
        """The plugin's constraints (needs) and validate() (region names), built out of tree
        against the installed SDK, are applied by `clusterd check` (ABI 1.3)."""
        for config, key, message in [
                ({"access_key_id": CONFIG_KEY[0]}, "access_key_id",
                 "needs 'secret_access_key' to be set as well"),
                ({"session_token": "tok-7f3a9c-secret"}, "session_token",
                 "needs 'access_key_id' to be set as well"),
                ({"region": "Europe"}, "region", '"Europe" is not an AWS region name'),
                ({"app_prefix": "my@app"}, "app_prefix",
                 '"my@app" is not the name part of a node name')]:
            with self.subTest(key):
                rc, out, path, lines = self.check(ec2_tagvalue="web", **config)
                self.assertEqual(rc, 1, out)
                line = next(i for i, ln in enumerate(lines) if ln.startswith(key + " = ")) + 1
                column = lines[line - 1].index("= ") + 3
                self.assertIn(f"{path}:{line}:{column}: topologies.e.config.{key}: {message}", out)
                self.assertNotIn("tok-7f3a9c", out)  # a secret's value is never shown
        rc, out, _, _ = self.check(region=REGION, ec2_tagvalue="web")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.aws.log, [])

    def test_6_the_shipped_example_passes_check(self):
        """conf/plugins/ec2.toml.example, with this plugin's directory as plugin_path."""
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf",
                               "plugins", "ec2.toml.example")
        with open(example, encoding="utf-8") as f:
            text = f.read()
        self.assertNotRegex(text, r"(?m)^\[clusterd\]")  # the table is added here
        rc, out, _, _ = harness.check_config(
            f"[clusterd]\nplugin_path = {toml_list([self.plugin_dir])}\n\n{text}",
            harness.ARGS.bin_dir)
        self.assertEqual(rc, 0, out)


def main(argv=None):
    def add_arguments(parser):
        parser.add_argument("--build-dir", required=True, help="the clusterd build tree")
        parser.add_argument("--cmake", default="cmake", help="cmake to build the plugin with")
    return harness.run_tests([Ec2], argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
