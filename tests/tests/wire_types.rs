//! The typed vocabulary keeps ZooKeeper's wire values (issue 9): error codes, create flags
//! and their ops, watch modes and types, and session ids cross a real client port as the
//! numbers ZooKeeper uses, checked against literals rather than the enums. One server on
//! 127.0.210.1; under a second.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::jute::{
    AddWatchRequest, Create2Response, CreateTtlRequest, Jute, NullableBuffer, SetDataRequest,
    WatchesRequest,
};
use ensemble_messages::zk::{CreateMode, OpCode};
use ensemble_node::four_letter;
use ensemble_node::local_cluster::{ProcessCluster, Program};
use ensemble_tests::raw_client::{create_request, RawSession};
use std::time::Duration;

const SERVE: Duration = Duration::from_secs(20);

/// A create request for `path` with raw `flags`, sent with op `code`: the reply's error code
/// and, when it passed, the created path.
fn create(s: &mut RawSession, code: OpCode, path: &str, flags: i32) -> (i32, String) {
    let mut req = create_request(path, Some(b"v"));
    req.flags = flags;
    let (err, body) = s.call(code, &req.to_bytes()).unwrap();
    let path = Create2Response::from_bytes(&body).map_or_else(|_| String::new(), |r| r.path);
    (err, path)
}

/// A createTTL request with raw `flags` and `ttl`: the reply's error code.
fn create_ttl(s: &mut RawSession, path: &str, flags: i32, ttl: i64) -> i32 {
    let plain = create_request(path, Some(b"v"));
    let req = CreateTtlRequest {
        path: plain.path,
        data: plain.data,
        acl: plain.acl,
        flags,
        ttl,
    };
    s.call(OpCode::CreateTtl, &req.to_bytes()).unwrap().0
}

#[test]
fn codes_flags_and_session_ids_keep_zookeepers_wire_values() {
    let mut c = ProcessCluster::new(
        1,
        210,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start(1);
    c.wait_serving(SERVE).unwrap();
    let addr = c.client_addr(1);
    let mut s = RawSession::connect(&addr).unwrap();

    // Error codes.
    assert_eq!(create(&mut s, OpCode::Create2, "/t", 0).0, 0);
    assert_eq!(
        create(&mut s, OpCode::Create2, "/t", 0).0,
        -110,
        "NodeExists"
    );
    assert_eq!(s.get("/missing", false).unwrap().0, -101, "NoNode");
    let stale = SetDataRequest {
        path: "/t".into(),
        data: NullableBuffer::bytes(b"x".to_vec()),
        version: 7,
    };
    let (err, _) = s.call(OpCode::SetData, &stale.to_bytes()).unwrap();
    assert_eq!(err, -103, "BadVersion");

    // Create flags: 2 and 3 are sequential, 4 is a container (createContainer), 5 and 6 take
    // a TTL (createTTL); an unknown flag, or a TTL for another mode, is BadArguments (-8).
    let (err, path) = create(&mut s, OpCode::Create2, "/t/seq-", 2);
    assert_eq!((err, path.as_str()), (0, "/t/seq-0000000000"));
    assert_eq!(create(&mut s, OpCode::CreateContainer, "/box", 4).0, 0);
    assert_eq!(create_ttl(&mut s, "/ttl", 5, 60_000), 0);
    assert_eq!(create_ttl(&mut s, "/ttl-seq-", 6, 60_000), 0);
    assert_eq!(create_ttl(&mut s, "/no-ttl", 5, -1), -8);
    assert_eq!(create_ttl(&mut s, "/not-a-ttl-mode", 0, 60_000), -8);
    assert_eq!(create(&mut s, OpCode::Create2, "/bad-flag", 7).0, -8);

    // addWatch mode 1 is recursive, removeWatches type 5 names it; then none is left
    // (NoWatcher, -121), and an unknown type names none.
    let watch = AddWatchRequest {
        path: "/t".into(),
        mode: 1,
    };
    assert_eq!(s.call(OpCode::AddWatch, &watch.to_bytes()).unwrap().0, 0);
    let remove = |s: &mut RawSession, watcher_type| {
        let req = WatchesRequest {
            path: "/t".into(),
            watcher_type,
        };
        s.call(OpCode::RemoveWatches, &req.to_bytes()).unwrap().0
    };
    assert_eq!(remove(&mut s, 4), -121, "not a plain persistent watch");
    assert_eq!(remove(&mut s, 5), 0);
    assert_eq!(remove(&mut s, 5), -121);
    assert_eq!(remove(&mut s, 9), -121);

    // Session ids: an ephemeral's owner is the session's id, which `cons` prints as 0x hex.
    let rt = ensemble_tests::runtime();
    let client = rt
        .block_on(ZkClient::connect(std::slice::from_ref(&addr), SERVE))
        .unwrap();
    rt.block_on(client.create("/t/e", b"", CreateMode::EphemeralSequential))
        .unwrap();
    let (mut children, _) = rt.block_on(client.get_children("/t", false)).unwrap();
    children.sort();
    assert_eq!(children, ["e0000000001", "seq-0000000000"]);
    let stat = rt
        .block_on(client.exists("/t/e0000000001"))
        .unwrap()
        .unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id.0);
    let sid = format!("sid=0x{:x},", stat.ephemeral_owner);
    let cons = four_letter::ask(&addr, "cons", Duration::from_secs(5)).unwrap();
    assert!(cons.contains(&sid), "{sid} in {cons}");
    assert_eq!(client.session_id.to_string(), sid[4..sid.len() - 1]);
    let box_stat = rt.block_on(client.exists("/box")).unwrap().unwrap();
    assert_eq!(
        box_stat.ephemeral_owner, 0,
        "a container's marker reads as 0"
    );
}
