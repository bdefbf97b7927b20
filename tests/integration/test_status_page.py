#!/usr/bin/env python3
"""Integration test: the status page (/ on metrics_listen), `clusterctl watch` and
`clusterctl graph`, seen as a person sees them.

The real clusterd with real plugins (BEAM nodes through the erlang transport and local_epmd;
three clusterd daemons on the partisan overlay; fixture plugins for 50 nodes), the page opened
in headless Chromium (Debian's, driven over its DevTools protocol by cdp.py), `clusterctl watch`
in a pseudo-terminal (a private tmux server). What is checked:
  - the nodes appear on the page, a killed node turns down on it (the page within a second of
    the daemon's nodedown event), a discovery failure shows its reason, the page goes offline
    when the daemon stops and follows the new daemon when it is back; no secret is shown;
  - screenshots with 3 and 50 nodes are written to --artifacts-dir;
  - with 50 nodes and 10 events/s the page keeps up (its own update times are printed);
  - /events is bounded: a reader that never reads is closed, at most 16 streams at once;
  - `clusterctl watch` draws the same changes in a terminal, and plain lines into a pipe;
  - `clusterctl graph` in DOT and Mermaid.
Nothing leaves 127.0.0.1.

    test_status_page.py --bin-dir <dir> --fixtures-dir <dir> [--artifacts-dir <dir>]
"""
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cdp  # noqa: E402
import harness  # noqa: E402
from beam import ClusterTestCase, free_port, wait_for  # noqa: E402
from harness import toml_list, toml_string, topology, transport  # noqa: E402
from test_partisan import SECRET, Node, OverlayCase, free_ports, overlay_config  # noqa: E402

WAIT = 20.0


def beam_config(cluster, metrics_port, refused_port):
    return f"""
[clusterd]
metrics_listen = "127.0.0.1:{metrics_port}"

[transports.beam]
plugin = "erlang"
nodes = "local"
epmd_port = {cluster.epmd_port}
cookie_file = {toml_string(cluster.cookie_file)}
local_poll_interval = "200ms"

[topologies.local]
strategy = "local_epmd"
transport = "beam"
[topologies.local.config]
epmd_port = {cluster.epmd_port}
polling_interval = "500ms"

[topologies.broken]
strategy = "local_epmd"
transport = "beam"
[topologies.broken.config]
epmd_port = {refused_port}
polling_interval = "500ms"
"""


def fixture_config(metrics_port, count):
    nodes = [f"node{i:02d}@10.0.{i // 200}.{i % 200 + 1}" for i in range(count)]
    return f"""
[clusterd]
plugin_path = {toml_list([harness.ARGS.fixtures_dir])}
metrics_listen = "127.0.0.1:{metrics_port}"

[transports.mem]
plugin = "fx_good_transport"
local_node = "self@10.0.0.254"

[topologies.fleet]
strategy = "fx_good_strategy"
transport = "mem"
[topologies.fleet.config]
nodes = {toml_list(nodes)}
""", nodes


# The page as a person reads it: the state shown in the node table for each node.
NODE_STATES = ("Object.fromEntries([...document.querySelectorAll('#nodes tr[data-node]')]"
               ".map(r => [r.dataset.node, r.dataset.state]))")


def artifacts(name):
    path = os.path.join(harness.ARGS.artifacts_dir, name)
    os.makedirs(harness.ARGS.artifacts_dir, exist_ok=True)
    return path


def get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


class PageCase(unittest.TestCase):
    def setUp(self):
        if not cdp.available():
            self.skipTest("no chromium (scripts/install-deps.sh installs it)")
        self.browser = cdp.Browser()
        self.browser.start()
        self.addCleanup(self.browser.close)

    def wait_states(self, predicate, what, timeout=WAIT):
        return self.browser.wait_for(f"(() => {{ const s = {NODE_STATES}; return ({predicate}) ? s : null; }})()",
                                     timeout, what)[0]


class BeamPage(ClusterTestCase, PageCase):
    def setUp(self):
        ClusterTestCase.setUp(self)
        PageCase.setUp(self)

    def test_page_follows_the_cluster_and_the_daemon(self):
        self.cluster.start_many(["a", "b", "c"])
        port, refused = free_port(), free_port()
        config = beam_config(self.cluster, port, refused)
        d = self.daemon(config)
        others = self.others(d)
        b = self.browser
        b.open(f"http://127.0.0.1:{port}/")
        # The nodes appear, connected (this daemon's own node is the graph's centre, not a row).
        self.wait_states(" && ".join(f"s['{n}'] === 'connected'" for n in others),
                         f"{others} connected on the page")
        # The failing discovery shows its reason, as the daemon has it.
        reason, _ = b.wait_for("(document.querySelector('#units tr[data-name=broken] td.reason') || {}).textContent",
                               WAIT, "the broken topology's reason")
        self.assertEqual(reason, topology(d.status(), "broken")["discovery_error"])
        self.assertIn(str(refused), reason)
        # The graph draws this node's view: the three nodes, connected.
        self.assertEqual(b.eval("[...document.querySelectorAll('#graph g[data-state=connected]')]"
                                ".map(g => g.dataset.node).sort()"), sorted(others))
        b.screenshot(artifacts("status-page-3-nodes.png"))
        self.assertNotIn(self.cluster.cookie, b.eval("document.documentElement.outerHTML"),
                         "the cookie is never shown")

        # A killed node turns down on the page: within a second of the daemon's nodedown.
        victim = others[-1]
        killed_at = time.time()
        self.cluster.kill(victim)
        self.wait_states(f"s['{victim}'] !== 'connected'", f"{victim} down on the page")
        shown_at = time.time()
        down = b.wait_for("window.clusterdPage.events.find(e => e.event === 'nodedown' "
                          f"&& e.node === '{victim}')", 5, "the nodedown event in the timeline")[0]
        lag = shown_at - down["time_ms"] / 1000
        print(f"\n  killed node: down on the page {shown_at - killed_at:.3f} s after the kill, "
              f"{lag:.3f} s after the daemon's nodedown event")
        self.assertLess(lag, 1.0, "the page shows a nodedown within a second")
        self.assertTrue(b.eval("[...document.querySelectorAll('#timeline li[data-event=nodedown]')]"
                               f".some(li => li.textContent.includes('{victim}'))"))

        # The daemon stops: the page says so; a new one starts: the page follows it.
        d.stop()
        b.wait_for("document.querySelector('#live').className === 'off'", WAIT, "the page offline")
        d2 = self.daemon(config)
        b.wait_for(f"window.clusterdPage.status && window.clusterdPage.status.pid === {d2.pid} && "
                   "document.querySelector('#live').className === 'on'", WAIT,
                   "the page on the new daemon")
        survivors = [n for n in self.others(d2) if n != victim]
        self.wait_states(" && ".join(f"s['{n}'] === 'connected'" for n in survivors),
                         f"{survivors} connected again")
        self.cluster.start(victim.split("@")[0])
        self.wait_states(f"s['{victim}'] === 'connected'", f"{victim} back, on the new daemon's stream")

    def others(self, d):
        """The BEAM nodes but this daemon's own, once the topology connected them. (With
        nodes = "local" the erlang transport's local node is the connected managed node with
        the smallest name: a@ once it is connected.)"""
        def settled(s):
            local = transport(s, "beam")["local_node"]
            if local != min(self.cluster.nodes):
                return False
            nodes = topology(s, "local")["nodes"]
            # (The topology may list the local node too, when it discovered it before the
            # transport knew it: then it is connected like the others.)
            return ({n["name"] for n in nodes} - {local} == set(self.cluster.nodes) - {local}
                    and all(n["state"] == "connected" for n in nodes))
        st = d.wait_until(settled, timeout=WAIT, what="the other nodes connected")
        return sorted(set(self.cluster.nodes) - {transport(st, "beam")["local_node"]})

    def test_watch_in_a_terminal_and_in_a_pipe_and_graph(self):
        if not shutil.which("tmux"):
            self.skipTest("no tmux")
        self.cluster.start_many(["a", "b", "c"])
        port, refused = free_port(), free_port()
        d = self.daemon(beam_config(self.cluster, port, refused))
        others = self.others(d)
        victim = others[-1]
        d.wait_until(lambda s: set(others) <= set(transport(s, "beam")["connected"]), timeout=WAIT)
        ctl = os.path.join(harness.ARGS.bin_dir, "clusterctl")

        # graph: this node, the transport, the three nodes connected.
        dot = harness.clusterctl(harness.ARGS.bin_dir, ["graph"], d.socket_path)
        self.assertEqual(dot.returncode, 0, dot.stderr)
        self.assertTrue(dot.stdout.startswith("digraph clusterd {"), dot.stdout)
        for n in others:
            self.assertIn(f'"transport:beam" -> "node:{n}" [color=forestgreen, label="connected', dot.stdout)
        mermaid = harness.clusterctl(harness.ARGS.bin_dir, ["graph", "--format", "mermaid"], d.socket_path)
        self.assertEqual(mermaid.returncode, 0, mermaid.stderr)
        self.assertTrue(mermaid.stdout.startswith("flowchart LR\n"), mermaid.stdout)
        self.assertEqual(mermaid.stdout.count('-->|"connected"|'), 2, mermaid.stdout)

        # watch in a pseudo-terminal (a private tmux server on a socket in the test's directory).
        tmux = ["tmux", "-S", os.path.join(self.work.name, "tmux.sock"), "-f", "/dev/null"]
        subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "50", "--",
                               ctl, "--socket", d.socket_path, "watch", "--interval", "200"],
                       check=True, timeout=10)
        self.addCleanup(subprocess.run, tmux + ["kill-server"], timeout=10)

        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True, text=True,
                                  timeout=10).stdout

        def node_line(text, node):
            return next((l for l in text.splitlines() if l.strip().startswith(node)), "")

        wait_for(lambda: all("connected" in node_line(screen(), n) for n in others), WAIT,
                 f"watch shows {others} connected")
        text = screen()
        self.assertIn("topology broken", text)
        self.assertIn(f"failing: ", text)
        self.assertIn(str(refused), text)
        self.cluster.kill(victim)
        wait_for(lambda: "connected" not in node_line(screen(), victim), WAIT,
                 f"watch shows {victim} no longer connected")
        wait_for(lambda: f"nodedown beam {victim}" in screen(), WAIT,
                 "watch lists the nodedown event")
        # Under its transport, the node is listed down (with the transport's reason, if any).
        wait_for(lambda: any(l.startswith(f"  {victim} ") and l.split()[1:2] == ["down"]
                             for l in screen().splitlines()), WAIT,
                 f"watch lists {victim} down under the transport")

        # watch into a pipe: plain lines, one per change.
        out = subprocess.run([ctl, "--socket", d.socket_path, "watch", "--interval", "200",
                              "--count", "2"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("\x1b", out.stdout, "no escape codes into a pipe")
        self.assertIn(f"topology local node {others[0]} connected\n", out.stdout)
        self.assertRegex(out.stdout, r"topology broken running \(failing: .*" + str(refused))
        self.assertIn("event ", out.stdout)


class OverlayPage(OverlayCase, PageCase):
    def setUp(self):
        OverlayCase.setUp(self)
        PageCase.setUp(self)

    def test_page_shows_overlay_members_a_killed_one_and_a_departed_one(self):
        ports = free_ports(5)
        metrics = ports.pop()
        names = [f"n{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports)]
        for i, name in enumerate(names):  # seeded in a chain; n1 serves the page
            config = overlay_config(name, "127.0.0.1", ports[i], [names[i - 1] if i else names[1]])
            if i == 0:
                config = f'[clusterd]\nmetrics_listen = "127.0.0.1:{metrics}"\n\n' + config
            node = Node(name, "127.0.0.1", ports[i], [], harness.ARGS.bin_dir)
            node.daemon = harness.Daemon(config, harness.ARGS.bin_dir)
            node.daemon.start()
            self.nodes.append(node)
        self.wait_mesh(names)
        b = self.browser
        b.open(f"http://127.0.0.1:{metrics}/")
        others = names[1:]
        self.wait_states(" && ".join(f"s['{n}'] === 'connected'" for n in names[1:2]),
                         "the seed connected on the page")
        # Every overlay member is drawn, connected (the seed topology names only one of them).
        b.wait_for("(() => { const g = [...document.querySelectorAll('#graph g[data-state=connected]')]"
                   f".map(g => g.dataset.node).sort(); return JSON.stringify(g) === '{json.dumps(sorted(others), separators=(',', ':'))}'; }})()",
                   WAIT, "both other members connected in the graph")
        self.assertNotIn(SECRET, b.eval("document.documentElement.outerHTML"), "no secret shown")
        _, _, body = get(metrics, "/status.json")
        self.assertNotIn(SECRET.encode(), body)
        self.nodes[2].daemon.proc.send_signal(signal.SIGKILL)
        self.nodes[2].daemon.proc.wait(timeout=10)
        b.wait_for("(() => { const g = document.querySelector('#graph g[data-node=\"" + names[2] + "\"]');"
                   " return !g || g.dataset.state !== 'connected'; })()", WAIT,
                   "the killed member no longer connected in the graph")
        b.wait_for("window.clusterdPage.events.some(e => e.event === 'nodedown' && e.node === '"
                   + names[2] + "')", WAIT, "its nodedown in the timeline")
        # The killed member stays on the page, down, with the reason the overlay gave; one that
        # stops gracefully (LEAVE) is drawn as left, not as a failure.
        self.wait_states(f"s['{names[2]}'] === 'down'", "the killed member down in the table")
        why = b.eval(f"document.querySelector('#nodes tr[data-node=\"{names[2]}\"] td.reason').textContent")
        down = next(d for d in transport(self.nodes[0].daemon.status(), "overlay")["down"]
                    if d["node"] == names[2])
        self.assertEqual(why, down["reason"])
        self.assertTrue(why, "a reason is shown")
        self.nodes[3].daemon.stop()
        self.wait_states(f"s['{names[3]}'] === 'left'", "the departed member left in the table")
        b.wait_for("(() => { const g = document.querySelector('#graph g[data-node=\"" + names[3] + "\"]');"
                   " return g && g.dataset.state === 'left'; })()", WAIT, "left in the graph")
        self.assertEqual(b.eval("document.querySelector('#graph g[data-node=\"" + names[2] + "\"]').dataset.state"),
                         "down")
        # clusterctl graph draws the same members.
        dot = self.nodes[0].daemon.clusterctl("graph")
        self.assertEqual(dot.returncode, 0, dot.stderr)
        self.assertIn(f'"transport:overlay" -> "node:{names[2]}" [color=firebrick, style=dashed, '
                      f'label="down: {down["reason"]}', dot.stdout)
        self.assertIn(f'"transport:overlay" -> "node:{names[3]}" [color=gray50, style=dashed, '
                      f'label="left', dot.stdout)
        self.assertIn(f'"transport:overlay" -> "node:{names[1]}" [color=forestgreen', dot.stdout)


class FiftyNodes(PageCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        config, self.names = fixture_config(self.port, 50)
        self.d = harness.Daemon(config, harness.ARGS.bin_dir)
        self.d.start()
        self.addCleanup(self.d.close)

    def test_fifty_nodes_and_ten_events_a_second(self):
        b = self.browser
        b.open(f"http://127.0.0.1:{self.port}/")
        self.wait_states("Object.values(s).filter(x => x === 'connected').length === 50",
                         "50 nodes connected on the page")
        # The filter narrows the table.
        b.eval("(() => { const f = document.querySelector('#filter'); f.value = 'node4';"
               " f.dispatchEvent(new Event('input')); })()")
        self.assertEqual(len(b.eval(NODE_STATES)), 10)
        b.eval("(() => { const f = document.querySelector('#filter'); f.value = '';"
               " f.dispatchEvent(new Event('input')); })()")
        self.assertEqual(len(b.eval(NODE_STATES)), 50)
        b.screenshot(artifacts("status-page-50-nodes.png"))

        # 10 events a second for 5 s (reloads: each one an event, each event a new status).
        b.eval("window.clusterdPage.renderMs = []")
        seq_before = b.eval("window.clusterdPage.lastSeq")
        start = time.monotonic()
        for i in range(50):
            self.d.signal(signal.SIGHUP)
            time.sleep(max(0.0, start + (i + 1) * 0.1 - time.monotonic()))  # the rate, not a wait
        b.wait_for(f"window.clusterdPage.lastSeq >= {seq_before + 50}", WAIT, "all 50 reload events")
        times = b.eval("window.clusterdPage.renderMs")
        self.assertGreater(len(times), 5, "the page redrew while the events came")
        times.sort()
        print(f"\n  50 nodes, 10 events/s: {len(times)} page updates, update time median "
              f"{statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms, "
              f"max {times[-1]:.1f} ms")
        self.assertTrue(b.eval("document.querySelector('#live').className === 'on'"))
        self.assertGreaterEqual(b.eval("document.querySelectorAll('#timeline li[data-event=reload]').length"), 50)


class EventStreamLimits(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        config, _ = fixture_config(self.port, 3)
        self.d = harness.Daemon(config, harness.ARGS.bin_dir)
        self.d.start()
        self.addCleanup(self.d.close)

    def open_stream(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        self.addCleanup(s.close)
        return s

    def read_head(self, s):
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def test_page_and_status_json(self):
        status, kind, body = get(self.port, "/")
        self.assertEqual((status, kind), (200, "text/html; charset=utf-8"))
        self.assertIn(b"<title>clusterd</title>", body)
        self.assertNotRegex(body.decode(), r"(src|href)=\"?https?:", "nothing from outside")
        self.assertLess(len(body), 64 * 1024, "a few tens of KB")
        status, kind, body = get(self.port, "/status.json")
        self.assertEqual((status, kind), (200, "application/json"))
        document = json.loads(body)
        control = self.d.status()
        self.assertEqual(document.keys(), control.keys(), "the document of clusterctl status --json")
        self.assertEqual(document["events"][0]["event"], "started")

    def test_head_of_the_stream(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:  # the daemon closes after the head
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
        self.assertIn(b"Content-Type: text/event-stream", head)
        self.assertEqual(body, b"", "a HEAD has no body")

    def test_clusterctl_events_is_the_stream_of_the_page(self):
        ctl = os.path.join(harness.ARGS.bin_dir, "clusterctl")
        proc = subprocess.Popen([ctl, "--socket", self.d.socket_path, "events", "--recent", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait(timeout=10)))
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()

        def next_event(what):
            try:
                return json.loads(lines.get(timeout=WAIT))
            except queue.Empty:
                self.fail(f"clusterctl events printed no {what} within {WAIT} s")

        replayed = next_event("replayed event")
        self.assertEqual(replayed, self.d.status()["events"][-1], "the latest event of the ring")
        sse = self.open_stream()
        self.read_head(sse)
        self.d.signal(signal.SIGHUP)
        reload = next_event("reload")
        while reload["event"] != "reload":
            reload = next_event("reload")
        data = b""
        deadline = time.monotonic() + WAIT
        while b'"event":"reload"' not in data and time.monotonic() < deadline:
            data += sse.recv(4096)
        line = next(l for l in data.decode().splitlines() if l.startswith("data: ") and '"reload"' in l)
        self.assertEqual(json.loads(line[len("data: "):]), reload, "the same event, seq and time")
        self.assertIn(f"id: {reload['seq']}\n", data.decode())
        # The host command's bounds: a bad "recent" is refused; a later line ends the session.
        bad = harness.clusterctl(harness.ARGS.bin_dir, ["request", '{"cmd":"events","recent":999}'],
                                 self.d.socket_path)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(r'\"recent\" must be an integer from 0 to 256', bad.stdout)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(5)
            c.connect(self.d.socket_path)
            c.sendall(b'{"cmd":"events"}\n{"cmd":"status"}\n')
            answer = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertEqual(answer.decode().splitlines(),
                         ['{"ok":true}', '{"error":"an events session takes no further requests"}'])

    def test_streams_are_bounded_and_a_slow_reader_is_dropped(self):
        s = self.open_stream()
        head = self.read_head(s)
        self.assertIn(b"HTTP/1.1 200 OK", head)
        self.assertIn(b"Content-Type: text/event-stream", head)
        self.d.signal(signal.SIGHUP)
        data = head
        deadline = time.monotonic() + WAIT
        while b'"event":"reload"' not in data and time.monotonic() < deadline:
            data += s.recv(4096)
        self.assertIn(b'"event":"reload"', data)
        # 15 more are served; the 17th is refused.
        streams = [self.open_stream() for _ in range(15)]
        for extra in streams:
            self.assertIn(b"200 OK", self.read_head(extra))
        refused = self.open_stream()
        self.assertIn(b"503", self.read_head(refused))
        for extra in streams:
            extra.close()
        # A reader that never reads: after its buffers fill, the daemon closes it rather than
        # queue for it. Events: reloads, as fast as the daemon takes them.
        rss_before = self.rss_kib()
        slow = self.open_stream(rcvbuf=4096)
        self.read_head(slow)
        self.assertTrue(self.daemon_holds(slow))
        closed, sent = False, 0
        while sent < 5000 and not closed:
            for _ in range(50):
                self.d.signal(signal.SIGHUP)
                self.d.status()  # one reload at a time: signals do not queue
            sent += 50
            closed = not self.daemon_holds(slow)
        self.assertTrue(closed, f"the slow reader was closed (after {sent} events)")
        print(f"\n  slow reader dropped; daemon RSS {rss_before} KiB before, {self.rss_kib()} KiB after")
        self.assertEqual(self.d.status()["pid"], self.d.pid)

    def rss_kib(self):
        with open(f"/proc/{self.d.pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    def daemon_holds(self, s):
        """True while the daemon has an open socket for our connection `s`: the kernel lists
        its end in /proc/net/tcp with an inode that is one of the daemon's fds (a socket the
        daemon closed with unsent data lingers orphaned, with inode 0)."""
        theirs = f"{self.port:04X}", f"{s.getsockname()[1]:04X}"
        fds = set()
        for fd in os.listdir(f"/proc/{self.d.pid}/fd"):
            try:
                fds.add(os.readlink(f"/proc/{self.d.pid}/fd/{fd}"))
            except OSError:
                pass
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if local.endswith(":" + theirs[0]) and remote.endswith(":" + theirs[1]):
                    return f"socket:[{inode}]" in fds
        return False


def add_arguments(parser):
    parser.add_argument("--artifacts-dir",
                        default=os.path.join(tempfile.gettempdir(), "clusterd-status-page"),
                        help="where the screenshots go")


if __name__ == "__main__":
    sys.exit(harness.run_tests([EventStreamLimits, FiftyNodes, BeamPage, OverlayPage],
                               description=__doc__, add_arguments=add_arguments))
