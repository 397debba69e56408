//! The ZooKeeper request pipeline of one server as a pure core: sessions, request decoding,
//! reads, watches and reply encoding. [`ClientService::step`] takes one [`ServiceInput`] and
//! returns the [`ServiceOutput`]s its host carries out (frames to connections, txns to
//! propose); it does no I/O and reads no clock or randomness. The request pipeline actor runs
//! it so that reads, watch registration and applies are totally ordered.
//!
//! Replies are FIFO per session: a read queued behind a pending write of the same session runs
//! only after that write was applied here, and is answered after it.

mod types;
mod writes;

pub use types::{Hello, ServiceInput, ServiceOutput, StepClock};
pub(super) use writes::WriteRequest;

use super::protocol::ClientPacket;
use super::reads::tree_read;
use crate::data_tree::{
    ttl_of_owner, Applied, DataTree, NodeStat, OpResult, PermissionMemo, SessionPassword, TreeOp,
    TreeTxn,
};
use crate::metrics::ServerMetrics;
use crate::sessions::{first_session_id, kinds_of_type, password_matches, WatchKind, WatchManager};
use ensemble_messages::jute::*;
use ensemble_messages::zk::{
    perm, xid, AddWatchMode, ConnectionId, EventType, KeeperState, OpCode, SessionId,
    UnknownOpCode, WatcherType, ZkError, CONTAINER_OWNER,
};
use ensemble_messages::{Sid, Txn};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use types::Outcome;
use writes::{write_op, write_reply};

/// A request waiting for its turn to be answered; `since` is when it arrived.
enum Queued {
    Write {
        request_id: u64,
        reply: Option<Vec<u8>>,
        since: Instant,
    },
    Read {
        since: Instant,
        xid: i32,
        op: Result<OpCode, UnknownOpCode>,
        body: Vec<u8>,
    },
}

struct Conn {
    session: SessionId,
    ip: String,
    timeout_ms: i32,
    received: u64,
    sent: u64,
    auth: Vec<(String, String)>,
    queue: VecDeque<Queued>,
    /// Served while this server is out of quorum: reads only.
    read_only: bool,
}

impl Conn {
    /// A connection of `session` whose handshake `c` was accepted.
    fn new(session: SessionId, c: Hello, timeout_ms: i32, read_only: bool) -> Self {
        let mut auth = vec![("ip".to_string(), c.ip.clone())];
        auth.extend(c.identities);
        Conn {
            session,
            auth,
            ip: c.ip,
            timeout_ms,
            received: 0,
            sent: 0,
            queue: VecDeque::new(),
            read_only,
        }
    }
}

enum Pending {
    Connect {
        conn: ConnectionId,
        timeout_ms: i32,
        password: SessionPassword,
    },
    Write {
        conn: ConnectionId,
        xid: i32,
        request: WriteRequest,
    },
    /// A reconnected session moving here: its handshake's answer waits for the move's commit,
    /// as ZooKeeper's follower asks its leader to revalidate the session first.
    Move {
        conn: ConnectionId,
        reply: ConnectResponse,
    },
    /// A reconnect naming a session this server did not know, waiting for a no-op txn.
    Revalidate(Hello, SessionPassword),
}

/// One client connection, for the `cons` word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Client address.
    pub ip: String,
    /// Its session.
    pub session: SessionId,
    /// Negotiated timeout in ms.
    pub timeout_ms: i32,
    /// Requests received since the last reset.
    pub received: u64,
    /// Frames sent since the last reset.
    pub sent: u64,
}

/// This server's connections and watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Open connections, by session.
    pub connections: Vec<ConnectionInfo>,
    /// Watches as (session, path).
    pub watches: Vec<(SessionId, String)>,
}

/// Session timeout bounds, the payload limit and read-only mode.
#[derive(Clone, Copy, Debug)]
pub struct ServiceSettings {
    /// minSessionTimeout, in ms.
    pub min_ms: i32,
    /// maxSessionTimeout, in ms.
    pub max_ms: i32,
    /// jute.maxbuffer: the largest znode data a write may carry, in bytes.
    pub max_buffer: usize,
    /// readonlymode.enabled: out of quorum, serve reads to clients that allow read-only.
    pub read_only_mode: bool,
    /// The SHA-1 of `user:password` of ZooKeeper's superDigest: a client that authenticates
    /// with those digest credentials gets the super identity, which passes every ACL check.
    pub super_digest: Option<[u8; 20]>,
    /// zookeeper.enforceQuota: writes past a quota's hard limit are answered QuotaExceeded
    /// here, before they are submitted.
    pub enforce_quota: bool,
    /// reconfigEnabled: serve the reconfig op (else ReconfigDisabled).
    pub reconfig_enabled: bool,
}

/// The client-facing side of one server.
pub struct ClientService {
    sid: Sid,
    limits: ServiceSettings,
    conns: HashMap<ConnectionId, Conn>,
    by_session: HashMap<SessionId, ConnectionId>,
    pending: HashMap<u64, Pending>,
    /// The request id of each connection's handshake waiting to revalidate its session.
    revalidating: HashMap<ConnectionId, u64>,
    watches: WatchManager,
    next_session: SessionId,
    /// Sessions with client activity here since the last report to the tracker.
    touched: HashSet<SessionId>,
    /// Packet counts and request latencies.
    metrics: Arc<ServerMetrics>,
    /// Whether this server serves (synced with a leader that has a quorum).
    serving: bool,
    /// The last request id handed out.
    next_request: u64,
    /// When the current step runs.
    clock: StepClock,
    /// What the current step asks of the host.
    out: Vec<ServiceOutput>,
}

/// The request ids of a service started at `wall_ms` begin above every id an earlier start
/// of this server could still have in flight (65,536 per millisecond of uptime), so a txn an
/// earlier incarnation proposed is never taken for one of this one's.
fn first_request_id(wall_ms: i64) -> u64 {
    u64::try_from(wall_ms).unwrap_or(0) << 16
}

/// A reply frame: the header, then `body`.
pub(super) fn frame(xid: i32, zxid: i64, outcome: Result<(), ZkError>, body: &[u8]) -> Vec<u8> {
    let err = ZkError::to_wire(outcome);
    let mut out = ReplyHeader { xid, zxid, err }.to_bytes();
    out.extend_from_slice(body);
    out
}

/// Converts the tree's metadata to the wire record. As Apache ZooKeeper does, clients see an
/// ephemeralOwner only for session-owned znodes: the container and TTL markers read as 0.
pub fn to_stat(s: &NodeStat) -> Stat {
    let owner = s.ephemeral_owner;
    let is_marker = owner == CONTAINER_OWNER || ttl_of_owner(owner).is_some();
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: if is_marker { 0 } else { owner },
        data_length: s.data_length,
        num_children: s.num_children,
        pzxid: s.pzxid,
    }
}

/// `user:base64(sha1(user:password))`, ZooKeeper's digest identity.
pub fn digest_id(credentials: &str) -> String {
    use base64::Engine;
    let user = credentials.split(':').next().unwrap_or("");
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(digest_hash(credentials))
    )
}

/// SHA-1 of digest credentials `user:password`.
fn digest_hash(credentials: &str) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(credentials.as_bytes()).into()
}

impl ClientService {
    /// A service for server `sid` that counts into `metrics`.
    pub fn new(
        sid: Sid,
        limits: ServiceSettings,
        clock: StepClock,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        ClientService {
            sid,
            limits,
            conns: HashMap::new(),
            by_session: HashMap::new(),
            pending: HashMap::new(),
            revalidating: HashMap::new(),
            watches: WatchManager::default(),
            next_session: first_session_id(sid, clock.wall_ms),
            touched: HashSet::new(),
            metrics,
            serving: false,
            next_request: first_request_id(clock.wall_ms),
            clock,
            out: Vec::new(),
        }
    }

    /// Runs one input at `clock` and returns what the host must carry out, in order.
    pub fn step(
        &mut self,
        input: ServiceInput<'_>,
        tree: &DataTree,
        clock: StepClock,
    ) -> Vec<ServiceOutput> {
        self.clock = clock;
        match input {
            ServiceInput::Connect { hello, password } => {
                self.metrics.received();
                self.handshake(hello, password, tree, true);
            }
            ServiceInput::Packet(p) => self.packet(p, tree),
            ServiceInput::Gone(conn) => self.gone(conn),
            ServiceInput::Serving(serving) => self.serving_changed(serving),
            ServiceInput::Applied { txn, applied, own } => {
                self.applied_txn(txn, applied, own, tree)
            }
            ServiceInput::Failed { request_id, why } => self.completed(request_id, Err(why), tree),
        }
        std::mem::take(&mut self.out)
    }

    /// A request id for a txn the host proposes itself: unique among the service's own.
    pub fn next_request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Asks the host to propose `txn`; returns its request id.
    fn propose(&mut self, txn: TreeTxn) -> u64 {
        let request_id = self.next_request_id();
        self.out.push(ServiceOutput::Propose { request_id, txn });
        request_id
    }

    /// Asks the host to close `conn` after what was sent to it.
    fn close_sink(&mut self, conn: ConnectionId) {
        self.out.push(ServiceOutput::Close(conn));
    }

    /// Lets `conn`'s thread answer reads of its settled session.
    fn share_session(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.get(&conn) {
            self.out.push(ServiceOutput::ShareSession {
                conn,
                session: c.session,
                auth: c.auth.clone(),
            });
        }
    }

    /// A txn's metadata: its session, the step's wall-clock time, no identities.
    fn session_txn(&self, session_id: SessionId, op: TreeOp) -> TreeTxn {
        TreeTxn {
            session_id,
            time_ms: self.clock.wall_ms,
            auth: Vec::new(),
            op,
        }
    }

    /// Whether a txn with this request id was submitted by the service and is pending.
    pub fn is_pending(&self, request_id: u64) -> bool {
        self.pending.contains_key(&request_id)
    }

    /// Open client connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Watches set by this server's sessions.
    pub fn watch_count(&self) -> usize {
        self.watches.count()
    }

    /// Paths watched by this server's sessions.
    pub fn watched_paths(&self) -> usize {
        self.watches.paths()
    }

    /// Sends a frame that answers no request: a handshake reply or a notification.
    fn send(&mut self, conn: ConnectionId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            self.metrics.sent();
            c.sent += 1;
            self.out.push(ServiceOutput::Push { conn, frame });
        }
    }

    /// Sends the reply to one of the connection's requests.
    fn answer(&mut self, conn: ConnectionId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            self.metrics.sent();
            c.sent += 1;
            self.out.push(ServiceOutput::Reply { conn, frame });
        }
    }

    /// A session id no server hands out twice: the next of this server's.
    fn new_session_id(&mut self) -> SessionId {
        self.next_session = SessionId(self.next_session.0 + 1);
        self.next_session
    }

    /// What the `cons`, `wchc` and `wchp` words show; `answered` counts the reads a
    /// connection's thread answered itself.
    pub fn report(&self, answered: impl Fn(ConnectionId) -> u64) -> ClientReport {
        let mut connections: Vec<ConnectionInfo> = self
            .conns
            .iter()
            .map(|(id, c)| ConnectionInfo {
                ip: c.ip.clone(),
                session: c.session,
                timeout_ms: c.timeout_ms,
                received: c.received + answered(*id),
                sent: c.sent + answered(*id),
            })
            .collect();
        connections.sort_by_key(|c| c.session);
        ClientReport {
            connections,
            watches: self.watches.all(),
        }
    }

    /// Zeroes the per-connection counters (`crst`; the host zeroes its connections' own).
    pub fn reset_counters(&mut self) {
        for c in self.conns.values_mut() {
            c.received = 0;
            c.sent = 0;
        }
    }

    /// A handshake; one naming a session this tree does not know first waits for a no-op
    /// txn when `may_wait`.
    fn handshake(&mut self, c: Hello, password: SessionPassword, tree: &DataTree, may_wait: bool) {
        let last = tree.last_applied().0 as i64;
        let read_only = !self.serving;
        if read_only && !(self.limits.read_only_mode && c.read_only) {
            self.close_sink(c.conn);
            return;
        }
        if c.request.last_zxid_seen > last {
            tracing::warn!(
                "refusing a client that has seen zxid 0x{:x}; this server is at 0x{last:x}",
                c.request.last_zxid_seen
            );
            self.close_sink(c.conn);
            return;
        }
        let timeout = c
            .request
            .time_out
            .clamp(self.limits.min_ms, self.limits.max_ms);
        let session = SessionId(c.request.session_id);
        if read_only {
            self.connect_read_only(c, password, timeout, tree);
            return;
        }
        if session == SessionId::NONE {
            let id = self.new_session_id();
            let conn = c.conn;
            let op = TreeOp::CreateSession {
                timeout_ms: timeout,
                password,
            };
            let rid = self.propose(self.session_txn(id, op));
            // Requests a client pipelines behind its handshake (ZooKeeper's Netty client
            // does) are answered after the handshake reply, not before it.
            let handshake = Queued::Write {
                request_id: rid,
                reply: None,
                since: self.clock.at,
            };
            self.conns.insert(
                conn,
                Conn {
                    queue: VecDeque::from([handshake]),
                    ..Conn::new(id, c, timeout, false)
                },
            );
            self.pending.insert(
                rid,
                Pending::Connect {
                    conn,
                    timeout_ms: timeout,
                    password,
                },
            );
            return;
        }
        if may_wait && !tree.has_session(session) {
            self.revalidate(c, password);
            return;
        }
        let Some(password) = reconnectable(tree, &c) else {
            self.refuse_expired(c.conn);
            return;
        };
        let reply = self.take_over(session, &c, timeout, false, password);
        self.touched.insert(session);
        let mut queue = VecDeque::new();
        if tree.session_owner(session) == Some(self.sid) {
            self.answer_handshake(c.conn, &reply);
        } else {
            // The session moves here, and the client hears it is connected once the move
            // commits: a server cut off from its leader never tells it so. Its later writes
            // queue behind the move and reach the leader after it, so they are never refused
            // as coming from the old server.
            let rid = self.propose(self.session_txn(session, TreeOp::MoveSession));
            queue.push_back(Queued::Write {
                request_id: rid,
                reply: None,
                since: self.clock.at,
            });
            let conn = c.conn;
            self.pending.insert(rid, Pending::Move { conn, reply });
        }
        let settled = queue.is_empty();
        let id = c.conn;
        let conn = Conn {
            queue,
            ..Conn::new(session, c, timeout, false)
        };
        self.conns.insert(id, conn);
        if settled {
            self.share_session(id);
        }
    }

    /// A reconnect names a session this server does not know: its creation may be committed
    /// but not applied here yet (the client learnt its id from a server ahead of this one).
    /// A no-op txn orders the answer after every commit before it; ZooKeeper asks its leader.
    fn revalidate(&mut self, c: Hello, password: SessionPassword) {
        let op = TreeOp::Check {
            path: "/".into(),
            version: -1,
        };
        let rid = self.propose(self.session_txn(SessionId::NONE, op));
        self.revalidating.insert(c.conn, rid);
        self.pending.insert(rid, Pending::Revalidate(c, password));
    }

    /// A read-only client's handshake while this server is out of quorum: a new session is
    /// local to this server; a known one keeps its id but may only read here.
    fn connect_read_only(
        &mut self,
        c: Hello,
        fresh_password: SessionPassword,
        timeout: i32,
        tree: &DataTree,
    ) {
        let mut session = SessionId(c.request.session_id);
        let password = if session == SessionId::NONE {
            session = self.new_session_id();
            fresh_password
        } else if let Some(password) = reconnectable(tree, &c) {
            password
        } else {
            self.refuse_expired(c.conn);
            return;
        };
        let reply = self.take_over(session, &c, timeout, true, password);
        self.answer_handshake(c.conn, &reply);
        self.conns
            .insert(c.conn, Conn::new(session, c, timeout, true));
    }

    /// The session's connection is now `c`: an older one on this server is closed. Returns
    /// the answer that tells `c` its session was accepted.
    fn take_over(
        &mut self,
        session: SessionId,
        c: &Hello,
        timeout: i32,
        read_only: bool,
        password: SessionPassword,
    ) -> ConnectResponse {
        if let Some(old) = self.by_session.insert(session, c.conn) {
            if self.conns.remove(&old).is_some() {
                self.close_sink(old);
            }
        }
        accepted(session, timeout, read_only, password)
    }

    /// Sends a handshake's answer.
    fn answer_handshake(&mut self, conn: ConnectionId, reply: &ConnectResponse) {
        self.out.push(ServiceOutput::Push {
            conn,
            frame: reply.to_bytes(),
        });
    }

    /// Tells a client its session is gone (timeOut 0, as ZooKeeper does) and closes it.
    fn refuse_expired(&mut self, conn: ConnectionId) {
        let reply = ConnectResponse {
            passwd: Buffer(vec![0; 16]),
            ..ConnectResponse::default()
        };
        let frame = reply.to_bytes();
        self.out.push(ServiceOutput::Push { conn, frame });
        self.close_sink(conn);
    }

    /// This server joined or left the serving quorum. Leaving it ends every connection, so
    /// clients move to a server that still serves; joining it ends the read-only ones, so
    /// their clients come back read-write.
    fn serving_changed(&mut self, serving: bool) {
        self.serving = serving;
        let ending: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, c)| !serving || c.read_only)
            .map(|(id, _)| *id)
            .collect();
        for conn in ending {
            self.close(conn);
        }
    }

    /// Ends a connection from this side.
    fn close(&mut self, conn: ConnectionId) {
        if self.conns.contains_key(&conn) {
            self.close_sink(conn);
        }
        self.gone(conn);
    }

    /// The connection closed (the session lives on until it expires or is closed). A
    /// handshake still waiting to revalidate its session is dropped.
    fn gone(&mut self, conn: ConnectionId) {
        if let Some(rid) = self.revalidating.remove(&conn) {
            self.pending.remove(&rid);
        }
        if let Some(c) = self.conns.remove(&conn) {
            if self.by_session.get(&c.session) == Some(&conn) {
                self.by_session.remove(&c.session);
                self.watches.remove_session(c.session);
            }
        }
    }

    /// A request frame.
    fn packet(&mut self, p: ClientPacket, tree: &DataTree) {
        let since = self.clock.at;
        self.metrics.received();
        let Some(conn) = self.conns.get_mut(&p.conn) else {
            return;
        };
        let parsed = match p.op {
            Ok(OpCode::Reconfig) => Some(super::reconfig::reconfig_request(
                &p.body,
                tree,
                &conn.auth,
                self.limits.reconfig_enabled,
            )),
            Ok(code) => write_op(code, &p.body, self.limits.max_buffer),
            Err(_) => None,
        };
        conn.received += 1;
        let session = conn.session;
        // Only writes carry the identities (reads check them where they run).
        let auth = if parsed.is_some() {
            conn.auth.clone()
        } else {
            Vec::new()
        };
        self.touched.insert(session);
        if conn.read_only && parsed.is_some() {
            if p.op == Ok(OpCode::CloseSession) {
                let reply = frame(p.xid, tree.last_applied().0 as i64, Ok(()), &[]);
                self.enqueue_ready(p.conn, reply, tree);
                self.close(p.conn);
                return;
            }
            let reply = frame(
                p.xid,
                tree.last_applied().0 as i64,
                Err(ZkError::NotReadOnly),
                &[],
            );
            self.enqueue_ready(p.conn, reply, tree);
            return;
        }
        if let Some(parsed) = parsed {
            match parsed {
                Ok(request) => {
                    let refusal = self
                        .limits
                        .enforce_quota
                        .then(|| tree.quota_refusal(&request.op, &auth))
                        .flatten();
                    if let Some(result) = refusal {
                        let zxid = tree.last_applied().0 as i64;
                        let reply = write_reply(p.xid, zxid, &request, &result);
                        self.enqueue_ready(p.conn, reply, tree);
                        return;
                    }
                    let txn = TreeTxn {
                        session_id: session,
                        time_ms: self.clock.wall_ms,
                        auth,
                        op: request.op.clone(),
                    };
                    let rid = self.propose(txn);
                    let conn = self
                        .conns
                        .get_mut(&p.conn)
                        .expect("connection checked above");
                    conn.queue.push_back(Queued::Write {
                        request_id: rid,
                        reply: None,
                        since,
                    });
                    self.pending.insert(
                        rid,
                        Pending::Write {
                            conn: p.conn,
                            xid: p.xid,
                            request,
                        },
                    );
                }
                Err(e) => {
                    let reply = frame(p.xid, tree.last_applied().0 as i64, Err(e), &[]);
                    self.enqueue_ready(p.conn, reply, tree);
                }
            }
            return;
        }
        let conn = self
            .conns
            .get_mut(&p.conn)
            .expect("connection checked above");
        conn.queue.push_back(Queued::Read {
            since,
            xid: p.xid,
            op: p.op,
            body: p.body,
        });
        self.drain(p.conn, tree);
    }

    /// Queues the reply to a write that needs no txn (refused, or closing a read-only session).
    fn enqueue_ready(&mut self, conn: ConnectionId, reply: Vec<u8>, tree: &DataTree) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Queued::Write {
                request_id: 0,
                reply: Some(reply),
                since: self.clock.at,
            });
        }
        self.drain(conn, tree);
    }

    /// Answers queued requests in order, up to the first write still pending.
    fn drain(&mut self, conn: ConnectionId, tree: &DataTree) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let front = match c.queue.front_mut() {
                None => return,
                Some(Queued::Write { reply: None, .. }) => return,
                Some(_) => c.queue.pop_front(),
            };
            let out = match front {
                Some(Queued::Write {
                    reply: Some(r),
                    since,
                    ..
                }) => {
                    self.metrics
                        .update_latency
                        .observe(self.clock.at.saturating_duration_since(since));
                    r
                }
                Some(Queued::Read {
                    since,
                    xid,
                    op,
                    body,
                }) => {
                    let session = c.session;
                    // Lent out for the call rather than copied; an `auth` request adds to the
                    // connection's list meanwhile, so what it added is kept.
                    let auth = std::mem::take(&mut c.auth);
                    let reply = self.read(conn, session, &auth, xid, op, &body, tree);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        let added = std::mem::replace(&mut c.auth, auth);
                        if !added.is_empty() {
                            c.auth.extend(added);
                            let auth = c.auth.clone();
                            self.out.push(ServiceOutput::ShareAuth { conn, auth });
                        }
                    }
                    self.metrics
                        .read_latency
                        .observe(self.clock.at.saturating_duration_since(since));
                    reply
                }
                _ => return,
            };
            self.answer(conn, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        conn: ConnectionId,
        session: SessionId,
        auth: &[(String, String)],
        xid: i32,
        code: Result<OpCode, UnknownOpCode>,
        body: &[u8],
        tree: &DataTree,
    ) -> Vec<u8> {
        let zxid = tree.last_applied().0 as i64;
        let ok = |b: Vec<u8>| frame(xid, zxid, Ok(()), &b);
        let fail = |e: ZkError| frame(xid, zxid, Err(e), &[]);
        let code = match code {
            Ok(code) => code,
            Err(unknown) => {
                // As ZooKeeper, whose UnimplementedRequestProcessor answers these.
                tracing::debug!(%session, "{unknown}: answering Unimplemented");
                return fail(ZkError::Unimplemented);
            }
        };
        if let Some(a) = tree_read(tree, session, auth, code, body) {
            for (kind, path) in &a.watches {
                self.watches.add(*kind, path, session);
            }
            return frame(xid, zxid, a.outcome, &a.body);
        }
        match code {
            OpCode::Ping => frame(xid::PING, zxid, Ok(()), &[]),
            OpCode::Auth => match AuthPacket::from_bytes(body) {
                Ok(a) if a.scheme == "digest" => {
                    let ids = self.digest_identities(&String::from_utf8_lossy(&a.auth.0));
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.auth.extend(ids);
                    }
                    frame(xid::AUTH, zxid, Ok(()), &[])
                }
                _ => frame(xid::AUTH, zxid, Err(ZkError::AuthFailed), &[]),
            },
            OpCode::AddWatch => match AddWatchRequest::from_bytes(body) {
                Err(_) => fail(ZkError::MarshallingError),
                Ok(r) => {
                    let kind = match AddWatchMode::known(r.mode) {
                        Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                        _ => WatchKind::Persistent,
                    };
                    self.watches.add(kind, &r.path, session);
                    ok(Vec::new())
                }
            },
            OpCode::CheckWatches | OpCode::RemoveWatches => {
                match WatchesRequest::from_bytes(body) {
                    Err(_) => fail(ZkError::MarshallingError),
                    Ok(r) => {
                        let kinds =
                            WatcherType::known(r.watcher_type).map_or(&[][..], kinds_of_type);
                        let found = if code == OpCode::CheckWatches {
                            self.watches.has(kinds, &r.path, session)
                        } else {
                            self.watches.remove(kinds, &r.path, session)
                        };
                        if found {
                            ok(Vec::new())
                        } else {
                            fail(ZkError::NoWatcher)
                        }
                    }
                }
            }
            OpCode::WhoAmI => ok(WhoAmIResponse {
                client_info: auth
                    .iter()
                    .map(|(scheme, id)| ClientInfo {
                        auth_scheme: scheme.clone(),
                        // As Apache's digest provider names users: `bob`, not `bob:HASH`.
                        user: match scheme.as_str() {
                            "digest" => id.split(':').next().unwrap_or_default().to_string(),
                            _ => id.clone(),
                        },
                    })
                    .collect(),
            }
            .to_bytes()),
            OpCode::SetWatches => match SetWatches::from_bytes(body) {
                Err(_) => fail(ZkError::MarshallingError),
                Ok(w) => {
                    self.set_watches(conn, session, &w, tree);
                    frame(xid::SET_WATCHES, zxid, Ok(()), &[])
                }
            },
            OpCode::SetWatches2 => match SetWatches2::from_bytes(body) {
                Err(_) => fail(ZkError::MarshallingError),
                Ok(w) => {
                    let one_shot = SetWatches {
                        relative_zxid: w.relative_zxid,
                        data_watches: w.data_watches,
                        exist_watches: w.exist_watches,
                        child_watches: w.child_watches,
                    };
                    self.set_watches(conn, session, &one_shot, tree);
                    for p in &w.persistent_watches {
                        self.watches.add(WatchKind::Persistent, p, session);
                    }
                    for p in &w.persistent_recursive_watches {
                        self.watches.add(WatchKind::PersistentRecursive, p, session);
                    }
                    frame(xid::SET_WATCHES, zxid, Ok(()), &[])
                }
            },
            _ => fail(ZkError::Unimplemented),
        }
    }

    /// Re-arms watches after a reconnect, firing those whose change the client missed.
    fn set_watches(
        &mut self,
        conn: ConnectionId,
        session: SessionId,
        w: &SetWatches,
        tree: &DataTree,
    ) {
        let rel = w.relative_zxid;
        let mut fire = Vec::new();
        for p in &w.data_watches {
            match tree.stat(p) {
                None => fire.push((EventType::NodeDeleted, p.clone())),
                Some(s) if s.mzxid > rel => fire.push((EventType::NodeDataChanged, p.clone())),
                Some(_) => self.watches.add(WatchKind::Data, p, session),
            }
        }
        for p in &w.exist_watches {
            match tree.stat(p) {
                Some(_) => fire.push((EventType::NodeCreated, p.clone())),
                None => self.watches.add(WatchKind::Exist, p, session),
            }
        }
        for p in &w.child_watches {
            match tree.stat(p) {
                None => fire.push((EventType::NodeDeleted, p.clone())),
                Some(s) if s.pzxid > rel => fire.push((EventType::NodeChildrenChanged, p.clone())),
                Some(_) => self.watches.add(WatchKind::Child, p, session),
            }
        }
        for (t, p) in fire {
            self.send(conn, event_frame(t, &p));
        }
    }

    /// The identities `addauth digest credentials` gives: the digest id, and the super
    /// identity when the credentials are the superDigest's.
    fn digest_identities(&self, credentials: &str) -> Vec<(String, String)> {
        let mut ids = vec![("digest".to_string(), digest_id(credentials))];
        if self
            .limits
            .super_digest
            .is_some_and(|h| h == digest_hash(credentials))
        {
            ids.push(("super".to_string(), String::new()));
        }
        ids
    }

    /// Sessions with client activity here since the last call: the ones this core saw, and
    /// those of `touched_conns` (connections whose threads answered reads themselves).
    pub fn take_touched(
        &mut self,
        touched_conns: impl IntoIterator<Item = ConnectionId>,
    ) -> Vec<SessionId> {
        for conn in touched_conns {
            if let Some(c) = self.conns.get(&conn) {
                self.touched.insert(c.session);
            }
        }
        self.touched.drain().collect()
    }

    /// A committed txn was applied here: fire watches; drop the connection of a closed session.
    fn applied(&mut self, applied: &Applied) {
        if let Some(session) = applied.closed_session {
            // A client closing its own session is answered, then closed, by `completed`.
            let own_close = self
                .by_session
                .get(&session)
                .and_then(|c| self.conns.get(c))
                .is_some_and(|c| {
                    c.queue
                        .iter()
                        .any(|q| matches!(q, Queued::Write { reply: None, .. }))
                });
            if !own_close {
                if let Some(conn) = self.by_session.remove(&session) {
                    self.watches.remove_session(session);
                    if self.conns.remove(&conn).is_some() {
                        self.close_sink(conn);
                    }
                }
            }
        }
        // A multi's changes often share an ACL (every child event of one parent): each session
        // reads each ACL once.
        let mut memos: HashMap<SessionId, PermissionMemo> = HashMap::new();
        for t in &applied.triggers {
            let may_read = |session: SessionId| {
                self.by_session
                    .get(&session)
                    .and_then(|c| self.conns.get(c))
                    .is_some_and(|c| {
                        let memo = memos.entry(session).or_default();
                        memo.permits(&t.acl, perm::READ, &c.auth)
                    })
            };
            for (session, event_type, path) in self.watches.trigger(&t.path, t.event, may_read) {
                if let Some(conn) = self.by_session.get(&session) {
                    self.send(*conn, event_frame(event_type, &path));
                }
            }
        }
    }

    /// A committed txn was applied here: fires its watches, then answers the request it
    /// carries if this service submitted it (`own`: it came from this server), before the next
    /// txn applies. A reply queued behind it (a read, a ping) then sees the tree as of its
    /// turn, never a later write of the same session, as ZooKeeper answers each commit in turn.
    fn applied_txn(&mut self, txn: &Txn, applied: &Applied, own: bool, tree: &DataTree) {
        self.applied(applied);
        if own && self.is_pending(txn.request_id) {
            let outcome = Ok((txn.zxid, applied.result.clone()));
            self.completed(txn.request_id, outcome, tree);
        }
    }

    /// A txn submitted by this service finished: applied here, or failed.
    fn completed(&mut self, request_id: u64, outcome: Outcome, tree: &DataTree) {
        let Some(p) = self.pending.remove(&request_id) else {
            return;
        };
        match p {
            Pending::Revalidate(c, password) => {
                self.revalidating.remove(&c.conn);
                match outcome {
                    Ok(_) => self.handshake(c, password, tree, false),
                    Err(_) => self.close_sink(c.conn),
                }
            }
            Pending::Connect {
                conn,
                timeout_ms,
                password,
            } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                if outcome.is_err() {
                    self.close_sink(conn);
                    self.conns.remove(&conn);
                    return;
                }
                let session = c.session;
                self.share_session(conn);
                let reply = accepted(session, timeout_ms, false, password);
                self.by_session.insert(session, conn);
                self.send(conn, reply.to_bytes());
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.retain(
                        |q| !matches!(q, Queued::Write { request_id: r, .. } if *r == request_id),
                    );
                }
                self.drain(conn, tree);
            }
            Pending::Move { conn, reply } => {
                let moved = matches!(outcome, Ok((_, OpResult::Session)));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.retain(
                        |q| !matches!(q, Queued::Write { request_id: r, .. } if *r == request_id),
                    );
                }
                if moved {
                    self.answer_handshake(conn, &reply);
                    self.share_session(conn);
                    self.drain(conn, tree);
                } else {
                    self.close(conn);
                }
            }
            Pending::Write { conn, xid, request } => {
                let code = request.code;
                let moved = matches!(outcome, Ok((_, OpResult::Error(ZkError::SessionMoved))));
                let reply = match outcome {
                    Err(why) => {
                        let code = (code == OpCode::Reconfig)
                            .then(|| crate::zab::membership::refusal_code(&why))
                            .flatten()
                            .unwrap_or(ZkError::ConnectionLoss);
                        frame(xid, tree.last_applied().0 as i64, Err(code), &[])
                    }
                    Ok((zxid, OpResult::DataSet { stat })) if code == OpCode::Reconfig => {
                        let data = tree.config().0;
                        let reply = GetDataResponse {
                            data: NullableBuffer::bytes(data),
                            stat: to_stat(&stat),
                        };
                        frame(xid, zxid.0 as i64, Ok(()), &reply.to_bytes())
                    }
                    Ok((zxid, result)) => write_reply(xid, zxid.0 as i64, &request, &result),
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    for q in c.queue.iter_mut() {
                        if let Queued::Write {
                            request_id: r,
                            reply: slot,
                            ..
                        } = q
                        {
                            if *r == request_id {
                                *slot = Some(reply);
                                break;
                            }
                        }
                    }
                }
                // After closing its session, or finding it moved to another server (ZooKeeper
                // treats SessionMoved as a connection-level error), the connection ends.
                if code == OpCode::CloseSession || moved {
                    self.drain(conn, tree);
                    self.close(conn);
                    return;
                }
                self.drain(conn, tree);
            }
        }
    }
}

fn event_frame(event_type: EventType, path: &str) -> Vec<u8> {
    let body = WatcherEvent {
        event_type: event_type.code(),
        state: KeeperState::SyncConnected.code(),
        path: path.to_string(),
    }
    .to_bytes();
    frame(xid::WATCH_EVENT, -1, Ok(()), &body)
}

/// The password of the live session a reconnecting client names, if it gave that password.
fn reconnectable(tree: &DataTree, c: &Hello) -> Option<SessionPassword> {
    tree.session_password(SessionId(c.request.session_id))
        .filter(|p| password_matches(&c.request.passwd.0, p))
        .copied()
}

/// The handshake reply of an accepted session.
fn accepted(
    session: SessionId,
    timeout_ms: i32,
    read_only: bool,
    password: SessionPassword,
) -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        time_out: timeout_ms,
        session_id: session.0,
        passwd: Buffer(password.to_vec()),
        read_only,
    }
}

#[cfg(test)]
mod step_tests;
#[cfg(test)]
mod tests;
