#!/usr/bin/env python3
"""Integration test: the `exec` strategy end to end, in the real clusterd with real commands.

The commands are Python scripts this test writes into its own work directory, driven by files:
  periodic.py DIR NAME  records its PID in NAME.runs, writes NAME.stderr to stderr, then by
                        NAME.mode: "ok" prints NAME.nodes and exits 0; a number N prints it and
                        exits N; "hang" starts a grandchild (PID in NAME.grandchild) and execs
                        `sleep` (same PID); "big" prints 4 MB; "bigerr" 600 KB on stderr.
  stream.py DIR NAME    records its PID in NAME.pids, then follows NAME.in from the offset in
                        NAME.offset (so a restart resumes): "EXIT N" exits N, "ERR TEXT" writes
                        TEXT to stderr, any other line goes to stdout as is. NAME.times
                        gets "start T" and "exit T" lines (wall clock).
The transport is the real `command` transport running /bin/true, so every node connects.

    test_exec.py --bin-dir <dir of clusterd, clusterctl>
"""

import os
import re
import signal
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import node_states, toml_list, topology  # noqa: E402
from test_command_transport import Workdir, _python_shebang, poll, process_gone  # noqa: E402

WAIT = 20.0  # seconds for any state to be reached

PERIODIC_PY = r'''@SHEBANG@
# Written by test_exec.py: a periodic `exec` command driven by files in its directory.
import os, subprocess, sys
d, name = sys.argv[1], sys.argv[2]

def read(suffix, default=""):
    try:
        with open(os.path.join(d, name + suffix), newline="") as f:  # "\r" stays "\r"
            return f.read()
    except FileNotFoundError:
        return default

with open(os.path.join(d, name + ".runs"), "a") as f:
    f.write("%d\n" % os.getpid())
mode = read(".mode", "ok").strip()
sys.stderr.write(read(".stderr"))
sys.stderr.flush()
if mode == "hang":
    child = subprocess.Popen(["sleep", "120"])
    with open(os.path.join(d, name + ".grandchild"), "a") as f:
        f.write("%d\n" % child.pid)
    os.execvp("sleep", ["sleep", "120"])
if mode == "big":
    sys.stdout.write("big@127.0.0.1\n" * 300000)
    sys.exit(0)
if mode == "bigerr":
    sys.stderr.write("noise\n" * 100000)
    sys.stdout.write(read(".nodes"))
    sys.exit(0)
sys.stdout.write(read(".nodes"))
sys.exit(int(mode) if mode.isdigit() else 0)
'''

STREAM_PY = r'''@SHEBANG@
# Written by test_exec.py: a stream-mode `exec` command that relays NAME.in line by line.
import os, sys, time
d, name = sys.argv[1], sys.argv[2]
path = lambda suffix: os.path.join(d, name + suffix)
with open(path(".times"), "a") as f:  # before .pids, which the test waits on
    f.write("start %f\n" % time.time())
with open(path(".pids"), "a") as f:
    f.write("%d\n" % os.getpid())
try:
    with open(path(".offset")) as f:
        offset = int(f.read() or 0)
except FileNotFoundError:
    offset = 0
for _ in range(60000):  # bounded: 10 minutes
    try:
        with open(path(".in"), "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        data = b""
    while b"\n" in data:
        line, data = data.split(b"\n", 1)
        offset += len(line) + 1
        with open(path(".offset.tmp"), "w") as f:
            f.write(str(offset))
        os.replace(path(".offset.tmp"), path(".offset"))
        if line.startswith(b"EXIT "):
            with open(path(".times"), "a") as f:
                f.write("exit %f\n" % time.time())
            sys.exit(int(line[5:]))
        if line.startswith(b"ERR "):
            sys.stderr.buffer.write(line[4:] + b"\n")
            sys.stderr.flush()
        else:
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.flush()
    time.sleep(0.01)
'''


class ExecWorkdir(Workdir):
    """Workdir with the exec scripts; removed unless a test failed."""

    def __init__(self):
        super().__init__(harness.ARGS.bin_dir, prefix="clusterd-exec-")
        self.periodic = self._script("periodic.py", PERIODIC_PY)
        self.stream = self._script("stream.py", STREAM_PY)

    def _script(self, name, text):
        path = self.file(name)
        self._write_exec(path, text.replace("@SHEBANG@", _python_shebang()))
        return path

    def send(self, name, *lines):
        """Appends lines for stream.py NAME to relay."""
        with open(self.file(name + ".in"), "ab") as f:
            f.write(b"".join(line.encode() + b"\n" for line in lines))


def transport_section():
    return "\n".join([
        "[transports.true]",
        'plugin = "command"',
        'connect = ["/bin/true"]',
        'disconnect = ["/bin/true"]',
        "",
    ])


def exec_topology(name, argv, *extra):
    return "\n".join([
        f"[topologies.{name}]",
        'strategy = "exec"',
        'transport = "true"',
        f"[topologies.{name}.config]",
        f"command = {toml_list(argv)}",
        *extra,
        "",
    ])


def periodic_topology(work, name, *extra):
    return exec_topology(name, [work.periodic, work.path, name], 'polling_interval = "100ms"',
                         *extra)


def stream_topology(work, name, *extra):
    return exec_topology(name, [work.stream, work.path, name], 'mode = "stream"',
                         'restart_backoff_initial = "200ms"', 'restart_backoff_max = "400ms"',
                         *extra)


def not_running(pid):
    """True once `pid` is gone or a zombie: a grandchild orphaned by a killed command is reaped
    by init, or in a container perhaps never."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def nodes(status, name):
    return set(node_states(status, name))


def error(status, name):
    return topology(status, name)["discovery_error"]


def details(status, name):
    return str(topology(status, name)["details"])


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


# ---- periodic mode ---------------------------------------------------------------------------

class DaemonCase(unittest.TestCase):
    """One clusterd per class, on the topologies config(work) returns (after the transport)."""

    @classmethod
    def config(cls, work):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.work = ExecWorkdir()
        try:
            cls.d = harness.Daemon(transport_section() + cls.config(cls.work),
                                   harness.ARGS.bin_dir)
            cls.d.start()
        except BaseException:
            cls.work.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()


class Periodic(DaemonCase):
    """Topologies periodic (success, exit codes, invalid names, stderr), hang (timeout 3s)
    and big (max_output 4096), each on its own periodic.py NAME, and missing (no such
    program)."""

    @classmethod
    def config(cls, work):
        work.write("periodic.nodes", "a@127.0.0.1\nb@127.0.0.1\n")
        work.write("hang.nodes", "h@127.0.0.1\n")
        work.write("big.nodes", "s@127.0.0.1\n")
        return "\n".join([
            periodic_topology(work, "periodic"),
            periodic_topology(work, "hang", 'timeout = "3s"'),
            periodic_topology(work, "big", "max_output = 4096"),
            exec_topology("missing", ["/nonexistent/clusterd-inventory"]),
        ])

    def test_1_success_is_the_complete_set(self):
        st = self.d.wait_until(lambda s: nodes(s, "periodic") == {"a@127.0.0.1", "b@127.0.0.1"},
                               WAIT, "a and b from the command")
        self.assertEqual(error(st, "periodic"), "")
        self.assertIn("exited 0 with 2 node name(s)", details(st, "periodic"))
        self.work.write("periodic.nodes", "a@127.0.0.1\nc@127.0.0.1\n")
        self.d.wait_until(lambda s: nodes(s, "periodic") == {"a@127.0.0.1", "c@127.0.0.1"},
                          WAIT, "b replaced by c")

    def test_2_failed_exit_keeps_the_last_good_set(self):
        self.work.write("periodic.nodes", "a@127.0.0.1\n")
        self.d.wait_until(lambda s: nodes(s, "periodic") == {"a@127.0.0.1"}, WAIT, "a alone")
        # The failing runs print nothing, which as an exit-0 answer would remove a.
        self.work.write("periodic.nodes", "")
        self.work.write("periodic.stderr", "inventory unreachable\n")
        self.work.write("periodic.mode", "3")
        st = self.d.wait_until(lambda s: "exited with code 3" in error(s, "periodic"), WAIT,
                               "the exit code as the discovery error")
        runs = len(self.work.pids("periodic.runs"))
        poll(lambda: len(self.work.pids("periodic.runs")) >= runs + 3, WAIT, "3 more runs")
        st = self.d.status()
        self.assertEqual(nodes(st, "periodic"), {"a@127.0.0.1"}, "a failed round removed a node")
        self.assertIn("exited with code 3", error(st, "periodic"))
        self.assertRegex(self.d.log_text(), r"stderr: \"inventory unreachable\"")
        self.work.write("periodic.stderr", "")
        self.work.write("periodic.mode", "ok")
        st = self.d.wait_until(lambda s: nodes(s, "periodic") == set() and
                               error(s, "periodic") == "", WAIT, "the empty answer applied")

    def test_3_invalid_names_are_refused_and_counted(self):
        self.work.write("periodic.nodes", "a@127.0.0.1\nnot a node\n" + "x" * 2000 + "\n"
                        "b@127.0.0.1\n")
        st = self.d.wait_until(
            lambda s: nodes(s, "periodic") == {"a@127.0.0.1", "b@127.0.0.1"} and
            topology(s, "periodic")["refused_names"]["count"] >= 1 and
            "refused lines" in details(s, "periodic"), WAIT, "a and b, the others refused")
        self.assertIn("not a node", topology(st, "periodic")["refused_names"]["recent"])
        self.assertIn("longer than 1024 bytes", details(st, "periodic"))
        self.assertEqual(error(st, "periodic"), "")

    def test_4_stderr_lines_are_escaped_in_the_log(self):
        self.work.write("periodic.stderr", "\x1b[31mred\tand\rforged\n")
        poll(lambda: "stderr: \"\\x1b[31mred\\tand\\rforged\"" in self.d.log_text(), WAIT,
             "the stderr line, escaped, in the log")
        self.work.write("periodic.stderr", "")
        self.assertNotIn("\x1b[31m", self.d.log_text())

    def test_5_timeout_kills_the_command_and_its_group(self):
        self.d.wait_until(lambda s: nodes(s, "hang") == {"h@127.0.0.1"}, WAIT, "h found")
        self.work.write("hang.mode", "hang")
        self.d.wait_until(lambda s: "timed out after 3000 ms" in error(s, "hang"), WAIT,
                          "the timeout as the discovery error")
        self.work.write("hang.mode", "ok")
        hung = poll(lambda: self.work.pids("hang.grandchild"), WAIT, "a hung run's grandchild")
        for pid in self.work.pids("hang.runs"):
            poll(lambda: process_gone(pid), WAIT, f"command {pid} killed and reaped")
        for pid in hung:
            poll(lambda: not_running(pid), WAIT, f"grandchild {pid} killed with its group")
        st = self.d.wait_until(lambda s: error(s, "hang") == "", WAIT, "runs succeed again")
        self.assertEqual(nodes(st, "hang"), {"h@127.0.0.1"}, "the timeout removed a node")

    def test_6_overlong_output_fails_the_round(self):
        self.d.wait_until(lambda s: nodes(s, "big") == {"s@127.0.0.1"}, WAIT, "s found")
        self.work.write("big.mode", "big")
        st = self.d.wait_until(lambda s: "more than max_output (4096 bytes) on stdout" in
                               error(s, "big"),
                               WAIT, "the overflow as the discovery error")
        self.assertEqual(nodes(st, "big"), {"s@127.0.0.1"}, "an overflow removed a node")
        self.assertNotIn("big@127.0.0.1", nodes(st, "big"))
        self.work.write("big.mode", "bigerr")
        st = self.d.wait_until(lambda s: "more than max_output (4096 bytes) on stderr" in
                               error(s, "big"), WAIT, "the stderr overflow as the error")
        self.assertEqual(nodes(st, "big"), {"s@127.0.0.1"})
        self.work.write("big.mode", "ok")
        for pid in self.work.pids("big.runs"):
            poll(lambda: process_gone(pid), WAIT, f"process {pid} reaped")

    def test_7_missing_program_is_a_failed_round(self):
        st = self.d.wait_until(lambda s: "/nonexistent/clusterd-inventory" in error(s, "missing"),
                               WAIT, "the missing program as the discovery error")
        self.assertEqual(topology(st, "missing")["state"], "running")
        self.assertEqual(nodes(st, "missing"), set())

    def test_8_no_crash(self):
        self.assertTrue(self.d.running())
        self.assertNotRegex(self.d.log_text(), r"AddressSanitizer|runtime error:|terminate called")


# ---- stream mode -----------------------------------------------------------------------------

class Stream(DaemonCase):
    """Topology stream on stream.py stream, restarted after 200-400 ms."""

    @classmethod
    def config(cls, work):
        return stream_topology(work, "stream")

    def test_1_full_set(self):
        self.work.send("stream", "=s1@127.0.0.1", "=s2@127.0.0.1")
        self.work.send("stream", "=")
        self.d.wait_until(lambda s: nodes(s, "stream") == {"s1@127.0.0.1", "s2@127.0.0.1"}, WAIT,
                          "the full set")

    def test_2_plus_and_minus(self):
        self.work.send("stream", "=s1@127.0.0.1", "=s2@127.0.0.1", "=", "+s3@127.0.0.1")
        self.d.wait_until(lambda s: "s3@127.0.0.1" in nodes(s, "stream"), WAIT, "s3 added")
        self.work.send("stream", "-s1@127.0.0.1")
        self.d.wait_until(lambda s: nodes(s, "stream") == {"s2@127.0.0.1", "s3@127.0.0.1"}, WAIT,
                          "s1 removed")

    def test_3_refused_lines_and_names(self):
        self.work.send("stream", "garbage line", "+bad name@127.0.0.1")
        st = self.d.wait_until(
            lambda s: "garbage line" in details(s, "stream") and
            "bad name@127.0.0.1" in topology(s, "stream")["refused_names"]["recent"], WAIT,
            "the line and the name refused")
        self.assertIn("expected +NAME, -NAME, =NAME or =", details(st, "stream"))
        self.assertNotIn("bad name@127.0.0.1", nodes(st, "stream"))

    def test_4_stderr_lines_are_escaped_in_the_log(self):
        self.work.send("stream", "ERR \x1b]0;title\x07 stream\tnote")
        poll(lambda: "stderr: \"\\x1b]0;title\\x07 stream\\tnote\"" in self.d.log_text(), WAIT,
             "the stream's stderr line, escaped")

    def test_5_exit_keeps_the_nodes_and_restarts(self):
        self.work.send("stream", "=s2@127.0.0.1", "=s3@127.0.0.1", "=")
        self.d.wait_until(lambda s: nodes(s, "stream") == {"s2@127.0.0.1", "s3@127.0.0.1"}, WAIT,
                          "s2 and s3")
        first = self.work.pids("stream.pids")
        self.assertEqual(len(first), 1, first)
        # A full set cut short by the exit changes nothing.
        self.work.send("stream", "=cut@127.0.0.1", "EXIT 3")
        st = self.d.wait_until(lambda s: "exited with code 3" in error(s, "stream"), WAIT,
                               "the exit as the discovery error")
        self.assertIn("restarting in", error(st, "stream"))
        self.assertIn("in the middle of a full set", error(st, "stream"))
        self.assertEqual(nodes(st, "stream"), {"s2@127.0.0.1", "s3@127.0.0.1"})
        poll(lambda: process_gone(first[0]), WAIT, "the exited command reaped")
        poll(lambda: len(self.work.pids("stream.pids")) == 2, WAIT, "the command restarted")
        self.work.send("stream", "+s4@127.0.0.1")
        st = self.d.wait_until(lambda s: "s4@127.0.0.1" in nodes(s, "stream"), WAIT,
                               "the restarted command's line")
        self.assertEqual(nodes(st, "stream"), {"s2@127.0.0.1", "s3@127.0.0.1", "s4@127.0.0.1"})
        self.assertEqual(error(st, "stream"), "")
        self.assertRegex(self.d.log_text(), r"stream command '[^']*stream\.py' \(pid \d+\) "
                                            r"exited with code 3 after \d+ ms")

    def test_6_repeated_exits_back_off(self):
        before = len(self.work.pids("stream.pids"))
        self.work.send("stream", "EXIT 1")
        poll(lambda: len(self.work.pids("stream.pids")) == before + 1, WAIT, "restarted once")
        self.work.send("stream", "EXIT 1")
        poll(lambda: len(self.work.pids("stream.pids")) == before + 2, WAIT, "restarted twice")
        waits = [int(m) for m in re.findall(r"exited with code 1 after \d+ ms; restarting in "
                                            r"(\d+) ms", self.d.log_text())]
        self.assertEqual(len(waits), 2, waits)
        # Equal jitter between half of restart_backoff_initial and restart_backoff_max.
        self.assertTrue(all(100 <= w <= 400 for w in waits), waits)
        # And honoured: every restart came at least 100 ms after the exit before it.
        with open(self.work.file("stream.times"), encoding="utf-8") as f:
            times = [line.split() for line in f if line.strip()]
        gaps = [float(b[1]) - float(a[1]) for a, b in zip(times, times[1:])
                if a[0] == "exit" and b[0] == "start"]
        self.assertGreaterEqual(len(gaps), 3, times)
        self.assertTrue(all(g >= 0.095 for g in gaps), gaps)
        self.d.wait_until(lambda s: nodes(s, "stream") == {"s2@127.0.0.1", "s3@127.0.0.1",
                                                           "s4@127.0.0.1"}, WAIT, "nodes kept")

    def test_7_stop_kills_the_stream_command(self):
        pids = self.work.pids("stream.pids")
        self.d.stop()
        for pid in pids:
            poll(lambda: process_gone(pid), WAIT, f"stream command {pid} gone with the daemon")


# ---- reload ----------------------------------------------------------------------------------

class Reload(unittest.TestCase):
    """A reload that changes the command: the old stream command ends, the new one answers."""

    def test_reload_changes_the_command(self):
        work = ExecWorkdir()
        try:
            work.write("r2.nodes", "r2@127.0.0.1\n")
            old = "\n".join([transport_section(), stream_topology(work, "r1")])
            with harness.Daemon(old, harness.ARGS.bin_dir) as d:
                work.send("r1", "+r1@127.0.0.1")
                d.wait_until(lambda s: nodes(s, "r1") == {"r1@127.0.0.1"}, WAIT, "r1 streamed")
                stream_pid = work.pids("r1.pids")[0]
                new = old.replace(f"{toml_list([work.stream, work.path, 'r1'])}",
                                  f"{toml_list([work.periodic, work.path, 'r2'])}").replace(
                                      'mode = "stream"', 'mode = "periodic"')
                d.rewrite_config(new)
                d.signal(signal.SIGHUP)
                st = d.wait_until(lambda s: nodes(s, "r1") == {"r2@127.0.0.1"}, WAIT,
                                  "the new command's nodes")
                self.assertEqual(error(st, "r1"), "")
                poll(lambda: process_gone(stream_pid), WAIT, "the old stream command ended")
                self.assertEqual(len(work.pids("r1.pids")), 1, "the old command was restarted")
        finally:
            work.close()


# ---- configuration errors --------------------------------------------------------------------

class ConfigErrors(unittest.TestCase):
    """`clusterd check` names the key of every bad option."""

    def test_bad_options_are_named(self):
        cases = [  # (topology, line, the column's text, message)
            ("empty", "command = []", "[]", "needs at least one element"),
            ("text", 'command = "ls -l"', '"ls', "expected an array of strings"),
            ("blank", 'command = ["", "x"]', "[", "must not be empty"),
            ("mode", 'mode = "watch"', '"watch"', "periodic"),
            ("unitless", 'polling_interval = "5"', '"5"', "has no unit"),
            ("unitless_timeout", 'timeout = "30"', '"30"', "has no unit"),
            ("tiny", "max_output = 10", "10", "1024"),
            ("backoff", 'restart_backoff_initial = "1m"', '"1m"', "restart_backoff_max"),
        ]
        parts = [transport_section()]
        for name, line, _, _ in cases:
            command = "" if line.startswith("command") else 'command = ["/bin/true"]'
            parts.append("\n".join([f"[topologies.{name}]", 'strategy = "exec"',
                                    'transport = "true"', f"[topologies.{name}.config]",
                                    command, line, ""]))
        rc, out, path, lines = harness.check_config("\n".join(parts), harness.ARGS.bin_dir)
        self.assertEqual(rc, 1, out)
        for name, line, value, message in cases:
            key = line.split(" =")[0]
            at = harness.problem_at(lines, path, line, value)
            self.assertRegex(out, rf"(?m)^{re.escape(at)}topologies\.{name}\.config\.{key}: .*"
                                  rf"{re.escape(message)}")
        self.assertIn(f"{len(cases)} problem(s)", out)


def main(argv=None):
    return harness.run_tests([Periodic, Stream, Reload, ConfigErrors], argv,
                             description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
