#!/usr/bin/env python3
"""The gossip strategy in private network namespaces (netns.py; needs root): real clusterd
daemons, real BEAM nodes driven by the erlang transport, real UDP multicast and broadcast on
veth links in 198.18.0.0/24. Nothing is sent on a real interface; every namespace and process
is created here and removed again.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from gossip_beam import NetBeam, count, gossip_details, wait_for  # noqa: E402
from netns import Network  # noqa: E402
from harness import toml_list, toml_string, topology  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "gossip")
UDP = [sys.executable, os.path.join(HERE, "gossip_udp.py")]
GROUP, PORT = "233.252.1.32", 45892
KEY_A = "gossip-key-A-0123456789abcdef"
KEY_B = "gossip-key-B-0123456789abcdef"


def command_transport(ns, node=None):
    """A transport that accepts every connect (so the test sees what gossip reports)."""
    local = f'local_node = {toml_string(node)}\n' if node else ""
    return f"""
[transports.beam]
plugin = "command"
connect = ["/bin/true"]
{local}"""


class GossipCase(unittest.TestCase):
    NAMESPACES = 2

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("network namespaces need root")
        self.work = tempfile.TemporaryDirectory(prefix="clusterd-gossip-")
        self.net = Network(self.NAMESPACES)
        self.net.create()
        self.beam = NetBeam(self.net, self.work.name, harness.ARGS.bin_dir)

    def tearDown(self):
        try:
            self.beam.close()
        finally:
            self.net.close()
            self.work.cleanup()

    def udp(self, ns, *args, timeout=30):
        return subprocess.run(ns.cmd(UDP + list(args)), capture_output=True, text=True,
                              timeout=timeout, check=True).stdout

    def lone_daemon(self, ns, options="", node=None):
        """clusterd in `ns` with the command transport, announcing `node` (default cI@ADDRESS)."""
        node = node or f"c{ns.index}@{ns.address}"
        return self.beam.daemon(ns, self.beam.config(ns, options, command_transport(ns, node)))


class BeamMeshTest(GossipCase):
    """3 namespaces, each with a BEAM node and clusterd (gossip + erlang transport)."""
    NAMESPACES = 3

    def mesh_with(self, options):
        nodes = self.beam.start_beams()
        daemons = [self.beam.daemon(ns, self.beam.config(ns, options)) for ns in self.net.nodes]
        self.beam.mesh(nodes)
        for d in daemons:
            st = d.wait_until(lambda s: count(topology(s, "gossip")["details"], "peers") == 2,
                              timeout=10, what="2 peers heard")
            self.assertEqual(topology(st, "gossip")["state"], "running")
            self.assertEqual(count(topology(st, "gossip")["details"], "dropped"), 0)
        return daemons

    def test_multicast(self):
        daemons = self.mesh_with("")
        self.assertIn("multicast, ttl 1", gossip_details(daemons[0])["socket"])

    def test_broadcast_only(self):
        daemons = self.mesh_with(f"broadcast_only = true\nmulticast_addr = "
                                 f"{toml_string(self.net.broadcast)}")
        self.assertIn("(broadcast)", gossip_details(daemons[0])["socket"])

    def test_libcluster_secret(self):
        daemons = self.mesh_with('compat = "libcluster"\nsecret = "s3cret"')
        self.assertIn("AES-256-CBC", gossip_details(daemons[0])["mode"])
        for d in daemons:
            self.assertNotIn("s3cret", d.log_text())

    def test_authenticated_keys(self):
        # From a file, as secrets should be given: one key per line.
        path = os.path.join(self.work.name, "gossip.keys")
        with open(path, "w") as f:
            f.write(f"{KEY_A}\n{KEY_B}\n")
        daemons = self.mesh_with(f"keys_file = {toml_string(path)}")
        self.assertIn("AES-256-GCM", gossip_details(daemons[0])["mode"])
        for d in daemons:
            self.assertNotIn(KEY_A, d.log_text())
            self.assertNotIn(KEY_B, d.log_text())


class SecurityTest(GossipCase):
    """clusterd only (command transport): what is refused, counted and logged."""

    def test_mismatched_keys_do_not_join(self):
        a, b = self.net.nodes
        da = self.lone_daemon(a, f"keys = {toml_list([KEY_A])}\nheartbeat_interval = \"200ms\"")
        db = self.lone_daemon(b, f"keys = {toml_list([KEY_B])}\nheartbeat_interval = \"200ms\"")
        for d in (da, db):
            d.wait_until(lambda s: count(topology(s, "gossip")["details"], "dropped.unknown_key")
                         >= 3, timeout=15, what="3 heartbeats dropped for an unknown key")
            details = gossip_details(d)
            self.assertEqual(count(details, "peers"), 0)
            self.assertEqual(harness.node_states(d.status(), "gossip"), {})
            self.assertRegex(d.log_text(), r"dropped a datagram from 198\.18\.0\.\d:45892: "
                                           r"unknown_key \(a different key\?\)")

    def test_mismatched_libcluster_secrets_do_not_join(self):
        a, b = self.net.nodes
        opts = 'compat = "libcluster"\nheartbeat_interval = "200ms"\nsecret = '
        da = self.lone_daemon(a, opts + '"one secret"')
        db = self.lone_daemon(b, opts + '"another secret"')
        for d in (da, db):
            st = d.wait_until(lambda s: count(topology(s, "gossip")["details"], "dropped") >= 3,
                              timeout=15, what="3 heartbeats dropped")
            self.assertEqual(count(topology(st, "gossip")["details"], "peers"), 0)
            self.assertIn("dropped a datagram from 198.18.0.", d.log_text())

    def test_secret_needs_compat_and_keys_must_be_long(self):
        """Refused by `clusterd check` (as at start and reload), never showing the secret."""
        a = self.net.nodes[0]
        for options, line, pattern in [
                ('secret = "x"', 'secret = "x"', r"secret: .*compat = \\?\"libcluster"),
                ('keys = ["short"]', 'keys = ["short"]', r"keys: key #1 is shorter than 16 bytes")]:
            text = self.beam.config(a, options, command_transport(a, f"c0@{a.address}"))
            rc, out, path, lines = harness.check_config(text, harness.ARGS.bin_dir)
            self.assertEqual(rc, 1, out)
            at = harness.problem_at(lines, path, line, line.split(" = ")[1])
            self.assertRegex(out, rf"(?m)^{re.escape(at)}topologies\.gossip\.config\.{pattern}")
            self.assertNotIn("short", out.replace("shorter", ""))

    def test_replay_is_rejected(self):
        a, b = self.net.nodes
        opts = f'keys = {toml_list([KEY_A])}\nreplay_window = "1s"\nheartbeat_interval = "300ms"'
        # Capture one of b's authenticated heartbeats before a exists.
        capture = subprocess.Popen(a.cmd(UDP + ["capture", "--count", "1", "--timeout", "15"]),
                                   stdout=subprocess.PIPE, text=True)
        self.beam.procs.append(capture)
        self.assertEqual(capture.stdout.readline().strip(), "READY")
        db = self.lone_daemon(b, opts)
        line = capture.stdout.readline().split()
        captured = time.monotonic()
        self.assertEqual(line[0], b.address)
        packet = line[1]
        self.assertTrue(packet.startswith("43444701"), packet)  # "CDG" 1
        da = self.lone_daemon(a, opts)
        da.wait_until(lambda s: count(topology(s, "gossip")["details"], "peers") == 1, timeout=10)
        # Within the window, a copy is a replay (a saw the original or an earlier copy).
        self.udp(b, "send", "--to", f"{a.address}:{PORT}", "--hex", packet, "--hex", packet)
        da.wait_until(lambda s: count(topology(s, "gossip")["details"], "dropped.replay") >= 1,
                      timeout=10, what="a replay dropped")
        # After the window it is stale.
        wait_for(lambda: time.monotonic() - captured > 1.2, 5, "the replay window to pass")
        self.udp(b, "send", "--to", f"{a.address}:{PORT}", "--hex", packet)
        da.wait_until(lambda s: count(topology(s, "gossip")["details"], "dropped.stale") == 1,
                      timeout=10, what="the old packet dropped as stale")
        self.assertIn("stale (outside the replay window", da.log_text())
        self.assertTrue(db.running())

    def test_bad_packets_and_garbage_are_dropped_and_counted(self):
        a, b = self.net.nodes
        da = self.lone_daemon(a, 'heartbeat_interval = "10s"', node="c1@198.18.0.1")
        bad = sorted(f for f in os.listdir(FIXTURES) if f.startswith("bad-"))
        files = [a for f in bad for a in ("--file", os.path.join(FIXTURES, f))]
        sent = int(self.udp(b, "send", "--to", f"{a.address}:{PORT}", *files, "--garbage", "300",
                            "--seed", "7", "--big").strip())
        # Sent to the group too: the multicast path is the same code, but a different socket path.
        sent += int(self.udp(b, "send", "--to", f"{GROUP}:{PORT}", *files).strip())
        st = da.wait_until(lambda s: count(topology(s, "gossip")["details"], "dropped") == sent,
                           timeout=15, what=f"{sent} datagrams dropped")
        details = topology(st, "gossip")["details"]
        self.assertEqual(count(details, "dropped.oversize"), 1)
        self.assertEqual(count(details, "dropped.no_node_key"), 2)
        self.assertGreaterEqual(count(details, "dropped.no_prefix"), 2 + 280)
        self.assertEqual(count(details, "peers"), 0)
        # Still working: a real heartbeat after all that is heard.
        hb = open(os.path.join(FIXTURES, "heartbeat-small-atom-utf8.bin"), "rb").read().hex()
        self.udp(b, "send", "--to", f"{a.address}:{PORT}", "--hex", hb)
        st = da.wait_until(lambda s: "pb@198.18.0.2" in harness.node_states(s, "gossip"),
                           timeout=10, what="pb@198.18.0.2 reported")
        self.assertEqual(topology(st, "gossip")["details"]["peers heard"], "pb@198.18.0.2")

    def test_unicast_answer_and_expiry(self):
        a, b = self.net.nodes
        # Heartbeats every ~1 minute: only the announcement at start and the unicast answer
        # can make the two know each other within the wait below.
        opts = 'heartbeat_interval = "60s"\nexpire_after = "1500ms"'
        da = self.lone_daemon(a, opts)
        db = self.lone_daemon(b, opts)
        for d, other in ((da, "c2@198.18.0.2"), (db, "c1@198.18.0.1")):
            d.wait_until(lambda s: other in harness.node_states(s, "gossip"), timeout=5,
                         what=f"{other} heard")
        # b goes away without a word: a reports it lost after expire_after.
        db.close()
        st = da.wait_until(lambda s: count(topology(s, "gossip")["details"], "peers") == 0,
                           timeout=10, what="c2 expired")
        self.assertIn("lost c2@198.18.0.2: not heard for 1500 ms", da.log_text())
        self.assertEqual(topology(st, "gossip")["details"]["peers heard"], "")


class WireCompatTest(GossipCase):
    """clusterd against a plain `erl` speaking libcluster's packet by hand (no libcluster)."""

    SEND = ("{ok, S} = gen_udp:open(0, [binary, {multicast_ttl, 1}]), "
            "Hb = <<\"heartbeat::\", (term_to_binary(#{node => node()}))/binary>>, "
            "Pkt = %s, [begin gen_udp:send(S, {233,252,1,32}, 45892, Pkt), timer:sleep(100) end "
            "|| _ <- lists:seq(1, 50)], halt().")
    CBC = ("begin IV = crypto:strong_rand_bytes(16), K = crypto:hash(sha256, <<\"s3cret\">>), "
           "P = 16 - (byte_size(Hb) rem 16), "
           "<<IV/binary, (crypto:crypto_one_time(aes_256_cbc, K, IV, <<Hb/binary, "
           "(binary:copy(<<P>>, P))/binary>>, true))/binary>> end")
    RECEIVE = ("{ok, S} = gen_udp:open(45892, [binary, {reuseaddr, true}, {active, false}, "
               "{add_membership, {{233,252,1,32}, {0,0,0,0}}}]), io:format(\"READY~n\"), "
               "{ok, {_, _, Pkt}} = gen_udp:recv(S, 0, 20000), Hb = %s, "
               "<<\"heartbeat::\", T/binary>> = Hb, io:format(\"GOT ~p~n\", [binary_to_term(T)]), "
               "halt().")
    UNCBC = ("begin <<IV:16/binary, C/binary>> = Pkt, K = crypto:hash(sha256, <<\"s3cret\">>), "
             "D = crypto:crypto_one_time(aes_256_cbc, K, IV, C, false), "
             "binary:part(D, 0, byte_size(D) - binary:last(D)) end")

    def setUp(self):
        super().setUp()
        self.a, self.b = self.net.nodes
        self.beam.start_beams([self.b])  # epmd (and n2) in b, for the named erl below

    def erl_sends_to_clusterd(self, options, packet_expr):
        d = self.lone_daemon(self.a, options)
        sender = subprocess.Popen(
            self.b.cmd(["erl", "-name", f"e@{self.b.address}", "-setcookie", self.beam.cookie,
                        "-start_epmd", "false", "-noshell", "-noinput", "-eval",
                        self.SEND % packet_expr]),
            env=self.beam.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.beam.procs.append(sender)
        d.wait_until(lambda s: f"e@{self.b.address}" in harness.node_states(s, "gossip"),
                     timeout=20, what="the erl sender heard")
        self.assertEqual(count(gossip_details(d), "dropped"), 0)

    def test_clusterd_hears_erlang_heartbeats(self):
        self.erl_sends_to_clusterd("", "Hb")

    def test_clusterd_hears_erlang_cbc_heartbeats(self):
        self.erl_sends_to_clusterd('compat = "libcluster"\nsecret = "s3cret"', self.CBC)

    def erlang_decodes_clusterd(self, options, decrypt_expr):
        recv = subprocess.Popen(
            self.b.cmd(["erl", "-noshell", "-noinput", "-eval", self.RECEIVE % decrypt_expr]),
            env=self.beam.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.beam.procs.append(recv)
        self.assertEqual(recv.stdout.readline().strip(), "READY")
        self.lone_daemon(self.a, options + '\nheartbeat_interval = "300ms"')
        out = recv.communicate(timeout=30)[0]
        self.assertIn("GOT #{node => 'c1@198.18.0.1'}", out)

    def test_erlang_decodes_clusterd_heartbeats(self):
        self.erlang_decodes_clusterd("", "Pkt")

    def test_erlang_decrypts_clusterd_cbc_heartbeats(self):
        self.erlang_decodes_clusterd('compat = "libcluster"\nsecret = "s3cret"', self.UNCBC)


if __name__ == "__main__":
    sys.exit(harness.run_tests([BeamMeshTest, SecurityTest, WireCompatTest], description=__doc__))
