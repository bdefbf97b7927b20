#!/usr/bin/env python3
"""The overlay at scale, side by side with Serf: join, failure detection, false failures under
CPU stress, steady-state cost and user events, for N daemons of each system in the same run.

usage: bench/overlay_scale_bench.py BUILD_DIR [--runs 3] [--sizes 20,50,200]
           [--systems mesh,swim,serf] [--stress-seconds 60] [--steady-seconds 10] [--no-netns]

Systems (each started alone, one after the other, for every N in every run):
- clusterd, `partisan` transport, `membership = "mesh"` (today's full mesh, the default; a
  build without membership modes runs without the option) and `membership = "swim"` when this
  build's plugin accepts it (`clusterd check` on a config with it; the column is skipped with
  a note otherwise). Every partisan setting is the plugin's
  shipped default; the bench sets only node_name, listen, secret (HMAC handshake) and the seed.
- Serf (Debian's `serf`), `serf agent -node -bind -rpc-addr -join -log-level info -profile lan`:
  memberlist's LAN profile, no encryption key, no snapshot.
Every daemon is seeded with one peer only, the daemon started before it (clusterd: the epmd
strategy with a static `hosts` list; Serf: `-join`); daemon i is started once daemon i-1 is
ready, i.e. once the bench's event stream on it is open.

Membership is measured from event streams, stamped by this process when the bytes arrive (one
reader for all streams): clusterd's `subscribe` control session (joined/up/down/left) and
Serf's RPC (msgpack over TCP: `stream` of member-join/member-failed/user, and `monitor` of the
agent log, whose "EventMemberJoin"/"EventMemberFailed" lines are Serf's membership changes as
they happen; the agent coalesces member events for `stream` by 1 s of quiet, at most 3 s, so
both are printed). Members known before a stream opened are taken from `members` then.
- join: last daemon ready -> every daemon lists all N (p50 over daemons, max); also from the
  last daemon's exec, since "ready" differs: Serf's RPC opens after its agent has joined, the
  control socket of clusterd before its seed is dialed;
- failure: one daemon killed with SIGKILL and, at the same moment, another frozen with SIGSTOP
  (silent: its sockets stay open, as after a host crash or a partition) -> every other lists
  it failed (clusterd: `down`; Serf: failed), p50 and max over observers;
- false failures: half of the remaining daemons pinned (every thread, as `taskset -a`) to one
  CPU that `stress-ng --cpu W` also loads (at the bench's nice level, as the daemons), for
  --stress-seconds; failure events about healthy
  daemons during the stress and --stress-grace after it, summed over observers, and how many
  distinct daemons were accused;
- steady state (after --settle-seconds, over --steady-seconds): RSS and CPU per daemon (median
  over daemons; CPU from every thread's schedstat), bytes per second per daemon: every daemon
  runs in one private network namespace made for the bench (`unshare --net`; its own
  loopback, nothing else on it, gone with the bench), so the loopback's byte counter over the
  window divided by N is exactly the traffic per daemon (Serf's RPC streams are idle then;
  clusterd's are Unix sockets);
- user event from daemon n0 -> received by all others (Serf: `event` without coalescing;
  clusterd: "n/a" until the transport has user events: fill in `Clusterd.user_event`).
Every figure is the median over --runs runs. Every process is started here, stopped by PID,
and killed by the kernel if this process dies (PR_SET_PDEATHSIG).
"""
import argparse
import ctypes
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import msgpack
except ImportError:  # e.g. a pyenv python3 first in PATH: Debian's python3-msgpack is for /usr/bin
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("overlay_scale_bench: needs msgpack (Debian: python3-msgpack)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from partisan_bench import NODE_CONFIG, SECRET, TRANSPORT, percentile, stop  # noqa: E402

CLUSTERD_PORT, SERF_PORT, SERF_RPC_PORT = 10000, 20000, 30000  # + daemon index
HOST = "127.0.0.1"
NS_MARK = "OVERLAY_SCALE_BENCH_NETNS"

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """preexec_fn: the daemon gets SIGKILL when the bench dies, however it dies."""
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def now_ns():
    return time.monotonic_ns()


def loopback_tx_bytes():
    """Bytes sent on `lo` of this process's network namespace (/proc/self/net is per netns;
    /sys/class/net is not)."""
    with open("/proc/self/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[8])
    return None


def proc_cpu_ns(pid):
    """CPU time of every live thread of `pid` in ns (schedstat: finer than clock ticks, which
    an idle daemon does not reach in a 10 s window)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pin_all_threads(pid, cpu):
    """Every thread of `pid` to `cpu` (what `taskset -a -p` does; a Go program has many)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except (ProcessLookupError, OSError):
            pass  # a thread that just ended


# ---- event streams -------------------------------------------------------------------------

class Membership:
    """What one daemon's event stream said, each fact stamped with the arrival time (ns)."""

    def __init__(self):
        self.known = {}    # member index -> first time listed
        self.failed = []   # (time, member index)
        self.user = {}     # user event name -> time received

    def listed(self, member, t):
        self.known.setdefault(member, t)


class Reader:
    """One selector over every event stream of a cluster; `pump` reads what has arrived."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()

    def add(self, sock, feed):
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, feed)

    def pump(self, timeout):
        for key, _ in self.selector.select(timeout):
            try:
                chunk = key.fileobj.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            t = now_ns()
            if not chunk:  # the daemon went away (killed, or stopping)
                self.selector.unregister(key.fileobj)
                key.fileobj.close()
                continue
            key.data(chunk, t)

    def wait(self, condition, timeout, what):
        """Reads streams until condition() holds; raises after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s")
            self.pump(min(left, 0.05))

    def idle(self, seconds):
        """Reads streams for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(min(left, 0.05))

    def close(self):
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


# ---- the daemons ---------------------------------------------------------------------------

class Daemons:
    """What both systems' clusters share: their processes, event views and logs."""

    def __init__(self, workdir, n):
        self.dir, self.n = workdir, n
        self.procs, self.views = [], []

    def tail(self, i, lines=5):
        try:
            with open(self.log(i)) as f:
                return " | ".join(f.read().splitlines()[-lines:])
        except OSError:
            return "(no log)"


# ---- clusterd ------------------------------------------------------------------------------

CLUSTERD_EVENT = re.compile(rb'"event":"([a-z]+)","node":"n(\d+)@')
CLUSTERD_TIME = re.compile(rb'"time_ms":(\d+)')


class Clusterd(Daemons):
    """N clusterd daemons with the partisan transport, `mode_option` added to its section."""

    def __init__(self, bin_dir, workdir, n, mode_option):
        super().__init__(workdir, n)
        self.bin, self.option = bin_dir, mode_option
        self.nodes = [f"n{i}@{HOST}:{CLUSTERD_PORT + i}" for i in range(n)]
        self.refusal = ""
        # The bench's arrival stamp minus the daemon's own `time_ms` (wall clock, ms): how far
        # the one reader lags behind the streams.
        self.reader_lag_ms = []
        self.wall_offset_ns = time.time_ns() - now_ns()

    def config(self, i):
        seeds = [self.nodes[i - 1]] if i > 0 else []
        path = os.path.join(self.dir, f"n{i}.toml")
        with open(path, "w") as f:
            f.write(NODE_CONFIG.format(sock=self.sock(i), node=self.nodes[i],
                                       port=CLUSTERD_PORT + i, secret=SECRET,
                                       options=self.option,
                                       seeds=", ".join(f'"{s}"' for s in seeds)))
        return path

    def sock(self, i):
        return os.path.join(self.dir, f"n{i}.sock")

    def log(self, i):
        return os.path.join(self.dir, f"n{i}.log")

    def launch(self, i):
        with open(self.log(i), "w") as out:
            return subprocess.Popen([os.path.join(self.bin, "clusterd"), "run", "-c",
                                     self.config(i)], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, preexec_fn=die_with_parent)

    def open_stream(self, i, reader):
        """Subscribes to daemon i's events, then lists its members; None while not listening."""
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(self.sock(i))
        except OSError:
            s.close()
            return None
        s.sendall(b'{"cmd":"subscribe","transport":"%s"}\n' % TRANSPORT.encode())
        first = b""
        while b"\n" not in first:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise RuntimeError(f"n{i}: the daemon closed the subscribe session")
            first += chunk
        line, rest = first.split(b"\n", 1)
        if b'"ok":true' not in line:  # e.g. the transport not started yet: tried again
            self.refusal = line.decode(errors="replace")
            s.close()
            return None
        view = Membership()
        buffered = bytearray(rest)

        def feed(chunk, t):
            buffered.extend(chunk)
            end = buffered.rfind(b"\n")
            if end < 0:
                return
            for line in bytes(buffered[:end]).split(b"\n"):
                m, stamp = CLUSTERD_EVENT.search(line), CLUSTERD_TIME.search(line)
                if not m:
                    continue
                member = int(m.group(2))
                if m.group(1) in (b"joined", b"up"):
                    view.listed(member, t)
                elif m.group(1) == b"down":
                    view.failed.append((t, member))
                if stamp:
                    self.reader_lag_ms.append((t + self.wall_offset_ns) / 1e6
                                              - int(stamp.group(1)))
            del buffered[:end + 1]

        reader.add(s, feed)
        ready = now_ns()
        for member in self.members(i):
            view.listed(member, ready)
        return view, ready

    def members(self, i):
        """Indexes of the members daemon i lists now (not down, not left)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.sock(i))
            s.sendall(b'{"cmd":"members","transport":"%s"}\n' % TRANSPORT.encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        return [int(m["node"][1:].split("@")[0]) for m in reply.get("members", [])
                if m.get("state") not in ("down", "left")]

    def user_event(self, i, name):
        """Fires user event `name` from daemon i. Returns False: the partisan transport has no
        user events yet. Fill in when it does: send the control request on daemon i, and
        record each daemon's receipt as `view.user[name] = t` in `feed` above."""
        return False


def clusterd_check(bin_dir, option):
    """True if this build's clusterd accepts `option` in the partisan section."""
    with tempfile.TemporaryDirectory(prefix="clusterd-scale-check-") as d:
        cluster = Clusterd(bin_dir, d, 1, option)
        run = subprocess.run([os.path.join(bin_dir, "clusterd"), "check", "-c", cluster.config(0)],
                             capture_output=True, text=True, timeout=60)
        return run.returncode == 0


# ---- Serf ----------------------------------------------------------------------------------

SERF_LOG = re.compile(r"EventMember(Join|Failed): n(\d+) ")


class SerfStream:
    """Decodes one Serf RPC connection: response headers, each followed by a body when it
    belongs to a running `stream` or `monitor`."""

    def __init__(self, view, stream_seq, monitor_seq, log_view):
        self.view, self.log_view = view, log_view
        self.stream_seq, self.monitor_seq = stream_seq, monitor_seq
        self.acked = set()
        self.header = None
        self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                         strict_map_key=False)

    def feed(self, chunk, t):
        self.unpacker.feed(chunk)
        for obj in self.unpacker:
            if self.header is None:
                seq = obj.get("Seq")
                if obj.get("Error"):
                    raise RuntimeError(f"Serf RPC error: {obj['Error']}")
                if seq in (self.stream_seq, self.monitor_seq) and seq in self.acked:
                    self.header = obj  # a body follows
                else:
                    self.acked.add(seq)
                continue
            seq, self.header = self.header["Seq"], None
            if seq == self.monitor_seq:
                m = SERF_LOG.search(obj.get("Log", ""))
                if m and m.group(1) == "Join":
                    self.log_view.listed(int(m.group(2)), t)
                elif m:
                    self.log_view.failed.append((t, int(m.group(2))))
                continue
            event = obj.get("Event")
            if event == "user":
                self.view.user.setdefault(obj.get("Name"), t)
                continue
            for member in obj.get("Members", []):
                index = int(member["Name"][1:])
                if event == "member-join":
                    self.view.listed(index, t)
                elif event == "member-failed":
                    self.view.failed.append((t, index))


class SerfRpc:
    """A blocking Serf RPC connection (handshake done)."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                         strict_map_key=False)
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def send(self, command, body=None):
        self.seq += 1
        data = msgpack.packb({"Command": command, "Seq": self.seq})
        if body is not None:
            data += msgpack.packb(body, use_bin_type=False)
        self.sock.sendall(data)
        return self.seq

    def next_object(self):
        while True:
            for obj in self.unpacker:
                return obj
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("Serf closed the RPC connection")
            self.unpacker.feed(chunk)

    def call(self, command, body=None, reply_body=False):
        seq = self.send(command, body)
        header = self.next_object()
        if header.get("Seq") != seq or header.get("Error"):
            raise RuntimeError(f"Serf RPC {command}: {header}")
        return self.next_object() if reply_body else None

    def close(self):
        self.sock.close()


class Serf(Daemons):
    """N Serf agents on 127.0.0.1, LAN profile."""

    def __init__(self, workdir, n):
        super().__init__(workdir, n)
        self.log_views = []

    def log(self, i):
        return os.path.join(self.dir, f"serf{i}.log")

    def command(self, i):
        cmd = ["serf", "agent", f"-node=n{i}", f"-bind={HOST}:{SERF_PORT + i}",
               f"-rpc-addr={HOST}:{SERF_RPC_PORT + i}", "-log-level=info", "-profile=lan"]
        if i > 0:
            cmd.append(f"-join={HOST}:{SERF_PORT + i - 1}")
        return cmd

    def launch(self, i):
        with open(self.log(i), "w") as out:
            return subprocess.Popen(self.command(i), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, cwd=self.dir, preexec_fn=die_with_parent)

    def open_stream(self, i, reader):
        try:
            rpc = SerfRpc(SERF_RPC_PORT + i)
        except OSError:
            return None
        view, log_view = Membership(), Membership()
        stream_seq = rpc.send("stream", {"Type": "member-join,member-failed,user"})
        monitor_seq = rpc.send("monitor", {"LogLevel": "INFO"})
        decoder = SerfStream(view, stream_seq, monitor_seq, log_view)
        reader.add(rpc.sock, decoder.feed)
        ready = now_ns()
        for member in self.members(i):
            view.listed(member, ready)
            log_view.listed(member, ready)
        self.log_views.append(log_view)
        return view, ready

    def members(self, i):
        rpc = SerfRpc(SERF_RPC_PORT + i, timeout=10)
        try:
            reply = rpc.call("members", reply_body=True)
        finally:
            rpc.close()
        return [int(m["Name"][1:]) for m in reply["Members"] if m["Status"] == "alive"]

    def user_event(self, i, name):
        rpc = SerfRpc(SERF_RPC_PORT + i)
        try:
            rpc.call("event", {"Name": name, "Payload": b"x" * 32, "Coalesce": False})
        finally:
            rpc.close()
        return True


# ---- one system, one N ---------------------------------------------------------------------

def spread(values):
    """(p50, max) in ms of a list of ns durations, or None when empty."""
    if not values:
        return None
    return percentile(values, 50) / 1e6, max(values) / 1e6


def start_all(cluster, reader, timeout):
    """Starts daemon 0..N-1, each once the previous one's stream is open; returns the ready
    times and the last daemon's exec time."""
    readies = []
    for i in range(cluster.n):
        launched = now_ns()
        proc = cluster.launch(i)
        cluster.procs.append(proc)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon n{i} exited with {proc.returncode} during start: "
                                   f"{cluster.tail(i)}")
            opened = cluster.open_stream(i, reader)
            if opened:
                cluster.views.append(opened[0])
                readies.append(opened[1])
                break
            if time.monotonic() > deadline:
                refusal = getattr(cluster, "refusal", "")  # clusterd's last answer
                raise RuntimeError(f"daemon n{i} not ready in {timeout} s "
                                   f"{refusal and '(' + refusal + ') '}: {cluster.tail(i)}")
            reader.pump(0.005)
    return readies, launched


def detection(views, victim, since, observers):
    """ns from `since` to each observer's first failure event about `victim`."""
    out = []
    for i in observers:
        times = [t for t, m in views[i].failed if m == victim and t >= since]
        if times:
            out.append(min(times) - since)
    return out


def false_failures(views, victims, since, until):
    accusations = [(i, m) for i, v in enumerate(views) for t, m in v.failed
                   if since <= t <= until and m not in victims and i not in victims]
    return len(accusations), len({m for _, m in accusations})


def run_cell(cluster, args, reader):
    n = cluster.n
    out = {}
    readies, last_exec = start_all(cluster, reader, args.start_timeout)
    lags = getattr(cluster, "reader_lag_ms", None)
    last_ready = max(readies)

    def all_listed(views):
        return all(len(v.known) - (i in v.known) >= n - 1 for i, v in enumerate(views))

    reader.wait(lambda: all_listed(cluster.views), args.join_timeout, f"join of {n}")
    views_by_source = {"": cluster.views}
    if isinstance(cluster, Serf):
        reader.wait(lambda: all_listed(cluster.log_views), args.join_timeout, f"join of {n}")
        views_by_source = {"": cluster.log_views, "_stream": cluster.views}
    for suffix, views in views_by_source.items():
        all_known = [max(t for m, t in v.known.items() if m != i) for i, v in enumerate(views)]
        out["join" + suffix] = spread([max(0, t - last_ready) for t in all_known])
        out["join_exec" + suffix] = spread([max(0, t - last_exec) for t in all_known])
    if lags:  # during the join, when the streams are busiest (progress output only)
        out["reader_lag"] = percentile(lags, 50), max(lags)

    # Steady state.
    reader.idle(args.settle_seconds)
    pids = [p.pid for p in cluster.procs]
    cpu0, bytes0, t0 = [proc_cpu_ns(p) for p in pids], loopback_tx_bytes(), time.monotonic()
    reader.idle(args.steady_seconds)
    cpu1, bytes1, t1 = [proc_cpu_ns(p) for p in pids], loopback_tx_bytes(), time.monotonic()
    out["rss_mb"] = statistics.median(proc_rss_kb(p) for p in pids) / 1024
    out["cpu_pct"] = statistics.median((b - a) / 1e9 / (t1 - t0) * 100
                                       for a, b in zip(cpu0, cpu1))
    out["bytes_per_s"] = ((bytes1 - bytes0) / (t1 - t0) / n
                          if bytes0 is not None and args.netns else None)

    # User event from daemon 0.
    name = f"bench-{n}-{now_ns()}"
    sent = now_ns()
    if cluster.user_event(0, name):
        try:
            reader.wait(lambda: all(name in v.user for v in cluster.views[1:]),
                        args.event_timeout, "user event")
        except TimeoutError:
            pass  # the figures say how many received it
        got = [v.user[name] - sent for v in cluster.views[1:] if name in v.user]
        out["user"] = spread(got)
        out["user_missing"] = n - 1 - len(got)

    # Failure: one daemon killed, another frozen, at the same moment.
    killed, frozen = n // 2, n // 2 + 1
    observers = [i for i in range(n) if i not in (killed, frozen)]
    since = now_ns()
    cluster.procs[killed].send_signal(signal.SIGKILL)
    cluster.procs[frozen].send_signal(signal.SIGSTOP)
    for suffix, views in views_by_source.items():
        def detected():
            return (len(detection(views, killed, since, observers)) == len(observers)
                    and len(detection(views, frozen, since, observers)) == len(observers))
        try:
            reader.wait(detected, args.failure_timeout, "failure detection")
        except TimeoutError:
            pass  # counted as missing below
        for key, victim in (("kill", killed), ("stop", frozen)):
            got = detection(views, victim, since, observers)
            out[key + suffix] = spread(got)
            out[key + "_missing" + suffix] = len(observers) - len(got)
    cluster.procs[frozen].send_signal(signal.SIGKILL)
    cluster.procs[frozen].wait(timeout=10)

    # False failures: half of the survivors pinned to one CPU that stress-ng loads.
    cpu = max(os.sched_getaffinity(0))
    stressed = observers[::2]
    for i in stressed:
        pin_all_threads(cluster.procs[i].pid, cpu)
    stress = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
              for command in stress_commands(args, cpu)]
    start = now_ns()
    try:
        reader.idle(args.stress_seconds)
    finally:
        stop(stress, timeout=5)
    reader.idle(args.stress_grace)
    for suffix, views in views_by_source.items():
        out["false" + suffix] = false_failures(views, (killed, frozen), start, now_ns())
    return out


def stress_commands(args, cpu):
    """stress-ng's workers (it stops them when stopped), or one busy loop per worker."""
    pin = ["taskset", "-c", str(cpu)]
    if args.stressor == "stress-ng":
        return [pin + ["stress-ng", "--cpu", str(args.stress_workers),
                       "--timeout", f"{args.stress_seconds:.0f}s", "--quiet"]]
    return [pin + [sys.executable, "-c", "while True: pass"]] * args.stress_workers


def measure(system, n, args):
    """One system at one N: its figures, or {"error": why}."""
    with tempfile.TemporaryDirectory(prefix="clusterd-scale-") as d:
        cluster = (Serf(d, n) if system == "serf"
                   else Clusterd(args.bin_dir, d, n, args.mode_options[system]))
        reader = Reader()
        try:
            return run_cell(cluster, args, reader)
        except Exception as e:  # this cell failed; the other cells still run
            return {"error": f"{type(e).__name__}: {e}"}
        finally:
            reader.close()
            for p in cluster.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGCONT)  # a frozen one must be able to stop
            stop(cluster.procs, timeout=10)


# ---- report --------------------------------------------------------------------------------

def median_of(runs, key, index=None):
    values = [r[key] if index is None else r[key][index] for r in runs
              if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt_pair(runs, key):
    p50, worst = median_of(runs, key, 0), median_of(runs, key, 1)
    if p50 is None:
        return "n/a"
    missing = median_of(runs, key.replace("_stream", "") + "_missing"
                        + ("_stream" if key.endswith("_stream") else ""))
    text = f"{p50:.0f} / {worst:.0f}"
    return text + (f" ({missing:.0f} missed)" if missing else "")


def fmt_false(runs, key):
    events, accused = median_of(runs, key, 0), median_of(runs, key, 1)
    return "n/a" if events is None else f"{events:.0f} / {accused:.0f}"


def fmt_num(runs, key, fmt):
    value = median_of(runs, key)
    return "n/a" if value is None else fmt.format(value)


ROWS = [
    ("join, last daemon ready → all list N: p50 / max (ms)", "join", fmt_pair),
    ("join, last daemon's exec → all list N: p50 / max (ms)", "join_exec", fmt_pair),
    ("failure, SIGKILL → all others list it failed: p50 / max (ms)", "kill", fmt_pair),
    ("failure, SIGSTOP (silent) → all others list it failed: p50 / max (ms)", "stop", fmt_pair),
    ("false failures under CPU stress: events / daemons accused", "false", fmt_false),
    ("RSS per daemon (MB, median)", "rss_mb", lambda r, k: fmt_num(r, k, "{:.1f}")),
    ("CPU per daemon, steady (% of a core, median)", "cpu_pct",
     lambda r, k: fmt_num(r, k, "{:.3f}")),
    ("bytes/s per daemon, steady", "bytes_per_s", lambda r, k: fmt_num(r, k, "{:,.0f}")),
    ("user event → all others: p50 / max (ms)", "user", fmt_pair),
    ("(the bench's reader behind clusterd's own event stamps, join: p50 / max, ms)",
     "reader_lag", fmt_pair),
]
STREAM_ROWS = {"join", "join_exec", "kill", "stop", "false"}


def print_table(results, sizes, systems, labels):
    columns = [labels[s] for s in systems] + (["Serf, agent's event stream"]
                                              if "serf" in systems else [])
    print("| N | metric | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for n in sizes:
        errors = {s: [r["error"] for r in results[(s, n)] if "error" in r] for s in systems}
        for label, key, fmt in ROWS:
            cells = []
            for s in systems:
                ok = [r for r in results[(s, n)] if "error" not in r]
                cells.append(fmt(ok, key) if ok else "failed")
            if "serf" in systems:
                ok = [r for r in results[("serf", n)] if "error" not in r]
                cells.append(fmt(ok, key + "_stream") if ok and key in STREAM_ROWS else "")
            print(f"| {n} | {label} | " + " | ".join(cells) + " |")
        for s in systems:
            for e in errors[s]:
                print(f"\n{labels[s]} N={n}: a run failed: {e}")


def goals(results, sizes, systems, labels):
    """The issue's goals, clusterd mode by mode against Serf's membership (log monitor)."""
    if "serf" not in systems:
        return
    print("\nGoals (clusterd vs Serf's membership, medians over runs; 'met' = clusterd <= Serf):")
    for s in systems:
        if s == "serf":
            continue
        for n in sizes:
            ours = [r for r in results[(s, n)] if "error" not in r]
            serf = [r for r in results[("serf", n)] if "error" not in r]
            if not ours or not serf:
                print(f"  {labels[s]} N={n}: no figures (a system failed)")
                continue
            verdicts = []
            for key, what in (("join", "join p50"), ("kill", "SIGKILL p50"),
                              ("stop", "SIGSTOP p50")):
                a, b = median_of(ours, key, 0), median_of(serf, key, 0)
                missed = median_of(ours, key + "_missing")
                if a is not None and b is not None:
                    met = a <= b and not missed
                    note = f" ({missed:.0f} observers missed it)" if missed else ""
                    verdicts.append(f"{what} {a:.0f} vs {b:.0f} ms{note} "
                                    f"{'met' if met else 'NOT met'}")
            a, b = median_of(ours, "false", 0), median_of(serf, "false", 0)
            verdicts.append(f"false failures {a:.0f} vs {b:.0f} {'met' if a <= b else 'NOT met'}")
            a, b = median_of(ours, "rss_mb"), median_of(serf, "rss_mb")
            verdicts.append(f"RSS {a:.1f} vs {b:.1f} MB {'met' if a <= b else 'NOT met'}")
            print(f"  {labels[s]} N={n}: " + "; ".join(verdicts))


def brief(figures):
    """One cell's figures on one line (progress output)."""
    def show(value):
        if isinstance(value, tuple):
            return "/".join(f"{x:.0f}" for x in value)
        return f"{value:.3g}" if isinstance(value, float) else str(value)
    return " ".join(f"{k}={show(v)}" for k, v in figures.items() if v is not None)


# ---- main ----------------------------------------------------------------------------------

def enter_private_netns():
    """Re-executes the bench in a network namespace of its own (root only): its loopback
    carries only the bench's daemons, and it disappears with the bench's last process."""
    os.environ[NS_MARK] = "1"
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable] + sys.argv)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="20,50,200")
    ap.add_argument("--systems", default="mesh,swim,serf",
                    help="mesh, swim (clusterd's membership modes), serf")
    ap.add_argument("--stress-seconds", type=float, default=60)
    ap.add_argument("--stress-grace", type=float, default=5,
                    help="failure events still counted after the stress ends")
    ap.add_argument("--stress-workers", type=int, default=4, help="busy workers on the CPU")
    ap.add_argument("--stressor", choices=["stress-ng", "loop"], default="stress-ng")
    ap.add_argument("--settle-seconds", type=float, default=3)
    ap.add_argument("--steady-seconds", type=float, default=10)
    ap.add_argument("--start-timeout", type=float, default=30, help="per daemon")
    ap.add_argument("--join-timeout", type=float, default=120)
    ap.add_argument("--failure-timeout", type=float, default=60)
    ap.add_argument("--event-timeout", type=float, default=30)
    ap.add_argument("--no-netns", dest="netns", action="store_false",
                    help="run on the host's loopback (no bytes per second)")
    args = ap.parse_args()
    if args.netns and os.environ.get(NS_MARK) != "1":
        if os.geteuid() != 0:
            sys.exit("overlay_scale_bench: a private network namespace needs root "
                     "(or pass --no-netns: no bytes per second then)")
        enter_private_netns()
    if args.netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        # Outgoing ports stay clear of the daemons' fixed ones (per namespace).
        with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
            f.write("40000 60999")
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop every process started here.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with `&`
    args.bin_dir = os.path.join(os.path.abspath(args.build_dir), "bin")
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if min(sizes) < 4:
        ap.error("every size must be at least 4 (two victims, two observers)")
    if args.stressor == "stress-ng" and subprocess.run(["which", "stress-ng"],
                                                       capture_output=True).returncode:
        print("note: no stress-ng (Debian: stress-ng): busy loops instead")
        args.stressor = "loop"

    wanted = args.systems.split(",")
    if ({"mesh", "swim"} & set(wanted)
            and not os.access(os.path.join(args.bin_dir, "clusterd"), os.X_OK)):
        ap.error(f"no clusterd in {args.bin_dir}: build it first (scripts/build.sh)")
    if "serf" in wanted and subprocess.run(["which", "serf"], capture_output=True).returncode:
        ap.error("no serf in PATH (Debian: apt-get install serf)")
    labels = {"mesh": "clusterd mesh", "swim": "clusterd swim", "serf": "Serf (membership)"}
    args.mode_options = {}
    systems = []
    for s in wanted:
        if s in ("mesh", "swim"):
            option = f'membership = "{s}"'
            if clusterd_check(args.bin_dir, option):
                args.mode_options[s] = option
            elif s == "mesh":  # a build before membership modes: the full mesh is all it has
                args.mode_options[s] = ""
                labels[s] = "clusterd (full mesh)"
            else:
                print(f"note: clusterd in {args.build_dir} does not accept `{option}` "
                      "(`clusterd check`): no swim column")
                continue
        elif s != "serf":
            ap.error(f"unknown system {s}")
        systems.append(s)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 8 * max(sizes) + 256  # a full mesh: membership and data connections both ways
    if soft != -1 and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == -1 else min(need, hard), hard))

    serf_version = subprocess.run(["serf", "version"], capture_output=True, text=True).stdout
    serf_pkg = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "serf"],
                              capture_output=True, text=True).stdout
    print(f"overlay scale bench: {args.runs} runs, N = {sizes}, {os.cpu_count()} CPUs, loadavg "
          f"{os.getloadavg()[0]:.2f} at start, "
          f"{'private network namespace' if args.netns else 'host loopback'}")
    print("clusterd: partisan transport, shipped defaults (heartbeat_interval 1s, "
          "heartbeat_timeout 5s, gossip_interval 10s), log_level info, HMAC secret; mode "
          "options: " + ", ".join(f"{s}: {args.mode_options[s] or '(none: the default)'}"
                                  for s in systems if s != "serf"))
    reported = serf_version.splitlines()[0] if serf_version else "?"
    print(f"Serf: Debian serf {serf_pkg or '?'} (`serf version`: {reported}), `serf agent -node "
          "-bind -rpc-addr -join -log-level=info -profile=lan` (memberlist's LAN profile: probe "
          "1 s, timeout 500 ms, 3 indirect probes, gossip 200 ms, suspicion 4·log10(N) s, up "
          "to 6x that until others confirm), no encryption")
    print(f"stress: {args.stress_workers} x {args.stressor} on CPU {max(os.sched_getaffinity(0))} "
          f"for {args.stress_seconds:.0f} s (+{args.stress_grace:.0f} s counted), half of the "
          "surviving daemons pinned there", flush=True)

    results = {(s, n): [] for s in systems for n in sizes}
    for run in range(args.runs):
        for n in sizes:
            for s in systems:
                t = time.monotonic()
                r = measure(s, n, args)
                results[(s, n)].append(r)
                print(f"  run {run + 1} N={n} {labels[s]} ({time.monotonic() - t:.0f} s): "
                      f"{r.get('error') or brief(r)}", flush=True)
        # The table so far after every run: an interrupted bench still leaves figures.
        print(f"\nloadavg {os.getloadavg()[0]:.2f}; medians of {run + 1} of {args.runs} runs\n")
        print_table(results, sizes, systems, labels)
        goals(results, sizes, systems, labels)
        print(flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every daemon was stopped on the way out
        sys.exit("interrupted")
