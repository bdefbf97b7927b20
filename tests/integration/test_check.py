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
    """A transport alone (allowed at the end, so that line numbers stay those of the table)."""
    return [f"[transports.t]", f'plugin = "{plugin}"', *lines, "", "[clusterd]",
            "allow_no_topologies = true"]


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

# Messages that teach (issue 13), each shown exactly: (name, config lines, the line that is
# wrong, the value whose column is reported, key, the whole message). Each is the file's only
# problem, and `run` logs the same line.
EXACT = [
    ("found value and type: an integer in quotes",
     strategy("gossip", 'port = "45892"'),
     'port = "45892"', '"45892"', "topologies.x.config.port",
     'expected an integer, found string "45892"; remove the quotes'),
    ("found value and type: a number for a string",
     strategy("dns_poll", "query = 5", 'node_basename = "app"'),
     "query = 5", "5", "topologies.x.config.query",
     "expected a string, found integer 5; put it in quotes"),
    ("found value and type: a secret is never shown",
     transport("erlang", 'nodes = "local"', "cookie = 123456789"),
     "cookie = 123456789", "123456789", "transports.t.cookie",
     "expected a string, found integer; put it in quotes"),
    ("found value and type: a choice",
     strategy("kubernetes", 'kubernetes_node_basename = "app"', 'kubernetes_selector = "a=b"',
              'mode = "dsn"'),
     'mode = "dsn"', '"dsn"', "topologies.x.config.mode",
     "expected one of ip, dns, hostname; found \"dsn\" (did you mean 'dns'?)"),
    ("did you mean: a host key (and no spurious missing strategy)",
     TRANSPORT + ["[topologies.x]", 'stratgy = "epmd"'],
     'stratgy = "epmd"', '"epmd"', "topologies.x.stratgy",
     "unknown key (did you mean 'strategy'?)"),
    ("did you mean: a table name",
     TRANSPORT + ["[topology.x]", 'strategy = "epmd"'],
     "[topology.x]", "[", "topology", "unknown table (did you mean [topologies.x]?)"),
    ("did you mean: a transport reference",
     TRANSPORT + ["[transports.beam]", 'plugin = "command"', 'connect = ["/bin/true"]',
                  "[topologies.x]", 'strategy = "epmd"', 'transport = "bema"'],
     'transport = "bema"', '"bema"', "topologies.x.transport",
     "no transport named 'bema' (did you mean 'beam'?)"),
    ("typo of a required plugin option: one problem",
     transport("command", 'conect = ["/bin/true"]'),
     'conect = ["/bin/true"]', '["/bin/true"]', "transports.t.conect",
     "unknown option for plugin 'command' (did you mean 'connect'?)"),
    ("loose value: a duration string without a unit",
     strategy("dns_poll", 'query = "app.example"', 'node_basename = "app"',
              'polling_interval = "5"'),
     'polling_interval = "5"', '"5"', "topologies.x.config.polling_interval",
     '"5" has no unit: write "5s" or "5ms", or the integer 5 for milliseconds as in libcluster'),
    ("loose value: a bare string for a list",
     strategy("epmd", 'hosts = "a@127.0.0.1"'),
     'hosts = "a@127.0.0.1"', '"a@127.0.0.1"', "topologies.x.config.hosts",
     'expected an array of strings, found string "a@127.0.0.1"; write ["a@127.0.0.1"]'),
    ("libcluster connect MFA: the erlang transport does it",
     TRANSPORT + ["[topologies.x]", 'strategy = "epmd"',
                  'connect = "{:net_kernel, :connect_node, []}"'],
     'connect = "{:net_kernel, :connect_node, []}"', '"{', "topologies.x.connect",
     "libcluster's connect MFA is the transport's job here: the erlang transport "
     '([transports.NAME] plugin = "erlang") connects with net_kernel:connect_node, as this MFA '
     "does; remove this key"),
    ("libcluster connect MFA: another function is the command transport",
     TRANSPORT + ["[topologies.x]", 'strategy = "epmd"',
                  'connect = [":rpc", ":call", [":a@h", ":net_kernel", ":connect_node"]]'],
     'connect = [":rpc", ":call", [":a@h", ":net_kernel", ":connect_node"]]', "[",
     "topologies.x.connect",
     "libcluster's connect MFA is the transport's job here: for another function, use the "
     'command transport ([transports.NAME] plugin = "command", connect = ["/path/program"] '
     '(the node is appended as the last argument)) and name it in transport = "NAME"; remove '
     "this key"),
    ("libcluster disconnect MFA: the policy key",
     TRANSPORT + ["[topologies.x]", 'strategy = "epmd"',
                  'disconnect = "{:erlang, :disconnect_node, []}"'],
     'disconnect = "{:erlang, :disconnect_node, []}"', '"{', "topologies.x.disconnect",
     "libcluster's disconnect MFA is the transport's job here: the erlang transport "
     '([transports.NAME] plugin = "erlang") disconnects with erlang:disconnect_node, as this MFA '
     'does; disconnect here is the policy: "removed" (disconnect nodes the strategy stops '
     "reporting, as libcluster's polling strategies do) or \"never\""),
    ("libcluster list_nodes MFA",
     TRANSPORT + ["[topologies.x]", 'strategy = "epmd"',
                  'list_nodes = "{MyApp.Cluster, :members, []}"'],
     'list_nodes = "{MyApp.Cluster, :members, []}"', '"{', "topologies.x.list_nodes",
     "libcluster's list_nodes MFA is the transport's job here: for another function, use the "
     'command transport ([transports.NAME] plugin = "command", list_nodes = ["/path/program"] '
     '(printing one node per line)) and name it in transport = "NAME"; remove this key'),
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

    def problem_lines(self, out, prefix=""):
        """The problem lines of `check`'s output or `run`'s log, in order, without the log's
        own prefix."""
        return [m.group(1) for m in re.finditer(rf"(?m)^.*?{prefix}(\S+:\d+:\d+: .*)$", out)]

    def test_messages_that_teach(self):
        for name, lines, bad_line, value, key, message in EXACT:
            with self.subTest(name):
                path = self.write(name, lines)
                line_no = lines.index(bad_line) + 1
                column = bad_line.index(value) + 1
                expected = f"{path}:{line_no}:{column}: {key}: {message}"
                rc, out = self.run_clusterd("check", "-c", path)
                self.assertEqual(rc, 1, out)
                self.assertEqual(out.splitlines(), [expected, f"{path}: 1 problem(s)"])
                rc, log = self.run_clusterd("run", "-c", path)
                self.assertNotEqual(rc, 0, log)
                self.assertEqual(self.problem_lines(log, "config: "), [expected], log)
                self.assertIn(f"not starting: 1 problem(s) in {path}", log)

    def test_unknown_strategy_suggests_a_known_one(self):
        """A libcluster module name with a typo: the name in libcluster's spelling; a plain
        name: ours. `run` would start without the topology (a unit fails alone)."""
        for written, meant in [("Cluster.Strategy.Kuberentes", "Cluster.Strategy.Kubernetes"),
                               ("Elixir.Cluster.Strategy.Epdm", "Elixir.Cluster.Strategy.Epmd"),
                               ("kubernetes_dsn", "kubernetes_dns"),
                               ("Cluster.Strategy.DNSPol", "Cluster.Strategy.DNSPoll")]:
            with self.subTest(written):
                lines = TRANSPORT + ["[topologies.x]", f'strategy = "{written}"']
                path = self.write("strategy " + written, lines)
                rc, out = self.run_clusterd("check", "-c", path)
                self.assertEqual(rc, 1, out)
                column = lines[-1].index('"') + 1
                self.assertRegex(out, rf"(?m)^{re.escape(path)}:{len(lines)}:{column}: "
                                      rf"topologies\.x\.strategy: no plugin '{re.escape(written)}' "
                                      rf"\(did you mean '{re.escape(meant)}'\?\); looked for ")
                self.assertTrue(out.endswith(f"{path}: 1 problem(s)\n"), out)
        # A transport plugin the same way.
        lines = transport("erlnag", 'nodes = "local"')
        path = self.write("transport erlnag", lines)
        rc, out = self.run_clusterd("check", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"^{re.escape(path)}:2:10: transports\.t\.plugin: no plugin "
                              r"'erlnag' \(did you mean 'erlang'\?\); looked for ")
        # `run` starts without it, and says the same in the topology's status and the log.
        lines = TRANSPORT + ["[topologies.x]", 'strategy = "Cluster.Strategy.Kuberentes"']
        with harness.Daemon("\n".join(lines) + "\n", harness.ARGS.bin_dir) as d:
            said = ("no plugin 'Cluster.Strategy.Kuberentes' (did you mean "
                    "'Cluster.Strategy.Kubernetes'?); looked for ")
            d.wait_until(lambda st: said in (harness.topology(st, "x") or {}).get("error", ""),
                         10.0, "topology x failed with the suggestion")
            self.assertIn(said, d.log_text())

    def test_every_problem_at_once_sorted_and_the_same_in_run(self):
        """Host-level problems do not hide the plugins' ones; all come sorted by position, with
        the count, and `run` logs the very same lines in the same order."""
        lines = [
            "[topologies.x]",                       # 1
            'strategy = "epmd"',                    # 2
            'transport = "t"',                      # 3
            "max_parallel = 0",                     # 4: host key
            "[topologies.x.config]",                # 5
            'hosts = ["nope"]',                     # 6: plugin option
            "",                                     # 7
            "[clusterd]",                           # 8
            'log_level = "loud"',                   # 9: host key
            "",                                     # 10
            "[transports.t]",                       # 11
            'plugin = "command"',                   # 12
            'connect = "/bin/true"',                # 13: plugin option
        ]
        path = self.write("everything at once", lines)
        expected = [
            f"{path}:4:16: topologies.x.max_parallel: must be from 1 to 4096, not 0",
            f'{path}:6:9: topologies.x.config.hosts: element #1 "nope" is not a node name: '
            "no '@' (expected name@host)",
            f'{path}:9:13: clusterd.log_level: expected one of trace, debug, info, warn, error; '
            'found "loud"',
            f'{path}:13:11: transports.t.connect: expected an array of strings, found string '
            '"/bin/true"; write ["/bin/true"]',
        ]
        rc, out = self.run_clusterd("check", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out.splitlines(), expected + [f"{path}: 4 problem(s)"])
        rc, log = self.run_clusterd("run", "-c", path)
        self.assertNotEqual(rc, 0, log)
        self.assertEqual(self.problem_lines(log, "config: "), expected, log)
        self.assertIn(f"not starting: 4 problem(s) in {path}", log)

    def test_a_syntax_error_has_the_count_line_too(self):
        path = self.write("syntax", ["[clusterd", 'log_level = "info"'])
        rc, out = self.run_clusterd("check", "-c", path)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"^{re.escape(path)}:1:\d+: .*\n{re.escape(path)}: 1 problem\(s\)\n$")

    def test_an_empty_file_or_no_topology_is_refused(self):
        """Issue 14, point 8: an empty file (or blanks and comments only) and a file without
        topologies are refused by `check` and `run`, naming the file; allow_no_topologies =
        true is the opt-in for transports alone."""
        empty = "the file is empty (nothing but blanks and comments): a configuration needs a " \
                "[transports.NAME] and a [topologies.NAME] table"
        none = "topologies: no [topologies.NAME] table: nothing would form a cluster (add one, " \
               "or set allow_no_topologies = true in [clusterd] to run the transports alone)"
        cases = [("empty", [], None, empty), ("blank", ["", "  ", "\t"], None, empty),
                 ("comments", ["# clusterd.toml", "   # nothing else"], None, empty),
                 ("transports only", TRANSPORT, None, none),
                 ("empty topologies table", TRANSPORT + ["[topologies]"], 5, none)]
        for name, lines, line_no, message in cases:
            with self.subTest(name):
                path = self.write(name, lines)
                where = f"{path}:{line_no}:1" if line_no else path
                rc, out = self.run_clusterd("check", "-c", path)
                self.assertEqual(rc, 1, out)
                self.assertEqual(out.splitlines(), [f"{where}: {message}", f"{path}: 1 problem(s)"])
                rc, log = self.run_clusterd("run", "-c", path)
                self.assertEqual(rc, 2, log)
                self.assertIn(f"config: {where}: {message}", log)
                self.assertNotIn("starting (pid", log)
        path = self.write("opt-in", ["[clusterd]", "allow_no_topologies = true", *TRANSPORT])
        rc, out = self.run_clusterd("check", "-c", path)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r": OK \(")

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

    def test_the_shipped_examples_pass(self):
        """Every conf/plugins/*.toml.example and conf/clusterd.toml is a configuration `check`
        accepts (those of the third-party plugins are checked in test_ec2.py, test_consul.py
        and test_postgres.py, with the out-of-tree plugin's directory)."""
        conf = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf")
        examples = sorted(os.path.join(conf, "plugins", f)
                          for f in os.listdir(os.path.join(conf, "plugins"))
                          if f.endswith(".toml.example")
                          and f not in ("ec2.toml.example", "consul.toml.example",
                                        "postgres.toml.example"))
        self.assertGreaterEqual(len(examples), 12)
        for path in examples + [os.path.join(conf, "clusterd.toml")]:
            with self.subTest(os.path.basename(path)):
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
