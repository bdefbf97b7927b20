#!/usr/bin/env python3
"""Integration test: control-socket sessions (SDK ABI 1.1, control.h) with the real clusterd,
its real Unix socket and the fixture transport fx_control (tests/fixtures/plugins), driven by
a Python client and by clusterctl.

Covers routing ("transport"/"topology"), one-shot and multi-line sessions, plugin end(),
client close (session_closed exactly once), the too-slow rule (bounded daemon memory while
host commands still answer at once), line and session limits, the first-line timeout (and
none once a session is open), a reload that replaces the transport (its sessions end) or keeps
it (they survive), and clusterctl members / events / send / receive / request (exit 1 on an
error answer) / refresh.

    test_control.py --bin-dir <dir of clusterd> --fixtures-dir <dir of clusterd-fx_*.so>
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import toml_list, topology, transport  # noqa: E402

WAIT = 15.0
MAX_BUFFERED = 16 * 1024 * 1024  # CLUSTERD_CONTROL_MAX_BUFFERED
MAX_SESSIONS = 256


def make_config(fixtures_dir, fx_extra="", extra_topology=""):
    return "\n".join([
        "[clusterd]",
        f"plugin_path = {toml_list([fixtures_dir])}",
        "",
        "[transports.fx]",
        'plugin = "fx_control"',
        fx_extra,
        "",
        "[transports.plain]",
        'plugin = "fx_good_transport"',
        "",
        "[topologies.t]",
        'strategy = "fx_good_strategy"',
        'transport = "fx"',
        "[topologies.t.config]",
        f"nodes = {toml_list(['a@127.0.0.1'])}",
        "",
        "[topologies.p]",
        'strategy = "fx_good_strategy"',
        'transport = "plain"',
        "[topologies.p.config]",
        f"nodes = {toml_list(['b@127.0.0.1'])}",
        "",
        extra_topology,
    ]) + "\n"


class Client:
    """A raw control-socket client: JSON lines out, lines in, every wait deadline-bounded."""

    def __init__(self, path, rcvbuf=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.eof = False

    def send(self, obj):
        self.send_raw((json.dumps(obj) if not isinstance(obj, (bytes, str)) else obj))

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data + b"\n")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise harness.WaitTimeout(f"nothing more within the deadline; have {bytes(self.buf[:200])!r}")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def line(self, timeout=WAIT):
        """The next line as JSON; None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        raw, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return json.loads(raw)

    def expect_eof(self, timeout=WAIT):
        """Reads to EOF; returns the lines that came before it."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            if line is None:
                return lines
            lines.append(line)

    def open_now(self):
        """True if the server has not closed the connection (nothing pending to read)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return True
        try:
            chunk = self.sock.recv(1 << 16, socket.MSG_PEEK)
        except ConnectionError:
            return False
        return bool(chunk)

    def close(self):
        self.sock.close()


def fx_details(st):
    return transport(st, "fx")["details"]


def rss_kib(pid, field="VmRSS"):
    """Resident memory (or its high-water mark, field="VmHWM") of a process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def sanitized(pid):
    with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as f:
        return "libasan" in f.read()


D = None


def setUpModule():
    global D
    D = harness.Daemon(make_config(harness.ARGS.fixtures_dir), harness.ARGS.bin_dir)
    D.start()
    D.wait_until(lambda s: transport(s, "fx")["state"] == "running"
                 and topology(s, "t")["state"] == "running", WAIT, "fx running")


def tearDownModule():
    if D is not None:
        D.close()


class ControlTest(unittest.TestCase):
    def client(self, **kw):
        c = Client(D.socket_path, **kw)
        self.addCleanup(c.close)
        return c

    def closed_count(self):
        return int(fx_details(D.status())["sessions_closed"])

    def wait_closed(self, count, what):
        return D.wait_until(lambda s: int(fx_details(s)["sessions_closed"]) >= count, WAIT, what)

    # -- routing and session shapes --

    def test_status_shows_control(self):
        st = D.status()
        self.assertIs(transport(st, "fx")["control"], True)
        self.assertIs(transport(st, "plain")["control"], False)
        self.assertIs(topology(st, "t")["control"], False)

    def test_one_shot_answer_then_close(self):
        c = self.client()
        c.send({"cmd": "members", "transport": "fx"})
        lines = c.expect_eof()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0]["members"][0]["node"], "n2@127.0.0.1")

    def test_multi_line_session_and_plugin_end(self):
        before = self.closed_count()
        c = self.client()
        first = {"cmd": "echo", "transport": "fx", "n": 0}
        c.send(first)
        self.assertEqual(c.line(), first)
        for i in range(1, 50):  # later lines reach the same plugin session, in order
            c.send({"n": i, "text": "x" * i})
        for i in range(1, 50):
            self.assertEqual(c.line(), {"n": i, "text": "x" * i})
        c.send({"cmd": "end"})
        self.assertEqual(c.expect_eof(), [])  # the plugin's end() closed it
        st = self.wait_closed(before + 1, "session_closed after end()")
        self.assertEqual(int(fx_details(st)["late_sends_accepted"]), 0)

    def test_stream_in_order_then_end(self):
        c = self.client()
        c.send({"cmd": "stream", "transport": "fx", "count": 5000})
        lines = c.expect_eof()
        self.assertEqual([l["seq"] for l in lines], list(range(1, 5001)))

    def test_client_close_calls_session_closed_once(self):
        before = self.closed_count()
        c = self.client()
        c.send({"cmd": "hold", "transport": "fx"})
        self.assertEqual(c.line(), {"ok": True})
        self.assertEqual(self.closed_count(), before)  # open sessions are not closed
        c.close()
        st = self.wait_closed(before + 1, "session_closed after the client closed")
        # Exactly once, also after more loop turns.
        D.status()
        self.assertEqual(self.closed_count(), before + 1)
        self.assertEqual(int(fx_details(st)["late_sends_accepted"]), 0)

    def test_routing_errors(self):
        cases = [
            ({"cmd": "x", "transport": "nope"}, "no transport 'nope'"),
            ({"cmd": "x", "topology": "nope"}, "no topology 'nope'"),
            ({"cmd": "x", "transport": "plain"},
             "transport 'plain' (plugin fx_good_transport) has no control interface"),
            ({"cmd": "x", "topology": "t"},
             "topology 't' (plugin fx_good_strategy) has no control interface"),
            ({"cmd": "x", "transport": 5}, '"transport" must be a string'),
        ]
        for request, error in cases:
            with self.subTest(request=request):
                c = self.client()
                c.send(request)
                self.assertEqual(c.expect_eof(), [{"error": error}])

    def test_plugin_error_is_answered_and_ends(self):
        before = self.closed_count()
        c = self.client()
        c.send({"cmd": "fail", "transport": "fx"})
        self.assertEqual(c.expect_eof(), [{"error": "fixture: refused"}])
        self.wait_closed(before + 1, "session_closed after a failed request")

    def test_host_commands_unchanged(self):
        c = self.client()
        c.send({"cmd": "ping"})
        self.assertEqual(c.expect_eof(), [{"ok": True}])
        c = self.client()
        c.send({"cmd": "status"})
        lines = c.expect_eof()
        self.assertEqual(len(lines), 1)
        self.assertIn("transports", lines[0])

    # -- limits --

    def test_slow_client_is_cut_off_memory_bounded(self):
        before_closed = self.closed_count()
        rss_before = rss_kib(D.pid)
        c = self.client(rcvbuf=4096)
        c.send({"cmd": "flood", "transport": "fx"})  # and never read
        st = D.wait_until(lambda s: fx_details(s).get("flood_status") == "CLUSTERD_E_AGAIN",
                          WAIT, "flood refused with E_AGAIN")
        sent = int(fx_details(st)["flood_sent"])
        # Each line is ~1020 bytes: the host took about MAX_BUFFERED of them plus what the
        # kernel buffers held, then refused.
        self.assertGreater(sent * 1000, MAX_BUFFERED // 2)
        self.assertLess(sent * 1000, MAX_BUFFERED + (8 << 20))
        self.wait_closed(before_closed + 1, "session_closed after the cut-off")
        began = time.monotonic()
        D.status()
        self.assertLess(time.monotonic() - began, 1.0, "status must answer at once")
        grown, peak = rss_kib(D.pid) - rss_before, rss_kib(D.pid, "VmHWM") - rss_before
        print(f"[flood: {sent} lines accepted; daemon RSS +{grown} KiB, peak +{peak} KiB]",
              file=sys.stderr)
        # AddressSanitizer keeps freed memory in quarantine (256 MiB by default).
        limit = (64 + (256 if sanitized(D.pid) else 0)) * 1024
        self.assertLess(grown, limit, f"daemon RSS grew by {grown} KiB")
        self.assertLess(peak, limit, f"daemon RSS peaked {peak} KiB above where it was")
        # The client gets what was written before the cut, then EOF; no error line in between.
        lines = c.expect_eof()
        self.assertTrue(all("flood" in l for l in lines))

    def test_unread_stream_does_not_block_host_commands(self):
        c = self.client(rcvbuf=4096)
        c.send({"cmd": "stream", "transport": "fx", "count": 200000})  # ~2.5 MB, not read yet
        # Blocked, the loop would answer only once the stream is read: the bound below is a
        # hang detector, not a speed target (it failed at 1 s on a machine at load 30).
        for _ in range(5):
            began = time.monotonic()
            D.status()
            self.assertLess(time.monotonic() - began, 10.0)
        self.assertEqual(len(c.expect_eof()), 200000)

    def test_line_limits(self):
        c = self.client()
        c.send({"cmd": "ping", "pad": "y" * (70 * 1024)})  # a host command over 64 KiB
        self.assertEqual(c.expect_eof(),
                         [{"error": "request must be one JSON line of at most 64 KiB"}])
        before = self.closed_count()
        c = self.client()
        c.send({"cmd": "echo", "transport": "fx"})
        c.line()
        big = json.dumps({"data": "z" * (1 << 20)})  # a 1 MiB line is fine in a session
        c.send_raw(big)
        self.assertEqual(len(json.dumps(c.line())), len(big))
        try:
            c.sock.sendall(b"w" * (9 << 20))  # no newline: over 8 MiB
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close before taking it all
        lines = c.expect_eof()
        self.assertEqual(lines, [{"error": "a session line must be at most 8 MiB"}])
        self.wait_closed(before + 1, "session_closed after an over-long line")

    def test_first_line_timeout_but_not_in_sessions(self):
        idle = self.client()
        session = self.client()
        session.send({"cmd": "echo", "transport": "fx", "n": 1})
        self.assertEqual(session.line()["n"], 1)
        began = time.monotonic()
        self.assertEqual(idle.expect_eof(timeout=10), [])  # nothing asked: cut after 5 s
        self.assertGreater(time.monotonic() - began, 3.0)
        self.assertTrue(session.open_now())  # the session, as old, is still there
        session.send({"n": 2})
        self.assertEqual(session.line()["n"], 2)

    def test_session_limit(self):
        # Sessions of earlier tests may still be closing.
        D.wait_until(lambda s: fx_details(s)["sessions_open"] == "0", WAIT, "no open sessions")
        before = self.closed_count()
        held = []
        for _ in range(MAX_SESSIONS):
            c = self.client()
            c.send({"cmd": "hold", "transport": "fx"})
            held.append(c)
        for c in held:
            self.assertEqual(c.line(), {"ok": True})
        extra = self.client()
        extra.send({"cmd": "hold", "transport": "fx"})
        reply = extra.expect_eof()
        self.assertEqual(len(reply), 1)
        self.assertIn("too many control sessions", reply[0]["error"])
        self.assertIn("transports", D.status())  # host commands still answer
        for c in held:
            c.close()
        self.wait_closed(before + MAX_SESSIONS, "all held sessions closed")
        again = self.client()
        again.send({"cmd": "hold", "transport": "fx"})
        self.assertEqual(again.line(), {"ok": True})

    # -- reloads --

    def test_reload_replacing_the_transport_ends_its_sessions(self):
        c = self.client()
        c.send({"cmd": "hold", "transport": "fx"})
        self.assertEqual(c.line(), {"ok": True})
        old_pid_details = fx_details(D.status())
        self.assertGreaterEqual(int(old_pid_details["sessions_open"]), 1)
        # A changed host key of the transport: it is replaced.
        D.rewrite_config(make_config(harness.ARGS.fixtures_dir, fx_extra='resync_interval = "7s"'))
        D.signal(signal.SIGHUP)
        self.assertEqual(c.expect_eof(), [{"error": "transport fx stopped"}])
        st = D.wait_until(lambda s: transport(s, "fx")["state"] == "running"
                          and fx_details(s)["sessions_closed"] == "0", WAIT,
                          "a fresh fx instance")
        self.assertIs(transport(st, "fx")["control"], True)
        fresh = self.client()
        fresh.send({"cmd": "members", "transport": "fx"})
        self.assertEqual(len(fresh.expect_eof()), 1)
        self.assertIn("stopping", D.log_text())
        D.rewrite_config(make_config(harness.ARGS.fixtures_dir))  # as the other tests expect
        D.signal(signal.SIGHUP)
        D.wait_until(lambda s: transport(s, "fx")["state"] == "running"
                     and fx_details(s)["sessions_closed"] == "0"
                     and fx_details(s)["requests"] == "0", WAIT, "the original fx again")


class ClusterctlTest(unittest.TestCase):
    def ctl(self, *args, timeout=WAIT):
        return D.clusterctl(*args, timeout=timeout)

    def popen(self, *args):
        p = subprocess.Popen([os.path.join(D.bin_dir, "clusterctl"), "--socket", D.socket_path]
                             + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)

        def stop():
            if p.poll() is None:
                p.kill()  # our own child, by its Popen
            p.communicate(timeout=WAIT)
        self.addCleanup(stop)
        return p

    def requests(self):
        return int(fx_details(D.status())["requests"])

    def test_members_table_and_json(self):
        r = self.ctl("members")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("transport fx (self fx@127.0.0.1)", r.stdout)
        row = next((ln.split() for ln in r.stdout.splitlines()
                    if ln.split()[:1] == ["n2@127.0.0.1"]), [])
        self.assertEqual(row, ["n2@127.0.0.1", "up", "127.0.0.1:9202", "120", "ms", "85", "us"])
        r = self.ctl("members", "--transport", "fx", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["fx"]["members"][0]["rtt_us"], 85)
        r = self.ctl("members", "--transport", "plain")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no control interface", r.stderr)

    def test_status_json_has_control(self):
        r = self.ctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual({t["name"]: t["control"] for t in st["transports"]},
                         {"fx": True, "plain": False})
        self.assertEqual({t["name"]: t["control"] for t in st["topologies"]},
                         {"t": False, "p": False})

    def test_request_prints_every_line(self):
        r = self.ctl("request", json.dumps({"cmd": "stream", "transport": "fx", "count": 3}))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()],
                         [{"seq": 1}, {"seq": 2}, {"seq": 3}])
        r = self.ctl("request", json.dumps({"cmd": "x", "transport": "nope"}))
        self.assertEqual(json.loads(r.stdout), {"error": "no transport 'nope'"})
        self.assertEqual(r.returncode, 1, "an error answer exits 1 (clusterctl(1))")
        r = self.ctl("request", json.dumps({"cmd": "nope"}))
        self.assertEqual((r.returncode, json.loads(r.stdout)),
                         (1, {"error": "unknown command 'nope'"}))
        # An error line inside a session counts too; the lines before it are all printed.
        r = self.ctl("request", json.dumps({"cmd": "fail", "transport": "fx"}))
        self.assertEqual((r.returncode, json.loads(r.stdout)), (1, {"error": "fixture: refused"}))
        r = self.ctl("request", json.dumps({"cmd": "ping"}))
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"ok": True}))

    def test_refresh(self):
        quiet = "\n".join(["[topologies.quiet]", 'strategy = "fx_forgets_cancel"',
                           'transport = "plain"', "[topologies.quiet.config]",
                           'marker = "@TMPDIR@/quiet.marker"',
                           f"nodes = {toml_list(['q@127.0.0.1'])}"])
        with harness.Daemon(make_config(harness.ARGS.fixtures_dir, extra_topology=quiet),
                            harness.ARGS.bin_dir) as d:
            def discovered_long_ago(names):
                return d.wait_until(
                    lambda s: all((topology(s, n)["last_discovery_ms_ago"] or 0) >= 400
                                  for n in names), WAIT, f"{names}: last discovery 400 ms ago")

            def refreshed(st, name):
                return topology(st, name)["last_discovery_ms_ago"] < 400

            discovered_long_ago(["t", "p"])
            r = d.clusterctl("refresh", "t")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "refreshed t\n", ""))
            st = d.status()
            self.assertTrue(refreshed(st, "t"), "fx_good_strategy reports on refresh")
            self.assertFalse(refreshed(st, "p"), "only t was asked")
            self.assertIn("[topology t] refresh requested", d.log_text())

            # Without a topology: every one whose strategy can; the others are skipped.
            discovered_long_ago(["t", "p"])
            r = d.clusterctl("refresh")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines(), [
                "refreshed p", "refreshed t", "skipped quiet (its strategy cannot refresh)"])
            st = d.status()
            self.assertTrue(refreshed(st, "t") and refreshed(st, "p"))
            r = d.clusterctl("refresh", "--json")
            self.assertEqual(json.loads(r.stdout),
                             {"ok": True, "refreshed": ["p", "t"], "unsupported": ["quiet"]})

            # Errors: a strategy without refresh, an unknown topology; exit 1.
            r = d.clusterctl("refresh", "quiet")
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertEqual(r.stderr, "clusterctl: topology 'quiet': strategy fx_forgets_cancel "
                                       "does not implement refresh (it discovers on its own "
                                       "schedule)\n")
            r = d.clusterctl("refresh", "nope")
            self.assertEqual((r.returncode, r.stderr), (1, "clusterctl: no topology 'nope'\n"))
            # The raw protocol: a host command even though it names a topology.
            r = d.clusterctl("request", json.dumps({"cmd": "refresh", "topology": "quiet"}))
            self.assertEqual(r.returncode, 1)
            self.assertEqual(json.loads(r.stdout)["ok"], False)
            r = d.clusterctl("request", json.dumps({"cmd": "refresh", "topology": "p"}))
            self.assertEqual((r.returncode, json.loads(r.stdout)),
                             (0, {"ok": True, "refreshed": ["p"]}))

    def test_send_and_receive(self):
        before = self.requests()
        receiver = self.popen("receive", "fx", "chan", "--count", "3")
        D.wait_until(lambda s: int(fx_details(s)["requests"]) > before, WAIT,
                     "receiver subscribed")
        for word in ["one", "two", "three"]:
            r = self.ctl("send", "fx", "fx@127.0.0.1", "chan", word)
            self.assertEqual((r.returncode, r.stdout), (0, "ok\n"), r.stderr)
        out, err = receiver.communicate(timeout=WAIT)
        self.assertEqual(receiver.returncode, 0, err)
        self.assertEqual(out.splitlines(),
                         ["fx@127.0.0.1: one", "fx@127.0.0.1: two", "fx@127.0.0.1: three"])
        r = self.ctl("send", "fx", "ghost@127.0.0.1", "chan", "boo")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error: no member 'ghost@127.0.0.1'", r.stdout)
        r = self.ctl("send", "nope", "fx@127.0.0.1", "chan", "boo")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no transport 'nope'", r.stderr)

    def test_events_survive_a_reload_that_keeps_the_transport(self):
        before = self.requests()
        events = self.popen("events", "--transport", "fx")
        D.wait_until(lambda s: int(fx_details(s)["requests"]) > before, WAIT,
                     "events subscribed")
        extra = "\n".join(["[topologies.t2]", 'strategy = "fx_good_strategy"', 'transport = "fx"',
                           "[topologies.t2.config]", f"nodes = {toml_list(['n9@127.0.0.1'])}"])
        D.rewrite_config(make_config(harness.ARGS.fixtures_dir, extra_topology=extra))
        D.signal(signal.SIGHUP)
        # The connect of n9 through the kept transport reaches the subscriber.
        ready, _, _ = select.select([events.stdout], [], [], WAIT)
        self.assertTrue(ready, "no event within the deadline")
        self.assertEqual(json.loads(events.stdout.readline()), {"event": "up", "node": "n9@127.0.0.1"})
        closed = int(fx_details(D.status())["sessions_closed"])
        events.terminate()  # our own child
        events.communicate(timeout=WAIT)
        D.wait_until(lambda s: int(fx_details(s)["sessions_closed"]) > closed, WAIT,
                     "session_closed after clusterctl events ended")
        D.rewrite_config(make_config(harness.ARGS.fixtures_dir))
        D.signal(signal.SIGHUP)
        D.wait_until(lambda s: topology(s, "t2") is None, WAIT, "t2 gone again")


if __name__ == "__main__":
    sys.exit(harness.run_tests([ControlTest, ClusterctlTest],
                               description="control-socket sessions with the real daemon"))
