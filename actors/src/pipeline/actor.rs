//! The request pipeline actor: drives the [`ClientService`] core over the data tree and
//! carries out what it returns.

use super::messages::{
    ApplyTxns, ConfigApplied, FailPipeline, GetCounts, GetPublishedTree, GetReport, InstallTree,
    PipelineCounts, Propose, ReadData, ReloadFromDisk, ResetConnectionStats, RoleSeen,
    ServerReport, SnapshotFor, Submit, TxnCompleted, WriteResult, ZabHandle,
};
use crate::client_port::{
    ClientConnect, ClientGone, ClientPacket, ClientService, ClientSinks, PublishedTree,
    ServiceInput, ServiceSettings, StepClock,
};
use crate::data_tree::{DataTree, OpResult, TreeOp, TreeTxn};
use crate::metrics::ServerMetrics;
use crate::sessions::{
    ClientActivity, ExpiryRole, ProposeExpiry, ResyncSessions, RoleChanged, SessionChange,
    SessionsActor, SessionsChanged, SessionsState, TouchesReported,
};
use crate::storage::{SnapshotCadence, TakeSnapshot};
use crate::zab::SubmitError;
use actix::prelude::*;
use bytes::Bytes;
use ensemble_config::dynamic::Membership;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{PeerMessage, Sid, Snapshot, Txn, ZabMessage, Zxid};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Settings of the request pipeline actor.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Own sid.
    pub sid: Sid,
    /// Session timeout bounds and request limits.
    pub service: ServiceSettings,
    /// snapCount: a background snapshot follows every `snap_count / 2` to `snap_count` applied
    /// txns, or more on a tree of over `2 * snap_count` znodes (see [`SnapshotCadence`]).
    pub snap_count: u64,
    /// How often the leader deletes emptied containers, in ms.
    pub container_check_ms: u64,
    /// Tick of the session tracker and of the container checks, in ms.
    pub tick_ms: u64,
    /// The server's running figures.
    pub metrics: Arc<ServerMetrics>,
}

/// The request pipeline actor. Supervised: see the restart policy on its [`Supervised`] impl.
pub struct PipelineActor {
    settings: PipelineSettings,
    zab: ZabHandle,
    /// The storage writer, which takes the background snapshots.
    storage: Recipient<TakeSnapshot>,
    /// The session tracker; `None` until [`PipelineActor::with_sessions`].
    sessions: Option<Addr<SessionsActor>>,
    /// The applied tree; stale while `tree_ready` is false.
    tree: DataTree,
    /// Whether `tree` is the one Zab handed over since the last (re)start.
    tree_ready: bool,
    /// The client service's pure core.
    clients: ClientService,
    /// Where the client connections' frames go.
    sinks: ClientSinks,
    /// Writes submitted through [`Submit`], by request id.
    waiters: HashMap<u64, oneshot::Sender<WriteResult>>,
    /// Results of applied writes of `waiters`, until Zab says they completed.
    results: HashMap<u64, OpResult>,
    /// When the next background snapshot is due.
    snapshots: SnapshotCadence,
    /// The zxid of the last background snapshot asked for of this tree: what the changes the
    /// tree noted since rest on.
    snapshot_base: Option<Zxid>,
    /// The applied tree, published for the connection threads' reads.
    published: Arc<PublishedTree>,
    /// Zab's role, as last told.
    role: RoleSeen,
    /// The expiry role last told to the session tracker.
    expiry_role: Option<ExpiryRole>,
    epoch: Instant,
    last_container_check: u64,
    restarts: u64,
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The clocks a client service step runs at.
fn step_clock() -> StepClock {
    StepClock {
        at: Instant::now(),
        wall_ms: wall_clock_ms(),
    }
}

impl PipelineActor {
    /// A pipeline proposing through `zab` and snapshotting through `storage`; it serves once
    /// Zab hands it a tree.
    pub fn new(
        settings: PipelineSettings,
        zab: ZabHandle,
        storage: Recipient<TakeSnapshot>,
    ) -> Self {
        PipelineActor {
            clients: new_service(&settings),
            sinks: ClientSinks::default(),
            snapshots: SnapshotCadence::new(settings.snap_count, rand::random()),
            snapshot_base: None,
            settings,
            zab,
            storage,
            sessions: None,
            tree: DataTree::default(),
            tree_ready: false,
            waiters: HashMap::new(),
            results: HashMap::new(),
            published: PublishedTree::new(),
            role: RoleSeen::IDLE,
            expiry_role: None,
            epoch: Instant::now(),
            last_container_check: 0,
            restarts: 0,
        }
    }

    /// Sets the session tracker, which this actor tells of the role, the sessions and the
    /// clients' activity, and which asks it to propose expiries.
    pub fn with_sessions(mut self, sessions: Addr<SessionsActor>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Tells the session tracker something (nothing when there is none yet).
    fn tell_sessions<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        SessionsActor: Handler<M>,
    {
        if let Some(sessions) = &self.sessions {
            sessions.do_send(msg);
        }
    }

    /// The session tracker's role, from Zab's.
    fn current_expiry_role(&self) -> ExpiryRole {
        ExpiryRole::of(self.role.state, self.role.serving, self.role.leader)
    }

    /// Tells the session tracker the role and every session (replacing what it knew).
    fn send_sessions_state(&mut self) {
        let role = self.current_expiry_role();
        self.expiry_role = Some(role);
        let sessions = self.tree.sessions().collect();
        self.tell_sessions(SessionsState { role, sessions });
    }

    /// Tells the session tracker when the role changed.
    fn publish_expiry_role(&mut self) {
        let role = self.current_expiry_role();
        if self.expiry_role != Some(role) {
            self.expiry_role = Some(role);
            self.tell_sessions(RoleChanged(role));
        }
    }

    /// Hands the clients' activity since the last call to the session tracker.
    fn forward_activity(&mut self) {
        let touched = self.clients.take_touched(self.sinks.take_touched());
        if !touched.is_empty() {
            self.tell_sessions(ClientActivity(touched));
        }
    }

    /// Zab's role is `role`: a change of service reaches the clients and the published tree,
    /// a change of expiry role the session tracker.
    fn see_role(&mut self, role: RoleSeen) {
        let serving_changed = role.serving != self.role.serving;
        self.role = role;
        if serving_changed {
            self.step_clients(ServiceInput::Serving(role.serving));
            self.publish();
        }
        self.publish_expiry_role();
    }

    /// Steps the client service and carries out its outputs; the txns it asks for go to Zab.
    fn step_clients(&mut self, input: ServiceInput<'_>) {
        let outs = self.clients.step(input, &self.tree, step_clock());
        for (request_id, txn) in self.sinks.deliver(outs) {
            self.propose(request_id, &txn);
        }
    }

    fn propose(&self, request_id: u64, txn: &TreeTxn) {
        self.zab.propose.do_send(Propose {
            request_id,
            body: txn.encode(),
        });
    }

    /// Whether clients are served: Zab serves, and the pipeline has its tree.
    fn serving(&self) -> bool {
        self.role.serving && self.tree_ready
    }

    /// Steps the client service on a client's input, then publishes the tree if a read
    /// waits for it.
    fn client_input(&mut self, input: ServiceInput<'_>) {
        self.step_clients(input);
        self.published.publish_if_wanted(&self.tree, self.serving());
    }

    /// The tree or the serving state changed: publishes it for reads on the connection
    /// threads.
    fn publish(&self) {
        self.published.applying();
        self.published.publish(&self.tree, self.serving());
    }

    /// Applies a committed batch: the tree, the client service, the waiters, the session
    /// tracker, Zab's view of the config, and the snapshot cadence.
    fn apply(&mut self, txns: &[Txn]) {
        let config_before = self.tree.config().1;
        // Before any event or reply of the batch: see client_port/direct.rs.
        self.published.applying();
        let mut changes = Vec::new();
        for txn in txns {
            let applied = self.tree.apply(txn);
            changes.extend(SessionChange::of(&applied));
            let own = txn.origin == self.settings.sid;
            self.step_clients(ServiceInput::Applied {
                txn,
                applied: &applied,
                own,
            });
            if own && self.waiters.contains_key(&txn.request_id) {
                self.results.insert(txn.request_id, applied.result);
            }
        }
        if !changes.is_empty() {
            self.tell_sessions(SessionsChanged(changes));
        }
        if self.tree.config().1 != config_before {
            self.config_changed();
        }
        let znodes = self.tree.node_count() as u64;
        if self
            .snapshots
            .applied(txns.len() as u64, znodes, rand::random())
        {
            // The clone is O(1) (the tree is a persistent map); the snapshot thread
            // serializes it, or only the znodes written since the last one, while writes go
            // on.
            let tree = self.tree.clone();
            let changes = self.tree.take_changes();
            let last = tree.last_applied();
            let base = self.snapshot_base.replace(last);
            self.storage.do_send(TakeSnapshot {
                last_zxid: tree.last_applied(),
                job: Box::new(move |chain| match (changes, base) {
                    (Some(changes), Some(base)) if chain == Some(base) && base < last => {
                        Box::new(tree.delta_image(base, changes))
                    }
                    _ => Box::new(tree.image()),
                }),
            });
        }
        self.published.publish_if_wanted(&self.tree, self.serving());
    }

    /// The tree's config node changed: Zab follows the membership it now holds.
    fn config_changed(&self) {
        let (text, _) = self.tree.config();
        match std::str::from_utf8(&text).map(Membership::parse) {
            Ok(Ok(m)) => self.zab.config.do_send(ConfigApplied(m)),
            _ => tracing::error!("/zookeeper/config is unreadable after a change"),
        }
    }

    /// A write finished: answers its waiter or the client service.
    fn completed(&mut self, request_id: u64, result: Result<Zxid, SubmitError>) {
        let tree_result = self
            .results
            .remove(&request_id)
            .unwrap_or(OpResult::Session);
        match (self.waiters.remove(&request_id), result) {
            (Some(w), result) => {
                let _ = w.send(result.map(|z| (z, tree_result)));
            }
            // A txn of the client service's that applied was answered then.
            (None, Ok(_)) => {}
            (None, Err(e)) => self.step_clients(ServiceInput::Failed {
                request_id,
                why: e.to_string(),
            }),
        }
    }

    /// The leader deletes containers that had children and have none left, and TTL znodes
    /// that expired, as ZooKeeper's ContainerManager does.
    fn reap_containers(&mut self) {
        let now = self.now();
        if now.saturating_sub(self.last_container_check) < self.settings.container_check_ms {
            return;
        }
        self.last_container_check = now;
        if self.current_expiry_role() != ExpiryRole::Leader || !self.tree_ready {
            return;
        }
        for path in self.tree.due_for_reaping(wall_clock_ms()) {
            tracing::info!(%path, "deleting an emptied container or expired TTL znode");
            self.submit_internal(TreeOp::Reap { path }, SessionId::NONE);
        }
    }

    /// Proposes a txn of the server's own (session expiry, container reaping).
    fn submit_internal(&mut self, op: TreeOp, session_id: SessionId) {
        let txn = TreeTxn {
            session_id,
            time_ms: wall_clock_ms(),
            auth: vec![("super".into(), "ensemble".into())],
            op,
        };
        let request_id = self.clients.next_request_id();
        self.propose(request_id, &txn);
    }

    /// Builds a SNAP sync's message on a blocking thread, its image streamed to the peer link
    /// as it is written: the tree's clone is O(1), so the pipeline goes on serving meanwhile.
    fn build_snapshot(&self, SnapshotFor { epoch, txns, reply }: SnapshotFor) {
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || {
            let mut image = reply;
            let last_zxid = tree.last_applied();
            if let Err(e) = tree.write_snap_image(&mut image) {
                tracing::debug!("SNAP image not sent: {e}");
                return;
            }
            drop(tree);
            let msg = ZabMessage::NewLeader {
                epoch,
                truncate_to: None,
                snapshot: Some(Snapshot {
                    last_zxid,
                    state: Bytes::new(),
                }),
                txns,
            };
            if let Err(e) = image.finish(PeerMessage::Zab(msg)) {
                tracing::debug!("SNAP not sent: {e}");
            }
        });
    }

    fn counts(&self) -> PipelineCounts {
        PipelineCounts {
            node_count: self.tree.node_count(),
            connections: self.clients.connections(),
            watches: self.clients.watch_count(),
            watched_paths: self.clients.watched_paths(),
            ephemerals: self.tree.ephemeral_count(),
            sessions: self.tree.sessions().count(),
            restarts: self.restarts,
        }
    }
}

fn new_service(settings: &PipelineSettings) -> ClientService {
    ClientService::new(
        settings.sid,
        settings.service,
        step_clock(),
        settings.metrics.clone(),
    )
}

impl Actor for PipelineActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_millis((self.settings.tick_ms / 4).clamp(5, 50));
        ctx.run_interval(every, |act, _| {
            act.forward_activity();
            act.reap_containers();
        });
    }
}

/// Restart policy: a restart gives up everything the pipeline held in memory but its
/// settings, its addresses and the published-tree handle the connection threads read from.
/// It fails its pending local writes (`LeaderChanged`), closes every client connection (their
/// clients reconnect; sessions are replicated and live on), and asks Zab to reload its core
/// and the tree from disk (the only place a tree at a known point can come from) and to hand
/// the tree over; until then it serves no client and drops what Zab sent before. Nothing
/// acknowledged is lost: acknowledged writes are durable, and a reload replays them.
impl Supervised for PipelineActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(sid = self.settings.sid, "request pipeline restarting");
        for (_, w) in self.waiters.drain() {
            let _ = w.send(Err(SubmitError::LeaderChanged));
        }
        self.results.clear();
        self.sinks.close_all();
        self.clients = new_service(&self.settings);
        self.tree_ready = false;
        self.role = RoleSeen::IDLE;
        self.expiry_role = None;
        self.publish();
        self.zab.reload.do_send(ReloadFromDisk);
    }
}

impl Handler<InstallTree> for PipelineActor {
    type Result = ();

    /// A new tree comes with a server that does not serve (starting, restarted, or syncing by
    /// SNAP): the connections end, and the local writes still pending fail (`LeaderChanged`:
    /// their outcome is unknown); Zab tells the role again after it.
    fn handle(&mut self, InstallTree(tree): InstallTree, _: &mut Context<Self>) {
        self.see_role(RoleSeen::IDLE);
        for (_, w) in self.waiters.drain() {
            let _ = w.send(Err(SubmitError::LeaderChanged));
        }
        self.results.clear();
        self.tree = tree;
        // The new tree noted no change: its first snapshot is whole.
        self.snapshot_base = None;
        self.tree_ready = true;
        self.send_sessions_state();
        self.publish();
    }
}

impl Handler<ApplyTxns> for PipelineActor {
    type Result = ();

    fn handle(&mut self, ApplyTxns(txns): ApplyTxns, _: &mut Context<Self>) {
        if self.tree_ready {
            self.apply(&txns);
        }
    }
}

impl Handler<TxnCompleted> for PipelineActor {
    type Result = ();

    fn handle(&mut self, msg: TxnCompleted, _: &mut Context<Self>) {
        if self.tree_ready {
            self.completed(msg.request_id, msg.result);
        }
    }
}

impl Handler<RoleSeen> for PipelineActor {
    type Result = ();

    fn handle(&mut self, role: RoleSeen, _: &mut Context<Self>) {
        self.see_role(role);
    }
}

impl Handler<SnapshotFor> for PipelineActor {
    type Result = ();

    /// Without its tree the pipeline drops the request: the link gives up the sync, and the
    /// follower asks again.
    fn handle(&mut self, msg: SnapshotFor, _: &mut Context<Self>) {
        if self.tree_ready {
            self.build_snapshot(msg);
        }
    }
}

impl Handler<Submit> for PipelineActor {
    type Result = ();

    /// Without its tree the pipeline refuses the write at once: proposed to a core that
    /// commits it before the tree arrives, it would be answered as unknown.
    fn handle(&mut self, msg: Submit, _: &mut Context<Self>) {
        if !self.tree_ready {
            let _ = msg.reply.send(Err(SubmitError::NotServing));
            return;
        }
        let request_id = self.clients.next_request_id();
        self.waiters.insert(request_id, msg.reply);
        self.propose(request_id, &msg.txn);
    }
}

impl Handler<ClientConnect> for PipelineActor {
    type Result = ();

    fn handle(&mut self, msg: ClientConnect, _: &mut Context<Self>) {
        let (hello, sink) = msg.split();
        if !self.tree_ready {
            // Reloading after a restart: the client tries another server.
            sink.close();
            return;
        }
        self.sinks.open(hello.conn, sink);
        let password = rand::random();
        self.client_input(ServiceInput::Connect { hello, password });
    }
}

impl Handler<ClientPacket> for PipelineActor {
    type Result = ();

    fn handle(&mut self, msg: ClientPacket, _: &mut Context<Self>) {
        self.client_input(ServiceInput::Packet(msg));
    }
}

impl Handler<ClientGone> for PipelineActor {
    type Result = ();

    fn handle(&mut self, msg: ClientGone, _: &mut Context<Self>) {
        self.sinks.gone(msg.conn);
        self.client_input(ServiceInput::Gone(msg.conn));
    }
}

impl Handler<GetCounts> for PipelineActor {
    type Result = MessageResult<GetCounts>;

    fn handle(&mut self, _: GetCounts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counts())
    }
}

impl Handler<GetReport> for PipelineActor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _: &mut Context<Self>) -> Self::Result {
        let sessions: Vec<(SessionId, i32)> = self.tree.sessions().collect();
        let ephemerals = sessions
            .iter()
            .map(|(id, _)| (*id, self.tree.ephemerals(*id)))
            .filter(|(_, paths)| !paths.is_empty())
            .collect();
        MessageResult(ServerReport {
            clients: self.clients.report(|conn| self.sinks.answered(conn)),
            sessions,
            ephemerals,
        })
    }
}

impl Handler<GetPublishedTree> for PipelineActor {
    type Result = MessageResult<GetPublishedTree>;

    fn handle(&mut self, _: GetPublishedTree, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.published.clone())
    }
}

impl Handler<ResetConnectionStats> for PipelineActor {
    type Result = ();

    fn handle(&mut self, _: ResetConnectionStats, _: &mut Context<Self>) {
        self.clients.reset_counters();
        self.sinks.reset_counters();
    }
}

impl Handler<ReadData> for PipelineActor {
    type Result = Option<Vec<u8>>;

    fn handle(&mut self, ReadData(path): ReadData, _: &mut Context<Self>) -> Self::Result {
        self.tree.get(&path).map(|n| n.data().to_vec())
    }
}

impl Handler<ProposeExpiry> for PipelineActor {
    type Result = ();

    /// Proposes closing the sessions the tracker found expired, if this server still leads
    /// and they are still open.
    fn handle(&mut self, ProposeExpiry(ids): ProposeExpiry, _: &mut Context<Self>) {
        if self.current_expiry_role() != ExpiryRole::Leader || !self.tree_ready {
            return;
        }
        for id in ids {
            if !self.tree.has_session(id) {
                continue;
            }
            tracing::info!(session = %id, "session expired");
            self.submit_internal(TreeOp::ExpireSession, id);
        }
    }
}

impl Handler<ResyncSessions> for PipelineActor {
    type Result = ();

    fn handle(&mut self, _: ResyncSessions, _: &mut Context<Self>) {
        if self.tree_ready {
            self.send_sessions_state();
        }
    }
}

impl Handler<FailPipeline> for PipelineActor {
    type Result = ();

    fn handle(&mut self, _: FailPipeline, ctx: &mut Context<Self>) {
        tracing::warn!(sid = self.settings.sid, "request pipeline failure injected");
        ctx.stop();
    }
}

impl Handler<TouchesReported> for PipelineActor {
    type Result = ();

    /// A learner's clients were active: the session tracker touches them.
    fn handle(&mut self, msg: TouchesReported, _: &mut Context<Self>) {
        self.tell_sessions(msg);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
