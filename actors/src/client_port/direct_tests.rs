//! The ordering rules of reads answered on a connection's thread, against a real client service
//! and tree driven as the request pipeline actor drives them (apply, fire, publish, then reply).

use super::super::limits::{Flow, Load};
use super::super::protocol::{ClientConnect, ClientPacket, ClientSink, ToClient};
use super::super::service::{ClientService, ServiceInput, ServiceSettings};
use super::super::test_host::{test_clock, TestHost};
use super::*;
use crate::data_tree::TreeTxn;
use ensemble_messages::jute::*;
use ensemble_messages::zk::{xid, ConnectionId, EventType, OpCode, SessionId, ZkError, OK};
use ensemble_messages::{Txn, Zxid};
use tokio::sync::mpsc::UnboundedReceiver;

/// One server (service, tree, published versions) and one client connection on it.
struct Fixture {
    service: ClientService,
    tree: DataTree,
    host: TestHost,
    published: Arc<PublishedTree>,
    zxid: u32,
    flow: Arc<Flow>,
    rx: UnboundedReceiver<ToClient>,
    /// The connection's own handle on its output, as `connection.rs` keeps it.
    sink: ClientSink,
    reader: DirectReader,
}

impl Fixture {
    /// A serving server with connection 1 handshaken (not yet committed).
    fn new() -> Self {
        let service = ClientService::new(
            1,
            ServiceSettings {
                min_ms: 4000,
                max_ms: 40000,
                max_buffer: 0xfffff,
                read_only_mode: true,
                super_digest: None,
                enforce_quota: false,
                reconfig_enabled: true,
            },
            test_clock(),
            Default::default(),
        );
        let published = PublishedTree::new();
        let flow = Flow::new(Load::new(0), usize::MAX);
        let (sink, rx) = ClientSink::new(flow.clone());
        let reader = DirectReader::new(published.clone(), sink.share().clone(), Default::default());
        let mut f = Fixture {
            service,
            tree: DataTree::default(),
            host: TestHost::default(),
            published,
            zxid: 0,
            flow,
            rx,
            sink: sink.clone(),
            reader,
        };
        f.published.publish(&f.tree, true);
        let request = ConnectRequest {
            time_out: 4000,
            passwd: Buffer(vec![0; 16]),
            ..ConnectRequest::default()
        };
        let c = ClientConnect {
            conn: ConnectionId(1),
            request,
            read_only: false,
            ip: "127.0.0.1".into(),
            identities: Vec::new(),
            sink,
        };
        f.host
            .step(&mut f.service, ServiceInput::Serving(true), &f.tree);
        f.host.connect(&mut f.service, c, &f.tree);
        f
    }

    /// Commits what was submitted as the actor does (count the batch, then apply, fire and reply txn by txn),
    /// then publishes the new version as the actor does when a reader wanted it.
    fn commit(&mut self) {
        self.published.applying();
        let submitted = std::mem::take(&mut self.host.submitted);
        for (rid, txn) in &submitted {
            self.zxid += 1;
            let txn = Txn {
                zxid: Zxid::new(1, self.zxid),
                origin: 1,
                request_id: *rid,
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
        self.published.publish(&self.tree, true);
    }

    /// Sessions with client activity since the last call, as the actor collects them.
    fn touched(&mut self) -> Vec<SessionId> {
        let conns = self.host.sinks.take_touched();
        self.service.take_touched(conns)
    }

    /// What `cons` shows.
    fn report(&self) -> super::super::service::ClientReport {
        self.service.report(|conn| self.host.sinks.answered(conn))
    }

    /// What the connection does with a request: answer it itself, or send it to the service.
    fn request(&mut self, xid: i32, code: OpCode, body: Vec<u8>) -> bool {
        if let Some(reply) = self.reader.answer(self.flow.idle(), xid, code, &body) {
            self.sink.push(reply);
            return true;
        }
        self.flow.request_started();
        let p = ClientPacket {
            conn: ConnectionId(1),
            xid,
            op: Ok(code),
            body,
        };
        self.host
            .step(&mut self.service, ServiceInput::Packet(p), &self.tree);
        false
    }

    /// Frames sent so far, as (xid, err, body).
    fn frames(&mut self) -> Vec<(i32, i32, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(ToClient::Frame(f)) = self.rx.try_recv() {
            let h = ReplyHeader::from_bytes(&f).unwrap();
            out.push((h.xid, h.err, f[16..].to_vec()));
        }
        out
    }

    /// A committed handshake, its reply taken.
    fn connected() -> Self {
        let mut f = Fixture::new();
        f.commit();
        match f.rx.try_recv() {
            Ok(ToClient::Frame(c)) => {
                assert_ne!(ConnectResponse::from_bytes(&c).unwrap().session_id, 0)
            }
            other => panic!("no connect reply: {other:?}"),
        }
        f
    }
}

fn create(path: &str, data: &[u8], acl: Acl) -> Vec<u8> {
    CreateRequest {
        path: path.into(),
        data: NullableBuffer::bytes(data.to_vec()),
        acl: vec![acl],
        flags: 0,
    }
    .to_bytes()
}

fn anyone() -> Acl {
    Acl {
        perms: 31,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }
}

fn get(path: &str, watch: bool) -> Vec<u8> {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
    .to_bytes()
}

fn set(path: &str, data: &[u8]) -> Vec<u8> {
    SetDataRequest {
        path: path.into(),
        data: NullableBuffer::bytes(data.to_vec()),
        version: -1,
    }
    .to_bytes()
}

fn data_of(body: &[u8]) -> Vec<u8> {
    GetDataResponse::from_bytes(body)
        .unwrap()
        .data
        .as_slice()
        .to_vec()
}

#[test]
fn reads_before_the_handshake_completes_go_to_the_service() {
    let mut f = Fixture::new();
    assert!(!f.request(1, OpCode::Exists, get("/", false)));
    f.commit();
    let frames = f.frames();
    assert_eq!(frames.len(), 2, "the connect reply, then the read's");
    assert_eq!((frames[1].0, frames[1].1), (1, OK));
    assert!(
        f.request(2, OpCode::Exists, get("/", false)),
        "settled: answered here"
    );
}

#[test]
fn a_read_behind_a_pending_write_waits_for_it_and_sees_it() {
    let mut f = Fixture::connected();
    assert!(!f.request(1, OpCode::Create, create("/a", b"one", anyone())));
    assert!(
        !f.request(2, OpCode::GetData, get("/a", false)),
        "a read behind the session's pending write is not answered here"
    );
    assert!(f.frames().is_empty());
    f.commit();
    let frames = f.frames();
    assert_eq!(
        frames.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        [(1, 0), (2, 0)]
    );
    assert_eq!(data_of(&frames[1].2), b"one");
    // Idle now: the next write's reply, then a read here that sees it.
    assert!(!f.request(3, OpCode::SetData, set("/a", b"two")));
    f.commit();
    assert!(f.request(4, OpCode::GetData, get("/a", false)));
    let frames = f.frames();
    assert_eq!(
        frames.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        [(3, 0), (4, 0)]
    );
    assert_eq!(data_of(&frames[1].2), b"two");
}

#[test]
fn the_reply_is_queued_before_its_request_stops_counting() {
    let mut f = Fixture::connected();
    assert!(!f.request(1, OpCode::Create, create("/a", b"x", anyone())));
    assert!(!f.flow.idle());
    f.commit();
    // Idle implies the reply is already in the queue, ahead of anything pushed later.
    assert!(f.flow.idle());
    assert_eq!(f.frames().len(), 1);
}

#[test]
fn reads_that_set_watches_go_to_the_service_and_fire_before_a_later_direct_read() {
    let mut f = Fixture::connected();
    f.request(1, OpCode::Create, create("/w", b"a", anyone()));
    f.commit();
    f.frames();
    assert!(!f.request(2, OpCode::GetData, get("/w", true)));
    assert!(
        !f.request(3, OpCode::Exists, get("/missing", true)),
        "it sets a watch"
    );
    let frames = f.frames();
    assert_eq!(frames.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 3]);
    assert!(!f.request(4, OpCode::SetData, set("/w", b"b")));
    f.commit();
    assert!(f.request(5, OpCode::GetData, get("/w", false)));
    let frames = f.frames();
    assert_eq!(
        frames.iter().map(|x| x.0).collect::<Vec<_>>(),
        [xid::WATCH_EVENT, 4, 5],
        "the event comes before the replies that observe the change"
    );
    let e = WatcherEvent::from_bytes(&frames[0].2).unwrap();
    assert_eq!(e.event_type, EventType::NodeDataChanged.code());
    assert_eq!(data_of(&frames[2].2), b"b");
}

#[test]
fn a_server_out_of_quorum_answers_nothing_here() {
    let mut f = Fixture::connected();
    f.published.publish(&f.tree, false);
    assert!(!f.request(1, OpCode::Exists, get("/", false)));
    f.published.publish(&f.tree, true);
    assert!(
        f.request(2, OpCode::Exists, get("/", false)),
        "serving again: answered here"
    );
}

#[test]
fn acl_checks_use_the_identities_the_connection_added() {
    let mut f = Fixture::connected();
    let only_bob = Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: super::super::digest_id("bob:secret"),
        },
    };
    let auth = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Buffer(b"bob:secret".to_vec()),
    }
    .to_bytes();
    assert!(!f.request(1, OpCode::Auth, auth));
    assert!(!f.request(2, OpCode::Create, create("/s", b"secret", only_bob)));
    f.commit();
    f.frames();
    assert!(f.request(3, OpCode::GetData, get("/s", false)));
    let frames = f.frames();
    assert_eq!((frames[0].0, frames[0].1), (3, OK));
    assert_eq!(data_of(&frames[0].2), b"secret");
    // Another connection without bob's identity is refused.
    let mut other = Fixture::connected();
    other.tree = f.tree.clone();
    other.published.publish(&other.tree, true);
    assert!(other.request(1, OpCode::GetData, get("/s", false)));
    assert_eq!(other.frames()[0].1, ZkError::NoAuth.code());
}

#[test]
fn reads_here_keep_the_session_alive_and_count_for_cons() {
    let mut f = Fixture::connected();
    f.touched();
    assert!(f.request(1, OpCode::GetChildren2, get("/", false)));
    assert_eq!(f.touched().len(), 1);
    assert!(f.touched().is_empty());
    assert_eq!(f.report().connections[0].received, 1);
    f.service.reset_counters();
    f.host.sinks.reset_counters();
    assert_eq!(f.report().connections[0].received, 0);
}

#[test]
fn a_read_after_a_batch_was_counted_goes_to_the_service_and_asks_for_a_new_version() {
    let mut f = Fixture::connected();
    f.request(1, OpCode::Exists, get("/x", true));
    f.frames();
    let create_x = TreeTxn {
        session_id: SessionId::NONE,
        time_ms: 1,
        auth: Vec::new(),
        op: crate::data_tree::TreeOp::Create {
            path: "/x".into(),
            data: b"new".to_vec(),
            acl: vec![crate::data_tree::AclEntry {
                perms: 31,
                scheme: "world".into(),
                id: "anyone".into(),
            }],
            mode: crate::data_tree::CreateMode::Persistent,
        },
    };
    // Another server's write is applied here and fires the watch; nothing is published yet.
    f.published.applying();
    let txn = Txn {
        zxid: Zxid::new(1, 99),
        origin: 2,
        request_id: 0,
        body: create_x.encode(),
    };
    let applied = f.tree.apply(&txn);
    let input = ServiceInput::Applied {
        txn: &txn,
        applied: &applied,
        own: false,
    };
    f.host.step(&mut f.service, input, &f.tree);
    // The client saw the event and reads: not from the stale version.
    assert!(!f.request(2, OpCode::GetData, get("/x", false)));
    let frames = f.frames();
    assert_eq!(
        frames.iter().map(|x| x.0).collect::<Vec<_>>(),
        [xid::WATCH_EVENT, 2]
    );
    assert_eq!(data_of(&frames[1].2), b"new");
    // It asked for a new version; once published, reads are answered here again.
    f.published.publish_if_wanted(&f.tree, true);
    assert!(f.request(3, OpCode::GetData, get("/x", false)));
    assert_eq!(data_of(&f.frames()[0].2), b"new");
    f.published.publish_if_wanted(&f.tree, false);
    assert!(
        f.request(4, OpCode::Exists, get("/x", false)),
        "not wanted: not published"
    );
}

#[test]
fn a_version_that_is_no_longer_current_is_released() {
    let mut f = Fixture::connected();
    assert!(!f.request(1, OpCode::Create, create("/a", b"one", anyone())));
    f.commit();
    assert!(
        f.request(2, OpCode::GetData, get("/a", false)),
        "answered here"
    );
    let read = std::sync::Arc::downgrade(&f.published.load());
    // The actor counts the next batch: neither it nor the reader keeps the version read,
    // which would keep znodes deleted since alive.
    f.published.applying();
    assert!(read.upgrade().is_none(), "a superseded version stays alive");
    assert!(
        !f.request(3, OpCode::GetData, get("/a", false)),
        "a released version is never read"
    );
    assert_eq!(data_of(&f.frames()[2].2), b"one");
}
