//! The ZooKeeper request pipeline of one server, run inside the quorum peer actor so that reads,
//! watch registration and applies are totally ordered.
//!
//! Replies are FIFO per session: a read queued behind a pending write of the same session runs
//! only after that write was applied here, and is answered after it.

use super::protocol::{ClientConnect, ClientPacket, ClientSink};
use super::reads::tree_read;
use crate::data_tree::{
    ttl_of_owner, AclEntry, Applied, CreateMode, DataTree, NodeStat, OpResult, PermissionMemo,
    SessionPassword, TreeOp, TreeTxn,
};
use crate::metrics::ServerMetrics;
use crate::sessions::{first_session_id, kinds_of_type, password_matches, WatchKind, WatchManager};
use ensemble_messages::jute::*;
use ensemble_messages::zk::{
    perm, xid, AddWatchMode, ConnectionId, EventType, KeeperState, OpCode, SessionId,
    UnknownOpCode, WatcherType, ZkError, CONTAINER_OWNER,
};
use ensemble_messages::{Sid, Txn, Zxid};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// What the service needs from its host actor.
pub trait Host {
    /// Proposes a txn; returns the request id its completion will carry.
    fn submit(&mut self, txn: TreeTxn) -> u64;
    /// Whether this server is serving (synced with a leader that has a quorum).
    fn serving(&self) -> bool;
    /// Wall-clock time in ms.
    fn now_ms(&self) -> i64;
    /// 16 random bytes for a new session's password.
    fn random_password(&mut self) -> SessionPassword;
}

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
    sink: ClientSink,
    auth: Vec<(String, String)>,
    queue: VecDeque<Queued>,
    /// Served while this server is out of quorum: reads only.
    read_only: bool,
}

impl Conn {
    /// A connection of `session` whose handshake `c` was accepted.
    fn new(session: SessionId, c: ClientConnect, timeout_ms: i32, read_only: bool) -> Self {
        let mut auth = vec![("ip".to_string(), c.ip.clone())];
        auth.extend(c.identities);
        Conn {
            session,
            auth,
            ip: c.ip,
            timeout_ms,
            received: 0,
            sent: 0,
            sink: c.sink,
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
    /// A reconnected session moving here; it has no reply of its own.
    Move { conn: ConnectionId },
    /// A reconnect naming a session this server did not know, waiting for a no-op txn.
    Revalidate(ClientConnect),
}

/// A parsed write: the tree op, the op codes of a multi's sub-ops, and the path (for sync).
pub(super) struct WriteRequest {
    pub(super) code: OpCode,
    pub(super) op: TreeOp,
    pub(super) sub_ops: Vec<OpCode>,
    pub(super) path: String,
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
    watches: WatchManager,
    next_session: SessionId,
    /// Sessions with client activity here since the last report to the tracker.
    touched: HashSet<SessionId>,
    /// Packet counts and request latencies.
    metrics: Arc<ServerMetrics>,
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

fn to_acl(acl: &[Acl]) -> Vec<AclEntry> {
    acl.iter()
        .map(|a| AclEntry {
            perms: a.perms,
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        })
        .collect()
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
        now_ms: i64,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        ClientService {
            sid,
            limits,
            conns: HashMap::new(),
            by_session: HashMap::new(),
            pending: HashMap::new(),
            watches: WatchManager::default(),
            next_session: first_session_id(sid, now_ms),
            touched: HashSet::new(),
            metrics,
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
            c.sink.push(frame);
        }
    }

    /// Sends the reply to one of the connection's requests.
    fn answer(&mut self, conn: ConnectionId, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            self.metrics.sent();
            c.sent += 1;
            c.sink.reply(frame);
        }
    }

    /// A session id no server hands out twice: the next of this server's.
    fn new_session_id(&mut self) -> SessionId {
        self.next_session = SessionId(self.next_session.0 + 1);
        self.next_session
    }

    /// What the `cons`, `wchc` and `wchp` words show.
    pub fn report(&self) -> ClientReport {
        let mut connections: Vec<ConnectionInfo> = self
            .conns
            .values()
            .map(|c| ConnectionInfo {
                ip: c.ip.clone(),
                session: c.session,
                timeout_ms: c.timeout_ms,
                received: c.received + c.sink.share().answered(),
                sent: c.sent + c.sink.share().answered(),
            })
            .collect();
        connections.sort_by_key(|c| c.session);
        ClientReport {
            connections,
            watches: self.watches.all(),
        }
    }

    /// Zeroes the per-connection counters (`crst`).
    pub fn reset_counters(&mut self) {
        for c in self.conns.values_mut() {
            c.received = 0;
            c.sent = 0;
            c.sink.share().reset();
        }
    }

    /// A client's handshake.
    pub fn connect(&mut self, c: ClientConnect, tree: &DataTree, host: &mut impl Host) {
        self.metrics.received();
        self.handshake(c, tree, host, true);
    }

    /// A handshake; one naming a session this tree does not know first waits for a no-op
    /// txn when `may_wait`.
    fn handshake(
        &mut self,
        c: ClientConnect,
        tree: &DataTree,
        host: &mut impl Host,
        may_wait: bool,
    ) {
        let last = tree.last_applied().0 as i64;
        let read_only = !host.serving();
        if read_only && !(self.limits.read_only_mode && c.read_only) {
            c.sink.close();
            return;
        }
        if c.request.last_zxid_seen > last {
            tracing::warn!(
                "refusing a client that has seen zxid 0x{:x}; this server is at 0x{last:x}",
                c.request.last_zxid_seen
            );
            c.sink.close();
            return;
        }
        let timeout = c
            .request
            .time_out
            .clamp(self.limits.min_ms, self.limits.max_ms);
        let session = SessionId(c.request.session_id);
        if read_only {
            self.connect_read_only(c, timeout, tree, host);
            return;
        }
        if session == SessionId::NONE {
            let id = self.new_session_id();
            let conn = c.conn;
            let password = host.random_password();
            let txn = TreeTxn {
                session_id: id,
                time_ms: host.now_ms(),
                auth: Vec::new(),
                op: TreeOp::CreateSession {
                    timeout_ms: timeout,
                    password,
                },
            };
            let rid = host.submit(txn);
            // Requests a client pipelines behind its handshake (ZooKeeper's Netty client
            // does) are answered after the handshake reply, not before it.
            let handshake = Queued::Write {
                request_id: rid,
                reply: None,
                since: Instant::now(),
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
            self.revalidate(c, host);
            return;
        }
        let Some(password) = reconnectable(tree, &c) else {
            refuse_expired(&c);
            return;
        };
        self.take_over(session, &c, timeout, false, password);
        self.touched.insert(session);
        let mut queue = VecDeque::new();
        if tree.session_owner(session) != Some(self.sid) {
            // The session moves here. Its later writes queue behind the move and reach the
            // leader after it, so they are never refused as coming from the old server.
            let rid = host.submit(TreeTxn {
                session_id: session,
                time_ms: host.now_ms(),
                auth: Vec::new(),
                op: TreeOp::MoveSession,
            });
            queue.push_back(Queued::Write {
                request_id: rid,
                reply: None,
                since: Instant::now(),
            });
            self.pending.insert(rid, Pending::Move { conn: c.conn });
        }
        let settled = queue.is_empty();
        let id = c.conn;
        let conn = Conn {
            queue,
            ..Conn::new(session, c, timeout, false)
        };
        if settled {
            conn.sink.share().enable(session, &conn.auth);
        }
        self.conns.insert(id, conn);
    }

    /// A reconnect names a session this server does not know: its creation may be committed
    /// but not applied here yet (the client learnt its id from a server ahead of this one).
    /// A no-op txn orders the answer after every commit before it; ZooKeeper asks its leader.
    fn revalidate(&mut self, c: ClientConnect, host: &mut impl Host) {
        let rid = host.submit(TreeTxn {
            session_id: SessionId::NONE,
            time_ms: host.now_ms(),
            auth: Vec::new(),
            op: TreeOp::Check {
                path: "/".into(),
                version: -1,
            },
        });
        self.pending.insert(rid, Pending::Revalidate(c));
    }

    /// A read-only client's handshake while this server is out of quorum: a new session is
    /// local to this server; a known one keeps its id but may only read here.
    fn connect_read_only(
        &mut self,
        c: ClientConnect,
        timeout: i32,
        tree: &DataTree,
        host: &mut impl Host,
    ) {
        let mut session = SessionId(c.request.session_id);
        let password = if session == SessionId::NONE {
            session = self.new_session_id();
            host.random_password()
        } else if let Some(password) = reconnectable(tree, &c) {
            password
        } else {
            refuse_expired(&c);
            return;
        };
        self.take_over(session, &c, timeout, true, password);
        self.conns
            .insert(c.conn, Conn::new(session, c, timeout, true));
    }

    /// The session's connection is now `c`: an older one on this server is closed, and `c` is
    /// told the session was accepted.
    fn take_over(
        &mut self,
        session: SessionId,
        c: &ClientConnect,
        timeout: i32,
        read_only: bool,
        password: SessionPassword,
    ) {
        if let Some(old) = self.by_session.insert(session, c.conn) {
            if let Some(o) = self.conns.remove(&old) {
                o.sink.close();
            }
        }
        let reply = accepted(session, timeout, read_only, password);
        c.sink.push(reply.to_bytes());
    }

    /// This server joined or left the serving quorum. Leaving it ends every connection, so
    /// clients move to a server that still serves; joining it ends the read-only ones, so
    /// their clients come back read-write.
    pub fn serving_changed(&mut self, serving: bool) {
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
        if let Some(c) = self.conns.get(&conn) {
            c.sink.close();
        }
        self.gone(conn);
    }

    /// The connection closed (the session lives on until it expires or is closed).
    pub fn gone(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.remove(&conn) {
            if self.by_session.get(&c.session) == Some(&conn) {
                self.by_session.remove(&c.session);
                self.watches.remove_session(c.session);
            }
        }
    }

    /// A request frame.
    pub fn packet(&mut self, p: ClientPacket, tree: &DataTree, host: &mut impl Host) {
        let since = Instant::now();
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
                        time_ms: host.now_ms(),
                        auth,
                        op: request.op.clone(),
                    };
                    let rid = host.submit(txn);
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
                since: Instant::now(),
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
                    self.metrics.update_latency.since(since);
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
                            c.sink.share().set_auth(&c.auth);
                        }
                    }
                    self.metrics.read_latency.since(since);
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

    /// Sessions with client activity here since the last call.
    pub fn take_touched(&mut self) -> Vec<SessionId> {
        for c in self.conns.values() {
            if c.sink.share().take_touched() {
                self.touched.insert(c.session);
            }
        }
        self.touched.drain().collect()
    }

    /// A committed txn was applied here: fire watches; drop the connection of a closed session.
    pub fn applied(&mut self, applied: &Applied) {
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
                    if let Some(c) = self.conns.remove(&conn) {
                        c.sink.close();
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
    pub fn applied_txn(
        &mut self,
        txn: &Txn,
        applied: &Applied,
        own: bool,
        tree: &DataTree,
        host: &mut impl Host,
    ) {
        self.applied(applied);
        if own && self.is_pending(txn.request_id) {
            let outcome = Ok((txn.zxid, applied.result.clone()));
            self.completed(txn.request_id, outcome, tree, host);
        }
    }

    /// A txn submitted by this service finished (a txn of this server's is answered when
    /// applied, by [`ClientService::applied_txn`]; this answers the ones that failed).
    pub fn completed(
        &mut self,
        request_id: u64,
        outcome: Result<(Zxid, OpResult), String>,
        tree: &DataTree,
        host: &mut impl Host,
    ) {
        let Some(p) = self.pending.remove(&request_id) else {
            return;
        };
        match p {
            Pending::Revalidate(c) => match outcome {
                Ok(_) => self.handshake(c, tree, host, false),
                Err(_) => c.sink.close(),
            },
            Pending::Connect {
                conn,
                timeout_ms,
                password,
            } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                if outcome.is_err() {
                    c.sink.close();
                    self.conns.remove(&conn);
                    return;
                }
                let session = c.session;
                c.sink.share().enable(session, &c.auth);
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
            Pending::Move { conn } => {
                let moved = matches!(outcome, Ok((_, OpResult::Session)));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.retain(
                        |q| !matches!(q, Queued::Write { request_id: r, .. } if *r == request_id),
                    );
                    if moved {
                        c.sink.share().enable(c.session, &c.auth);
                    }
                }
                if moved {
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
fn reconnectable(tree: &DataTree, c: &ClientConnect) -> Option<SessionPassword> {
    tree.session_password(SessionId(c.request.session_id))
        .filter(|p| password_matches(&c.request.passwd.0, p))
        .copied()
}

/// Tells a client its session is gone (timeOut 0, as ZooKeeper does) and closes it.
fn refuse_expired(c: &ClientConnect) {
    let reply = ConnectResponse {
        passwd: Buffer(vec![0; 16]),
        ..ConnectResponse::default()
    };
    c.sink.push(reply.to_bytes());
    c.sink.close();
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

/// Parses a write request; `None` when `code` is not a write.
fn write_op(code: OpCode, body: &[u8], max_buffer: usize) -> Option<Result<WriteRequest, ZkError>> {
    let plain = |op: TreeOp, path: String| WriteRequest {
        code,
        op,
        sub_ops: Vec::new(),
        path,
    };
    let parsed = match code {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
            CreateRequest::from_bytes(body).map(|r| {
                let mode = if code == OpCode::CreateContainer {
                    Ok(CreateMode::Container)
                } else {
                    CreateMode::from_flags(r.flags, -1)
                };
                create_op(r.path.clone(), r.data, &r.acl, mode, max_buffer)
                    .map(|op| plain(op, r.path))
            })
        }
        OpCode::CreateTtl => CreateTtlRequest::from_bytes(body).map(|r| {
            let mode = CreateMode::from_flags(r.flags, r.ttl);
            create_op(r.path.clone(), r.data, &r.acl, mode, max_buffer).map(|op| plain(op, r.path))
        }),
        OpCode::Delete => DeleteRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Delete {
                    path: r.path.clone(),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::SetData => SetDataRequest::from_bytes(body).map(|r| {
            check_size(r.data.as_slice(), max_buffer)?;
            Ok(plain(
                TreeOp::set_data(r.path.clone(), r.data.0, r.version),
                r.path,
            ))
        }),
        OpCode::SetAcl => SetAclRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::SetAcl {
                    path: r.path.clone(),
                    acl: to_acl(&r.acl),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::Check => CheckVersionRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Check {
                    path: r.path.clone(),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::Multi => Ok(
            parse_multi(body, max_buffer).map(|(op, sub_ops)| WriteRequest {
                code,
                op,
                sub_ops,
                path: String::new(),
            }),
        ),
        OpCode::CloseSession => Ok(Ok(plain(TreeOp::CloseSession, String::new()))),
        // sync: a committed no-op; once it is applied here, so is everything before it.
        OpCode::Sync => PathRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Check {
                    path: "/".into(),
                    version: -1,
                },
                r.path,
            ))
        }),
        _ => return None,
    };
    Some(parsed.unwrap_or(Err(ZkError::MarshallingError)))
}

fn create_op(
    path: String,
    data: NullableBuffer,
    acl: &[Acl],
    mode: Result<CreateMode, ZkError>,
    max_buffer: usize,
) -> Result<TreeOp, ZkError> {
    let mode = mode?;
    let check = if mode.is_sequential() {
        format!("{path}0")
    } else {
        path.clone()
    };
    crate::data_tree::validate_path(&check).map_err(|_| ZkError::BadArguments)?;
    check_size(data.as_slice(), max_buffer)?;
    Ok(TreeOp::create(path, data.0, to_acl(acl), mode))
}

/// Data over jute.maxbuffer is refused with BadArguments, and logged.
fn check_size(data: &[u8], max_buffer: usize) -> Result<(), ZkError> {
    if data.len() > max_buffer {
        tracing::warn!(
            "refusing a write of {} bytes of data: over jute.maxbuffer ({max_buffer} bytes)",
            data.len()
        );
        return Err(ZkError::BadArguments);
    }
    Ok(())
}

fn parse_multi(body: &[u8], max_buffer: usize) -> Result<(TreeOp, Vec<OpCode>), ZkError> {
    let mut r = JuteReader::new(body);
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(&mut r, "multi header").map_err(|_| ZkError::MarshallingError)?;
        if h.done {
            break;
        }
        let code = OpCode::try_from(h.op).map_err(|_| ZkError::Unimplemented)?;
        let op = match code {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                let c = CreateRequest::read(&mut r, "multi create")
                    .map_err(|_| ZkError::MarshallingError)?;
                let mode = if code == OpCode::CreateContainer {
                    Ok(CreateMode::Container)
                } else {
                    CreateMode::from_flags(c.flags, -1)
                };
                create_op(c.path, c.data, &c.acl, mode, max_buffer)?
            }
            OpCode::CreateTtl => {
                let c = CreateTtlRequest::read(&mut r, "multi createTTL")
                    .map_err(|_| ZkError::MarshallingError)?;
                let mode = CreateMode::from_flags(c.flags, c.ttl);
                create_op(c.path, c.data, &c.acl, mode, max_buffer)?
            }
            OpCode::Delete => {
                let d = DeleteRequest::read(&mut r, "multi delete")
                    .map_err(|_| ZkError::MarshallingError)?;
                TreeOp::Delete {
                    path: d.path,
                    version: d.version,
                }
            }
            OpCode::SetData => {
                let s = SetDataRequest::read(&mut r, "multi setData")
                    .map_err(|_| ZkError::MarshallingError)?;
                check_size(s.data.as_slice(), max_buffer)?;
                TreeOp::set_data(s.path, s.data.0, s.version)
            }
            OpCode::Check => {
                let c = CheckVersionRequest::read(&mut r, "multi check")
                    .map_err(|_| ZkError::MarshallingError)?;
                TreeOp::Check {
                    path: c.path,
                    version: c.version,
                }
            }
            _ => return Err(ZkError::Unimplemented),
        };
        ops.push((code, op));
    }
    let codes = ops.iter().map(|(c, _)| *c).collect();
    Ok((
        TreeOp::Multi(ops.into_iter().map(|(_, o)| o).collect()),
        codes,
    ))
}

/// Encodes the reply of a committed write.
fn write_reply(xid: i32, zxid: i64, request: &WriteRequest, result: &OpResult) -> Vec<u8> {
    let code = request.code;
    match result {
        OpResult::Error(e) => frame(xid, zxid, Err(*e), &[]),
        OpResult::Created { path, stat } => {
            if code == OpCode::Create {
                frame(
                    xid,
                    zxid,
                    Ok(()),
                    &CreateResponse { path: path.clone() }.to_bytes(),
                )
            } else {
                frame(
                    xid,
                    zxid,
                    Ok(()),
                    &Create2Response {
                        path: path.clone(),
                        stat: to_stat(stat),
                    }
                    .to_bytes(),
                )
            }
        }
        OpResult::DataSet { stat } | OpResult::AclSet { stat } => frame(
            xid,
            zxid,
            Ok(()),
            &StatResponse {
                stat: to_stat(stat),
            }
            .to_bytes(),
        ),
        OpResult::Checked if code == OpCode::Sync => frame(
            xid,
            zxid,
            Ok(()),
            &PathRequest {
                path: request.path.clone(),
            }
            .to_bytes(),
        ),
        OpResult::Multi(results) => {
            let mut w = JuteWriter::default();
            for (i, r) in results.iter().enumerate() {
                let sub = request.sub_ops.get(i).copied().unwrap_or(OpCode::Create2);
                let (t, e) = match r {
                    OpResult::Created { .. } if sub == OpCode::Create => (OpCode::Create, Ok(())),
                    OpResult::Created { .. } => (OpCode::Create2, Ok(())),
                    OpResult::Deleted => (OpCode::Delete, Ok(())),
                    OpResult::DataSet { .. } => (OpCode::SetData, Ok(())),
                    OpResult::Checked => (OpCode::Check, Ok(())),
                    OpResult::Error(e) => (OpCode::Error, Err(*e)),
                    OpResult::RolledBack => (OpCode::Error, Ok(())),
                    _ => (OpCode::Error, Err(ZkError::RuntimeInconsistency)),
                };
                let err = ZkError::to_wire(e);
                MultiHeader {
                    op: t.code(),
                    done: false,
                    err,
                }
                .write(&mut w);
                match r {
                    OpResult::Created { path, .. } if sub == OpCode::Create => {
                        CreateResponse { path: path.clone() }.write(&mut w)
                    }
                    OpResult::Created { path, stat } => Create2Response {
                        path: path.clone(),
                        stat: to_stat(stat),
                    }
                    .write(&mut w),
                    OpResult::DataSet { stat } => StatResponse {
                        stat: to_stat(stat),
                    }
                    .write(&mut w),
                    OpResult::Error(_) | OpResult::RolledBack => {
                        ErrorResponse { err }.write(&mut w)
                    }
                    _ => {}
                }
            }
            MultiHeader::END.write(&mut w);
            frame(xid, zxid, Ok(()), &w.bytes)
        }
        _ => frame(xid, zxid, Ok(()), &[]),
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
