#!/usr/bin/env python3
"""Integration test: the `command` transport end to end, in the real clusterd with the real
plugins (epmd strategy, command transport) and real child processes.

The commands clusterd runs are scripts this test writes into its own work directory: a
Python helper (`cmd.py ROLE ... NODE`) that records its argv as one JSON line in ROLE.argv,
keeps the "connected" nodes in a state file (connect appends, disconnect removes, list prints
it) and fails a connect for a node while a file `down-NODE` exists; and a shell script that
records its PID and hangs (for the timeout).

    test_command_transport.py --bin-dir <dir of clusterd, clusterctl>
"""

import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import node_states, toml_list, toml_string, topology, transport  # noqa: E402

WAIT = 20.0  # seconds for any state to be reached

A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"
LOCAL = "local@127.0.0.1"  # the transport's local_node, also listed in hosts
DOWN_MESSAGE = "ERROR {node} is down (test)"
DOWN_EXIT = 7
# Arguments that a shell would split, expand or glob; without a shell they arrive verbatim.
TRICKY_ARGS = ["two words", "$(touch {work}/pwned)", "`touch {work}/pwned2`", "*", "--not-an-option"]


# ---- helper scripts --------------------------------------------------------------------------

def _python_shebang():
    exe = sys.executable or ""
    if exe and os.path.isabs(exe) and not any(c.isspace() for c in exe) and len(exe) < 120:
        return "#!" + exe
    return "#!/usr/bin/env python3"


CMD_PY = r'''@SHEBANG@
# Written by test_command_transport.py / test_daemon.py: run by clusterd's command transport.
# argv: ROLE [ARGS...] [NODE]. Records argv (JSON, one line) in ROLE.argv.
import fcntl, json, os, subprocess, sys, time
D = @WORK@
ROLE = sys.argv[1] if len(sys.argv) > 1 else "?"

def path(name):
    return os.path.join(D, name)

class Locked:
    def __enter__(self):
        self.f = open(path("state.lock"), "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
    def __exit__(self, *exc):
        self.f.close()

def read_state():
    try:
        with open(path("state")) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []

def write_state(nodes):
    tmp = path("state.tmp")
    with open(tmp, "w") as f:
        f.write("".join(n + "\n" for n in nodes))
    os.replace(tmp, path("state"))

def wait_for(name, seconds):
    for _ in range(int(seconds / 0.02)):
        if os.path.exists(path(name)):
            return True
        time.sleep(0.02)
    return False

with Locked():
    with open(path(ROLE + ".argv"), "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\n")

if ROLE == "connect":
    node = sys.argv[-1]
    if "--wait-for-snapshot" in sys.argv[2:-1] and not wait_for("snapshot.taken", 15):
        print("snapshot.taken never appeared", file=sys.stderr)
        sys.exit(1)
    if os.path.exists(path("down-" + node)):
        print("this stdout line is not the message: stderr has one")
        print("trying " + node + " ...", file=sys.stderr)
        print("@DOWN_MESSAGE@".replace("{node}", node), file=sys.stderr)
        sys.exit(@DOWN_EXIT@)
    with Locked():
        nodes = read_state()
        if node not in nodes:
            write_state(nodes + [node])
    sys.exit(0)

if ROLE == "disconnect":
    node = sys.argv[-1]
    with Locked():
        write_state([n for n in read_state() if n != node])
    sys.exit(0)

if ROLE == "list":
    with Locked():
        nodes = read_state()
    # Padding and blank lines: the transport trims and skips them.
    sys.stdout.write("".join("  " + n + "\t\n\n" for n in nodes))
    sys.exit(0)

if ROLE == "slowlist":
    # The first run takes a snapshot, then waits until clusterd reports that a connect which
    # completed after the snapshot succeeded, and only then prints the (now stale) snapshot:
    # a list_nodes slower than a connect. Later runs are ordinary.
    first = not os.path.exists(path("snapshot.taken"))
    with Locked():
        nodes = read_state()
    if first:
        with open(path("snapshot.taken.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(path("snapshot.taken.tmp"), path("snapshot.taken"))
        wait_for("socket.path", 15)
        with open(path("socket.path")) as f:
            sock = f.read().strip()
        node = sys.argv[2]
        for _ in range(300):
            r = subprocess.run([@CLUSTERCTL@, "--socket", sock, "status", "--json"],
                               capture_output=True, text=True, timeout=10)
            try:
                st = json.loads(r.stdout)
                states = {n["name"]: n["state"] for t in st["topologies"] for n in t["nodes"]}
                if states.get(node) == "connected":
                    break
            except (ValueError, KeyError, TypeError):
                pass
            time.sleep(0.05)
    sys.stdout.write("".join(n + "\n" for n in nodes))
    sys.exit(0)

print("cmd.py: unknown role " + ROLE, file=sys.stderr)
sys.exit(2)
'''

HANG_SH = r'''#!/bin/sh
# Written by the test: records its PID, then hangs (exec keeps the PID) until killed.
echo "$$" >> @WORK@/hang.pids
exec sleep 120
'''


def _sh_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


class Workdir:
    """A temporary directory with the helper scripts; removed unless a test failed."""

    def __init__(self, bin_dir, prefix="clusterd-cmd-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        if any(c in self.path for c in '"\\\n\''):
            raise RuntimeError(f"temporary directory {self.path!r} is not TOML/shell-safe")
        self.cmd = os.path.join(self.path, "cmd.py")
        self.hang = os.path.join(self.path, "hang.sh")
        clusterctl = os.path.join(os.path.abspath(bin_dir), "clusterctl")
        text = (CMD_PY.replace("@SHEBANG@", _python_shebang())
                .replace("@WORK@", repr(self.path))
                .replace("@DOWN_MESSAGE@", DOWN_MESSAGE)
                .replace("@DOWN_EXIT@", str(DOWN_EXIT))
                .replace("@CLUSTERCTL@", repr(clusterctl)))
        self._write_exec(self.cmd, text)
        self._write_exec(self.hang, HANG_SH.replace("@WORK@", _sh_quote(self.path)))

    @staticmethod
    def _write_exec(path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, stat.S_IRWXU)

    def file(self, name):
        return os.path.join(self.path, name)

    def exists(self, name):
        return os.path.exists(self.file(name))

    def touch(self, name):
        with open(self.file(name), "a"):
            pass

    def remove(self, name):
        os.remove(self.file(name))

    def write(self, name, text):
        tmp = self.file(name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.file(name))

    def argv_records(self, role):
        """Every recorded argv (without argv[0]) of ROLE, in order."""
        try:
            with open(self.file(role + ".argv"), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def runs_for(self, role, node):
        return sum(1 for argv in self.argv_records(role) if argv and argv[-1] == node)

    def state(self):
        try:
            with open(self.file("state"), encoding="utf-8") as f:
                return [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def pids(self, name):
        try:
            with open(self.file(name), encoding="utf-8") as f:
                return [int(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def close(self):
        if harness.any_test_failed() or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[test] kept {self.path} (helper scripts and their records)", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def poll(fn, timeout, what, interval=0.05):
    """Calls fn() until it returns something true (returned); bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = None
    for _ in range(int(math.ceil(timeout / interval)) + 1):
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    raise harness.WaitTimeout(f"timed out after {timeout} s waiting for {what} (last: {value!r})")


def process_gone(pid):
    """True once no process `pid` exists any more (exited and reaped: not even a zombie)."""
    return not os.path.exists(f"/proc/{pid}")


def node(status, topology_name, name):
    for n in (topology(status, topology_name) or {}).get("nodes", []):
        if n["name"] == name:
            return n
    return None


def setUpModule():
    # The harness runs clusterd with cwd = its temporary directory: make the paths absolute.
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


# ---- connect, failure, retry, argv, local node, list_nodes ----------------------------------

class ConnectAndRetry(unittest.TestCase):
    """epmd hosts a, b, c, local; b is down until the test flips it; a, c connect."""

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir)
        cls.work.touch("down-" + B)
        w = cls.work.path
        cls.connect_args = ["connect"] + [a.replace("{work}", w) for a in TRICKY_ARGS]
        config = "\n".join([
            "[clusterd]",
            'log_level = "debug"',
            "",
            "[transports.cmd]",
            'plugin = "command"',
            f"connect = {toml_list([cls.work.cmd] + cls.connect_args)}",
            f"disconnect = {toml_list([cls.work.cmd, 'disconnect'])}",
            f"list_nodes = {toml_list([cls.work.cmd, 'list'])}",
            f"local_node = {toml_string(LOCAL)}",
            'timeout = "20s"',
            'resync_interval = "300ms"',
            "",
            "[topologies.main]",
            'strategy = "epmd"',
            'transport = "cmd"',
            'backoff_initial = "150ms"',
            'backoff_max = "300ms"',
            "[topologies.main.config]",
            f"hosts = {toml_list([A, B, C, LOCAL])}",
            "",
        ])
        try:
            cls.d = harness.Daemon(config, harness.ARGS.bin_dir)
            cls.d.start()
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()

    def test_1_good_nodes_connect(self):
        st = self.d.wait_until(
            lambda s: {A, C} <= harness.connected_nodes(s, "main"), WAIT, "a and c connected")
        t = topology(st, "main")
        self.assertEqual(t["state"], "running")
        self.assertEqual(t["error"], "")
        for name in (A, C):
            n = node(st, "main", name)
            self.assertEqual((n["attempts"], n["last_error"]), (0, ""), n)
        self.assertIn(A, self.work.state())
        self.assertIn(C, self.work.state())

    def test_2_down_node_backs_off_with_the_scripts_message(self):
        def b_failed(s):
            n = node(s, "main", B)
            return n["state"] == "backoff" and n["attempts"] >= 1 and n["last_error"]
        st = self.d.wait_until(b_failed, WAIT, "b in backoff after a failed attempt")
        n = node(st, "main", B)
        message = DOWN_MESSAGE.format(node=B)
        self.assertIn(message, n["last_error"], "the last stderr line is the reason")
        self.assertIn(f"exited with code {DOWN_EXIT}", n["last_error"])
        self.assertNotIn("this stdout line", n["last_error"], "stderr wins over stdout")
        self.assertNotIn("trying", n["last_error"], "only the last line of stderr")
        self.assertIsNotNone(n["retry_in_ms"])
        self.assertGreaterEqual(n["retry_in_ms"], 0)
        self.assertLessEqual(n["retry_in_ms"], 300, "backoff_max is 300ms")
        self.assertNotIn(B, self.work.state())
        # It is retried: more attempts come, each running the script again.
        runs = self.work.runs_for("connect", B)
        self.d.wait_until(lambda s: node(s, "main", B)["attempts"] >= n["attempts"] + 2, WAIT,
                          "b retried twice more")
        self.assertGreaterEqual(self.work.runs_for("connect", B), runs + 2)
        self.assertRegex(self.d.log_text(),
                         rf"unable to connect to {re.escape(B)}: .*{re.escape(message)}")

    def test_3_argv_is_the_configured_argv_plus_the_node_without_a_shell(self):
        self.d.wait_until(lambda s: {A, C} <= harness.connected_nodes(s, "main"), WAIT,
                          "a and c connected")
        records = self.work.argv_records("connect")
        self.assertTrue(records, "the connect command never ran")
        for argv in records:
            self.assertEqual(argv[:-1], self.connect_args, f"argv {argv}")
            self.assertIn(argv[-1], {A, B, C}, f"argv {argv}")
        self.assertEqual({argv[-1] for argv in records} & {A, C}, {A, C})
        self.assertFalse(self.work.exists("pwned"), "$(...) was run by a shell")
        self.assertFalse(self.work.exists("pwned2"), "`...` was run by a shell")

    def test_4_local_node_is_never_connected(self):
        st = self.d.wait_until(lambda s: {A, C} <= harness.connected_nodes(s, "main"), WAIT,
                               "a and c connected")
        self.assertEqual(transport(st, "cmd")["local_node"], LOCAL)
        self.assertNotIn(LOCAL, node_states(st, "main"), "the local node is a topology node")
        self.assertEqual(self.work.runs_for("connect", LOCAL), 0,
                         "the connect command ran for the transport's local_node")
        self.assertEqual(set(node_states(st, "main")), {A, B, C})

    def test_5_list_nodes_output_is_the_transports_connected_set(self):
        self.d.wait_until(lambda s: {A, C} <= harness.connected_nodes(s, "main"), WAIT,
                          "a and c connected")
        # A node only the list command knows about: it must show up from list_nodes alone
        # (trimmed, blank lines skipped), and the local node must not.
        extra = "extra@127.0.0.1"
        self.work.write("state", "\n".join(self.work.state() + [extra, LOCAL]) + "\n")
        st = self.d.wait_until(
            lambda s: extra in transport(s, "cmd")["connected"], WAIT,
            "the listed extra node in the transport's connected set")
        connected = transport(st, "cmd")["connected"]
        self.assertNotIn(LOCAL, connected)
        self.assertTrue({A, C} <= set(connected), connected)
        self.assertTrue(all(n == n.strip() and n for n in connected), connected)
        self.assertNotIn(extra, node_states(st, "main"), "a listed node became desired")
        self.assertTrue(self.work.argv_records("list"))
        self.assertTrue(all(argv == ["list"] for argv in self.work.argv_records("list")))

    def test_6_down_node_connects_once_it_is_up(self):
        self.d.wait_until(lambda s: node(s, "main", B)["attempts"] >= 1, WAIT, "b failed once")
        self.work.remove("down-" + B)
        st = self.d.wait_until(lambda s: B in harness.connected_nodes(s, "main"), WAIT,
                               "b connected after the flip")
        n = node(st, "main", B)
        self.assertEqual((n["attempts"], n["last_error"], n["retry_in_ms"]), (0, "", None), n)
        self.assertGreaterEqual(self.work.runs_for("connect", B), 2)
        self.assertIn(B, self.work.state())
        self.assertRegex(self.d.log_text(), rf"connected to {re.escape(B)}")

    def test_7_nothing_is_disconnected_and_no_crash(self):
        self.assertEqual(self.work.argv_records("disconnect"), [],
                         "epmd never disconnects; the disconnect command ran")
        self.assertTrue(self.d.running())
        self.assertNotRegex(self.d.log_text(), r"AddressSanitizer|runtime error:|terminate called")


# ---- timeout ---------------------------------------------------------------------------------

class CommandTimeout(unittest.TestCase):
    """timeout = "300ms" and a connect command that hangs: the attempt fails as a timeout and
    the hung child is killed and reaped."""

    HUNG = "hung@127.0.0.1"

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir)
        config = "\n".join([
            "[transports.slow]",
            'plugin = "command"',
            f"connect = {toml_list([cls.work.hang])}",
            'timeout = "300ms"',
            "",
            "[topologies.t]",
            'strategy = "epmd"',
            # No retry during the test: exactly one attempt, one child.
            'backoff_initial = "10m"',
            'backoff_max = "10m"',
            "[topologies.t.config]",
            f"hosts = {toml_list([cls.HUNG])}",
            "",
        ])
        try:
            cls.d = harness.Daemon(config, harness.ARGS.bin_dir)
            cls.d.start()
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()

    def test_attempt_times_out_and_the_child_is_gone(self):
        began = time.monotonic()
        st = self.d.wait_until(
            lambda s: node(s, "t", self.HUNG)["state"] == "backoff", WAIT,
            "the hung connect to fail")
        elapsed = time.monotonic() - began
        n = node(st, "t", self.HUNG)
        self.assertEqual(n["attempts"], 1, n)
        self.assertRegex(n["last_error"], r"(?i)timed? ?out", n)
        self.assertIn("300ms", n["last_error"])
        self.assertLess(elapsed, 60.0, "the 300ms timeout did not cut the 120 s command short")
        pids = poll(lambda: self.work.pids("hang.pids"), 5.0, "the hung script's PID")
        self.assertEqual(len(pids), 1, f"one attempt, one child: {pids}")
        poll(lambda: process_gone(pids[0]), 10.0, f"hung child {pids[0]} to be killed and reaped")
        self.assertTrue(self.d.running())
        self.assertRegex(self.d.log_text(), rf"unable to connect to {re.escape(self.HUNG)}: .*timed out")


# ---- a list_nodes slower than a connect ------------------------------------------------------

class SlowListNodes(unittest.TestCase):
    """list_nodes takes its snapshot before a connect completes and answers after it: the stale
    answer must not undo the connect (drop the node, back off, run connect again).

    The bug this guards against (fixed): a listing replaced the connected set wholesale, so a
    node whose connect completed after the list began read as dropped, was backed off and
    connected a second time, at every start when list_nodes is slower than a connect. Now
    TransportLink (host/src/reconcile/transport_link.cpp) keeps the state of every node that
    changed since the listing began, and ConnectedSet::replace reports only real transitions."""

    NODE = "s@127.0.0.1"

    @classmethod
    def setUpClass(cls):
        cls.work = Workdir(harness.ARGS.bin_dir)
        config = "\n".join([
            "[clusterd]",
            'log_level = "debug"',
            "",
            "[transports.cmd]",
            'plugin = "command"',
            f"connect = {toml_list([cls.work.cmd, 'connect', '--wait-for-snapshot'])}",
            f"list_nodes = {toml_list([cls.work.cmd, 'slowlist', cls.NODE])}",
            "resync_interval = 0",  # one list, at the transport's start
            "",
            "[topologies.t]",
            'strategy = "epmd"',
            "[topologies.t.config]",
            f"hosts = {toml_list([cls.NODE])}",
            "",
        ])
        try:
            cls.d = harness.Daemon(config, harness.ARGS.bin_dir)
            cls.d.start()
            cls.work.write("socket.path", cls.d.socket_path + "\n")
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()

    def test_stale_list_does_not_undo_a_newer_connect(self):
        # Once clusterd has reaped the list command, its answer is queued on the loop ahead of
        # any later control request. A wrongly dropped node is in backoff from then on until
        # the retry connects it again (running connect a second time): visible either way.
        pid = int(poll(lambda: self.work.exists("snapshot.taken") and
                       open(self.work.file("snapshot.taken")).read().strip(), WAIT,
                       "the list command's snapshot"))
        poll(lambda: process_gone(pid), WAIT, f"list command {pid} to exit and be reaped")
        st = self.d.status()
        n = node(st, "t", self.NODE)
        self.assertEqual((n["state"], n["attempts"], n["last_error"]), ("connected", 0, ""), n)
        self.assertEqual(self.work.runs_for("connect", self.NODE), 1,
                         "connect ran again for a node that was connected")


def main(argv=None):
    return harness.run_tests([ConnectAndRetry, CommandTimeout, SlowListNodes], argv,
                             description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
