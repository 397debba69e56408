//! Unit tests of the request pipeline, with a fake host whose txns are applied to a real tree.

use super::super::protocol::{ClientConnect, ClientSink, ToClient};
use super::super::test_host::{test_clock, TestHost};
use super::*;
use crate::data_tree::DataTree;
use ensemble_messages::zk::{ConnectionId, OK};
use ensemble_messages::{Txn, Zxid};
use tokio::sync::mpsc::UnboundedReceiver;

struct Harness {
    service: ClientService,
    tree: DataTree,
    host: TestHost,
    counter: u32,
}

/// A decoded server frame: (xid, err, body).
type Frame = (i32, i32, Vec<u8>);

impl Harness {
    fn new() -> Self {
        Self::with_super_digest(None)
    }

    fn with_super_digest(super_digest: Option<[u8; 20]>) -> Self {
        let mut h = Harness {
            service: ClientService::new(
                1,
                ServiceSettings {
                    min_ms: 4000,
                    max_ms: 40000,
                    max_buffer: 0xfffff,
                    read_only_mode: true,
                    super_digest,
                    enforce_quota: false,
                    reconfig_enabled: true,
                },
                test_clock(),
                Default::default(),
            ),
            tree: DataTree::default(),
            host: TestHost::default(),
            counter: 0,
        };
        h.serve(true);
        h
    }

    /// Steps the service on `input`.
    fn step(&mut self, input: ServiceInput) {
        self.host.step(&mut self.service, input, &self.tree);
    }

    /// This server joins or leaves the serving quorum.
    fn serve(&mut self, serving: bool) {
        self.step(ServiceInput::Serving(serving));
    }

    /// A connection's handshake.
    fn handshake(&mut self, c: ClientConnect) {
        self.host.connect(&mut self.service, c, &self.tree);
    }

    /// What `cons` and `wchc` show.
    fn report(&self) -> ClientReport {
        self.service.report(|conn| self.host.sinks.answered(conn))
    }

    /// Applies every submitted txn in order, as Zab would commit them, until none is left.
    fn commit(&mut self) {
        while !self.host.submitted.is_empty() {
            for (rid, txn) in std::mem::take(&mut self.host.submitted) {
                self.counter += 1;
                let txn = Txn {
                    zxid: Zxid::new(1, self.counter),
                    origin: 1,
                    request_id: rid,
                    body: txn.encode(),
                };
                let applied = self.tree.apply(&txn);
                let input = ServiceInput::Applied {
                    txn: &txn,
                    applied: &applied,
                    own: true,
                };
                self.host.step(&mut self.service, input, &self.tree);
            }
        }
    }

    /// Connects a client on `conn` and returns its reply channel, with the connect reply read.
    fn connect(&mut self, conn: u64) -> UnboundedReceiver<ToClient> {
        let (sink, mut rx) = ClientSink::unlimited();
        let request = ConnectRequest {
            time_out: 1000,
            passwd: Buffer(vec![0; 16]),
            ..ConnectRequest::default()
        };
        self.handshake(ClientConnect {
            conn: ConnectionId(conn),
            request,
            read_only: false,
            ip: "127.0.0.1".into(),
            identities: Vec::new(),
            sink,
        });
        self.commit();
        match rx.try_recv() {
            Ok(ToClient::Frame(f)) => {
                let r = ConnectResponse::from_bytes(&f).unwrap();
                assert_ne!(r.session_id, 0);
                assert_eq!(r.time_out, 4000, "clamped to minSessionTimeout");
            }
            other => panic!("no connect reply: {other:?}"),
        }
        rx
    }

    fn send(&mut self, conn: u64, xid: i32, op: OpCode, body: Vec<u8>) {
        self.step(ServiceInput::Packet(ClientPacket {
            conn: ConnectionId(conn),
            xid,
            op: Ok(op),
            body,
        }));
    }
}

fn frames(rx: &mut UnboundedReceiver<ToClient>) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Ok(ToClient::Frame(f)) = rx.try_recv() {
        let h = ReplyHeader::from_bytes(&f).unwrap();
        out.push((h.xid, h.err, f[16..].to_vec()));
    }
    out
}

fn create(path: &str) -> Vec<u8> {
    CreateRequest {
        path: path.into(),
        data: NullableBuffer::bytes(b"d".to_vec()),
        acl: vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
    }
    .to_bytes()
}

fn get(path: &str, watch: bool) -> Vec<u8> {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
    .to_bytes()
}

#[test]
fn a_read_behind_a_pending_write_waits_for_it_and_sees_it() {
    let mut h = Harness::new();
    let mut rx = h.connect(1);
    h.send(1, 1, OpCode::Create, create("/a"));
    h.send(1, 2, OpCode::GetData, get("/a", false));
    assert!(
        frames(&mut rx).is_empty(),
        "the read waits behind the pending write"
    );
    h.commit();
    let f = frames(&mut rx);
    assert_eq!(
        f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        vec![(1, 0), (2, 0)]
    );
    assert_eq!(
        GetDataResponse::from_bytes(&f[1].2)
            .unwrap()
            .data
            .as_slice(),
        b"d"
    );
}

#[test]
fn a_watch_event_comes_before_the_reply_of_a_later_read() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    let mut b = h.connect(2);
    h.send(2, 1, OpCode::Create, create("/w"));
    h.commit();
    frames(&mut b);
    h.send(1, 1, OpCode::GetData, get("/w", true));
    frames(&mut a);
    let set = SetDataRequest {
        path: "/w".into(),
        data: NullableBuffer::bytes(b"x".to_vec()),
        version: -1,
    }
    .to_bytes();
    h.send(2, 2, OpCode::SetData, set);
    h.commit();
    h.send(1, 2, OpCode::GetData, get("/w", false));
    let f = frames(&mut a);
    assert_eq!(f[0].0, -1, "the event first");
    let e = WatcherEvent::from_bytes(&f[0].2).unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged.code(), "/w")
    );
    assert_eq!(
        (
            f[1].0,
            GetDataResponse::from_bytes(&f[1].2)
                .unwrap()
                .data
                .as_slice()
        ),
        (2, &b"x"[..])
    );
}

#[test]
fn recursive_watches_persist_and_remove_watches_says_no_watcher() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    let mut b = h.connect(2);
    h.send(
        1,
        1,
        OpCode::AddWatch,
        AddWatchRequest {
            path: "/r".into(),
            mode: 1,
        }
        .to_bytes(),
    );
    assert_eq!(frames(&mut a)[0].1, 0);
    for p in ["/r", "/r/x"] {
        h.send(2, 1, OpCode::Create, create(p));
        h.commit();
    }
    frames(&mut b);
    let events: Vec<(i32, String)> = frames(&mut a)
        .iter()
        .map(|f| WatcherEvent::from_bytes(&f.2).unwrap())
        .map(|e| (e.event_type, e.path))
        .collect();
    assert_eq!(
        events,
        vec![
            (EventType::NodeCreated.code(), "/r".into()),
            (EventType::NodeCreated.code(), "/r/x".into())
        ]
    );
    let remove = |t| {
        WatchesRequest {
            path: "/r".into(),
            watcher_type: t,
        }
        .to_bytes()
    };
    h.send(1, 2, OpCode::RemoveWatches, remove(5));
    h.send(1, 3, OpCode::RemoveWatches, remove(5));
    assert_eq!(
        frames(&mut a).iter().map(|f| f.1).collect::<Vec<_>>(),
        vec![0, ZkError::NoWatcher.code()]
    );
}

#[test]
fn multi_read_answers_each_op() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    h.send(1, 1, OpCode::Create, create("/m"));
    h.commit();
    frames(&mut a);
    let mut w = JuteWriter::default();
    MultiHeader {
        op: OpCode::GetData.code(),
        done: false,
        err: -1,
    }
    .write(&mut w);
    PathWatchRequest {
        path: "/m".into(),
        watch: false,
    }
    .write(&mut w);
    MultiHeader {
        op: OpCode::GetChildren.code(),
        done: false,
        err: -1,
    }
    .write(&mut w);
    PathWatchRequest {
        path: "/missing".into(),
        watch: false,
    }
    .write(&mut w);
    MultiHeader::END.write(&mut w);
    h.send(1, 2, OpCode::MultiRead, w.bytes);
    let f = frames(&mut a);
    assert_eq!((f[0].0, f[0].1), (2, 0));
    let mut r = JuteReader::new(&f[0].2);
    let first = MultiHeader::read(&mut r, "h").unwrap();
    assert_eq!((first.op, first.err), (OpCode::GetData.code(), 0));
    assert_eq!(
        GetDataResponse::read(&mut r, "d").unwrap().data.as_slice(),
        b"d"
    );
    let second = MultiHeader::read(&mut r, "h").unwrap();
    assert_eq!(
        (second.op, second.err),
        (OpCode::Error.code(), ZkError::NoNode.code())
    );
}

#[test]
fn set_watches2_re_arms_persistent_watches_and_fires_missed_changes() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    let mut b = h.connect(2);
    h.send(2, 1, OpCode::Create, create("/sw"));
    h.commit();
    frames(&mut b);
    let w = SetWatches2 {
        relative_zxid: 0,
        data_watches: vec!["/sw".into()],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec![],
    };
    h.send(1, xid::SET_WATCHES, OpCode::SetWatches2, w.to_bytes());
    let f = frames(&mut a);
    let missed = WatcherEvent::from_bytes(&f[0].2).unwrap();
    assert_eq!(
        (missed.event_type, missed.path.as_str()),
        (EventType::NodeDataChanged.code(), "/sw"),
        "changed since zxid 0"
    );
    assert_eq!((f[1].0, f[1].1), (xid::SET_WATCHES, 0));
    for _ in 0..2 {
        h.send(2, 2, OpCode::Create, create("/p"));
        h.send(
            2,
            3,
            OpCode::Delete,
            DeleteRequest {
                path: "/p".into(),
                version: -1,
            }
            .to_bytes(),
        );
        h.commit();
    }
    frames(&mut b);
    assert_eq!(
        frames(&mut a).len(),
        4,
        "the persistent watch fired for every create and delete"
    );
}

#[test]
fn a_session_that_moved_away_gets_session_moved_and_moving_back_is_ordered_before_writes() {
    let mut h = Harness::new();
    let mut old = h.connect(1);
    let session = h.report().connections[0].session;
    // The client reconnects through server 2, which proposes the move.
    h.counter += 1;
    let moved_away = TreeTxn {
        session_id: session,
        time_ms: 1_000,
        auth: Vec::new(),
        op: TreeOp::MoveSession,
    };
    h.tree.apply(&Txn {
        zxid: Zxid::new(1, h.counter),
        origin: 2,
        request_id: 0,
        body: moved_away.encode(),
    });
    h.send(1, 1, OpCode::Create, create("/stale"));
    h.commit();
    let Ok(ToClient::Frame(reply)) = old.try_recv() else {
        panic!("no reply")
    };
    let header = ReplyHeader::from_bytes(&reply).unwrap();
    assert_eq!((header.xid, header.err), (1, ZkError::SessionMoved.code()));
    assert!(
        matches!(old.try_recv(), Ok(ToClient::Close)),
        "then the connection ends"
    );
    assert!(h.tree.get("/stale").is_none());
    // The client comes back here: the move is proposed first, and its write goes after it.
    let (sink, mut back) = ClientSink::unlimited();
    let request = ConnectRequest {
        time_out: 4000,
        session_id: session.0,
        passwd: Buffer(h.tree.session_password(session).unwrap().to_vec()),
        ..ConnectRequest::default()
    };
    let connect = ClientConnect {
        conn: ConnectionId(2),
        request,
        read_only: false,
        ip: "127.0.0.1".into(),
        identities: Vec::new(),
        sink,
    };
    h.handshake(connect);
    assert!(
        back.try_recv().is_err(),
        "no connect reply before the move commits"
    );
    h.send(2, 1, OpCode::Create, create("/fresh"));
    h.commit();
    assert!(
        matches!(back.try_recv(), Ok(ToClient::Frame(_))),
        "connect reply once the move committed"
    );
    assert_eq!(h.tree.session_owner(session), Some(1));
    let f = frames(&mut back);
    assert_eq!(
        f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        vec![(1, 0)]
    );
}

#[test]
fn out_of_quorum_read_only_clients_read_and_writes_get_not_read_only() {
    let mut h = Harness::new();
    let mut rw = h.connect(1);
    h.send(1, 1, OpCode::Create, create("/kept"));
    h.commit();
    frames(&mut rw);
    h.serve(false);
    assert!(
        matches!(rw.try_recv(), Ok(ToClient::Close)),
        "losing the quorum ends every connection"
    );
    let connect = |h: &mut Harness, conn: u64, read_only: bool| {
        let (sink, rx) = ClientSink::unlimited();
        let request = ConnectRequest {
            time_out: 4000,
            passwd: Buffer(vec![0; 16]),
            ..ConnectRequest::default()
        };
        let c = ClientConnect {
            conn: ConnectionId(conn),
            request,
            read_only,
            ip: "127.0.0.1".into(),
            identities: Vec::new(),
            sink,
        };
        h.handshake(c);
        rx
    };
    let mut refused = connect(&mut h, 2, false);
    assert!(matches!(refused.try_recv(), Ok(ToClient::Close)));
    let mut ro = connect(&mut h, 3, true);
    let Ok(ToClient::Frame(reply)) = ro.try_recv() else {
        panic!("no connect reply")
    };
    assert!(ConnectResponse::from_bytes(&reply).unwrap().read_only);
    assert!(h.host.submitted.is_empty(), "a read-only session is local");
    h.send(3, 1, OpCode::GetData, get("/kept", false));
    h.send(3, 2, OpCode::Create, create("/refused"));
    h.send(
        3,
        3,
        OpCode::Sync,
        PathRequest { path: "/".into() }.to_bytes(),
    );
    let f = frames(&mut ro);
    assert_eq!(
        f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        vec![
            (1, 0),
            (2, ZkError::NotReadOnly.code()),
            (3, ZkError::NotReadOnly.code())
        ]
    );
    h.serve(true);
    assert!(
        matches!(ro.try_recv(), Ok(ToClient::Close)),
        "back in quorum, read-only clients are sent to reconnect read-write"
    );
}

fn add_auth(h: &mut Harness, conn: u64, credentials: &str) {
    let packet = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Buffer(credentials.as_bytes().to_vec()),
    };
    h.send(conn, xid::AUTH, OpCode::Auth, packet.to_bytes());
}

fn create_with_acl(path: &str, acl: Vec<(i32, &str, &str)>) -> Vec<u8> {
    CreateRequest {
        path: path.into(),
        data: NullableBuffer::bytes(b"d".to_vec()),
        acl: acl
            .into_iter()
            .map(|(perms, scheme, id)| Acl {
                perms,
                id: Id {
                    scheme: scheme.into(),
                    id: id.into(),
                },
            })
            .collect(),
        flags: 0,
    }
    .to_bytes()
}

fn path_request(path: &str) -> Vec<u8> {
    PathRequest { path: path.into() }.to_bytes()
}

/// Connection 1 is anonymous; connection 2 authenticated as alice and created `/secret`
/// (alice: all) and `/shown` (anyone: read, alice: all).
fn alice_and_a_stranger(
    h: &mut Harness,
) -> (UnboundedReceiver<ToClient>, UnboundedReceiver<ToClient>) {
    let stranger = h.connect(1);
    let mut alice = h.connect(2);
    add_auth(h, 2, "alice:pw");
    h.send(
        2,
        1,
        OpCode::Create,
        create_with_acl("/secret", vec![(31, "auth", "")]),
    );
    h.send(
        2,
        2,
        OpCode::Create,
        create_with_acl("/shown", vec![(1, "world", "anyone"), (31, "auth", "")]),
    );
    h.commit();
    assert!(frames(&mut alice).iter().all(|f| f.1 == 0));
    (stranger, alice)
}

#[test]
fn get_acl_needs_read_or_admin_and_masks_digests_without_admin() {
    let mut h = Harness::new();
    let (mut stranger, mut alice) = alice_and_a_stranger(&mut h);
    h.send(1, 1, OpCode::GetAcl, path_request("/secret"));
    h.send(1, 2, OpCode::GetAcl, path_request("/shown"));
    let f = frames(&mut stranger);
    assert_eq!(f[0].1, ZkError::NoAuth.code(), "no READ nor ADMIN: nothing");
    assert_eq!(f[1].1, OK);
    let shown = GetAclResponse::from_bytes(&f[1].2).unwrap();
    assert_eq!(
        shown.acl[1].id.id, "alice:x",
        "READ only: the hash is masked"
    );
    h.send(2, 3, OpCode::GetAcl, path_request("/shown"));
    let f = frames(&mut alice);
    let full = GetAclResponse::from_bytes(&f[0].2).unwrap();
    assert_eq!(full.acl[1].id.id, digest_id("alice:pw"), "ADMIN: all of it");
}

#[test]
fn get_all_children_number_needs_read() {
    let mut h = Harness::new();
    let (mut stranger, mut alice) = alice_and_a_stranger(&mut h);
    h.send(1, 1, OpCode::GetAllChildrenNumber, path_request("/secret"));
    assert_eq!(frames(&mut stranger)[0].1, ZkError::NoAuth.code());
    h.send(2, 4, OpCode::GetAllChildrenNumber, path_request("/secret"));
    let f = frames(&mut alice);
    assert_eq!(
        (f[0].1, IntResponse::from_bytes(&f[0].2).unwrap().number),
        (0, 0)
    );
}

#[test]
fn watch_events_reach_only_sessions_that_may_read_the_node() {
    let mut h = Harness::new();
    let mut stranger = h.connect(1);
    let mut alice = h.connect(2);
    add_auth(&mut h, 2, "alice:pw");
    let watch_all = AddWatchRequest {
        path: "/".into(),
        mode: 1,
    };
    h.send(1, 1, OpCode::AddWatch, watch_all.to_bytes());
    h.send(2, 1, OpCode::AddWatch, watch_all.to_bytes());
    frames(&mut stranger);
    frames(&mut alice);
    h.send(
        2,
        2,
        OpCode::Create,
        create_with_acl("/secret", vec![(31, "auth", "")]),
    );
    h.send(2, 3, OpCode::Create, create("/open"));
    let delete = DeleteRequest {
        path: "/secret".into(),
        version: -1,
    };
    h.send(2, 4, OpCode::Delete, delete.to_bytes());
    h.commit();
    let events = |rx: &mut UnboundedReceiver<ToClient>| -> Vec<(i32, String)> {
        frames(rx)
            .iter()
            .filter(|f| f.0 == xid::WATCH_EVENT)
            .map(|f| WatcherEvent::from_bytes(&f.2).unwrap())
            .map(|e| (e.event_type, e.path))
            .collect()
    };
    assert_eq!(
        events(&mut stranger),
        vec![(EventType::NodeCreated.code(), "/open".into())],
        "nothing about /secret, not even its deletion"
    );
    assert_eq!(
        events(&mut alice),
        vec![
            (EventType::NodeCreated.code(), "/secret".into()),
            (EventType::NodeCreated.code(), "/open".into()),
            (EventType::NodeDeleted.code(), "/secret".into()),
        ]
    );
}

#[test]
fn the_super_digest_passes_every_acl_and_other_credentials_do_not() {
    let hash: [u8; 20] = {
        use sha1::Digest;
        sha1::Sha1::digest(b"super:letmein").into()
    };
    let mut h = Harness::with_super_digest(Some(hash));
    let (mut stranger, _alice) = alice_and_a_stranger(&mut h);
    add_auth(&mut h, 1, "super:guess");
    h.send(1, 1, OpCode::GetData, get("/secret", false));
    assert_eq!(frames(&mut stranger)[1].1, ZkError::NoAuth.code());
    add_auth(&mut h, 1, "super:letmein");
    h.send(1, 2, OpCode::GetData, get("/secret", false));
    h.send(1, 3, OpCode::GetAcl, path_request("/secret"));
    let f = frames(&mut stranger);
    assert_eq!((f[1].1, f[2].1), (0, 0));
    let acl = GetAclResponse::from_bytes(&f[2].2).unwrap().acl;
    assert_eq!(acl[0].id.id, digest_id("alice:pw"), "super has ADMIN");
    let set = SetDataRequest {
        path: "/secret".into(),
        data: NullableBuffer::bytes(b"x".to_vec()),
        version: -1,
    };
    h.send(1, 4, OpCode::SetData, set.to_bytes());
    h.commit();
    assert_eq!(frames(&mut stranger)[0].1, OK);
}

/// A client on `conn` asks to resume `session` with `password`; the connect reply.
fn reconnect(h: &mut Harness, conn: u64, session: SessionId, password: Vec<u8>) -> ConnectResponse {
    let mut rx = ask_to_resume(h, conn, session, password);
    let Ok(ToClient::Frame(reply)) = rx.try_recv() else {
        panic!("no connect reply")
    };
    ConnectResponse::from_bytes(&reply).unwrap()
}

/// A client on `conn` asks to resume `session` with `password`; its reply channel.
fn ask_to_resume(
    h: &mut Harness,
    conn: u64,
    session: SessionId,
    password: Vec<u8>,
) -> UnboundedReceiver<ToClient> {
    let (sink, rx) = ClientSink::unlimited();
    let request = ConnectRequest {
        time_out: 4000,
        session_id: session.0,
        passwd: Buffer(password),
        ..ConnectRequest::default()
    };
    let c = ClientConnect {
        conn: ConnectionId(conn),
        request,
        read_only: false,
        ip: "127.0.0.1".into(),
        identities: Vec::new(),
        sink,
    };
    h.handshake(c);
    rx
}

/// Simulation seeds 34 and 241: a client that learnt its session from a server ahead of this
/// one moved here and was told its session had expired, because this server had not applied
/// its creation yet. The answer now waits for a no-op txn ordered after every earlier commit.
#[test]
fn a_reconnect_naming_a_session_not_applied_here_yet_waits_for_a_commit() {
    let mut ahead = Harness::new();
    ahead.connect(1);
    let session = ahead.report().connections[0].session;
    let password = *ahead.tree.session_password(session).unwrap();
    let mut behind = Harness::new();
    let mut rx = ask_to_resume(&mut behind, 1, session, password.to_vec());
    assert!(
        rx.try_recv().is_err(),
        "no answer before a commit orders it"
    );
    // The session's creation reaches this server before the no-op txn.
    let create = TreeTxn {
        session_id: session,
        time_ms: 0,
        auth: Vec::new(),
        op: TreeOp::CreateSession {
            timeout_ms: 4000,
            password,
        },
    };
    behind.counter += 1;
    behind.tree.apply(&Txn {
        zxid: Zxid::new(1, behind.counter),
        origin: 1,
        request_id: 0,
        body: create.encode(),
    });
    behind.commit();
    let Ok(ToClient::Frame(reply)) = rx.try_recv() else {
        panic!("no connect reply")
    };
    let r = ConnectResponse::from_bytes(&reply).unwrap();
    assert_eq!((r.session_id, r.time_out), (session.0, 4000));
    // A session no commit ever created is refused as expired, after the no-op txn.
    let mut rx = ask_to_resume(&mut behind, 2, SessionId(session.0 + 1), password.to_vec());
    assert!(rx.try_recv().is_err());
    behind.commit();
    let Ok(ToClient::Frame(reply)) = rx.try_recv() else {
        panic!("no connect reply")
    };
    let r = ConnectResponse::from_bytes(&reply).unwrap();
    assert_eq!((r.session_id, r.time_out), (0, 0), "refused as expired");
}

/// Simulation seed 38: the actor applied a batch of txns, then answered their requests, so a
/// read queued behind one write of a session was answered from a tree that held the session's
/// next write too. Each txn of this server's is now answered as it is applied.
#[test]
fn a_read_between_two_writes_sees_the_first_and_not_the_second() {
    let mut h = Harness::new();
    let mut rx = h.connect(1);
    h.send(1, 1, OpCode::Create, create("/a"));
    h.send(1, 2, OpCode::Exists, get("/a", false));
    let delete = DeleteRequest {
        path: "/a".into(),
        version: -1,
    };
    h.send(1, 3, OpCode::Delete, delete.to_bytes());
    h.commit();
    let f = frames(&mut rx);
    assert_eq!(
        f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        vec![(1, OK), (2, OK), (3, OK)],
        "the read found the znode its session created and had not deleted yet"
    );
}

#[test]
fn a_session_is_resumed_only_with_its_own_random_password() {
    let mut h = Harness::new();
    h.connect(1);
    h.connect(2);
    let sessions: Vec<SessionId> = h.report().connections.iter().map(|c| c.session).collect();
    let real = *h.tree.session_password(sessions[0]).unwrap();
    assert_ne!(
        Some(&real),
        h.tree.session_password(sessions[1]),
        "each session draws its own"
    );
    for guess in [vec![0; 16], vec![], real[..15].to_vec()] {
        let refused = reconnect(&mut h, 3, sessions[0], guess);
        assert_eq!(
            (refused.time_out, refused.session_id),
            (0, 0),
            "refused as expired"
        );
    }
    let resumed = reconnect(&mut h, 4, sessions[0], real.to_vec());
    assert_eq!(
        (resumed.session_id, resumed.passwd.0),
        (sessions[0].0, real.to_vec())
    );
}

#[test]
fn counting_a_deep_chain_does_not_recurse() {
    const DEPTH: usize = 4000;
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut h = Harness::new();
            let mut rx = h.connect(1);
            let mut path = String::new();
            for i in 0..DEPTH {
                path.push_str("/d");
                h.send(1, i as i32, OpCode::Create, create(&path));
            }
            h.commit();
            frames(&mut rx);
            h.send(1, 1, OpCode::GetAllChildrenNumber, path_request("/d"));
            let f = frames(&mut rx);
            let n = IntResponse::from_bytes(&f[0].2).unwrap().number;
            assert_eq!(n as usize, DEPTH - 1);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Clients see an ephemeralOwner only for session-owned znodes, as in Apache ZooKeeper.
#[test]
fn stats_hide_container_and_ttl_markers() {
    let stat = |owner| NodeStat {
        ephemeral_owner: owner,
        ..NodeStat::default()
    };
    assert_eq!(to_stat(&stat(CONTAINER_OWNER)).ephemeral_owner, 0);
    let ttl = crate::data_tree::ttl_owner(600_000);
    assert_eq!(to_stat(&stat(ttl)).ephemeral_owner, 0);
    assert_eq!(
        to_stat(&stat(0x100_0000_0000_0001)).ephemeral_owner,
        0x100_0000_0000_0001
    );
}

/// `/h` with a 30,001-entry ACL (0.8 MiB): 30,000 ip entries granting everything to addresses
/// these clients do not have, then `world:anyone`, so every check reads it to the end.
fn create_huge_acl_node(h: &mut Harness, rx: &mut UnboundedReceiver<ToClient>) {
    let mut acl: Vec<(i32, String)> = (0..30_000u32)
        .map(|i| {
            (
                31,
                format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff),
            )
        })
        .collect();
    acl.push((31, "anyone".into()));
    let acl = acl
        .iter()
        .map(|(p, id)| (*p, if id == "anyone" { "world" } else { "ip" }, id.as_str()))
        .collect();
    h.send(1, 1, OpCode::Create, create_with_acl("/h", acl));
    h.commit();
    assert_eq!(frames(rx)[0].1, OK);
}

/// A multi or multiRead body of `n` sub-ops of type `code`, each written by `op`.
fn multi_body(n: usize, code: OpCode, op: impl Fn(&mut JuteWriter)) -> Vec<u8> {
    let mut w = JuteWriter::default();
    for _ in 0..n {
        MultiHeader {
            op: code.code(),
            done: false,
            err: -1,
        }
        .write(&mut w);
        op(&mut w);
    }
    MultiHeader::END.write(&mut w);
    w.bytes
}

#[test]
fn a_multi_read_naming_one_huge_acl_many_times_reads_it_once() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    create_huge_acl_node(&mut h, &mut a);
    // 20,000 getData sub-ops of /h: 0.3 MiB. Before, each read the whole ACL.
    let body = multi_body(20_000, OpCode::GetData, |w| get_h().write(w));
    let started = std::time::Instant::now();
    h.send(1, 2, OpCode::MultiRead, body);
    println!(
        "multiRead of 20,000 getData under a 30,001-entry ACL: {:?}",
        started.elapsed()
    );
    let f = frames(&mut a);
    assert_eq!((f[0].0, f[0].1), (2, OK));
    let mut r = JuteReader::new(&f[0].2);
    for _ in 0..20_000 {
        let header = MultiHeader::read(&mut r, "h").unwrap();
        assert_eq!((header.op, header.err), (OpCode::GetData.code(), OK));
        assert_eq!(
            GetDataResponse::read(&mut r, "d").unwrap().data.as_slice(),
            b"d"
        );
    }
}

fn get_h() -> PathWatchRequest {
    PathWatchRequest {
        path: "/h".into(),
        watch: false,
    }
}

#[test]
fn a_multi_changing_a_znode_with_a_huge_acl_checks_each_watcher_once() {
    let mut h = Harness::new();
    let mut owner = h.connect(1);
    create_huge_acl_node(&mut h, &mut owner);
    let watch = AddWatchRequest {
        path: "/h".into(),
        mode: 0,
    };
    let mut watchers: Vec<_> = (2..12).map(|conn| h.connect(conn)).collect();
    for (conn, rx) in (2..12).zip(watchers.iter_mut()) {
        h.send(conn, 1, OpCode::AddWatch, watch.to_bytes());
        frames(rx);
    }
    // One multi of 2,000 setData on /h: 2,000 events for each of 10 persistent watchers.
    // Before, each event read the 30,001-entry ACL for each watcher, and each op copied it.
    let set = SetDataRequest {
        path: "/h".into(),
        data: NullableBuffer::bytes(b"x".to_vec()),
        version: -1,
    };
    h.send(
        1,
        2,
        OpCode::Multi,
        multi_body(2_000, OpCode::SetData, |w| set.write(w)),
    );
    let started = std::time::Instant::now();
    h.commit();
    println!(
        "multi of 2,000 setData, 10 watchers, 30,001-entry ACL: {:?}",
        started.elapsed()
    );
    assert_eq!(frames(&mut owner)[0].1, OK);
    for rx in &mut watchers {
        let events = frames(rx);
        assert_eq!(events.len(), 2_000);
        assert!(events.iter().all(|f| f.0 == xid::WATCH_EVENT));
    }
    assert_eq!(h.tree.stat("/h").unwrap().version, 2_000);
}

/// ZooKeeper's Netty client sends requests right behind its handshake: their replies follow
/// the handshake reply, even when the session is still being created.
#[test]
fn requests_pipelined_behind_the_handshake_are_answered_after_it() {
    let mut h = Harness::new();
    let (sink, mut rx) = ClientSink::unlimited();
    let request = ConnectRequest {
        time_out: 1000,
        passwd: Buffer(vec![0; 16]),
        ..ConnectRequest::default()
    };
    let connect = ClientConnect {
        conn: ConnectionId(1),
        request,
        read_only: false,
        ip: "127.0.0.1".into(),
        identities: vec![("x509".into(), "CN=c".into())],
        sink,
    };
    h.handshake(connect);
    h.send(1, 1, OpCode::WhoAmI, Vec::new());
    assert!(rx.try_recv().is_err(), "nothing before the session exists");
    h.commit();
    match rx.try_recv() {
        Ok(ToClient::Frame(f)) => assert!(ConnectResponse::from_bytes(&f).is_ok()),
        other => panic!("the handshake reply first: {other:?}"),
    }
    let [(xid, code, body)] = &frames(&mut rx)[..] else {
        panic!("one reply after the handshake")
    };
    assert_eq!((*xid, *code), (1, OK));
    let who = WhoAmIResponse::from_bytes(body).unwrap();
    assert!(who
        .client_info
        .iter()
        .any(|c| c.auth_scheme == "x509" && c.user == "CN=c"));
}

/// The data field of a getData reply as the wire has it: `None` for length -1.
fn wire_data(body: &[u8]) -> Option<Vec<u8>> {
    JuteReader::new(body).nullable_buffer("data").unwrap()
}

#[test]
fn null_data_reads_back_null_from_get_data_multi_and_multi_read() {
    let mut h = Harness::new();
    let mut a = h.connect(1);
    let null_create = |path: &str| CreateRequest {
        path: path.into(),
        data: NullableBuffer(None),
        acl: CreateRequest::from_bytes(&create("/x")).unwrap().acl,
        flags: 0,
    };
    h.send(1, 1, OpCode::Create, null_create("/n").to_bytes());
    h.send(1, 2, OpCode::Create, create("/d"));
    let set_null = SetDataRequest {
        path: "/d".into(),
        data: NullableBuffer(None),
        version: -1,
    };
    h.send(1, 3, OpCode::SetData, set_null.to_bytes());
    let multi = multi_body(1, OpCode::Create, |w| null_create("/m").write(w));
    h.send(1, 4, OpCode::Multi, multi);
    h.commit();
    assert!(frames(&mut a).iter().all(|f| f.1 == OK));

    for (i, path) in ["/n", "/d", "/m"].into_iter().enumerate() {
        h.send(1, 10 + i as i32, OpCode::GetData, get(path, false));
        let f = frames(&mut a);
        assert_eq!(f[0].1, OK, "{path}");
        assert_eq!(wire_data(&f[0].2), None, "{path} reads back null");
    }
    h.send(1, 20, OpCode::Create, create("/e"));
    h.commit();
    frames(&mut a);
    let mut w = JuteWriter::default();
    for path in ["/n", "/e"] {
        MultiHeader {
            op: OpCode::GetData.code(),
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.bytes.extend(get(path, false));
    }
    MultiHeader::END.write(&mut w);
    h.send(1, 21, OpCode::MultiRead, w.bytes);
    let f = frames(&mut a);
    let mut r = JuteReader::new(&f[0].2);
    MultiHeader::read(&mut r, "h").unwrap();
    assert_eq!(
        GetDataResponse::read(&mut r, "d").unwrap().data,
        NullableBuffer(None)
    );
    MultiHeader::read(&mut r, "h").unwrap();
    assert_eq!(
        GetDataResponse::read(&mut r, "d").unwrap().data.0,
        Some(b"d".to_vec())
    );
}
