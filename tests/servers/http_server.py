#!/usr/bin/env python3
"""HTTP(S) server for clusterd's tests. Loopback only; started and killed (by PID) by a test.

    http_server.py --port-file FILE [--bind 127.0.0.1|::1] [--tls-cert CRT --tls-key KEY]
                   [--client-ca CA] [--token TOKEN] [--dir DIR] [--verbose]

Listens on a free port and, once listening, writes the port number to FILE (atomically).

Endpoints:
  /healthz                 200 "ok"
  /echo                    200 with the request body as body; the request's method, path and
                           body length as X-Echo-Method / X-Echo-Path / X-Echo-Body-Length and
                           each request header as X-Echo-H-<lower-case name>
  /status/<code>           that status, body "status <code>"
  /bytes/<n>[?chunked=1]   n bytes of "x" (with Content-Length, or chunked)
  /stream/<id>?chunks=<n>[&delay_ms=<d>]
                           chunked body "chunk-0\\n", "chunk-1\\n", ...; between two chunks it
                           waits d ms, or without delay_ms for a cue (POST /cue/<id>)
  /cue/<id>                releases the next chunk of stream <id> (cues may come early)
  anything else            GET/HEAD from --dir: DIR/<path>, else DIR/<path>.json; else 404

--token TOKEN: all but /healthz and /cue/ need "Authorization: Bearer TOKEN", else 401.
--client-ca CA: TLS clients must present a certificate issued by CA (mutual TLS).
"""

import argparse
import os
import queue
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_cues = {}
_cues_lock = threading.Lock()


def cue_queue(stream_id):
    with _cues_lock:
        return _cues.setdefault(stream_id, queue.Queue())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like a real API server

    def setup(self):
        tls = self.server.tls_context
        if tls is not None:
            # Handshake here, in the connection's thread, so one slow client cannot stall accept.
            self.request.settimeout(10)
            self.request = tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s\n" % (fmt % args))

    def reply(self, code, body=b"", headers=(), content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        body = self.read_body()
        path = url.path
        token = self.server.token
        if token and path != "/healthz" and not path.startswith("/cue/"):
            if self.headers.get("Authorization") != "Bearer " + token:
                return self.reply(401, b"unauthorized")
        if path == "/healthz":
            return self.reply(200, b"ok")
        if path == "/echo":
            headers = [("X-Echo-Method", self.command), ("X-Echo-Path", self.path),
                       ("X-Echo-Body-Length", str(len(body)))]
            headers += [("X-Echo-H-" + name.lower(), value) for name, value in self.headers.items()]
            return self.reply(200, body, headers, "application/octet-stream")
        if path.startswith("/status/"):
            code = int(path[len("/status/"):])
            return self.reply(code, b"status %d" % code)
        if path.startswith("/bytes/"):
            count = int(path[len("/bytes/"):])
            if query.get("chunked") == ["1"]:
                return self.stream([b"x" * min(count - i, 4096) for i in range(0, count, 4096)],
                                   lambda: None)
            return self.reply(200, b"x" * count)
        if path.startswith("/stream/"):
            stream_id = path[len("/stream/"):]
            chunks = [b"chunk-%d\n" % i for i in range(int(query.get("chunks", ["3"])[0]))]
            if "delay_ms" in query:
                delay = int(query["delay_ms"][0]) / 1000.0
                return self.stream(chunks, lambda: time.sleep(delay) or True)
            cues = cue_queue(stream_id)

            def wait_for_cue():
                try:
                    cues.get(timeout=60)
                    return True
                except queue.Empty:
                    return False
            return self.stream(chunks, wait_for_cue)
        if path.startswith("/cue/"):
            cue_queue(path[len("/cue/"):]).put(True)
            return self.reply(200, b"cued")
        return self.serve_file(url.path)

    def stream(self, chunks, between):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i, chunk in enumerate(chunks):
                if i > 0 and between() is False:
                    self.close_connection = True
                    return  # no cue: drop the connection without finishing the body
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def serve_file(self, path):
        root = self.server.directory
        if root is None or self.command not in ("GET", "HEAD"):
            return self.reply(404, b"not found")
        for candidate in (path, path + ".json"):
            full = os.path.realpath(os.path.join(root, candidate.lstrip("/")))
            if full.startswith(root + os.sep) and os.path.isfile(full):
                with open(full, "rb") as f:
                    data = f.read()
                kind = "application/json" if full.endswith(".json") else "application/octet-stream"
                return self.reply(200, data, content_type=kind)
        return self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many parallel connects must not overflow the backlog

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--token")
    parser.add_argument("--dir")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    if ":" in args.bind:
        Server.address_family = socket.AF_INET6
    server = Server((args.bind, 0), Handler)
    server.verbose = args.verbose
    server.token = args.token
    server.directory = os.path.realpath(args.dir) if args.dir else None
    server.tls_context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server.tls_context = context

    temporary = args.port_file + ".tmp"
    with open(temporary, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(temporary, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
