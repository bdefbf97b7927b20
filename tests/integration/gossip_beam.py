"""BEAM nodes and clusterd daemons inside the namespaces of a netns.Network, for the gossip
tests and benchmark. Each namespace gets its own epmd (foreground, by PID: erl is told not to
start one, since a daemonised epmd would outlive the namespace) and `erl -name nI@ADDRESS`; a
hidden probe node in the first namespace checks erlang:nodes() on every node by rpc.
Every process is started here, kept by PID and stopped by PID; every wait is bounded.
"""
import os
import secrets
import subprocess

import harness
from beam import wait_for  # noqa: F401 (re-exported for the gossip tests)
from harness import Daemon, toml_string


def gossip_details(daemon, topology="gossip"):
    """The gossip topology's status details ({} while absent)."""
    return (harness.topology(daemon.status(), topology) or {}).get("details", {})


def count(details, key):
    return int(details.get(key, "0"))


class NetBeam:
    """epmd + BEAM node + clusterd per namespace of `net`, sharing one cookie."""

    def __init__(self, net, workdir, bin_dir):
        self.net = net
        self.dir = workdir
        self.bin_dir = bin_dir
        self.cookie = secrets.token_hex(16)
        self.cookie_file = os.path.join(workdir, "cookie")
        with open(self.cookie_file, "w") as f:
            f.write(self.cookie)
        os.chmod(self.cookie_file, 0o400)
        self.env = dict(os.environ, HOME=workdir)
        self.procs = []     # every process started, stopped in reverse order
        self.daemons = []
        self.nodes = {}     # namespace -> node name

    def _popen(self, ns, argv, log):
        out = open(os.path.join(self.dir, log), "w")
        p = subprocess.Popen(ns.cmd(argv), env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(p)
        return p

    def epmd_names(self, ns):
        out = subprocess.run(ns.cmd(["epmd", "-names"]), env=self.env, capture_output=True,
                             text=True, timeout=10).stdout
        return {line.split()[1] for line in out.splitlines() if line.startswith("name ")}

    def start_beams(self, namespaces=None):
        """Starts epmd and nI@ADDRESS in each namespace at once; waits until all registered."""
        namespaces = namespaces or self.net.nodes
        for ns in namespaces:
            self._popen(ns, ["epmd"], f"epmd-{ns.index}.log")
        for ns in namespaces:
            wait_for(lambda: subprocess.run(ns.cmd(["epmd", "-names"]), env=self.env,
                                            capture_output=True, timeout=10).returncode == 0,
                     10, f"epmd in {ns.name}")
        for ns in namespaces:
            name = f"n{ns.index}"
            self.nodes[ns] = f"{name}@{ns.address}"
            self._popen(ns, ["erl", "-name", self.nodes[ns], "-setcookie", self.cookie,
                             "-start_epmd", "false", "-noshell", "-noinput", "-kernel",
                             "inet_dist_use_interface", "{%s}" % ns.address.replace(".", ",")],
                        f"{name}.log")
        for ns in namespaces:
            wait_for(lambda: f"n{ns.index}" in self.epmd_names(ns), 30, f"n{ns.index} to register")
        return [self.nodes[ns] for ns in namespaces]

    def config(self, ns, gossip_options="", transport=None, clusterd='log_level = "debug"'):
        """clusterd's config for `ns`: gossip + the erlang transport managing nI (or a
        `transport` TOML table text instead); `clusterd` = the [clusterd] table's lines."""
        if transport is None:
            transport = f"""
[transports.beam]
plugin = "erlang"
node = {toml_string(self.nodes[ns])}
cookie_file = {toml_string(self.cookie_file)}
"""
        return f"""
[clusterd]
{clusterd}
{transport}
[topologies.gossip]
strategy = "gossip"
[topologies.gossip.config]
{gossip_options}
"""

    def daemon(self, ns, text, start_timeout=15.0):
        d = Daemon(text, ns.wrap_bin_dir(self.bin_dir), start_timeout=start_timeout)
        self.daemons.append(d)
        d.start()
        return d

    def mesh_watcher(self, nodes, timeout=30.0, probe_ns=None):
        """Starts a hidden probe node (in the first namespace) that connects to every node,
        prints READY, then polls erlang:nodes() on each every 5 ms and prints
        `MESH <unix ns>` once every node sees all the others, or `TIMEOUT <views>`. Popen."""
        probe_ns = probe_ns or self.net.nodes[0]
        nodes = sorted(nodes)
        calls = ",".join(f"'{n}'" for n in nodes)
        expr = (f"Ns = [{calls}], Want = fun(N) -> lists:sort(Ns -- [N]) end, "
                f"Deadline = erlang:monotonic_time(millisecond) + {int(timeout * 1000)}, "
                "View = fun(N) -> catch lists:sort(rpc:call(N, erlang, nodes, [], 1000)) end, "
                "Loop = fun L() -> "
                "  case lists:all(fun(N) -> View(N) =:= Want(N) end, Ns) of "
                "    true -> io:format(\"MESH ~b~n\", [os:system_time(nanosecond)]); "
                "    false -> case erlang:monotonic_time(millisecond) > Deadline of "
                "      true -> io:format(\"TIMEOUT ~p~n\", [[{N, View(N)} || N <- Ns]]); "
                "      false -> timer:sleep(5), L() end end end, "
                "[View(N) || N <- Ns], io:format(\"READY~n\"), Loop(), halt().")
        probe = f"probe{secrets.token_hex(3)}@{probe_ns.address}"
        p = subprocess.Popen(
            probe_ns.cmd(["erl", "-name", probe, "-setcookie", self.cookie, "-hidden",
                          "-start_epmd", "false", "-noshell", "-noinput", "-kernel",
                          "inet_dist_use_interface", "{%s}" % probe_ns.address.replace(".", ","),
                          "-eval", expr]),
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        return p

    @staticmethod
    def mesh_result(watcher, timeout):
        """Waits for a watcher's verdict: the MESH time (Unix ns), or AssertionError."""
        out = watcher.communicate(timeout=timeout)[0]
        for line in out.splitlines():
            if line.startswith("MESH "):
                return int(line.split()[1])
        raise AssertionError(f"no full mesh: {out.strip()[-2000:]}")

    def mesh(self, nodes, timeout=30.0):
        """Waits (bounded) until every node sees all the others; returns that Unix ns."""
        return self.mesh_result(self.mesh_watcher(nodes, timeout), timeout + 30)

    def close(self):
        for d in self.daemons:
            d.close()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
