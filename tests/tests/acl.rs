//! ACLs as ZooKeeper 3.8 enforces them, session passwords nobody can derive, and walks a
//! client cannot turn into a stack overflow, against real server processes.

use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::jute::{Acl, Buffer, ConnectRequest, ConnectResponse, Id, Jute};
use ensemble_messages::zk::{perm, EventType, ZkError};
use ensemble_messages::zk::{AddWatchMode, CreateMode};
use ensemble_node::local_cluster::{ProcessCluster, Program};
use ensemble_tests::runtime;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `sha1("super:letmein")`, base64: the superDigest of the first test's server.
const SUPER_DIGEST: &str = "super:5ZIErkhbrC1ytr/v6D+dXQw7elQ=";

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Result<(), ZkError> {
    match r {
        Ok(_) => Ok(()),
        Err(ClientError::Server(c)) => Err(c),
        Err(e) => panic!("{e}"),
    }
}

/// The password the server used to derive from the session id with a public constant.
fn old_derived_password(session_id: i64) -> Vec<u8> {
    let mut x = session_id as u64 ^ 0xB341_5C00_E5E1_B1E5;
    let mut out = Vec::new();
    for _ in 0..2 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out
}

/// Asks `addr` to resume `session_id` with `password`; the handshake reply.
fn try_resume(addr: &str, session_id: i64, password: Vec<u8>) -> ConnectResponse {
    let mut c = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id,
        passwd: Buffer(password),
    }
    .to_bytes();
    c.push(0);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&(c.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&c).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    ConnectResponse::from_bytes(&body).unwrap()
}

#[test]
fn acls_watches_super_digest_and_session_passwords_as_zookeeper_3_8() {
    let exe = env!("CARGO_BIN_EXE_ensemble-cli").into();
    let extra = format!("DigestAuthenticationProvider.superDigest={SUPER_DIGEST}\n");
    let mut c = ProcessCluster::with_zoo_cfg_lines(1, 65, exe, &extra);
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let rt = runtime();
    let connect = |events| {
        rt.block_on(ZkClient::connect_with_events(
            std::slice::from_ref(&addr),
            Duration::from_secs(10),
            events,
        ))
        .unwrap()
    };
    let (alice_tx, _alice_events) = tokio::sync::mpsc::unbounded_channel();
    let alice = connect(alice_tx);
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let stranger = connect(tx);
    rt.block_on(async {
        alice.add_auth("digest", b"alice:pw").await.unwrap();
        stranger
            .add_watch("/", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let mine = vec![acl(perm::ALL, "auth", "")];
        alice
            .create_with_acl("/secret", b"s", mine, CreateMode::Persistent)
            .await
            .unwrap();
        let shown = vec![
            acl(perm::READ, "world", "anyone"),
            acl(perm::ALL, "auth", ""),
        ];
        alice
            .create_with_acl("/shown", b"s", shown, CreateMode::Persistent)
            .await
            .unwrap();
        alice.set_data("/secret", b"t", -1).await.unwrap();
        alice.delete("/secret", -1).await.unwrap();
        let mine = vec![acl(perm::ALL, "auth", "")];
        alice
            .create_with_acl("/secret", b"s", mine, CreateMode::Persistent)
            .await
            .unwrap();
        alice
            .create("/open", b"o", CreateMode::Persistent)
            .await
            .unwrap();
    });

    // The recursive watch on / saw /shown and /open, nothing of /secret (CVE-2024-23944).
    let seen = rt.block_on(async {
        let mut seen = Vec::new();
        while !seen.contains(&(EventType::NodeCreated, "/open".to_string())) {
            let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("the /open event within 10 s")
                .expect("events open");
            if e.event_type != EventType::None {
                seen.push((e.event_type, e.path));
            }
        }
        seen
    });
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/shown".to_string()),
            (EventType::NodeCreated, "/open".to_string())
        ]
    );

    rt.block_on(async {
        // getACL: nothing without READ or ADMIN, masked digests with READ only (CVE-2019-0201).
        assert_eq!(
            code(stranger.get_acl("/secret").await),
            Err(ZkError::NoAuth)
        );
        let (shown, _) = stranger.get_acl("/shown").await.unwrap();
        assert_eq!(shown[1].id.id, "alice:x");
        let (full, _) = alice.get_acl("/shown").await.unwrap();
        assert_ne!(full[1].id.id, "alice:x");
        assert_eq!(
            code(stranger.get_all_children_number("/secret").await),
            Err(ZkError::NoAuth)
        );
        // Duplicate entries are dropped before the ACL is stored, at create and setACL.
        let dup = vec![
            acl(perm::ALL, "world", "anyone"),
            acl(perm::READ, "digest", "bob:hash"),
            acl(perm::ALL, "world", "anyone"),
        ];
        stranger
            .create_with_acl("/dup", b"", dup.clone(), CreateMode::Persistent)
            .await
            .unwrap();
        let (stored, _) = stranger.get_acl("/dup").await.unwrap();
        assert_eq!(stored, dup[..2].to_vec());
        let twice = vec![acl(perm::ALL, "world", "anyone"); 2];
        stranger.set_acl("/dup", twice, -1).await.unwrap();
        let (stored, _) = stranger.get_acl("/dup").await.unwrap();
        assert_eq!(stored, vec![acl(perm::ALL, "world", "anyone")]);
        // /zookeeper/config: anyone reads, nobody writes.
        assert_eq!(code(stranger.get_data("/zookeeper/config").await), Ok(()));
        assert_eq!(
            code(stranger.set_data("/zookeeper/config", b"x", -1).await),
            Err(ZkError::NoAuth)
        );
        // ACLs and paths ZooKeeper refuses.
        for bad in [
            acl(perm::ALL, "super", ""),
            acl(perm::ALL, "ip", "1.2.3.4/99"),
            acl(perm::ALL, "ip", "not-an-ip"),
            acl(perm::ALL, "digest", "nocolon"),
            acl(perm::ALL, "auth", ""),
        ] {
            let r = stranger
                .create_with_acl("/bad", b"", vec![bad], CreateMode::Persistent)
                .await;
            assert_eq!(code(r), Err(ZkError::InvalidAcl));
        }
        for bad in ["/bad\u{1}", "/bad\u{fff0}", "/bad\u{e000}"] {
            let r = stranger
                .create_with_acl(bad, b"", open_acl(), CreateMode::Persistent)
                .await;
            assert_eq!(code(r), Err(ZkError::BadArguments), "{bad:?}");
        }
        // superDigest: the wrong password is just another digest id; the right one is super.
        stranger.add_auth("digest", b"super:guess").await.unwrap();
        assert_eq!(
            code(stranger.get_data("/secret").await),
            Err(ZkError::NoAuth)
        );
        stranger.add_auth("digest", b"super:letmein").await.unwrap();
        assert_eq!(stranger.get_data("/secret").await.unwrap().0, b"s");
        let (full, _) = stranger.get_acl("/secret").await.unwrap();
        assert_ne!(full[0].id.id, "alice:x");
        stranger.set_data("/secret", b"mine", -1).await.unwrap();
    });

    // Anyone can read a session id (ephemeralOwner); it does not give the session away.
    rt.block_on(alice.create("/eph", b"", CreateMode::Ephemeral))
        .unwrap();
    let (_, stat) = rt.block_on(stranger.get_data("/eph")).unwrap();
    assert_eq!(stat.ephemeral_owner, alice.session_id.0);
    for guess in [vec![0; 16], old_derived_password(alice.session_id.0)] {
        let reply = try_resume(&addr, alice.session_id.0, guess);
        assert_eq!(
            (reply.session_id, reply.time_out),
            (0, 0),
            "refused as expired"
        );
    }
    assert_eq!(code(rt.block_on(alice.get_data("/eph"))), Ok(()));
    rt.block_on(alice.close()).unwrap();
    rt.block_on(stranger.close()).unwrap();
}

#[test]
fn a_chain_of_twelve_thousand_nested_znodes_does_not_bring_the_server_down() {
    const DEPTH: usize = 12_000;
    let mut c = ProcessCluster::new(
        1,
        66,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "fsync = false\nsnap_count = 1000000\n",
    );
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let rt = runtime();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = rt
        .block_on(ZkClient::connect_with_events(
            std::slice::from_ref(&addr),
            Duration::from_secs(30),
            tx,
        ))
        .unwrap();
    rt.block_on(client.add_watch("/", AddWatchMode::PersistentRecursive))
        .unwrap();
    let mut path = String::new();
    let mut chunk = Vec::new();
    for level in 1..=DEPTH {
        path.push_str("/d");
        chunk.push(path.clone());
        if chunk.len() == 500 || level == DEPTH {
            // Pipelined: a session's requests are applied in order, parents first.
            let creates = chunk
                .iter()
                .map(|p| client.create(p, b"", CreateMode::Persistent));
            for r in rt.block_on(futures::future::join_all(creates)) {
                r.unwrap();
            }
            chunk.clear();
        }
    }
    let leaf = format!("{path}/e");
    rt.block_on(async {
        assert_eq!(
            client.get_all_children_number("/d").await.unwrap(),
            DEPTH as i32 - 1
        );
        assert!(client.get_all_children_number("/").await.unwrap() >= DEPTH as i32);
        assert!(client
            .get_children(&path, false)
            .await
            .unwrap()
            .0
            .is_empty());
        client
            .create(&leaf, b"", CreateMode::Ephemeral)
            .await
            .unwrap();
    });
    // The recursive watch on / saw the deepest create.
    rt.block_on(async {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
                .await
                .expect("the leaf's event within 30 s")
                .expect("events open");
            if e.event_type == EventType::NodeCreated && e.path == leaf {
                break;
            }
        }
    });
    // Closing the session deletes the deepest (ephemeral) znode; the server keeps serving.
    rt.block_on(client.close()).unwrap();
    let after = rt
        .block_on(ZkClient::connect(
            std::slice::from_ref(&addr),
            Duration::from_secs(10),
        ))
        .unwrap();
    rt.block_on(async {
        assert!(after.exists(&leaf).await.unwrap().is_none());
        assert_eq!(
            after.get_all_children_number("/d").await.unwrap(),
            DEPTH as i32 - 1
        );
        after
            .create("/still-serving", b"", CreateMode::Persistent)
            .await
            .unwrap();
    });
    assert!(c.is_running(1));
}
