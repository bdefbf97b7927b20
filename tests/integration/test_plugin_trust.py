#!/usr/bin/env python3
"""Integration test: who may provide the code clusterd loads as root (issue 14.3).

Real `clusterd check` runs on plugin files and directories made for each case, some owned or
written by a real other user (nobody, through runuser). The loader fixture fx_marker appends
"good" to $CLUSTERD_FX_MARKER from its library constructor; fx_marker_evil is the same plugin
appending "evil", so the marker file says whose code ran. The rule as root: the file and
every directory above it (symlinks resolved) owned by root and writable only by root; a
sticky directory others can write to is accepted for root's entries. The swap races run
renameat2(RENAME_EXCHANGE) in a tight bounded loop while `check` runs: the loader checks and
loads the same open file, so no run may load the file it did not check.

Needs root (skipped otherwise).

    test_plugin_trust.py --bin-dir <dir of clusterd> --fixtures-dir <dir of clusterd-fx_*.so>
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import toml_list  # noqa: E402

NOBODY = 65534
NOGROUP = 65534
PLUGIN = "clusterd-fx_marker.so"
RACE_RUNS = 200         # `check` runs per swap race
RACE_SECONDS = 120.0    # the racer's own deadline (it is stopped long before)

# The racer: swaps two names atomically until the stop file appears (or its deadline).
RACER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b, stop, deadline = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3], float(sys.argv[4])
open(stop + ".started", "w").close()
end = time.monotonic() + deadline
for i in range(10 ** 9):
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    if i % 512 == 0 and (os.path.exists(stop) or time.monotonic() > end):
        break
"""


def loader_fixture(name):
    d = harness.ARGS.loader_fixtures_dir or os.path.join(
        os.path.dirname(os.path.abspath(harness.ARGS.fixtures_dir)), "lib-loader")
    return os.path.join(d, f"clusterd-{name}.so")


@unittest.skipUnless(os.geteuid() == 0, "needs root (files owned by nobody, runuser)")
class Case(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="clusterd-trust-")
        os.chmod(self.root, 0o755)
        self.marker = os.path.join(self.root, "marker")

    def tearDown(self):
        if harness.any_test_failed() or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[test] kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def mkdir(self, rel, mode, uid=0, gid=0):
        path = os.path.join(self.root, rel)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)  # after chown, which may clear set-id bits
        return path

    def install(self, fixture, path, mode=0o644, uid=0, gid=0):
        shutil.copyfile(loader_fixture(fixture), path)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return path

    def check(self, plugin_dir):
        """`clusterd check` of a topology of fx_marker found in plugin_dir."""
        text = "\n".join([
            "[clusterd]", f"plugin_path = {toml_list([plugin_dir, harness.ARGS.fixtures_dir])}",
            "[transports.t]", 'plugin = "fx_good_transport"',
            "[topologies.x]", 'strategy = "fx_marker"', 'transport = "t"', ""])
        env = dict(os.environ, CLUSTERD_FX_MARKER=self.marker)
        return harness.check_config(text, harness.ARGS.bin_dir, env=env)[:2]

    def ran(self):
        """Whose constructors ran, in order ("good", "evil")."""
        if not os.path.exists(self.marker):
            return []
        with open(self.marker) as f:
            return f.read().split()

    def assert_refused(self, rc, out, message):
        self.assertEqual(rc, 1, out)
        self.assertIn(message, out)
        self.assertIn("must be owned by root and writable only by root", out)
        self.assertEqual(self.ran(), [], "the refused plugin's code ran")


class TrustRule(Case):
    def test_trusted_file_loads(self):
        d = self.mkdir("plugins", 0o755)
        self.install("fx_marker", os.path.join(d, PLUGIN))
        rc, out = self.check(d)
        self.assertEqual(rc, 0, out)
        self.assertIn("good", self.ran())
        self.assertNotIn("evil", self.ran())

    def test_group_writable_file_rewritten_by_nobody_is_refused(self):
        """The issue's reproduction: a 0664 root:nogroup file nobody can rewrite in place."""
        d = self.mkdir("plugins", 0o755)
        path = self.install("fx_marker", os.path.join(d, PLUGIN), 0o664, 0, NOGROUP)
        evil = self.install("fx_marker_evil", os.path.join(self.root, "evil.so"))
        r = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", f'cat "{evil}" > "{path}"'],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, "rb") as a, open(evil, "rb") as b:
            self.assertEqual(a.read(), b.read(), "nobody did not manage to rewrite the file")
        rc, out = self.check(d)
        self.assert_refused(rc, out, f"{path}: not loaded: the file is group-writable "
                                     "(mode 0664, owner root, group nogroup)")

    def test_group_writable_directory_is_refused(self):
        d = self.mkdir("plugins", 0o775, 0, NOGROUP)
        self.install("fx_marker", os.path.join(d, PLUGIN))
        rc, out = self.check(d)
        self.assert_refused(rc, out, f"directory {d} is group-writable (mode 0775, owner root, "
                                     "group nogroup)")

    def test_world_writable_grandparent_is_refused(self):
        gp = self.mkdir("shared", 0o777)
        d = self.mkdir("shared/plugins", 0o755)
        self.install("fx_marker", os.path.join(d, PLUGIN))
        rc, out = self.check(d)
        self.assert_refused(rc, out, f"directory {gp} is world-writable (mode 0777")

    def test_file_owned_by_nobody_is_refused(self):
        d = self.mkdir("plugins", 0o755)
        path = self.install("fx_marker_evil", os.path.join(d, PLUGIN), 0o644, NOBODY, NOGROUP)
        rc, out = self.check(d)
        self.assert_refused(rc, out, f"{path}: not loaded: the file is owned by nobody, not root")

    def test_roots_file_in_a_sticky_directory_is_accepted(self):
        d = self.mkdir("tmp", 0o1777)
        self.install("fx_marker", os.path.join(d, PLUGIN))
        rc, out = self.check(d)
        self.assertEqual(rc, 0, out)
        self.assertIn("good", self.ran())


class SwapRace(Case):
    """A swap between the check and the load (the issue's 13 of 300 `check` runs)."""

    def race(self, plugin_dir, a, b, user):
        """Runs `check` RACE_RUNS times while `user` swaps a and b; returns the outcomes."""
        signals = self.mkdir("racer", 0o755, NOBODY, NOGROUP)  # off the plugin's path
        stop = os.path.join(signals, "stop")
        # The system's python for another user (this one's may be under /root).
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        cmd = [python, "-c", RACER, a, b, stop, str(RACE_SECONDS)]
        if user != "root":
            cmd = ["runuser", "-u", user, "--"] + cmd
        racer = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 cwd=signals)
        outcomes = []
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(stop + ".started"):
                if racer.poll() is not None:
                    self.fail("the racer failed: " + racer.stderr.read())
                self.assertLess(time.monotonic(), deadline, "the racer did not start")
                time.sleep(0.01)
            for _ in range(RACE_RUNS):
                outcomes.append(self.check(plugin_dir))
            if racer.poll() is not None:
                self.fail("the racer stopped early: " + racer.stderr.read())
        finally:
            open(stop, "w").close()
            try:
                racer.wait(30)
            except subprocess.TimeoutExpired:
                racer.kill()
                racer.wait(10)
        return outcomes

    def test_symlink_into_a_directory_of_nobody(self):
        """The issue's reproduction: the plugin is a symlink to a file in nobody's directory,
        and nobody swaps root's file there with its own."""
        home = self.mkdir("home", 0o755, NOBODY, NOGROUP)
        good = self.install("fx_marker", os.path.join(home, PLUGIN))
        evil = self.install("fx_marker_evil", os.path.join(home, "evil.so"), 0o644, NOBODY,
                            NOGROUP)
        d = self.mkdir("plugins", 0o755)
        os.symlink(good, os.path.join(d, PLUGIN))
        outcomes = self.race(d, good, evil, "nobody")
        self.assertNotIn("evil", self.ran(), "nobody's code ran as root")
        for rc, out in outcomes:
            self.assertEqual(rc, 1, out)
            self.assertIn(f"directory {home} is owned by nobody, not root", out)

    def test_swap_in_a_root_directory_loads_only_the_checked_inode(self):
        """root's file and nobody's file swapped in a root directory: each run loads root's
        file or refuses nobody's; none checks one and loads the other."""
        d = self.mkdir("plugins", 0o755)
        good = self.install("fx_marker", os.path.join(d, PLUGIN))
        evil = self.install("fx_marker_evil", os.path.join(d, "evil.so.swap"), 0o644, NOBODY,
                            NOGROUP)
        outcomes = self.race(d, good, evil, "root")
        self.assertNotIn("evil", self.ran(), "a file that was not checked was loaded")
        refused = f"{good}: not loaded: the file is owned by nobody, not root"
        loaded = sum(1 for rc, _ in outcomes if rc == 0)
        for rc, out in outcomes:
            if rc != 0:
                self.assertEqual(rc, 1, out)
                self.assertIn(refused, out)
        print(f"\n  {loaded} of {RACE_RUNS} runs loaded root's file, the others refused "
              "nobody's", file=sys.stderr)


def main(argv=None):
    def add_arguments(parser):
        parser.add_argument("--loader-fixtures-dir", default=None,
                            help="directory of the loader fixtures (default: lib-loader beside "
                                 "--fixtures-dir)")
    code = harness.run_tests([TrustRule, SwapRace], argv, description=__doc__,
                             add_arguments=add_arguments)
    return code


if __name__ == "__main__":
    sys.exit(main())
