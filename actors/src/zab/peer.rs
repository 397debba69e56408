//! The quorum peer: looking for a leader, then the leader or follower role, then looking again.
//! The election itself is another core's ([`Election`](crate::election::Election)): this one
//! asks it for a leader ([`Output::Election`]) and takes its decision ([`Input::Elected`]).
//!
//! An observer (a server outside the voter set) takes the follower role without voting: it
//! never acks and is never counted, and its leader sends it committed txns only.

use super::follower::FollowerRole;
use super::leader::LeaderRole;
use super::log::TxnLog;
use super::membership::MembershipOf;
use super::types::{Durable, Input, Output, PeerStatus, PeerTiming, SubmitError};
use crate::election::{Decision, ElectionRequest, ElectionView, Look, Members};
use crate::storage::{PersistToken, StorageOp};
use ensemble_messages::{PeerMessage, ServerState, Sid, Snapshot, Vote, ZabMessage, Zxid};
use std::collections::BTreeSet;

pub(super) enum Role {
    Looking,
    Leading(LeaderRole),
    Following(FollowerRole),
}

/// The replication state machine of one server. See the [module docs](super).
pub struct QuorumPeer {
    pub(super) me: Sid,
    pub(super) voters: Vec<Sid>,
    /// Members that learn every commit without voting; never counted in a quorum.
    pub(super) observers: Vec<Sid>,
    pub(super) timing: PeerTiming,
    /// Looks for a leader asked of the election so far; the last one is the ticket a decision
    /// must carry.
    looks: u64,
    /// The vote decided for the current role (its peer epoch the established one).
    vote: Vote,
    /// The election round of the last decision.
    election_round: u64,
    pub(super) accepted_epoch: u32,
    pub(super) current_epoch: u32,
    pub(super) log: TxnLog,
    /// Highest zxid known durable on this server's disk.
    pub(super) persisted: Zxid,
    pub(super) role: Role,
    pub(super) now: u64,
    pending: BTreeSet<u64>,
    out: Vec<Output>,
    /// What a txn body must pass before the leader proposes it.
    pub(super) body_check: BodyCheck,
    /// Tells reconfig txns apart.
    pub(super) membership_of: MembershipOf,
    /// Version of the config `voters` come from (the zxid of its reconfig, 0 if none).
    pub(super) config_version: u64,
    /// Leading: the reconfig proposed and not committed yet, with its new voters.
    pub(super) pending_reconfig: Option<(Zxid, Vec<Sid>)>,
    /// A reconfig just removed this server or the leader it follows: it looks for a leader.
    pub(super) step_down: bool,
}

/// A check of a write's body before it is proposed: a pure function of the bytes, supplied by
/// the state machine (`Err` says why the body cannot be applied).
pub type BodyCheck = std::sync::Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

impl QuorumPeer {
    /// A server recovered from `durable`; call [`QuorumPeer::start`] to begin electing.
    pub fn new(me: Sid, mut voters: Vec<Sid>, timing: PeerTiming, durable: Durable) -> Self {
        voters.sort_unstable();
        let log = TxnLog::recovered(durable.snapshot_zxid, durable.log);
        QuorumPeer {
            looks: 0,
            vote: Vote {
                leader: me,
                zxid: Zxid::ZERO,
                peer_epoch: 0,
            },
            election_round: 0,
            me,
            voters,
            observers: Vec::new(),
            timing,
            accepted_epoch: durable.accepted_epoch,
            current_epoch: durable.current_epoch,
            persisted: log.last(),
            log,
            role: Role::Looking,
            now: 0,
            pending: BTreeSet::new(),
            out: Vec::new(),
            body_check: std::sync::Arc::new(|_| Ok(())),
            membership_of: std::sync::Arc::new(|_| None),
            config_version: 0,
            pending_reconfig: None,
            step_down: false,
        }
    }

    /// The same server, at config `version`, telling reconfig txns apart with `of`.
    pub fn with_membership(mut self, version: u64, of: MembershipOf) -> Self {
        self.config_version = version;
        self.membership_of = of;
        self
    }

    /// The same server, knowing these members as observers (this server may be one of them:
    /// it is an observer when it is not among the voters).
    pub fn with_observers(mut self, mut observers: Vec<Sid>) -> Self {
        observers.sort_unstable();
        self.observers = observers;
        self
    }

    /// Whether this server observes rather than votes.
    pub fn is_observer(&self) -> bool {
        !self.voters.contains(&self.me)
    }

    /// Whether `sid` votes and counts in quorums.
    pub(super) fn is_voter(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }

    /// The same server, proposing only writes whose body passes `check`.
    pub fn with_body_check(mut self, check: BodyCheck) -> Self {
        self.body_check = check;
        self
    }

    /// The same server, numbering its looks for a leader after `looks` (those of the core it
    /// replaces, whose election may still answer them).
    pub fn counting_looks_from(mut self, looks: u64) -> Self {
        self.looks = looks;
        self
    }

    /// How many looks for a leader this server asked of the election.
    pub fn looks(&self) -> u64 {
        self.looks
    }

    /// Starts looking for a leader.
    pub fn start(&mut self, now: u64) -> Vec<Output> {
        self.now = now;
        self.look();
        std::mem::take(&mut self.out)
    }

    /// Feeds one input; returns what the driver must do, in order.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Tick => self.on_tick(),
            Input::Persisted(token) => self.on_persisted(token),
            Input::Submit { request_id, body } => self.on_submit(request_id, body),
            Input::PeerConnected(sid) => self.on_peer_connected(sid),
            Input::PeerDisconnected(sid) => self.on_peer_disconnected(sid),
            Input::Elected(decision) => self.on_elected(decision),
            Input::ConfigHeard(version) => self.adopt_newer_config(version),
        }
        self.step_down_if_removed();
        std::mem::take(&mut self.out)
    }

    /// A summary for status reports.
    pub fn status(&self) -> PeerStatus {
        let learning = if self.is_observer() {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        let (state, serving, leader, synced) = match &self.role {
            Role::Looking => (ServerState::Looking, false, None, (0, 0, 0)),
            Role::Leading(l) => (
                ServerState::Leading,
                l.is_established(),
                Some(self.me),
                l.synced_counts(),
            ),
            Role::Following(f) => (learning, f.is_serving(), Some(f.leader), (0, 0, 0)),
        };
        PeerStatus {
            state,
            serving,
            leader,
            current_epoch: self.current_epoch,
            last_logged: self.log.last(),
            committed: self.log.committed(),
            applied: self.log.applied(),
            synced_followers: synced.0,
            synced_observers: synced.1,
            learners: synced.2,
            voters: self.voters.len(),
            election_epoch: self.election_round,
        }
    }

    /// The membership this server counts with.
    pub fn members(&self) -> Members {
        Members {
            version: self.config_version,
            voters: self.voters.clone(),
            observers: self.observers.clone(),
        }
    }

    /// Where this server stands, for an election that lost its state to resume from.
    pub fn election_view(&self) -> ElectionView {
        match self.role {
            Role::Looking => ElectionView::Looking(self.look_request()),
            _ => ElectionView::Decided {
                ticket: self.looks,
                vote: self.vote,
                members: self.members(),
            },
        }
    }

    /// The current look for a leader, with this server's vote material.
    fn look_request(&self) -> Look {
        Look {
            ticket: self.looks,
            epoch: self.current_epoch,
            last_zxid: self.log.last(),
            members: self.members(),
        }
    }

    /// The decided leader established `epoch`: the election's answers carry it from now on.
    pub(super) fn established(&mut self, epoch: u32) {
        self.vote.peer_epoch = epoch;
        self.emit(Output::Election(ElectionRequest::Established(epoch)));
    }

    pub(super) fn emit(&mut self, output: Output) {
        self.out.push(output);
    }

    pub(super) fn send(&mut self, to: Sid, msg: ZabMessage) {
        self.out.push(Output::Send {
            to,
            msg: PeerMessage::Zab(msg),
        });
    }

    pub(super) fn persist(&mut self, op: StorageOp, token: Option<PersistToken>) {
        self.out.push(Output::Persist { op, token });
    }

    pub(super) fn quorum(&self, count: usize) -> bool {
        crate::quorum::is_quorum(count, self.voters.len())
    }

    pub(super) fn ticks_ms(&self, ticks: u32) -> u64 {
        self.timing.tick_ms * u64::from(ticks)
    }

    /// Applies committed txns up to `limit` and completes writes submitted here.
    pub(super) fn apply_up_to(&mut self, limit: Zxid) {
        let txns = self.log.take_applicable(limit, self.timing.diff_window);
        if txns.is_empty() {
            return;
        }
        let mine: Vec<(u64, Zxid)> = txns
            .iter()
            .filter(|t| t.origin == self.me && self.pending.contains(&t.request_id))
            .map(|t| (t.request_id, t.zxid))
            .collect();
        self.adopt_reconfigs(&txns);
        self.emit(Output::Apply(txns));
        for (request_id, zxid) in mine {
            self.complete(request_id, Ok(zxid));
        }
    }

    /// Installs a snapshot received from the leader.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) {
        self.log.reset(snapshot.last_zxid);
        self.persisted = snapshot.last_zxid;
        self.persist(StorageOp::InstallSnapshot(snapshot.clone()), None);
        self.emit(Output::InstallSnapshot(snapshot));
    }

    pub(super) fn complete(&mut self, request_id: u64, result: Result<Zxid, SubmitError>) {
        if self.pending.remove(&request_id) {
            self.emit(Output::Completed { request_id, result });
        }
    }

    /// Ends the current role and asks the election for a leader.
    pub(super) fn look(&mut self) {
        self.role = Role::Looking;
        self.pending_reconfig = None;
        for request_id in std::mem::take(&mut self.pending) {
            self.emit(Output::Completed {
                request_id,
                result: Err(SubmitError::LeaderChanged),
            });
        }
        self.looks += 1;
        let look = self.look_request();
        self.emit(Output::Election(ElectionRequest::Look(look)));
    }

    /// The election decided: lead or follow, if this answers the look still waited for.
    fn on_elected(&mut self, d: Decision) {
        if !matches!(self.role, Role::Looking) || d.ticket != self.looks {
            tracing::debug!(me = self.me, ticket = d.ticket, "stale election decision");
            return;
        }
        tracing::info!(me = self.me, leader = d.vote.leader, "election decided");
        self.vote = d.vote;
        self.election_round = d.round;
        if d.vote.leader == self.me {
            self.become_leader();
        } else {
            self.become_follower(d.vote.leader);
        }
    }

    fn on_message(&mut self, from: Sid, msg: PeerMessage) {
        match msg {
            // The election's business: its driver feeds notifications to it, and a newer
            // config one names to this core as Input::ConfigHeard.
            PeerMessage::Election(_) => {}
            PeerMessage::Zab(z) => match self.role {
                Role::Leading(_) => self.leader_on_message(from, z),
                Role::Following(_) => self.follower_on_message(from, z),
                Role::Looking => {}
            },
            // Session liveness is the session tracker's business, not Zab's.
            PeerMessage::SessionTouch(_) => {}
            // Links join the parts of a NEWLEADER into it; a stray one is nothing to Zab.
            PeerMessage::ImagePiece(_) | PeerMessage::SyncTxns(_) => {}
        }
    }

    fn on_tick(&mut self) {
        match self.role {
            Role::Looking => {}
            Role::Leading(_) => self.leader_on_tick(),
            Role::Following(_) => self.follower_on_tick(),
        }
    }

    fn on_persisted(&mut self, token: PersistToken) {
        if let PersistToken::Txns(z) = token {
            self.persisted = self.persisted.max(z.min(self.log.last()));
        }
        match self.role {
            Role::Leading(_) => self.leader_on_persisted(token),
            Role::Following(_) => self.follower_on_persisted(token),
            Role::Looking => {}
        }
    }

    fn on_submit(&mut self, request_id: u64, body: Vec<u8>) {
        self.pending.insert(request_id);
        match self.role {
            Role::Leading(_) => self.leader_propose(self.me, request_id, body),
            Role::Following(_) => self.follower_forward(request_id, body),
            Role::Looking => self.complete(request_id, Err(SubmitError::NotServing)),
        }
    }

    fn on_peer_connected(&mut self, sid: Sid) {
        if let Role::Following(_) = self.role {
            self.follower_on_connected(sid);
        }
    }

    fn on_peer_disconnected(&mut self, sid: Sid) {
        match self.role {
            Role::Leading(_) => self.leader_on_disconnected(sid),
            Role::Following(ref f) if f.leader == sid => {
                tracing::warn!(me = self.me, leader = sid, "lost the link to the leader");
                self.look();
            }
            _ => {}
        }
    }
}
