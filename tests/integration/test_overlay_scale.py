#!/usr/bin/env python3
"""Integration test: the `partisan` overlay's scalable membership (membership = "swim") with
50 real clusterd processes over real TCP, in two network namespaces that the test creates and
removes (198.18.0.1 and 198.18.0.2, 25 daemons each; needs root and iproute2).

One scenario, in order (each step waits for a condition with a deadline):
  - every daemon is seeded with the first one only: all 50 list all 49 others up;
  - every daemon holds at most max_active_view + SLACK established TCP connections (counted
    from /proc/PID/net/tcp and the PID's socket fds), a full mesh would hold 98;
  - kill -9 of three daemons: every survivor reports each of them down;
  - a partition (the second namespace's link down: silence, no FIN): each side reports the
    other side down and keeps its own;
  - the partition heals: every survivor lists every other survivor up again, and the sides
    refuted the suspicions about themselves (the `refutations` status counts them).
And on loopback: a mesh node and a swim node refuse each other's channel, each logging the
reason (mixed-mode clusters are refused, not half-formed).

    test_overlay_scale.py --bin-dir <dir of clusterd, clusterctl> [--members 50]
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import netns  # noqa: E402
from harness import transport  # noqa: E402
from test_partisan import free_ports  # noqa: E402

SECRET = "integration-test-secret-0123456789"
MAX_ACTIVE_VIEW = 6
# Connections besides the active view: short-lived ones of probes of non-neighbours (ours and
# others'), relayed probes and push/pull exchanges, each closed once idle for 2 x probe_timeout,
# and for a moment both connections of a pair that dialed each other.
SLACK = 12
BASE_PORT = 9500
SWIM = ('membership = "swim"\n'
        'probe_interval = "500ms"\n'
        'probe_timeout = "200ms"\n'
        'dissemination_interval = "100ms"\n'
        'push_pull_interval = "5s"\n'
        f'max_active_view = {MAX_ACTIVE_VIEW}\n'
        'connect_timeout = "2s"\n')


def config(name, address, port, seed):
    return "\n".join([
        "[transports.overlay]", 'plugin = "partisan"', f'node_name = "{name}"',
        f'listen = "{address}:{port}"', f'secret = "{SECRET}"', SWIM,
        "[topologies.seed]", 'strategy = "epmd"', 'transport = "overlay"',
        "[topologies.seed.config]", f'hosts = ["{seed}"]', "epmd_check = false"]) + "\n"


def up_members(status):
    return set(transport(status, "overlay")["connected"])


def details(status):
    return transport(status, "overlay")["details"]


def established_tcp(pid):
    """TCP connections in state ESTABLISHED held by `pid` (its namespace's tables, its fds)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


class Member:
    def __init__(self, name, ns, port, seed):
        self.name, self.ns, self.port, self.seed = name, ns, port, seed
        self.daemon = None

    def start(self, bin_dir):
        self.daemon = harness.Daemon(config(self.name, self.ns.address, self.port, self.seed),
                                     bin_dir)
        self.daemon.start()

    def stop(self):
        if self.daemon is not None:
            self.daemon.close()


class ScalableMembership(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        self.count = harness.ARGS.members
        self.members = []
        self.net = netns.Network(2)
        self.net.create()

    def tearDown(self):
        for m in self.members:
            m.stop()  # before the namespaces go
        self.net.close()

    def wait_all(self, members, predicate, timeout, what):
        """Waits for predicate(member, status) on every member; one deadline for all."""
        deadline = time.monotonic() + timeout
        for m in members:
            left = max(0.5, deadline - time.monotonic())
            try:
                m.daemon.wait_until(lambda st, m=m: predicate(m, st), timeout=left,
                                    what=f"{m.name}: {what}")
            except harness.WaitTimeout as e:
                raise AssertionError(f"{what}: {str(e)[:4000]}") from None

    def connection_counts(self, members):
        return {m.name: established_tcp(m.daemon.pid) for m in members}

    def test_fifty_daemons_form_detect_failures_and_heal_a_partition(self):
        half = self.count // 2
        sides = [self.net.nodes[0]] * half + [self.net.nodes[1]] * (self.count - half)
        names = [f"s{i}@{ns.address}:{BASE_PORT + i}" for i, ns in enumerate(sides)]
        bin_dirs = {ns.name: ns.wrap_bin_dir(harness.ARGS.bin_dir) for ns in self.net.nodes}
        for i, ns in enumerate(sides):
            m = Member(names[i], ns, BASE_PORT + i, names[1] if i == 0 else names[0])
            self.members.append(m)
            m.start(bin_dirs[ns.name])

        # Formation from one seed.
        began = time.monotonic()
        everyone = set(names)
        self.wait_all(self.members, lambda m, st: up_members(st) == everyone - {m.name},
                      timeout=60, what=f"lists all {self.count - 1} others up")
        formed = time.monotonic() - began
        for m in self.members:
            self.assertEqual(details(m.daemon.status())["membership"], "swim")

        # The connection bound: the joins' short-lived connections to the seed close within a
        # few seconds; then it holds at every sample.
        bound = MAX_ACTIVE_VIEW + SLACK
        deadline = time.monotonic() + 20
        while max(self.connection_counts(self.members).values()) > bound:
            self.assertLess(time.monotonic(), deadline,
                            f"connections per daemon: {self.connection_counts(self.members)}")
            time.sleep(0.2)
        most = 0
        for _ in range(10):
            counts = self.connection_counts(self.members)
            most = max(most, max(counts.values()))
            over = {n: c for n, c in counts.items() if c > bound}
            self.assertEqual(over, {}, f"more than {MAX_ACTIVE_VIEW} + {SLACK} connections")
            time.sleep(0.3)  # spacing of the samples, not synchronisation
        print(f"\nconnections per daemon in the steady state: {sorted(counts.values())}")
        members_reply = self.members[3].daemon.request("members", transport="overlay")
        states = {m["state"] for m in members_reply["members"]}
        self.assertEqual(len(members_reply["members"]), self.count - 1)
        self.assertLessEqual(states, {"up", "suspect"})
        listed = self.members[3].daemon.clusterctl("members", "--transport", "overlay")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(sum(name in listed.stdout for name in names), self.count,
                         listed.stdout)  # the 49 members and itself (the "self" line)

        # kill -9 of three members: every survivor reports them down.
        victims = [self.members[i] for i in (half // 2, half + 1, self.count - 2)]
        for v in victims:
            v.daemon.proc.kill()  # SIGKILL, by PID
            v.daemon.proc.wait(10)
        killed_at = time.monotonic()
        survivors = [m for m in self.members if m not in victims]
        gone = {v.name for v in victims}
        self.wait_all(survivors, lambda m, st: not (up_members(st) & gone), timeout=45,
                      what="reports the killed members down")
        detected = time.monotonic() - killed_at
        for m in survivors[:5]:
            reply = m.daemon.request("members", transport="overlay")
            for entry in reply["members"]:
                if entry["node"] in gone:
                    self.assertEqual(entry["state"], "down", entry)
        self.assertTrue(any("not refuted within" in m.daemon.log_text() for m in survivors),
                        "a suspicion timed out somewhere (the others may learn it by gossip)")

        # A partition: the second namespace's link goes down.
        left_side = [m for m in survivors if m.ns is self.net.nodes[0]]
        right_side = [m for m in survivors if m.ns is self.net.nodes[1]]
        refutations_before = sum(int(details(m.daemon.status()).get("refutations", 0))
                                 for m in survivors)
        self.net.partition(self.net.nodes[1])
        cut_at = time.monotonic()
        for side, other in ((left_side, right_side), (right_side, left_side)):
            own = {m.name for m in side}
            self.wait_all(side, lambda m, st, own=own: up_members(st) == own - {m.name},
                          timeout=60, what="sees exactly its own side up")
        split = time.monotonic() - cut_at
        self.assertLessEqual(max(self.connection_counts(survivors).values()),
                             MAX_ACTIVE_VIEW + SLACK)

        # Healed: both sides converge again, with refuted suspicions.
        self.net.heal(self.net.nodes[1])
        healed_at = time.monotonic()
        alive = {m.name for m in survivors}
        self.wait_all(survivors, lambda m, st: up_members(st) == alive - {m.name}, timeout=90,
                      what="lists every survivor up after the heal")
        healed = time.monotonic() - healed_at
        refutations_after = sum(int(details(m.daemon.status()).get("refutations", 0))
                                for m in survivors)
        self.assertGreater(refutations_after, refutations_before,
                           "the members declared dead refuted it")
        most = max(most, max(self.connection_counts(survivors).values()))
        print(f"\n{self.count} daemons: formed in {formed:.1f} s, 3 kills detected by all in "
              f"{detected:.1f} s, partition seen in {split:.1f} s, healed in {healed:.1f} s, "
              f"at most {most} connections per daemon (bound {MAX_ACTIVE_VIEW + SLACK})",
              flush=True)


class MixedModes(unittest.TestCase):
    """A mesh node and a swim node refuse each other's channel, with the reason logged."""

    def test_a_mesh_node_and_a_swim_node_refuse_each_other(self):
        ports = free_ports(2)
        names = [f"mesh@127.0.0.1:{ports[0]}", f"swim@127.0.0.1:{ports[1]}"]
        daemons = []
        try:
            for i, mode in enumerate(("mesh", "swim")):
                text = config(names[i], "127.0.0.1", ports[i], names[1 - i])
                if mode == "mesh":
                    text = text.replace(SWIM, "")
                daemons.append(harness.Daemon(text, harness.ARGS.bin_dir))
                daemons[-1].start()
            mesh, swim = daemons
            # Each refuses the other's channel after the handshake, and logs it (the dialer
            # may see only the reset: it was already writing).
            mesh.wait_until(lambda st: f"channel 'swim' from {names[1]}: this node runs "
                            "membership = mesh" in mesh.log_text(), timeout=20,
                            what="the mesh node refuses the swim node")
            swim.wait_until(lambda st: f"channel 'membership' from {names[0]}: this node runs "
                            "membership = swim" in swim.log_text(), timeout=20,
                            what="the swim node refuses the mesh node")
            self.assertEqual(up_members(mesh.status()), set())
            self.assertEqual(up_members(swim.status()), set())
        finally:
            for d in daemons:
                d.close()


def add_arguments(parser):
    parser.add_argument("--members", type=int, default=50, help="daemons (even, 10..100)")


if __name__ == "__main__":
    sys.exit(harness.run_tests([ScalableMembership, MixedModes], description=__doc__,
                               add_arguments=add_arguments))
