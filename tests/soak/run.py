#!/usr/bin/env python3
"""Soak and fault suite: one clusterd under steady churn and abuse, watched throughout.

    run.py --bin-dir DIR [--long | --seconds N] [--reloads N] [--sanitized]

The daemon under test (D) runs four topologies on three transports, all real:
  - `local`: local_epmd + the erlang transport (nodes = "local") over a private epmd; two
    stable BEAM nodes (s1, s2) stay up the whole run while churn nodes come and go;
  - `dns`: dns_poll against a real dnsmasq whose answers change every ~1 s;
  - `k8s`: the kubernetes strategy against tests/servers/k8s_api_server.py (TLS), whose
    endpoints list changes every ~1 s (dns and k8s use the command transport, /bin/true);
  - `overlay`: the partisan transport, seeded with three partisan peers (real clusterd
    processes): p1 stays up, p2 and p3 are restarted in turn (graceful stop, or kill -9).
Meanwhile: SIGHUP reloads (1000 in --long mode; every 10th changes the `local` topology, which
restarts it while its nodes must stay connected; every 25th is a file without topologies, which
must be rejected); control clients misbehaving (half lines, unread streams, garbage, oversized
lines, disconnects mid-request); a hostile peer sending garbage TCP to D's overlay port (and
holding idle connections).

Asserted (the bounds are printed with the figures):
  - `status` answers within STATUS_BOUND_MS (100 ms): the max and p99 of a probe every 200 ms
    (probe.py, a separate process);
  - after warm-up, RSS grows by less than RSS_BOUND_MB, and once the churn stops and the
    initial state is back, the open fds are back within FD_BOUND of the count before it;
    (under --sanitized, ASan's quarantine makes RSS meaningless: figures only);
  - no node is wrongly disconnected: the stable BEAM node s1 never sees nodedown of s2
    (net_kernel:monitor_nodes on s1 itself), D's event stream never reports p1 down and p1's
    never reports D down, the stable DNS / Kubernetes node stays connected, and every change
    of the answers is followed by D within CONVERGE_S;
  - every reload is answered ("reload done" / "reload rejected") within RELOAD_S, the ones
    without topologies rejected;
  - D is alive at the end, stops with status 0, and (sanitized build) reports nothing.

Only loopback is used; every process is started here and stopped by PID; every loop is bounded
in count and time; every wait is a condition with a deadline.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEGRATION)
import harness  # noqa: E402
from beam import Cluster, wait_for  # noqa: E402
from harness import node_states, toml_string, topology, transport  # noqa: E402
from local_servers import Dnsmasq  # noqa: E402
from test_partisan import HEARTBEAT, SECRET, free_ports, overlay_config  # noqa: E402

SERVERS = os.path.join(HERE, "..", "servers")

STATUS_BOUND_MS = 100.0  # issue 14: the daemon answers `status` within 100 ms throughout
RSS_BOUND_MB = 4.0       # RSS growth after warm-up
FD_BOUND = 4             # open fds after the churn, over the count before it
CONVERGE_S = 10.0        # D follows a change of DNS / Kubernetes answers within this
RELOAD_S = 10.0          # a SIGHUP is answered in the log within this

STABLE_DNS = "198.18.0.1"
STABLE_K8S = "10.9.0.1"


class Failures:
    """Assertion failures collected from every thread; the run fails if there is one. A
    repeated failure is shown once, with its count and first time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}  # text -> [first time, count]

    @property
    def items(self):
        with self.lock:
            return [f"{t} {what}" + (f" (x{n})" if n > 1 else "")
                    for what, (t, n) in self.seen.items()]

    def add(self, what):
        with self.lock:
            entry = self.seen.setdefault(what, [time.strftime("%H:%M:%S"), 0])
            entry[1] += 1
            if entry[1] > 1:
                return
        print(f"[soak] FAIL: {what}", flush=True)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def add(self, key, n=1):
        with self.lock:
            self.values[key] = self.values.get(key, 0) + n


class LogWatch:
    """Counts lines of D's log matching a pattern, reading only what is new."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.offset = 0
        self.counts = {}
        self.lock = threading.Lock()

    def update(self, patterns):
        with self.lock:
            for f in self.daemon._files:
                f.flush()
            with open(self.daemon.stderr_path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            cut = data.rfind(b"\n") + 1
            self.offset += cut
            for line in data[:cut].decode("utf-8", "replace").splitlines():
                for p in patterns:
                    if p in line:
                        self.counts[p] = self.counts.get(p, 0) + 1
            return dict(self.counts)


def wait_deadline(predicate, timeout, interval=0.1):
    """True once predicate() is, False after `timeout` s."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        try:
            if predicate():
                return True
        except (OSError, harness.ProtocolError, KeyError, TypeError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return False


class Soak:
    def __init__(self, args):
        self.args = args
        self.bin_dir = os.path.abspath(args.bin_dir)
        self.work = tempfile.mkdtemp(prefix="clusterd-soak-")
        self.failures = Failures()
        self.counters = Counters()
        self.stop = threading.Event()
        self.procs = []  # helper processes to stop at the end (Popen)
        self.peers = {}  # name -> harness.Daemon (overlay peers)
        self.events = {"D": [], "p1": []}  # (t, event dict) from subscribe sessions
        self.threads = []

    # ---- setup ------------------------------------------------------------------------------

    def start_k8s(self):
        pki = os.path.join(self.work, "pki")
        subprocess.run(["sh", os.path.join(SERVERS, "make_test_pki.sh"), pki], check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
        port_file = os.path.join(self.work, "k8s.ports")
        log = open(os.path.join(self.work, "k8s.log"), "wb")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(SERVERS, "k8s_api_server.py"), "--port-file", port_file,
             "--tls-cert", os.path.join(pki, "server.crt"),
             "--tls-key", os.path.join(pki, "server.key")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read(), 20,
                 "the Kubernetes stand-in's port file")
        ports = json.loads(open(port_file).read())
        self.k8s_api, self.k8s_control = ports["api"], ports["control"]
        self.sa = os.path.join(self.work, "sa")
        os.makedirs(self.sa)
        for name, text in (("token", "soak-token\n"), ("namespace", "prod\n")):
            with open(os.path.join(self.sa, name), "w") as f:
                f.write(text)
        shutil.copyfile(os.path.join(pki, "ca.crt"), os.path.join(self.sa, "ca.crt"))

    def k8s_put(self, ips):
        items = [{"metadata": {"name": "soak", "namespace": "prod"},
                  "subsets": [{"addresses": [{"ip": ip, "targetRef": {
                      "kind": "Pod", "namespace": "prod", "name": f"pod-{ip}"}} for ip in ips]}]}]
        body = json.dumps({"kind": "EndpointsList", "apiVersion": "v1",
                           "metadata": {"resourceVersion": str(random.randrange(1 << 30))},
                           "items": items}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.k8s_control}/list/endpoints",
                                     data=body, method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def config(self, local_interval="500ms", topologies=True):
        c = self.cluster
        d_name = self.d_name
        lines = [
            "[clusterd]", 'log_level = "info"', 'metrics_listen = "127.0.0.1:0"', "",
            "[transports.beam]", 'plugin = "erlang"', 'nodes = "local"',
            f"epmd_port = {c.epmd_port}", f"cookie_file = {toml_string(c.cookie_file)}",
            'local_poll_interval = "200ms"', "",
            "[transports.cmd]", 'plugin = "command"', 'connect = ["/bin/true"]',
            'disconnect = ["/bin/true"]', "",
            overlay_config(d_name, "127.0.0.1", self.d_port, []).split("[topologies.seed]")[0],
        ]
        if not topologies:
            return "\n".join(lines) + "\n"
        lines += [
            "[topologies.local]", 'strategy = "local_epmd"', 'transport = "beam"',
            "[topologies.local.config]", f"epmd_port = {c.epmd_port}",
            f'polling_interval = "{local_interval}"', "",
            "[topologies.dns]", 'strategy = "dns_poll"', 'transport = "cmd"',
            'disconnect = "removed"', "[topologies.dns.config]", 'query = "app.test"',
            'node_basename = "app"', f"resolver = {toml_string(self.dns.address)}",
            'polling_interval = "200ms"', 'query_timeout = "300ms"', "",
            "[topologies.k8s]", 'strategy = "kubernetes"', 'transport = "cmd"',
            'disconnect = "removed"', "[topologies.k8s.config]",
            'kubernetes_node_basename = "app"', 'kubernetes_selector = "app=soak"',
            f"kubernetes_service_account_path = {toml_string(self.sa)}",
            'polling_interval = "200ms"', "",
            "[topologies.overlay]", 'strategy = "epmd"', 'transport = "overlay"',
            "[topologies.overlay.config]", f"hosts = {json.dumps(self.peer_names)}",
            "epmd_check = false", ""]
        return "\n".join(lines)

    def start_peer(self, name):
        port = self.peer_ports[name]
        full = self.peer_full[name]
        d = harness.Daemon(overlay_config(full, "127.0.0.1", port, [self.d_name]), self.bin_dir,
                           env=self.env)
        d.start()
        self.peers[name] = d
        return d

    def setup(self):
        a = self.args
        self.env = dict(os.environ)
        if a.sanitized:  # a small quarantine: RSS figures closer to the real heap
            self.env["ASAN_OPTIONS"] = (self.env.get("ASAN_OPTIONS", "") +
                                        ":quarantine_size_mb=16").lstrip(":")
        self.cluster = Cluster(self.work)
        watcher = ("spawn(fun() -> net_kernel:monitor_nodes(true), "
                   "(fun L() -> receive {E, N} -> io:format(\"~s ~s~n\", [E, N]), L() end end)() "
                   "end).")
        self.s1 = self.cluster.start("s1", args=["-eval", watcher])
        self.s2 = self.cluster.start("s2")
        self.dns = Dnsmasq(self.work, hosts={"app.test": [STABLE_DNS, "198.18.0.2"]})
        self.procs.append(self.dns)
        self.start_k8s()
        self.k8s_put([STABLE_K8S, "10.9.0.2"])
        ports = free_ports(4)
        self.d_port = ports[0]
        self.d_name = f"d@127.0.0.1:{self.d_port}"
        self.peer_ports = {f"p{i}": ports[i] for i in (1, 2, 3)}
        self.peer_full = {n: f"{n}@127.0.0.1:{p}" for n, p in self.peer_ports.items()}
        self.peer_names = sorted(self.peer_full.values())
        env = dict(self.env, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(self.k8s_api))
        env.pop("CLUSTER_DOMAIN", None)
        self.d = harness.Daemon(self.config(), self.bin_dir, env=env, start_timeout=30)
        self.d.start()
        self.log = LogWatch(self.d)
        for name in ("p1", "p2", "p3"):
            self.start_peer(name)
        # The initial state: everything formed.
        self.d.wait_until(self.formed, timeout=60, what="the initial state formed")
        wait_for(lambda: self.cluster.full_mesh([self.s1, self.s2]), 30, "s1 - s2 connected",
                 interval=0.5)
        self.subscribe("D", self.d)
        self.subscribe("p1", self.peers["p1"])

    def dns_expected(self, addrs):
        return {f"app@{a}" for a in addrs}

    def formed(self, st):
        return (transport(st, "overlay") and set(transport(st, "overlay")["connected"]) ==
                set(self.peer_names) and
                {n for n, s in node_states(st, "dns").items() if s == "connected"} ==
                self.dns_expected([STABLE_DNS, "198.18.0.2"]) and
                {n for n, s in node_states(st, "k8s").items() if s == "connected"} ==
                {f"app@{STABLE_K8S}", "app@10.9.0.2"})

    # ---- observers --------------------------------------------------------------------------

    def subscribe(self, label, daemon):
        """A `subscribe` session to the overlay's events, read on a thread until the end."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket_path)
        s.sendall(b'{"cmd":"subscribe","transport":"overlay"}\n')
        s.settimeout(0.5)

        def read():
            buf = b""
            while not self.stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    if not self.stop.is_set():
                        self.failures.add(f"{label}'s event stream closed")
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        self.events[label].append((time.monotonic(), json.loads(line)))
                    except ValueError:
                        self.failures.add(f"{label}'s event stream: not JSON: {line[:100]!r}")
            s.close()
        self.spawn(read, f"events-{label}")

    def spawn(self, fn, name):
        t = threading.Thread(target=self.guard(fn, name), name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def guard(self, fn, name):
        def run():
            try:
                fn()
            except Exception as e:  # a broken churn thread is a failure, not a silent stop
                self.failures.add(f"thread {name} died: {type(e).__name__}: {e}")
        return run

    def ticks(self, interval):
        """Yields until the stop event, one tick every `interval` s (bounded in count)."""
        for i in range(int(self.args.seconds / interval) + 10):
            if self.stop.wait(interval * random.uniform(0.7, 1.3)):
                return
            yield i

    # ---- churn ------------------------------------------------------------------------------

    def beam_churn(self):
        running = []
        serial = 0
        for i in self.ticks(self.args.beam_interval):
            if len(running) < 3 and (not running or random.random() < 0.6):
                serial += 1
                running.append(self.cluster.start(f"c{serial}", wait=False))
                self.counters.add("beam node starts")
            else:
                self.stop_node(running.pop(random.randrange(len(running))), random.choice([9, 15]))
        for node in running:
            self.stop_node(node, 9)

    def stop_node(self, node, sig):
        """SIGTERM (init:stop) or SIGKILL; a node slow to stop gracefully gets SIGKILL."""
        proc = self.cluster.nodes[node]
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        self.cluster.kill(node)  # reaps it, waits until epmd has forgotten it
        self.counters.add("beam node stops")

    def follow(self, what, topo, expected, stable):
        """Waits until D's topology shows exactly `expected` connected; checks that `stable`
        stays connected in every status seen meanwhile."""
        def converged():
            states = node_states(self.d.status(), topo)
            if states.get(stable) != "connected":
                self.failures.add(f"{topo}: the stable node {stable} is {states.get(stable)}")
            return {n for n, s in states.items() if s == "connected"} == expected
        if not wait_deadline(converged, CONVERGE_S, interval=0.2):
            self.failures.add(f"{topo}: D did not follow {what} {sorted(expected)} within "
                              f"{CONVERGE_S} s")

    def dns_churn(self):
        pool = [f"198.18.0.{i}" for i in range(2, 12)]
        for _ in self.ticks(self.args.answer_interval):
            addrs = [STABLE_DNS] + random.sample(pool, random.randrange(0, 5))
            self.dns.set_hosts({"app.test": addrs})
            self.counters.add("dns answer changes")
            self.follow("the DNS answer", "dns", self.dns_expected(addrs), f"app@{STABLE_DNS}")
        self.dns.set_hosts({"app.test": [STABLE_DNS, "198.18.0.2"]})

    def k8s_churn(self):
        pool = [f"10.9.0.{i}" for i in range(2, 12)]
        for _ in self.ticks(self.args.answer_interval):
            ips = [STABLE_K8S] + random.sample(pool, random.randrange(0, 5))
            self.k8s_put(ips)
            self.counters.add("k8s answer changes")
            self.follow("the endpoints", "k8s", {f"app@{ip}" for ip in ips}, f"app@{STABLE_K8S}")
        self.k8s_put([STABLE_K8S, "10.9.0.2"])

    def overlay_churn(self):
        for i in self.ticks(self.args.peer_interval):
            name = ("p2", "p3")[i % 2]
            peer = self.peers[name]
            if i % 4 < 2:
                peer.close()  # graceful: LEAVE
            else:
                peer.proc.kill()  # kill -9, by PID
                peer.proc.wait(10)
                peer.close()
            self.counters.add("overlay peer restarts")
            self.start_peer(name)
            full = self.peer_full[name]
            if not wait_deadline(lambda: full in transport(self.d.status(), "overlay")["connected"],
                                 20, interval=0.2):
                self.failures.add(f"overlay: D did not see the restarted {full} up within 20 s")

    def reloads(self):
        done = 0
        # A little faster than seconds / reloads: each reload's wait for its answer adds up.
        for i in self.ticks(0.85 * self.args.seconds / self.args.reloads):
            if done >= self.args.reloads:
                break
            empty = i % 25 == 24
            if empty:
                self.d.rewrite_config(self.config(topologies=False))
            elif i % 10 == 9:
                # Restarts the `local` topology: its BEAM nodes must stay connected (s1 watches).
                self.d.rewrite_config(self.config(local_interval=random.choice(["500ms", "600ms"])))
            patterns = ["reload done", "reload rejected"]
            before = self.log.update(patterns)
            self.d.signal(signal.SIGHUP)
            answered = wait_deadline(
                lambda: sum(self.log.update(patterns).values()) > sum(before.values()), RELOAD_S)
            done += 1
            self.counters.add("reloads")
            if not answered:
                self.failures.add(f"reload {done} not answered within {RELOAD_S} s")
            elif empty:
                if self.log.counts.get("reload rejected", 0) <= before.get("reload rejected", 0):
                    self.failures.add("a file without topologies was not rejected at reload")
                self.counters.add("reloads rejected (no topology)")
                self.d.rewrite_config(self.config())

    def control_abuse(self):
        """Misbehaving control clients; at most HOLD of them kept open at once."""
        held = []  # (socket, close at)
        hold = 8
        for i in self.ticks(0.1):
            now = time.monotonic()
            for s, until in [h for h in held if h[1] <= now]:
                s.close()
                held.remove((s, until))
            kind = i % 7
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(self.d.socket_path)
                if kind == 0:      # half a line, then gone
                    s.sendall(b'{"cmd":"sta')
                elif kind == 1:    # half a line, kept open a while
                    s.sendall(b'{"cmd":"members","tr')
                elif kind == 2:    # garbage, answer read
                    s.sendall(bytes(random.randrange(1, 256) for _ in range(200)).replace(
                        b"\n", b" ") + b"\n")
                    s.recv(65536)
                elif kind == 3:    # an event stream never read
                    s.sendall(b'{"cmd":"subscribe","transport":"overlay"}\n')
                elif kind == 4:    # disconnect mid-request: before reading the answer
                    s.sendall(b'{"cmd":"status"}\n')
                elif kind == 5:    # an oversized line (over the 64 KiB command cap)
                    if i % 70 == 5 and "oversized" not in self.args.without:
                        s.sendall(b"[" * (1 << 20) + b"\n")
                        self.counters.add("oversized control lines")
                elif kind == 6:    # connect and go at once
                    pass
                self.counters.add("misbehaving control clients")
                if kind in (1, 3) and len(held) < hold:
                    held.append((s, now + random.uniform(1, 5)))
                else:
                    s.close()
            except OSError as e:
                s.close()
                self.counters.add(f"control client errors ({type(e).__name__})")
        for s, _ in held:
            s.close()

    def flood(self):
        """A hostile peer: garbage and idle TCP connections to D's overlay port."""
        idle = []
        for i in self.ticks(0.05):
            try:
                s = socket.create_connection(("127.0.0.1", self.d_port), timeout=1)
            except OSError:
                self.counters.add("flood connects refused")
                continue
            if i % 3 == 0 and len(idle) < 16:
                idle.append(s)  # held open without a word
                continue
            try:
                s.sendall(os.urandom(random.randrange(1, 2048)))
            except OSError:
                pass
            s.close()
            self.counters.add("flood connections")
            if len(idle) >= 16 and i % 40 == 0:
                idle.pop(0).close()
        for s in idle:
            s.close()

    # ---- run --------------------------------------------------------------------------------

    def run(self):
        a = self.args
        began = time.monotonic()
        self.setup()
        print(f"[soak] set up in {time.monotonic() - began:.1f} s; D pid {self.d.pid}; "
              f"churn for {a.seconds:.0f} s", flush=True)
        fds_before = len(os.listdir(f"/proc/{self.d.pid}/fd"))
        probe_out = os.path.join(self.work, "probe.jsonl")
        probe = subprocess.Popen([sys.executable, os.path.join(HERE, "probe.py"),
                                  self.d.socket_path, str(self.d.pid), probe_out],
                                 stdin=subprocess.DEVNULL)
        churn_began = time.monotonic()
        for fn in (self.beam_churn, self.dns_churn, self.k8s_churn, self.overlay_churn,
                   self.reloads, self.control_abuse, self.flood):
            if fn.__name__ not in a.without:
                self.spawn(fn, fn.__name__)
        # The run: its length, or until the daemon dies.
        for _ in range(int(a.seconds) + 1):
            if time.monotonic() - churn_began >= a.seconds or not self.d.running():
                break
            time.sleep(min(1.0, max(0.0, a.seconds - (time.monotonic() - churn_began))))
        churn_seconds = time.monotonic() - churn_began
        self.stop.set()
        for t in self.threads:
            t.join(60)
            if t.is_alive():
                self.failures.add(f"thread {t.name} did not stop within 60 s")
        # Back to the initial state, then the fds must be back too.
        if self.d.running():
            if not wait_deadline(lambda: self.formed(self.d.status()), 30, interval=0.2):
                self.failures.add("the initial state did not form again after the churn")
            fds_after = [0]

            def fds_back():
                fds_after[0] = len(os.listdir(f"/proc/{self.d.pid}/fd"))
                return fds_after[0] <= fds_before + FD_BOUND
            if not wait_deadline(fds_back, 20, interval=0.5):
                self.failures.add(f"fds: {fds_after[0]} after the churn, {fds_before} before "
                                  f"(bound +{FD_BOUND})")
        else:
            self.failures.add(f"D died during the run (status {self.d.proc.returncode})")
            fds_after = [None]
        probe.send_signal(signal.SIGTERM)
        probe.wait(20)
        self.check_disconnects()
        self.check_probe(probe_out, churn_began, churn_seconds, fds_before, fds_after[0])
        self.check_health()
        return 0 if not self.failures.items else 1

    def check_health(self):
        if not self.d.running():
            return
        metrics = self.d.status().get("metrics")
        log = self.d.log_text()
        rc = self.d.stop()
        if rc != 0:
            self.failures.add(f"D stopped with status {rc} (killed: {self.d.killed})")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in self.d.log_text():
                self.failures.add(f"sanitizer report in D's log: {marker}")
        print(f"[soak] D's log: {len(log.encode()) / 1e6:.1f} MB, "
              f"{len(log.splitlines())} lines; metrics listener {metrics}", flush=True)

    def check_disconnects(self):
        with open(os.path.join(self.work, "s1.log"), errors="replace") as f:
            s1 = f.read()
        if f"nodedown {self.s2}" in s1:
            self.failures.add(f"s1 saw nodedown of the stable node {self.s2}")
        downs = {label: [e for _, e in evs if e.get("event") in ("down", "left")]
                 for label, evs in self.events.items()}
        def why(e):  # "no heartbeat for 1503 ms" -> "no heartbeat for N ms": one line per kind
            return re.sub(r"\d+", "N", str(e.get("reason", "")))
        for e in downs["D"]:
            if e.get("node") == self.peer_full["p1"]:
                self.failures.add(f"D reported the stable peer p1 {e['event']} ({why(e)})")
        for e in downs["p1"]:
            if e.get("node") == self.d_name:
                self.failures.add(f"p1 reported D {e['event']} ({why(e)})")
        self.counters.add("overlay down/left events seen by D", len(downs["D"]))
        self.counters.add("s1 nodedown lines (churn nodes)", s1.count("nodedown "))

    def check_probe(self, path, began, seconds, fds_before, fds_after):
        latencies, errors, samples = [], [], []
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if "status_ms" in r:
                    latencies.append(r["status_ms"])
                elif "status_error" in r:
                    errors.append(r["status_error"])
                elif r.get("rss_kb"):
                    samples.append((r["t"] - began, r["rss_kb"] / 1024.0, r["fds"]))
        c = self.counters.values
        print("\n==== soak figures ====")
        print(f"mode: {'long' if self.args.long else 'short'}"
              f"{' (sanitized)' if self.args.sanitized else ''}; churn {seconds:.0f} s")
        if latencies:
            q = sorted(latencies)
            p = lambda x: q[min(len(q) - 1, int(x * len(q)))]  # noqa: E731
            print(f"status latency over {len(q)} probes: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} "
                  f"ms, max {q[-1]:.1f} ms (bound {STATUS_BOUND_MS:.0f} ms); "
                  f"over the bound: {sum(x > STATUS_BOUND_MS for x in q)}; errors {len(errors)}")
            if q[-1] > STATUS_BOUND_MS:
                self.failures.add(f"status: max {q[-1]:.1f} ms, p99 {p(0.99):.1f} ms "
                                  f"(bound {STATUS_BOUND_MS:.0f} ms; "
                                  f"{sum(x > STATUS_BOUND_MS for x in q)} of {len(q)} over)")
        else:
            self.failures.add("no status probe answered")
        if errors:
            self.failures.add(f"status: {len(errors)} probes failed, first: {errors[0]}")
        if samples:
            rss = [s[1] for s in samples]
            warm = max(30.0, 0.15 * seconds)
            after = [s[1] for s in samples if s[0] >= warm] or rss[-1:]
            base = statistics.median(after[:max(1, len(after) // 10)])
            end = statistics.median(after[-max(1, len(after) // 10):])
            fds = [s[2] for s in samples]
            print(f"RSS: start {rss[0]:.1f} MB, after warm-up ({warm:.0f} s) {base:.1f} MB, "
                  f"end {end:.1f} MB, max {max(rss):.1f} MB; growth after warm-up "
                  f"{end - base:+.2f} MB (bound {RSS_BOUND_MB} MB"
                  f"{', not asserted under ASan' if self.args.sanitized else ''})")
            print(f"fds: before the churn {fds_before}, during min {min(fds)} max {max(fds)}, "
                  f"after {fds_after} (bound +{FD_BOUND})")
            if not self.args.sanitized and end - base >= RSS_BOUND_MB:
                self.failures.add(f"RSS grew {end - base:.2f} MB after warm-up "
                                  f"(bound {RSS_BOUND_MB} MB)")
        for key in sorted(c):
            print(f"{key}: {c[key]}")
        print(f"overlay events: D {len(self.events['D'])}, p1 {len(self.events['p1'])}")
        sys.stdout.flush()

    def close(self):
        self.stop.set()
        for d in list(self.peers.values()) + ([self.d] if hasattr(self, "d") else []):
            d.close(keep=bool(self.failures.items))
        for p in self.procs:
            if isinstance(p, Dnsmasq):
                p.stop()
            elif p.poll() is None:
                p.kill()
                p.wait(10)
        if hasattr(self, "cluster"):
            self.cluster.close()
        if self.failures.items or os.environ.get("CLUSTERD_TEST_KEEP") == "1":
            print(f"[soak] kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", default=os.environ.get("CLUSTERD_BIN_DIR"), required=False)
    parser.add_argument("--fixtures-dir", help="accepted for symmetry with tests/integration")
    parser.add_argument("--long", action="store_true", help="an hour, 1000 reloads")
    parser.add_argument("--seconds", type=float, help="length of the churn")
    parser.add_argument("--reloads", type=int, help="SIGHUPs over the run")
    parser.add_argument("--sanitized", action="store_true",
                        help="an ASan build: a smaller scale, RSS not asserted")
    parser.add_argument("--without", action="append", default=[],
                        choices=["beam_churn", "dns_churn", "k8s_churn", "overlay_churn",
                                 "reloads", "control_abuse", "flood", "oversized"],
                        help="leave one kind of churn or abuse out (to tell which one breaks "
                        "a bound); repeatable")
    args = parser.parse_args(argv)
    if not args.bin_dir:
        parser.error("--bin-dir (or CLUSTERD_BIN_DIR) is required")
    if args.long:
        defaults = dict(seconds=3600, reloads=1000, beam_interval=8, answer_interval=1.0,
                        peer_interval=20)
    elif args.sanitized:
        defaults = dict(seconds=90, reloads=60, beam_interval=6, answer_interval=1.5,
                        peer_interval=15)
    else:
        defaults = dict(seconds=150, reloads=150, beam_interval=4, answer_interval=1.0,
                        peer_interval=10)
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    harness.ARGS = args  # for helpers that read it
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(128 + s)))
    soak = Soak(args)
    try:
        rc = soak.run()
    finally:
        soak.close()
    if soak.failures.items:
        print(f"\n{len(soak.failures.items)} failure(s):")
        for f in soak.failures.items:
            print("  " + f)
    print("soak: " + ("PASSED" if rc == 0 else "FAILED"))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
