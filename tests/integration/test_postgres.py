#!/usr/bin/env python3
"""Integration test: the third-party strategy postgres (plugins/third_party/
clusterd-plugin-postgres), built out of tree against this build's installed SDK (as test_ec2.py
builds ec2), loaded by real clusterd daemons through plugin_path, against a real PostgreSQL:
Debian's server binaries (/usr/lib/postgresql/*/bin), a cluster made by initdb in a temporary
directory and started with pg_ctl as an unprivileged user (PostgreSQL refuses to run as root:
under root the server runs as `postgres`, else as the current user), listening on a free
loopback port and on a Unix socket in that directory, password authentication (scram-sha-256)
over TCP, every statement logged. The `command` transport records every connect and
disconnect; its local_node is the name each daemon announces.

Checks: three daemons (over TCP with password_file, over the Unix socket, through a libpq URI
from url_env) find each other, and a fourth through a libpq service file; the SQL on the wire is exactly libcluster_postgres's
(`NOTIFY "chan", 'name'`, seen in the server's statement log and by a psql session that
LISTENs); a stopped daemon is reported lost after expire_after and disconnected; a database
outage longer than expire_after and a restart lose no node and reconnect; a wrong password
(rotated password_file + reload) is a clear error that keeps the node set, and the password
never appears in logs or status; payloads that are not node names are refused and counted;
a NOTIFY issued from psql with libcluster_postgres's exact SQL makes the daemons connect that
node; `clusterd check` refuses a bad channel and a too short expire_after, and passes the
shipped example.

    test_postgres.py --bin-dir <dir of clusterd, clusterctl> --build-dir <clusterd build tree>
                     --cmake <cmake>
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import connected_nodes, node_states, toml_list, toml_string, topology  # noqa: E402
from test_command_transport import Workdir, poll  # noqa: E402

WAIT = 20.0
CHANNEL = "clusterd_test"
ROLE, PASSWORD = "clusterd", "pw-5f0c1e-secret"
A, B, C = "a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"


def setUpModule():
    harness.ARGS.bin_dir = os.path.abspath(harness.ARGS.bin_dir)
    build_plugin()
    Postgres.server = PgServer()


def tearDownModule():
    if Postgres.server is not None:
        Postgres.server.close(keep=harness.any_test_failed())


def build_plugin():
    """With --plugin-dir: that directory's clusterd-postgres.so (e.g. the installed package's);
    otherwise the plugin built out of tree against this build's SDK (harness.build_third_party,
    in ./postgres-work)."""
    if getattr(harness.ARGS, "plugin_dir", None):
        Postgres.plugin_dir = os.path.abspath(harness.ARGS.plugin_dir)
    else:
        Postgres.plugin_dir = harness.build_third_party("postgres")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A throwaway PostgreSQL cluster: initdb + pg_ctl in a temporary directory, as an
    unprivileged user, on 127.0.0.1:<free port> and a Unix socket in that directory."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                       key=lambda p: int(p.split("/")[4]))
        if not found:
            raise RuntimeError("no PostgreSQL server (apt-get install postgresql)")
        self.bin = os.path.dirname(found[-1])
        self.dir = tempfile.mkdtemp(prefix="clusterd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        os.mkdir(self.socket_dir)
        self.as_user = []
        if os.geteuid() == 0:  # PostgreSQL refuses root: run it as `postgres`
            user = pwd.getpwnam("postgres")
            for path in (self.dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            self.as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                            "--clear-groups"]
        self.pg("initdb", "-D", self.data, "-U", "admin", "-E", "UTF8", "--no-sync",
                "--auth-local=trust", "--auth-host=scram-sha-256")
        self.port = None
        for _ in range(5):  # the free port may be taken by the time the server binds it
            self.port = free_port()
            with open(os.path.join(self.data, "postgresql.auto.conf"), "a",
                      encoding="utf-8") as f:
                f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                        f"unix_socket_directories = '{self.socket_dir}'\n"
                        "fsync = off\nlog_statement = 'all'\nlog_connections = on\n")
            if self.start(check=False):
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start\n{self.log_text()[-3000:]}")
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'",
                  f"CREATE DATABASE {ROLE} OWNER {ROLE}", database="postgres")

    def pg(self, tool, *args, check=True):
        r = subprocess.run(self.as_user + [os.path.join(self.bin, tool), *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                           cwd=self.dir, check=False)
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r.returncode == 0

    def start(self, check=True):
        return self.pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start",
                       check=check)

    def restart(self):
        """pg_ctl restart -m fast: the server terminates every connection."""
        self.pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-m", "fast",
                "restart")

    def stop(self):
        self.pg("pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", "fast", "stop")

    def close(self, keep=False):
        self.pg("pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", "immediate", "stop",
                check=False)
        if keep or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[postgres] kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, *commands, database=ROLE, timeout=60):
        """Runs each command as the superuser over the Unix socket, in DATABASE (the daemons':
        notifications stay within a database); returns its output."""
        argv = [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", self.socket_dir, "-p", str(self.port), "-U", "admin", "-d", database]
        for c in commands:
            argv += ["-c", c]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr}")
        return r.stdout + r.stderr

    def log_text(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def clusterd_backends(self):
        return int(self.psql("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = 'clusterd'").strip())


class Postgres(unittest.TestCase):
    plugin_dir = None
    server = None

    def setUp(self):
        self.work = Workdir(harness.ARGS.bin_dir, prefix="clusterd-pgt-")
        self.daemons = {}
        if not self.server.pg("pg_ctl", "-D", self.server.data, "status", check=False):
            self.server.start()  # a failed test may have left it stopped

    def tearDown(self):
        for d in self.daemons.values():
            d.close(keep=harness.any_test_failed())
        self.work.close()

    # -- daemons --

    def config_text(self, node, **config):
        base = {"channel_name": CHANNEL, "heartbeat_interval": "300ms", "expire_after": "3s",
                "reconnect_initial": "100ms", "reconnect_max": "400ms",
                "query_timeout": "3s", "connect_timeout": "3s"}
        base.update(config)
        lines = ["[clusterd]", f"plugin_path = {toml_list([self.plugin_dir])}", "",
                 "[transports.cmd]", 'plugin = "command"',
                 f"connect = {toml_list([self.work.cmd, 'connect', node])}",
                 f"disconnect = {toml_list([self.work.cmd, 'disconnect', node])}",
                 f"local_node = {toml_string(node)}", "",
                 "[topologies.p]", 'strategy = "LibclusterPostgres.Strategy"',
                 'transport = "cmd"', 'disconnect = "removed"', 'backoff_initial = "100ms"',
                 'backoff_max = "200ms"', "[topologies.p.config]"]
        for k, v in base.items():
            lines.append(f"{k} = {v if isinstance(v, int) else toml_string(v)}")
        return "\n".join(lines) + "\n"

    def tcp(self, password_file="password"):
        """Options for TCP, the password read from the file PASSWORD_FILE of the work dir."""
        self.work.write(password_file, PASSWORD + "\n")
        return {"hostname": "127.0.0.1", "port": self.server.port, "database": ROLE,
                "username": ROLE, "password_file": self.work.file(password_file)}

    def start(self, node, env=None, **config):
        d = harness.Daemon(self.config_text(node, **config), harness.ARGS.bin_dir, env=env)
        self.daemons[node] = d
        d.start()
        return d

    def start_three(self):
        """a over TCP with a password file, b over the Unix socket, c through a libpq URI with
        the password from the environment."""
        self.start(A, **self.tcp())
        self.start(B, socket_dir=self.server.socket_dir, port=self.server.port, database=ROLE,
                   username="admin")
        env = dict(os.environ, CLUSTERD_TEST_PG_URL=f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:"
                   f"{self.server.port}/{ROLE}?sslmode=disable")
        self.start(C, env=env, url_env="CLUSTERD_TEST_PG_URL")
        for node in (A, B, C):
            self.wait_peers(node, {A, B, C} - {node}, "the other two daemons")

    def wait_peers(self, node, expected, what, timeout=WAIT):
        expected = set(expected)
        return self.daemons[node].wait_until(
            lambda s: set(node_states(s, "p")) == expected and
            connected_nodes(s, "p") == expected, timeout, f"{node}: {what}")

    def details(self, node):
        return topology(self.daemons[node].status(), "p")["details"]

    def connects(self, node, peer):
        return sum(1 for argv in self.work.argv_records("connect") if argv[-2:] == [node, peer])

    def disconnects(self, node=None):
        return [argv for argv in self.work.argv_records("disconnect")
                if node is None or argv[-2] == node]

    # -- tests --

    def test_1_discovery_exact_sql_and_expiry(self):
        self.start_three()
        # libcluster_postgres's statements, byte for byte, in the server's statement log.
        log = self.server.log_text()
        for node in (A, B, C):
            self.assertIn(f"statement: LISTEN \"{CHANNEL}\"; NOTIFY \"{CHANNEL}\", '{node}'", log)
            self.assertIn(f"statement: NOTIFY \"{CHANNEL}\", '{node}'", log)
        self.assertEqual(self.server.clusterd_backends(), 3)
        # A psql session that LISTENs (as libcluster_postgres's Postgrex.Notifications does)
        # receives the heartbeats.
        out = self.server.psql(f'LISTEN "{CHANNEL}"', *["SELECT pg_sleep(0.4)"] * 5)
        for node in (A, B, C):
            self.assertIn(f'Asynchronous notification "{CHANNEL}" with payload "{node}"', out)
        details = self.details(A)
        self.assertEqual(details["announcing"], A)
        self.assertEqual(details["peers heard"], f"{B}, {C}")
        self.assertIn("listening, connected to PostgreSQL 127.0.0.1:", details["connection"])
        # A stopped daemon is lost after expire_after, and disconnected.
        self.daemons.pop(C).close()
        for node in (A, B):
            self.wait_peers(node, {A, B} - {node}, "c expired")
            poll(lambda: [C] in [argv[-1:] for argv in self.disconnects(node)], WAIT,
                 f"{node} disconnects c")
        self.assertIn(f"lost {C}: not heard for 3000 ms", self.daemons[A].log_text())

    def test_2_database_outage_and_restart_lose_no_node(self):
        self.start(A, **self.tcp())
        self.start(B, **self.tcp())
        self.wait_peers(A, {B}, "b")
        self.wait_peers(B, {A}, "a")
        # An outage longer than expire_after: each reconnect waits 200..400 ms, so 12 failed
        # attempts take longer than expire_after (3 s).
        self.server.stop()
        for node in (A, B):
            self.daemons[node].wait_until(
                lambda s: int(topology(s, "p")["details"].get("failed attempts", "0")) >= 12,
                WAIT, f"{node}: 12 failed reconnects")
            st = self.daemons[node].status()
            self.assertIn("cannot connect", topology(st, "p")["discovery_error"])
            self.assertEqual(connected_nodes(st, "p"), {A, B} - {node})
        self.server.start()
        for node in (A, B):
            self.daemons[node].wait_until(
                lambda s: topology(s, "p")["discovery_error"] == "" and
                topology(s, "p")["details"]["connection"].startswith("listening"),
                WAIT, f"{node}: reconnected")
        # A restart (connections terminated by the server) as well.
        self.server.restart()
        self.start(C, **self.tcp())  # joins after the restart: the new LISTENs work
        for node in (A, B):
            self.wait_peers(node, {A, B, C} - {node}, "c, after the restart")
        self.wait_peers(C, {A, B}, "a and b")
        poll(lambda: self.server.clusterd_backends() == 3, WAIT, "3 clusterd backends")
        self.assertEqual(self.disconnects(), [])
        self.assertIn("terminating connection due to administrator command",
                      self.daemons[A].log_text() + self.daemons[B].log_text())

    def test_3_wrong_password_keeps_the_set_and_is_never_shown(self):
        self.start(A, **self.tcp("password-a"))
        self.start(B, **self.tcp("password-b"))
        self.wait_peers(A, {B}, "b")
        wrong = "wrong-7c2d9a-password"
        self.work.write("password-a", wrong + "\n")
        self.daemons[A].signal(signal.SIGHUP)  # SIGHUP: the password file is read again
        st = self.daemons[A].wait_until(
            lambda s: "password authentication failed for user \"clusterd\"" in
            topology(s, "p")["discovery_error"], WAIT, "the wrong password reported")
        self.assertEqual(connected_nodes(st, "p"), {B})
        self.assertEqual(self.disconnects(), [])
        # Fixed: it connects again, hears b, and the error clears.
        self.work.write("password-a", PASSWORD + "\n")
        self.daemons[A].signal(signal.SIGHUP)
        self.daemons[A].wait_until(lambda s: topology(s, "p")["discovery_error"] == "", WAIT,
                                   "the error cleared")
        self.wait_peers(A, {B}, "b still")
        for d in self.daemons.values():
            status = json.dumps(d.status())
            for secret in (PASSWORD, wrong):
                self.assertNotIn(secret, d.log_text())
                self.assertNotIn(secret, status)

    def test_4_payloads_that_are_not_node_names_are_refused_and_counted(self):
        self.start(A, **self.tcp())
        self.daemons[A].wait_until(
            lambda s: topology(s, "p")["details"]["connection"].startswith("listening"), WAIT,
            "listening")
        self.server.psql(f"SELECT pg_notify('{CHANNEL}', E'evil@h\\nforged line')",
                         f"NOTIFY \"{CHANNEL}\", 'not a node'",
                         f"NOTIFY \"{CHANNEL}\", 'x@y@z'",
                         f"NOTIFY \"{CHANNEL}\", 'nonode@nohost'",
                         f"NOTIFY \"other_channel\", 'other@127.0.0.9'")
        st = self.daemons[A].wait_until(
            lambda s: topology(s, "p")["details"].get("refused") == "4", WAIT, "4 refused")
        details = topology(st, "p")["details"]
        self.assertEqual(details["refused.not_a_node_name"], "3")
        self.assertEqual(details["refused.not_distributed"], "1")
        self.assertEqual(node_states(st, "p"), {})
        log = self.daemons[A].log_text()
        self.assertIn("refused a heartbeat on \"clusterd_test\" from backend pid", log)
        # Logged at the 1st of each reason (then the 10th, 100th...), escaped.
        self.assertIn("'evil@h\\x0aforged line': not a node name", log)
        self.assertIn("'nonode@nohost': nonode@nohost: a node started without a name", log)
        self.assertNotIn("'not a node'", log)
        self.assertNotIn("other@127.0.0.9", log)
        self.assertEqual(self.work.argv_records("connect"), [])

    def test_5_a_node_announced_with_libcluster_postgres_sql_from_psql(self):
        self.start(A, **self.tcp())
        # b by name (the DNS service does not know "localhost": libpq finds it in /etc/hosts).
        self.start(B, **dict(self.tcp("password-b"), hostname="localhost"))
        self.wait_peers(A, {B}, "b")
        self.assertIn("connected to PostgreSQL localhost:", self.details(B)["connection"])
        elixir = "elixir@127.0.0.2"
        # Exactly what libcluster_postgres's heartbeat runs.
        self.server.psql(f"NOTIFY \"{CHANNEL}\", '{elixir}'")
        for node in (A, B):
            self.wait_peers(node, {A, B, elixir} - {node}, "the Elixir node")
            self.assertEqual(self.connects(node, elixir), 1)
        # It never says it again: lost after expire_after (libcluster_postgres never forgets).
        for node in (A, B):
            self.wait_peers(node, {A, B} - {node}, "the Elixir node expired")

    def test_6_check_refuses_bad_values_and_passes_the_example(self):
        for config, key, message in [
                ({"channel_name": 'a"b'}, "channel_name", "must be printable ASCII"),
                ({"expire_after": "300ms"}, "expire_after",
                 "must be longer than heartbeat_interval")]:
            with self.subTest(key):
                text = self.config_text(A, **config)
                rc, out, path, lines = harness.check_config(text, harness.ARGS.bin_dir)
                self.assertEqual(rc, 1, out)
                self.assertIn(f"topologies.p.config.{key}: {message}", out)
        text = self.config_text(A)
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("channel_name"))
        rc, out, _, _ = harness.check_config(text + "\n", harness.ARGS.bin_dir)
        self.assertEqual(rc, 1, out)
        self.assertIn("channel_name", out)
        example = os.path.join(HERE, "..", "..", "conf", "plugins", "postgres.toml.example")
        with open(example, encoding="utf-8") as f:
            text = f.read()
        self.assertNotRegex(text, r"(?m)^\[clusterd\]")  # the table is added here
        rc, out, _, _ = harness.check_config(
            f"[clusterd]\nplugin_path = {toml_list([self.plugin_dir])}\n\n{text}",
            harness.ARGS.bin_dir)
        self.assertEqual(rc, 0, out)

    def test_7_service_file(self):
        service_file = self.work.file("pg_service.conf")
        self.work.write("pg_service.conf",
                        f"[clusterd_test]\nhost=127.0.0.1\nport={self.server.port}\n"
                        f"dbname={ROLE}\nuser={ROLE}\npassword={PASSWORD}\n")
        env = dict(os.environ, PGSERVICEFILE=service_file)
        self.start(A, env=env, service="clusterd_test")
        self.start(B, **self.tcp())
        self.wait_peers(A, {B}, "b, through the service file's server")
        self.wait_peers(B, {A}, "a")


def main(argv=None):
    def add_arguments(parser):
        parser.add_argument("--build-dir", required=True, help="the clusterd build tree")
        parser.add_argument("--cmake", default="cmake", help="cmake to build the plugin with")
        parser.add_argument("--plugin-dir", help="use the clusterd-postgres.so there instead "
                            "of building it")
    return harness.run_tests([Postgres], argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
