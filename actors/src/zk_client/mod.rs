//! An async ZooKeeper client, for tools, benchmarks and actors.
//!
//! Requests are pipelined and answered in order (ZooKeeper replies FIFO per session); watch
//! events go to an optional channel. The client side of the 1/3-2/3 scheme: it pings after a third
//! of the session timeout without traffic, and when it has heard nothing for two thirds (or the
//! connection breaks) it moves the session to the next server, re-registering its watches with
//! SetWatches. Calls in flight then fail with [`ClientError::ConnectionLoss`]; state changes
//! arrive on the event channel as events of type None with state Disconnected (0),
//! SyncConnected (3) or Expired (-112), as ZooKeeper's clients report them. With a TLS
//! configuration ([`crate::tls::client_config`]) every connection speaks TLS, as a ZooKeeper
//! client with `zookeeper.client.secure=true` does.

use ensemble_messages::frame::{self, FrameCodec};
use ensemble_messages::jute::*;
use ensemble_messages::zk::{
    perm, xid, AddWatchMode, CreateMode, EventType, KeeperState, OpCode, SessionId, WatcherType,
    ZkError,
};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with this ZooKeeper error.
    #[error("server error: {0}")]
    Server(ZkError),
    /// The connection broke or could not be made.
    #[error("connection lost: {0}")]
    ConnectionLoss(String),
    /// The reply did not decode.
    #[error("undecodable reply: {0}")]
    Marshalling(String),
}

type Reply = Result<Vec<u8>, ClientError>;

/// Which watch a successful call leaves.
#[derive(Clone, Copy, Debug)]
enum WatchReg {
    /// exists: a data watch on an existing node, an exist watch on a missing one.
    DataOrExist,
    /// getData.
    Data,
    /// getChildren.
    Child,
}

/// A watch event, or a change of the session's state (type None, no path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The session's state.
    pub state: KeeperState,
    /// The znode it happened to; empty for a state change.
    pub path: String,
}

impl From<WatcherEvent> for WatchedEvent {
    fn from(e: WatcherEvent) -> Self {
        WatchedEvent {
            event_type: EventType::from_wire(e.event_type),
            state: KeeperState::from_wire(e.state),
            path: e.path,
        }
    }
}

struct Call {
    op: OpCode,
    body: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    watch: Option<(WatchReg, String)>,
}

/// A connected session.
#[derive(Clone)]
pub struct ZkClient {
    calls: mpsc::UnboundedSender<Call>,
    /// The session id the server assigned.
    pub session_id: SessionId,
    /// The negotiated session timeout.
    pub timeout: Duration,
    /// The session's password: with the id, it lets another client take the session over
    /// ([`ZkClient::attach`]).
    pub password: Vec<u8>,
}

/// The open ACL, `world:anyone` with every permission.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perm::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// Requests go out whatever their size: the server checks its jute.maxbuffer.
const REQUEST_FRAMES: FrameCodec = FrameCodec::new(u32::MAX as usize);
/// Largest reply accepted: ZooKeeper's default jute.maxbuffer (1 MiB) and headers.
const REPLY_FRAMES: FrameCodec = FrameCodec::new(0xfffff + 1024);

async fn write_frame(
    stream: &mut (impl AsyncWrite + Unpin),
    payload: &[u8],
) -> std::io::Result<()> {
    Ok(frame::write_frame(stream, REQUEST_FRAMES, payload).await?)
}

async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    Ok(frame::read_frame(stream, REPLY_FRAMES).await?)
}

fn decode<T: Jute>(bytes: &[u8]) -> Result<T, ClientError> {
    T::from_bytes(bytes).map_err(|e| ClientError::Marshalling(e.to_string()))
}

/// What the connection task knows about its session.
struct Session {
    servers: Vec<String>,
    /// Index of the server in use.
    at: usize,
    id: SessionId,
    password: Vec<u8>,
    requested_timeout: Duration,
    timeout: Duration,
    last_zxid: i64,
    data_watches: BTreeSet<String>,
    exist_watches: BTreeSet<String>,
    child_watches: BTreeSet<String>,
    /// TLS on every connection, when set.
    tls: Option<Arc<ClientConfig>>,
}

/// A connection to a server: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The reading half of a [`Stream`].
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a [`Stream`].
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;
/// Both halves of one connection.
type Halves = (ReadHalf, WriteHalf);

impl Stream {
    /// Reading and writing halves (TCP's own split, without a lock, for plain connections).
    fn into_halves(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

impl Session {
    /// A TCP connection to `addr`, with the TLS handshake when the session speaks TLS; both
    /// within a third of the session timeout.
    async fn dial(&self, addr: &str) -> Result<Stream, ClientError> {
        let loss = |e: std::io::Error| ClientError::ConnectionLoss(format!("{addr}: {e}"));
        let limit = self.requested_timeout / 3 + Duration::from_millis(100);
        let dial = async {
            let tcp = TcpStream::connect(addr).await.map_err(loss)?;
            let _ = tcp.set_nodelay(true);
            let Some(config) = &self.tls else {
                return Ok(Stream::Plain(tcp));
            };
            let host = addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_matches(['[', ']']);
            let name = rustls_pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| ClientError::ConnectionLoss(format!("{addr}: {e}")))?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::ConnectionLoss(format!("{addr}: TLS: {e}")))?;
            Ok(Stream::Tls(Box::new(tls)))
        };
        tokio::time::timeout(limit, dial)
            .await
            .map_err(|_| ClientError::ConnectionLoss(format!("{addr}: connect timed out")))?
    }

    /// Opens (id 0) or re-attaches the session on `addr`.
    async fn handshake(&self, addr: &str) -> Result<(Halves, ConnectResponse), ClientError> {
        let loss = |e: std::io::Error| ClientError::ConnectionLoss(format!("{addr}: {e}"));
        let stream = self.dial(addr).await?;
        let (mut read, mut write) = stream.into_halves();
        let mut password = self.password.clone();
        password.resize(16, 0);
        let mut hello = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            time_out: self.requested_timeout.as_millis() as i32,
            session_id: self.id.0,
            passwd: Buffer(password),
        }
        .to_bytes();
        hello.push(0); // readOnly = false
        write_frame(&mut write, &hello).await.map_err(loss)?;
        let reply = tokio::time::timeout(self.requested_timeout, read_frame(&mut read))
            .await
            .map_err(|_| ClientError::ConnectionLoss(format!("{addr}: no handshake reply")))?
            .map_err(loss)?;
        Ok(((read, write), decode(&reply)?))
    }

    fn forget_fired(&mut self, e: &WatchedEvent) {
        match e.event_type {
            EventType::NodeCreated => {
                self.exist_watches.remove(&e.path);
                self.data_watches.remove(&e.path);
            }
            EventType::NodeDataChanged => {
                self.data_watches.remove(&e.path);
            }
            EventType::NodeDeleted => {
                self.data_watches.remove(&e.path);
                self.child_watches.remove(&e.path);
                self.exist_watches.remove(&e.path);
            }
            EventType::NodeChildrenChanged => {
                self.child_watches.remove(&e.path);
            }
            _ => {}
        }
    }

    fn remember(&mut self, watch: &Option<(WatchReg, String)>, reply: &Reply) {
        let Some((kind, path)) = watch else { return };
        match (kind, reply) {
            (WatchReg::DataOrExist, Err(ClientError::Server(ZkError::NoNode))) => {
                self.exist_watches.insert(path.clone());
            }
            (WatchReg::DataOrExist | WatchReg::Data, Ok(_)) => {
                self.data_watches.insert(path.clone());
            }
            (WatchReg::Child, Ok(_)) => {
                self.child_watches.insert(path.clone());
            }
            _ => {}
        }
    }
}

fn state_event(state: KeeperState) -> WatchedEvent {
    WatchedEvent {
        event_type: EventType::None,
        state,
        path: String::new(),
    }
}

impl ZkClient {
    /// Opens a session on the first server of `servers` (host:port) that accepts it; watch
    /// events are dropped.
    pub async fn connect(
        servers: &[String],
        session_timeout: Duration,
    ) -> Result<ZkClient, ClientError> {
        let (events, _) = mpsc::unbounded_channel();
        Self::connect_with_events(servers, session_timeout, events).await
    }

    /// Like [`ZkClient::connect`], delivering watch and state events to `events`.
    pub async fn connect_with_events(
        servers: &[String],
        session_timeout: Duration,
        events: mpsc::UnboundedSender<WatchedEvent>,
    ) -> Result<ZkClient, ClientError> {
        Self::connect_with_tls(servers, session_timeout, events, None).await
    }

    /// Like [`ZkClient::connect_with_events`], over TLS when `tls` is given.
    pub async fn connect_with_tls(
        servers: &[String],
        session_timeout: Duration,
        events: mpsc::UnboundedSender<WatchedEvent>,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<ZkClient, ClientError> {
        Self::open(
            servers,
            session_timeout,
            (SessionId::NONE, Vec::new()),
            events,
            tls,
        )
        .await
    }

    /// Takes over the live session `session_id` with its `password` (ZooKeeper's reconnect
    /// with a known session): the server moves the session to this client, which may then close
    /// it. Fails with the server's SessionExpired (-112) when the session is gone or the password
    /// is wrong.
    pub async fn attach(
        servers: &[String],
        session_timeout: Duration,
        session_id: SessionId,
        password: Vec<u8>,
    ) -> Result<ZkClient, ClientError> {
        let (events, _) = mpsc::unbounded_channel();
        Self::open(
            servers,
            session_timeout,
            (session_id, password),
            events,
            None,
        )
        .await
    }

    /// Opens (session id 0) or re-attaches a session (id, password) on the first server that
    /// accepts it.
    async fn open(
        servers: &[String],
        session_timeout: Duration,
        (id, password): (SessionId, Vec<u8>),
        events: mpsc::UnboundedSender<WatchedEvent>,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<ZkClient, ClientError> {
        let mut session = Session {
            servers: servers.to_vec(),
            at: 0,
            id,
            password,
            requested_timeout: session_timeout,
            timeout: session_timeout,
            last_zxid: 0,
            data_watches: BTreeSet::new(),
            exist_watches: BTreeSet::new(),
            child_watches: BTreeSet::new(),
            tls,
        };
        let mut last = ClientError::ConnectionLoss("no servers given".into());
        for (i, addr) in servers.iter().enumerate() {
            match session.handshake(addr).await {
                Ok((stream, r)) if r.session_id != 0 && r.time_out > 0 => {
                    session.at = i;
                    session.id = SessionId(r.session_id);
                    session.password = r.passwd.0;
                    session.timeout = Duration::from_millis(r.time_out as u64);
                    let (calls, rx) = mpsc::unbounded_channel();
                    let client = ZkClient {
                        calls,
                        session_id: session.id,
                        timeout: session.timeout,
                        password: session.password.clone(),
                    };
                    tokio::spawn(run(session, stream, rx, events));
                    return Ok(client);
                }
                Ok(_) => last = ClientError::Server(ZkError::SessionExpired),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn call(&self, op: OpCode, body: Vec<u8>) -> Reply {
        self.call_watching(op, body, None).await
    }

    async fn call_watching(
        &self,
        op: OpCode,
        body: Vec<u8>,
        watch: Option<(WatchReg, String)>,
    ) -> Reply {
        let closed = || ClientError::ConnectionLoss("connection closed".into());
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call {
                op,
                body,
                reply,
                watch,
            })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Creates a znode in `mode` with an open ACL; returns its path.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        self.create_with_acl(path, data, open_acl(), mode).await
    }

    /// Creates a znode with the given ACL, with the op ZooKeeper's clients use for `mode`:
    /// createContainer for a container, createTTL (with the mode's TTL) for the TTL modes,
    /// create2 for the others.
    pub async fn create_with_acl(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        self.create_nullable(path, Some(data), acl, mode).await
    }

    /// Like [`ZkClient::create_with_acl`], with data that may be null (`None`, sent as
    /// length -1 and read back null, as Java's `create(path, null, ...)`).
    pub async fn create_nullable(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        let (path, data, flags) = (
            path.to_string(),
            NullableBuffer(data.map(<[u8]>::to_vec)),
            mode.flags(),
        );
        let (code, body) = match mode {
            CreateMode::PersistentWithTtl { ttl_ms }
            | CreateMode::PersistentSequentialWithTtl { ttl_ms } => {
                let ttl = ttl_ms;
                let req = CreateTtlRequest {
                    path,
                    data,
                    acl,
                    flags,
                    ttl,
                };
                (OpCode::CreateTtl, req.to_bytes())
            }
            _ => {
                let req = CreateRequest {
                    path,
                    data,
                    acl,
                    flags,
                };
                let code = match mode {
                    CreateMode::Container => OpCode::CreateContainer,
                    _ => OpCode::Create2,
                };
                (code, req.to_bytes())
            }
        };
        let r = self.call(code, body).await?;
        decode::<Create2Response>(&r).map(|c| c.path)
    }

    /// A znode's data and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), ClientError> {
        self.get_data_watch(path, false).await
    }

    /// A znode's data and Stat, optionally leaving a one-shot data watch (null data reads
    /// as empty; [`ZkClient::get_nullable_data`] tells them apart).
    pub async fn get_data_watch(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        let (data, stat) = self.get_nullable_data(path, watch).await?;
        Ok((data.unwrap_or_default(), stat))
    }

    /// A znode's data (`None`: null) and Stat, optionally leaving a one-shot data watch.
    pub async fn get_nullable_data(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ClientError> {
        let req = PathWatchRequest {
            path: path.into(),
            watch,
        };
        let r = self
            .call_watching(
                OpCode::GetData,
                req.to_bytes(),
                watch.then(|| (WatchReg::Data, path.to_string())),
            )
            .await?;
        decode::<GetDataResponse>(&r).map(|g| (g.data.0, g.stat))
    }

    /// A znode's children and Stat, optionally leaving a one-shot child watch.
    pub async fn get_children(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ClientError> {
        let req = PathWatchRequest {
            path: path.into(),
            watch,
        };
        let r = self
            .call_watching(
                OpCode::GetChildren2,
                req.to_bytes(),
                watch.then(|| (WatchReg::Child, path.to_string())),
            )
            .await?;
        decode::<GetChildren2Response>(&r).map(|g| (g.children, g.stat))
    }

    /// Replaces a znode's data if `version` matches (-1: any).
    pub async fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version: i32,
    ) -> Result<Stat, ClientError> {
        self.set_nullable_data(path, Some(data), version).await
    }

    /// Like [`ZkClient::set_data`], with data that may be null (`None`, sent as length -1).
    pub async fn set_nullable_data(
        &self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let req = SetDataRequest {
            path: path.into(),
            data: NullableBuffer(data.map(<[u8]>::to_vec)),
            version,
        };
        let r = self.call(OpCode::SetData, req.to_bytes()).await?;
        decode::<StatResponse>(&r).map(|s| s.stat)
    }

    /// A znode's Stat, or `None` when it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        self.exists_watch(path, false).await
    }

    /// Like [`ZkClient::exists`], optionally leaving a watch (also on a missing znode).
    pub async fn exists_watch(&self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        let req = PathWatchRequest {
            path: path.into(),
            watch,
        };
        match self
            .call_watching(
                OpCode::Exists,
                req.to_bytes(),
                watch.then(|| (WatchReg::DataOrExist, path.to_string())),
            )
            .await
        {
            Ok(r) => decode::<StatResponse>(&r).map(|s| Some(s.stat)),
            Err(ClientError::Server(ZkError::NoNode)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a znode if `version` matches (-1: any).
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        let req = DeleteRequest {
            path: path.into(),
            version,
        };
        self.call(OpCode::Delete, req.to_bytes()).await.map(|_| ())
    }

    /// A znode's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        let r = self
            .call(OpCode::GetAcl, PathRequest { path: path.into() }.to_bytes())
            .await?;
        decode::<GetAclResponse>(&r).map(|g| (g.acl, g.stat))
    }

    /// Replaces a znode's ACL if the ACL version matches (-1: any).
    pub async fn set_acl(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let req = SetAclRequest {
            path: path.into(),
            acl,
            version,
        };
        let r = self.call(OpCode::SetAcl, req.to_bytes()).await?;
        decode::<StatResponse>(&r).map(|s| s.stat)
    }

    /// Adds an identity to the session (scheme `digest`: `user:password`).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        let packet = AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Buffer(auth.to_vec()),
        };
        self.call(OpCode::Auth, packet.to_bytes()).await.map(|_| ())
    }

    /// Returns once this server has applied everything the leader committed before.
    pub async fn sync(&self, path: &str) -> Result<(), ClientError> {
        let req = PathRequest { path: path.into() };
        self.call(OpCode::Sync, req.to_bytes()).await.map(|_| ())
    }

    /// The session's ephemeral znodes under `prefix`.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        let req = PathRequest {
            path: prefix.into(),
        };
        let r = self.call(OpCode::GetEphemerals, req.to_bytes()).await?;
        decode::<GetChildrenResponse>(&r).map(|g| g.children)
    }

    /// Number of znodes below `path`, at any depth (getAllChildrenNumber).
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32, ClientError> {
        let req = PathRequest { path: path.into() };
        let r = self
            .call(OpCode::GetAllChildrenNumber, req.to_bytes())
            .await?;
        decode::<IntResponse>(&r).map(|n| n.number)
    }

    /// Changes the membership (ZooKeeperAdmin.reconfig): comma-separated `joining`
    /// `server.N=...` specs and `leaving` ids, or the whole `new_members` list (empty strings
    /// go as null); `from_config` is the expected config version, -1 for any. Returns the new
    /// config text and the config node's Stat.
    pub async fn reconfig(
        &self,
        joining: &str,
        leaving: &str,
        new_members: &str,
        from_config: i64,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        // ZooKeeper reads an empty newMembers as a (bad) non-incremental config: absent
        // fields must go as null, as ZooKeeperAdmin sends them.
        let mut w = JuteWriter::default();
        for field in [joining, leaving, new_members] {
            w.nullable_buffer(Some(field.as_bytes()).filter(|f| !f.is_empty()));
        }
        w.long(from_config);
        let r = self.call(OpCode::Reconfig, w.bytes).await?;
        decode::<GetDataResponse>(&r).map(|g| (g.data.0.unwrap_or_default(), g.stat))
    }

    /// The identities the session is authenticated as (whoAmI): `(scheme, user)` pairs.
    pub async fn who_am_i(&self) -> Result<Vec<(String, String)>, ClientError> {
        let r = self.call(OpCode::WhoAmI, Vec::new()).await?;
        decode::<WhoAmIResponse>(&r).map(|w| {
            w.client_info
                .into_iter()
                .map(|c| (c.auth_scheme, c.user))
                .collect()
        })
    }

    /// Sets a persistent or persistent recursive watch.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), ClientError> {
        let req = AddWatchRequest {
            path: path.into(),
            mode: mode.code(),
        };
        self.call(OpCode::AddWatch, req.to_bytes())
            .await
            .map(|_| ())
    }

    /// Removes the session's watches of a type on `path`.
    pub async fn remove_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> Result<(), ClientError> {
        let req = WatchesRequest {
            path: path.into(),
            watcher_type: watcher_type.code(),
        };
        self.call(OpCode::RemoveWatches, req.to_bytes())
            .await
            .map(|_| ())
    }

    /// Closes the session.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.call(OpCode::CloseSession, Vec::new())
            .await
            .map(|_| ())
    }
}

type Pending = VecDeque<(i32, oneshot::Sender<Reply>, Option<(WatchReg, String)>)>;

fn fail_all(pending: &mut Pending, why: &str) {
    for (_, r, _) in pending.drain(..) {
        let _ = r.send(Err(ClientError::ConnectionLoss(why.to_string())));
    }
}

/// How a connection ended.
enum Ended {
    /// Every handle is gone.
    Closed,
    /// The server went silent or the connection broke.
    Lost(String),
}

/// The session task: serves calls over a connection and moves to another server when it is lost.
async fn run(
    mut session: Session,
    mut stream: Halves,
    mut calls: mpsc::UnboundedReceiver<Call>,
    events: mpsc::UnboundedSender<WatchedEvent>,
) {
    loop {
        match serve(&mut session, stream, &mut calls, &events).await {
            Ended::Closed => return,
            Ended::Lost(why) => {
                tracing::debug!(session = %session.id, "connection lost: {why}");
                let _ = events.send(state_event(KeeperState::Disconnected));
                match reconnect(&mut session).await {
                    Some(s) => {
                        stream = s;
                        let _ = events.send(state_event(KeeperState::SyncConnected));
                    }
                    None => {
                        let _ = events.send(state_event(KeeperState::Expired));
                        // Every later call fails: the session is gone.
                        while let Some(call) = calls.recv().await {
                            let _ = call
                                .reply
                                .send(Err(ClientError::Server(ZkError::SessionExpired)));
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// Tries the other servers, then all of them, until one takes the session back or the session
/// timeout has passed; re-registers the watches. `None` when the session expired.
async fn reconnect(session: &mut Session) -> Option<Halves> {
    let deadline = Instant::now() + session.timeout;
    let n = session.servers.len().max(1);
    while Instant::now() < deadline {
        for step in 1..=n {
            let i = (session.at + step) % n;
            let addr = session.servers[i].clone();
            match session.handshake(&addr).await {
                Ok((_, r)) if r.session_id == 0 || r.time_out <= 0 => return None,
                Ok(((read, mut write), _)) => {
                    session.at = i;
                    let watches = SetWatches {
                        relative_zxid: session.last_zxid,
                        data_watches: session.data_watches.iter().cloned().collect(),
                        exist_watches: session.exist_watches.iter().cloned().collect(),
                        child_watches: session.child_watches.iter().cloned().collect(),
                    };
                    let mut frame = RequestHeader {
                        xid: xid::SET_WATCHES,
                        op: OpCode::SetWatches.code(),
                    }
                    .to_bytes();
                    frame.extend_from_slice(&watches.to_bytes());
                    if write_frame(&mut write, &frame).await.is_ok() {
                        return Some((read, write));
                    }
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Serves calls over one connection: fresh xids, replies matched in order, watch events
/// forwarded, a ping after a third of the timeout without traffic, and the connection given up
/// after two thirds without a byte from the server.
async fn serve(
    session: &mut Session,
    stream: Halves,
    calls: &mut mpsc::UnboundedReceiver<Call>,
    events: &mpsc::UnboundedSender<WatchedEvent>,
) -> Ended {
    let (mut read, mut write) = stream;
    let (replies_tx, mut replies) = mpsc::unbounded_channel::<std::io::Result<Vec<u8>>>();
    let reader = tokio::spawn(async move {
        loop {
            let r = read_frame(&mut read).await;
            let stop = r.is_err();
            if replies_tx.send(r).is_err() || stop {
                break;
            }
        }
    });
    let mut pending = Pending::new();
    let mut next_xid = 0i32;
    let ping_every = session.timeout / 3;
    let silence_limit = session.timeout * 2 / 3;
    let mut last_heard = Instant::now();
    let mut closing = 0;
    let ended = loop {
        tokio::select! {
            call = calls.recv() => {
                let Some(call) = call else { break Ended::Closed };
                // Auth requests carry ZooKeeper's fixed auth xid, which the reply echoes.
                let call_xid = if call.op == OpCode::Auth {
                    xid::AUTH
                } else {
                    next_xid = next_xid.wrapping_add(1).max(1);
                    next_xid
                };
                let mut frame = RequestHeader { xid: call_xid, op: call.op.code() }.to_bytes();
                frame.extend_from_slice(&call.body);
                if let Err(e) = write_frame(&mut write, &frame).await {
                    let _ = call.reply.send(Err(ClientError::ConnectionLoss(e.to_string())));
                    break Ended::Lost(e.to_string());
                }
                if call.op == OpCode::CloseSession {
                    closing = call_xid;
                }
                pending.push_back((call_xid, call.reply, call.watch));
            }
            reply = replies.recv() => {
                let frame = match reply {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => break Ended::Lost(e.to_string()),
                    None => break Ended::Lost("connection closed".into()),
                };
                last_heard = Instant::now();
                let mut r = JuteReader::new(&frame);
                let Ok(h) = ReplyHeader::read(&mut r, "reply header") else {
                    break Ended::Lost("undecodable reply header".into());
                };
                if h.zxid > session.last_zxid {
                    session.last_zxid = h.zxid;
                }
                if h.xid == xid::WATCH_EVENT {
                    if let Ok(e) = WatcherEvent::read(&mut r, "watch event") {
                        let e = WatchedEvent::from(e);
                        session.forget_fired(&e);
                        let _ = events.send(e);
                    }
                    continue;
                }
                if h.xid == xid::PING || h.xid == xid::SET_WATCHES {
                    continue;
                }
                match pending.pop_front() {
                    Some((x, tx, watch)) if x == h.xid => {
                        let body = frame[16..].to_vec();
                        let reply = ZkError::from_wire(h.err).map(|()| body).map_err(ClientError::Server);
                        session.remember(&watch, &reply);
                        let _ = tx.send(reply);
                        if x == closing {
                            // The session is closed: the server drops the connection next.
                            break Ended::Closed;
                        }
                    }
                    Some((x, tx, _)) => {
                        let why = format!("xid out of order: expected {x}, got {}", h.xid);
                        let _ = tx.send(Err(ClientError::ConnectionLoss(why.clone())));
                        break Ended::Lost(why);
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep_until(last_heard + silence_limit) => {
                break Ended::Lost(format!("nothing heard for {silence_limit:?}"));
            }
            _ = tokio::time::sleep(ping_every) => {
                let ping = RequestHeader { xid: xid::PING, op: OpCode::Ping.code() }.to_bytes();
                if let Err(e) = write_frame(&mut write, &ping).await {
                    break Ended::Lost(e.to_string());
                }
            }
        }
    };
    reader.abort();
    if let Ended::Lost(why) = &ended {
        fail_all(&mut pending, why);
    }
    ended
}
