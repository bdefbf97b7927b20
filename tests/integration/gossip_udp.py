#!/usr/bin/env python3
"""A UDP helper for the gossip tests, run inside a test's network namespace (stdlib only).

  gossip_udp.py capture --group G --port P [--count N] [--timeout S]
      binds 0.0.0.0:P with SO_REUSEADDR (beside clusterd), joins G, prints "READY", then one
      line "<source ip> <hex>" per datagram, up to N datagrams or S seconds.
  gossip_udp.py send --to IP:PORT [--hex H ...] [--file F ...] [--garbage N --seed S] [--big]
      sends each datagram once: hex strings, files, N random datagrams of 0..300 bytes (seeded,
      so a failure reproduces), and with --big one 4000-byte datagram. Prints the count sent.
"""
import argparse
import random
import socket
import struct
import sys
import time


def capture(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", args.port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(args.group), socket.inet_aton("0.0.0.0")))
    print("READY", flush=True)
    deadline = time.monotonic() + args.timeout
    got = 0
    while got < args.count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, (ip, _) = s.recvfrom(65535)
        except socket.timeout:
            break
        print(ip, data.hex(), flush=True)
        got += 1
    return 0


def send(args):
    ip, port = args.to.rsplit(":", 1)
    packets = [bytes.fromhex(h) for h in args.hex]
    for path in args.file:
        with open(path, "rb") as f:
            packets.append(f.read())
    rng = random.Random(args.seed)
    packets += [bytes(rng.randrange(256) for _ in range(rng.randrange(301)))
                for _ in range(args.garbage)]
    if args.big:
        packets.append(b"heartbeat::" + b"\x83" * 3989)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for p in packets:
        s.sendto(p, (ip, int(port)))
        time.sleep(0.001)  # pacing, not synchronisation: keeps the receive queue from overflowing
    print(len(packets), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--group", default="233.252.1.32")
    c.add_argument("--port", type=int, default=45892)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--timeout", type=float, default=10)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--hex", action="append", default=[])
    s.add_argument("--file", action="append", default=[])
    s.add_argument("--garbage", type=int, default=0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--big", action="store_true")
    args = parser.parse_args()
    return capture(args) if args.mode == "capture" else send(args)


if __name__ == "__main__":
    sys.exit(main())
