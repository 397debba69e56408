//! The client side of each simulated server, as the quorum peer and session tracker actors drive
//! it: the real data tree, client service (sessions, FIFO replies, watches) and session expiry
//! policy.

use super::{ClientMsg, Event, Sim};
use ensemble_actors::client_port::{
    ClientConnect, ClientPacket, ClientService, ClientSink, Host, ServiceSettings, ToClient,
};
use ensemble_actors::data_tree::{DataTree, OpResult, SessionPassword, TreeOp, TreeTxn};
use ensemble_actors::sessions::{ExpiryAction, ExpiryRole, SessionChange, SessionExpiry};
use ensemble_actors::zab::{Input, SubmitError};
use ensemble_messages::zk::{ConnectionId, SessionId};
use ensemble_messages::{PeerMessage, Sid, Txn, Zxid};
use rand::Rng;
use std::collections::BTreeMap;
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
        Frontend {
            tree,
            service: ClientService::new(id, SETTINGS, now as i64, Default::default()),
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

/// The host the service submits through: its txns are proposed after the call.
struct SimHost {
    next: u64,
    queued: Vec<(u64, TreeTxn)>,
    serving: bool,
    now_ms: i64,
}

impl Host for SimHost {
    fn submit(&mut self, txn: TreeTxn) -> u64 {
        self.next += 1;
        self.queued.push((self.next, txn));
        self.next
    }

    fn serving(&self) -> bool {
        self.serving
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn random_password(&mut self) -> SessionPassword {
        let mut p = [0x5a; 16];
        p[..8].copy_from_slice(&self.next.to_le_bytes());
        p
    }
}

impl Sim {
    /// Runs `f` on server `id`'s client service and sends what it queued for clients; what
    /// it submitted waits for [`Sim::propose_submitted`].
    fn with_service(
        &mut self,
        id: Sid,
        f: impl FnOnce(&mut ClientService, &DataTree, &mut SimHost),
    ) -> Result<(), String> {
        let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
            return Ok(());
        };
        let mut host = SimHost {
            next: self.next_request,
            queued: Vec::new(),
            serving: front.serving,
            now_ms: self.now as i64,
        };
        f(&mut front.service, &front.tree, &mut host);
        front.submitted.extend(host.queued);
        self.next_request = host.next;
        let zxid = front.tree.last_applied();
        self.flush(id, zxid);
        Ok(())
    }

    /// Proposes what server `id`'s service submitted, as the actor does after carrying out a
    /// step's outputs.
    pub(super) fn propose_submitted(&mut self, id: Sid) -> Result<(), String> {
        let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) else {
            return Ok(());
        };
        for (request_id, txn) in std::mem::take(&mut front.submitted) {
            let body = txn.encode();
            self.feed(id, Input::Submit { request_id, body })?;
        }
        Ok(())
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
                if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
                    front.conns.insert(conn, (client, rx));
                }
                let c = ClientConnect {
                    conn: ConnectionId(conn),
                    request,
                    read_only: false,
                    ip: format!("10.0.0.{client}"),
                    identities: Vec::new(),
                    sink,
                };
                self.with_service(id, |s, tree, host| s.connect(c, tree, host))?;
                self.propose_submitted(id)
            }
            ClientMsg::Packet { xid, op, body } => {
                let p = ClientPacket {
                    conn: ConnectionId(conn),
                    xid,
                    op: Ok(op),
                    body,
                };
                self.with_service(id, |s, tree, host| s.packet(p, tree, host))?;
                self.propose_submitted(id)
            }
            ClientMsg::Gone => {
                if let Some(front) = self.nodes.get_mut(&id).and_then(|n| n.front.as_mut()) {
                    front.service.gone(ConnectionId(conn));
                    front.conns.remove(&conn);
                }
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
            self.with_service(id, |s, tree, host| {
                s.applied_txn(txn, &applied, own, tree, host)
            })?;
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
        let outcome = result
            .map(|z| (z, OpResult::Session))
            .map_err(|e| e.to_string());
        self.with_service(id, |s, tree, host| {
            s.completed(request_id, outcome, tree, host)
        })
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
            front.service.serving_changed(serving);
            if serving {
                self.serving_since.insert(id, now);
            }
            let zxid = front.tree.last_applied();
            self.flush(id, zxid);
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
        front.expiry.touched(front.service.take_touched());
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
                    self.next_request += 1;
                    let request_id = self.next_request;
                    self.feed(
                        id,
                        Input::Submit {
                            request_id,
                            body: txn.encode(),
                        },
                    )?;
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
