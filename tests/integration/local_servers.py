"""Real servers on loopback for the integration tests of the DNS and Rancher strategies.

    dns = Dnsmasq(workdir, hosts={...})       # dnsmasq on 127.0.0.1:<free port>
    dns.set_hosts({"app.test": ["198.18.0.1", "fd00::1"]})   # rewrites its hosts file + SIGHUP
    dns.restart(srv={"svc.test": ["a.test", "b.test"]})      # SRV records need a restart
    dns.stop()

    web = HttpServer(directory)               # tests/servers/http_server.py --dir directory
    web.url("/latest/self/service")

Both are started and stopped by PID through their Popen objects, and waited for with
deadlines (no sleeps as synchronisation). dnsmasq answers only from its own files
(--no-resolv --no-hosts) and with NXDOMAIN for unknown names under the domains it is made
local for, so nothing leaves the machine.
"""

import os
import pwd
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys

from test_command_transport import poll

HERE = os.path.dirname(os.path.abspath(__file__))
HTTP_SERVER = os.path.join(HERE, "..", "servers", "http_server.py")


def _stop(proc):
    """SIGTERM, a bounded wait, SIGKILL as the last resort (by PID, through Popen)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_udp_port():
    """A port that is free for UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def dns_rcode(port, name, qtype=1, timeout=0.5):
    """Sends one DNS query to 127.0.0.1:port; returns the response code (0 = NOERROR,
    3 = NXDOMAIN), or None when nothing answered within `timeout`."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(
        ">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
        except OSError:  # timeout, or ICMP port unreachable
            return None
    if len(data) < 4 or struct.unpack(">H", data[:2])[0] != ident:
        return None
    return data[3] & 0x0F


class Dnsmasq:
    """A real dnsmasq on 127.0.0.1 answering from a hosts file and --srv-host options."""

    def __init__(self, workdir, local_domains=("test",), ttl=0, srv=None, hosts=None):
        self.dir = os.path.join(workdir, "dnsmasq")
        os.makedirs(self.dir, exist_ok=True)
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.local_domains = list(local_domains)
        self.ttl = ttl
        self.srv = dict(srv or {})
        self.port = free_udp_port()
        self.proc = None
        self.set_hosts(hosts or {}, reload=False)  # in place before the first query
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _argv(self):
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        argv = [exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                "--bind-interfaces", "--listen-address=127.0.0.1", "--except-interface=none",
                f"--port={self.port}", "--pid-file=", "--log-facility=-", "--log-queries",
                f"--addn-hosts={self.hosts_path}", f"--local-ttl={self.ttl}",
                "--conf-file=/dev/null",
                # Stay the test's user (dnsmasq started as root drops to "nobody", who cannot
                # read the hosts file in the test's private directory).
                "--user=" + pwd.getpwuid(os.getuid()).pw_name]
        argv += [f"--local=/{d}/" for d in self.local_domains]
        for name, targets in self.srv.items():
            argv += [f"--srv-host={name},{t},4369" for t in targets]
        return argv

    def start(self):
        """Starts dnsmasq (on the same port as before) and waits until it answers."""
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()

        def answering():
            if self.proc.poll() is not None:
                raise AssertionError(f"dnsmasq exited with {self.proc.returncode}:\n"
                                     + self.log_tail())
            return dns_rcode(self.port, "ready-probe." + self.local_domains[0]) is not None
        poll(answering, 10, "dnsmasq to answer")

    def stop(self):
        _stop(self.proc)
        self.proc = None

    def restart(self, srv=None):
        """Restarts on the same port, e.g. with other SRV records (SIGHUP does not re-read
        the command line)."""
        self.stop()
        if srv is not None:
            self.srv = dict(srv)
        self.start()

    def set_hosts(self, names, reload=True):
        """Rewrites the hosts file ({name: [addresses]}) and makes dnsmasq re-read it."""
        lines = [f"{addr} {name}\n" for name, addrs in names.items() for addr in addrs]
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("".join(lines))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.hosts_path)
        if reload and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return ""


class SilentUdp:
    """A UDP socket on 127.0.0.1:port that reads queries and never answers (a resolver that
    times out)."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))

    def close(self):
        self.sock.close()


class HttpServer:
    """tests/servers/http_server.py serving `directory` on 127.0.0.1:<free port>."""

    def __init__(self, directory, workdir):
        self.port_file = os.path.join(workdir, "http.port")
        self.log_path = os.path.join(workdir, "http.log")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, HTTP_SERVER, "--port-file", self.port_file, "--dir", directory],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

        def port():
            if self.proc.poll() is not None:
                raise AssertionError(f"http_server.py exited with {self.proc.returncode}")
            try:
                with open(self.port_file, encoding="ascii") as f:
                    return int(f.read().strip() or 0)
            except (FileNotFoundError, ValueError):
                return 0
        self.port = poll(port, 10, "http_server.py to listen")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        _stop(self.proc)
        self.proc = None
