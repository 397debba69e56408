//! Simulated ZooKeeper clients: sessions that connect, ping on the 1/3 scheme, move to another
//! server after 2/3 of their timeout of silence, create ephemerals, set watches, close, or
//! crash. Each client checks what it receives: replies FIFO and in zxid order, each watch
//! event matching one registration, events in zxid order.

use super::{ClientMsg, Event, Sim};
use ensemble_actors::client_port::ToClient;
use ensemble_messages::jute::*;
use ensemble_messages::zk::{xid, EventType, OpCode, SessionId, ZkError};
use ensemble_messages::{Sid, Zxid};
use rand::Rng;
use std::collections::{BTreeSet, VecDeque};

/// How often a client looks at its connection.
const CLIENT_TICK_MS: u64 = 20;

/// Where a client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Life {
    /// Working (connected or looking for a server).
    Live,
    /// Sent closeSession, waits for its reply.
    Closing,
    /// Its session is closed (by itself) or expired (told by a server).
    Done,
    /// Stopped without a word: its session must expire.
    Crashed,
}

/// What a watch registration waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WatchClass {
    Data,
    Child,
}

/// A request in flight, answered in order.
#[derive(Clone, Debug)]
struct InFlight {
    xid: i32,
    op: OpCode,
    path: String,
    sent: u64,
}

/// A client heard from a server: when, and the leader that server then served under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Heard {
    pub(super) at: u64,
    pub(super) leader: Option<Sid>,
}

/// The connection a client is on.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) server: Sid,
    incarnation: u64,
    pub(super) id: u64,
    handshaken: bool,
    in_flight: VecDeque<InFlight>,
    last_sent: u64,
    last_heard: u64,
}

/// One simulated client.
#[derive(Debug)]
pub(super) struct Client {
    pub(super) life: Life,
    /// Its session once a server accepted it (0 before).
    pub(super) session: SessionId,
    password: Vec<u8>,
    requested_ms: i32,
    pub(super) timeout_ms: u64,
    pub(super) conn: Option<Conn>,
    last_zxid: i64,
    /// When the request of its newest reply was sent.
    last_zxid_at: u64,
    last_event_zxid: Zxid,
    next_xid: i32,
    created: u32,
    watches: BTreeSet<(WatchClass, String)>,
    /// When it last heard from a server (replies and the handshake), newest last.
    pub(super) heard: VecDeque<Heard>,
    /// When it crashed or was told its session ended.
    pub(super) ended_at: u64,
}

impl Client {
    /// A client that will ask for `requested_ms` of session timeout.
    pub(super) fn new(requested_ms: i32) -> Self {
        Client {
            life: Life::Live,
            session: SessionId::NONE,
            password: vec![0; 16],
            requested_ms,
            timeout_ms: requested_ms.max(1) as u64,
            conn: None,
            last_zxid: 0,
            last_zxid_at: 0,
            last_event_zxid: Zxid::ZERO,
            next_xid: 0,
            created: 0,
            watches: BTreeSet::new(),
            heard: VecDeque::new(),
            ended_at: 0,
        }
    }

    /// Its ephemeral znodes are named after it.
    fn ephemeral(c: usize, k: u32) -> String {
        format!("/c{c}-{k}")
    }
}

impl Sim {
    /// Starts the clients' ticks.
    pub(super) fn start_clients(&mut self) {
        for c in 0..self.clients.len() {
            let at = self.crng.random_range(0..200);
            self.schedule(at, Event::ClientTick { client: c });
        }
    }

    /// A client looks at its connection: moves after 2/3 of its timeout of silence, pings
    /// after 1/3 without sending, and sometimes does something.
    pub(super) fn client_tick(&mut self, c: usize) -> Result<(), String> {
        if !matches!(self.clients[c].life, Life::Live | Life::Closing) {
            return Ok(());
        }
        self.schedule(self.now + CLIENT_TICK_MS, Event::ClientTick { client: c });
        let now = self.now;
        let t = self.clients[c].timeout_ms;
        let Some(conn) = &self.clients[c].conn else {
            return self.client_connect(c, None);
        };
        if now.saturating_sub(conn.last_heard) >= 2 * t / 3 {
            let from = conn.server;
            self.client_drop(c);
            return self.client_connect(c, Some(from));
        }
        if !conn.handshaken || self.clients[c].life != Life::Live {
            return Ok(());
        }
        let idle = now.saturating_sub(conn.last_sent) >= t / 3;
        if self.faults && self.crng.random_bool(0.003) {
            self.clients[c].life = Life::Crashed;
            self.clients[c].ended_at = now;
            self.trace.push(format!("{now} client {c} crashes"));
            return Ok(());
        }
        if self.faults && self.crng.random_bool(0.002) {
            self.clients[c].life = Life::Closing;
            return self.client_send(c, OpCode::CloseSession, String::new(), Vec::new());
        }
        if self.faults && self.crng.random_bool(0.15) {
            return self.client_op(c);
        }
        if idle {
            return self.client_send(c, OpCode::Ping, String::new(), Vec::new());
        }
        Ok(())
    }

    /// One random request of client `c`.
    fn client_op(&mut self, c: usize) -> Result<(), String> {
        let n = self.clients.len();
        let other = self.crng.random_range(0..n);
        let k = self.crng.random_range(0..=self.clients[other].created);
        let path = Client::ephemeral(other, k);
        match self.crng.random_range(0..6) {
            0 | 1 => {
                self.clients[c].created += 1;
                let path = Client::ephemeral(c, self.clients[c].created);
                self.ephemeral_paths.insert(path.clone());
                let body = CreateRequest {
                    path: path.clone(),
                    data: NullableBuffer::bytes(b"e".to_vec()),
                    acl: vec![Acl {
                        perms: 31,
                        id: Id {
                            scheme: "world".into(),
                            id: "anyone".into(),
                        },
                    }],
                    flags: 1,
                }
                .to_bytes();
                self.client_send(c, OpCode::Create, path, body)
            }
            2 => {
                let body = DeleteRequest {
                    path: path.clone(),
                    version: -1,
                }
                .to_bytes();
                self.client_send(c, OpCode::Delete, path, body)
            }
            3 => self.client_read(c, OpCode::Exists, path),
            4 => self.client_read(c, OpCode::GetData, "/".into()),
            _ => self.client_read(c, OpCode::GetChildren, "/".into()),
        }
    }

    fn client_read(&mut self, c: usize, code: OpCode, path: String) -> Result<(), String> {
        let body = PathWatchRequest {
            path: path.clone(),
            watch: true,
        }
        .to_bytes();
        self.client_send(c, code, path, body)
    }

    /// Sends a request on client `c`'s connection.
    fn client_send(
        &mut self,
        c: usize,
        code: OpCode,
        path: String,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let now = self.now;
        let client = &mut self.clients[c];
        let xid = if code == OpCode::Ping {
            xid::PING
        } else {
            client.next_xid += 1;
            client.next_xid
        };
        let Some(conn) = client.conn.as_mut() else {
            return Ok(());
        };
        conn.last_sent = now;
        conn.in_flight.push_back(InFlight {
            xid,
            op: code,
            path,
            sent: now,
        });
        let (server, incarnation, id) = (conn.server, conn.incarnation, conn.id);
        self.send_to_server(
            c,
            server,
            incarnation,
            id,
            ClientMsg::Packet {
                xid,
                op: code,
                body,
            },
        );
        Ok(())
    }

    /// Client `c` connects to a random server other than `not`, with its session if it has one.
    fn client_connect(&mut self, c: usize, not: Option<Sid>) -> Result<(), String> {
        let ids: Vec<Sid> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| Some(*id) != not)
            .collect();
        let server = ids[self.crng.random_range(0..ids.len())];
        self.next_conn += 1;
        let id = self.next_conn;
        let incarnation = self.nodes[&server].incarnation;
        let now = self.now;
        let client = &mut self.clients[c];
        client.conn = Some(Conn {
            server,
            incarnation,
            id,
            handshaken: false,
            in_flight: VecDeque::new(),
            last_sent: now,
            last_heard: now,
        });
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: client.last_zxid,
            time_out: client.requested_ms,
            session_id: client.session.0,
            passwd: Buffer(client.password.clone()),
        };
        self.trace.push(format!(
            "{now} client {c} connects to {server} (session {:x}, seen {:x})",
            request.session_id, request.last_zxid_seen
        ));
        self.send_to_server(c, server, incarnation, id, ClientMsg::Connect(request));
        Ok(())
    }

    /// Client `c` gives its connection up (its watches go with it).
    fn client_drop(&mut self, c: usize) {
        let client = &mut self.clients[c];
        client.watches.clear();
        if let Some(conn) = client.conn.take() {
            self.send_to_server(c, conn.server, conn.incarnation, conn.id, ClientMsg::Gone);
        }
    }

    /// Queues `msg` to `server` on connection `conn`, FIFO behind what the connection sent before.
    fn send_to_server(
        &mut self,
        client: usize,
        server: Sid,
        incarnation: u64,
        conn: u64,
        msg: ClientMsg,
    ) {
        let delay = self.crng.random_range(1..8);
        let clock = self.client_clock.entry(u64::MAX - conn).or_insert(0);
        let at = (self.now + delay).max(*clock);
        *clock = at;
        self.schedule(
            at,
            Event::ToServer {
                client,
                server,
                incarnation,
                conn,
                msg,
            },
        );
    }

    /// A frame reached client `c` on connection `conn`; `zxid` is the txn that fired an event.
    pub(super) fn client_receives(
        &mut self,
        c: usize,
        conn_id: u64,
        frame: ToClient,
        zxid: Zxid,
    ) -> Result<(), String> {
        let now = self.now;
        let heard = Heard {
            at: now,
            leader: self.clients[c]
                .conn
                .as_ref()
                .and_then(|k| self.serving_under(k.server)),
        };
        let client = &mut self.clients[c];
        if client.conn.as_ref().is_none_or(|k| k.id != conn_id)
            || matches!(client.life, Life::Done | Life::Crashed)
        {
            return Ok(());
        }
        let ToClient::Frame(bytes) = frame else {
            self.client_drop(c);
            return Ok(());
        };
        let Some(conn) = client.conn.as_mut() else {
            return Ok(());
        };
        conn.last_heard = now;
        if !conn.handshaken {
            let r = ConnectResponse::from_bytes(&bytes).map_err(|e| e.to_string())?;
            if r.time_out <= 0 {
                return self.session_refused(c);
            }
            conn.handshaken = true;
            client.session = SessionId(r.session_id);
            client.password = r.passwd.0;
            client.timeout_ms = r.time_out as u64;
            client.heard.push_back(heard);
            return Ok(());
        }
        let h = ReplyHeader::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let body = bytes.get(16..).unwrap_or_default();
        if h.xid == xid::WATCH_EVENT {
            let e = WatcherEvent::from_bytes(body).map_err(|e| e.to_string())?;
            return self.client_event(c, e, zxid);
        }
        client.heard.push_back(heard);
        while client.heard.len() > 64 {
            client.heard.pop_front();
        }
        let Some(expected) = conn.in_flight.pop_front() else {
            return Err(format!(
                "client {c} (session {}) got a reply to xid {} it never sent",
                client.session, h.xid
            ));
        };
        if expected.xid != h.xid {
            return Err(format!(
                "client {c} (session {}) got the reply to xid {} before the one to xid {}: replies are not FIFO",
                client.session, h.xid, expected.xid
            ));
        }
        // Zab's links are TCP: a lost message breaks the connection. The simulation drops
        // single messages, which may lose a forwarded write and keep a later one; order is
        // asked only while no peer message was lost since the last answered request was sent.
        let calm = self.last_disturbance < client.last_zxid_at;
        if h.zxid < client.last_zxid && calm {
            let why = format!(
                "client {c} (session {}) got a reply (op {:?}, err {}) from server {} at zxid {:x} after one at {:x}",
                client.session, expected.op, h.err, conn.server, h.zxid, client.last_zxid
            );
            return Err(format!("{why}\n{}", self.describe()));
        }
        client.last_zxid = client.last_zxid.max(h.zxid);
        client.last_zxid_at = expected.sent;
        let registered = match (expected.op, ZkError::from_wire(h.err)) {
            (OpCode::GetData, Ok(())) | (OpCode::Exists, Ok(()) | Err(ZkError::NoNode)) => {
                Some(WatchClass::Data)
            }
            (OpCode::GetChildren, Ok(())) => Some(WatchClass::Child),
            _ => None,
        };
        if let Some(class) = registered {
            client.watches.insert((class, expected.path));
        }
        if expected.op == OpCode::CloseSession {
            client.life = Life::Done;
            client.ended_at = now;
            client.conn = None;
        }
        Ok(())
    }

    /// The leader server `id` serves under, if it serves.
    fn serving_under(&self, id: Sid) -> Option<Sid> {
        let s = self.nodes.get(&id)?.core.as_ref()?.status();
        s.serving.then_some(s.leader).flatten()
    }

    /// A watch event: it must match a registration (which it consumes), in zxid order.
    fn client_event(&mut self, c: usize, e: WatcherEvent, zxid: Zxid) -> Result<(), String> {
        let client = &mut self.clients[c];
        if zxid < client.last_event_zxid {
            return Err(format!(
                "client {c} (session {}) got an event of {zxid} after one of {}",
                client.session, client.last_event_zxid
            ));
        }
        client.last_event_zxid = zxid;
        let class = match EventType::from_wire(e.event_type) {
            EventType::NodeChildrenChanged => WatchClass::Child,
            EventType::NodeDeleted
                if !client.watches.contains(&(WatchClass::Data, e.path.clone())) =>
            {
                WatchClass::Child
            }
            _ => WatchClass::Data,
        };
        if !client.watches.remove(&(class, e.path.clone())) {
            return Err(format!(
                "client {c} (session {}) got event {} on {} at {zxid} with no watch set (fired twice?)",
                client.session, e.event_type, e.path
            ));
        }
        Ok(())
    }

    /// A server told client `c` its session is gone: it must be closed in the committed
    /// history.
    fn session_refused(&mut self, c: usize) -> Result<(), String> {
        let now = self.now;
        let client = &mut self.clients[c];
        let session = client.session;
        client.life = Life::Done;
        client.ended_at = now;
        client.conn = None;
        self.trace
            .push(format!("{now} client {c} told session {session} expired"));
        if session != SessionId::NONE && !self.sessions_closed.contains(&session) {
            return Err(format!(
                "client {c} was told its session {session} expired, but no committed txn closed it\n{}",
                self.describe()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "clients_tests.rs"]
mod tests;
