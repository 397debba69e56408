//! The checkers fail on violating histories fed to them directly.

use super::*;
use crate::sim::server::{tree_of, Frontend};
use crate::sim::SimConfig;
use ensemble_actors::data_tree::{AclEntry, CreateMode, TreeOp, TreeTxn};
use ensemble_messages::Txn;

/// A simulation with one client, connected and handshaken on connection 1 to server 1.
fn connected() -> Sim {
    let cfg = SimConfig {
        nodes: 3,
        observers: 0,
        fault_ms: 1_000,
        liveness_ms: 1_000,
        drop_rate: 0.0,
        clients: 1,
    };
    let mut sim = Sim::new(1, cfg);
    let client = &mut sim.clients[0];
    client.session = SessionId(0x10);
    client.conn = Some(Conn {
        server: 1,
        incarnation: 0,
        id: 1,
        handshaken: true,
        in_flight: VecDeque::new(),
        last_sent: 0,
        last_heard: 0,
    });
    sim
}

/// Client 0 has sent request `xid` (an exists on `path`).
fn sent(sim: &mut Sim, xid: i32, path: &str) {
    let conn = sim.clients[0].conn.as_mut().expect("connected");
    conn.in_flight.push_back(InFlight {
        xid,
        op: OpCode::Exists,
        path: path.into(),
        sent: 0,
    });
}

/// A reply frame to `xid` at `zxid`.
fn reply(xid: i32, zxid: i64) -> ToClient {
    ToClient::Frame(
        ReplyHeader {
            xid,
            zxid,
            err: ensemble_messages::zk::OK,
        }
        .to_bytes(),
    )
}

/// A data-changed event frame on `path`.
fn data_changed(path: &str) -> ToClient {
    let mut bytes = ReplyHeader {
        xid: xid::WATCH_EVENT,
        zxid: -1,
        err: ensemble_messages::zk::OK,
    }
    .to_bytes();
    bytes.extend(
        WatcherEvent {
            event_type: EventType::NodeDataChanged.code(),
            state: 3,
            path: path.into(),
        }
        .to_bytes(),
    );
    ToClient::Frame(bytes)
}

#[test]
fn replies_out_of_order_fail_the_fifo_check() {
    let mut sim = connected();
    sent(&mut sim, 1, "/a");
    sent(&mut sim, 2, "/a");
    let e = sim
        .client_receives(0, 1, reply(2, 5), Zxid::ZERO)
        .expect_err("reply 2 before reply 1");
    assert!(e.contains("not FIFO"), "{e}");
}

#[test]
fn a_reply_whose_zxid_goes_back_fails() {
    let mut sim = connected();
    sim.now = 10;
    sim.clients[0].last_zxid = 7;
    sim.clients[0].last_zxid_at = 5;
    sim.last_disturbance = 0;
    sent(&mut sim, 1, "/a");
    let e = sim
        .client_receives(0, 1, reply(1, 6), Zxid::ZERO)
        .expect_err("zxid 6 after 7");
    assert!(e.contains("at zxid 6 after one at 7"), "{e}");
}

#[test]
fn a_watch_fires_at_most_once() {
    let mut sim = connected();
    sent(&mut sim, 1, "/a");
    sim.client_receives(0, 1, reply(1, 5), Zxid::ZERO)
        .expect("the exists registers a data watch");
    sim.client_receives(0, 1, data_changed("/a"), Zxid::new(1, 6))
        .expect("the registered watch fires");
    let e = sim
        .client_receives(0, 1, data_changed("/a"), Zxid::new(1, 7))
        .expect_err("the same watch fires twice");
    assert!(e.contains("no watch set"), "{e}");
}

#[test]
fn watch_events_out_of_zxid_order_fail() {
    let mut sim = connected();
    sent(&mut sim, 1, "/a");
    sent(&mut sim, 2, "/b");
    sim.client_receives(0, 1, reply(1, 5), Zxid::ZERO)
        .expect("registers /a");
    sim.client_receives(0, 1, reply(2, 5), Zxid::ZERO)
        .expect("registers /b");
    sim.client_receives(0, 1, data_changed("/b"), Zxid::new(1, 9))
        .expect("fires /b");
    let e = sim
        .client_receives(0, 1, data_changed("/a"), Zxid::new(1, 8))
        .expect_err("an event of an earlier txn after a later one");
    assert!(e.contains("after one of"), "{e}");
}

#[test]
fn expired_without_a_committed_close_fails() {
    let mut sim = connected();
    sim.clients[0].conn.as_mut().expect("connected").handshaken = false;
    let refused = ConnectResponse {
        protocol_version: 0,
        time_out: 0,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
        read_only: false,
    };
    let e = sim
        .client_receives(0, 1, ToClient::Frame(refused.to_bytes()), Zxid::ZERO)
        .expect_err("no committed txn closed session 0x10");
    assert!(e.contains("no committed txn closed it"), "{e}");
}

/// Server 1's history opens session 0x10 with an ephemeral: its tree must hold it exactly
/// while the history leaves the session open.
#[test]
fn an_ephemeral_of_a_session_its_history_closed_fails() {
    let mut sim = connected();
    let txn = |n: u32, op: TreeOp| Txn {
        zxid: Zxid::new(1, n),
        origin: 1,
        request_id: 0,
        body: TreeTxn {
            session_id: SessionId(0x10),
            time_ms: 0,
            auth: Vec::new(),
            op,
        }
        .encode(),
    };
    let history = vec![
        txn(
            1,
            TreeOp::CreateSession {
                timeout_ms: 1_000,
                password: [0; 16],
            },
        ),
        txn(
            2,
            TreeOp::Create {
                path: "/e".into(),
                data: b"e".to_vec(),
                acl: AclEntry::open(),
                mode: CreateMode::Ephemeral,
            },
        ),
    ];
    let node = sim.nodes.get_mut(&1).expect("server 1");
    node.front = Some(Frontend::new(1, &history, 0, 100));
    sim.ephemeral_paths.insert("/e".into());
    sim.reset_lives(1, &history);
    sim.check_tree(1)
        .expect("the session lives, its ephemeral exists");
    // The history closes the session (its owner's close), but the tree kept it.
    let close = txn(3, TreeOp::CloseSession);
    sim.note_session_txn(1, &close);
    let e = sim
        .check_tree(1)
        .expect_err("an ephemeral outlives its session");
    assert!(e.contains("not those its history leaves open"), "{e}");
    // The tree that applied the close passes again.
    let mut closed = history.clone();
    closed.push(close);
    let node = sim.nodes.get_mut(&1).expect("server 1");
    node.front = Some(Frontend::new(1, &closed, 0, 100));
    assert!(tree_of(&closed).stat("/e").is_none());
    sim.check_tree(1)
        .expect("the ephemeral went with its session");
}
