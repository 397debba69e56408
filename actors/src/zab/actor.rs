//! The quorum peer actor: drives the [`QuorumPeer`] core and carries out its outputs. Session
//! expiry runs in the session tracker actor ([`SessionsActor`]), which this actor feeds.

use super::{
    Durable, Input, NodeEvent, NodeEvents, Output, PeerStatus, PeerTiming, QuorumPeer, SubmitError,
};
use crate::client_port::{
    ClientConnect, ClientGone, ClientPacket, ClientReport, ClientService, ClientSinks,
    PublishedTree, ServiceInput, ServiceSettings, StepClock,
};
use crate::data_tree::TreeOp;
use crate::data_tree::{DataTree, OpResult, TreeTxn};
use crate::election::{ConfigHeard, Elected, ElectionRequest, GetElectionView, Request};
use crate::metrics::ServerMetrics;
use crate::peer::{Announce, PeerEntry, PeerEvent, PeerRoster, SendPeer, SendPeerLater};
use crate::sessions::{
    ClientActivity, ExpiryRole, ProposeExpiry, ResyncSessions, RoleChanged, SessionChange,
    SessionsActor, SessionsChanged, SessionsState, TouchesReported,
};
use crate::storage::{
    recover, Flush, Persist, Recovered, SnapshotCadence, StorageActor, StorageError, StorageEvent,
    TakeSnapshot, WriterEvent, WriterSettings,
};
use actix::prelude::*;
use ensemble_config::apache_files::ZooCfgFiles;
use ensemble_config::dynamic::{self, Membership};
use ensemble_messages::zk::SessionId;
use ensemble_messages::{PeerMessage, ServerState, Sid, Snapshot, Txn, ZabMessage, Zxid};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Settings of the quorum peer actor.
#[derive(Clone, Debug)]
pub struct QuorumSettings {
    /// Own sid.
    pub sid: Sid,
    /// Voting members.
    pub voters: Vec<Sid>,
    /// Every member (voters and observers) and the config version, as configured (or left by
    /// the last reconfig).
    pub membership: Membership,
    /// Apache's dynamic config files to rewrite on each committed reconfig (zoo.cfg nodes).
    pub zoo_cfg_files: Option<ZooCfgFiles>,
    /// Core timing.
    pub timing: PeerTiming,
    /// Storage location and policy.
    pub storage: WriterSettings,
    /// snapCount: a background snapshot follows every `snap_count / 2` to `snap_count` applied
    /// txns (see [`SnapshotCadence`]).
    pub snap_count: u64,
    /// Session timeout bounds.
    pub service_settings: ServiceSettings,
    /// How often the leader deletes emptied containers, in ms.
    pub container_check_ms: u64,
    /// The server's running figures.
    pub metrics: Arc<ServerMetrics>,
    /// Where role changes and fatal failures are published.
    pub events: NodeEvents,
}

/// Result of a write submitted through this server.
pub type WriteResult = Result<(Zxid, OpResult), SubmitError>;

/// Submits a tree write; resolves once it committed and was applied here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    /// The write.
    pub txn: TreeTxn,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<WriteResult>,
}

/// Asks for the server's status.
#[derive(Message)]
#[rtype(result = "NodeStatus")]
pub struct GetStatus;

/// Reads a znode's data from this server's tree.
#[derive(Message)]
#[rtype(result = "Option<Vec<u8>>")]
pub struct ReadData(pub String);

/// Asks for the tree versions this server publishes for reads on the connection threads.
#[derive(Message)]
#[rtype(result = "Arc<PublishedTree>")]
pub struct GetPublishedTree;

/// Asks for the details the `cons`, `wchc`, `wchp` and `dump` words show.
#[derive(Message)]
#[rtype(result = "ServerReport")]
pub struct GetReport;

/// Zeroes the per-connection counters (the `crst` word).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResetConnectionStats;

/// Connections, watches, sessions and ephemerals of one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// This server's connections and watches.
    pub clients: ClientReport,
    /// Every open session and its timeout in ms.
    pub sessions: Vec<(SessionId, i32)>,
    /// Sessions that own ephemeral znodes, with their paths.
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
}

/// Stops the actor so that its supervisor restarts it from disk (fault injection).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailQuorumPeer;

/// A server's status, for four-letter words and the embedding API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The core's summary.
    pub peer: PeerStatus,
    /// Znodes in the tree.
    pub node_count: usize,
    /// Whether this is a single-server ensemble.
    pub standalone: bool,
    /// Number of supervised restarts of this actor.
    pub restarts: u64,
    /// Open client connections.
    pub connections: usize,
    /// Watches set by this server's sessions.
    pub watches: usize,
    /// Paths those watches are on.
    pub watched_paths: usize,
    /// Ephemeral znodes.
    pub ephemerals: usize,
    /// Open sessions of the whole ensemble.
    pub sessions: usize,
}

/// The quorum peer actor. Supervised: a restart reloads the core and the tree from disk.
pub struct QuorumPeerActor {
    settings: QuorumSettings,
    /// The links to the other servers; `None` until [`QuorumPeerActor::with_roster`].
    roster: Option<PeerRoster>,
    /// The election actor; `None` until [`QuorumPeerActor::with_election`].
    election: Option<Recipient<Request>>,
    storage: Addr<StorageActor>,
    core: QuorumPeer,
    tree: DataTree,
    epoch: Instant,
    waiters: HashMap<u64, oneshot::Sender<WriteResult>>,
    results: HashMap<u64, OpResult>,
    /// When the next background snapshot is due.
    snapshots: SnapshotCadence,
    restarts: u64,
    /// The request pipeline's pure core.
    clients: ClientService,
    /// Where the client connections' frames go.
    sinks: ClientSinks,
    /// Txns the request pipeline asked to propose, proposed once the current outputs are
    /// carried out.
    proposals: Vec<(u64, TreeTxn)>,
    /// The session tracker; `None` until [`QuorumPeerActor::with_sessions`].
    sessions: Option<Addr<SessionsActor>>,
    /// The expiry role last told to the session tracker.
    expiry_role: Option<ExpiryRole>,
    last_container_check: u64,
    /// Whether the core was serving when last looked at, to tell the clients of a change.
    was_serving: bool,
    /// The role last published as a [`NodeEvent::Role`].
    published_role: Option<NodeEvent>,
    /// When this server last stopped serving (or started), for election_time.
    looking_since: Instant,
    /// Whether a restart has yet to reload the core and the tree from disk.
    reload: bool,
    /// The applied tree, published for the connection threads' reads.
    published: Arc<PublishedTree>,
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The clocks a request pipeline step runs at.
fn step_clock() -> StepClock {
    StepClock {
        at: Instant::now(),
        wall_ms: wall_clock_ms(),
    }
}

impl QuorumPeerActor {
    /// Builds the actor from what `recovered` found on disk.
    pub fn new(
        settings: QuorumSettings,
        storage: Addr<StorageActor>,
        recovered: Recovered,
    ) -> Result<Self, StorageError> {
        let (core, tree) = build(&settings, recovered)?;
        // A server starts out looking for a leader.
        settings
            .metrics
            .looking_count
            .fetch_add(1, Ordering::Relaxed);
        let clients = ClientService::new(
            settings.sid,
            settings.service_settings,
            step_clock(),
            settings.metrics.clone(),
        );
        Ok(QuorumPeerActor {
            clients,
            sinks: ClientSinks::default(),
            proposals: Vec::new(),
            sessions: None,
            expiry_role: None,
            last_container_check: 0,
            was_serving: false,
            published_role: None,
            looking_since: Instant::now(),
            reload: false,
            published: PublishedTree::new(),
            snapshots: SnapshotCadence::new(settings.snap_count, rand::random()),
            settings,
            roster: None,
            election: None,
            storage,
            core,
            tree,
            epoch: Instant::now(),
            waiters: HashMap::new(),
            results: HashMap::new(),
            restarts: 0,
        })
    }

    /// Sets the links to the other servers (they need this actor's address first); from
    /// then on they follow the membership the core counts with.
    pub fn with_roster(mut self, roster: PeerRoster) -> Self {
        self.roster = Some(roster);
        self
    }

    /// Sets the election actor the core's election requests go to.
    pub fn with_election(mut self, election: Recipient<Request>) -> Self {
        self.election = Some(election);
        self
    }

    /// Sets the session tracker, which this actor tells of the role, the sessions and the
    /// clients' activity, and which asks it to propose expiries.
    pub fn with_sessions(mut self, sessions: Addr<SessionsActor>) -> Self {
        self.sessions = Some(sessions);
        self
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

    /// The session tracker's role, from the core's status.
    fn expiry_role(&self) -> ExpiryRole {
        let status = self.core.status();
        ExpiryRole::of(status.state, status.serving, status.leader)
    }

    /// Tells the session tracker the role and every session (replacing what it knew).
    fn send_sessions_state(&mut self) {
        let role = self.expiry_role();
        self.expiry_role = Some(role);
        let sessions = self.tree.sessions().collect();
        self.tell_sessions(SessionsState { role, sessions });
    }

    /// Tells the session tracker when the role changed.
    fn publish_expiry_role(&mut self) {
        let role = self.expiry_role();
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

    /// The membership the tree's config node holds, and the node's config version, if it
    /// reads.
    fn tree_membership(&self) -> Option<(Membership, u64)> {
        let (text, version) = self.tree.config();
        let m = Membership::parse(std::str::from_utf8(&text).ok()?).ok()?;
        Some((m, version))
    }

    /// Makes the links follow the membership in `settings` (after a reconfig, a snapshot or
    /// a restart).
    fn follow_membership(&self) {
        if let Some(roster) = &self.roster {
            roster.follow(&peer_entries(&self.settings.membership));
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn step(&mut self, input: Input, ctx: &mut Context<Self>) {
        let now = self.now();
        let outs = self.core.step(input, now);
        self.carry_out(outs, ctx);
    }

    fn carry_out(&mut self, outs: Vec<Output>, ctx: &mut Context<Self>) {
        // What the client service submits while answering (a reconnect's next step) is
        // proposed once these outputs are carried out.
        for out in outs {
            match out {
                Output::Send { to, msg } => self.send(to, msg),
                Output::Election(request) => self.tell_election(request),
                Output::Persist { op, token } => self.storage.do_send(Persist { op, token }),
                Output::Apply(txns) => {
                    let config_before = self.tree.config().1;
                    // Before any event or reply of the batch: see client_port/direct.rs.
                    self.published.applying();
                    let mut changes = Vec::new();
                    for txn in &txns {
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
                        self.membership_changed();
                    }
                    if self.snapshots.applied(txns.len() as u64, rand::random()) {
                        // The clone is O(1) (the tree is a persistent map); the snapshot
                        // thread serializes it while writes go on.
                        let tree = self.tree.clone();
                        self.storage.do_send(TakeSnapshot {
                            last_zxid: tree.last_applied(),
                            job: Box::new(move || Box::new(tree.image())),
                        });
                    }
                }
                Output::InstallSnapshot(s) => match DataTree::deserialize(&s.state) {
                    Ok(tree) => {
                        self.tree = tree;
                        self.send_sessions_state();
                        self.membership_changed();
                        self.publish();
                    }
                    Err(e) => {
                        tracing::error!("leader sent an unreadable snapshot: {e}; restarting");
                        ctx.stop();
                        return;
                    }
                },
                Output::SendSnapshotSync { to, epoch, txns } => {
                    self.send_snapshot_sync(to, epoch, txns)
                }
                Output::Completed { request_id, result } => {
                    let tree_result = self
                        .results
                        .remove(&request_id)
                        .unwrap_or(OpResult::Session);
                    let outcome = result.map(|z| (z, tree_result));
                    match (self.waiters.remove(&request_id), outcome) {
                        (Some(w), outcome) => {
                            let _ = w.send(outcome);
                        }
                        // A txn of the pipeline's that applied was answered then.
                        (None, Ok(_)) => {}
                        (None, Err(e)) => self.step_clients(ServiceInput::Failed {
                            request_id,
                            why: e.to_string(),
                        }),
                    }
                }
            }
        }
        self.propose_queued(ctx);
        let status = self.core.status();
        if status.serving != self.was_serving {
            self.was_serving = status.serving;
            self.step_clients(ServiceInput::Serving(status.serving));
            self.count_serving_change(status.serving, status.state);
            self.publish();
        }
        self.publish_role(&status);
        self.publish_expiry_role();
        self.published.publish_if_wanted(&self.tree, status.serving);
    }

    /// The tree or the serving state changed: publishes it for reads on the connection
    /// threads.
    fn publish(&self) {
        self.published.applying();
        self.published
            .publish(&self.tree, self.core.status().serving);
    }

    fn publish_role(&mut self, status: &PeerStatus) {
        let role = NodeEvent::Role {
            state: status.state,
            serving: status.serving,
            leader: status.leader,
        };
        if self.published_role.as_ref() != Some(&role) {
            self.settings.events.publish(role.clone());
            self.published_role = Some(role);
        }
    }

    /// Stops the whole node (every actor on its arbiter), never the host's `System`, and says
    /// why to the host.
    fn fail_node(&self, reason: String) {
        tracing::error!("{reason}; stopping the server");
        self.settings.events.publish(NodeEvent::Failed(reason));
        Arbiter::current().stop();
    }

    /// election_time, looking_count and leader_uptime follow the server in and out of service.
    fn count_serving_change(&mut self, serving: bool, state: ServerState) {
        let metrics = &self.settings.metrics;
        if serving {
            metrics.election_time.since(self.looking_since);
        } else {
            self.looking_since = Instant::now();
            metrics.looking_count.fetch_add(1, Ordering::Relaxed);
        }
        metrics.set_leading(serving && state == ServerState::Leading);
    }

    /// The tree's config node changed (a reconfig applied, or a snapshot installed): the
    /// core counts with its voters, and the membership file in dataDir keeps it for restarts.
    fn membership_changed(&mut self) {
        let Some((m, version)) = self.tree_membership() else {
            tracing::error!("/zookeeper/config is unreadable after a change");
            return;
        };
        if version != self.core.config_version() {
            self.core.set_membership(version, m.voters(), m.observers());
        }
        self.settings.voters = m.voters();
        let path = self
            .settings
            .storage
            .data_dir
            .join(dynamic::MEMBERSHIP_FILE);
        if let Err(e) = dynamic::write_atomically(&path, &m.render()) {
            tracing::error!("cannot write {}: {e}", path.display());
        }
        self.write_apache_files(&m);
        self.settings.membership = m;
        self.follow_membership();
    }

    /// A zoo.cfg node writes a reconfigured membership as Apache would: its
    /// `zoo.cfg.dynamic.<version>` file and zoo.cfg pointing at it.
    fn write_apache_files(&self, m: &Membership) {
        let Some(files) = &self.settings.zoo_cfg_files else {
            return;
        };
        if m.version == 0 || m.version == self.settings.membership.version {
            return;
        }
        match files.write_committed(m, self.settings.sid) {
            Ok(()) => tracing::info!(
                "wrote {} and pointed {} at it",
                files.dynamic_path(m.version).display(),
                files.zoo_cfg.display()
            ),
            Err(e) => tracing::error!(
                "cannot write the dynamic config files of {}: {e}",
                files.zoo_cfg.display()
            ),
        }
    }

    /// SNAP sync: the tree's O(1) clone is serialized on a blocking thread, so the leader goes
    /// on serving meanwhile; the link holds later messages to `to` behind the image.
    fn send_snapshot_sync(&self, to: Sid, epoch: u32, txns: Vec<Txn>) {
        let Some(link) = self.roster.as_ref().and_then(|r| r.link(to)) else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        link.do_send(SendPeerLater(rx));
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = Snapshot {
                last_zxid: tree.last_applied(),
                state: tree.serialize(),
            };
            let msg = ZabMessage::NewLeader {
                epoch,
                truncate_to: None,
                snapshot: Some(snapshot),
                txns,
            };
            let _ = tx.send(PeerMessage::Zab(msg));
        });
    }

    fn tell_election(&self, request: ElectionRequest) {
        if let Some(election) = &self.election {
            election.do_send(Request(request));
        }
    }

    fn send(&self, to: Sid, msg: PeerMessage) {
        if let Some(link) = self.roster.as_ref().and_then(|r| r.link(to)) {
            link.do_send(SendPeer(msg));
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            peer: self.core.status(),
            node_count: self.tree.node_count(),
            standalone: self.settings.voters.len() == 1,
            restarts: self.restarts,
            connections: self.clients.connections(),
            watches: self.clients.watch_count(),
            watched_paths: self.clients.watched_paths(),
            ephemerals: self.tree.ephemeral_count(),
            sessions: self.tree.sessions().count(),
        }
    }

    /// The leader deletes containers that had children and have none left, and TTL znodes
    /// that expired, as ZooKeeper's ContainerManager does.
    fn reap_containers(&mut self, ctx: &mut Context<Self>) {
        let now = self.now();
        if now.saturating_sub(self.last_container_check) < self.settings.container_check_ms {
            return;
        }
        self.last_container_check = now;
        let status = self.core.status();
        if status.state != ServerState::Leading || !status.serving {
            return;
        }
        for path in self.tree.due_for_reaping(wall_clock_ms()) {
            tracing::info!(%path, "deleting an emptied container or expired TTL znode");
            self.submit_internal(TreeOp::Reap { path }, SessionId::NONE, ctx);
        }
    }

    /// Proposes a txn of the server's own (session expiry, container reaping).
    fn submit_internal(&mut self, op: TreeOp, session_id: SessionId, ctx: &mut Context<Self>) {
        let txn = TreeTxn {
            session_id,
            time_ms: wall_clock_ms(),
            auth: vec![("super".into(), "ensemble".into())],
            op,
        };
        let request_id = self.clients.next_request_id();
        self.step(
            Input::Submit {
                request_id,
                body: txn.encode(),
            },
            ctx,
        );
    }

    /// Steps the request pipeline and carries out its outputs; the txns it asks for wait in
    /// `proposals` for [`Self::propose_queued`].
    fn step_clients(&mut self, input: ServiceInput<'_>) {
        let outs = self.clients.step(input, &self.tree, step_clock());
        let proposals = self.sinks.deliver(outs);
        self.proposals.extend(proposals);
    }

    /// Steps the request pipeline on a client's input, then proposes what it asked for.
    fn client_input(&mut self, input: ServiceInput<'_>, ctx: &mut Context<Self>) {
        self.step_clients(input);
        let serving = self.core.status().serving;
        self.published.publish_if_wanted(&self.tree, serving);
        self.propose_queued(ctx);
    }

    /// Proposes the txns the request pipeline asked for.
    fn propose_queued(&mut self, ctx: &mut Context<Self>) {
        for (request_id, txn) in std::mem::take(&mut self.proposals) {
            self.step(
                Input::Submit {
                    request_id,
                    body: txn.encode(),
                },
                ctx,
            );
        }
    }
}

/// Rebuilds the core and the tree from disk.
fn build(
    settings: &QuorumSettings,
    recovered: Recovered,
) -> Result<(QuorumPeer, DataTree), StorageError> {
    for w in &recovered.warnings {
        tracing::warn!("storage: {w}");
    }
    let mut tree = match &recovered.snapshot {
        Some(s) => DataTree::deserialize(&s.state).map_err(StorageError::Corrupt)?,
        None => DataTree::default(),
    };
    let membership = starting_membership(&mut tree, &settings.membership);
    let durable = Durable {
        accepted_epoch: recovered.accepted_epoch,
        current_epoch: recovered.current_epoch,
        snapshot_zxid: recovered.snapshot_zxid(),
        log: recovered.log,
    };
    let max_data = settings.service_settings.max_buffer;
    let core = QuorumPeer::new(
        settings.sid,
        membership.voters(),
        settings.timing.clone(),
        durable,
    )
    .with_observers(membership.observers())
    .with_body_check(std::sync::Arc::new(move |body: &[u8]| {
        TreeTxn::check_body(body, max_data)
    }))
    .with_membership(
        membership.version,
        std::sync::Arc::new(TreeTxn::membership_of),
    );
    Ok((core, tree))
}

/// The other servers of `m`, as the links reach them.
fn peer_entries(m: &Membership) -> Vec<PeerEntry> {
    m.servers
        .iter()
        .map(|s| PeerEntry {
            sid: s.id,
            addr: s.peer_addr(),
            host: s.host.clone(),
        })
        .collect()
}

/// The membership to start with: the tree's (from a snapshot) when a reconfig newer than
/// the configured one made it, else the configured one, which the tree's config node gets.
fn starting_membership(tree: &mut DataTree, configured: &Membership) -> Membership {
    let (text, version) = tree.config();
    if version > configured.version {
        match std::str::from_utf8(&text).map(Membership::parse) {
            Ok(Ok(m)) => return m,
            _ => tracing::warn!("the snapshot's /zookeeper/config is unreadable; ignored"),
        }
    }
    tree.init_config(&configured.render());
    configured.clone()
}

impl QuorumPeerActor {
    /// After a restart: once everything queued reached the disk, reads it back off the actor
    /// thread, then installs it and begins; the mailbox waits meanwhile.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let storage = self.storage.clone();
        let settings = self.settings.clone();
        let reloaded = async move {
            // What was queued before the failure reaches the disk before we read it back.
            let _ = storage.send(Flush).await;
            let dirs = settings.storage.clone();
            tokio::task::spawn_blocking(move || {
                recover(&dirs.data_dir, &dirs.data_log_dir).and_then(|r| build(&settings, r))
            })
            .await
            .map_err(|e| StorageError::Corrupt(format!("reloading stopped: {e}")))?
        };
        ctx.wait(
            reloaded
                .into_actor(self)
                .map(|rebuilt, act, ctx| match rebuilt {
                    Ok((core, tree)) => {
                        // The election may still answer the old core's looks.
                        act.core = core.counting_looks_from(act.core.looks());
                        act.tree = tree;
                        act.publish();
                        act.begin(ctx);
                    }
                    Err(e) => act.fail_node(format!("cannot reload storage after a restart: {e}")),
                }),
        );
    }

    /// Starts the core, its ticks and the links' announcements, and tells the session tracker
    /// the sessions the tree holds.
    fn begin(&mut self, ctx: &mut Context<Self>) {
        self.send_sessions_state();
        let now = self.now();
        let outs = self.core.start(now);
        self.carry_out(outs, ctx);
        let every = Duration::from_millis((self.settings.timing.tick_ms / 4).clamp(5, 50));
        ctx.run_interval(every, |act, ctx| {
            act.step(Input::Tick, ctx);
            act.forward_activity();
            act.reap_containers(ctx);
        });
        match self.tree_membership() {
            Some((m, version)) if version > self.settings.membership.version => {
                self.settings.membership = m;
            }
            _ => {}
        }
        self.follow_membership();
        for (_, link) in self.roster.iter().flat_map(PeerRoster::links) {
            link.do_send(Announce);
        }
    }
}

impl Actor for QuorumPeerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if std::mem::take(&mut self.reload) {
            self.reload(ctx);
        } else {
            self.begin(ctx);
        }
    }
}

/// Restart policy: keeps its settings, links, client connections and sessions' bookkeeping;
/// fails its pending local writes (`LeaderChanged`); reloads the Zab core and the tree from
/// disk (off the actor thread, once the storage writer has flushed), tells the session tracker
/// the reloaded sessions, then asks the election actor for a leader again (a decision for the
/// old core's looks is ignored). Nothing acknowledged is lost: only durable txns were ever
/// acknowledged.
impl Supervised for QuorumPeerActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(sid = self.settings.sid, "quorum peer restarting from disk");
        for (_, w) in self.waiters.drain() {
            let _ = w.send(Err(SubmitError::LeaderChanged));
        }
        self.results.clear();
        self.reload = true;
    }
}

impl Handler<PeerEvent> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, ev: PeerEvent, ctx: &mut Context<Self>) {
        let input = match ev {
            PeerEvent::Connected(sid) => Input::PeerConnected(sid),
            PeerEvent::Disconnected(sid) => Input::PeerDisconnected(sid),
            PeerEvent::Message(_, PeerMessage::SessionTouch(ids)) => {
                self.tell_sessions(TouchesReported(ids));
                return;
            }
            PeerEvent::Message(from, msg) => Input::Message { from, msg },
        };
        self.step(input, ctx);
    }
}

impl Handler<Elected> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, Elected(decision): Elected, ctx: &mut Context<Self>) {
        self.step(Input::Elected(decision), ctx);
    }
}

impl Handler<ConfigHeard> for QuorumPeerActor {
    type Result = MessageResult<ConfigHeard>;

    fn handle(
        &mut self,
        ConfigHeard(version): ConfigHeard,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.step(Input::ConfigHeard(version), ctx);
        MessageResult(self.core.members())
    }
}

impl Handler<GetElectionView> for QuorumPeerActor {
    type Result = MessageResult<GetElectionView>;

    fn handle(&mut self, _: GetElectionView, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.election_view())
    }
}

impl Handler<StorageEvent> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, StorageEvent(ev): StorageEvent, ctx: &mut Context<Self>) {
        match ev {
            WriterEvent::Durable(token) => self.step(Input::Persisted(token), ctx),
            WriterEvent::SnapshotTaken(z) => {
                tracing::info!(sid = self.settings.sid, %z, "snapshot taken")
            }
            WriterEvent::Failed(e) => {
                self.fail_node(format!("storage failed: {e}"));
            }
        }
    }
}

impl Handler<Submit> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        let request_id = self.clients.next_request_id();
        self.waiters.insert(request_id, msg.reply);
        self.step(
            Input::Submit {
                request_id,
                body: msg.txn.encode(),
            },
            ctx,
        );
    }
}

impl Handler<ClientConnect> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, msg: ClientConnect, ctx: &mut Context<Self>) {
        let (hello, sink) = msg.split();
        self.sinks.open(hello.conn, sink);
        let password = rand::random();
        self.client_input(ServiceInput::Connect { hello, password }, ctx);
    }
}

impl Handler<ClientPacket> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, msg: ClientPacket, ctx: &mut Context<Self>) {
        self.client_input(ServiceInput::Packet(msg), ctx);
    }
}

impl Handler<ClientGone> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, msg: ClientGone, ctx: &mut Context<Self>) {
        self.sinks.gone(msg.conn);
        self.client_input(ServiceInput::Gone(msg.conn), ctx);
    }
}

impl Handler<GetStatus> for QuorumPeerActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<GetReport> for QuorumPeerActor {
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

impl Handler<GetPublishedTree> for QuorumPeerActor {
    type Result = MessageResult<GetPublishedTree>;

    fn handle(&mut self, _: GetPublishedTree, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.published.clone())
    }
}

impl Handler<ResetConnectionStats> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, _: ResetConnectionStats, _: &mut Context<Self>) {
        self.clients.reset_counters();
        self.sinks.reset_counters();
    }
}

impl Handler<ReadData> for QuorumPeerActor {
    type Result = Option<Vec<u8>>;

    fn handle(&mut self, ReadData(path): ReadData, _: &mut Context<Self>) -> Self::Result {
        self.tree.get(&path).map(|n| n.data().to_vec())
    }
}

impl Handler<FailQuorumPeer> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, _: FailQuorumPeer, ctx: &mut Context<Self>) {
        tracing::warn!(sid = self.settings.sid, "quorum peer failure injected");
        ctx.stop();
    }
}

impl Handler<ProposeExpiry> for QuorumPeerActor {
    type Result = ();

    /// Proposes closing the sessions the tracker found expired, if this server still leads
    /// and they are still open.
    fn handle(&mut self, ProposeExpiry(ids): ProposeExpiry, ctx: &mut Context<Self>) {
        if self.expiry_role() != ExpiryRole::Leader {
            return;
        }
        for id in ids {
            if !self.tree.has_session(id) {
                continue;
            }
            tracing::info!(session = %id, "session expired");
            self.submit_internal(TreeOp::ExpireSession, id, ctx);
        }
    }
}

impl Handler<ResyncSessions> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, _: ResyncSessions, _: &mut Context<Self>) {
        self.send_sessions_state();
    }
}
