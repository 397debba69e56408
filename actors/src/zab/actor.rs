//! The quorum peer actor: drives the [`QuorumPeer`] core and carries out its outputs. What
//! it commits, the tree it builds and the role it plays go to the request pipeline actor
//! ([`PipelineActor`]), which owns the data tree, in the order the core decided them.

use super::{Durable, Input, NodeEvent, NodeEvents, Output, PeerStatus, PeerTiming, QuorumPeer};
use crate::data_tree::{DataTree, TreeTxn};
use crate::election::{ConfigHeard, Elected, ElectionRequest, GetElectionView, Request};
use crate::metrics::ServerMetrics;
use crate::peer::{
    snap_channel, Announce, PeerEntry, PeerEvent, PeerRoster, SendPeer, SendPeerLater,
};
use crate::pipeline::{
    ApplyTxns, ConfigApplied, GetCounts, InstallTree, PipelineActor, PipelineCounts, Propose,
    ReloadFromDisk, RoleSeen, SnapshotFor, TxnCompleted,
};
use crate::sessions::TouchesReported;
use crate::storage::{
    recover, Flush, HoldSnapshots, Persist, Recovered, StorageActor, StorageError, StorageEvent,
    WriterEvent, WriterSettings,
};
use actix::prelude::*;
use ensemble_config::apache_files::ZooCfgFiles;
use ensemble_config::dynamic::{self, Membership};
use ensemble_messages::{PeerMessage, ServerState, Sid, Snapshot, Txn};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The largest txn body the leader proposes (jute.maxbuffer).
    pub max_txn_bytes: usize,
    /// The server's running figures.
    pub metrics: Arc<ServerMetrics>,
    /// Where role changes and fatal failures are published.
    pub events: NodeEvents,
}

/// Asks for the server's status.
#[derive(Message)]
#[rtype(result = "NodeStatus")]
pub struct GetStatus;

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
    /// Supervised restarts of the quorum peer and request pipeline actors (a pipeline restart
    /// makes the quorum peer restart too, so it counts twice).
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
    /// The request pipeline; `None` until [`QuorumPeerActor::with_pipeline`].
    pipeline: Option<Addr<PipelineActor>>,
    storage: Addr<StorageActor>,
    core: QuorumPeer,
    /// The tree built with the core, until it is handed to the pipeline.
    handover: Option<DataTree>,
    epoch: Instant,
    restarts: u64,
    /// The role last told to the pipeline (`None`: tell it again).
    role_told: Option<RoleSeen>,
    /// Whether the core was serving when last looked at, for the metrics.
    was_serving: bool,
    /// The role last published as a [`NodeEvent::Role`].
    published_role: Option<NodeEvent>,
    /// When this server last stopped serving (or started), for election_time.
    looking_since: Instant,
    /// Whether a restart has yet to reload the core and the tree from disk.
    reload: bool,
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
        Ok(QuorumPeerActor {
            settings,
            roster: None,
            election: None,
            pipeline: None,
            storage,
            core,
            handover: Some(tree),
            epoch: Instant::now(),
            restarts: 0,
            role_told: None,
            was_serving: false,
            published_role: None,
            looking_since: Instant::now(),
            reload: false,
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

    /// Sets the request pipeline, which gets the trees, the committed txns, the outcomes and
    /// the role, and asks this actor to propose.
    pub fn with_pipeline(mut self, pipeline: Addr<PipelineActor>) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Tells the pipeline something (nothing when there is none yet).
    fn tell_pipeline<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        PipelineActor: Handler<M>,
    {
        if let Some(pipeline) = &self.pipeline {
            pipeline.do_send(msg);
        }
    }

    /// Hands `tree` to the pipeline, which serves it from now on; the role is told again
    /// after it.
    fn hand_over(&mut self, tree: DataTree) {
        self.tell_pipeline(InstallTree(tree));
        self.role_told = None;
    }

    /// A SNAP's tree holds the leader's text of the membership. Another version (a reconfig
    /// this server missed) is adopted. The same version is the same membership, but the
    /// leader's server lines may reach the servers by other addresses than this server's
    /// (its own line on `0.0.0.0` in a container, names only it resolves, a proxy): this
    /// server keeps its own lines and links, and its tree its own text, as ZooKeeper keeps
    /// the local config after a snapshot (ZOOKEEPER-2819).
    fn adopt_snapshot_membership(&mut self, tree: &mut DataTree) {
        let Some(m) = membership_of(tree) else {
            return;
        };
        if m.version == self.core.config_version() {
            tree.init_config(&self.settings.membership.render());
            return;
        }
        self.core
            .set_membership(m.version, m.voters(), m.observers());
        self.membership_changed(m);
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
        let mut outs = outs.into_iter();
        while let Some(out) = outs.next() {
            match out {
                Output::Send { to, msg } => self.send(to, msg),
                Output::Election(request) => self.tell_election(request),
                Output::Persist { op, token } => self.storage.do_send(Persist { op, token }),
                Output::Apply(txns) => self.tell_pipeline(ApplyTxns(txns)),
                Output::InstallSnapshot(s) => {
                    self.install_snapshot(s, outs.collect(), ctx);
                    return;
                }
                Output::SendSnapshotSync { to, epoch, txns } => {
                    self.send_snapshot_sync(to, epoch, txns)
                }
                Output::Completed { request_id, result } => {
                    self.tell_pipeline(TxnCompleted { request_id, result })
                }
            }
        }
        let status = self.core.status();
        if status.serving != self.was_serving {
            self.was_serving = status.serving;
            self.count_serving_change(status.serving, status.state);
        }
        self.publish_role(&status);
    }

    /// Builds the tree of a SNAP from the snapshot file the storage writes it to (queued just
    /// before this), read on a blocking thread as it streams from the disk: the image is let
    /// go as soon as the storage has written it, instead of being held whole beside the tree
    /// it builds (about 120 MB beside 350 at a million znodes). Hands the tree over, then
    /// carries out `rest`. Meanwhile the actor takes no message, so nothing the core says
    /// after the install overtakes it.
    fn install_snapshot(&mut self, s: Snapshot, rest: Vec<Output>, ctx: &mut Context<Self>) {
        let zxid = s.last_zxid;
        drop(s);
        let path = self.settings.storage.snapshot_file(zxid);
        let written = self.storage.send(Flush);
        let read = async move {
            written
                .await
                .map_err(|e| format!("the storage did not write it: {e}"))?;
            let read = tokio::task::spawn_blocking(move || {
                crate::storage::files::read_whole_snapshot(&path, DataTree::read_image)
            });
            let (read_zxid, tree) = read.await.map_err(|e| e.to_string())??;
            if read_zxid != zxid {
                return Err(format!("its file holds {read_zxid}, not {zxid}"));
            }
            Ok(tree)
        };
        ctx.wait(read.into_actor(self).map(move |read, act, ctx| match read {
            Ok(mut tree) => {
                tracing::info!(
                    "installed the leader's snapshot at {zxid}: {} znodes, read back from its file",
                    tree.node_count()
                );
                act.adopt_snapshot_membership(&mut tree);
                act.hand_over(tree);
                act.carry_out(rest, ctx);
            }
            Err(e) => {
                tracing::error!("the snapshot the leader sent does not read back: {e}; restarting");
                ctx.stop();
            }
        }));
    }

    /// Publishes a role change to the host and to the pipeline.
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
        let seen = RoleSeen {
            state: status.state,
            serving: status.serving,
            leader: status.leader,
        };
        if self.role_told != Some(seen) {
            self.role_told = Some(seen);
            self.tell_pipeline(seen);
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

    /// The tree's config node holds `m` (a reconfig applied, or a snapshot installed): the
    /// membership file in dataDir keeps it for restarts, Apache's files show it, and the links
    /// follow it.
    fn membership_changed(&mut self, m: Membership) {
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

    /// SNAP sync: the link holds later messages to `to` behind a slot the pipeline fills with
    /// the image of its tree (which then covers every batch sent to it before).
    fn send_snapshot_sync(&self, to: Sid, epoch: u32, txns: Vec<Txn>) {
        let Some(link) = self.roster.as_ref().and_then(|r| r.link(to)) else {
            return;
        };
        let (reply, rx) = snap_channel();
        link.do_send(SendPeerLater(rx));
        self.tell_pipeline(SnapshotFor { epoch, txns, reply });
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

    /// The server's status: the core's summary with the pipeline's counts (zero if it cannot
    /// answer).
    fn status(&self, counts: PipelineCounts) -> NodeStatus {
        NodeStatus {
            peer: self.core.status(),
            node_count: counts.node_count,
            standalone: self.settings.voters.len() == 1,
            restarts: self.restarts + counts.restarts,
            connections: counts.connections,
            watches: counts.watches,
            watched_paths: counts.watched_paths,
            ephemerals: counts.ephemerals,
            sessions: counts.sessions,
        }
    }
}

/// The membership a tree's config node holds, if it reads.
fn membership_of(tree: &DataTree) -> Option<Membership> {
    let (text, _) = tree.config();
    Membership::parse(std::str::from_utf8(&text).ok()?).ok()
}

/// Rebuilds the core and the tree from disk.
fn build(
    settings: &QuorumSettings,
    recovered: Recovered,
) -> Result<(QuorumPeer, DataTree), StorageError> {
    for w in &recovered.warnings {
        tracing::warn!("storage: {w}");
    }
    let snapshot_zxid = recovered.snapshot_zxid();
    let mut tree = match &recovered.snapshot {
        Some(whole) => {
            DataTree::from_restore_point(whole, &recovered.deltas).map_err(StorageError::Corrupt)?
        }
        None => DataTree::default(),
    };
    let membership = starting_membership(&mut tree, &settings.membership);
    let durable = Durable {
        accepted_epoch: recovered.accepted_epoch,
        current_epoch: recovered.current_epoch,
        snapshot_zxid,
        log: recovered.log,
    };
    let max_data = settings.max_txn_bytes;
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
    /// thread, then installs it and begins; the mailbox waits meanwhile. Background snapshots
    /// are held until then: the pipeline, still applying what the old core committed, may ask
    /// for one, whose log roll and purge would change the files being read.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let storage = self.storage.clone();
        let settings = self.settings.clone();
        storage.do_send(HoldSnapshots(true));
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
                        act.storage.do_send(HoldSnapshots(false));
                        // The election may still answer the old core's looks.
                        act.core = core.counting_looks_from(act.core.looks());
                        act.handover = Some(tree);
                        act.begin(ctx);
                    }
                    Err(e) => act.fail_node(format!("cannot reload storage after a restart: {e}")),
                }),
        );
    }

    /// Hands the tree over, starts the core, its ticks and the links' announcements.
    fn begin(&mut self, ctx: &mut Context<Self>) {
        if let Some(tree) = self.handover.take() {
            match membership_of(&tree) {
                Some(m) if m.version > self.settings.membership.version => {
                    self.settings.membership = m;
                }
                _ => {}
            }
            self.hand_over(tree);
        }
        let now = self.now();
        let outs = self.core.start(now);
        self.carry_out(outs, ctx);
        let every = Duration::from_millis((self.settings.timing.tick_ms / 4).clamp(5, 50));
        ctx.run_interval(every, |act, ctx| act.step(Input::Tick, ctx));
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

/// Restart policy: keeps its settings, links and the pipeline's address; reloads the Zab core
/// and the tree from disk (off the actor thread, once the storage writer has flushed) and
/// hands the tree to the pipeline, which fails the local writes still pending
/// (`LeaderChanged`) and ends its client connections (sessions live on); then asks the
/// election actor for a leader again (a decision for the old core's looks is ignored).
/// Nothing acknowledged is lost: only durable txns were ever acknowledged.
impl Supervised for QuorumPeerActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(sid = self.settings.sid, "quorum peer restarting from disk");
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
                self.tell_pipeline(TouchesReported(ids));
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

impl Handler<Propose> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, Propose { request_id, body }: Propose, ctx: &mut Context<Self>) {
        self.step(Input::Submit { request_id, body }, ctx);
    }
}

impl Handler<ConfigApplied> for QuorumPeerActor {
    type Result = ();

    /// The core took the membership when the reconfig committed (or a newer one it heard of
    /// meanwhile, which it keeps). The files and links follow each newer membership; one not
    /// newer than the last they followed was overtaken on the way, and is ignored.
    fn handle(&mut self, ConfigApplied(m): ConfigApplied, _: &mut Context<Self>) {
        if m.version <= self.settings.membership.version {
            return;
        }
        if m.version > self.core.config_version() {
            self.core
                .set_membership(m.version, m.voters(), m.observers());
        }
        self.membership_changed(m);
    }
}

impl Handler<ReloadFromDisk> for QuorumPeerActor {
    type Result = ();

    /// The pipeline lost its tree: a restart reloads one from disk and hands it over.
    fn handle(&mut self, _: ReloadFromDisk, ctx: &mut Context<Self>) {
        tracing::warn!(
            sid = self.settings.sid,
            "the request pipeline asks for a reload"
        );
        ctx.stop();
    }
}

impl Handler<GetStatus> for QuorumPeerActor {
    type Result = ResponseActFuture<Self, NodeStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let counts = self.pipeline.clone().map(|p| p.send(GetCounts));
        let counts = async move {
            match counts {
                Some(asked) => asked.await.unwrap_or_default(),
                None => PipelineCounts::default(),
            }
        };
        Box::pin(
            counts
                .into_actor(self)
                .map(|counts, act, _| act.status(counts)),
        )
    }
}

impl Handler<FailQuorumPeer> for QuorumPeerActor {
    type Result = ();

    fn handle(&mut self, _: FailQuorumPeer, ctx: &mut Context<Self>) {
        tracing::warn!(sid = self.settings.sid, "quorum peer failure injected");
        ctx.stop();
    }
}
