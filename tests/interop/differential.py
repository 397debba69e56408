#!/usr/bin/env python3
"""Differential test: the same request sequence against Apache ZooKeeper and against ensemble.
Usage: differential.py ZOOKEEPER_HOSTS ENSEMBLE_HOSTS. Compares, op by op: error classes, paths
(sequence names included), the Stat fields that must agree (version, cversion, aversion,
dataLength, numChildren, whether ephemeral), children, multi results, and watch events in order.
Exits non-zero and prints both traces' differences when they disagree."""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE


def stat(s):
    if s is None:
        return None
    return (s.version, s.cversion, s.aversion, s.dataLength, s.numChildren, s.ephemeralOwner != 0)


def run(hosts):
    trace = []
    events = []
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=15)
    root = "/difftest"
    if zk.exists(root):
        zk.delete(root, recursive=True)

    def step(name, fn):
        try:
            r = fn()
            trace.append((name, "ok", r))
        except Exception as e:  # the error class is what must agree
            trace.append((name, "error", type(e).__name__))

    def watcher(e):
        events.append((e.type, e.path))

    step("create root", lambda: zk.create(root, b"a"))
    step("create root again", lambda: zk.create(root, b"a"))
    step("create under missing parent", lambda: zk.create(root + "/x/y", b""))
    for i in range(3):
        step(f"sequential {i}", lambda: zk.create(root + "/s-", b"", sequence=True))
    step("delete s-1", lambda: zk.delete(root + "/s-0000000001"))
    step("sequential after delete", lambda: zk.create(root + "/s-", b"", sequence=True))
    step("get root", lambda: (lambda d: (d[0], stat(d[1])))(zk.get(root)))
    step("set v0", lambda: stat(zk.set(root, b"bb", version=0)))
    step("set stale version", lambda: stat(zk.set(root, b"cc", version=0)))
    step("delete non-empty", lambda: zk.delete(root))
    step("delete wrong version", lambda: zk.delete(root + "/s-0000000000", version=3))
    step("exists missing", lambda: stat(zk.exists(root + "/nope")))
    step("get missing", lambda: zk.get(root + "/nope"))
    step("ephemeral", lambda: zk.create(root + "/e", b"", ephemeral=True))
    step("child of ephemeral", lambda: zk.create(root + "/e/x", b""))
    step("stat ephemeral", lambda: stat(zk.exists(root + "/e")))
    step("children", lambda: sorted(zk.get_children(root)))

    def failing_multi():
        t = zk.transaction()
        t.create(root + "/t1", b"")
        t.check(root, 7)
        t.set_data(root, b"never")
        return [type(r).__name__ if isinstance(r, Exception) else r for r in t.commit()]

    def good_multi():
        t = zk.transaction()
        t.create(root + "/t2", b"")
        t.check(root, 1)
        t.set_data(root, b"multi")
        t.delete(root + "/t2")
        return [stat(r) if hasattr(r, "version") else r for r in t.commit()]

    step("failing multi", failing_multi)
    step("t1 absent after failed multi", lambda: stat(zk.exists(root + "/t1")))
    step("good multi", good_multi)
    step("root after multi", lambda: (lambda d: (d[0], stat(d[1])))(zk.get(root)))

    # Watches: data, child and exist watches, in order of the changes that fire them.
    step("watch data", lambda: zk.get(root + "/s-0000000000", watch=watcher)[0])
    step("watch children", lambda: sorted(zk.get_children(root, watch=watcher)))
    step("watch missing", lambda: stat(zk.exists(root + "/later", watch=watcher)))
    step("fire data", lambda: stat(zk.set(root + "/s-0000000000", b"z")))
    step("fire created and children", lambda: zk.create(root + "/later", b""))
    step("sync", lambda: zk.sync(root))
    deadline = time.monotonic() + 5
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trace.append(("watch events", "ok", list(events)))

    # ACLs: a digest-protected znode.
    zk.add_auth("digest", "alice:secret")
    acl = [make_digest_acl("alice", "secret", all=True)]
    step("create protected", lambda: zk.create(root + "/p", b"s", acl=acl))
    step("get acl", lambda: [(a.perms, a.id.scheme, a.id.id) for a in zk.get_acls(root + "/p")[0]])
    other = KazooClient(hosts=hosts, timeout=10)
    other.start(timeout=15)
    step("write without auth", lambda: stat(other.set(root + "/p", b"x")))
    step("read without auth", lambda: other.get(root + "/p")[0])
    step("set acl open", lambda: stat(zk.set_acls(root + "/p", OPEN_ACL_UNSAFE)))
    step("write after open acl", lambda: stat(other.set(root + "/p", b"x")))
    other.stop()
    zk.delete(root, recursive=True)
    zk.stop()
    return trace


if __name__ == "__main__":
    reference = run(sys.argv[1])
    ours = run(sys.argv[2])
    diffs = [(r, o) for r, o in zip(reference, ours) if r != o]
    if len(reference) != len(ours):
        diffs.append((f"{len(reference)} steps", f"{len(ours)} steps"))
    for r, o in diffs:
        print(f"DIFF\n  zookeeper: {r}\n  ensemble:  {o}")
    print(f"{len(reference)} steps compared, {len(diffs)} differences")
    sys.exit(1 if diffs else 0)
