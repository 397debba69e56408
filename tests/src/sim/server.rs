//! The client side of each simulated server, as the quorum peer and session tracker actors drive
//! it: the real data tree, client service (sessions, FIFO replies, watches) and session expiry
//! policy.

use super::{ClientMsg, Event, Sim};
use ensemble_actors::client_port::{
    ClientConnect, ClientPacket, ClientService, ClientSink, ClientSinks, ServiceInput,
    ServiceSettings, StepClock, ToClient,
};
use ensemble_actors::data_tree::{DataTree, TreeOp, TreeTxn};
use ensemble_actors::sessions::{ExpiryAction, ExpiryRole, SessionChange, SessionExpiry};
use ensemble_actors::zab::SubmitError;
use ensemble_messages::zk::{ConnectionId, SessionId};
use ensemble_messages::{PeerMessage, Sid, Txn, Zxid};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// The session timeout bounds of the simulated servers (2 and 20 ticks, ZooKeeper's defaults).
const SETTINGS: ServiceSettings = ServiceSettings {
    min_ms: 200,
    max_ms: 2_000,
    max_buffer: 0xfffff,
    read_only_mode: false,
    super_digest: None,
    enforce_quota: false,
    reconfig_enabled: false,
};

/// What one server holds besides its Zab core; a crash loses it all.
pub(super) struct Frontend {
    pub(super) tree: DataTree,
    service: ClientService,
    /// Where the service's frames go: the sinks of `conns`.
    sinks: ClientSinks,
    /// The instant of simulated time 0, for the service's latency metrics.
    base: Instant,
    pub(super) expiry: SessionExpiry,
    /// Txns the service submitted, proposed once the current outputs are carried out.
    submitted: Vec<(u64, TreeTxn)>,
    /// Open connections: the client and the queue of what the service sends it.
    conns: BTreeMap<u64, (usize, UnboundedReceiver<ToClient>)>,
    pub(super) serving: bool,
}

impl Frontend {
    /// A server's front after a (re)start: the tree rebuilt from the applied `history`.
    pub(super) fn new(id: Sid, history: &[Txn], now: u64, tick_ms: u64) -> Self {
        let tree = tree_of(history);
        let mut expiry = SessionExpiry::new(tick_ms);
        expiry.reset(tree.sessions());
        let base = Instant::now();
        let clock = clock_at(base, now);
        Frontend {
            tree,
            service: ClientService::new(id, SETTINGS, clock, Default::default()),
            sinks: ClientSinks::default(),
            base,
            expiry,
            submitted: Vec::new(),
            conns: BTreeMap::new(),
            serving: false,
        }
    }
}

/// A tree with `history` applied.
pub(super) fn tree_of(history: &[Txn]) -> DataTree {
    let mut tree = DataTree::default();
    for t in history {
        tree.apply(t);
    }
    tree
}

/// The clocks of a service step at simulated time `now` (ms).
fn clock_at(base: Instant, now: u64) -> StepClock {
    StepClock {
        at: base + Duration::from_millis(now),
        wall_ms: now as i64,
    }
}

impl Sim {
    /// Steps server `id`'s client service on `input` and sends what it queued for clients;
    /// what it asked to propose waits for [`Sim::propose_submitted`].
    fn step_service(&mut self, id: Sid, input: ServiceInput<'_>) {
        let now = self.now;
        let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
            return;
        };
        let outs = front
            .service
            .step(input, &front.tree, clock_at(front.base, now));
        let proposals = front.sinks.deliver(outs);
        front.submitted.extend(proposals);
        let zxid = front.tree.last_applied();
        self.flush(id, zxid);
    }

    /// A request id for a txn proposed at server `id`, from its service's ids so that the two
    /// never collide.
    pub(super) fn request_id(&mut self, id: Sid) -> u64 {
        match self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
            Some(front) => front.service.next_request_id(),
            None => {
                self.next_request += 1;
                self.next_request
            }
        }
    }

    /// Sends what server `id`'s service submitted to its Zab core, as the pipeline actor sends
    /// it to the quorum peer actor's mailbox.
    pub(super) fn propose_submitted(&mut self, id: Sid) {
        let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
            return;
        };
        for (request_id, txn) in std::mem::take(&mut front.submitted) {
            self.propose_later(id, request_id, txn.encode());
        }
    }

    /// A proposal reaches server `id`'s Zab core after a mailbox hop: in order, and after
    /// whatever else happens to the core meanwhile (messages, ticks, a lost leadership).
    pub(super) fn propose_later(&mut self, id: Sid, request_id: u64, body: Vec<u8>) {
        let Some(incarnation) = self.nodes.get(&id).map(|n| n.incarnation) else {
            return;
        };
        let delay = self.hop_rng.random_range(0..3);
        let clock = self.propose_clock.entry(id).or_insert(0);
        let at = (self.now + delay).max(*clock);
        *clock = at;
        let propose = Event::Propose {
            node: id,
            incarnation,
            request_id,
            body,
        };
        self.schedule(at, propose);
    }

    /// A client's message reached server `id`.
    pub(super) fn client_message(
        &mut self,
        id: Sid,
        client: usize,
        conn: u64,
        msg: ClientMsg,
    ) -> Result<(), String> {
        match msg {
            ClientMsg::Connect(request) => {
                let (sink, rx) = ClientSink::unlimited();
                let c = ClientConnect {
                    conn: ConnectionId(conn),
                    request,
                    read_only: false,
                    ip: format!("10.0.0.{client}"),
                    identities: Vec::new(),
                    sink,
                };
                let (hello, sink) = c.split();
                if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
                    front.conns.insert(conn, (client, rx));
                    front.sinks.open(hello.conn, sink);
                }
                let mut password = [0x5a; 16];
                password[..8].copy_from_slice(&conn.to_le_bytes());
                self.step_service(id, ServiceInput::Connect { hello, password });
                self.propose_submitted(id);
                Ok(())
            }
            ClientMsg::Packet { xid, op, body } => {
                let p = ClientPacket {
                    conn: ConnectionId(conn),
                    xid,
                    op: Ok(op),
                    body,
                };
                self.step_service(id, ServiceInput::Packet(p));
                self.propose_submitted(id);
                Ok(())
            }
            ClientMsg::Gone => {
                if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
                    front.sinks.gone(ConnectionId(conn));
                    front.conns.remove(&conn);
                }
                self.step_service(id, ServiceInput::Gone(ConnectionId(conn)));
                Ok(())
            }
        }
    }

    /// Sends what server `id`'s service queued for its clients; events are stamped `zxid`.
    fn flush(&mut self, id: Sid, zxid: Zxid) {
        let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
            return;
        };
        let mut out = Vec::new();
        let mut closed = Vec::new();
        for (conn, (client, rx)) in front.conns.iter_mut() {
            while let Ok(frame) = rx.try_recv() {
                if matches!(frame, ToClient::Close) {
                    closed.push(*conn);
                }
                out.push((*client, *conn, frame));
            }
        }
        for conn in closed {
            front.conns.remove(&conn);
        }
        for (client, conn, frame) in out {
            let delay = self.crng.random_range(1..8);
            let clock = self.client_clock.entry(conn).or_insert(0);
            let at = (self.now + delay).max(*clock);
            *clock = at;
            self.schedule(
                at,
                Event::ToClient {
                    client,
                    conn,
                    frame,
                    zxid,
                },
            );
        }
    }

    /// Server `id` applies committed txns to its tree, firing watches, as the actor does.
    pub(super) fn apply_to_tree(&mut self, id: Sid, txns: &[Txn]) -> Result<(), String> {
        for txn in txns {
            let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
                return Ok(());
            };
            let applied = front.tree.apply(txn);
            if let Some(change) = SessionChange::of(&applied) {
                front.expiry.changed(change);
            }
            let own = txn.origin == id;
            let input = ServiceInput::Applied {
                txn,
                applied: &applied,
                own,
            };
            self.step_service(id, input);
            self.note_session_txn(id, txn);
        }
        self.check_tree(id)
    }

    /// Server `id` installed a snapshot of `history`: its tree is replaced, as the actor's is.
    pub(super) fn install_tree(&mut self, id: Sid, history: &[Txn]) -> Result<(), String> {
        if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
            front.tree = tree_of(history);
            front.expiry.reset(front.tree.sessions());
        }
        self.check_tree(id)
    }

    /// A txn submitted by server `id`'s client service finished.
    pub(super) fn client_completed(
        &mut self,
        id: Sid,
        request_id: u64,
        result: Result<Zxid, SubmitError>,
    ) -> Result<(), String> {
        // A txn of this server's was answered when applied: only failures are left.
        if let Err(e) = result {
            let why = e.to_string();
            self.step_service(id, ServiceInput::Failed { request_id, why });
        }
        Ok(())
    }

    /// After a step of server `id`'s core: tells its clients when it starts or stops serving.
    pub(super) fn serving_changed(&mut self, id: Sid) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let serving = node.core.as_ref().is_some_and(|c| c.status().serving);
        let Some(front) = node.front.as_mut() else {
            return;
        };
        if front.serving != serving {
            front.serving = serving;
            if serving {
                self.serving_since.insert(id, now);
            }
            self.step_service(id, ServiceInput::Serving(serving));
        }
    }

    /// Every tick: server `id` runs the session expiry policy, as the session tracker actor does
    /// (its role is set here rather than as it changes).
    pub(super) fn check_sessions(&mut self, id: Sid) -> Result<(), String> {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let (Some(core), Some(front)) = (node.core.as_ref(), node.front.as_mut()) else {
            return Ok(());
        };
        if !front.expiry.due(now) {
            return Ok(());
        }
        let s = core.status();
        front
            .expiry
            .set_role(ExpiryRole::of(s.state, s.serving, s.leader));
        let conns = front.sinks.take_touched();
        front.expiry.touched(front.service.take_touched(conns));
        match front.expiry.check(now) {
            Some(ExpiryAction::Expire(ids)) => {
                for session in ids {
                    self.check_expiry_allowed(id, session)?;
                    self.trace
                        .push(format!("{now} leader {id} expires session {session}"));
                    let txn = TreeTxn {
                        session_id: session,
                        time_ms: now as i64,
                        auth: Vec::new(),
                        op: TreeOp::ExpireSession,
                    };
                    let request_id = self.request_id(id);
                    self.propose_later(id, request_id, txn.encode());
                }
            }
            Some(ExpiryAction::Report { leader, sessions }) => {
                self.send(id, leader, PeerMessage::SessionTouch(sessions))
            }
            None => {}
        }
        Ok(())
    }

    /// A session touch report reached server `id`.
    pub(super) fn touches_reported(&mut self, id: Sid, sessions: &[SessionId]) {
        let now = self.now;
        if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
            front.expiry.reported(sessions, now);
        }
    }
}
