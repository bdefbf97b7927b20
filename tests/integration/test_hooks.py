#!/usr/bin/env python3
"""Integration test: [hooks] on_nodeup / on_nodedown in the real clusterd with the real
plugins (epmd and local_epmd strategies, command transport), a private real epmd with a real
BEAM node, and hook scripts this test writes into its own work directory.

The hook `rec.py` appends one JSON line per run to hooks.jsonl: its argv and its CLUSTERD_*
environment. The transport's commands are the helpers of test_command_transport.py (cmd.py
records connects/disconnects) or /bin/true.

    test_hooks.py --bin-dir <dir of clusterd, clusterctl>
"""

import fcntl  # noqa: F401  (used by the generated rec.py; imported here to fail early)
import json
import signal
import os
import re
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import beam  # noqa: E402
import harness  # noqa: E402
from harness import toml_list, toml_string, transport  # noqa: E402
from test_command_transport import Workdir, _python_shebang, poll, process_gone  # noqa: E402

WAIT = 20.0
A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"

REC_PY = r'''@SHEBANG@
# Written by test_hooks.py: a clusterd hook. Appends {"argv", "env"} as one JSON line.
import fcntl, json, os, sys
line = json.dumps({"argv": sys.argv[1:],
                   "env": {k: v for k, v in os.environ.items() if k.startswith("CLUSTERD_")}})
with open(os.path.join(@WORK@, "hooks.jsonl"), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(line + "\n")
'''

# Records its node, then waits (bounded) until the test creates `release`.
SLOW_SH = r'''#!/bin/sh
echo "$1" >> @WORK@/slow.nodes
i=0
while [ ! -e @WORK@/release ] && [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.02; done
'''


class HookWork(Workdir):
    def __init__(self):
        super().__init__(harness.ARGS.bin_dir, prefix="clusterd-hooks-")
        self.rec = self.file("rec.py")
        self.slow = self.file("slow.sh")
        self._write_exec(self.rec, REC_PY.replace("@SHEBANG@", _python_shebang())
                         .replace("@WORK@", repr(self.path)))
        self._write_exec(self.slow, SLOW_SH.replace("@WORK@", self.path))

    def runs(self):
        try:
            with open(self.file("hooks.jsonl"), encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def runs_for(self, event, node):
        return [r for r in self.runs()
                if r["env"].get("CLUSTERD_EVENT") == event and r["env"].get("CLUSTERD_NODE") == node]


def hooks_of(status):
    return status["hooks"]


def config_text(hooks, transport_lines, topologies):
    """A config: [hooks] lines, a command transport "cmd" with `transport_lines`, and
    topologies {name: (topology lines, config lines)}."""
    lines = ["[hooks]", *hooks, "[transports.cmd]", 'plugin = "command"', *transport_lines]
    for name, (own, config) in topologies.items():
        lines += [f"[topologies.{name}]", *own, f"[topologies.{name}.config]", *config]
    return "\n".join(lines + [""])


def start_daemon(config, *owned):
    """Starts clusterd on `config`; if that fails, closes `owned` (work dirs...) and re-raises."""
    try:
        return harness.Daemon(config, harness.ARGS.bin_dir).__enter__()
    except BaseException:
        for thing in owned:
            thing.close()
        raise


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)


class NodeUp(unittest.TestCase):
    """Two topologies on one command transport (no nodeup from the plugin: connect
    completions alone): t1 wants a and b, t2 wants b. One run per node, TOPOLOGY = the
    topologies that want it. Then a SIGHUP that changes the hook and adds c."""

    @classmethod
    def setUpClass(cls):
        cls.work = HookWork()
        cls.d = start_daemon(config_text(
            [f"on_nodeup = {toml_list([cls.work.rec, 'v1', 'two words'])}", 'timeout = "20s"'],
            [f"connect = {toml_list([cls.work.cmd, 'connect'])}"],
            {"t1": (['strategy = "epmd"'], [f"hosts = {toml_list([A, B])}"]),
             "t2": (['strategy = "epmd"'], [f"hosts = {toml_list([B])}"])}), cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.work.close()

    def test_1_one_run_per_node_with_node_and_topology(self):
        st = self.d.wait_until(lambda s: hooks_of(s)["ran"] >= 2, WAIT, "two hooks ran")
        self.assertEqual(set(transport(st, "cmd")["connected"]), {A, B})
        poll(lambda: len(self.work.runs()) >= 2, WAIT, "two records")
        by_node = {r["env"]["CLUSTERD_NODE"]: r for r in self.work.runs()}
        self.assertEqual(len(self.work.runs()), 2, self.work.runs())
        self.assertEqual(by_node[A]["argv"], ["v1", "two words", A, "t1"])
        self.assertEqual(by_node[B]["argv"], ["v1", "two words", B, "t1,t2"])
        self.assertEqual(by_node[B]["env"], {
            "CLUSTERD_EVENT": "nodeup", "CLUSTERD_NODE": B, "CLUSTERD_TOPOLOGY": "t1,t2",
            "CLUSTERD_TRANSPORT": "cmd"})
        h = hooks_of(self.d.status())
        self.assertEqual((h["ran"], h["failed"], h["timed_out"], h["dropped"]), (2, 0, 0, 0), h)

    def test_2_clusterctl_json_has_the_counters(self):
        self.d.wait_until(lambda s: hooks_of(s)["ran"] >= 2, WAIT, "two hooks ran")
        r = self.d.clusterctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(set(json.loads(r.stdout)["hooks"]),
                         {"queued", "running", "ran", "failed", "timed_out", "dropped"})

    def test_3_reload_applies_new_settings_to_new_events(self):
        self.d.wait_until(lambda s: hooks_of(s)["ran"] >= 2, WAIT, "two hooks ran")
        with open(self.d.config_path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("'v1'", "'v2'").replace('"v1"', '"v2"')
        text = text.replace(f"hosts = {toml_list([B])}", f"hosts = {toml_list([B, C])}")
        with open(self.d.config_path, "w", encoding="utf-8") as f:
            f.write(text)
        self.d.signal(signal.SIGHUP)
        self.d.wait_until(lambda s: hooks_of(s)["ran"] >= 3, WAIT, "c's hook ran")
        poll(lambda: self.work.runs_for("nodeup", C), WAIT, "c's record")
        self.assertEqual(self.work.runs_for("nodeup", C)[0]["argv"], ["v2", "two words", C, "t2"])
        # a and b stayed connected on the unchanged transport: no second run for them.
        self.assertEqual(len(self.work.runs_for("nodeup", B)), 1)
        self.assertEqual(len(self.work.runs_for("nodeup", A)), 1)


class NodeDownWhenRemoved(unittest.TestCase):
    """local_epmd on a private epmd with a real BEAM node, disconnect = "removed": the node
    stops; clusterd disconnects it; on_nodedown runs for it with the reason."""

    @classmethod
    def setUpClass(cls):
        cls.work = HookWork()
        try:
            cls.cluster = beam.Cluster(cls.work.path)
        except BaseException:
            cls.work.close()
            raise
        cls.d = start_daemon(config_text(
            [f"on_nodeup = {toml_list([cls.work.rec])}",
             f"on_nodedown = {toml_list([cls.work.rec])}"],
            [f"connect = {toml_list([cls.work.cmd, 'connect'])}",
             f"disconnect = {toml_list([cls.work.cmd, 'disconnect'])}",
             f"local_node = {toml_string('clusterd@127.0.0.1')}"],
            {"local": (['strategy = "local_epmd"', 'disconnect = "removed"'],
                       ['polling_interval = "100ms"', f"epmd_port = {cls.cluster.epmd_port}"])}),
            cls.cluster, cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.cluster.close()
        cls.work.close()

    def test_nodeup_then_nodedown_when_the_node_is_removed(self):
        node = self.cluster.start("x")
        poll(lambda: self.work.runs_for("nodeup", node), WAIT, "x's nodeup hook")
        up = self.work.runs_for("nodeup", node)[0]
        self.assertEqual(up["argv"], [node, "local"])
        self.cluster.kill(node)
        poll(lambda: self.work.runs_for("nodedown", node), WAIT, "x's nodedown hook")
        self.assertEqual(self.work.argv_records("disconnect"), [["disconnect", node]])
        down = self.work.runs_for("nodedown", node)[0]
        # No topology wants it any more: every topology on the transport.
        self.assertEqual(down["argv"], [node, "local"])
        self.assertEqual(down["env"], {
            "CLUSTERD_EVENT": "nodedown", "CLUSTERD_NODE": node, "CLUSTERD_TOPOLOGY": "local",
            "CLUSTERD_TRANSPORT": "cmd", "CLUSTERD_REASON": "disconnected by clusterd"})
        st = self.d.wait_until(lambda s: hooks_of(s)["ran"] == 2, WAIT, "two runs counted")
        self.assertEqual(hooks_of(st)["failed"], 0)


class ListingChanges(unittest.TestCase):
    """A node that appears in / disappears from the transport's listing (list_nodes every
    200 ms), wanted by no topology: nodeup and nodedown with every topology on the transport
    and the listing as the reason."""

    def test_listed_node_comes_and_goes(self):
        work = HookWork()
        extra = "extra@127.0.0.1"
        try:
            with harness.Daemon(config_text(
                    [f"on_nodeup = {toml_list([work.rec])}",
                     f"on_nodedown = {toml_list([work.rec])}"],
                    [f"connect = {toml_list([work.cmd, 'connect'])}",
                     f"list_nodes = {toml_list([work.cmd, 'list'])}",
                     'resync_interval = "200ms"'],
                    {"p": (['strategy = "epmd"'], [f"hosts = {toml_list([A])}"]),
                     "q": (['strategy = "epmd"'], [f"hosts = {toml_list([B])}"])}),
                    harness.ARGS.bin_dir) as d:
                d.wait_until(lambda s: {A, B} <= set(transport(s, "cmd")["connected"]), WAIT,
                             "a and b connected")
                work.write("state", "\n".join(work.state() + [extra]) + "\n")
                up = poll(lambda: work.runs_for("nodeup", extra), WAIT, "extra's nodeup")
                self.assertEqual(up[0]["argv"], [extra, "p,q"])
                work.write("state", "\n".join(n for n in work.state() if n != extra) + "\n")
                down = poll(lambda: work.runs_for("nodedown", extra), WAIT, "extra's nodedown")
                self.assertEqual(down[0]["argv"], [extra, "p,q"])
                self.assertEqual(down[0]["env"]["CLUSTERD_REASON"], "no longer listed")
                # a and b were never re-announced by the listings.
                self.assertEqual(len(work.runs_for("nodeup", A)), 1)
                self.assertEqual(len(work.runs_for("nodeup", B)), 1)
                self.assertEqual(work.runs_for("nodedown", A), [])
        finally:
            work.close()


class HookTimeoutAndStop(unittest.TestCase):
    """A hook that hangs is killed at its timeout and counted; at daemon stop a running hook
    is terminated, not left behind."""

    def run_daemon(self, work, timeout, hosts):
        return harness.Daemon(config_text(
            [f"on_nodeup = {toml_list([work.hang])}", f"timeout = {toml_string(timeout)}"],
            ['connect = ["/bin/true"]'],
            {"main": (['strategy = "epmd"'], [f"hosts = {toml_list(hosts)}"])}),
            harness.ARGS.bin_dir)

    def test_1_hung_hook_is_killed_at_the_timeout(self):
        work = HookWork()
        try:
            with self.run_daemon(work, "300ms", [A]) as d:
                st = d.wait_until(lambda s: hooks_of(s)["timed_out"] == 1, WAIT, "a timeout")
                self.assertEqual(hooks_of(st)["running"], 0)
                self.assertEqual(hooks_of(st)["ran"], 0)
                pids = work.pids("hang.pids")
                self.assertEqual(len(pids), 1)
                poll(lambda: process_gone(pids[0]), WAIT, "the hung hook gone")
                self.assertRegex(d.log_text(), r"on_nodeup for a@127\.0\.0\.1 .*timed out after "
                                               r"300 ms")
        finally:
            work.close()

    def test_2_stop_terminates_running_hooks(self):
        work = HookWork()
        try:
            with self.run_daemon(work, "60s", [A, B]) as d:
                d.wait_until(lambda s: hooks_of(s)["running"] == 2, WAIT, "two hooks running")
                pids = poll(lambda: len(work.pids("hang.pids")) == 2 and work.pids("hang.pids"),
                            WAIT, "two hook pids")
                self.assertEqual(d.stop(), 0)
                self.assertFalse(d.killed, "clusterd needed SIGKILL to stop")
                self.assertLess(d.stop_seconds, 5.0)
                for pid in pids:
                    poll(lambda: process_gone(pid), 5.0, f"hook pid {pid} gone")
                self.assertIn("[hooks] stopping: 0 queued event(s) dropped, 2 running hook(s) "
                              "terminated", d.log_text())
        finally:
            work.close()


class QueueFlood(unittest.TestCase):
    """queue_size = 2, max_running = 1 and a slow hook, 30 nodes connecting at once: one runs,
    two wait, 27 are dropped and counted, the drop is logged once, and the control socket
    keeps answering promptly."""

    NODES = [f"n{i:02d}@127.0.0.1" for i in range(30)]

    def test_flood_drops_and_counts(self):
        work = HookWork()
        config = config_text(
            [f"on_nodeup = {toml_list([work.slow])}", 'timeout = "60s"', "max_running = 1",
             "queue_size = 2"],
            ['connect = ["/bin/true"]'],
            {"main": (['strategy = "epmd"', "max_parallel = 64"],
                      [f"hosts = {toml_list(self.NODES)}"])})
        try:
            with harness.Daemon(config, harness.ARGS.bin_dir) as d:
                worst = 0.0
                st = None
                for _ in range(400):  # bounded: at most ~20 s of polling
                    begin = time.monotonic()
                    st = d.status(timeout=2.0)
                    worst = max(worst, time.monotonic() - begin)
                    if len(transport(st, "cmd")["connected"]) == 30:
                        break
                    time.sleep(0.05)
                self.assertEqual(len(transport(st, "cmd")["connected"]), 30)
                h = hooks_of(st)
                self.assertEqual((h["running"], h["queued"], h["dropped"]), (1, 2, 27), h)
                self.assertLess(worst, 1.0, "the control socket stalled during the flood")
                begin = time.monotonic()
                r = d.clusterctl("status")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertLess(time.monotonic() - begin, 2.0)
                work.touch("release")
                st = d.wait_until(lambda s: hooks_of(s)["ran"] == 3, WAIT, "three runs")
                h = hooks_of(st)
                self.assertEqual((h["running"], h["queued"], h["dropped"], h["failed"]),
                                 (0, 0, 27, 0), h)
                with open(work.file("slow.nodes"), encoding="utf-8") as f:
                    self.assertEqual(len(f.read().split()), 3)
                log = d.log_text()
                self.assertEqual(len(re.findall(r"\[hooks\] queue full", log)), 1, log[-3000:])
                self.assertRegex(log, r"\[hooks\] queue drained: 27 event\(s\) dropped")
        finally:
            work.close()


class BadConfig(unittest.TestCase):
    def test_check_reports_hook_problems_with_positions(self):
        work = HookWork()
        try:
            path = work.file("bad.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write("[hooks]\non_nodeup = [\"relative/hook\"]\nqueue_sise = 3\n")
            r = subprocess.run([os.path.join(harness.ARGS.bin_dir, "clusterd"), "check", "-c",
                                path], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            out = r.stdout + r.stderr
            self.assertIn(f"{path}:2:13: hooks.on_nodeup: 'relative/hook': use an absolute path",
                          out)
            self.assertRegex(out, re.escape(path) + r":3:\d+: hooks.queue_sise: unknown key")
        finally:
            work.close()


if __name__ == "__main__":
    sys.exit(harness.run_tests([NodeUp, NodeDownWhenRemoved, ListingChanges,
                                HookTimeoutAndStop, QueueFlood, BadConfig],
                               description=__doc__))
