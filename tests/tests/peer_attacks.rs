//! Hostile input on the quorum port (issue 7, items 1 to 3): a frame that claims a huge string,
//! a stranger without the peer secret, and a stranger that forwards forged writes to an
//! ensemble running without peer authentication. Each is refused and every server keeps serving.

use ensemble_actors::data_tree::{AclEntry, CreateMode, TreeOp, TreeTxn};
use ensemble_messages::peer::PEER_PROTOCOL_VERSION;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{codec, HandshakeFrame, PeerMessage, ZabMessage};
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use ensemble_tests::client_session;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn send(s: &mut TcpStream, value: &impl serde::Serialize) {
    s.write_all(&frame(&codec::encode(value).expect("encodes")))
        .expect("write");
}

fn read_handshake(s: &mut TcpStream) -> Option<HandshakeFrame> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    codec::decode(&buf).ok()
}

/// Whether the server closed `s` (reads end) within the deadline.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// A stranger dials `addr` claiming to be server `sid`, with a made-up proof.
fn stranger_hello(addr: &str, sid: u64, proof: Option<[u8; 32]>) -> (TcpStream, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    send(
        &mut s,
        &HandshakeFrame::Hello {
            version: PEER_PROTOCOL_VERSION,
            sid,
            nonce: [7; 32],
        },
    );
    let Some(HandshakeFrame::Challenge { .. }) = read_handshake(&mut s) else {
        return (s, false);
    };
    send(&mut s, &HandshakeFrame::Prove { proof });
    let accepted = matches!(read_handshake(&mut s), Some(HandshakeFrame::Accepted));
    (s, accepted)
}

/// Waits until servers 1 and 2 serve as a quorum of three.
fn wait_two_of_three(c: &ProcessCluster) {
    wait_until("1 and 2 to form a quorum", DEADLINE, || {
        let mut modes = [c.mode(1), c.mode(2)];
        modes.sort();
        modes == ["follower", "leader"]
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log(1)));
}

/// A forged write: create `path` as the superuser.
fn forged_create(path: &str) -> Vec<u8> {
    TreeTxn {
        session_id: SessionId::NONE,
        time_ms: 0,
        auth: vec![("super".into(), "x".into())],
        op: TreeOp::Create {
            path: path.into(),
            data: b"pwned".to_vec(),
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        },
    }
    .encode()
}

#[test]
fn a_huge_claimed_length_and_a_stranger_without_the_secret_are_refused() {
    let exe = env!("CARGO_BIN_EXE_ensemble-cli");
    let mut c = ProcessCluster::new(3, 85, Program::Cli(exe.into()), "");
    c.start(1);
    c.start(2);
    wait_two_of_three(&c);
    // Issue 7 item 1: a Handshake (version 1 layout) whose string claims 2^60 bytes, sent to
    // every running server before any handshake.
    let poison = [0, 0, 0, 0x0b, 1, 3, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10];
    for id in [1, 2] {
        let mut s = TcpStream::connect(format!("127.0.85.{id}:2888")).expect("connect");
        s.write_all(&poison).expect("write");
        assert!(
            closed_by_server(&mut s),
            "server {id} closes the connection"
        );
    }
    // Item 2: a stranger claiming the absent server 3 cannot prove it holds the secret.
    for id in [1, 2] {
        let (mut s, accepted) = stranger_hello(&format!("127.0.85.{id}:2888"), 3, Some([0; 32]));
        assert!(!accepted, "server {id} accepted a stranger");
        send(
            &mut s,
            &PeerMessage::Zab(ZabMessage::Request {
                request_id: 1,
                body: forged_create("/pwned"),
            }),
        );
        assert!(closed_by_server(&mut s));
    }
    wait_until("both servers to log the refusal", DEADLINE, || {
        [1, 2].iter().all(|id| {
            c.log(*id)
                .contains("a peer claiming server 3 failed to prove it holds the peer secret")
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log(1)));
    assert!(c.is_running(1) && c.is_running(2));
    let (rt, client) = client_session(&c.client_addr(1));
    rt.block_on(client.create("/after", b"ok", CreateMode::Persistent))
        .expect("still serving writes");
    assert_eq!(rt.block_on(client.exists("/pwned")).expect("exists"), None);
}

/// Without peer authentication (a plain Apache zoo.cfg) a stranger can finish the handshake,
/// but a write forwarded by a peer that never synced with the leader is ignored, and a poison
/// body no longer aborts anyone.
#[test]
fn writes_forwarded_by_an_unsynced_peer_are_ignored() {
    let mut c = ProcessCluster::with_zoo_cfg(3, 86, env!("CARGO_BIN_EXE_ensemble-cli").into());
    c.start(1);
    c.start(2);
    wait_two_of_three(&c);
    assert!(c.log(1).contains("PEER AUTHENTICATION IS OFF"));
    let mut strangers = Vec::new();
    for id in [1, 2] {
        let (mut s, accepted) = stranger_hello(&format!("127.0.86.{id}:2888"), 3, None);
        assert!(
            accepted,
            "without peer authentication the handshake completes"
        );
        send(
            &mut s,
            &PeerMessage::Zab(ZabMessage::Request {
                request_id: 1,
                body: forged_create("/pwned"),
            }),
        );
        // Item 3: a body whose string claims 2^60 bytes.
        let mut poison = vec![0, 0, 2];
        poison.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        send(
            &mut s,
            &PeerMessage::Zab(ZabMessage::Request {
                request_id: 2,
                body: poison,
            }),
        );
        strangers.push(s);
    }
    wait_until("the leader to ignore the forged writes", DEADLINE, || {
        [1, 2].iter().any(|id| {
            c.log(*id)
                .contains("write forwarded by an unsynced peer ignored")
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", c.log(1), c.log(2)));
    let (rt, client) = client_session(&c.client_addr(2));
    rt.block_on(client.create("/after", b"ok", CreateMode::Persistent))
        .expect("still serving writes");
    assert_eq!(rt.block_on(client.exists("/pwned")).expect("exists"), None);
    assert!(c.is_running(1) && c.is_running(2));
}
