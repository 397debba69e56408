"""Fills a ZooKeeper ensemble with every kind of znode and dumps whole trees, for the Apache
ZooKeeper data import test (tests/tests/apache_import.rs) and its fixtures.

  apache_data.py fill HOSTS BIG_BYTES TTL(0|1)  writes the tree, keeping one session with
                                                 ephemerals open; prints {"last_zxid": ...},
                                                 waits for a line on stdin, then prints
                                                 "resumed" once that same session is connected
                                                 again (to whatever servers now answer) and its
                                                 ephemeral still exists
  apache_data.py dump HOSTS                      prints the whole tree as JSON
  apache_data.py next HOSTS                      creates one more sequential znode and prints
                                                 {"path": ..., "czxid": ...}
"""
import base64
import json
import sys
import time

from kazoo.client import KazooClient
from kazoo.protocol.serialization import Create, SetData, long_struct
from kazoo.security import make_digest_acl, ACL, Id

OPEN = [ACL(31, Id("world", "anyone"))]
RETRY = dict(max_tries=-1, delay=0.1, backoff=1.5, max_delay=1.0)


class CreateContainer(Create):
    """createContainer (op 19): a create with flags 4; kazoo has no call for it."""
    type = 19


class CreateTtl(Create):
    """createTTL (op 21): a create with flags 5 followed by the TTL in ms."""
    type = 21

    def __new__(cls, path, data, acl, ttl):
        self = super().__new__(cls, path, data, acl, 5)
        self.ttl = ttl
        return self

    def serialize(self):
        return Create.serialize(self) + long_struct.pack(self.ttl)


def raw(zk, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get()


def client(hosts, **kw):
    # No command retry: a create retried after a connection loss would fail as NodeExists.
    zk = KazooClient(hosts=hosts, connection_retry=RETRY, **kw)
    zk.start(timeout=30)
    return zk


def fill(hosts, big, ttl):
    zk = client(hosts, auth_data=[("digest", "alice:secret")])
    zk.create("/app", b"hello")
    for i in range(6):
        zk.create("/app/seq-", b"s%d" % i, sequence=True)
    for name in sorted(zk.get_children("/app"))[:2]:
        zk.delete("/app/" + name)
    zk.create("/app/cfg", b"v0", acl=[make_digest_acl("alice", "secret", all=True)])
    for i in range(1, 4):
        zk.set("/app/cfg", b"v%d" % i)
    zk.set_acls("/app/cfg", [make_digest_acl("alice", "secret", all=True), ACL(1, Id("world", "anyone"))])
    zk.create("/app/only-auth", b"a", acl=[ACL(31, Id("auth", ""))])
    zk.create("/big", b"x" * big)
    zk.create("/bin", bytes(range(256)))
    zk.create("/empty", b"")
    # Null data (length -1; kazoo's create and set take bytes only, its raw records take None).
    raw(zk, Create("/null", None, OPEN, 0))
    zk.create("/nulled", b"n")
    raw(zk, SetData("/nulled", None, -1))
    zk.create("/unicod\u00e9/\u00fcber", b"u", makepath=True)
    raw(zk, CreateContainer("/cont", b"", OPEN, 4))
    zk.create("/cont/child", b"c")
    if ttl:
        raw(zk, CreateTtl("/ttl", b"t", OPEN, 3_600_000))
    t = zk.transaction()
    t.create("/multi", b"m")
    t.create("/multi/a", b"1")
    t.set_data("/app", b"hello2")
    t.check("/app/cfg", 3)
    t.commit()
    bad = zk.transaction()
    bad.create("/never", b"n")
    bad.check("/app", 99)
    bad.commit()
    for i in range(40):
        zk.create("/many/n%03d" % i, b"%d" % i, makepath=True)
        if i % 3 == 0:
            zk.delete("/many/n%03d" % i)
    eph = client(hosts, timeout=30.0)
    eph.create("/app/eph", b"e", ephemeral=True)
    eph.create("/app/ephseq-", b"e", ephemeral=True, sequence=True)
    gone = client(hosts)
    gone.create("/app/gone", b"g", ephemeral=True)
    gone.stop()
    stat = zk.set("/app", b"hello3")
    zk.stop()
    print(json.dumps({"last_zxid": stat.mzxid, "session": eph.client_id[0]}))
    sys.stdout.flush()
    return eph, eph.client_id[0]


def dump(hosts):
    zk = client(hosts, auth_data=[("digest", "alice:secret")])
    out = {}
    todo = ["/"]
    while todo:
        path = todo.pop()
        data, st = zk.get(path)
        acl, _ = zk.get_acls(path)
        out[path] = {
            # kazoo reads a null buffer (length -1) as None: JSON null, apart from empty data.
            "data": None if data is None else base64.b64encode(data).decode(),
            "acl": [[a.perms, a.id.scheme, a.id.id] for a in acl],
            "stat": [st.czxid, st.mzxid, st.ctime, st.mtime, st.version, st.cversion,
                     st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren, st.pzxid],
        }
        for child in zk.get_children(path):
            todo.append(path.rstrip("/") + "/" + child)
    zk.stop()
    print(json.dumps(out, sort_keys=True))


def wait_resumed(eph, sid):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            st = eph.exists("/app/eph") if eph.connected else None
        except Exception:
            st = None
        if st is not None and st.ephemeralOwner == sid and (eph.client_id or [0])[0] == sid:
            # Left open: the test then checks that its ephemerals are still served.
            print("resumed")
            sys.stdout.flush()
            return
        time.sleep(0.1)
    print("not resumed: state=%s" % eph.state)


def next_seq(hosts):
    zk = client(hosts)
    path = zk.create("/app/seq-", b"after", sequence=True)
    st = zk.exists(path)
    print(json.dumps({"path": path, "czxid": st.czxid}))
    zk.stop()


if __name__ == "__main__":
    cmd, hosts = sys.argv[1], sys.argv[2]
    if cmd == "fill":
        eph, sid = fill(hosts, int(sys.argv[3]), sys.argv[4] == "1")
        sys.stdin.readline()
        wait_resumed(eph, sid)
    elif cmd == "dump":
        dump(hosts)
    elif cmd == "next":
        next_seq(hosts)
