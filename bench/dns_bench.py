#!/usr/bin/env python3
"""DNS strategies: record change → transport connect latency, and the daemon's CPU per round.

usage: bench/dns_bench.py BUILD_DIR [--runs N] [--records N ...] [--partial]

A real dnsmasq on 127.0.0.1 (tests/integration/local_servers.py) serves N A records for
app.test; clusterd runs dns_poll (polling_interval 100 ms) with the `command` transport, whose
connect command appends its node to a file.
- discovery: clusterd exec → all N nodes connected (status polled every 10 ms).
- change: a record added (hosts file rewritten + SIGHUP) → its connect command ran; bounded
  by the polling interval (libcluster: 5 s by default, 2.5 s on average).
- cpu/round: the daemon's user+system CPU over 3 idle seconds of 100 ms rounds, per round.
--partial: the same with ip_family "both" (the default) for a name outside dnsmasq's local
domains, whose AAAA lookups dnsmasq refuses (A answered, AAAA REFUSED): the A nodes are
connected all the same (before, clusterd counted the whole round as failed and connected none).
Medians (and ranges) of N runs. Loopback only; every process is started here and stopped by PID.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
from local_servers import Dnsmasq  # noqa: E402

CONNECT_SH = "#!/bin/sh\necho \"$1\" >> {out}\n"


def addresses(n):
    return [f"198.18.{1 + i // 250}.{1 + i % 250}" for i in range(n)]


def wait(check, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


def cpu_seconds(pid):
    """CPU time of all the process's threads, from schedstat (ns; the clock ticks of
    /proc/PID/stat are too coarse for one round)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return total / 1e9


def one_run(bin_dir, n, partial=False, a_cap=True):
    with tempfile.TemporaryDirectory(prefix="clusterd-dnsbench-") as work:
        out = os.path.join(work, "connected")
        script = os.path.join(work, "connect.sh")
        with open(script, "w") as f:
            f.write(CONNECT_SH.format(out=out))
        os.chmod(script, 0o755)
        name = "app.partial" if partial else "app.test"  # .partial: not a local domain
        dns = Dnsmasq(work, hosts={name: addresses(n)})
        try:
            config = "\n".join([
                "[transports.cmd]", 'plugin = "command"', f'connect = ["{script}"]',
                "[topologies.t]", 'strategy = "dns_poll"', 'transport = "cmd"',
                "[topologies.t.config]", f'query = "{name}"', 'node_basename = "app"',
                'ip_family = "both"' if partial else 'ip_family = "ipv4"',
                f'resolver = "{dns.address}"', 'polling_interval = "100ms"', ""])
            begin = time.monotonic()
            with harness.Daemon(config, bin_dir) as d:
                expect = min(n, 256) if a_cap else n
                st = wait(lambda: (lambda s: len(harness.connected_nodes(s, "t")) >= expect and
                                   s)(d.status()), 60, "all nodes connected")
                discovery = time.monotonic() - begin
                found = len(harness.node_states(st, "t"))
                # CPU of idle rounds.
                c0, t0 = cpu_seconds(d.pid), time.monotonic()
                time.sleep(3.0)  # measuring window, not synchronisation
                rounds = (time.monotonic() - t0) / 0.1
                cpu_per_round = (cpu_seconds(d.pid) - c0) / rounds
                # A record appears.
                extra = "198.18.99.1"
                t1 = time.monotonic()
                dns.set_hosts({name: addresses(n) + [extra]})
                wait(lambda: os.path.exists(out) and f"app@{extra}\n" in open(out).read(), 10,
                     "the new node's connect")
                change = time.monotonic() - t1
        finally:
            dns.stop()
    return discovery, change, cpu_per_round, found


def fmt(values, unit, scale):
    return (f"{statistics.median(values) * scale:.1f} {unit} "
            f"({min(values) * scale:.1f}–{max(values) * scale:.1f})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build_dir")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--records", type=int, nargs="+", default=[3, 100, 250])
    p.add_argument("--partial", action="store_true",
                   help="A answered, AAAA refused (ip_family both)")
    a = p.parse_args()
    harness.ARGS = argparse.Namespace(bin_dir=os.path.join(a.build_dir, "bin"))
    bin_dir = os.path.abspath(os.path.join(a.build_dir, "bin"))
    for n in a.records:
        runs = [one_run(bin_dir, n, a.partial) for _ in range(a.runs)]
        what = "A records, AAAA refused" if a.partial else "A records"
        print(f"{n} {what}: exec → all connected {fmt([r[0] for r in runs], 'ms', 1e3)}; "
              f"record added → connect {fmt([r[1] for r in runs], 'ms', 1e3)}; "
              f"daemon CPU per 100 ms round {fmt([r[2] for r in runs], 'µs', 1e6)}; "
              f"nodes found {runs[0][3]}")


if __name__ == "__main__":
    main()
