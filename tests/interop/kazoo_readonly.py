#!/usr/bin/env python3
"""A kazoo client that allows read-only service, driven over stdin. Usage:
kazoo_readonly.py host:port. It prints `ready` once connected read-write with /ro-data
written; on `cut` (the quorum is gone) it waits for read-only service and prints
`ro STATE DATA WRITE_ERROR`; on `back` (the quorum returned) it waits for read-write service,
writes, and prints `rw STATE`."""
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.retry import KazooRetry

zk = KazooClient(hosts=sys.argv[1], timeout=8, read_only=True, randomize_hosts=False)
zk.start(timeout=15)
zk.create("/ro-data", b"before the cut")
print("ready", flush=True)
retry = KazooRetry(max_tries=-1, deadline=30, delay=0.05, max_delay=0.5)


def wait_for(state):
    deadline = time.monotonic() + 30
    while zk.client_state != state and time.monotonic() < deadline:
        time.sleep(0.05)
    return zk.client_state


for line in sys.stdin:
    command = line.strip()
    if command == "cut":
        state = wait_for("CONNECTED_RO")
        data = retry(zk.get, "/ro-data")[0].decode()
        try:
            zk.create("/written-while-cut", b"")
            error = "none"
        except KazooException as e:
            error = type(e).__name__
        print(f"ro {state} {data.replace(' ', '_')} {error}", flush=True)
    elif command == "back":
        state = wait_for("CONNECTED")
        retry(zk.create, "/written-after", b"")
        print(f"rw {state}", flush=True)
