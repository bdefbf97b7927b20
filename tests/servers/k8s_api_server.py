#!/usr/bin/env python3
"""A scripted Kubernetes API server for clusterd's tests (HTTPS, loopback only). Started and
killed (by PID) by a test; the test drives it through a plain-HTTP control port.

    k8s_api_server.py --port-file FILE --tls-cert CRT --tls-key KEY [--bind 127.0.0.1]

Once listening it writes {"api": PORT, "control": PORT} to FILE (atomically).

API (HTTPS), for RESOURCE = endpoints | pods (/api/v1/namespaces/NS/RESOURCE) and
endpointslices (/apis/discovery.k8s.io/v1/namespaces/NS/endpointslices):
  GET without watch=1      the list body set for (RESOURCE, labelSelector), else for RESOURCE,
                           else 404 (a Kubernetes Status)
  GET with watch=1         200, chunked: one event line per event posted for the resource,
                           until the test ends the stream, timeoutSeconds pass or the client
                           goes away
Every API request is recorded (method, path, query, Authorization header). When tokens are set,
a request without "Authorization: Bearer <one of them>" gets 401. An error set for a resource
is answered instead (list and watch alike).

Control (HTTP, same --bind); SEL = ?selector=<labelSelector> (optional, narrows the key):
  PUT  /list/RESOURCE[SEL]    body: the list JSON to serve
  PUT  /error/RESOURCE[SEL]   body: {"code": 403, "body": "<Status JSON or text>"}
  DELETE /error/RESOURCE[SEL] no error any more
  PUT  /stall/RESOURCE[SEL]   requests get no answer at all (until DELETE or the client leaves)
  DELETE /stall/RESOURCE[SEL] answer again
  PUT  /tokens                body: JSON list of accepted tokens ([] = accept any)
  POST /event/RESOURCE[SEL]   body: one watch event line; queued for the (next) watch stream
  POST /end/RESOURCE[SEL]     ends the current watch stream cleanly
  GET  /requests              JSON list of the recorded API requests
  GET  /watchers              {"RESOURCE?SEL": number of open watch streams}
  GET  /sent                  JSON list of [time_ns, event line] as written to a stream
"""

import argparse
import collections
import json
import os
import queue
import socket
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_server import Handler, Server  # noqa: E402  (TLS setup, reply, server class)

_lock = threading.Lock()
_lists = {}      # key -> bytes
_errors = {}     # key -> (code, bytes)
_stalls = set()  # keys whose requests get no answer
_tokens = []     # accepted bearer tokens; [] = any
_requests = []   # recorded API requests
_queues = {}     # key -> EventQueue of bytes (event line) or None (end of stream)
_watchers = {}   # key -> open streams
_sent = []       # [time_ns, line]
_MAX_WATCH_SECONDS = 600
_RECORD_LIMIT = 100000

RESOURCES = ("endpoints", "pods", "endpointslices")


def key_of(resource, selector):
    return resource + ("?" + selector if selector else "")


class EventQueue:
    """Events for one watch key, in order; an event a dead stream took is put back in front."""

    def __init__(self):
        self.items = collections.deque()
        self.cond = threading.Condition()

    def put(self, item, front=False):
        with self.cond:
            (self.items.appendleft if front else self.items.append)(item)
            self.cond.notify_all()

    def get(self, timeout):
        with self.cond:
            if not self.cond.wait_for(lambda: self.items, timeout):
                raise queue.Empty
            return self.items.popleft()


def event_queue(key):
    with _lock:
        return _queues.setdefault(key, EventQueue())


def status_body(code, reason, message):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


class JsonHandler(Handler):
    """TLS (when the server has a context), logging, reply() and read_body() as in
    http_server.py."""

    def reply_json(self, code, body):
        self.reply(code, body, content_type="application/json")


class ApiHandler(JsonHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        flat = {k: v[-1] for k, v in query.items()}
        auth = self.headers.get("Authorization")
        with _lock:
            if len(_requests) < _RECORD_LIMIT:
                _requests.append({"method": self.command, "path": url.path, "raw_query": url.query,
                                  "query": flat, "authorization": auth, "time_ns": time.time_ns()})
            tokens = list(_tokens)
        parts = url.path.strip("/").split("/")
        resource = parts[-1] if parts else ""
        if resource not in RESOURCES or "namespaces" not in parts:
            return self.reply_json(404, status_body(
                404, "NotFound", "the server could not find the requested resource"))
        if tokens and auth not in ["Bearer " + t for t in tokens]:
            return self.reply_json(401, status_body(401, "Unauthorized", "Unauthorized"))
        selector = flat.get("labelSelector", "")
        with _lock:
            error = _errors.get(key_of(resource, selector)) or _errors.get(resource)
            body = _lists.get(key_of(resource, selector)) or _lists.get(resource)
        if self.stall(key_of(resource, selector)):
            return
        if error is not None:
            return self.reply_json(error[0], error[1])
        if flat.get("watch") in ("1", "true"):
            return self.watch(resource, selector, int(flat.get("timeoutSeconds") or 60))
        if body is None:
            return self.reply_json(404, status_body(404, "NotFound",
                                                    resource + " not set by the test"))
        return self.reply_json(200, body)

    def watch(self, resource, selector, seconds):
        key = key_of(resource, selector)
        # Events posted with the selector go to that stream; others to the resource's.
        with _lock:
            if key not in _queues and resource in _queues:
                key = resource
        events = event_queue(key)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        with _lock:
            _watchers[key] = _watchers.get(key, 0) + 1
        deadline = time.monotonic() + min(seconds, _MAX_WATCH_SECONDS)
        try:
            while time.monotonic() < deadline:
                try:
                    line = events.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    if self.client_gone():
                        return
                    continue
                if self.client_gone():
                    events.put(line, front=True)  # for the client's next stream
                    return
                if line is None:
                    break
                data = line.rstrip(b"\n") + b"\n"
                with _lock:
                    if len(_sent) < _RECORD_LIMIT:
                        _sent.append([time.time_ns(), line.decode("utf-8", "replace")[:200]])
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        finally:
            with _lock:
                _watchers[key] -= 1

    def stall(self, key):
        """Holds a stalled request without an answer until the test lifts the stall or the
        client goes away (bounded); True when it was stalled (the connection is then closed)."""
        deadline = time.monotonic() + _MAX_WATCH_SECONDS
        stalled = False
        while time.monotonic() < deadline:
            with _lock:
                if key not in _stalls:
                    break
            stalled = True
            if self.client_gone():
                break
            time.sleep(0.02)  # polling the test's switch, not synchronising
        if stalled:
            self.close_connection = True
        return stalled

    def client_gone(self):
        # A watch client sends nothing after its request: anything readable on the raw TCP
        # socket (EOF, or TLS close_notify) means it went away. Peeked through a duplicate:
        # TLS sockets refuse flags.
        try:
            with socket.socket(fileno=os.dup(self.connection.fileno())) as raw:
                raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                return True
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True


class ControlHandler(JsonHandler):
    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        selector = query.get("selector", [""])[-1]
        body = self.read_body()
        parts = url.path.strip("/").split("/")
        verb, what = parts[0], (parts[1] if len(parts) > 1 else "")
        key = key_of(what, selector)
        with _lock:
            if self.command == "PUT" and verb == "list":
                _lists[key] = body
            elif self.command == "PUT" and verb == "error":
                spec = json.loads(body)
                _errors[key] = (int(spec["code"]), spec.get("body", "").encode())
            elif self.command == "DELETE" and verb == "error":
                _errors.pop(key, None)
            elif self.command == "PUT" and verb == "stall":
                _stalls.add(key)
            elif self.command == "DELETE" and verb == "stall":
                _stalls.discard(key)
            elif self.command == "PUT" and verb == "tokens":
                _tokens[:] = json.loads(body)
            elif self.command == "GET" and verb == "requests":
                return self.reply_json(200, json.dumps(_requests).encode())
            elif self.command == "GET" and verb == "watchers":
                return self.reply_json(200, json.dumps(_watchers).encode())
            elif self.command == "GET" and verb == "sent":
                return self.reply_json(200, json.dumps(_sent).encode())
            elif self.command == "POST" and verb in ("event", "end"):
                pass
            else:
                return self.reply(404, b"unknown control request")
        if verb in ("event", "end"):
            event_queue(key).put(body if verb == "event" else None)
        return self.reply(200, b"ok")

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    if ":" in args.bind:
        Server.address_family = socket.AF_INET6
    api = Server((args.bind, 0), ApiHandler)
    control = Server((args.bind, 0), ControlHandler)
    for s in (api, control):
        s.verbose = args.verbose
        s.tls_context = None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    api.tls_context = context
    threading.Thread(target=control.serve_forever, daemon=True).start()

    temporary = args.port_file + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"api": api.server_address[1], "control": control.server_address[1]}, f)
    os.replace(temporary, args.port_file)
    api.serve_forever()


if __name__ == "__main__":
    main()
