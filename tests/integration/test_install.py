#!/usr/bin/env python3
"""Integration test: `cmake --install BUILD --prefix P` gives a working install.

P/bin/clusterd, run from a scratch directory with a minimal environment and no config, lists
the built-in epmd and command plugins from P's own plugin directory (not the build tree's),
`check` accepts a configuration that uses them, and the installed daemon runs it.

    test_install.py --bin-dir <build>/bin --build-dir <build> [--cmake cmake]
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import connected_nodes, toml_list  # noqa: E402

PLUGINS = {"epmd": "strategy", "command": "transport"}


def add_arguments(parser):
    parser.add_argument("--build-dir", default=os.environ.get("CLUSTERD_BUILD_DIR"),
                        help="the CMake build directory to install")
    parser.add_argument("--cmake", default=os.environ.get("CMAKE_COMMAND", "cmake"),
                        help="the cmake executable")


def minimal_env():
    """No CLUSTERD_* or other leftovers: PATH, and sanitizer settings if any."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}
    for key, value in os.environ.items():
        if re.match(r"^(ASAN|UBSAN|LSAN|MSAN|TSAN)_OPTIONS$", key):
            env[key] = value
    return env


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        args = harness.ARGS
        if not args.build_dir:
            raise RuntimeError("--build-dir (or CLUSTERD_BUILD_DIR) is required")
        cls.build = os.path.abspath(args.build_dir)
        cls.tmp = tempfile.mkdtemp(prefix="clusterd-install-")
        cls.prefix = os.path.join(cls.tmp, "P")
        cls.scratch = os.path.join(cls.tmp, "cwd")
        os.mkdir(cls.scratch)
        r = subprocess.run([args.cmake, "--install", cls.build, "--prefix", cls.prefix],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=300)
        cls.install_output = r.stdout + r.stderr
        cls.install_rc = r.returncode
        cls.bin = os.path.join(cls.prefix, "bin")
        cls.clusterd = os.path.join(cls.bin, "clusterd")

    @classmethod
    def tearDownClass(cls):
        if harness.any_test_failed() or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[test] kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_installed(self, *args):
        return subprocess.run([self.clusterd, *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, cwd=self.scratch,
                              env=minimal_env())

    def test_1_install_succeeds(self):
        self.assertEqual(self.install_rc, 0, self.install_output)
        for exe in ("clusterd", "clusterctl"):
            self.assertTrue(os.access(os.path.join(self.bin, exe), os.X_OK), exe)

    def test_2_plugins_list_finds_the_builtin_plugins(self):
        r = self.run_installed("plugins", "list")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for name, kind in PLUGINS.items():
            self.assertRegex(r.stdout, rf"(?m)^{kind}\s+{name}\s+\S+")
        self.assertNotRegex(r.stdout, r"(?m)^!", "a plugin failed to load")

    def test_3_plugins_come_from_the_prefix(self):
        for name, kind in PLUGINS.items():
            with self.subTest(plugin=name):
                r = self.run_installed("plugins", "describe", name)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                m = re.search(r"(?m)^\s*file: (.+)$", r.stdout)
                self.assertIsNotNone(m, r.stdout)
                path = os.path.realpath(m.group(1).strip())
                self.assertEqual(os.path.commonpath([path, os.path.realpath(self.prefix)]),
                                 os.path.realpath(self.prefix),
                                 f"{name} was loaded from outside the prefix: {path}")
                self.assertEqual(os.path.basename(path), f"clusterd-{name}.so")
                self.assertEqual(os.path.basename(os.path.dirname(path)), "plugins")
                self.assertIn(f"({kind},", r.stdout)

    def config_text(self):
        return "\n".join([
            "[transports.beam]",
            'plugin = "command"',
            'connect = ["true"]',
            'local_node = "a@127.0.0.1"',
            "",
            "[topologies.demo]",
            'strategy = "Cluster.Strategy.Epmd"',
            'transport = "beam"',
            'disconnect = "never"',
            "[topologies.demo.config]",
            f"hosts = {toml_list(['a@127.0.0.1', 'b@127.0.0.1', 'c@127.0.0.1'])}",
            "",
        ])

    def test_4_check_accepts_a_config_using_them(self):
        path = os.path.join(self.scratch, "clusterd.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.config_text())
        r = self.run_installed("check", "-c", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{path}: OK", r.stdout)

    def test_5_installed_daemon_runs_it(self):
        with harness.Daemon(self.config_text(), self.bin, env=minimal_env()) as d:
            st = d.wait_until(lambda s: connected_nodes(s, "demo") == {"b@127.0.0.1",
                                                                        "c@127.0.0.1"},
                              20.0, "b and c connected through the installed plugins")
            self.assertEqual([t["state"] for t in st["transports"]], ["running"])
            r = harness.clusterctl(self.bin, ["topologies"], socket_path=d.socket_path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^demo\s+\S+\s+beam\s+running\s+2/2")
            self.assertEqual(d.stop(), 0)


def main(argv=None):
    return harness.run_tests([Install], argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
