#!/usr/bin/env python3
"""kazoo's recipes against a running ensemble: Lock, Election, Party, Barrier, DoubleBarrier,
Counter, Queue, LockingQueue; then session expiry (a killed client's ephemeral znode is deleted
and watchers see NodeDeleted). Usage: kazoo_recipes.py host:port,host:port,...
Exits 0 when every recipe behaved; prints what failed otherwise."""
import os
import signal
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.party import Party
from kazoo.recipe.queue import LockingQueue, Queue

HOSTS = sys.argv[1]
SERVERS = HOSTS.split(",")


def client(i=0):
    # Clients on different servers get no simultaneous view of each other's writes
    # (a ZooKeeper guarantee, not a bug): the recipes call sync() before such reads.
    # Each client starts on a different server, so most writes are forwarded to the leader.
    hosts = ",".join(SERVERS[i % len(SERVERS):] + SERVERS[:i % len(SERVERS)])
    zk = KazooClient(hosts=hosts, timeout=10, randomize_hosts=False)
    zk.start(timeout=15)
    return zk


def run_threads(targets):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a recipe thread hung"


def lock():
    clients = [client(i) for i in range(3)]
    inside, max_inside, total = [0], [0], [0]
    guard = threading.Lock()

    def work(zk, n):
        lk = Lock(zk, "/recipes/lock", f"worker-{n}")
        for _ in range(5):
            with lk:
                with guard:
                    inside[0] += 1
                    max_inside[0] = max(max_inside[0], inside[0])
                time.sleep(0.002)
                with guard:
                    inside[0] -= 1
                    total[0] += 1

    run_threads([lambda zk=zk, n=n: work(zk, n) for n, zk in enumerate(clients)])
    assert max_inside[0] == 1, f"mutual exclusion broken: {max_inside[0]} holders"
    assert total[0] == 15
    for zk in clients:
        zk.stop()


def election():
    a, b = client(0), client(1)
    leaders = []
    ready = threading.Event()

    def lead_a():
        leaders.append("a")
        ready.set()
        time.sleep(0.3)

    ta = threading.Thread(target=lambda: Election(a, "/recipes/election", "a").run(lead_a))
    ta.start()
    assert ready.wait(10), "nobody was elected"
    b.sync("/recipes/election")
    eb = Election(b, "/recipes/election", "b")
    assert eb.contenders()[0] == "a", eb.contenders()
    ta.join(10)
    tb = threading.Thread(target=lambda: eb.run(lambda: leaders.append("b")))
    tb.start()
    tb.join(10)
    assert leaders == ["a", "b"], leaders
    a.stop()
    b.stop()


def party():
    clients = [client(i) for i in range(3)]
    parties = [Party(zk, "/recipes/party", f"m{i}") for i, zk in enumerate(clients)]
    for p in parties:
        p.join()
    clients[0].sync("/recipes/party")
    assert len(parties[0]) == 3, list(parties[0])
    parties[1].leave()
    clients[2].sync("/recipes/party")
    assert sorted(parties[2]) == ["m0", "m2"], list(parties[2])
    for zk in clients:
        zk.stop()


def barrier():
    a, b = client(0), client(1)
    Barrier(a, "/recipes/barrier").create()
    b.sync("/recipes/barrier")
    passed = threading.Event()
    t = threading.Thread(target=lambda: Barrier(b, "/recipes/barrier").wait(10) and passed.set())
    t.start()
    time.sleep(0.2)
    assert not passed.is_set(), "barrier did not hold"
    Barrier(a, "/recipes/barrier").remove()
    t.join(10)
    assert passed.is_set(), "barrier did not release"
    a.stop()
    b.stop()


def double_barrier():
    clients = [client(i) for i in range(3)]
    entered = []

    def member(zk, n):
        db = DoubleBarrier(zk, "/recipes/double", 3, identifier=f"m{n}")
        db.enter()
        entered.append(n)
        db.leave()

    run_threads([lambda zk=zk, n=n: member(zk, n) for n, zk in enumerate(clients)])
    assert sorted(entered) == [0, 1, 2], entered
    for zk in clients:
        zk.stop()


def counter():
    clients = [client(i) for i in range(3)]

    def bump(zk):
        c = Counter(zk, "/recipes/counter")
        for _ in range(10):
            c += 1

    run_threads([lambda zk=zk: bump(zk) for zk in clients])
    clients[0].sync("/recipes/counter")
    value = Counter(clients[0], "/recipes/counter").value
    assert value == 30, f"counter is {value}, not 30: a compare-and-set was lost"
    for zk in clients:
        zk.stop()


def queue():
    a, b = client(0), client(1)
    q = Queue(a, "/recipes/queue")
    for i in range(5):
        q.put(f"item-{i}".encode())
    q.put(b"urgent", priority=1)
    b.sync("/recipes/queue")
    got = [Queue(b, "/recipes/queue").get() for _ in range(6)]
    assert got[0] == b"urgent" and got[1:] == [f"item-{i}".encode() for i in range(5)], got
    a.stop()
    b.stop()


def locking_queue():
    a, b = client(0), client(1)
    q = LockingQueue(a, "/recipes/lq")
    q.put(b"job-1")
    q.put(b"job-2")
    w = LockingQueue(b, "/recipes/lq")
    assert w.get(5) == b"job-1"
    assert w.consume()
    assert w.get(5) == b"job-2"
    assert w.consume()
    a.sync("/recipes/lq")
    assert len(q) == 0
    a.stop()
    b.stop()


OWNER = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=2)
zk.start(timeout=15)
zk.ensure_path("/expiry")
zk.create("/expiry/eph", b"mine", ephemeral=True)
print("ready", hex(zk.client_id[0]), flush=True)
time.sleep(600)
"""


def session_expiry():
    owner = subprocess.Popen([sys.executable, "-c", OWNER, SERVERS[1]], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()
        assert line.startswith("ready"), f"owner did not start: {line!r}"
        watcher = client(0)
        watcher.sync("/expiry")
        deleted = threading.Event()
        assert watcher.exists("/expiry/eph", watch=lambda e: e.type == "DELETED" and deleted.set())
        os.kill(owner.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert deleted.wait(15), "the dead client's session never expired"
        took = time.monotonic() - killed
        assert watcher.exists("/expiry/eph") is None
        assert took < 10, f"expiry took {took:.1f} s for a 2 s session"
        watcher.stop()
    finally:
        owner.kill()
        owner.wait()


RECIPES = [lock, election, party, barrier, double_barrier, counter, queue, locking_queue, session_expiry]

if __name__ == "__main__":
    failed = []
    for recipe in RECIPES:
        start = time.monotonic()
        try:
            recipe()
            print(f"ok   {recipe.__name__} ({time.monotonic() - start:.2f} s)", flush=True)
        except Exception as e:  # report every recipe, then fail
            failed.append(recipe.__name__)
            print(f"FAIL {recipe.__name__}: {type(e).__name__}: {e}", flush=True)
    if failed:
        sys.exit(f"failed recipes: {', '.join(failed)}")
