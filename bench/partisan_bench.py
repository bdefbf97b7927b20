#!/usr/bin/env python3
"""The `partisan` overlay: mesh formation, RSS, and messages next to Erlang distribution.

usage: bench/partisan_bench.py BUILD_DIR [--runs 3] [--sizes 20,50] [--seeding ring|tree]
                               [--rtts 2000 --rtts-large 300] [--skip-mesh] [--skip-messages]
                               [--skip-json]

1. Mesh: N clusterd processes on 127.0.0.1, each seeded (epmd strategy, static `hosts`,
   epmd_check = false) with one other peer (ring: node i knows node i-1; tree: a random earlier
   node). "All started" is the last daemon's "ready" log line (its CLOCK_MONOTONIC stamp); "full
   mesh" is the last "member … up" log line (ms resolution) before the control sockets showed
   every node with the N-1 others in its transport's `connected` set (polled; the poll's own
   detection time is printed too). RSS: VmRSS of every daemon once the mesh is full; CPU: user +
   system time of all daemons from exec to the mesh (less sensitive to other load than time).
2. Messages between two daemons A and B: an echo application on B (a `receive` session plus a
   `send` session on B's control socket, a separate process) sends every message back to A;
   A's application (this process: a `send` session and a `receive` session) measures send →
   echo received, for 64 B and 64 KiB. Throughput: pipelined sends with a bounded number in
   flight, counted by their acks (B's clusterd acks once it handed the message to B's
   receiver). The same, in the same run: two BEAM nodes (a private epmd on a free port) over
   Erlang distribution, a registered echo process on B, an -eval script on A.
   The clusterd path includes four Unix-socket hops (app → clusterd → clusterd → app, twice)
   and JSON encoding; the BEAM path is process to process inside the VMs.
3. The same between two daemons over the binary data path: partisan_client_bench (a C program
   on libclusterd-client, built in BUILD_DIR/bin) as the echo application on B and as the
   driver on A, one binary session each ("Binary sessions" in docs/control-protocol.md): the
   same four Unix-socket hops, length-prefixed frames instead of JSON.
Every figure is the median over --runs runs (each run: every N, then clusterd and BEAM
messages back to back). Loopback only; every process is started here and stopped by PID.
"""
import argparse
import datetime
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TRANSPORT = "overlay"
SECRET = "bench-secret-0123456789"

NODE_CONFIG = """[clusterd]
control_socket = "{sock}"
log_level = "info"
[transports.overlay]
plugin = "partisan"
node_name = "{node}"
listen = "127.0.0.1:{port}"
secret = "{secret}"
{options}
[topologies.seed]
strategy = "epmd"
transport = "overlay"
[topologies.seed.config]
hosts = [{seeds}]
epmd_check = false
"""


# ---- helpers -------------------------------------------------------------------------------

def free_ports(count):
    """`count` consecutive-ish ports below the kernel's ephemeral range (so no outgoing
    connection of the daemons can take one before its owner listens), each free now."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    ports = []
    port = random.randrange(10000, max(10001, low - 4 * count - 1000))
    while len(ports) < count and port < low:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                ports.append(port)
            except OSError:
                pass  # taken: the next one
        port += 1
    if len(ports) < count:
        raise RuntimeError("no free port range below the ephemeral ports")
    return ports


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def stop(procs, timeout=20):
    """SIGTERM every process we started (by PID), then SIGKILL what is left after `timeout`."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


class Lines:
    """JSON lines from a stream socket, each read bounded by a deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[:nl + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within %.1f s" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 18)
            if not chunk:
                raise EOFError("the daemon closed the connection")
            self.buf += chunk

    def ready(self):
        """A line is already buffered, or the socket has bytes (no wait)."""
        if b"\n" in self.buf:
            return True
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(1 << 18)
        except BlockingIOError:
            return False
        finally:
            self.sock.setblocking(True)
        if not chunk:
            raise EOFError("the daemon closed the connection")
        self.buf += chunk
        return b"\n" in self.buf


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def host_command(path, cmd, timeout=5.0):
    """One host command (the daemon answers one line and closes), or None if not listening."""
    try:
        with connect(path, timeout) as s:
            s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
            return json.loads(Lines(s).readline(timeout))
    except (OSError, EOFError, TimeoutError):
        return None


def open_receiver(path, channel="default"):
    s = connect(path)
    lines = Lines(s)
    s.sendall(json.dumps({"cmd": "receive", "transport": TRANSPORT, "channel": channel}).encode()
              + b"\n")
    reply = json.loads(lines.readline(5))
    if not reply.get("ok"):
        raise RuntimeError(f"receive on {path}: {reply}")
    return s, lines


def send_line(to, data, msg_id, channel="default"):
    # Compact separators, as a real client would send them; `data` is plain ASCII.
    return (b'{"cmd":"send","transport":"' + TRANSPORT.encode() + b'","to":"' + to.encode()
            + b'","channel":"' + channel.encode() + b'","id":' + str(msg_id).encode()
            + b',"data":"' + data + b'"}\n')


# ---- daemons -------------------------------------------------------------------------------

class Overlay:
    """N clusterd processes with the partisan transport on 127.0.0.1."""

    def __init__(self, bin_dir, workdir, n, seeding="ring", options=""):
        self.bin_dir, self.dir, self.n = bin_dir, workdir, n
        ports = free_ports(n)
        self.nodes = [f"n{i + 1}@127.0.0.1:{ports[i]}" for i in range(n)]
        self.socks = [os.path.join(workdir, f"n{i + 1}.sock") for i in range(n)]
        self.logs = [os.path.join(workdir, f"n{i + 1}.log") for i in range(n)]
        self.procs = []
        self.configs = []
        rng = random.Random(n)
        for i in range(n):
            if n == 1:
                seeds = []
            elif seeding == "ring":
                seeds = [self.nodes[i - 1]]
            else:  # a random tree: every node knows one node started before it
                seeds = [self.nodes[rng.randrange(i)]] if i > 0 else [self.nodes[1]]
            path = os.path.join(workdir, f"n{i + 1}.toml")
            with open(path, "w") as f:
                f.write(NODE_CONFIG.format(sock=self.socks[i], node=self.nodes[i],
                                           port=ports[i], secret=SECRET, options=options,
                                           seeds=", ".join(f'"{s}"' for s in seeds)))
            self.configs.append(path)

    def start(self):
        """Launches every daemon back to back; returns the monotonic ns of the last exec."""
        last = 0
        for cfg, log in zip(self.configs, self.logs):
            with open(log, "w") as out:
                last = time.monotonic_ns()
                self.procs.append(subprocess.Popen(
                    [os.path.join(self.bin_dir, "clusterd"), "run", "-c", cfg],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out))
        return last

    def wait_ready(self, timeout=30):
        """The monotonic ns of every daemon's "ready" line."""
        stamps = [None] * self.n
        deadline = time.monotonic() + timeout
        while None in stamps:
            for i in range(self.n):
                if stamps[i] is None:
                    if self.procs[i].poll() is not None:
                        raise RuntimeError(f"{self.nodes[i]} exited: {self.tail(i)}")
                    with open(self.logs[i]) as f:
                        m = re.search(r"ready: .*monotonic_ns=(\d+)", f.read())
                    if m:
                        stamps[i] = int(m.group(1))
            if None in stamps:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{stamps.count(None)} daemons not ready in {timeout} s")
                time.sleep(0.005)
        return stamps

    def wait_mesh(self, timeout=60):
        """Polls every control socket until each daemon's `connected` set is all the others;
        returns the monotonic ns at which the last one was seen complete."""
        pending = set(range(self.n))
        deadline = time.monotonic() + timeout
        while pending:
            for i in sorted(pending):
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"{self.nodes[i]} exited: {self.tail(i)}")
                status = host_command(self.socks[i], "status")
                if status is None:
                    continue
                t = next(t for t in status["transports"] if t["name"] == TRANSPORT)
                if set(t["connected"]) == set(self.nodes) - {self.nodes[i]}:
                    pending.discard(i)
            if pending:
                if time.monotonic() > deadline:
                    i = min(pending)
                    raise RuntimeError(f"no full mesh after {timeout} s: {len(pending)} nodes "
                                       f"incomplete, e.g. {self.nodes[i]}: {self.tail(i)}")
                time.sleep(0.002)
        return time.monotonic_ns()

    def last_up(self, before_ns):
        """From the logs: (monotonic ns of the last "member … up" line at or before `before_ns`,
        number of "down" lines). Log stamps are local wall time with ms resolution."""
        offset = time.time_ns() - time.monotonic_ns()
        last, downs = 0, 0
        for log in self.logs:
            with open(log) as f:
                for line in f:
                    if "member " in line and " up (" in line:
                        stamp = datetime.datetime.strptime(line.split()[0],
                                                           "%Y-%m-%dT%H:%M:%S.%f")
                        mono = int(stamp.timestamp() * 1e9) - offset
                        if mono <= before_ns + 1_000_000:  # the stamp is truncated to ms
                            last = max(last, mono)
                    elif "member " in line and " down: " in line:
                        downs += 1
        return last, downs

    def cpu_seconds(self):
        """User + system CPU time of every daemon so far."""
        total = 0
        for p in self.procs:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def rss_kb(self):
        out = []
        for p in self.procs:
            with open(f"/proc/{p.pid}/status") as f:
                out.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")))
        return out

    def ping_rtt_us(self, i, peer):
        """The last heartbeat PING -> PONG time daemon i measured to `peer` (`members`)."""
        with connect(self.socks[i]) as s:
            s.sendall(json.dumps({"cmd": "members", "transport": TRANSPORT}).encode() + b"\n")
            reply = json.loads(Lines(s).readline(5))
        return next(m["rtt_us"] for m in reply["members"] if m["node"] == peer)

    def tail(self, i, lines=5):
        try:
            with open(self.logs[i]) as f:
                return " | ".join(f.read().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self):
        stop(self.procs)


def mesh_run(bin_dir, n, seeding, options):
    with tempfile.TemporaryDirectory(prefix="clusterd-pbench-") as d:
        overlay = Overlay(bin_dir, d, n, seeding, options)
        try:
            last_exec = overlay.start()
            ready = overlay.wait_ready()
            seen = overlay.wait_mesh()
            rss = overlay.rss_kb()
            cpu = overlay.cpu_seconds()
            last_up, downs = overlay.last_up(seen)
            return {"from_ready_ms": (last_up - max(ready)) / 1e6,
                    "from_exec_ms": (last_up - last_exec) / 1e6,
                    "poll_ms": (seen - max(ready)) / 1e6,
                    "rss_median_kb": statistics.median(rss), "rss_max_kb": max(rss),
                    "downs": downs, "cpu_s": cpu}
        finally:
            overlay.close()


# ---- messages through clusterd ---------------------------------------------------------------

def echo_main(sock_path):
    """The echo application on node B (run as a child process): every message on channel
    "default" whose data starts with "E" goes back to its sender; "T…" (throughput) messages
    are only read. Prints READY once receiving; ends when the daemon closes the session."""
    rs, rlines = open_receiver(sock_path)
    ss = connect(sock_path)
    slines = Lines(ss)
    errors = []

    def drain():  # the send session's replies must be read, or the daemon calls us too slow
        try:
            while True:
                reply = json.loads(slines.readline(3600))
                if "error" in reply:
                    errors.append(reply["error"])
                    print(f"echo: send failed: {reply['error']}", file=sys.stderr, flush=True)
        except (EOFError, OSError, TimeoutError):
            pass

    threading.Thread(target=drain, daemon=True).start()
    print("READY", flush=True)
    msg_id = 0
    try:
        while True:
            line = rlines.readline(3600)
            if b'"data":"T' in line:
                continue
            event = json.loads(line)
            if event.get("event") != "message":
                continue
            msg_id += 1
            ss.sendall(send_line(event["from"], event["data"].encode(), msg_id))
    except (EOFError, OSError, TimeoutError):
        pass


class App:
    """Node A's application: one send session, one receive session."""

    def __init__(self, sock_path, peer):
        self.peer = peer
        self.rs, self.rlines = open_receiver(sock_path)
        self.ss = connect(sock_path)
        self.slines = Lines(self.ss)
        self.next_id = 0

    def send(self, data):
        self.next_id += 1
        self.ss.sendall(send_line(self.peer, data, self.next_id))
        return self.next_id

    def ack(self, timeout=10):
        reply = json.loads(self.slines.readline(timeout))
        if not reply.get("ok"):
            raise RuntimeError(f"send failed: {reply}")
        return reply["id"]

    def round_trips(self, size, count, warmup):
        pad = b"x" * (size - 9)
        samples = []
        for i in range(warmup + count):
            marker = b"E%08d" % i
            data = marker + pad
            t0 = time.perf_counter_ns()
            self.send(data)
            needle = b'"' + marker  # the data string starts with the marker
            while True:
                line = self.rlines.readline(10)
                if needle in line:
                    break
            t1 = time.perf_counter_ns()
            self.ack()
            if i == 0 and json.loads(line)["data"].encode() != data:  # the bytes came back
                raise RuntimeError("the echo differs from the message sent")
            if i >= warmup:
                samples.append((t1 - t0) / 1000)
        return samples

    def throughput(self, size, count, window):
        data = b"T" + b"y" * (size - 1)
        sent = acked = 0
        t0 = time.perf_counter_ns()
        while acked < count:
            while sent < count and sent - acked < window:
                self.send(data)
                sent += 1
            self.ack()
            acked += 1
            while acked < count and self.slines.ready():  # take what is there at once
                self.ack()
                acked += 1
        return (time.perf_counter_ns() - t0) / 1e9

    def close(self):
        self.rs.close()
        self.ss.close()


def message_overlay(bin_dir, workdir, args):
    """Two daemons A and B for the message benchmarks, started and meshed."""
    # Heartbeats every 100 ms, so that their PING -> PONG times give a reference sample.
    options = args.options
    if "heartbeat_interval" not in options:
        options += '\nheartbeat_interval = "100ms"'
    overlay = Overlay(bin_dir, workdir, 2, "ring", options)
    try:
        overlay.start()
        overlay.wait_ready()
        overlay.wait_mesh()
    except BaseException:
        overlay.close()
        raise
    return overlay


def clusterd_messages(bin_dir, args):
    with tempfile.TemporaryDirectory(prefix="clusterd-pbench-msg-") as d:
        overlay = message_overlay(bin_dir, d, args)
        procs = []
        try:
            pings = []
            for _ in range(args.ping_samples):  # a new heartbeat each time: this is the interval
                time.sleep(0.11)
                pings.append(overlay.ping_rtt_us(0, overlay.nodes[1]))
            echo = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--echo",
                                     overlay.socks[1]], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, text=True)
            procs.append(echo)
            if echo.stdout.readline().strip() != "READY":
                raise RuntimeError("the echo application did not start")
            app = App(overlay.socks[0], overlay.nodes[1])
            try:
                out = measure(args, app.round_trips, app.throughput)
            finally:
                app.close()
            out["wire_rtt"] = statistics.median(p for p in pings if p is not None)
            return out
        finally:
            stop(procs)  # the echo application first: it would report the daemon's goodbye
            overlay.close()


def binary_messages(bin_dir, args):
    """The binary data path: partisan_client_bench echo on B, drive on A."""
    tool = os.path.join(bin_dir, "partisan_client_bench")
    env = dict(os.environ, PARTISAN_BENCH_SPIN_US=str(args.client_spin_us))
    with tempfile.TemporaryDirectory(prefix="clusterd-pbench-bin-") as d:
        overlay = message_overlay(bin_dir, d, args)
        procs = []
        try:
            echo = subprocess.Popen([tool, "echo", overlay.socks[1]], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, text=True, env=env)
            procs.append(echo)
            if echo.stdout.readline().strip() != "READY":
                raise RuntimeError("the binary echo application did not start")
            counts = [args.rtts, args.rtts_large, args.warmup, args.msgs, args.msgs_large,
                      args.window, args.window_large]
            return run_driver([tool, "drive", overlay.socks[0], overlay.nodes[1]]
                              + [str(c) for c in counts], env, "partisan_client_bench drive")
        finally:
            stop(procs)
            overlay.close()


def measure(args, round_trips, throughput):
    out = {}
    for size, count in ((64, args.rtts), (65536, args.rtts_large)):
        lat = round_trips(size, count, args.warmup)
        out[f"lat{size}"] = (statistics.median(lat), percentile(lat, 99))
    for size, count, window in ((64, args.msgs, args.window), (65536, args.msgs_large,
                                                               args.window_large)):
        seconds = throughput(size, count, window)
        out[f"thr{size}"] = (count / seconds, count * size / seconds / 1e6)
    return out


# ---- messages through Erlang distribution ----------------------------------------------------

BEAM_ECHO = ("register(echo, spawn(fun L() -> receive "
             "{e, F, X} -> F ! {e, X}, L(); {t, F, _} -> F ! ack, L() end end)).")

# Prints "LAT Size [us...]" and "THR Size Count Ns" lines, then halts; exit 3..5 on failures.
BEAM_DRIVER = """
B = '{b}', Echo = {{echo, B}},
Wait = fun W(0) -> halt(3); W(K) -> case rpc:call(B, erlang, whereis, [echo]) of
  P when is_pid(P) -> ok; _ -> timer:sleep(10), W(K - 1) end end,
Wait(2000),
Lat = fun(Size, Count) ->
  Bin = binary:copy(<<"x">>, Size),
  [begin T0 = erlang:monotonic_time(nanosecond), Echo ! {{e, self(), Bin}},
     receive {{e, R}} when byte_size(R) =:= Size -> ok after 10000 -> halt(4) end,
     (erlang:monotonic_time(nanosecond) - T0) div 1000 end || _ <- lists:seq(1, Count)] end,
Thr = fun(Size, Count, Win) ->
  Bin = binary:copy(<<"y">>, Size),
  T0 = erlang:monotonic_time(nanosecond),
  Loop = fun L(_, A) when A =:= Count -> ok;
             L(S, A) when S < Count, S - A < Win -> Echo ! {{t, self(), Bin}}, L(S + 1, A);
             L(S, A) -> receive ack -> L(S, A + 1) after 10000 -> halt(5) end end,
  Loop(0, 0),
  erlang:monotonic_time(nanosecond) - T0 end,
[begin Lat(S, {warmup}), io:format("LAT ~b ~w~n", [S, Lat(S, C)]) end
 || {{S, C}} <- [{{64, {rtts}}}, {{65536, {rtts_large}}}]],
[io:format("THR ~b ~b ~b~n", [S, C, Thr(S, C, W)])
 || {{S, C, W}} <- [{{64, {msgs}, {window}}}, {{65536, {msgs_large}, {window_large}}}]],
halt(0).
"""


def beam_messages(args):
    with tempfile.TemporaryDirectory(prefix="clusterd-pbench-beam-") as d:
        epmd_port = free_ports(1)[0]
        cookie = secrets.token_hex(16)
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port), HOME=d)
        common = ["-setcookie", cookie, "-noshell", "-noinput",
                  "-kernel", "inet_dist_use_interface", "{127,0,0,1}"]
        procs = []
        try:
            procs.append(subprocess.Popen(["epmd", "-port", str(epmd_port), "-address",
                                           "127.0.0.1"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 10
            while True:  # epmd listening?
                try:
                    socket.create_connection(("127.0.0.1", epmd_port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("epmd did not start")
                    time.sleep(0.01)
            b = "b@127.0.0.1"
            procs.append(subprocess.Popen(["erl", "-name", b] + common + ["-eval", BEAM_ECHO],
                                          env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            driver = BEAM_DRIVER.format(b=b, **vars(args))
            return run_driver(["erl", "-name", "a@127.0.0.1"] + common + ["-eval", driver],
                              env, "BEAM driver")
        finally:
            stop(procs)


def run_driver(argv, env, what):
    """Runs a driver (the BEAM one, partisan_client_bench drive) to its end; its figures."""
    run = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"{what} exited {run.returncode}: {run.stdout[-500:]} "
                           f"{run.stderr[-500:]}")
    return driver_figures(run.stdout)


def driver_figures(stdout):
    """The figures of a driver's "LAT SIZE [us,...]" and "THR SIZE COUNT NS" lines (the BEAM
    driver's and partisan_client_bench's)."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "LAT":
            lat = json.loads(parts[2])
            out[f"lat{parts[1]}"] = (statistics.median(lat), percentile(lat, 99))
        elif parts[0] == "THR":
            size, count, ns = int(parts[1]), *map(int, parts[2].split())
            out[f"thr{size}"] = (count / (ns / 1e9), count * size / (ns / 1e9) / 1e6)
    if len(out) != 4:
        raise RuntimeError(f"the driver printed: {stdout[-500:]}")
    return out


# ---- report ------------------------------------------------------------------------------

def med(runs, key, index=None):
    values = [r[key] if index is None else r[key][index] for r in runs]
    return statistics.median(values), min(values), max(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", nargs="?")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="20,50", help="mesh sizes")
    ap.add_argument("--seeding", choices=["ring", "tree"], default="ring")
    ap.add_argument("--options", default="", help="extra [transports.overlay] TOML lines")
    ap.add_argument("--rtts", type=int, default=2000, help="64 B round trips per run")
    ap.add_argument("--rtts-large", type=int, default=300, help="64 KiB round trips per run")
    ap.add_argument("--warmup", type=int, default=50, help="round trips not counted")
    ap.add_argument("--msgs", type=int, default=10000, help="64 B pipelined sends")
    # 200 x 64 KiB stays under the 16 MiB a session may leave unread: acks mean "handed to the
    # receiving app's session", and this Python echo app reads slower than clusterd delivers
    # (no end-to-end backpressure yet: a slower app is cut off as too slow).
    ap.add_argument("--msgs-large", type=int, default=200, help="64 KiB pipelined sends")
    ap.add_argument("--window", type=int, default=256, help="64 B sends in flight")
    ap.add_argument("--window-large", type=int, default=16, help="64 KiB sends in flight")
    ap.add_argument("--ping-samples", type=int, default=10,
                    help="heartbeat RTTs read from `members` (100 ms apart) as a reference")
    ap.add_argument("--skip-mesh", action="store_true")
    ap.add_argument("--skip-messages", action="store_true")
    ap.add_argument("--client-spin-us", type=int, default=0,
                    help="binary path: the C applications poll this long before sleeping "
                         "(libclusterd-client's spin_us)")
    ap.add_argument("--skip-json", action="store_true",
                    help="messages: only the binary path and BEAM")
    ap.add_argument("--echo", metavar="SOCKET", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo:
        return echo_main(args.echo)
    if not args.build_dir:
        ap.error("BUILD_DIR is required")
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop every process started here.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    bin_dir = os.path.join(os.path.abspath(args.build_dir), "bin")
    sizes = [int(x) for x in args.sizes.split(",") if x] if not args.skip_mesh else []

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * max(sizes, default=2) + 64  # membership + data conns both ways, sockets, logs
    if soft != -1 and soft < need:
        print(f"note: RLIMIT_NOFILE {soft} < {need}: raised for the daemons")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == -1 else min(need, hard), hard))
    print(f"partisan bench: {args.runs} runs, loadavg {os.getloadavg()[0]:.2f} at start, "
          f"{os.cpu_count()} CPUs", flush=True)

    mesh = {n: [] for n in sizes}
    ours, bins, beams = [], [], []
    for run in range(args.runs):
        for n in sizes:
            r = mesh_run(bin_dir, n, args.seeding, args.options)
            mesh[n].append(r)
            print(f"  run {run + 1} N={n}: mesh {r['from_ready_ms']:.0f} ms after the last ready "
                  f"(poll saw it at {r['poll_ms']:.0f} ms), RSS median "
                  f"{r['rss_median_kb'] / 1024:.2f} MB max {r['rss_max_kb'] / 1024:.2f} MB, "
                  f"{r['downs']} down events, {r['cpu_s']:.2f} s CPU (all daemons, exec to "
                  "mesh)", flush=True)
        if not args.skip_messages:
            bins.append(binary_messages(bin_dir, args))
            if not args.skip_json:
                ours.append(clusterd_messages(bin_dir, args))
            beams.append(beam_messages(args))
            json_p50 = f"{ours[-1]['lat64'][0]:.0f} us" if ours else "-"
            print(f"  run {run + 1} messages 64 B p50: binary {bins[-1]['lat64'][0]:.0f} us, "
                  f"JSON {json_p50}, BEAM {beams[-1]['lat64'][0]:.0f} us; 64 KiB MB/s: binary "
                  f"{bins[-1]['thr65536'][1]:.0f}, BEAM {beams[-1]['thr65536'][1]:.0f}",
                  flush=True)

    print(f"\nloadavg {os.getloadavg()[0]:.2f} at the end")
    for n in sizes:
        t, tlo, thi = med(mesh[n], "from_ready_ms")
        e, _, _ = med(mesh[n], "from_exec_ms")
        rm, _, _ = med(mesh[n], "rss_median_kb")
        rx, _, _ = med(mesh[n], "rss_max_kb")
        cpu, _, _ = med(mesh[n], "cpu_s")
        print(f"SUMMARY mesh N={n} ({args.seeding} seeding, {args.runs} runs): full mesh "
              f"{t:.0f} ms after the last daemon was ready (range {tlo:.0f}-{thi:.0f}; "
              f"{e:.0f} ms after its exec); RSS per daemon median {rm / 1024:.2f} MB, "
              f"max {rx / 1024:.2f} MB; {cpu:.2f} s CPU of all daemons from exec to mesh")
    if not bins:
        return 0

    print("\nmessages between two peers on 127.0.0.1, medians of "
          f"{args.runs} runs (clusterd: app -> Unix socket -> clusterd -> TCP -> clusterd -> "
          "Unix socket -> app; binary: length-prefixed frames through libclusterd-client, "
          "JSON: JSON lines from Python; BEAM: process to process over Erlang distribution)")
    rows = [("64 B round trip p50 (us)", "lat64", 0), ("64 B round trip p99 (us)", "lat64", 1),
            ("64 KiB round trip p50 (us)", "lat65536", 0),
            ("64 KiB round trip p99 (us)", "lat65536", 1),
            ("64 B throughput (msg/s)", "thr64", 0), ("64 B throughput (MB/s)", "thr64", 1),
            ("64 KiB throughput (msg/s)", "thr65536", 0),
            ("64 KiB throughput (MB/s)", "thr65536", 1)]
    print(f"{'metric':<28} {'binary':>12} {'JSON':>12} {'BEAM':>12} {'binary/BEAM':>12} "
          f"{'JSON/BEAM':>10}")
    figures = {}
    for label, key, i in rows:
        n, b = med(bins, key, i)[0], med(beams, key, i)[0]
        j = med(ours, key, i)[0] if ours else float("nan")
        figures[(key, i)] = (n, j, b)
        print(f"{label:<28} {n:>12.1f} {j:>12.1f} {b:>12.1f} {n / b:>12.2f} {j / b:>10.2f}")
    if ours:
        rtt = med(ours, "wire_rtt")[0]
        print(f"(for reference: the daemons' own heartbeat PING -> PONG between A and B, no "
              f"application and no JSON, idle: {rtt:.0f} us, median of {args.ping_samples} "
              "samples per run)")
    for key, size in (("lat64", "64 B"), ("lat65536", "64 KiB")):
        (n50, j50, b50), (n99, j99, b99) = figures[(key, 0)], figures[(key, 1)]
        met = "met" if n50 <= b50 and n99 <= b99 else "NOT met"
        print(f"SUMMARY {size} round trip A->B->A: binary p50 {n50:.0f} us / p99 {n99:.0f} us, "
              f"JSON p50 {j50:.0f} us / p99 {j99:.0f} us, BEAM distribution p50 {b50:.0f} us / "
              f"p99 {b99:.0f} us (binary/BEAM {n50 / b50:.2f}x / {n99 / b99:.2f}x: goal "
              f"latency <= BEAM's {met})")
    for key, size, count, window in (("thr64", "64 B", args.msgs, args.window),
                                     ("thr65536", "64 KiB", args.msgs_large, args.window_large)):
        (nm, jm, bm), (nb, jb, bb) = figures[(key, 0)], figures[(key, 1)]
        met = "met" if nm >= bm else "NOT met"
        print(f"SUMMARY {size} throughput ({count} sends, {window} in flight, acked): binary "
              f"{nm:,.0f} msg/s = {nb:.1f} MB/s, JSON {jm:,.0f} msg/s = {jb:.1f} MB/s, BEAM "
              f"{bm:,.0f} msg/s = {bb:.1f} MB/s (binary/BEAM {nm / bm:.2f}x: goal throughput >= "
              f"BEAM's {met})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
