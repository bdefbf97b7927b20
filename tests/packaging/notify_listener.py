#!/usr/bin/python3
"""The systemd side of sd_notify for tests without systemd: binds NOTIFY_SOCKET (an AF_UNIX
datagram socket, writable by the service user) and appends every message to LOG, one line per
message with fields joined by '|'. Exits after STOPPING=1 or DEADLINE seconds."""
import os
import socket
import sys
import time

path, log, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)
with open(log, "a", buffering=1) as out:
    out.write("LISTENING\n")
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        fields = data.decode(errors="replace").strip().split("\n")
        out.write("|".join(fields) + "\n")
        if "STOPPING=1" in fields:
            break
