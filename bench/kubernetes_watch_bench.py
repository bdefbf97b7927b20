#!/usr/bin/env python3
"""Watch event on the wire -> transport connect called, with the kubernetes strategy in watch
mode (issue 5 target: <= 100 ms p99; libcluster polls every 5 s: a new pod waits 2.5 s on
average, up to 5 s plus the round).

usage: bench/kubernetes_watch_bench.py BUILD_DIR [--events 200]

Runs tests/servers/k8s_api_server.py (HTTPS on 127.0.0.1, a throwaway test CA) and a clusterd
whose `command` transport is a bash one-liner appending "NODE $EPOCHREALTIME" to a file. Each
event is a MODIFIED EndpointSlice that adds one ready endpoint (the slice as the controller
would send it: all its endpoints, up to 100). The latency of event i = the time bash ran for
node i minus the time the server wrote the event to the stream (both wall clock, one machine):
it includes TLS, curl, parsing, the reconciler and spawning bash. Events are sent one at a
time, the next after the previous connect ran. Loopback only; processes by PID.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from beam import wait_for  # noqa: E402
from connect_recorder import connects, transport_config  # noqa: E402

SERVERS = os.path.join(HERE, "..", "tests", "servers")


def endpoint(i):
    ip = f"10.9.{i // 250}.{i % 250 + 1}"
    return {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": "prod", "name": f"bench-{i}"},
            "hostname": f"bench-{i}"}, f"app@{ip}"


def slice_of(index, endpoints, rv):
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": f"bench-{index}", "namespace": "prod", "resourceVersion": str(rv),
                         "labels": {"kubernetes.io/service-name": "bench"}},
            "addressType": "IPv4", "endpoints": endpoints}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="clusterd-k8s-bench-")
    server = daemon = None
    try:
        subprocess.run(["sh", os.path.join(SERVERS, "make_test_pki.sh"), work], check=True)
        sa = os.path.join(work, "sa")
        os.makedirs(sa)
        shutil.copyfile(os.path.join(work, "ca.crt"), os.path.join(sa, "ca.crt"))
        for name, text in (("token", "t"), ("namespace", "prod")):
            with open(os.path.join(sa, name), "w") as f:
                f.write(text)
        port_file = os.path.join(work, "ports.json")
        server = subprocess.Popen(
            [sys.executable, os.path.join(SERVERS, "k8s_api_server.py"), "--port-file", port_file,
             "--tls-cert", os.path.join(work, "server.crt"),
             "--tls-key", os.path.join(work, "server.key")], stdin=subprocess.DEVNULL)
        ports = json.loads(wait_for(lambda: os.path.exists(port_file) and open(port_file).read(),
                                    30, "the server"))

        def ctl(method, path, body=None):
            req = urllib.request.Request(f"http://127.0.0.1:{ports['control']}{path}",
                                         data=body, method=method)
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.read()

        empty = {"kind": "EndpointSliceList", "metadata": {"resourceVersion": "1"}, "items": []}
        ctl("PUT", "/list/endpointslices", json.dumps(empty).encode())
        record = os.path.join(work, "connects")
        config = "\n".join([
            "[clusterd]", 'log_level = "warn"', *transport_config(record),
            "[topologies.k]", 'strategy = "kubernetes"', 'transport = "cmd"',
            "[topologies.k.config]", 'kubernetes_node_basename = "app"',
            'kubernetes_selector = "app=bench"', 'kubernetes_ip_lookup_mode = "endpointslices"',
            "watch = true", f"kubernetes_service_account_path = {harness.toml_string(sa)}", ""])
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1",
                   KUBERNETES_SERVICE_PORT=str(ports["api"]))
        daemon = harness.Daemon(config, bin_dir, env=env)
        daemon.start()
        wait_for(lambda: json.loads(ctl("GET", "/watchers")).get("endpointslices?app=bench"),
                 30, "the watch")

        latencies = []
        slices = {}
        for i in range(args.events):
            ep, node = endpoint(i)
            slices.setdefault(i // 100, []).append(ep)
            event = {"type": "MODIFIED", "object": slice_of(i // 100, slices[i // 100], 10 + i)}
            ctl("POST", "/event/endpointslices?selector=app%3Dbench", json.dumps(event).encode())
            at = float(wait_for(lambda: connects(record).get(node), 30, f"connect of {node}", 0.002))
            sent = json.loads(ctl("GET", "/sent"))[-1][0] / 1e9
            latencies.append((at - sent) * 1000)
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        print(f"watch event written -> connect command running, {len(latencies)} events: "
              f"p50 {p(0.5):.1f} ms, p90 {p(0.9):.1f} ms, p99 {p(0.99):.1f} ms, "
              f"max {latencies[-1]:.1f} ms, mean {statistics.mean(latencies):.1f} ms")
        print("libcluster (polling_interval 5 s): a new pod waits 2500 ms on average, "
              "4950 ms p99, plus the round itself")
    finally:
        if daemon is not None:
            daemon.close()
        if server is not None:
            server.kill()
            server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
