"""A Consul agent stand-in on loopback, written from Consul's HTTP API documentation (the real
server is not packaged in Debian), for the consul strategy's tests and benchmark.

    consul = ConsulStandin(datacenters=("dc1", "dc2"), token="s3cret")   # http://127.0.0.1:P
    consul = ConsulStandin(tls=(cert, key, client_ca))                 # https, client certs
    consul.add("web-1", "10.0.1.1", dc="dc1", tags=["v1"], status="passing")
    consul.remove("web-1"); consul.set_status("web-1", "critical")
    consul.mode = "500" | "garbage" | "hang" | "no-index" | None
    consul.rewind_index()            # X-Consul-Index goes backwards (a snapshot restore)
    consul.stop()

What it covers (field names and shapes as in the API docs' sample responses):
  GET  /v1/catalog/service/:service  array of {ID, Node, Address, Datacenter, TaggedAddresses,
       NodeMeta, ServiceID, ServiceName, ServiceTags, ServiceAddress, ServicePort,
       ServiceMeta, ServiceEnableTagOverride, CreateIndex, ModifyIndex}; ?dc, ?tag, ?near
       (sorted as given), ?filter (recorded, not evaluated), ?ns, ?partition (recorded)
  GET  /v1/health/service/:service   array of {Node: {ID, Node, Address, Datacenter,
       TaggedAddresses, Meta}, Service: {ID, Service, Tags, Address, Port, Meta, Weights},
       Checks: [{Node, CheckID, Name, Status, ServiceID, ServiceName}]}; ?passing
  GET  /v1/agent/services            object ID -> {ID, Service, Tags, Meta, Port, Address,
       Datacenter, Weights, EnableTagOverride}: the instances on the agent's own node
       ("agent-1" in the first datacenter), and those registered through the agent
  GET  /v1/catalog/datacenters       ["dc1", "dc2", ...]
  PUT  /v1/agent/service/register    JSON service definition with Check {CheckID, TTL, Status,
       DeregisterCriticalServiceAfter}; PUT /v1/agent/check/pass/:check_id (404 for a check
       without TTL, as Consul); PUT /v1/agent/service/deregister/:service_id
  Blocking queries on catalog and health: ?index=N&wait=D hangs while the datacenter's index
  is N (a write, or a restore that sets it back, wakes it), up to D (at most 10 minutes; default 5 minutes), plus up to D/16 of jitter as
  Consul adds; every answer carries X-Consul-Index, X-Consul-KnownLeader and
  X-Consul-LastContact. The index is per datacenter and grows with every write.
  ACL: with a token set, a request without X-Consul-Token (or "Authorization: Bearer") equal
  to it gets 403 "ACL not found".
  Faults: mode "500" answers 500 "No cluster leader"; "garbage" a 200 with a body that is not
  JSON; "hang" holds the request without answering (until the mode changes or 60 s);
  "no-index" leaves X-Consul-Index out; rewind_index() makes the index go backwards.
Every request is recorded (method, path, query, token, time) for the assertions.
"""

import json
import os
import random
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_WAIT = 600.0
DEFAULT_WAIT = 300.0
HANG_LIMIT = 60.0


def parse_wait(text):
    """Consul's wait: "10s", "5m", "250ms" (a Go duration, the common units)."""
    if not text:
        return DEFAULT_WAIT
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            return min(float(text[:-len(unit)]) * scale, MAX_WAIT)
    raise ValueError(f"bad wait {text!r}")


class ConsulStandin:
    def __init__(self, datacenters=("dc1",), token=None, tls=None, agent_node="agent-1"):
        self.cond = threading.Condition()
        self.datacenters = list(datacenters)
        self.token = token
        self.agent_node = agent_node
        self.index = {dc: 10 for dc in self.datacenters}
        self.instances = {}   # service ID -> dict
        self.checks = {}      # check ID -> {"service": ID, "ttl": s, "passed": time}
        self.mode = None
        self.requests = []    # dicts: method, path, query, token, time, body
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As Go's net/http (Consul) does: without it, the body segment waits for the
            # client's delayed ACK of the header segment (~40 ms per answer).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                standin.handle(self)

            def do_PUT(self):
                standin.handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that went away (a daemon that stopped with a query held) is normal.
                if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            cert, key, client_ca = tls
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            if client_ca:
                context.load_verify_locations(client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        with self.cond:
            self.mode = None
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # ---- state changes (each a write: the datacenter's index grows) ----

    def _bump(self, dc):
        self.index[dc] += random.randint(1, 3)
        self.cond.notify_all()

    def add(self, sid, address, dc=None, service="web", node=None, tags=(), status="passing",
            service_address=None, port=4369):
        """An instance of `service`: a node at `address`, the service at `service_address`
        (default: the node's, i.e. ServiceAddress "")."""
        dc = dc or self.datacenters[0]
        with self.cond:
            self.instances[sid] = {
                "id": sid, "service": service, "node": node or f"node-{sid}", "dc": dc,
                "address": address, "service_address": service_address or "",
                "tags": list(tags), "status": status, "port": port,
                "create": self.index[dc] + 1}
            self._bump(dc)

    def remove(self, sid):
        with self.cond:
            inst = self.instances.pop(sid)
            self._bump(inst["dc"])

    def set_status(self, sid, status):
        with self.cond:
            self.instances[sid]["status"] = status
            self._bump(self.instances[sid]["dc"])

    def rewind_index(self):
        """The index goes backwards, as after a snapshot restore; blocked queries answer."""
        with self.cond:
            for dc in self.index:
                self.index[dc] = 2
            self.cond.notify_all()

    def set_mode(self, mode):
        with self.cond:
            self.mode = mode
            self.cond.notify_all()

    def set_token(self, token):
        with self.cond:
            self.token = token

    def seen(self, path_prefix, method="GET"):
        with self.cond:
            return [r for r in self.requests
                    if r["method"] == method and r["path"].startswith(path_prefix)]

    # ---- HTTP ----

    @staticmethod
    def reply(h, code, body, index=None, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        if index is not None:
            h.send_header("X-Consul-Index", str(index))
            h.send_header("X-Consul-KnownLeader", "true")
            h.send_header("X-Consul-LastContact", "0")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h):
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        token = h.headers.get("X-Consul-Token")
        bearer = h.headers.get("Authorization", "")
        if token is None and bearer.startswith("Bearer "):
            token = bearer[len("Bearer "):]
        with self.cond:
            self.requests.append({"method": h.command, "path": url.path, "query": query,
                                  "token": token, "time": time.monotonic(), "body": body})
            mode, want = self.mode, self.token
        if want is not None and token != want:
            return self.reply(h, 403, "ACL not found", content_type="text/plain")
        if mode == "hang":
            return self.hang(h)
        if mode == "500":
            return self.reply(h, 500, "No cluster leader", content_type="text/plain")
        path = url.path
        if h.command == "GET" and path == "/v1/catalog/datacenters":
            return self.reply(h, 200, json.dumps(self.datacenters))
        if h.command == "GET" and path == "/v1/agent/services":
            with self.cond:
                mine = {i["id"]: self.agent_service(i) for i in self.instances.values()
                        if i["node"] == self.agent_node}
            return self.reply(h, 200, json.dumps(mine))
        for prefix, render in (("/v1/catalog/service/", self.catalog_entry),
                               ("/v1/health/service/", self.health_entry)):
            if h.command == "GET" and path.startswith(prefix):
                return self.service_query(h, urllib.parse.unquote(path[len(prefix):]), query,
                                          render, mode, prefix.startswith("/v1/health"))
        if h.command == "PUT":
            return self.agent_write(h, path, body)
        return self.reply(h, 404, "Not found", content_type="text/plain")

    def hang(self, h):
        """Holds the request without an answer while the mode is "hang" (at most HANG_LIMIT)."""
        deadline = time.monotonic() + HANG_LIMIT
        with self.cond:
            while self.mode == "hang" and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
        return self.reply(h, 500, "rpc error: timeout", content_type="text/plain")

    def service_query(self, h, service, query, render, mode, health):
        dc = query.get("dc") or self.datacenters[0]
        if dc not in self.index:
            return self.reply(h, 500, "No path to datacenter", content_type="text/plain")
        try:
            wait = parse_wait(query.get("wait"))
            min_index = int(query.get("index") or 0)
        except ValueError as e:
            return self.reply(h, 400, str(e), content_type="text/plain")
        with self.cond:
            if min_index > 0:
                deadline = time.monotonic() + wait + random.uniform(0, wait / 16)
                # A write or a restore (the index going backwards) wakes the query.
                while (self.index[dc] == min_index and self.mode == mode
                       and time.monotonic() < deadline):
                    self.cond.wait(deadline - time.monotonic())
            mode = self.mode  # a fault may have switched on while this query waited
            if mode == "500":
                return self.reply(h, 500, "No cluster leader", content_type="text/plain")
        if mode == "hang":
            return self.hang(h)
        with self.cond:
            index = self.index[dc]
            entries = [render(i) for i in sorted(self.instances.values(), key=lambda i: i["id"])
                       if i["service"] == service and i["dc"] == dc
                       and (not query.get("tag") or query["tag"] in i["tags"])
                       and (not health or query.get("passing") is None
                            or i["status"] == "passing")]
        if mode == "garbage":
            return self.reply(h, 200, '[{"Node": {"Node": "n1", "Address": ', index)
        return self.reply(h, 200, json.dumps(entries), None if mode == "no-index" else index)

    def catalog_entry(self, i):
        return {"ID": f"id-{i['node']}", "Node": i["node"], "Address": i["address"],
                "Datacenter": i["dc"],
                "TaggedAddresses": {"lan": i["address"], "wan": i["address"]},
                "NodeMeta": {}, "ServiceID": i["id"], "ServiceName": i["service"],
                "ServiceTags": i["tags"], "ServiceAddress": i["service_address"],
                "ServicePort": i["port"], "ServiceMeta": {}, "ServiceEnableTagOverride": False,
                "CreateIndex": i["create"], "ModifyIndex": i["create"]}

    def health_entry(self, i):
        return {"Node": {"ID": f"id-{i['node']}", "Node": i["node"], "Address": i["address"],
                         "Datacenter": i["dc"],
                         "TaggedAddresses": {"lan": i["address"], "wan": i["address"]},
                         "Meta": {}},
                "Service": {"ID": i["id"], "Service": i["service"], "Tags": i["tags"],
                            "Address": i["service_address"], "Port": i["port"], "Meta": {},
                            "Weights": {"Passing": 10, "Warning": 1}},
                "Checks": [{"Node": i["node"], "CheckID": "serfHealth",
                            "Name": "Serf Health Status", "Status": "passing",
                            "ServiceID": "", "ServiceName": ""},
                           {"Node": i["node"], "CheckID": f"service:{i['id']}",
                            "Name": f"Service '{i['service']}' check", "Status": i["status"],
                            "ServiceID": i["id"], "ServiceName": i["service"]}]}

    def agent_service(self, i):
        return {"ID": i["id"], "Service": i["service"], "Tags": i["tags"], "Meta": {},
                "Port": i["port"], "Address": i["service_address"], "Datacenter": i["dc"],
                "Weights": {"Passing": 10, "Warning": 1}, "EnableTagOverride": False}

    def agent_write(self, h, path, body):
        if path == "/v1/agent/service/register":
            try:
                d = json.loads(body)
                sid, name, address = d.get("ID") or d["Name"], d["Name"], d.get("Address", "")
                check = d.get("Check") or {}
            except (ValueError, KeyError, TypeError) as e:
                return self.reply(h, 400, f"Request decode failed: {e}", content_type="text/plain")
            self.add(sid, address, service=name, node=self.agent_node, tags=d.get("Tags") or [],
                     service_address=address, port=d.get("Port", 0),
                     status=check.get("Status", "critical") if check else "passing")
            if check.get("TTL"):
                with self.cond:
                    self.checks[check.get("CheckID") or f"service:{sid}"] = {
                        "service": sid, "ttl": check["TTL"], "passes": 0,
                        "deregister_after": check.get("DeregisterCriticalServiceAfter")}
            return self.reply(h, 200, "")
        if path.startswith("/v1/agent/check/pass/"):
            cid = urllib.parse.unquote(path[len("/v1/agent/check/pass/"):])
            with self.cond:
                check = self.checks.get(cid)
                if check is None:
                    return self.reply(h, 404, f'Unknown check ID "{cid}". Ensure that the '
                                      "check ID is passed, not the check name.",
                                      content_type="text/plain")
                check["passes"] += 1
            return self.reply(h, 200, "")
        if path.startswith("/v1/agent/service/deregister/"):
            sid = urllib.parse.unquote(path[len("/v1/agent/service/deregister/"):])
            with self.cond:
                known = sid in self.instances
                self.checks = {k: v for k, v in self.checks.items() if v["service"] != sid}
            if not known:
                return self.reply(h, 404, f'Unknown service ID "{sid}". Ensure that the '
                                  "service ID is passed, not the service name.",
                                  content_type="text/plain")
            self.remove(sid)
            return self.reply(h, 200, "")
        return self.reply(h, 405, "method not allowed", content_type="text/plain")


def main():
    """Serves until SIGTERM (for tests/packaging/install_test.sh): writes its URL to
    --url-file once it listens; --instance ID=ADDRESS (repeatable) adds passing instances of
    the service "web"."""
    import argparse
    import signal
    parser = argparse.ArgumentParser(description="Consul stand-in on 127.0.0.1")
    parser.add_argument("--url-file", required=True)
    parser.add_argument("--instance", action="append", default=[])
    args = parser.parse_args()
    standin = ConsulStandin()
    for item in args.instance:
        sid, _, address = item.partition("=")
        standin.add(sid, address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(args.url_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(standin.url + "\n")
    os.replace(args.url_file + ".tmp", args.url_file)
    stop.wait()
    standin.stop()


if __name__ == "__main__":
    main()
