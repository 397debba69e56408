"""The same reconfig requests, for a differential test against Apache ZooKeeper 3.8: one line per
request, `name CODE config-text` (CODE 0 when it succeeded, else ZooKeeper's error code). Usage:
kazoo_reconfig_errors.py host:port,... super:password SPEC3 SPEC3_MOVED
(SPEC3: server 3's current line; SPEC3_MOVED: the same server at another client port). Requests
that succeed leave the membership as it was (except `move`, which `move_back` undoes), so the
answers do not depend on each other."""

import sys

from kazoo.client import KazooClient
from kazoo.exceptions import ZookeeperError

hosts, credentials, spec3, moved3 = sys.argv[1:5]
admin = KazooClient(hosts=hosts, auth_data=[("digest", credentials)])
admin.start(timeout=20)
plain = KazooClient(hosts=hosts)
plain.start(timeout=20)
text, _ = admin.get("/zookeeper/config")
members = ",".join(l for l in text.decode().split("\n") if l.startswith("server."))
spec4 = spec3.replace("server.3=", "server.4=").replace(":2888:", ":2889:")
spec5 = spec3.replace("server.3=", "server.5=").replace(":2888:", ":2890:")


def run(name, client, joining=None, leaving=None, new_members=None, from_config=-1):
    try:
        data, _ = client.reconfig(joining, leaving, new_members, from_config)
        lines = data.decode().split("\n")
        shape = "|".join(l if l.startswith("server.") else l.split("=")[0] for l in lines)
        print(name, 0, shape)
    except ZookeeperError as e:
        print(name, e.code)


run("no_super_auth", plain, leaving="3")
run("no_super_auth_bad_spec", plain, joining="foo")
run("no_super_auth_stale", plain, leaving="3", from_config=0x12345)
run("stale_and_bad_spec", admin, joining="foo", from_config=0x12345)
run("bad_server_string", admin, joining="server.4=garbage")
run("not_a_spec", admin, joining="foo")
run("bad_leaving_id", admin, leaving="x")
run("remove_every_voter", admin, leaving="1,2,3")
run("leave_one_voter", admin, leaving="2,3")
run("stale_from_config", admin, leaving="3", from_config=0x12345)
run("no_quorum_connected", admin, new_members=",".join([members.split(",")[0], spec4, spec5]))
run("duplicate_id", admin, joining=spec3 + "," + spec3)
run("join_and_leave_same_id", admin, joining=spec3, leaving="3")
run("incremental_and_new_members", admin, joining=spec3, new_members=members)
run("leave_non_member", admin, leaving="9")
run("nothing_asked", admin)
run("empty_leaving_list", admin, leaving=",")
run("join_existing_id_elsewhere", admin, joining=moved3)
run("join_back", admin, joining=spec3)
admin.stop()
plain.stop()
