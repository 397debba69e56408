//! An async ZooKeeper client over one connection, for tools and benchmarks.
//!
//! Requests are pipelined and answered in order (ZooKeeper replies FIFO per session); the
//! client pings after a third of the session timeout without traffic. It does not yet move to
//! another server when its connection breaks: callers see [`ClientError::ConnectionLoss`].

use ensemble_messages::jute::*;
use ensemble_messages::zk::{err, op, xid};
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

impl ZkClient {
    /// Opens a session on the first server of `servers` (host:port) that accepts it.
    pub async fn connect(
        servers: &[String],
        session_timeout: Duration,
    ) -> Result<ZkClient, ClientError> {
        let mut last = ClientError::ConnectionLoss("no servers given".into());
        for addr in servers {
            match Self::connect_one(addr, session_timeout).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn connect_one(addr: &str, session_timeout: Duration) -> Result<ZkClient, ClientError> {
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
        let r = ConnectResponse::from_bytes(&reply)
            .map_err(|e| ClientError::Marshalling(e.to_string()))?;
        if r.session_id == 0 || r.time_out <= 0 {
            return Err(ClientError::Server(err::SESSION_EXPIRED));
        }
        let timeout = Duration::from_millis(r.time_out as u64);
        let (calls, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(stream, rx, timeout));
        Ok(ZkClient {
            calls,
            session_id: r.session_id,
            timeout,
        })
    }

    async fn call(&self, op: i32, body: Vec<u8>) -> Reply {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call { op, body, reply })
            .map_err(|_| ClientError::ConnectionLoss("connection closed".into()))?;
        rx.await
            .map_err(|_| ClientError::ConnectionLoss("connection closed".into()))?
    }

    /// Creates a znode (flags as ZooKeeper's CreateMode) with an open ACL; returns its path.
    pub async fn create(&self, path: &str, data: &[u8], flags: i32) -> Result<String, ClientError> {
        let req = CreateRequest {
            path: path.into(),
            data: Buffer(data.to_vec()),
            acl: vec![Acl {
                perms: ensemble_messages::zk::perm::ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags,
        };
        let r = self.call(op::CREATE, req.to_bytes()).await?;
        decode::<CreateResponse>(&r).map(|c| c.path)
    }

    /// A znode's data and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), ClientError> {
        let r = self
            .call(
                op::GET_DATA,
                PathWatchRequest {
                    path: path.into(),
                    watch: false,
                }
                .to_bytes(),
            )
            .await?;
        decode::<GetDataResponse>(&r).map(|g| (g.data.0, g.stat))
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
        match self
            .call(
                op::EXISTS,
                PathWatchRequest {
                    path: path.into(),
                    watch: false,
                }
                .to_bytes(),
            )
            .await
        {
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

    /// Closes the session.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.call(op::CLOSE_SESSION, Vec::new()).await.map(|_| ())
    }
}

fn decode<T: Jute>(bytes: &[u8]) -> Result<T, ClientError> {
    T::from_bytes(bytes).map_err(|e| ClientError::Marshalling(e.to_string()))
}

/// The connection task: writes calls with fresh xids, matches replies in order, pings.
async fn run(stream: TcpStream, mut calls: mpsc::UnboundedReceiver<Call>, timeout: Duration) {
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
    let mut pending: VecDeque<(i32, oneshot::Sender<Reply>)> = VecDeque::new();
    let mut next_xid = 0i32;
    let ping_every = timeout / 3;
    let fail_all = |pending: &mut VecDeque<(i32, oneshot::Sender<Reply>)>, why: String| {
        for (_, r) in pending.drain(..) {
            let _ = r.send(Err(ClientError::ConnectionLoss(why.clone())));
        }
    };
    loop {
        tokio::select! {
            call = calls.recv() => {
                let Some(call) = call else { break };
                next_xid = next_xid.wrapping_add(1).max(1);
                let mut frame = RequestHeader { xid: next_xid, op: call.op }.to_bytes();
                frame.extend_from_slice(&call.body);
                if let Err(e) = write_frame(&mut write, &frame).await {
                    let _ = call.reply.send(Err(ClientError::ConnectionLoss(e.to_string())));
                    fail_all(&mut pending, e.to_string());
                    break;
                }
                pending.push_back((next_xid, call.reply));
            }
            reply = replies.recv() => {
                let frame = match reply {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => { fail_all(&mut pending, e.to_string()); break; }
                    None => { fail_all(&mut pending, "connection closed".into()); break; }
                };
                let mut r = JuteReader::new(&frame);
                let Ok(h) = ReplyHeader::read(&mut r, "reply header") else {
                    fail_all(&mut pending, "undecodable reply header".into());
                    break;
                };
                if h.xid == xid::PING || h.xid == xid::WATCH_EVENT {
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
                        fail_all(&mut pending, why);
                        break;
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep(ping_every) => {
                let ping = RequestHeader { xid: xid::PING, op: op::PING }.to_bytes();
                if write_frame(&mut write, &ping).await.is_err() {
                    fail_all(&mut pending, "ping failed".into());
                    break;
                }
            }
        }
    }
}
