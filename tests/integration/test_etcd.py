#!/usr/bin/env python3
"""Integration test: the `etcd` strategy in real clusterd daemons against a real etcd
(Debian's etcd-server, started here on free loopback ports with a temporary data directory),
with the `command` transport recording connects and disconnects (the helper of
test_command_transport.py); each daemon's transport names its local node, which is the name
the strategy registers.

Covers: join (each daemon registers <prefix>/<node> and sees the others), leave (a stopped
daemon revokes its lease: the others drop it long before the lease could expire), crash (a
SIGKILLed daemon's key goes when its lease expires), keys written by others arrive through the
watch, etcd restarted (the last good set is kept and the reason shown while it is down; the
watch resumes from its revision, the registration survives), a quiet watch is resumed after
watch_timeout without an error, a daemon cut off (through a
proxy) while etcd compacts the revisions it missed reads the prefix again, an endpoint that
answers garbage (reason shown, the next endpoint used), auth (username + password_file ->
token; a wrong password is shown and never logged, a corrected file is read again on reload;
etcd's restart forgets tokens and the strategy authenticates again), TLS with client
certificates (the right CA works, a wrong CA fails closed).

    test_etcd.py --bin-dir <dir of clusterd, clusterctl>
"""

import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, toml_list, toml_string, topology  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402

WAIT = 20.0
PKI_SCRIPT = os.path.join(HERE, "..", "servers", "make_test_pki.sh")
ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")
A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: etcd gets SIGTERM if this test process dies, even by
    SIGKILL, so no etcd outlives the test."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Etcd:
    """One etcd member on 127.0.0.1 (client and peer ports free at start), its data in
    `workdir`; started and stopped by PID through its Popen object."""

    def __init__(self, workdir, tls_dir=None):
        self.workdir = workdir
        self.tls_dir = tls_dir
        self.client_port, self.peer_port = free_port(), free_port()
        self.proc = None
        self.log_path = os.path.join(workdir, "etcd.log")
        self.start()

    @property
    def url(self):
        scheme = "https" if self.tls_dir else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [ETCD, "--name", "t", "--data-dir", os.path.join(self.workdir, "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"t={peer}", "--log-outputs", "stderr"]
        if self.tls_dir:
            # etcd's gateway dials etcd with the server certificate as its client certificate.
            argv += ["--cert-file", self.pki("server-client.crt"),
                     "--key-file", self.pki("server-client.key"),
                     "--trusted-ca-file", self.pki("ca.crt"), "--client-cert-auth"]
        log = open(self.log_path, "ab")
        # Only loopback, only this test's ports; ETCD_* variables of the caller do not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=env, preexec_fn=_die_with_parent)
        log.close()
        poll(self.healthy, WAIT, f"etcd at {self.url} healthy")

    def pki(self, name):
        return os.path.join(self.tls_dir, name)

    def healthy(self):
        """GET /health answers {"health":"true"} (with auth enabled too, unlike etcdctl's
        `endpoint health`, which reads a key)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"etcd exited with {self.proc.returncode}: {self.log_tail()}")
        context = None
        if self.tls_dir:
            context = ssl.create_default_context(cafile=self.pki("ca.crt"))
            context.load_cert_chain(self.pki("client.crt"), self.pki("client.key"))
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2, context=context) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, lines=20):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def ctl(self, *args, check=True, user=None):
        argv = [ETCDCTL, "--endpoints", self.url, "--dial-timeout", "2s",
                "--command-timeout", "5s"]
        if self.tls_dir:
            argv += ["--cacert", self.pki("ca.crt"), "--cert", self.pki("client.crt"),
                     "--key", self.pki("client.key")]
        if user:
            argv += ["--user", user]
        env = dict({k: v for k, v in os.environ.items() if not k.startswith("ETCD")},
                   ETCDCTL_API="3")
        r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=15, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)}: {r.stderr.strip()}")
        return r

    def keys(self, prefix, user=None):
        """{key: value} under `prefix`."""
        out = self.ctl("get", "--prefix", prefix, "-w", "json", user=user).stdout
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
                for kv in json.loads(out).get("kvs", [])}


class EtcdTestCase(unittest.TestCase):
    """One etcd for the class; daemons and their command-transport work directories per test."""

    TLS = False

    @classmethod
    def setUpClass(cls):
        if not ETCD or not ETCDCTL:
            raise unittest.SkipTest("etcd / etcdctl not installed (Debian: etcd-server etcd-client)")
        cls.dir = tempfile.mkdtemp(prefix="clusterd-etcd-")
        tls_dir = None
        if cls.TLS:
            tls_dir = os.path.join(cls.dir, "pki")
            subprocess.run(["sh", PKI_SCRIPT, tls_dir], check=True, timeout=60)
        cls.etcd = Etcd(cls.dir, tls_dir=tls_dir)

    @classmethod
    def tearDownClass(cls):
        cls.etcd.stop()
        if not harness.any_test_failed():
            shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.daemons = []
        self.workdirs = []
        self.prefix = "/it/" + self.id().rsplit(".", 1)[-1]

    def tearDown(self):
        for d in self.daemons:
            d.close(keep=harness.any_test_failed())
        for w in self.workdirs:
            if not harness.any_test_failed():
                shutil.rmtree(w.path, ignore_errors=True)

    def config(self, local_node, **options):
        work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-etcd-cmd-")
        self.workdirs.append(work)
        options.setdefault("endpoints", [self.etcd.url])
        options.setdefault("prefix", self.prefix)
        lines = ["[clusterd]", 'log_level = "debug"', "",
                 "[transports.cmd]", 'plugin = "command"',
                 f"connect = [{toml_string(work.cmd)}, \"connect\"]",
                 f"disconnect = [{toml_string(work.cmd)}, \"disconnect\"]",
                 f"local_node = {toml_string(local_node)}", "",
                 "[topologies.e]", 'strategy = "etcd"', 'transport = "cmd"',
                 'backoff_initial = "100ms"', 'backoff_max = "200ms"', "[topologies.e.config]"]
        for key, value in options.items():
            if isinstance(value, list):
                lines.append(f"{key} = {toml_list(value)}")
            elif isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            else:
                lines.append(f"{key} = {toml_string(value)}")
        return "\n".join(lines) + "\n"

    def daemon(self, local_node, **options):
        d = harness.Daemon(self.config(local_node, **options), harness.ARGS.bin_dir)
        d.start()
        self.daemons.append(d)
        return d

    def wait_connected(self, d, nodes, what):
        return d.wait_until(lambda s: connected_nodes(s, "e") == set(nodes), WAIT, what)

    def wait_keys(self, nodes, what, user=None):
        want = {f"{self.prefix}/{n}": n for n in nodes}
        return poll(lambda: self.etcd.keys(self.prefix + "/", user=user) == want, WAIT, what)


def discovery_error(status):
    return (topology(status, "e") or {}).get("discovery_error", "")


class TestMembership(EtcdTestCase):

    def test_join_and_leave_revokes_the_lease(self):
        # A long lease: only the revoke can explain a prompt leave.
        a = self.daemon(A, lease_ttl="60s")
        b = self.daemon(B, lease_ttl="60s")
        self.wait_keys([A, B], "both registered, each key holding its node name")
        self.wait_connected(a, [B], "a connected to b")
        self.wait_connected(b, [A], "b connected to a")
        lease = json.loads(self.etcd.ctl("get", f"{self.prefix}/{B}", "-w", "json").stdout)
        self.assertNotEqual(lease["kvs"][0].get("lease", 0), 0, "the key is leased")
        b.stop()
        self.wait_keys([A], "b's key deleted by its revoke, long before its 60 s lease expires")
        self.wait_connected(a, [], "a disconnected b")

    def test_crash_removes_the_node_when_its_lease_expires(self):
        a = self.daemon(A, lease_ttl="2s")
        c = self.daemon(C, lease_ttl="2s")
        self.wait_connected(a, [C], "a connected to c")
        c.signal(signal.SIGKILL)
        c.proc.wait(10)
        self.wait_keys([A], "c's key gone with its lease")
        self.wait_connected(a, [], "a disconnected the crashed c")
        self.assertEqual(discovery_error(a.status()), "")

    def test_keys_of_others_arrive_through_the_watch(self):
        a = self.daemon(A, register=False)
        self.assertEqual(self.etcd.keys(self.prefix + "/"), {}, "register = false: no key")
        self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1")
        self.wait_connected(a, ["x@127.0.0.1"], "a put key seen")
        self.etcd.ctl("put", f"{self.prefix}x/y@127.0.0.1", "outside the prefix")
        self.etcd.ctl("del", f"{self.prefix}/x@127.0.0.1")
        self.wait_connected(a, [], "a deleted key seen")
        self.assertEqual(len(self.workdirs[0].argv_records("connect")), 1,
                         "only the node under <prefix>/ was connected")

    def test_etcd_restart_keeps_the_set_and_resumes_the_watch(self):
        a = self.daemon(A, lease_ttl="3s")
        b = self.daemon(B, lease_ttl="3s")
        self.wait_connected(a, [B], "a connected to b")
        self.etcd.stop()
        try:
            st = a.wait_until(lambda s: discovery_error(s) != "", WAIT, "the outage shown")
            self.assertIn("watch", discovery_error(st))
            self.assertEqual(connected_nodes(st, "e"), {B}, "the last good set is kept")
        finally:
            self.etcd.start()
        # A key written after the restart reaches a through the resumed watch.
        self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1")
        self.wait_connected(a, [B, "x@127.0.0.1"], "a sees the new key after the restart")
        a.wait_until(lambda s: discovery_error(s) == "", WAIT, "the error cleared")
        self.wait_connected(b, [A, "x@127.0.0.1"], "b resumed too")
        self.assertIn(f"{self.prefix}/{B}", self.etcd.keys(self.prefix + "/"),
                      "b's registration survived the restart")
        self.assertNotIn("was compacted", a.log_text(), "resumed from a revision, not re-read")

    def test_quiet_watch_is_resumed_without_an_error(self):
        a = self.daemon(A, register=False, watch_timeout="1s")
        self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1")
        self.wait_connected(a, ["x@127.0.0.1"], "a sees x")
        poll(lambda: a.log_text().count("resuming on a new connection") >= 2, WAIT,
             "two quiet resumes after watch_timeout")
        self.assertEqual(discovery_error(a.status()), "")
        self.assertNotIn("discovery failed", a.log_text(), "an idle watch is no failure")
        self.etcd.ctl("put", f"{self.prefix}/y@127.0.0.1", "y@127.0.0.1")
        self.wait_connected(a, ["x@127.0.0.1", "y@127.0.0.1"], "a resumed watch delivers y")

    def test_compacted_revision_means_a_fresh_read(self):
        proxy = PausableProxy(self.etcd.client_port)
        try:
            a = self.daemon(A, register=False, endpoints=[proxy.url])
            self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1")
            self.wait_connected(a, ["x@127.0.0.1"], "a sees x through the proxy")
            proxy.pause()
            a.wait_until(lambda s: discovery_error(s) != "", WAIT, "the partition shown")
            # While a is cut off: x leaves, y joins, and etcd compacts those revisions away.
            self.etcd.ctl("del", f"{self.prefix}/x@127.0.0.1")
            self.etcd.ctl("put", f"{self.prefix}/y@127.0.0.1", "y@127.0.0.1")
            revision = json.loads(self.etcd.ctl("get", "/", "-w", "json").stdout)["header"]
            self.etcd.ctl("compaction", str(revision["revision"]))
            proxy.resume()
            self.wait_connected(a, ["y@127.0.0.1"], "a read the prefix again")
            self.assertIn("was compacted; reading", a.log_text())
            a.wait_until(lambda s: discovery_error(s) == "", WAIT, "the error cleared")
        finally:
            proxy.close()

    def test_garbage_endpoint_is_shown_and_the_next_one_used(self):
        garbage = GarbageServer()
        try:
            a = self.daemon(A, endpoints=[garbage.url, self.etcd.url])
            self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1")
            self.wait_connected(a, ["x@127.0.0.1"], "a reads from the second endpoint")
            self.assertIn("not JSON", a.log_text(), "the garbage answer was reported")
        finally:
            garbage.stop()


class PausableProxy:
    """A TCP proxy on loopback to `port`; while paused it closes every connection (existing
    and new), as a network partition between one daemon and etcd would."""

    def __init__(self, port):
        import threading
        self.port = port
        self.paused = threading.Event()
        self.conns = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self):
        self.paused.set()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def resume(self):
        self.paused.clear()

    def close(self):
        self.pause()
        self.listener.close()


class GarbageServer:
    """An HTTP server on loopback that answers every POST with 200 and a body that is not
    JSON (tests/servers/http_server.py would need a directory; this is three lines)."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b"<html>\x00\x1b[31m not etcd</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class TestAuth(EtcdTestCase):
    PASSWORD = "s3cret-pw-4711"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.etcd
        e.ctl("user", "add", "root:rootpw")
        e.ctl("user", "add", f"app:{cls.PASSWORD}")
        e.ctl("role", "add", "app")
        e.ctl("role", "grant-permission", "app", "readwrite", "--prefix=true", "/it/")
        e.ctl("user", "grant-role", "app", "app")
        e.ctl("auth", "enable")

    def password_file(self, text):
        path = os.path.join(self.dir, f"password-{len(self.workdirs)}")
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    def test_token_from_password_file_and_reauthentication_after_restart(self):
        a = self.daemon(A, username="app", password_file=self.password_file(self.PASSWORD))
        b = self.daemon(B, username="app", password_file=self.password_file(self.PASSWORD))
        self.wait_connected(a, [B], "a connected to b with a token")
        self.wait_keys([A, B], "both registered", user=f"app:{self.PASSWORD}")
        # etcd forgets its simple tokens when it restarts: the strategy authenticates again.
        self.etcd.stop()
        self.etcd.start()
        self.etcd.ctl("put", f"{self.prefix}/x@127.0.0.1", "x@127.0.0.1",
                      user=f"app:{self.PASSWORD}")
        self.wait_connected(a, [B, "x@127.0.0.1"], "a watches again with a new token")
        for d in (a, b):
            self.assertNotIn(self.PASSWORD, d.log_text(), "the password is never logged")

    def test_wrong_password_is_shown_never_logged_and_reread_on_reload(self):
        wrong = "wrong-pw-0815"
        path = self.password_file(wrong)
        a = self.daemon(A, username="app", password_file=path)
        st = a.wait_until(lambda s: "authentication failed" in discovery_error(s), WAIT,
                          "the refused login shown")
        self.assertNotIn(wrong, a.log_text() + json.dumps(st))
        with open(path, "w") as f:
            f.write(self.PASSWORD + "\n")
        before = a.log_text().count("reload done")
        a.signal(signal.SIGHUP)
        a.wait_until(lambda s: a.log_text().count("reload done") > before, WAIT, "the reload")
        self.wait_keys([A], "registered after the reload read the corrected file",
                       user=f"app:{self.PASSWORD}")
        a.wait_until(lambda s: discovery_error(s) == "", WAIT, "the error cleared")
        self.assertNotIn(self.PASSWORD, a.log_text())


class TestTls(EtcdTestCase):
    TLS = True

    def tls(self, ca="ca.crt"):
        return dict(ca_file=self.etcd.pki(ca), cert_file=self.etcd.pki("client.crt"),
                    key_file=self.etcd.pki("client.key"))

    def test_client_certificates(self):
        a = self.daemon(A, **self.tls())
        b = self.daemon(B, **self.tls())
        self.wait_connected(a, [B], "a connected to b over TLS")
        b.stop()
        self.wait_keys([A], "b's revoke over TLS")

    def test_wrong_ca_fails_closed(self):
        a = self.daemon(A, **self.tls(ca="other-ca.crt"))
        st = a.wait_until(lambda s: discovery_error(s) != "", WAIT, "the TLS failure shown")
        self.assertEqual(connected_nodes(st, "e"), set())
        self.assertEqual(self.etcd.keys(self.prefix + "/"), {}, "nothing registered")


if __name__ == "__main__":
    sys.exit(harness.run_tests([TestMembership, TestAuth, TestTls],
                               description="the etcd strategy against a real etcd"))
