//! An async ZooKeeper client over one connection, for tools, benchmarks and actors.
//!
//! Requests are pipelined and answered in order (ZooKeeper replies FIFO per session); watch
//! events go to an optional channel; the client pings after a third of the session timeout
//! without traffic. It does not yet move to another server when its connection breaks: callers
//! see [`ClientError::ConnectionLoss`].

use ensemble_messages::jute::*;
use ensemble_messages::zk::{err, op, perm, xid};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with this ZooKeeper error code.
    #[error("server error {0}")]
    Server(i32),
    /// The connection broke or could not be made.
    #[error("connection lost: {0}")]
    ConnectionLoss(String),
    /// The reply did not decode.
    #[error("undecodable reply: {0}")]
    Marshalling(String),
}

type Reply = Result<Vec<u8>, ClientError>;

struct Call {
    op: i32,
    body: Vec<u8>,
    reply: oneshot::Sender<Reply>,
}

/// A connected session.
#[derive(Clone)]
pub struct ZkClient {
    calls: mpsc::UnboundedSender<Call>,
    /// The session id the server assigned.
    pub session_id: i64,
    /// The negotiated session timeout.
    pub timeout: Duration,
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

async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    stream.write_all(&buf).await
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 0xfffff + 1024 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{len}-byte frame"),
        ));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

fn decode<T: Jute>(bytes: &[u8]) -> Result<T, ClientError> {
    T::from_bytes(bytes).map_err(|e| ClientError::Marshalling(e.to_string()))
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

    /// Like [`ZkClient::connect`], delivering watch events to `events`.
    pub async fn connect_with_events(
        servers: &[String],
        session_timeout: Duration,
        events: mpsc::UnboundedSender<WatcherEvent>,
    ) -> Result<ZkClient, ClientError> {
        let mut last = ClientError::ConnectionLoss("no servers given".into());
        for addr in servers {
            match Self::connect_one(addr, session_timeout, events.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn connect_one(
        addr: &str,
        session_timeout: Duration,
        events: mpsc::UnboundedSender<WatcherEvent>,
    ) -> Result<ZkClient, ClientError> {
        let loss = |e: std::io::Error| ClientError::ConnectionLoss(format!("{addr}: {e}"));
        let mut stream = TcpStream::connect(addr).await.map_err(loss)?;
        let _ = stream.set_nodelay(true);
        let mut hello = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: session_timeout.as_millis() as i32,
            session_id: 0,
            passwd: Buffer(vec![0; 16]),
        }
        .to_bytes();
        hello.push(0); // readOnly = false
        write_frame(&mut stream, &hello).await.map_err(loss)?;
        let reply = read_frame(&mut stream).await.map_err(loss)?;
        let r: ConnectResponse = decode(&reply)?;
        if r.session_id == 0 || r.time_out <= 0 {
            return Err(ClientError::Server(err::SESSION_EXPIRED));
        }
        let timeout = Duration::from_millis(r.time_out as u64);
        let (calls, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(stream, rx, timeout, events));
        Ok(ZkClient {
            calls,
            session_id: r.session_id,
            timeout,
        })
    }

    async fn call(&self, op: i32, body: Vec<u8>) -> Reply {
        let closed = || ClientError::ConnectionLoss("connection closed".into());
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call { op, body, reply })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Creates a znode (flags as ZooKeeper's CreateMode) with an open ACL; returns its path.
    pub async fn create(&self, path: &str, data: &[u8], flags: i32) -> Result<String, ClientError> {
        self.create_with_acl(path, data, open_acl(), flags).await
    }

    /// Creates a znode with the given ACL; containers (flags 4) use the createContainer op.
    pub async fn create_with_acl(
        &self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        flags: i32,
    ) -> Result<String, ClientError> {
        let req = CreateRequest {
            path: path.into(),
            data: Buffer(data.to_vec()),
            acl,
            flags,
        };
        let code = if flags == 4 {
            op::CREATE_CONTAINER
        } else {
            op::CREATE2
        };
        let r = self.call(code, req.to_bytes()).await?;
        decode::<Create2Response>(&r).map(|c| c.path)
    }

    /// A znode's data and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), ClientError> {
        self.get_data_watch(path, false).await
    }

    /// A znode's data and Stat, optionally leaving a one-shot data watch.
    pub async fn get_data_watch(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<u8>, Stat), ClientError> {
        let req = PathWatchRequest {
            path: path.into(),
            watch,
        };
        let r = self.call(op::GET_DATA, req.to_bytes()).await?;
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
        let r = self.call(op::GET_CHILDREN2, req.to_bytes()).await?;
        decode::<GetChildren2Response>(&r).map(|g| (g.children, g.stat))
    }

    /// Replaces a znode's data if `version` matches (-1: any).
    pub async fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version: i32,
    ) -> Result<Stat, ClientError> {
        let req = SetDataRequest {
            path: path.into(),
            data: Buffer(data.to_vec()),
            version,
        };
        let r = self.call(op::SET_DATA, req.to_bytes()).await?;
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
        match self.call(op::EXISTS, req.to_bytes()).await {
            Ok(r) => decode::<StatResponse>(&r).map(|s| Some(s.stat)),
            Err(ClientError::Server(err::NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a znode if `version` matches (-1: any).
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        let req = DeleteRequest {
            path: path.into(),
            version,
        };
        self.call(op::DELETE, req.to_bytes()).await.map(|_| ())
    }

    /// A znode's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        let r = self
            .call(op::GET_ACL, PathRequest { path: path.into() }.to_bytes())
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
        let r = self.call(op::SET_ACL, req.to_bytes()).await?;
        decode::<StatResponse>(&r).map(|s| s.stat)
    }

    /// Adds an identity to the session (scheme `digest`: `user:password`).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        let packet = AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Buffer(auth.to_vec()),
        };
        self.call(op::AUTH, packet.to_bytes()).await.map(|_| ())
    }

    /// Returns once this server has applied everything the leader committed before.
    pub async fn sync(&self, path: &str) -> Result<(), ClientError> {
        let req = PathRequest { path: path.into() };
        self.call(op::SYNC, req.to_bytes()).await.map(|_| ())
    }

    /// The session's ephemeral znodes under `prefix`.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        let req = PathRequest {
            path: prefix.into(),
        };
        let r = self.call(op::GET_EPHEMERALS, req.to_bytes()).await?;
        decode::<GetChildrenResponse>(&r).map(|g| g.children)
    }

    /// Sets a persistent (mode 0) or persistent recursive (mode 1) watch.
    pub async fn add_watch(&self, path: &str, mode: i32) -> Result<(), ClientError> {
        let req = AddWatchRequest {
            path: path.into(),
            mode,
        };
        self.call(op::ADD_WATCH, req.to_bytes()).await.map(|_| ())
    }

    /// Removes watches of a type (Children 1, Data 2, Any 3, Persistent 4, Recursive 5).
    pub async fn remove_watches(&self, path: &str, watcher_type: i32) -> Result<(), ClientError> {
        let req = WatchesRequest {
            path: path.into(),
            watcher_type,
        };
        self.call(op::REMOVE_WATCHES, req.to_bytes())
            .await
            .map(|_| ())
    }

    /// Closes the session.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.call(op::CLOSE_SESSION, Vec::new()).await.map(|_| ())
    }
}

type Pending = VecDeque<(i32, oneshot::Sender<Reply>)>;

fn fail_all(pending: &mut Pending, why: &str) {
    for (_, r) in pending.drain(..) {
        let _ = r.send(Err(ClientError::ConnectionLoss(why.to_string())));
    }
}

/// The connection task: writes calls with fresh xids, matches replies in order, forwards watch
/// events, pings after a third of the timeout without traffic.
async fn run(
    stream: TcpStream,
    mut calls: mpsc::UnboundedReceiver<Call>,
    timeout: Duration,
    events: mpsc::UnboundedSender<WatcherEvent>,
) {
    let (mut read, mut write) = stream.into_split();
    let (replies_tx, mut replies) = mpsc::unbounded_channel::<std::io::Result<Vec<u8>>>();
    tokio::spawn(async move {
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
    let ping_every = timeout / 3;
    loop {
        tokio::select! {
            call = calls.recv() => {
                let Some(call) = call else { break };
                next_xid = next_xid.wrapping_add(1).max(1);
                let mut frame = RequestHeader { xid: next_xid, op: call.op }.to_bytes();
                frame.extend_from_slice(&call.body);
                if let Err(e) = write_frame(&mut write, &frame).await {
                    let _ = call.reply.send(Err(ClientError::ConnectionLoss(e.to_string())));
                    fail_all(&mut pending, &e.to_string());
                    break;
                }
                pending.push_back((next_xid, call.reply));
            }
            reply = replies.recv() => {
                let frame = match reply {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => { fail_all(&mut pending, &e.to_string()); break; }
                    None => { fail_all(&mut pending, "connection closed"); break; }
                };
                let mut r = JuteReader::new(&frame);
                let Ok(h) = ReplyHeader::read(&mut r, "reply header") else {
                    fail_all(&mut pending, "undecodable reply header");
                    break;
                };
                if h.xid == xid::WATCH_EVENT {
                    if let Ok(e) = WatcherEvent::read(&mut r, "watch event") {
                        let _ = events.send(e);
                    }
                    continue;
                }
                if h.xid == xid::PING {
                    continue;
                }
                match pending.pop_front() {
                    Some((x, tx)) if x == h.xid => {
                        let body = frame[16..].to_vec();
                        let _ = tx.send(if h.err == err::OK { Ok(body) } else { Err(ClientError::Server(h.err)) });
                    }
                    Some((x, tx)) => {
                        let why = format!("xid out of order: expected {x}, got {}", h.xid);
                        let _ = tx.send(Err(ClientError::ConnectionLoss(why.clone())));
                        fail_all(&mut pending, &why);
                        break;
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep(ping_every) => {
                let ping = RequestHeader { xid: xid::PING, op: op::PING }.to_bytes();
                if write_frame(&mut write, &ping).await.is_err() {
                    fail_all(&mut pending, "ping failed");
                    break;
                }
            }
        }
    }
}
