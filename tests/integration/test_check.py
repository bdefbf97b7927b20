#!/usr/bin/env python3
"""Integration test: `clusterd check` refuses what `clusterd run` would refuse, with
file:line:column, the dotted key and a message, for option constraints (ABI 1.3: ranges,
formats, non-empty, finite, needs/conflicts) and plugins' validate() callbacks, with the real
in-tree plugins. Each case is also given to `clusterd run`, which must refuse to start with the
same problem line (so the two never disagree).

    test_check.py --bin-dir <dir of clusterd>
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# A transport every strategy case can use: the command transport with a program that exists.
TRANSPORT = ["[transports.t]", 'plugin = "command"', 'connect = ["/bin/true"]', ""]


def strategy(plugin, *config_lines):
    return TRANSPORT + [f"[topologies.x]", f'strategy = "{plugin}"', "[topologies.x.config]",
                        *config_lines]


def transport(plugin, *lines):
    return [f"[transports.t]", f'plugin = "{plugin}"', *lines]


# (name, config lines, the line that is wrong, the value whose column is reported, key, message)
CASES = [
    # The cases of the issue: each passed `check` and failed at `run` before ABI 1.3.
    ("gossip secret without compat",
     strategy("gossip", 'secret = "0123456789abcdef"'),
     'secret = "0123456789abcdef"', '"0123456789abcdef"', "topologies.x.config.secret",
     r"libcluster's secret mode is unauthenticated AES-256-CBC.*compat = \"libcluster\""),
    ("epmd host that is not a node name",
     strategy("epmd", 'hosts = ["foo"]'),
     'hosts = ["foo"]', '["foo"]', "topologies.x.config.hosts",
     r'element #1 "foo" is not a node name: no \'@\''),
    ("dns_poll empty node_basename",
     strategy("dns_poll", 'query = "app.example"', 'node_basename = ""'),
     'node_basename = ""', '""', "topologies.x.config.node_basename", r"must not be empty"),
    ("gossip if_addr that is not IPv4",
     strategy("gossip", 'if_addr = "::1"'),
     'if_addr = "::1"', '"::1"', "topologies.x.config.if_addr",
     r'"::1" is not an IPv4 address'),
    ("kubernetes master over plain http",
     strategy("kubernetes", 'kubernetes_node_basename = "app"', 'kubernetes_selector = "app=x"',
              'kubernetes_master = "http://foo"'),
     'kubernetes_master = "http://foo"', '"http://foo"', "topologies.x.config.kubernetes_master",
     r"only https:// is allowed"),
    ("gossip key shorter than 16 bytes",
     strategy("gossip", 'keys = ["short"]'),
     'keys = ["short"]', '["short"]', "topologies.x.config.keys",
     r"key #1 is shorter than 16 bytes"),
    ("dns polling_interval infinity",
     strategy("dns_poll", 'query = "app.example"', 'node_basename = "app"',
              'polling_interval = "infinity"'),
     'polling_interval = "infinity"', '"infinity"', "topologies.x.config.polling_interval",
     r'must be a finite duration \("infinity" is not allowed here\)'),
    ("dns polling_interval zero",
     strategy("kubernetes_dns", 'service = "app"', 'application_name = "app"',
              "polling_interval = 0"),
     "polling_interval = 0", "0", "topologies.x.config.polling_interval",
     r"must be at least 1ms, not 0ms"),
    # More of the checks that moved from init() into constraints or validate().
    ("gossip port out of range",
     strategy("gossip", "port = 70000"),
     "port = 70000", "70000", "topologies.x.config.port", r"must be from 1 to 65535, not 70000"),
    ("gossip keys and secret together",
     strategy("gossip", 'compat = "libcluster"', 'secret = "s3cret-s3cret-s3"',
              'keys = ["0123456789abcdef0123"]'),
     'keys = ["0123456789abcdef0123"]', '["0123456789abcdef0123"]', "topologies.x.config.keys",
     r"set either 'keys' or 'secret', not both"),
    ("gossip group that is not multicast",
     strategy("gossip", 'multicast_addr = "10.0.0.1"'),
     'multicast_addr = "10.0.0.1"', '"10.0.0.1"', "topologies.x.config.multicast_addr",
     r"10\.0\.0\.1 is not a multicast address"),
    ("local_epmd zero epmd_timeout",
     strategy("local_epmd", 'epmd_timeout = "0s"'),
     'epmd_timeout = "0s"', '"0s"', "topologies.x.config.epmd_timeout",
     r"must be at least 1ms, not 0ms"),
    ("erlang_hosts epmd_port zero",
     strategy("erlang_hosts", "epmd_port = 0"),
     "epmd_port = 0", "0", "topologies.x.config.epmd_port", r"must be from 1 to 65535, not 0"),
    ("kubernetes watch_timeout under a second",
     strategy("kubernetes", 'kubernetes_node_basename = "app"', 'kubernetes_selector = "app=x"',
              'watch_timeout = "500ms"'),
     'watch_timeout = "500ms"', '"500ms"', "topologies.x.config.watch_timeout",
     r"must be at least 1s, not 500ms"),
    ("kubernetes basename with @",
     strategy("kubernetes", 'kubernetes_node_basename = "app@x"', 'kubernetes_selector = "a=b"'),
     'kubernetes_node_basename = "app@x"', '"app@x"',
     "topologies.x.config.kubernetes_node_basename", r'"app@x" is not the name part of a node'),
    ("kubernetes_dnssrv basename with whitespace",
     strategy("kubernetes_dnssrv", 'service = "s"', 'namespace = "n"',
              'application_name = "my app"'),
     'application_name = "my app"', '"my app"', "topologies.x.config.application_name",
     r'"my app" is not the name part of a node name'),
    ("dns resolver that is a host name",
     strategy("dns_poll", 'query = "q"', 'node_basename = "app"', 'resolver = "dns.example"'),
     'resolver = "dns.example"', '"dns.example"', "topologies.x.config.resolver",
     r"is not an IP address"),
    ("rancher metadata_url without scheme",
     strategy("rancher", 'node_basename = "app"', 'metadata_url = "rancher-metadata/latest"'),
     'metadata_url = "rancher-metadata/latest"', '"rancher-metadata/latest"',
     "topologies.x.config.metadata_url", r"is not an http:// or https:// URL"),
    ("erlang transport node that is not a node name",
     transport("erlang", 'node = "app"', 'cookie = "c"'),
     'node = "app"', '"app"', "transports.t.node", r'"app" is not a node name'),
    ("erlang transport with node and nodes",
     transport("erlang", 'node = "app@h"', 'nodes = "local"', 'cookie = "c"'),
     'node = "app@h"', '"app@h"', "transports.t.node", r"set either 'node' or 'nodes', not both"),
    ("erlang transport cookie too long",
     transport("erlang", 'nodes = "local"', f'cookie = "{"c" * 600}"'),
     f'cookie = "{"c" * 600}"', '"c', "transports.t.cookie", r"must be from 1 to 512 bytes long$"),
    ("partisan secret shorter than 16 bytes",
     transport("partisan", 'secret = "short"'),
     'secret = "short"', '"short"', "transports.t.secret", r"must be at least 16 bytes long$"),
    ("partisan TLS certificate without its key and CA",
     transport("partisan", 'tls_cert_file = "/etc/ssl/cert.pem"'),
     'tls_cert_file = "/etc/ssl/cert.pem"', '"/etc/ssl/cert.pem"', "transports.t.tls_cert_file",
     r"needs 'tls_key_file' to be set as well"),
    ("partisan heartbeat_timeout not above the interval",
     transport("partisan", 'heartbeat_interval = "2s"', 'heartbeat_timeout = "2s"'),
     'heartbeat_timeout = "2s"', '"2s"', "transports.t.heartbeat_timeout",
     r"must be longer than heartbeat_interval"),
    ("command transport with an empty command",
     transport("command", "connect = []"),
     "connect = []", "[]", "transports.t.connect", r"must have at least 1 element\(s\), not 0"),
    ("command transport with a zero timeout",
     transport("command", 'connect = ["/bin/true"]', 'timeout = "0s"'),
     'timeout = "0s"', '"0s"', "transports.t.timeout", r"must be at least 1ms, not 0ms"),
    ("host key: max_parallel out of range",
     TRANSPORT + ["[topologies.x]", 'strategy = "epmd"', "max_parallel = 0"],
     "max_parallel = 0", "0", "topologies.x.max_parallel", r"must be from 1 to 4096, not 0"),
    ("host key: metrics_listen without a port",
     ["[clusterd]", 'metrics_listen = "127.0.0.1"', ""] + TRANSPORT,
     'metrics_listen = "127.0.0.1"', '"127.0.0.1"', "clusterd.metrics_listen",
     r'"127\.0\.0\.1" is not IP:PORT'),
]


class CheckRefusesWhatRunRefuses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="clusterd-check-")
        cls.exe = os.path.join(harness.ARGS.bin_dir, "clusterd")

    @classmethod
    def tearDownClass(cls):
        if harness.any_test_failed() or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[test] kept {cls.dir}", file=sys.stderr)
        else:
            import shutil
            shutil.rmtree(cls.dir, ignore_errors=True)

    def write(self, name, lines):
        path = os.path.join(self.dir, re.sub(r"\W+", "_", name) + ".toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def run_clusterd(self, *args):
        env = dict(os.environ, CLUSTERD_ERLANG_COOKIE="")
        r = subprocess.run([self.exe, *args], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30, cwd=self.dir, env=env)
        return r.returncode, r.stdout + r.stderr

    def test_every_case(self):
        for name, lines, bad_line, value, key, message in CASES:
            with self.subTest(name):
                path = self.write(name, lines)
                line_no = lines.index(bad_line) + 1
                column = bad_line.index(value) + 1
                expected = (rf"{re.escape(path)}:{line_no}:{column}: {re.escape(key)}: "
                            rf".*(?:{message})")
                rc, out = self.run_clusterd("check", "-c", path)
                self.assertEqual(rc, 1, out)
                self.assertRegex(out, rf"(?m)^{expected}", out)
                self.assertNotIn(": OK", out)
                # `run` refuses the same file with the same problem, before starting anything.
                rc, log = self.run_clusterd("run", "-c", path)
                self.assertNotEqual(rc, 0, log)
                self.assertRegex(log, rf"(?m)config: {expected}", log)
                self.assertNotIn("starting (pid", log)

    def test_the_good_variants_pass(self):
        """The same plugins with valid values: constraints refuse only what is wrong."""
        good = [
            strategy("gossip", 'compat = "libcluster"', 'secret = "s3cret"'),
            strategy("gossip", 'keys = ["0123456789abcdef", "fedcba9876543210"]'),
            strategy("epmd", 'hosts = ["a@127.0.0.1", "b@host.example"]', 'timeout = "infinity"'),
            strategy("kubernetes", 'kubernetes_node_basename = "app"', 'kubernetes_selector = "a"',
                     'kubernetes_master = "https://10.0.0.1:6443"'),
            strategy("dns_poll", 'query = "q"', 'node_basename = "app"', 'resolver = "[::1]:53"'),
            transport("partisan", 'secret = "0123456789abcdef"'),
        ]
        for i, lines in enumerate(good):
            with self.subTest(i):
                path = self.write(f"good{i}", lines)
                rc, out = self.run_clusterd("check", "-c", path)
                self.assertEqual(rc, 0, out)
                self.assertRegex(out, r": OK \(")

    def test_describe_shows_the_constraints(self):
        rc, out = self.run_clusterd("plugins", "describe", "gossip")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^  port \(integer, default 45892\)\n      must be: from 1 to 65535$")
        self.assertRegex(out, r"(?m)^      must be: an IPv4 address")
        self.assertRegex(out, r"(?m)^      must be: non-empty; not with secret$")


if __name__ == "__main__":
    sys.exit(harness.run_tests([CheckRefusesWhatRunRefuses],
                               description="clusterd check refuses what clusterd run refuses"))
