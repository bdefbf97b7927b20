#!/usr/bin/env python3
"""postgres strategy: PostgreSQL NOTIFY → transport connect latency, and a new daemon → known.

usage: bench/postgres_bench.py BUILD_DIR [--runs N] [--daemons K] [--plugin-dir DIR]

A real PostgreSQL (initdb + pg_ctl in a temporary directory, as tests/integration/
test_postgres.py starts it; as `postgres` when run as root) on a free loopback port; the
third-party plugin built against BUILD_DIR's SDK (in ./postgres-work, as the test does);
daemons with the `command` transport, whose connect command (bash) appends "NODE
$EPOCHREALTIME" to a file, and the default heartbeat_interval (5 s).
- notify → connect: one persistent psql session sends libcluster_postgres's exact SQL,
  `NOTIFY "chan", 'nI@127.0.0.1'`; the time from writing it to psql's stdin to the daemon's
  connect command running for that node.
- join: K daemons run; one more is started: exec → every other daemon's connect for it ran,
  and → its own connects for all K ran (the others answer a new node at once, so this is one
  round trip, not up to heartbeat_interval).
Medians (and ranges) of N runs. Loopback only; every process is started here and stopped by
PID.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
import test_postgres  # noqa: E402
from harness import toml_list, toml_string  # noqa: E402
from test_command_transport import poll  # noqa: E402

CONNECT_SH = "#!/bin/bash\necho \"$1 $2 $EPOCHREALTIME\" >> {out}\n"


def wait(check, timeout, what):
    return poll(check, timeout, what, interval=0.002)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="clusterd-pgbench-")
        self.out = os.path.join(self.tmp, "connects")
        self.connect = os.path.join(self.tmp, "connect.sh")
        with open(self.connect, "w", encoding="utf-8") as f:
            f.write(CONNECT_SH.format(out=self.out))
        os.chmod(self.connect, 0o755)
        self.server = test_postgres.PgServer()
        self.daemons = []

    def close(self):
        for d in self.daemons:
            d.close()
        self.server.close()

    def connects(self):
        """[(daemon node, connected node, unix time)] of every connect run so far."""
        try:
            with open(self.out, encoding="utf-8") as f:
                return [(a, b, float(t)) for a, b, t in (ln.split() for ln in f if ln.strip())]
        except FileNotFoundError:
            return []

    def start_daemon(self, node):
        text = "\n".join([
            "[clusterd]", f"plugin_path = {toml_list([test_postgres.Postgres.plugin_dir])}", "",
            "[transports.cmd]", 'plugin = "command"',
            f"connect = {toml_list([self.connect, node])}", 'disconnect = ["/bin/true"]',
            f"local_node = {toml_string(node)}", "",
            "[topologies.p]", 'strategy = "postgres"', 'transport = "cmd"',
            "[topologies.p.config]", f"channel_name = {toml_string(test_postgres.CHANNEL)}",
            f"socket_dir = {toml_string(self.server.socket_dir)}",
            f"port = {self.server.port}", 'username = "admin"', 'database = "postgres"']) + "\n"
        d = harness.Daemon(text, self.args.bin_dir)
        self.daemons.append(d)
        d.start()
        return d

    def notify_to_connect(self, runs):
        self.start_daemon("bench@127.0.0.1")
        wait(lambda: self.server.clusterd_backends() == 1, 20, "LISTEN")
        psql = subprocess.Popen(
            [os.path.join(self.server.bin, "psql"), "-X", "-q", "-h", self.server.socket_dir,
             "-p", str(self.server.port), "-U", "admin", "-d", "postgres"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            text=True)
        latencies = []
        try:
            for i in range(runs + 1):  # the first one warms psql up
                node = f"n{i}@127.0.0.1"
                begin = time.time()
                psql.stdin.write(f"NOTIFY \"{test_postgres.CHANNEL}\", '{node}';\n")
                psql.stdin.flush()
                at = wait(lambda: next((t for _, n, t in self.connects() if n == node), None),
                          20, f"the connect of {node}")
                if i > 0:
                    latencies.append((at - begin) * 1000)
        finally:
            psql.stdin.close()
            psql.wait(10)
        for d in self.daemons:
            d.close()
        self.daemons = []
        return latencies

    def join(self, runs, k):
        others = [f"d{i}@127.0.0.1" for i in range(k)]
        for node in others:
            self.start_daemon(node)
        known, knows = [], []
        for r in range(runs):
            node = f"new{r}@127.0.0.1"
            begin = time.time()
            d = self.start_daemon(node)
            by_others = wait(lambda: [t for a, n, t in self.connects() if n == node]
                             if len({a for a, n, _ in self.connects() if n == node}) == k
                             else None, 30, f"{node} known by all")
            by_new = wait(lambda: [t for a, n, t in self.connects() if a == node]
                          if len({n for a, n, _ in self.connects() if a == node}) >= k
                          else None, 30, f"{node} knows all")
            known.append((max(by_others) - begin) * 1000)
            knows.append((max(by_new) - begin) * 1000)
            d.close()
            self.daemons.remove(d)
        return known, knows


def summary(values):
    return (f"median {statistics.median(values):.1f} ms (range {min(values):.1f}-"
            f"{max(values):.1f}, {len(values)} runs)")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--plugin-dir", help="use the clusterd-postgres.so there instead of "
                        "building it")
    args = parser.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    args.bin_dir = os.path.join(args.build_dir, "bin")
    harness.ARGS = argparse.Namespace(build_dir=args.build_dir, cmake="cmake",
                                      bin_dir=args.bin_dir, plugin_dir=args.plugin_dir)
    test_postgres.build_plugin()
    bench = Bench(args)
    try:
        latencies = bench.notify_to_connect(args.runs)
        print(f"NOTIFY (psql, libcluster_postgres's SQL) -> connect running: {summary(latencies)}")
        known, knows = bench.join(max(3, args.runs // 3), args.daemons)
        print(f"new daemon exec -> known by all {args.daemons} others: {summary(known)}")
        print(f"new daemon exec -> it knows all {args.daemons} others: {summary(knows)}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
