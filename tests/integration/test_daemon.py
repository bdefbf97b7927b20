#!/usr/bin/env python3
"""Integration test: the real clusterd's lifecycle with the real plugins (epmd strategy,
command transport) and real child processes: SIGTERM, SIGHUP reloads (rejected and applied),
the control socket and clusterctl, and `clusterd check`.

The commands the command transport runs are the helper scripts of test_command_transport.py
(written into a fresh work directory per daemon): they record their argv, so the test can
tell which connects and disconnects really ran.

Not covered here, and why:
  - disconnect = "removed": no in-tree strategy changes its node set at runtime (epmd and
    fx_good_strategy report a fixed list), and a SIGHUP that changes the hosts restarts the
    topology as a new instance, which knows nothing of the old nodes. The policy is covered
    by the reconciler unit tests (tests/unit/reconciler_test.cpp, Removed*).
  - KEY_file / KEY_env secrets: no in-tree plugin declares a secret option.

    test_daemon.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import connected_nodes, node_states, toml_list, toml_string, topology  # noqa: E402
from harness import transport  # noqa: E402
from test_command_transport import (DOWN_EXIT, DOWN_MESSAGE, Workdir, node, poll,  # noqa: E402
                                    process_gone)

WAIT = 20.0


def setUpModule():
    # The harness runs clusterd with cwd = its temporary directory: make the paths absolute.
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


def n(name):
    return f"{name}@127.0.0.1"


def log_count(d, text):
    return d.log_text().count(text)


def wait_log_count(d, text, count, timeout=WAIT):
    """Waits until `text` occurs at least `count` times in the daemon's log."""
    def enough():
        if not d.running():
            raise harness.DaemonError(f"clusterd exited while waiting for {text!r}\n"
                                      f"{d.log_tail()}")
        return log_count(d, text) >= count
    try:
        poll(enough, timeout, f"{count} x {text!r} in the log")
    except harness.WaitTimeout as e:
        raise harness.WaitTimeout(f"{e}\n{d.log_tail()}") from None


def write_config(path, text):
    tmp = path + ".new"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def socket_line(d):
    return f"control_socket = {toml_string(d.socket_path)}"


def reload(d, text, outcome):
    """Writes `text` as the daemon's config, sends SIGHUP and waits for `outcome`
    ("reload done" or "reload rejected") to be logged once more."""
    before = log_count(d, outcome)
    write_config(d.config_path, text)
    d.signal(signal.SIGHUP)
    wait_log_count(d, outcome, before + 1)


def raw_request(path, data, timeout=5.0):
    """Sends raw bytes on the control socket; returns everything answered (bytes)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        buf = bytearray()
        for _ in range(10000):
            left = deadline - time.monotonic()
            if left <= 0:
                raise harness.ProtocolError(f"no complete answer within {timeout} s: {buf!r}")
            s.settimeout(left)
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
        return bytes(buf)


def crash_lines(text):
    pattern = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                         r"runtime error:|terminate called|Segmentation fault|Aborted")
    return [line for line in text.splitlines() if pattern.search(line)]


class WithWorkdir(unittest.TestCase):
    """Base: one Workdir (helper scripts) and one Daemon per class."""

    @classmethod
    def config(cls, w):
        raise NotImplementedError

    @classmethod
    def prepare(cls, w):
        """Files to create before the daemon starts."""

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir)
        try:
            cls.prepare(cls.work)
            cls.d = harness.Daemon(cls.config(cls.work), harness.ARGS.bin_dir)
            cls.d.start()
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.close()
        finally:
            cls.work.close()


def transport_table(name, w, tag, extra=()):
    # No list_nodes: a list answer that was taken before a connect completed would undo that
    # connect (a known bug, see test_command_transport.SlowListNodes) and make the connect
    # counts these tests compare flaky. list_nodes is covered in test_command_transport.py.
    return [
        f"[transports.{name}]",
        'plugin = "command"',
        f"connect = {toml_list([w.cmd, 'connect', tag])}",
        f"disconnect = {toml_list([w.cmd, 'disconnect', tag])}",
        *extra,
        "",
    ]


def topology_table(name, transport_name, hosts, extra=()):
    return [
        f"[topologies.{name}]",
        'strategy = "epmd"',
        f"transport = {toml_string(transport_name)}",
        *extra,
        f"[topologies.{name}.config]",
        f"hosts = {toml_list(hosts)}",
        "",
    ]


# ---- SIGTERM ---------------------------------------------------------------------------------

class Sigterm(WithWorkdir):
    """SIGTERM with two connected nodes (disconnect = "removed", so a disconnect on stop would
    show) and one connect command hanging: exit 0 promptly, nothing disconnected, the hung
    command killed, the control socket removed."""

    HUNG = n("hung")

    @classmethod
    def config(cls, w):
        return "\n".join([
            "[clusterd]", 'log_level = "debug"', "",
            *transport_table("cmd", w, "cmd"),
            "[transports.slow]", 'plugin = "command"', f"connect = {toml_list([w.hang])}",
            f"disconnect = {toml_list([w.cmd, 'disconnect', 'slow'])}", 'timeout = "60s"', "",
            *topology_table("main", "cmd", [n("a"), n("b")], ['disconnect = "removed"']),
            *topology_table("stuck", "slow", [cls.HUNG],
                            ['disconnect = "removed"', 'connect_timeout = "60s"']),
        ])

    def test_sigterm(self):
        d = self.d
        d.wait_until(lambda s: connected_nodes(s, "main") == {n("a"), n("b")}, WAIT,
                     "a and b connected")
        pids = poll(lambda: self.work.pids("hang.pids"), WAIT, "the hanging connect to start")
        d.wait_until(lambda s: node(s, "stuck", self.HUNG)["state"] == "connecting", WAIT,
                     "the hung node connecting")
        self.assertTrue(os.path.exists(d.socket_path))

        rc = d.stop(timeout=30)
        log = d.log_text()
        self.assertFalse(d.killed, "clusterd ignored SIGTERM")
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + d.log_tail())
        self.assertLess(d.stop_seconds, 5.0, "SIGTERM shutdown was not prompt")
        self.assertEqual(self.work.argv_records("disconnect"), [],
                         "a node was disconnected on stop")
        self.assertNotIn("disconnecting from", log)
        self.assertEqual(sorted(self.work.state()), [n("a"), n("b")])
        self.assertFalse(os.path.exists(d.socket_path), "the control socket file was left")
        poll(lambda: process_gone(pids[0]), 10.0, f"hung connect command {pids[0]} gone")
        self.assertIn("stopping (connections are left as they are)", log)
        self.assertIn("clusterd stopped", log)
        self.assertEqual(crash_lines(log), [])


# ---- SIGHUP: rejected, and unchanged ----------------------------------------------------------

class ReloadRejected(WithWorkdir):
    """An invalid new configuration is rejected with its position; what runs keeps running."""

    @classmethod
    def config(cls, w):
        return cls.text(w, "")

    @classmethod
    def text(cls, w, socket_setting, a_hosts_key="hosts"):
        return "\n".join([
            "[clusterd]", socket_setting, 'log_level = "debug"', "",
            *transport_table("cmd", w, "cmd"),
            "[topologies.A]", 'strategy = "epmd"', 'transport = "cmd"', "[topologies.A.config]",
            f"{a_hosts_key} = {toml_list([n('a1'), n('a2')])}", "",
            *topology_table("B", "cmd", [n("b1")]),
        ])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.before = cls.d.wait_until(
                lambda s: (connected_nodes(s, "A") == {n("a1"), n("a2")}
                           and connected_nodes(s, "B") == {n("b1")}),
                WAIT, "A and B connected")
            cls.runs_before = len(cls.work.argv_records("connect"))
            cls.good = cls.text(cls.work, socket_line(cls.d))
        except BaseException:
            cls.tearDownClass()
            raise

    def assert_unchanged(self):
        st = self.d.status()
        self.assertTrue(self.d.running())
        self.assertEqual([t["name"] for t in st["topologies"]], ["A", "B"])
        for name in ("A", "B"):
            self.assertEqual(topology(st, name)["state"], "running")
            self.assertEqual(node_states(st, name), node_states(self.before, name))
        self.assertEqual(len(self.work.argv_records("connect")), self.runs_before,
                         "a connect command ran again")
        self.assertNotIn("] stopping", self.d.log_text())

    def test_1_syntax_error_is_rejected_with_its_position(self):
        lines = self.good.splitlines()
        lines.append("this line = = is not TOML")
        line_no = len(lines)
        reload(self.d, "\n".join(lines) + "\n", "reload rejected")
        log = self.d.log_text()
        self.assertRegex(log, rf"{re.escape(self.d.config_path)}:{line_no}:\d+: ",
                         "the rejection does not give file:line:column of the syntax error")
        self.assert_unchanged()

    def test_2_unknown_plugin_option_is_rejected(self):
        bad = self.text(self.work, socket_line(self.d), a_hosts_key="hostz")
        reload(self.d, bad, "reload rejected")
        lines = [ln for ln in self.d.log_text().splitlines() if "topologies.A.config.hostz" in ln]
        self.assertTrue(lines, "the rejection does not name topologies.A.config.hostz\n"
                        + self.d.log_tail())
        self.assertIn("did you mean 'hosts'", lines[-1])
        self.assertIn(self.d.config_path, lines[-1])
        self.assert_unchanged()

    def test_3_unknown_plugin_option_position(self):
        bad = self.text(self.work, socket_line(self.d), a_hosts_key="hostz")
        line_no = bad.splitlines().index(next(ln for ln in bad.splitlines()
                                              if ln.startswith("hostz"))) + 1
        reload(self.d, bad, "reload rejected")
        self.assertRegex(self.d.log_text(),
                         rf"{re.escape(self.d.config_path)}:{line_no}:\d+: "
                         r"topologies\.A\.config\.hostz: ")
        self.assert_unchanged()

    def test_4_unchanged_config_reload_restarts_nothing(self):
        a_before = topology(self.d.status(), "A")["last_discovery_ms_ago"]
        before_taken = time.monotonic()  # the first status was taken before this
        reload(self.d, self.good, "reload done")
        after_taken = time.monotonic()  # the second status is taken after this
        st = self.d.status()
        self.assert_unchanged()
        # The same strategy instance: its one report at start keeps ageing (a new instance
        # would have reported during the reload, after before_taken).
        self.assertGreaterEqual(topology(st, "A")["last_discovery_ms_ago"],
                                a_before + (after_taken - before_taken) * 1000 - 5)
        self.assertEqual(self.d.log_text().count("[topology A] running"), 1)

    def test_5_no_crash(self):
        self.assertEqual(crash_lines(self.d.log_text()), [])


# ---- SIGHUP: what restarts --------------------------------------------------------------------

class ReloadSemantics(WithWorkdir):
    """Topologies A (unchanged), B (hosts changed), C (removed), D (new) on transport T
    (unchanged), and E (unchanged text) on transport U (changed): one SIGHUP."""

    V1 = {"A": [n("a1"), n("a2")], "B": [n("b1"), n("b2")], "C": [n("c1")]}
    V2 = {"A": [n("a1"), n("a2")], "B": [n("b2"), n("b3")], "D": [n("d1")]}
    E_HOSTS = [n("e1")]

    @classmethod
    def text(cls, w, socket_setting, topologies, u_timeout):
        lines = ["[clusterd]", socket_setting, 'log_level = "debug"', "",
                 *transport_table("T", w, "T"),
                 *transport_table("U", w, "U", [f"timeout = {toml_string(u_timeout)}"])]
        for name, hosts in topologies.items():
            lines += topology_table(name, "T", hosts)
        lines += topology_table("E", "U", cls.E_HOSTS)
        return "\n".join(lines)

    @classmethod
    def config(cls, w):
        return cls.text(w, "", cls.V1, "20s")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        try:
            def all_connected(s):
                return (all(connected_nodes(s, t) == set(h) for t, h in cls.V1.items())
                        and connected_nodes(s, "E") == set(cls.E_HOSTS))
            d.wait_until(all_connected, WAIT, "every v1 node connected")
            cls.runs_before = {h: cls.work.runs_for("connect", h)
                               for hosts in cls.V1.values() for h in hosts}
            cls.a_age_before = topology(d.status(), "A")["last_discovery_ms_ago"]
            cls.a_age_taken = time.monotonic()  # that status was taken before this
            cls.reload_sent = time.monotonic()
            reload(d, cls.text(cls.work, socket_line(d), cls.V2, "21s"), "reload done")
        except BaseException:
            cls.tearDownClass()
            raise

    def test_A_unchanged_is_untouched(self):
        self.d.wait_until(lambda s: connected_nodes(s, "D") == {n("d1")}, WAIT,
                          "D connected (the reload's work done)")
        taken = time.monotonic()  # the next status is taken after this
        st = self.d.status()
        log = self.d.log_text()
        self.assertNotIn("[topology A] stopping", log)
        self.assertNotIn("[transport T] stopping", log)
        self.assertEqual(log.count("[topology A] running"), 1)
        self.assertEqual(connected_nodes(st, "A"), set(self.V2["A"]))
        for h in self.V1["A"]:
            self.assertEqual(self.work.runs_for("connect", h), self.runs_before[h],
                             f"connect ran again for {h} of the unchanged topology A")
        # Still the first strategy instance: its only report (at start) keeps ageing.
        age = topology(st, "A")["last_discovery_ms_ago"]
        self.assertGreaterEqual(age, self.a_age_before + (taken - self.a_age_taken) * 1000 - 5)

    def test_B_changed_restarts_with_the_new_hosts(self):
        st = self.d.wait_until(lambda s: node_states(s, "B") == {n("b2"): "connected",
                                                                  n("b3"): "connected"},
                               WAIT, "B = b2, b3 connected")
        self.assertIn("[topology B] stopping", self.d.log_text())
        self.assertEqual(self.d.log_text().count("[topology B] running"), 2)
        self.assertGreaterEqual(self.work.runs_for("connect", n("b3")), 1)
        self.assertNotIn(n("b1"), node_states(st, "B"))
        age = topology(st, "B")["last_discovery_ms_ago"]
        self.assertLessEqual(age, (time.monotonic() - self.reload_sent) * 1000 + 50,
                             "B's strategy did not report anew after the reload")

    def test_C_removed_is_gone(self):
        st = self.d.wait_until(lambda s: topology(s, "C") is None, WAIT, "C gone")
        self.assertIn("[topology C] stopping", self.d.log_text())
        self.assertEqual(sorted(t["name"] for t in st["topologies"]), ["A", "B", "D", "E"])

    def test_D_new_runs(self):
        st = self.d.wait_until(lambda s: connected_nodes(s, "D") == {n("d1")}, WAIT,
                               "D running, d1 connected")
        self.assertEqual(topology(st, "D")["state"], "running")
        self.assertEqual(topology(st, "D")["transport"], "T")

    def test_E_restarts_because_its_transport_changed(self):
        st = self.d.wait_until(lambda s: connected_nodes(s, "E") == set(self.E_HOSTS), WAIT,
                               "E connected again")
        log = self.d.log_text()
        self.assertIn("[transport U] stopping", log)
        self.assertIn("[topology E] stopping", log)
        self.assertEqual(log.count("[transport U] running"), 2)
        self.assertEqual(log.count("[topology E] running"), 2)
        self.assertEqual(topology(st, "E")["state"], "running")
        self.assertEqual(transport(st, "U")["state"], "running")
        self.assertEqual(sorted(t["name"] for t in st["transports"]), ["T", "U"])

    def test_no_disconnect_and_no_crash(self):
        self.d.wait_until(lambda s: topology(s, "C") is None, WAIT, "C gone")
        self.assertEqual(self.work.argv_records("disconnect"), [],
                         "a reload disconnected a node (every topology is disconnect = never)")
        self.assertEqual(crash_lines(self.d.log_text()), [])


# ---- control socket and clusterctl -------------------------------------------------------------

class ControlSocket(WithWorkdir):
    """Topology web: a connected, b down (in backoff for 10 minutes after one attempt)."""

    @classmethod
    def prepare(cls, w):
        w.touch("down-" + n("b"))

    @classmethod
    def config(cls, w):
        return "\n".join([
            *transport_table("cmd", w, "cmd"),
            *topology_table("web", "cmd", [n("a"), n("b")],
                            ['backoff_initial = "10m"', 'backoff_max = "10m"']),
        ])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.d.wait_until(lambda s: node_states(s, "web") == {n("a"): "connected",
                                                                  n("b"): "backoff"},
                             WAIT, "a connected, b in backoff")
        except BaseException:
            cls.tearDownClass()
            raise

    def ctl(self, *args):
        r = self.d.clusterctl(*args)
        self.assertEqual(r.returncode, 0, f"clusterctl {args}: {r.stderr}")
        return r.stdout

    def test_status_text(self):
        out = self.ctl("status")
        self.assertIn(f"(pid {self.d.pid})", out)
        self.assertRegex(out, r"(?m)^(not )?ready$")  # no metrics listener configured
        self.assertRegex(out, r"transport cmd \(command\): running")
        self.assertRegex(out, r"topology web \(strategy epmd, transport cmd, disconnect never\): "
                              r"running")
        self.assertRegex(out, r"(?m)^\s+a@127\.0\.0\.1\s+connected\s*$")
        # The node's own line, not a detail line that also names it ("not registered in
        # epmd: a@127.0.0.1, b@127.0.0.1" appears once the epmd check has answered).
        b_line = next((ln for ln in out.splitlines() if re.match(r"\s+b@127\.0\.0\.1\s", ln)),
                      "")
        self.assertRegex(b_line, r"^\s+b@127\.0\.0\.1\s+backoff\s+attempts 1\b")
        self.assertIn(DOWN_MESSAGE.format(node=n("b")), b_line)
        self.assertIn(f"exited with code {DOWN_EXIT}", b_line)

    def test_members_text(self):
        out = self.ctl("members")
        self.assertRegex(out, r"(?m)^web:$")
        self.assertRegex(out, r"(?m)^\s+a@127\.0\.0\.1\s+connected$")
        self.assertRegex(out, r"(?m)^\s+b@127\.0\.0\.1\s+backoff$")

    def test_topologies_text(self):
        out = self.ctl("topologies")
        self.assertRegex(out, r"(?m)^TOPOLOGY\s+STRATEGY\s+TRANSPORT\s+STATE")
        self.assertRegex(out, r"(?m)^web\s+epmd\s+cmd\s+running\s+1/2\s*$")

    def test_json_outputs_parse(self):
        for command in ("status", "members", "topologies"):
            with self.subTest(command=command):
                doc = json.loads(self.ctl(command, "--json"))
                self.assertEqual(doc["pid"], self.d.pid)
                self.assertEqual(node_states(doc, "web"), {n("a"): "connected",
                                                           n("b"): "backoff"})
                b = node(doc, "web", n("b"))
                self.assertEqual(b["attempts"], 1)
                self.assertIsInstance(b["retry_in_ms"], int)
                self.assertEqual(transport(doc, "cmd")["plugin"], "command")

    def test_clusterctl_finds_the_socket_from_the_config(self):
        r = harness.clusterctl(self.d.bin_dir, ["-c", self.d.config_path, "status", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["pid"], self.d.pid)
        r = harness.clusterctl(self.d.bin_dir, ["-c", self.d.config_path, "members"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("a@127.0.0.1", r.stdout)

    def test_clusterctl_without_a_daemon_fails_clearly(self):
        missing = os.path.join(self.work.path, "no-daemon.sock")
        r = harness.clusterctl(self.d.bin_dir, ["status"], socket_path=missing)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot talk to clusterd", r.stderr)
        self.assertIn(missing, r.stderr)

    def test_second_daemon_on_the_same_socket_refuses(self):
        exe = os.path.join(self.d.bin_dir, "clusterd")
        r = subprocess.run([exe, "run", "-c", self.d.config_path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30, cwd=self.work.path)
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn(f"control socket {self.d.socket_path} is in use", out)
        self.assertTrue(self.d.running())
        self.assertTrue(os.path.exists(self.d.socket_path))
        self.assertEqual(self.d.status()["pid"], self.d.pid)
        # It did not start the topologies either: no connect ran for a again.
        self.assertEqual(self.work.runs_for("connect", n("a")), 1)

    def test_garbage_requests_get_an_error_and_the_daemon_stays_up(self):
        for data in (b"this is not json\n", b"[1, 2]\n", b'{"cmd": 5}\n', b"\n",
                     b'{"nocmd": "status"}\n', b"\xff\xfe\x00garbage\n"):
            with self.subTest(data=data):
                answer = raw_request(self.d.socket_path, data)
                doc = json.loads(answer.split(b"\n")[0])
                self.assertIsInstance(doc, dict)
                self.assertIsInstance(doc.get("error"), str, doc)
                self.assertTrue(doc["error"])
        doc = json.loads(raw_request(self.d.socket_path, b'{"cmd": "frobnicate"}\n'))
        self.assertEqual(doc, {"error": "unknown command 'frobnicate'"})
        self.assertTrue(self.d.running())
        self.assertEqual(self.d.status()["pid"], self.d.pid)

    def test_a_silent_client_does_not_block_others(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
            idle.connect(self.d.socket_path)
            began = time.monotonic()
            st = self.d.status(timeout=3.0)  # a second client, while the first says nothing
            self.assertLess(time.monotonic() - began, 3.0)
            self.assertEqual(st["pid"], self.d.pid)
            idle.setblocking(False)
            with self.assertRaises(BlockingIOError, msg="the idle client was answered/closed"):
                idle.recv(1)
            # The idle client is still served when it finally asks.
            idle.setblocking(True)
            idle.settimeout(5.0)
            idle.sendall(b'{"cmd": "status"}\n')
            buf = bytearray()
            for _ in range(10000):
                chunk = idle.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
            self.assertEqual(json.loads(bytes(buf).split(b"\n")[0])["pid"], self.d.pid)

    def test_a_silent_client_is_eventually_dropped(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
            idle.connect(self.d.socket_path)
            idle.settimeout(15.0)
            began = time.monotonic()
            try:
                data = idle.recv(1 << 16)
            except socket.timeout:
                self.fail("a client that sends nothing is kept for 15 s or more")
            self.assertLess(time.monotonic() - began, 15.0)
            # Closed without an answer, or with an error answer: either way not a status.
            if data:
                self.assertIn("error", json.loads(data.split(b"\n")[0]))
        self.assertTrue(self.d.running())


class StaleSocket(unittest.TestCase):
    """A socket file left by a daemon that died (SIGKILL) is replaced by the next one."""

    def test_stale_socket_is_replaced(self):
        config = "\n".join([
            "[transports.cmd]", 'plugin = "command"', 'connect = ["/bin/true"]', "",
            "[topologies.t]", 'strategy = "epmd"', "[topologies.t.config]", "hosts = []", "",
        ])
        first = harness.Daemon(config, harness.ARGS.bin_dir)
        first.start()
        second = None
        try:
            first.proc.kill()  # our own child, by its Popen
            first.proc.wait(10)
            first.stop()
            self.assertTrue(os.path.exists(first.socket_path), "no socket file left behind")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                with self.assertRaises(OSError):
                    s.connect(first.socket_path)

            exe = os.path.join(first.bin_dir, "clusterd")
            with open(os.path.join(first.tmpdir, "second.log"), "wb") as out:
                second = subprocess.Popen([exe, "run", "-c", first.config_path],
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                          cwd=first.tmpdir)

            def answers():
                if second.poll() is not None:
                    raise harness.DaemonError(f"second clusterd exited: {second.returncode}")
                try:
                    doc = json.loads(raw_request(first.socket_path, b'{"cmd":"status"}\n', 2))
                except (OSError, ValueError, harness.ProtocolError):
                    return None
                return doc.get("pid") == second.pid
            poll(answers, WAIT, "the new clusterd answering on the stale socket's path")
            second.send_signal(signal.SIGTERM)
            self.assertEqual(second.wait(20), 0)
            self.assertFalse(os.path.exists(first.socket_path))
        finally:
            if second is not None and second.poll() is None:
                second.kill()
                second.wait(10)
            first.close()


# ---- clusterd check ----------------------------------------------------------------------------

class Check(unittest.TestCase):
    """`clusterd check -c FILE`: OK, or every problem as file:line:column: dotted.key: message."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="clusterd-check-")
        cls.extra = os.path.join(cls.dir, "extra-plugins")
        os.mkdir(cls.extra)
        cls.builtin = os.path.normpath(os.path.join(harness.ARGS.bin_dir, os.pardir, "lib",
                                                    "clusterd", "plugins"))
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        if harness.any_test_failed() or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[test] kept {cls.dir}", file=sys.stderr)
        else:
            import shutil
            shutil.rmtree(cls.dir, ignore_errors=True)

    def base(self):
        return [
            "[clusterd]",
            f"plugin_path = {toml_list([self.extra])}",
            'log_level = "info"',
            "",
            "[transports.beam]",
            'plugin = "command"',
            'connect = ["/usr/local/bin/connect-node"]',
            'timeout = "10s"',
            "",
            "[topologies.demo]",
            'strategy = "epmd"',
            'transport = "beam"',
            'disconnect = "never"',
            "",
            "[topologies.demo.config]",
            'hosts = ["a@127.0.0.1", "b@127.0.0.1"]',
        ]

    def check(self, lines):
        type(self).count += 1
        path = os.path.join(self.dir, f"c{self.count}.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        exe = os.path.join(harness.ARGS.bin_dir, "clusterd")
        r = subprocess.run([exe, "check", "-c", path], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30, cwd=self.dir)
        self.assertEqual(crash_lines(r.stdout + r.stderr), [], r.stdout + r.stderr)
        return path, r.returncode, r.stdout + r.stderr

    @staticmethod
    def replaced(lines, old, new):
        i = lines.index(old)
        out = list(lines)
        if new is None:
            del out[i]
        else:
            out[i] = new
        return out, i + 1

    @staticmethod
    def inserted_after(lines, anchor, new):
        i = lines.index(anchor) + 1
        return lines[:i] + [new] + lines[i:], i + 1

    def assert_problem(self, lines, line_no, key, message_re, value=None):
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        col = r"\d+"
        if value is not None:
            col = str(lines[line_no - 1].index(value) + 1)
        pattern = (rf"(?m)^{re.escape(path)}:{line_no}:{col}: {re.escape(key)}: "
                   rf"(?:{message_re})")
        self.assertRegex(out, pattern)
        self.assertNotIn(": OK", out)
        return out

    def test_good_file_is_ok(self):
        path, rc, out = self.check(self.base())
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.strip(), f"{path}: OK (1 transport(s), 1 topology(ies))")

    def test_unknown_key(self):
        lines, at = self.inserted_after(self.base(), 'disconnect = "never"',
                                        'conect_timeout = "5s"')
        out = self.assert_problem(lines, at, "topologies.demo.conect_timeout", "unknown key",
                                  value='"5s"')
        self.assertIn("connect_timeout", out)  # the known keys are listed
        lines, at = self.inserted_after(self.base(), 'log_level = "info"', 'log_levle = "info"')
        self.assert_problem(lines, at, "clusterd.log_levle", "unknown key", value='"info"')

    def test_wrong_type(self):
        lines, at = self.inserted_after(self.base(), 'disconnect = "never"',
                                        'max_parallel = "lots"')
        self.assert_problem(lines, at, "topologies.demo.max_parallel", "expected an integer",
                            value='"lots"')
        lines, at = self.replaced(self.base(), 'log_level = "info"', "log_level = 5")
        self.assert_problem(lines, at, "clusterd.log_level", "expected a string", value="5")

    def test_wrong_type_of_a_plugin_option(self):
        lines, _ = self.replaced(self.base(), 'hosts = ["a@127.0.0.1", "b@127.0.0.1"]',
                                 "hosts = 5")
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}\S*: topologies\.demo\.config\.hosts: "
                              r"expected an array of strings")
        lines, _ = self.replaced(self.base(), 'timeout = "10s"', "timeout = true")
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}\S*: transports\.beam\.timeout: "
                              r"expected a duration")

    def test_wrong_type_of_a_plugin_option_position(self):
        lines, at = self.replaced(self.base(), 'hosts = ["a@127.0.0.1", "b@127.0.0.1"]',
                                  "hosts = 5")
        self.assert_problem(lines, at, "topologies.demo.config.hosts",
                            "expected an array of strings", value="5")

    def test_unknown_plugin_option_suggests_the_right_one(self):
        lines, _ = self.replaced(self.base(), 'hosts = ["a@127.0.0.1", "b@127.0.0.1"]',
                                 'hostz = ["a@127.0.0.1"]')
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}\S*: topologies\.demo\.config\.hostz: "
                              r"unknown option for plugin 'epmd' \(did you mean 'hosts'\?\)")
        lines, _ = self.inserted_after(self.base(), 'timeout = "10s"', 'conect = ["x"]')
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}\S*: transports\.beam\.conect: "
                              r"unknown option for plugin 'command' \(did you mean 'connect'\?\)")

    def test_unknown_plugin_option_position(self):
        lines, at = self.replaced(self.base(), 'hosts = ["a@127.0.0.1", "b@127.0.0.1"]',
                                  'hostz = ["a@127.0.0.1"]')
        self.assert_problem(lines, at, "topologies.demo.config.hostz", "unknown option",
                            value='["a@127.0.0.1"]')

    def test_missing_required_option(self):
        lines, _ = self.replaced(self.base(), 'connect = ["/usr/local/bin/connect-node"]', None)
        at = lines.index("[transports.beam]") + 1
        self.assert_problem(lines, at, "transports.beam.connect",
                            r"missing required option of plugin 'command'")

    def test_missing_plugin_names_the_directories_searched(self):
        lines, at = self.replaced(self.base(), 'strategy = "epmd"', 'strategy = "nosuch"')
        out = self.assert_problem(lines, at, "topologies.demo.strategy", r"no plugin 'nosuch'",
                                  value='"nosuch"')
        self.assertIn("clusterd-nosuch.so", out)
        self.assertIn(self.extra, out)
        self.assertIn(self.builtin, out)
        lines, at = self.replaced(self.base(), 'plugin = "command"', 'plugin = "nosuch_tr"')
        out = self.assert_problem(lines, at, "transports.beam.plugin", r"no plugin 'nosuch_tr'",
                                  value='"nosuch_tr"')
        self.assertIn(self.extra, out)
        self.assertIn(self.builtin, out)

    def test_topology_naming_a_missing_transport(self):
        lines, at_key = self.replaced(self.base(), 'transport = "beam"', 'transport = "nope"')
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        m = re.search(rf"(?m)^{re.escape(path)}:(\d+):\d+: topologies\.demo\.transport: "
                      r"no transport named 'nope'", out)
        self.assertIsNotNone(m, out)
        self.assertIn(int(m.group(1)), (lines.index("[topologies.demo]") + 1, at_key))

    def test_syntax_error_position(self):
        lines = self.base() + ["hosts = [1,"]
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}:{len(lines)}:\d+: ")

    def test_every_problem_is_reported(self):
        lines, at1 = self.inserted_after(self.base(), 'disconnect = "never"', "bogus = 1")
        lines, at2 = self.replaced(lines, 'log_level = "info"', 'log_level = "loud"')
        path, rc, out = self.check(lines)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, rf"(?m)^{re.escape(path)}:{at1}:\d+: topologies\.demo\.bogus: ")
        self.assertRegex(out, rf"(?m)^{re.escape(path)}:{at2}:\d+: clusterd\.log_level: ")


def main(argv=None):
    return harness.run_tests([Sigterm, ReloadRejected, ReloadSemantics, ControlSocket,
                              StaleSocket, Check], argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
