#!/usr/bin/env python3
"""Time to full mesh of real BEAM nodes driven by clusterd with the SHIPPED configuration.

usage: bench/beam_mesh_bench.py BUILD_DIR [--runs 5] [--already 3,5,10] [--launch 3,5]
                                [--embedded] [--idle SECONDS] [--conf FILE]

The configuration is conf/clusterd.toml as shipped (local_epmd + erlang, nodes = "local"),
every timing default untouched. Only what points it at this bench's private processes is
changed, and printed: control_socket, cookie_file and the transport's and the topology's
epmd_port (a private epmd on a free port, loopback only). --conf takes another file (e.g. an
older conf/clusterd.toml, to compare) patched the same way.

- already running: N nodes are up (and a hidden watcher is connected to each); clock starts
  just before clusterd is exec'd, stops when the watcher sees every node with N-1 peers.
- launch everything: clock starts before the N `erl` processes and clusterd are launched
  together, stops when the last node sees N-1 peers (each node checks its own nodes() every
  2 ms): libcluster's anchor definition, erlang.md §4.4 (1.49 s for 3 nodes, 2.26 s for 5).
  Also shown: from the moment every node is registered in the epmd (the bench asks it every
  10 ms) to the mesh, clusterd's part of the figure; the rest is the BEAM's boot.
- --idle S: 3 nodes meshed, then 10 s to settle; over the next S seconds counts clusterd's
  wake-ups (voluntary context switches of all its threads, /proc: preemptions by a loaded
  machine are not counted), then over
  another S seconds its queries to the epmd (connect() calls to its port, with strace when
  installed).
Prints median and range per case. All processes by PID.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from beam import Cluster, wait_for  # noqa: E402
from test_beam_shipped import SHIPPED, shipped_config  # noqa: E402

CHANGED = "control_socket, cookie_file, epmd_port (transport and topology): private paths and port"


def start_daemon(build, conf, d, cluster):
    path = os.path.join(d, "c.toml")
    with open(path, "w") as f:
        f.write(shipped_config(cluster, conf, control_socket=os.path.join(d, "clusterd.sock")))
    cmd = [os.path.join(build, "bin", "clusterd"), "run", "-c", path]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster.env)


def wait_mesh(watcher):
    line = ""
    for _ in range(3):
        line = watcher.stdout.readline().strip()
        if line != "READY":
            break
    if not line.startswith("MESH"):
        raise RuntimeError(f"no full mesh: {line!r}")
    return int(line.split()[1])


def stop(*procs):
    for p in procs:
        if p:
            p.kill()
            p.wait(timeout=20)


def launch_node(cluster, name, n, embedded):
    """Starts name@127.0.0.1 (as beam.Cluster.start does) with an -eval that prints
    `MESH <unix ns>` to the node's log once the node itself sees n-1 visible peers: no probe
    node whose own boot would be measured, and nothing asked of the epmd."""
    node = f"{name}@127.0.0.1"
    log = os.path.join(cluster.dir, f"{name}.log")
    watch = ("Deadline = erlang:monotonic_time(millisecond) + 60000, "
             "Loop = fun L() -> "
             f"  case length(erlang:nodes()) >= {n - 1} of "
             "    true -> io:format(\"MESH ~b~n\", [os:system_time(nanosecond)]); "
             "    false -> case erlang:monotonic_time(millisecond) > Deadline of "
             "      true -> io:format(\"TIMEOUT~n\"); false -> timer:sleep(2), L() end end end, "
             "Loop().")
    with open(log, "w") as out:
        cluster.nodes[node] = subprocess.Popen(
            ["erl", "-name", node, "-setcookie", cluster.cookie, "-noshell", "-noinput",
             "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-eval", watch]
            + (["-mode", "embedded"] if embedded else []),
            env=cluster.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return log


def logged_at(log, what):
    """The time on the node's `WHAT <ns>` line, or None before it is written."""
    with open(log) as f:
        for line in f:
            if line.startswith(what + " "):
                return int(line.split()[1])
            if line.startswith("TIMEOUT"):
                raise RuntimeError(f"no full mesh: {log}")
    return None


def one_run(build, conf, n, launch, embedded):
    with tempfile.TemporaryDirectory(prefix="clusterd-bench-") as d:
        cluster = Cluster(d)
        daemon = watcher = None
        try:
            names = [f"b{i}" for i in range(n)]
            if launch:
                t0 = time.time_ns()
                logs = [launch_node(cluster, x, n, embedded) for x in names]
                daemon = start_daemon(build, conf, d, cluster)
                wait_for(lambda: set(names) <= cluster.registered(), 60, "nodes", interval=0.01)
                registered = time.time_ns()

                def every_node_meshed():
                    times = [logged_at(x, "MESH") for x in logs]
                    return None if None in times else times

                meshed = max(wait_for(every_node_meshed, 70, "every node to see a full mesh", 0.02))
                return (meshed - t0) / 1e6, (meshed - registered) / 1e6
            else:
                nodes = cluster.start_many(names, embedded=embedded)
                watcher = cluster.mesh_watcher(nodes)
                assert watcher.stdout.readline().strip() == "READY"
                t0 = time.time_ns()
                daemon = start_daemon(build, conf, d, cluster)
            return (wait_mesh(watcher) - t0) / 1e6, None
        finally:
            stop(daemon, watcher)
            cluster.close()


def context_switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):  # blocked, then woken
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended
    return total


def idle_run(build, conf, seconds, embedded):
    with tempfile.TemporaryDirectory(prefix="clusterd-bench-") as d:
        cluster = Cluster(d)
        daemon = watcher = tracer = None
        try:
            nodes = cluster.start_many(["i0", "i1", "i2"], embedded=embedded)
            daemon = start_daemon(build, conf, d, cluster)
            watcher = cluster.mesh_watcher(nodes)
            wait_mesh(watcher)
            stop(watcher)
            watcher = None
            time.sleep(10)  # settle: every poller back at its steady interval
            before = context_switches(daemon.pid)
            time.sleep(seconds)
            wakeups = context_switches(daemon.pid) - before
            queries = None
            if shutil.which("strace"):  # a second window: tracing adds context switches
                log = os.path.join(d, "strace.log")
                tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=connect", "-o", log,
                                           "-p", str(daemon.pid)], stderr=subprocess.DEVNULL)
                time.sleep(seconds)
                tracer.terminate()
                tracer.wait(timeout=20)
                tracer = None
                with open(log) as f:
                    queries = sum(1 for line in f if f"htons({cluster.epmd_port})" in line)
            return wakeups, queries
        finally:
            stop(daemon, watcher, tracer)
            cluster.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--already", default="3,5,10")
    ap.add_argument("--launch", default="3,5")
    ap.add_argument("--embedded", action="store_true", help="start nodes with -mode embedded")
    ap.add_argument("--idle", type=float, default=0, help="also count idle wake-ups over S seconds")
    ap.add_argument("--conf", default=SHIPPED, help="the configuration (default: the shipped one)")
    a = ap.parse_args()
    mode = "embedded" if a.embedded else "interactive"
    shown = "conf/clusterd.toml as shipped" if os.path.samefile(a.conf, SHIPPED) else a.conf
    print(f"configuration: {shown}; changed only: {CHANGED}", flush=True)
    cases = [(int(n), False) for n in a.already.split(",") if n] + [(int(n), True) for n in a.launch.split(",") if n]
    for n, launch in cases:
        runs = [one_run(a.build_dir, a.conf, n, launch, a.embedded) for _ in range(a.runs)]
        times = [t for t, _ in runs]
        what = "launch everything → full mesh" if launch else "already running → full mesh"
        after = ""
        if launch:  # clusterd's part: the rest is the BEAM's boot (and the machine's load)
            late = [x for _, x in runs]
            after = (f"; after the last registration: median {statistics.median(late):.1f} ms"
                     f" range {min(late):.1f}–{max(late):.1f}")
        print(f"N={n:<3} {what:32} ({mode}): median {statistics.median(times):7.1f} ms"
              f"  range {min(times):.1f}–{max(times):.1f}  n={len(times)}{after}", flush=True)
    if a.idle > 0:
        wakeups, queries = idle_run(a.build_dir, a.conf, a.idle, a.embedded)
        q = "strace not installed" if queries is None else f"{queries} epmd queries"
        print(f"N=3   stable cluster, {a.idle:g} s: {wakeups} clusterd wake-ups, {q}", flush=True)


if __name__ == "__main__":
    main()
