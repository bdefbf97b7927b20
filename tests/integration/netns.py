"""Private networks of Linux network namespaces for tests that must not touch a real interface
(multicast, broadcast, partitions). Needs root and `ip` (iproute2). Python 3 stdlib only.

    with Network(3) as net:                       # hub namespace with a bridge + 3 node namespaces
        ns = net.nodes[0]                         # ns.name, ns.address ("198.18.0.1"), ns.index
        subprocess.run(ns.cmd(["ip", "addr"]))    # ["ip", "netns", "exec", NAME, ...]
        bin_dir = ns.wrap_bin_dir(real_bin_dir)   # bin_dir/clusterd runs inside ns (same PID)
        net.partition(ns)  / net.heal(ns)         # cut / restore ns's link to the hub

Layout: a hub namespace holds bridge br0 (multicast snooping off, so every port gets every
group); each node namespace has lo and eth0, a veth whose peer is a port of br0, an address
198.18.0.<index>/24 (broadcast 198.18.0.255) and a route 224.0.0.0/4 dev eth0 for multicast.
Nothing is created in the caller's namespace, so no packet can leave through a real interface.
Names carry the PID and a random tag, so parallel runs never collide; everything is deleted on
close(), on `with` exit and at interpreter exit (atexit), whichever comes first. Processes
started in a namespace are the caller's to stop (by PID) before close().
"""
import atexit
import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile

SUBNET = ipaddress.ip_network("198.18.0.0/24")
_ALLOWED = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking range
_live = set()


def _ip(*args, check=True):
    """Runs `ip ARGS`; raises with ip's message on failure when `check`."""
    proc = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=20, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


class Namespace:
    """One node namespace of a Network."""

    def __init__(self, network, index):
        self.network = network
        self.index = index
        self.name = f"{network.tag}-n{index}"
        self.address = str(SUBNET.network_address + index)
        self.port = f"p{index}"  # the veth end on the hub's bridge
        self._wrappers = []

    def cmd(self, argv):
        """argv run inside this namespace (`ip netns exec` execs it: the PID stays the same)."""
        return ["ip", "netns", "exec", self.name, *[str(a) for a in argv]]

    def wrap_bin_dir(self, bin_dir, names=("clusterd", "clusterctl")):
        """A temporary directory whose `names` are scripts exec'ing the real ones inside this
        namespace, for code that takes a bin dir (harness.Daemon). Removed with the network."""
        d = tempfile.mkdtemp(prefix=f"{self.name}-bin-")
        self._wrappers.append(d)
        for name in names:
            real = os.path.join(os.path.abspath(str(bin_dir)), name)
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(f"#!/bin/sh\nexec ip netns exec {self.name} {real} \"$@\"\n")
            os.chmod(path, 0o755)
        return d

    def _remove_wrappers(self):
        for d in self._wrappers:
            shutil.rmtree(d, ignore_errors=True)
        self._wrappers = []


class Network:
    """A hub with a bridge and `count` node namespaces (see the module docstring)."""

    def __init__(self, count):
        if not 1 <= count <= 200:
            raise ValueError("1..200 namespaces")
        self.tag = f"cdt{os.getpid()}{secrets.token_hex(2)}"
        self.hub = f"{self.tag}-hub"
        self.nodes = [Namespace(self, i + 1) for i in range(count)]
        for ns in self.nodes:
            assert ipaddress.ip_address(ns.address) in _ALLOWED
        self.broadcast = str(SUBNET.broadcast_address)
        self._created = []

    def __enter__(self):
        self.create()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def create(self):
        _live.add(self)
        try:
            self._add_ns(self.hub)
            _ip("-n", self.hub, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for ns in self.nodes:
                self._add_ns(ns.name)
                _ip("-n", ns.name, "link", "set", "lo", "up")
                # Both ends are created directly in their namespaces: never in ours.
                _ip("-n", self.hub, "link", "add", ns.port, "type", "veth", "peer", "name", "eth0",
                    "netns", ns.name)
                _ip("-n", self.hub, "link", "set", ns.port, "master", "br0", "up")
                _ip("-n", ns.name, "addr", "add", f"{ns.address}/{SUBNET.prefixlen}", "brd",
                    self.broadcast, "dev", "eth0")
                _ip("-n", ns.name, "link", "set", "eth0", "up")
                _ip("-n", ns.name, "route", "add", "224.0.0.0/4", "dev", "eth0")
        except BaseException:
            self.close()
            raise

    def _add_ns(self, name):
        _ip("netns", "add", name)
        self._created.append(name)

    def partition(self, ns):
        """Cuts `ns` off the hub (its bridge port goes down)."""
        _ip("-n", self.hub, "link", "set", ns.port, "down")

    def heal(self, ns):
        """Restores `ns`'s link to the hub."""
        _ip("-n", self.hub, "link", "set", ns.port, "up")

    def close(self):
        """Deletes every namespace created (their veths go with them). Idempotent."""
        for name in reversed(self._created):
            _ip("netns", "del", name, check=False)
        self._created = []
        for ns in self.nodes:
            ns._remove_wrappers()
        _live.discard(self)


def _close_all():
    for net in list(_live):
        net.close()


atexit.register(_close_all)
