"""kazoo's reconfig tests (kazoo/tests/test_client.py's TestReconfig, rewritten) against an
ensemble: a caller without super auth, bad input, a stale from_config, and a participant removed
then added back incrementally. Usage: kazoo_reconfig.py host:port,... super:password id
(id: the participant to remove and add back). Prints one "ok ..." line per check; exits non-zero on the first failure."""

import sys

from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError, BadVersionError, NoAuthError

hosts, credentials, sid = sys.argv[1], sys.argv[2], sys.argv[3]
admin = KazooClient(hosts=hosts, auth_data=[("digest", credentials)])
admin.start(timeout=20)
plain = KazooClient(hosts=hosts)
plain.start(timeout=20)


def raises(error, call):
    try:
        call()
    except error:
        return True
    return False


text, stat = admin.get("/zookeeper/config")
lines = text.decode().split("\n")
assert lines[-1] == "version=0", lines
third = [l for l in lines if l.startswith("server.%s=" % sid)][0]

assert raises(NoAuthError, lambda: plain.reconfig(joining=None, leaving=sid, new_members=None))
print("ok no super auth")

assert raises(
    BadArgumentsError, lambda: admin.reconfig(joining="some thing", leaving=None, new_members=None)
)
print("ok bad input")

text, stat = admin.reconfig(joining=None, leaving=sid, new_members=None)
text = text.decode()
assert ("server.%s=" % sid) not in text and text.endswith("version=%x" % stat.mzxid), text
print("ok participant removed")

assert raises(
    BadVersionError,
    lambda: admin.reconfig(joining=third, leaving=None, new_members=None, from_config=0),
)
print("ok stale from_config")

text, _ = admin.reconfig(joining=third, leaving=None, new_members=None, from_config=stat.mzxid)
assert third in text.decode().split("\n"), text
print("ok participant added")

seen, _ = plain.get("/zookeeper/config")
plain.sync("/")
seen, _ = plain.get("/zookeeper/config")
assert seen == text, (seen, text)
print("ok config node seen by all")
admin.stop()
plain.stop()
