"""Real BEAM nodes for integration tests: a private epmd on a free port, `erl` nodes on
127.0.0.1 registered with it, and an independent hidden probe node that asks each node for
erlang:nodes() by rpc. Every process is started here, kept by PID and stopped by PID; every
wait is bounded. Nothing listens beyond 127.0.0.1.
"""
import os
import secrets
import socket
import subprocess
import tempfile
import time
import unittest

import harness


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """A private epmd plus BEAM nodes sharing one generated cookie."""

    def __init__(self, workdir, cookie=None):
        self.dir = workdir
        self.cookie = cookie or secrets.token_hex(16)
        self.cookie_file = os.path.join(workdir, "cookie")
        with open(self.cookie_file, "w") as f:
            f.write(self.cookie)
        os.chmod(self.cookie_file, 0o400)
        self.epmd_port = free_port()
        self.env = dict(os.environ, ERL_EPMD_PORT=str(self.epmd_port), HOME=workdir)
        self.nodes = {}  # name -> Popen
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._epmd_answers(), 10, "epmd to listen")

    def _epmd_answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.epmd_port), timeout=1):
                return True
        except OSError:
            return False

    def registered(self):
        """Alive names registered in the private epmd (NAMES request, spoken here directly)."""
        with socket.create_connection(("127.0.0.1", self.epmd_port), timeout=2) as s:
            s.sendall(b"\x00\x01\x6e")
            data = b""
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        names = set()
        for line in data[4:].decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "name":
                names.add(parts[1])
        return names

    def start(self, name, cookie=None, wait=True, embedded=False, args=()):
        """Starts name@127.0.0.1 and (by default) waits until epmd has it. `embedded` starts
        the node in embedded mode (code preloaded, as releases run); `args` are added to erl's
        command line."""
        node = f"{name}@127.0.0.1"
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        mode = ["-mode", "embedded"] if embedded else []
        self.nodes[node] = subprocess.Popen(
            ["erl", "-name", node, "-setcookie", cookie or self.cookie, "-noshell", "-noinput",
             "-kernel", "inet_dist_use_interface", "{127,0,0,1}"] + mode + list(args),
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            wait_for(lambda: name in self.registered(), 20, f"{node} to register")
        return node

    def start_many(self, names, embedded=False):
        """Starts several nodes at once, then waits for all of them."""
        nodes = [self.start(n, wait=False, embedded=embedded) for n in names]
        wait_for(lambda: set(names) <= self.registered(), 30, f"{names} to register")
        return nodes

    def kill(self, node, sig=9):
        proc = self.nodes.pop(node)
        proc.send_signal(sig)
        proc.wait(timeout=20)
        wait_for(lambda: node.split("@")[0] not in self.registered(), 10, f"{node} to unregister")

    def views(self, nodes=None):
        """{node: sorted erlang:nodes()} as an independent hidden probe sees them, by rpc."""
        nodes = sorted(nodes or self.nodes)
        calls = ",".join(f"'{n}'" for n in nodes)
        expr = ("[io:format(\"~s ~w~n\", [N, catch lists:sort(rpc:call(N, erlang, nodes, [], 5000))])"
                f" || N <- [{calls}]], halt().")
        probe = f"probe{secrets.token_hex(3)}@127.0.0.1"
        out = subprocess.run(
            ["erl", "-name", probe, "-setcookie", self.cookie, "-hidden", "-noshell", "-noinput",
             "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-eval", expr],
            env=self.env, capture_output=True, text=True, timeout=60).stdout
        views = {}
        for line in out.splitlines():
            node, _, rest = line.partition(" ")
            views[node] = sorted(x.strip("'") for x in rest.strip("[]").split(",") if x)
        return views

    def mesh_watcher(self, nodes, timeout_s=60):
        """Starts a hidden probe that polls erlang:nodes() on every node every 2 ms and prints
        `MESH <unix ns>` once every node sees all the others (or `TIMEOUT`). It prints `READY`
        once it is connected to every node (so its own connection set-up is not measured).
        Returns the Popen."""
        nodes = sorted(nodes)
        calls = ",".join(f"'{n}'" for n in nodes)
        expr = (f"Ns = [{calls}], Want = fun(N) -> lists:sort(Ns -- [N]) end, "
                f"Deadline = erlang:monotonic_time(millisecond) + {int(timeout_s * 1000)}, "
                "Loop = fun L() -> "
                "  case lists:all(fun(N) -> catch lists:sort(rpc:call(N, erlang, nodes, [], 1000)) =:= Want(N) end, Ns) of "
                "    true -> io:format(\"MESH ~b~n\", [os:system_time(nanosecond)]); "
                "    false -> case erlang:monotonic_time(millisecond) > Deadline of "
                "      true -> io:format(\"TIMEOUT~n\"); false -> timer:sleep(2), L() end end end, "
                "[catch rpc:call(N, erlang, nodes, [], 1000) || N <- Ns], io:format(\"READY~n\"), "
                "Loop(), halt().")
        probe = f"watch{secrets.token_hex(3)}@127.0.0.1"
        return subprocess.Popen(
            ["erl", "-name", probe, "-setcookie", self.cookie, "-hidden", "-noshell", "-noinput",
             "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-eval", expr],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def full_mesh(self, nodes=None):
        nodes = sorted(nodes or self.nodes)
        views = self.views(nodes)
        return all(views.get(n) == sorted(set(nodes) - {n}) for n in nodes)

    def close(self):
        for node in list(self.nodes):
            proc = self.nodes.pop(node)
            proc.kill()
            proc.wait(timeout=20)
        self.epmd.kill()
        self.epmd.wait(timeout=10)


class ClusterTestCase(unittest.TestCase):
    """A test with its own epmd + BEAM nodes (self.cluster) and the clusterd daemons it
    starts, all stopped afterwards."""
    MESH_TIMEOUT = 30
    WORK_PREFIX = "clusterd-beam-"

    def setUp(self):
        self.work = tempfile.TemporaryDirectory(prefix=self.WORK_PREFIX)
        self.cluster = Cluster(self.work.name)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.close()
        self.cluster.close()
        self.work.cleanup()

    def daemon(self, text):
        d = harness.Daemon(text, harness.ARGS.bin_dir)
        self.daemons.append(d)
        d.__enter__()
        return d

    def wait_mesh(self, nodes, timeout=None):
        wait_for(lambda: self.cluster.full_mesh(nodes), timeout or self.MESH_TIMEOUT,
                 f"full mesh of {nodes}", interval=0.2)
