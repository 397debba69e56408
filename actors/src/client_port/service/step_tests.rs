//! The request pipeline as a pure core: what one step returns, without sinks or a host.

use super::*;
use crate::data_tree::DataTree;
use ensemble_messages::zk::ConnectionId;
use ensemble_messages::{Txn, Zxid};

fn settings() -> ServiceSettings {
    ServiceSettings {
        min_ms: 4000,
        max_ms: 40000,
        max_buffer: 0xfffff,
        read_only_mode: false,
        super_digest: None,
        enforce_quota: false,
        reconfig_enabled: false,
    }
}

fn clock(wall_ms: i64) -> StepClock {
    StepClock {
        at: Instant::now(),
        wall_ms,
    }
}

/// A serving service started at wall-clock `wall_ms`.
fn serving_service(wall_ms: i64) -> ClientService {
    let mut s = ClientService::new(1, settings(), clock(wall_ms), Default::default());
    let outs = s.step(
        ServiceInput::Serving(true),
        &DataTree::default(),
        clock(wall_ms),
    );
    assert!(outs.is_empty());
    s
}

fn hello(conn: u64, session: SessionId, password: &[u8]) -> Hello {
    Hello {
        conn: ConnectionId(conn),
        request: ConnectRequest {
            time_out: 5000,
            session_id: session.0,
            passwd: Buffer(password.to_vec()),
            ..ConnectRequest::default()
        },
        read_only: false,
        ip: "10.0.0.1".into(),
        identities: Vec::new(),
    }
}

/// Applies `txn` (proposed as `request_id` by server 1) and steps the service on it.
fn apply(
    s: &mut ClientService,
    tree: &mut DataTree,
    zxid: u32,
    request_id: u64,
    txn: &TreeTxn,
) -> Vec<ServiceOutput> {
    let txn = Txn {
        zxid: Zxid::new(1, zxid),
        origin: 1,
        request_id,
        body: txn.encode(),
    };
    let applied = tree.apply(&txn);
    let input = ServiceInput::Applied {
        txn: &txn,
        applied: &applied,
        own: true,
    };
    s.step(input, tree, clock(2_000))
}

/// The one txn a step asked to propose.
fn proposed(outs: &[ServiceOutput]) -> (u64, TreeTxn) {
    let found: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            ServiceOutput::Propose { request_id, txn } => Some((*request_id, txn.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{outs:?}");
    found[0].clone()
}

#[test]
fn a_new_session_is_proposed_with_the_hosts_password_and_time_and_answered_once_applied() {
    let mut s = serving_service(1_000);
    let mut tree = DataTree::default();
    let password = [9; 16];
    let outs = s.step(
        ServiceInput::Connect {
            hello: hello(1, SessionId::NONE, &[0; 16]),
            password,
        },
        &tree,
        clock(1_500),
    );
    let (request_id, txn) = proposed(&outs);
    assert_eq!(outs.len(), 1, "nothing is sent before the session exists");
    assert_eq!(txn.time_ms, 1_500, "the txn carries the step's wall clock");
    assert!(matches!(
        txn.op,
        TreeOp::CreateSession { timeout_ms: 5000, password: p } if p == password
    ));
    let outs = apply(&mut s, &mut tree, 1, request_id, &txn);
    let [ServiceOutput::ShareSession { conn, session, .. }, ServiceOutput::Push { frame, .. }] =
        &outs[..]
    else {
        panic!("{outs:?}")
    };
    assert_eq!((*conn, *session), (ConnectionId(1), txn.session_id));
    let reply = ConnectResponse::from_bytes(frame).unwrap();
    assert_eq!(reply.passwd.0, password.to_vec());
}

#[test]
fn an_unknown_session_is_refused_as_expired_then_closed_after_a_no_op_commit() {
    let mut s = serving_service(1_000);
    let mut tree = DataTree::default();
    let connect = ServiceInput::Connect {
        hello: hello(1, SessionId(77), &[1; 16]),
        password: [2; 16],
    };
    let outs = s.step(connect, &tree, clock(1_000));
    let (request_id, txn) = proposed(&outs);
    assert!(matches!(txn.op, TreeOp::Check { .. }), "a no-op orders it");
    let outs = apply(&mut s, &mut tree, 1, request_id, &txn);
    let [ServiceOutput::Push { conn, frame }, ServiceOutput::Close(closed)] = &outs[..] else {
        panic!("{outs:?}")
    };
    assert_eq!((*conn, *closed), (ConnectionId(1), ConnectionId(1)));
    let reply = ConnectResponse::from_bytes(frame).unwrap();
    assert_eq!((reply.session_id, reply.time_out), (0, 0));
}

#[test]
fn a_connection_gone_while_its_session_revalidates_is_not_answered_or_kept() {
    let mut s = serving_service(1_000);
    let mut tree = DataTree::default();
    let session = SessionId(77);
    let password = [4; 16];
    let connect = ServiceInput::Connect {
        hello: hello(1, session, &password),
        password: [2; 16],
    };
    let (request_id, no_op) = proposed(&s.step(connect, &tree, clock(1_000)));
    let outs = s.step(ServiceInput::Gone(ConnectionId(1)), &tree, clock(1_000));
    assert!(outs.is_empty());
    // The session's creation commits before the no-op: it would have been resumed.
    let create = TreeTxn {
        session_id: session,
        time_ms: 0,
        auth: Vec::new(),
        op: TreeOp::CreateSession {
            timeout_ms: 5000,
            password,
        },
    };
    apply(&mut s, &mut tree, 1, 0, &create);
    let outs = apply(&mut s, &mut tree, 2, request_id, &no_op);
    assert!(outs.is_empty(), "{outs:?}");
    assert!(s.report(|_| 0).connections.is_empty());
}

#[test]
fn losing_the_quorum_closes_every_connection_and_refuses_new_ones() {
    let mut s = serving_service(1_000);
    let mut tree = DataTree::default();
    let connect = ServiceInput::Connect {
        hello: hello(1, SessionId::NONE, &[0; 16]),
        password: [9; 16],
    };
    let (request_id, txn) = proposed(&s.step(connect, &tree, clock(1_000)));
    apply(&mut s, &mut tree, 1, request_id, &txn);
    let outs = s.step(ServiceInput::Serving(false), &tree, clock(1_000));
    assert_eq!(outs, vec![ServiceOutput::Close(ConnectionId(1))]);
    let connect = ServiceInput::Connect {
        hello: hello(2, SessionId::NONE, &[0; 16]),
        password: [9; 16],
    };
    let outs = s.step(connect, &tree, clock(1_000));
    assert_eq!(outs, vec![ServiceOutput::Close(ConnectionId(2))]);
}

#[test]
fn a_restarted_service_never_reuses_a_request_id_of_the_one_before() {
    let mut before = serving_service(5_000);
    let last = (0..100_000)
        .map(|_| before.next_request_id())
        .last()
        .unwrap();
    let mut after = serving_service(5_002);
    assert!(after.next_request_id() > last);
}

#[test]
fn the_same_inputs_at_the_same_clocks_give_the_same_outputs() {
    let run = || {
        let mut s = serving_service(1_000);
        let mut tree = DataTree::default();
        let mut all = Vec::new();
        let connect = ServiceInput::Connect {
            hello: hello(1, SessionId::NONE, &[0; 16]),
            password: [9; 16],
        };
        let outs = s.step(connect, &tree, clock(1_000));
        let (request_id, txn) = proposed(&outs);
        all.extend(outs);
        all.extend(apply(&mut s, &mut tree, 1, request_id, &txn));
        let packet = ClientPacket {
            conn: ConnectionId(1),
            xid: 1,
            op: Ok(OpCode::Exists),
            body: PathWatchRequest {
                path: "/".into(),
                watch: true,
            }
            .to_bytes(),
        };
        all.extend(s.step(ServiceInput::Packet(packet), &tree, clock(1_001)));
        all
    };
    assert_eq!(run(), run());
}
