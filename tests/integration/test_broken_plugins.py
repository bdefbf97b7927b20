#!/usr/bin/env python3
"""Integration test: one real clusterd with one topology per broken fixture plugin
(tests/fixtures/plugins) next to a healthy topology, all on the in-memory fixture transport.

A misbehaving plugin must fail its own topology with an error that names the problem, and
never the daemon: the healthy topology still connects its nodes, the daemon keeps answering,
and a SIGTERM shutdown completes cleanly even though one plugin leaves a timer registered
and another blocks in stop().

Preflight (issue 14.9): a library that crashes or hangs when merely loaded (the loader
fixtures fx_crash_load, fx_hang_load, copied into a directory of their own) is refused by
`check`, `plugins list` and a reload with a message that says so, and never kills the process
that looks at it; a misspelled plugin name loads no library at all.

    test_broken_plugins.py --bin-dir <dir of clusterd> --fixtures-dir <dir of clusterd-fx_*.so>
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import connected_nodes, toml_list, toml_string, topology, transport  # noqa: E402

HEALTHY_NODES = ["a@127.0.0.1", "b@127.0.0.1"]
OLDER_NODES = ["o@127.0.0.1"]  # fx_abi12_strategy: a plugin built against ABI 1.2
LEAKY_NODES = ["c@127.0.0.1"]
SLEEPY_NODES = ["d@127.0.0.1"]

# Topology name -> (fixture plugin, regex the topology's `error` must match). A library that
# cannot be loaded fails its topology for good ("failed"); an instance that fails its init or
# start, or throws, is restarted with backoff ("restarting", test_lifecycle.py).
BROKEN = {
    "no_entry": ("fx_no_entry", r"clusterd_plugin_entry_v1"),
    "wrong_major": ("fx_wrong_major", r"ABI 2|major"),
    "newer_minor": ("fx_newer_minor", r"minor"),
    "short_struct": ("fx_short_struct", r"struct_size"),
    "bad_kind": ("fx_bad_kind", r"kind\D*99"),
    "init_fails": ("fx_init_fails", r"fixture: init refused"),
    "throws": ("fx_throws", r"fixture: thrown from start"),
    "throws_later": ("fx_throws", r"fixture: thrown from a timer callback"),
}
# Options of the broken topologies that take any.
BROKEN_CONFIG = {"throws_later": ['from = "timer"']}
# Topology names avoid the words the log checks look for ("slow", "timer", "left", ...).
LEAKY = "leaky"    # fx_forgets_cancel
SLEEPY = "sleepy"  # fx_slow_stop

WAIT = 15.0        # seconds for any state to be reached
STOP_TIMEOUT = 30.0


def make_config(fixtures_dir):
    t = [
        "[clusterd]",
        f"plugin_path = {toml_list([fixtures_dir])}",
        'log_level = "debug"',
        "",
        "[transports.good]",
        'plugin = "fx_good_transport"',
        "",
        "[topologies.healthy]",
        'strategy = "fx_good_strategy"',
        'transport = "good"',
        "[topologies.healthy.config]",
        f"nodes = {toml_list(HEALTHY_NODES)}",
        "",
        "[topologies.older]",
        'strategy = "fx_abi12_strategy"',
        'transport = "good"',
        "[topologies.older.config]",
        f"nodes = {toml_list(OLDER_NODES)}",
        "",
    ]
    for name, (fixture, _) in BROKEN.items():
        t += [f"[topologies.{name}]", f"strategy = {toml_string(fixture)}", 'transport = "good"']
        if name in BROKEN_CONFIG:
            t += [f"[topologies.{name}.config]"] + BROKEN_CONFIG[name]
        t += [""]
    t += [
        f"[topologies.{LEAKY}]",
        'strategy = "fx_forgets_cancel"',
        'transport = "good"',
        f"[topologies.{LEAKY}.config]",
        'marker = "@TMPDIR@/leaky.marker"',
        f"nodes = {toml_list(LEAKY_NODES)}",
        "",
        f"[topologies.{SLEEPY}]",
        'strategy = "fx_slow_stop"',
        'transport = "good"',
        f"[topologies.{SLEEPY}.config]",
        f"nodes = {toml_list(SLEEPY_NODES)}",
        "",
    ]
    return "\n".join(t)


# ---- Text checks: only the host's words count -----------------------------------------------
# The fixtures log nothing themselves, and fixture names are masked before matching errors
# and log lines, so that e.g. "fx_wrong_major" in a path or "fx_slow_stop" in a log line
# cannot satisfy a check on its own.

_FIXTURE_NAMES = re.compile(r"fx_[a-z_]+")
_LEFTOVER_WORDS = (r"(left|leftover|forgot|forgotten|leaked|leaking|still registered|"
                   r"outstanding|remaining|dangling|not cancel\w*|auto-?cancel\w*)")
_LEFTOVER = re.compile(rf"(?i)\b{_LEFTOVER_WORDS}\b.*\btimers?\b|\btimers?\b.*\b{_LEFTOVER_WORDS}")
_DURATION = re.compile(r"(?i)(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?)\b")


def host_lines(log_text):
    return [_FIXTURE_NAMES.sub("FX", line) for line in log_text.splitlines()]


def mentions_leftover_timer(line):
    return bool(_LEFTOVER.search(line))


def mentions_slow_stop(line):
    """A line about stop() being slow: says "slow", or gives a duration of 1 s or more."""
    if not re.search(r"(?i)\bstop", line):
        return False
    if re.search(r"(?i)\bslow(ly)?\b|exceed", line):
        return True
    for number, unit in _DURATION.findall(line):
        ms = float(number) * (1 if unit.lower().startswith("m") else 1000)
        if ms >= 1000:
            return True
    return False


def _crash_lines(log_text):
    """Lines that show a sanitizer report, a C++ terminate or a fatal signal."""
    pattern = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                         r"runtime error:|terminate called|Segmentation fault|Aborted")
    return [line for line in log_text.splitlines() if pattern.search(line)]


# ---- The shared daemon ----------------------------------------------------------------------

DAEMON = None


def setUpModule():
    global DAEMON
    args = harness.ARGS
    if not args.fixtures_dir:
        raise RuntimeError("--fixtures-dir (or CLUSTERD_FIXTURES_DIR) is required")
    fixtures_dir = os.path.abspath(args.fixtures_dir)
    missing = [f for f in ["fx_good_strategy", "fx_abi12_strategy", "fx_good_transport",
                           "fx_forgets_cancel",
                           "fx_slow_stop"] + [f for f, _ in BROKEN.values()]
               if not os.path.exists(os.path.join(fixtures_dir, f"clusterd-{f}.so"))]
    if missing:
        raise RuntimeError(f"fixture plugins missing from {fixtures_dir}: {missing}")
    DAEMON = harness.Daemon(make_config(fixtures_dir), args.bin_dir)
    DAEMON.start()


def tearDownModule():
    if DAEMON is not None:
        DAEMON.close()


class RunningDaemon(unittest.TestCase):
    """While the daemon runs."""

    def test_daemon_answers_status(self):
        st = DAEMON.status()
        self.assertEqual(st.get("pid"), DAEMON.pid)
        self.assertTrue(DAEMON.running())

    def test_healthy_topology_connects_both_nodes(self):
        def healthy_connected(st):
            t = topology(st, "healthy")
            return t["state"] == "running" and connected_nodes(st, "healthy") == set(HEALTHY_NODES)
        st = DAEMON.wait_until(healthy_connected, WAIT, "topology healthy: a and b connected")
        self.assertEqual(topology(st, "healthy")["error"], "")

    def test_plugin_built_against_abi_1_2_runs(self):
        def older_connected(st):
            t = topology(st, "older")
            return t["state"] == "running" and connected_nodes(st, "older") == set(OLDER_NODES)
        st = DAEMON.wait_until(older_connected, WAIT, "topology older: o connected")
        self.assertEqual(topology(st, "older")["error"], "")

    def test_plugin_built_against_abi_1_2_has_no_constraints(self):
        """The flag bits a 1.2 plugin left unassigned mean nothing to a 1.3 host: `nodes = []`
        passes although those bits read as NONEMPTY/MIN/MAX in 1.3."""
        exe = os.path.join(harness.ARGS.bin_dir, "clusterd")
        fixtures_dir = os.path.abspath(harness.ARGS.fixtures_dir)
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write("\n".join(["[clusterd]", f"plugin_path = {toml_list([fixtures_dir])}",
                               "[transports.good]", 'plugin = "fx_good_transport"',
                               "[topologies.older]", 'strategy = "fx_abi12_strategy"',
                               "[topologies.older.config]", "nodes = []", ""]))
        try:
            r = subprocess.run([exe, "check", "-c", f.name], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = subprocess.run([exe, "plugins", "describe", "fx_abi12_strategy", "-c", f.name],
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("ABI 1.2", r.stdout)
            self.assertNotIn("must be", r.stdout)
        finally:
            os.unlink(f.name)

    def test_good_transport_runs_and_lists_nodes(self):
        def listed(st):
            tr = transport(st, "good")
            return tr["state"] == "running" and set(HEALTHY_NODES) <= set(tr["connected"])
        st = DAEMON.wait_until(listed, WAIT, "transport good: running, a and b connected")
        self.assertEqual(transport(st, "good")["plugin"], "fx_good_transport")

    def test_leaky_topology_runs_until_stop(self):
        def leaky_connected(st):
            return (topology(st, LEAKY)["state"] == "running"
                    and connected_nodes(st, LEAKY) == set(LEAKY_NODES))
        st = DAEMON.wait_until(leaky_connected, WAIT, f"topology {LEAKY}: c connected")
        # With clusterd.status/1 the fixture counts its ticks: prove the timer really runs.
        if "ticks" in (topology(st, LEAKY).get("details") or {}):
            DAEMON.wait_until(lambda s: int(topology(s, LEAKY)["details"]["ticks"]) >= 3, WAIT,
                              f"topology {LEAKY}: timer ticking")

    def test_sleepy_topology_runs_until_stop(self):
        def sleepy_connected(st):
            return (topology(st, SLEEPY)["state"] == "running"
                    and connected_nodes(st, SLEEPY) == set(SLEEPY_NODES))
        DAEMON.wait_until(sleepy_connected, WAIT, f"topology {SLEEPY}: d connected")


RESTARTED = {"init_fails", "throws", "throws_later"}


def _broken_test(name, fixture, pattern):
    state = "restarting" if name in RESTARTED else "failed"

    def test(self):
        st = DAEMON.wait_until(lambda s: topology(s, name)["state"] == state, WAIT,
                               f"topology {name} ({fixture}) {state}")
        t = topology(st, name)
        self.assertEqual(t["strategy"], fixture)
        # The error names the library file, so mask fixture names: "/major/" must not be
        # satisfied by ".../clusterd-fx_wrong_major.so".
        self.assertRegex(_FIXTURE_NAMES.sub("FX", t["error"]), pattern,
                         f"topology {name}: the error does not name the problem: {t['error']!r}")
        self.assertEqual(t.get("nodes") or [], [], f"topology {name} has nodes")
        self.assertTrue(DAEMON.running(), "the daemon died")
    test.__doc__ = f"{fixture}: topology {state}, error matches /{pattern}/"
    return test


for _name, (_fixture, _pattern) in BROKEN.items():
    setattr(RunningDaemon, f"test_broken_{_name}", _broken_test(_name, _fixture, _pattern))


class Shutdown(unittest.TestCase):
    """After the broken topologies failed: SIGTERM, then what the shutdown left behind."""

    @classmethod
    def setUpClass(cls):
        # Let every topology settle (none still "starting") so that the shutdown happens with
        # the leaky timer running; a topology that never settles is reported by RunningDaemon.
        names = ["healthy", LEAKY, SLEEPY] + list(BROKEN)
        try:
            DAEMON.wait_until(
                lambda s: all(topology(s, n)["state"] in ("running", "failed", "restarting")
                              for n in names),
                WAIT, "every topology running or failed")
        except (harness.WaitTimeout, harness.DaemonError):
            pass  # reported by RunningDaemon / the tests below
        cls.alive_before = DAEMON.running()
        try:
            cls.status_before = DAEMON.status() if cls.alive_before else None
        except (OSError, harness.ProtocolError):
            cls.status_before = None
        cls.returncode = DAEMON.stop(timeout=STOP_TIMEOUT)
        cls.log = DAEMON.log_text()
        cls.marker = os.path.join(DAEMON.tmpdir, "leaky.marker")

    def _log_excerpt(self):
        return "\n--- log (last 40 lines) ---\n" + "\n".join(self.log.splitlines()[-40:])

    def test_daemon_survived_the_broken_plugins(self):
        self.assertTrue(self.alive_before, "clusterd was not running before SIGTERM")
        self.assertIsNotNone(self.status_before)

    def test_sigterm_stops_cleanly(self):
        self.assertFalse(DAEMON.killed, f"clusterd ignored SIGTERM for {STOP_TIMEOUT} s")
        self.assertEqual(self.returncode, 0, "exit status after SIGTERM" + self._log_excerpt())

    def test_no_timer_fires_after_stop(self):
        self.assertFalse(os.path.exists(self.marker),
                         "fx_forgets_cancel's timer ran after its stop(): the host did not "
                         "cancel what the instance left registered")

    def test_log_mentions_leftover_timer(self):
        # The host table is per instance, so the host knows (and must say) whose timer it was.
        lines = [ln for ln in host_lines(self.log)
                 if mentions_leftover_timer(ln) and re.search(rf"\b{LEAKY}\b", ln)]
        self.assertTrue(lines, f"no log line naming topology {LEAKY} about the timer "
                        "fx_forgets_cancel left registered" + self._log_excerpt())

    def test_leftover_process_terminated_and_reaped(self):
        # fx_forgets_cancel's never-cancelled `sleep 60` (clusterd.process/1): the host cancels
        # it at the instance's stop and reaps it before exiting; the log counts it.
        pidfile = self.marker + ".pid"
        self.assertTrue(os.path.exists(pidfile), "fx_forgets_cancel's child never ran")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.assertFalse(os.path.exists(f"/proc/{pid}"),
                         f"the child {pid} fx_forgets_cancel left running outlived clusterd")
        lines = [ln for ln in host_lines(self.log)
                 if re.search(r"\b1 process\(es\)", ln) and re.search(rf"\b{LEAKY}\b", ln)]
        self.assertTrue(lines, "no log line counting the process fx_forgets_cancel left running"
                        + self._log_excerpt())

    def test_slow_stop_logged_and_waited_for(self):
        lines = [ln for ln in host_lines(self.log)
                 if mentions_slow_stop(ln) and re.search(rf"\b{SLEEPY}\b", ln)]
        self.assertTrue(lines, f"no log line naming topology {SLEEPY} about fx_slow_stop's slow "
                        "stop()" + self._log_excerpt())
        # stop() blocks 1.5 s: a shutdown faster than that did not call it (or not wait).
        self.assertGreaterEqual(DAEMON.stop_seconds or 0.0, 1.4,
                                "shutdown was faster than fx_slow_stop's stop()")

    def test_no_crash_in_log(self):
        self.assertEqual(_crash_lines(self.log), [])


def loader_fixture(name):
    d = harness.ARGS.loader_fixtures_dir or os.path.join(
        os.path.dirname(os.path.abspath(harness.ARGS.fixtures_dir)), "lib-loader")
    return os.path.join(d, f"clusterd-{name}.so")


class Preflight(unittest.TestCase):
    """Libraries that crash or hang at load, in a plugin_path directory of their own."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="clusterd-preflight-")
        os.chmod(self.dir, 0o755)
        for name in ("fx_crash_load", "fx_hang_load"):
            shutil.copy(loader_fixture(name), self.dir)
        self.fixtures_dir = os.path.abspath(harness.ARGS.fixtures_dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, strategy=None):
        t = ["[clusterd]", f"plugin_path = {toml_list([self.fixtures_dir, self.dir])}", "",
             "[transports.good]", 'plugin = "fx_good_transport"', "",
             "[topologies.healthy]", 'strategy = "fx_good_strategy"', 'transport = "good"',
             "[topologies.healthy.config]", f"nodes = {toml_list(HEALTHY_NODES)}", ""]
        if strategy:
            t += ["[topologies.bad]", f"strategy = {toml_string(strategy)}", 'transport = "good"',
                  ""]
        return "\n".join(t)

    def check(self, strategy):
        rc, out, path, lines = harness.check_config(self.config(strategy), harness.ARGS.bin_dir)
        self.assertGreaterEqual(rc, 0, f"check died of signal {-rc}:\n{out}")
        return rc, out, harness.problem_at(lines, path, "strategy = " + toml_string(strategy),
                                           toml_string(strategy))

    def test_misspelled_name_loads_no_library(self):
        rc, out, at = self.check("fx_crash_lod")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{at}topologies.bad.strategy: no plugin 'fx_crash_lod'", out)
        self.assertNotIn("crashed", out)

    def test_crashing_library_is_refused_by_check(self):
        rc, out, at = self.check("fx_crash_load")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{at}topologies.bad.strategy: {self.dir}/clusterd-fx_crash_load.so: "
                      "plugin fx_crash_load crashed at load (signal 11)", out)

    def test_hanging_library_is_refused_by_check(self):
        rc, out, at = self.check("fx_hang_load")
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{at}topologies.bad.strategy: {self.dir}/clusterd-fx_hang_load.so: "
                      "plugin fx_hang_load hung at load", out)

    def test_plugins_list_reports_them_and_lists_the_rest(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(self.config())
        try:
            r = subprocess.run([os.path.join(harness.ARGS.bin_dir, "clusterd"), "plugins", "list",
                                "-c", f.name], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"!  {self.dir}/clusterd-fx_crash_load.so: {self.dir}/clusterd-"
                      "fx_crash_load.so: plugin fx_crash_load crashed at load (signal 11)",
                      r.stdout)
        self.assertIn("hung at load", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^strategy\s+fx_good_strategy\s")

    def test_reload_to_a_crashing_library_is_rejected_and_the_daemon_serves_on(self):
        with harness.Daemon(self.config(), harness.ARGS.bin_dir) as d:
            def healthy(st):
                return connected_nodes(st, "healthy") == set(HEALTHY_NODES)
            d.wait_until(healthy, WAIT, "topology healthy: a and b connected")
            for strategy, said in (("fx_crash_load", "plugin fx_crash_load crashed at load "
                                                     "(signal 11)"),
                                   ("fx_crash_lod", "no plugin 'fx_crash_lod'")):
                before = d.log_text().count("reload rejected")
                d.rewrite_config(self.config(strategy))
                d.signal(signal.SIGHUP)
                d.wait_until(lambda s: d.log_text().count("reload rejected") > before, WAIT,
                             f"the reload to {strategy} rejected")
                self.assertTrue(d.running(), "the daemon died\n" + d.log_tail())
                self.assertIn(said, d.log_text())
                st = d.wait_until(healthy, WAIT, "topology healthy still connected")
                self.assertEqual([t["name"] for t in st["topologies"]], ["healthy"],
                                 "the rejected configuration was applied")


def main(argv=None):
    def add_arguments(parser):
        parser.add_argument("--loader-fixtures-dir", default=None,
                            help="directory of the loader fixtures (default: lib-loader beside "
                                 "--fixtures-dir)")
    return harness.run_tests([RunningDaemon, Shutdown, Preflight], argv, description=__doc__,
                             add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
