#!/usr/bin/env python3
"""Holds one kazoo session with an ephemeral znode and answers `check` on stdin with
`check SESSION EPHEMERAL_EXISTS SERVER_PORT` once connected again. Usage:
kazoo_session.py host:port,host:port,... (the first server is tried first)."""
import sys

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

zk = KazooClient(hosts=sys.argv[1], timeout=8, randomize_hosts=False)
zk.start(timeout=15)
zk.create("/survivor", b"", ephemeral=True)


def port():
    return zk._connection._socket.getpeername()[1]


print(f"connected {zk.client_id[0]:x} {port()}", flush=True)
retry = KazooRetry(max_tries=-1, deadline=30, delay=0.05, max_delay=0.5)
for line in sys.stdin:
    if line.strip() == "check":
        # The connection may only now notice its server died: retry through the move.
        exists = retry(zk.exists, "/survivor") is not None
        print(f"check {zk.client_id[0]:x} {exists} {port()}", flush=True)
