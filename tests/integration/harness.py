"""Helpers for integration tests that run the real clusterd (Python 3 stdlib only).

    with Daemon(config_text, bin_dir) as d:       # writes the config, starts clusterd, waits
        st = d.wait_until(lambda s: topology(s, "t")["state"] == "running", timeout=10)
        d.signal(signal.SIGHUP)
        rc = d.stop()                              # SIGTERM, deadline, SIGKILL as last resort
        print(d.log_text())

The config text is written to a fresh temporary directory with `control_socket` pointing
into it (the harness adds the key to the [clusterd] table, creating the table if needed; a
config must not set it itself). "@TMPDIR@" in the text is replaced by that directory, for
marker files and the like. clusterd runs as `<bin_dir>/clusterd run -c <file>` with stdout
and stderr going to files in the directory. The directory is removed on exit unless the
test failed (see run_tests) or CLUSTERD_TEST_KEEP=1 is set; its path is printed when kept.

Every wait is deadline-bounded polling; nothing sleeps to synchronise. Processes are only
ever signalled through their own Popen object (by PID, never by name), and any daemon still
running when the interpreter exits is killed (atexit; SIGTERM to the test is turned into a
normal exit so that this runs).

run_tests() is the shared main(): it parses --bin-dir / --fixtures-dir (also from
CLUSTERD_BIN_DIR / CLUSTERD_FIXTURES_DIR) into harness.ARGS, runs the given TestCase classes
in order and ends with the line "N passed, M failed"; the exit status is non-zero on any
failure. A test script should set sys.dont_write_bytecode = True before importing this
module, so that no __pycache__ lands in the source tree.
"""

import argparse
import atexit
import json
import math
import os
import re
import shutil
import signal as signal_module
import socket
import subprocess
import sys
import tempfile
import time
import unittest

__all__ = [
    "ARGS", "Daemon", "DaemonError", "ProtocolError", "WaitTimeout", "clusterctl",
    "connected_nodes", "node_states", "run_tests", "any_test_failed", "toml_list",
    "toml_string", "topology", "transport",
]

ARGS = None  # argparse.Namespace set by run_tests(): bin_dir, fixtures_dir, ...

_POLL_INTERVAL = 0.05      # seconds between polls
_MAX_RESPONSE = 64 << 20   # bytes accepted in one control-socket response
_SOCKET_PATH_MAX = 107     # sun_path is 108 bytes including the NUL
_live_daemons = set()
_any_failure = False


class DaemonError(RuntimeError):
    """clusterd did not start, died, or misbehaved at the process level."""


class ProtocolError(RuntimeError):
    """The control socket answered something that is not one JSON document line."""


class WaitTimeout(AssertionError):
    """wait_until() ran out of time. An AssertionError, so unittest reports a failure."""


# ---- TOML helpers --------------------------------------------------------------------------

def sanitized(pid):
    """True when process `pid` runs with AddressSanitizer: its memory figures mean nothing
    (freed blocks sit in ASan's quarantine)."""
    with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as f:
        return "libasan" in f.read()


def toml_string(text):
    """A TOML basic string literal for `text`."""
    out = ['"']
    for ch in str(text):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_list(items):
    """A TOML array of strings."""
    return "[" + ", ".join(toml_string(i) for i in items) + "]"


_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _with_control_socket(config_text, socket_path):
    """Adds control_socket = socket_path to the [clusterd] table (creating it if absent)."""
    lines = config_text.splitlines()
    header = None
    for i, line in enumerate(lines):
        m = _TABLE_HEADER.match(line)
        if m and m.group(1) == "clusterd" and not line.lstrip().startswith("[["):
            header = i
            break
    setting = "control_socket = " + toml_string(socket_path)
    if header is None:
        return "[clusterd]\n" + setting + "\n\n" + config_text
    for line in lines[header + 1:]:
        if _TABLE_HEADER.match(line):
            break
        if re.match(r"^\s*control_socket\s*=", line):
            raise ValueError("the config sets [clusterd] control_socket; the harness sets it")
    lines.insert(header + 1, setting)
    return "\n".join(lines) + "\n"


# ---- Status helpers ------------------------------------------------------------------------

def topology(status, name):
    """The topology called `name` in a status document, or None."""
    for t in status.get("topologies", []):
        if t.get("name") == name:
            return t
    return None


def transport(status, name):
    """The transport called `name` in a status document, or None."""
    for t in status.get("transports", []):
        if t.get("name") == name:
            return t
    return None


def node_states(status, topology_name):
    """{node name: state} of a topology ({} if the topology is absent)."""
    t = topology(status, topology_name)
    return {n["name"]: n["state"] for n in (t or {}).get("nodes", [])}


def connected_nodes(status, topology_name):
    """Names of the topology's nodes in state "connected"."""
    return {n for n, s in node_states(status, topology_name).items() if s == "connected"}


# ---- Processes -----------------------------------------------------------------------------

def clusterctl(bin_dir, args, socket_path=None, timeout=10.0):
    """Runs <bin_dir>/clusterctl [--socket PATH] ARGS; returns the CompletedProcess (text)."""
    cmd = [os.path.join(os.path.abspath(str(bin_dir)), "clusterctl")]
    if socket_path is not None:
        cmd += ["--socket", str(socket_path)]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)


def build_third_party(name):
    """Builds plugins/third_party/clusterd-plugin-NAME as its author would: this build's SDK
    (ARGS.build_dir) installed to ./NAME-work/sdk, the plugin configured with
    find_package(ClusterdSDK) in ./NAME-work/plugin (both kept between runs, so a repeated run
    only rebuilds what changed). A sanitized clusterd build gets a sanitized plugin, as the
    in-tree plugins are. Returns the directory of clusterd-NAME.so."""
    def run(argv, what):
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(argv)}\n"
                               + proc.stdout.decode(errors="replace")[-4000:])

    source = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                           "..", "plugins", "third_party",
                                           f"clusterd-plugin-{name}"))
    work = os.path.abspath(f"{name}-work")
    sdk, tree = os.path.join(work, "sdk"), os.path.join(work, "plugin")
    cmake = ARGS.cmake
    run([cmake, "--install", ARGS.build_dir, "--component", "sdk", "--prefix", sdk],
        "installing the SDK")
    if not os.path.exists(os.path.join(tree, "CMakeCache.txt")):
        configure = [cmake, "-S", source, "-B", tree, "-G", "Ninja",
                     "-DCMAKE_BUILD_TYPE=RelWithDebInfo", f"-DCMAKE_PREFIX_PATH={sdk}"]
        with open(os.path.join(ARGS.build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
            if any(line.strip() == "CLUSTERD_SANITIZE:BOOL=ON" for line in f):
                configure += ["-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined "
                              "-fno-omit-frame-pointer -fno-sanitize-recover=undefined",
                              "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined",
                              "-DCLUSTERD_PLUGIN_SHARED_CXX_RUNTIME=ON"]
        run(configure, f"configuring clusterd-plugin-{name}")
    run([cmake, "--build", tree, "-j2"], f"building clusterd-plugin-{name}")
    if not os.path.exists(os.path.join(tree, f"clusterd-{name}.so")):
        raise RuntimeError(f"no clusterd-{name}.so in {tree}")
    return tree


def check_config(config_text, bin_dir, env=None):
    """`clusterd check` of CONFIG_TEXT, written to a temporary file: (exit code, stdout+stderr,
    the file's path, its lines). The file is removed afterwards."""
    fd, path = tempfile.mkstemp(prefix="clusterd-check-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config_text)
        r = subprocess.run([os.path.join(os.path.abspath(str(bin_dir)), "clusterd"), "check",
                            "-c", path], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30, check=False, env=env)
        return r.returncode, r.stdout + r.stderr, path, config_text.splitlines()
    finally:
        os.unlink(path)


def problem_at(lines, path, key_line_prefix, value):
    """The "PATH:LINE:COLUMN: " a problem about the first line starting with KEY_LINE_PREFIX
    is reported at, VALUE being the text its column points at."""
    i = next(i for i, ln in enumerate(lines) if ln.startswith(key_line_prefix))
    return f"{path}:{i + 1}:{lines[i].index(value) + 1}: "


class Daemon:
    """One real clusterd process on a generated config, in its own temporary directory."""

    def __init__(self, config_text, bin_dir, *, start_timeout=15.0, env=None, args=()):
        self.config_text = config_text
        self.bin_dir = os.path.abspath(str(bin_dir))  # clusterd runs from its temp dir
        self.start_timeout = start_timeout
        self.env = env
        self.extra_args = list(args)
        self.tmpdir = None
        self.config_path = None
        self.socket_path = None
        self.stdout_path = None
        self.stderr_path = None
        self.proc = None
        self.pid = None
        self.returncode = None
        self.killed = False          # stop() had to use SIGKILL
        self.stop_seconds = None     # how long the SIGTERM shutdown took
        self._files = []

    # -- lifetime --

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(keep=exc_type is not None)
        return False

    def start(self):
        exe = os.path.join(self.bin_dir, "clusterd")
        if not os.access(exe, os.X_OK):
            raise DaemonError(f"no executable clusterd at {exe}")
        self.tmpdir = tempfile.mkdtemp(prefix="clusterd-it-")
        try:
            self._write_config()
        except BaseException:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self._files = [out, err]
        try:
            self.proc = subprocess.Popen(
                [exe, "run", "-c", self.config_path] + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.tmpdir,
                env=self.env)
        except BaseException:
            self.close(keep=True)
            raise
        self.pid = self.proc.pid
        _live_daemons.add(self)
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.close(keep=True)
            raise

    def _write_config(self):
        if any(c in self.tmpdir for c in '"\\\n'):
            raise DaemonError(f"temporary directory {self.tmpdir!r} is not TOML-safe")
        self.socket_path = os.path.join(self.tmpdir, "clusterd.sock")
        if len(self.socket_path.encode()) > _SOCKET_PATH_MAX:
            raise DaemonError(f"socket path too long for AF_UNIX: {self.socket_path} "
                              "(set TMPDIR to a shorter directory)")
        self.config_path = os.path.join(self.tmpdir, "clusterd.toml")
        text = _with_control_socket(self.config_text.replace("@TMPDIR@", self.tmpdir),
                                    self.socket_path)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text)

    def rewrite_config(self, config_text):
        """Replaces the config file (same @TMPDIR@ and control_socket handling as at start),
        atomically; send SIGHUP to make the daemon reload it."""
        text = _with_control_socket(config_text.replace("@TMPDIR@", self.tmpdir),
                                    self.socket_path)
        with open(self.config_path + ".new", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(self.config_path + ".new", self.config_path)
        self.config_text = config_text

    def wait_ready(self, timeout):
        """Polls until the control socket answers `status`; raises DaemonError if not."""
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(math.ceil(timeout / _POLL_INTERVAL)) + 1):
            if self.proc.poll() is not None:
                raise DaemonError(f"clusterd exited with status {self.proc.returncode} "
                                  f"before answering on its socket\n{self.log_tail()}")
            try:
                self.status(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                return
            except (OSError, ProtocolError) as e:
                last = e
            if time.monotonic() >= deadline:
                break
            time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        raise DaemonError(f"clusterd did not answer on {self.socket_path} within {timeout} s "
                          f"(last error: {last})\n{self.log_tail()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        """Sends `sig` to the daemon (by PID, through its Popen) if it is still running."""
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, timeout=20.0):
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            begin = time.monotonic()
            self.proc.send_signal(signal_module.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(10)
            self.stop_seconds = time.monotonic() - begin
        self.returncode = self.proc.returncode
        _live_daemons.discard(self)
        return self.returncode

    def close(self, keep=False):
        """Stops the daemon if needed, closes files, removes the temporary directory unless
        `keep`, a failed test (run_tests) or CLUSTERD_TEST_KEEP=1 asks to keep it."""
        try:
            self.stop()
        finally:
            for f in self._files:
                f.close()
            self._files = []
            if self.tmpdir and os.path.isdir(self.tmpdir):
                if keep or _any_failure or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
                    print(f"[harness] kept {self.tmpdir} (config, socket, logs)",
                          file=sys.stderr)
                else:
                    shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- control socket --

    def request(self, cmd, timeout=5.0, **fields):
        """Sends {"cmd": cmd, **fields} as one line; returns the one JSON line answered."""
        message = dict(cmd=cmd, **fields)
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.socket_path)
            s.sendall((json.dumps(message) + "\n").encode())
            buf = bytearray()
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProtocolError(f"no complete response to {cmd!r} within {timeout} s")
                s.settimeout(left)
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > _MAX_RESPONSE:
                    raise ProtocolError(f"response to {cmd!r} exceeds {_MAX_RESPONSE} bytes")
        line = bytes(buf).split(b"\n", 1)[0].strip()
        if not line:
            raise ProtocolError(f"empty response to {cmd!r}")
        try:
            return json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"response to {cmd!r} is not JSON ({e}): {line[:200]!r}")

    def status(self, timeout=5.0):
        """The `status` document (docs/control-protocol.md)."""
        response = self.request("status", timeout=timeout)
        if not isinstance(response, dict) or "error" in response:
            raise ProtocolError(f"status failed: {response!r}")
        return response

    def wait_until(self, predicate, timeout=10.0, what=None, interval=_POLL_INTERVAL):
        """Polls status() until predicate(status) is true; returns that status.

        A predicate raising KeyError/IndexError/TypeError/AttributeError counts as false
        (the document may not have the shape yet). Raises WaitTimeout with the last status
        and the log tail when time runs out, DaemonError if the daemon exits meanwhile."""
        what = what or getattr(predicate, "__name__", "condition")
        deadline = time.monotonic() + timeout
        last_status, last_problem = None, None
        for _ in range(int(math.ceil(timeout / interval)) + 1):
            if not self.running():
                raise DaemonError(f"clusterd exited (status {self.proc.returncode}) while "
                                  f"waiting for {what}\n{self.log_tail()}")
            try:
                st = self.status(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            except (OSError, ProtocolError) as e:
                last_problem = e
            else:
                last_status = st
                try:
                    if predicate(st):
                        return st
                    last_problem = None
                except (KeyError, IndexError, TypeError, AttributeError) as e:
                    last_problem = e
            if time.monotonic() >= deadline:
                break
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        shown = json.dumps(last_status, indent=1)[:6000] if last_status is not None else "none"
        raise WaitTimeout(f"timed out after {timeout} s waiting for {what}"
                          f"{f' (last problem: {last_problem!r})' if last_problem else ''}\n"
                          f"last status: {shown}\n{self.log_tail()}")

    def clusterctl(self, *args, timeout=10.0):
        """Runs clusterctl against this daemon's socket."""
        return clusterctl(self.bin_dir, list(args), socket_path=self.socket_path,
                          timeout=timeout)

    # -- logs --

    def log_text(self):
        """Everything the daemon wrote so far: stderr, then stdout."""
        parts = []
        for f in self._files:
            f.flush()
        for path in (self.stderr_path, self.stdout_path):
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    parts.append(f.read().decode("utf-8", errors="replace"))
        return "".join(parts)

    def log_tail(self, lines=60):
        text = self.log_text().splitlines()
        return "--- clusterd log (last %d lines) ---\n%s\n--- end of log ---" % (
            min(lines, len(text)), "\n".join(text[-lines:]))


def _kill_leftovers():
    for d in list(_live_daemons):
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            try:
                d.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


# ---- Test runner ---------------------------------------------------------------------------

def any_test_failed():
    """True once any test (or fixture) of run_tests() has failed."""
    return _any_failure


class _Result(unittest.TextTestResult):
    def addFailure(self, test, err):
        global _any_failure
        _any_failure = True
        super().addFailure(test, err)

    def addError(self, test, err):
        global _any_failure
        _any_failure = True
        super().addError(test, err)


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)


def run_tests(test_cases, argv=None, description=None, add_arguments=None):
    """Parses the common options, runs `test_cases` (TestCase classes) in order, prints
    "N passed, M failed" and returns the exit status (0 only if all passed)."""
    global ARGS
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bin-dir", default=os.environ.get("CLUSTERD_BIN_DIR"),
                        help="directory of the built clusterd and clusterctl")
    parser.add_argument("--fixtures-dir", default=os.environ.get("CLUSTERD_FIXTURES_DIR"),
                        help="directory of the fixture plugins (clusterd-fx_*.so)")
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="run only tests whose id contains this text (repeatable)")
    if add_arguments:
        add_arguments(parser)
    ARGS = parser.parse_args(argv)
    if not ARGS.bin_dir:
        parser.error("--bin-dir (or CLUSTERD_BIN_DIR) is required")
    signal_module.signal(signal_module.SIGTERM, _sigterm_to_exit)

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for case in test_cases:
        for test in loader.loadTestsFromTestCase(case):
            if not ARGS.patterns or any(p in test.id() for p in ARGS.patterns):
                suite.addTest(test)
    result = unittest.TextTestRunner(verbosity=2, resultclass=_Result, stream=sys.stdout).run(suite)

    failed_tests = {t.id() for t, _ in result.failures + result.errors
                    if isinstance(t, unittest.TestCase)}
    fixture_errors = [t for t, _ in result.errors if not isinstance(t, unittest.TestCase)]
    skipped = len(result.skipped)
    passed = result.testsRun - len(failed_tests) - skipped
    failed = len(failed_tests) + len(fixture_errors) + len(result.unexpectedSuccesses)
    if skipped:
        print(f"({skipped} skipped)")
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 and passed > 0 else 1
