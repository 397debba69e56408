//! The leader role: discovery (new epoch), synchronization (DIFF/TRUNC/SNAP) and broadcast.
//!
//! Only voters count, in discovery, sync and commits. Observers are synced once the leader is
//! established (so they only ever hold an established leader's history) and are then sent
//! each committed txn (INFORM) instead of proposals and commits.

use super::membership::quorum_of;
use super::peer::{QuorumPeer, Role};
use super::types::{Output, SubmitError};
use crate::storage::{PersistToken, StorageOp};
use ensemble_messages::{Sid, Txn, ZabMessage, Zxid};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Collecting FOLLOWERINFO from a quorum to choose the new epoch.
    Discovery,
    /// The epoch is chosen; collecting ACKEPOCH, then NEWLEADER acks.
    Sync,
    /// Established: proposing and committing.
    Broadcast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Sent FOLLOWERINFO with its accepted epoch.
    Info,
    /// Acknowledged the epoch; waiting for the leader to sync it.
    EpochAcked { last_zxid: Zxid },
    /// NEWLEADER sent; proposals and commits are forwarded to it.
    Syncing,
    /// Acknowledged NEWLEADER and got UPTODATE.
    Synced,
}

#[derive(Clone, Debug)]
struct FollowerHandle {
    stage: Stage,
    /// An observer: never counted, synced only once established, informed of commits.
    observer: bool,
    accepted_epoch: u32,
    last_heard: u64,
}

/// State of the leader role.
pub(super) struct LeaderRole {
    phase: Phase,
    started: u64,
    epoch: Option<u32>,
    counter: u32,
    followers: BTreeMap<Sid, FollowerHandle>,
    self_accepted: bool,
    current_requested: bool,
    self_current: bool,
    ack_newleader: BTreeSet<Sid>,
    proposals: BTreeMap<Zxid, BTreeSet<Sid>>,
    last_ping: u64,
}

impl LeaderRole {
    pub(super) fn is_established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// Synced voters, synced observers, and every learner connected (synced or not).
    pub(super) fn synced_counts(&self) -> (usize, usize, usize) {
        let synced = || self.followers.values().filter(|f| f.stage == Stage::Synced);
        let observers = synced().filter(|f| f.observer).count();
        let learners = self.followers.len();
        (synced().count() - observers, observers, learners)
    }

    /// Followers (not this leader) among `voters` whose handle passes `pred`: the voter set
    /// alone says who counts.
    fn count_voters(&self, voters: &[Sid], pred: impl Fn(&FollowerHandle) -> bool) -> usize {
        self.followers
            .iter()
            .filter(|(s, f)| voters.contains(s) && pred(f))
            .count()
    }

    /// Forgets followers a reconfig removed or whose role it changed (a voter made an
    /// observer or the reverse): they join again in their new role.
    pub(super) fn retain_followers(&mut self, voters: &[Sid], observers: &[Sid]) {
        self.followers.retain(|s, f| {
            if f.observer {
                observers.contains(s)
            } else {
                voters.contains(s)
            }
        });
        let followers = &self.followers;
        self.ack_newleader.retain(|s| followers.contains_key(s));
    }

    /// Followers synced and serving.
    fn synced(&self) -> BTreeSet<Sid> {
        self.followers
            .iter()
            .filter(|(_, f)| f.stage == Stage::Synced)
            .map(|(s, _)| *s)
            .collect()
    }

    fn stage_of(&self, sid: Sid) -> Option<Stage> {
        self.followers.get(&sid).map(|f| f.stage)
    }

    /// Followers and observers that get every broadcast from now on.
    fn forwarding(&self) -> Vec<Sid> {
        self.forwarding_where(|_| true)
    }

    /// Voters that get proposals and commits.
    fn forwarding_voters(&self) -> Vec<Sid> {
        self.forwarding_where(|f| !f.observer)
    }

    /// Observers that get committed txns.
    fn forwarding_observers(&self) -> Vec<Sid> {
        self.forwarding_where(|f| f.observer)
    }

    fn forwarding_where(&self, pred: impl Fn(&FollowerHandle) -> bool) -> Vec<Sid> {
        self.followers
            .iter()
            .filter(|(_, f)| matches!(f.stage, Stage::Syncing | Stage::Synced) && pred(f))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Observers that acknowledged the epoch and wait for the leader to be established.
    fn waiting_observers(&self) -> Vec<(Sid, Zxid)> {
        self.followers
            .iter()
            .filter_map(|(s, f)| match f.stage {
                Stage::EpochAcked { last_zxid } if f.observer => Some((*s, last_zxid)),
                _ => None,
            })
            .collect()
    }
}

impl QuorumPeer {
    fn leader(&mut self) -> &mut LeaderRole {
        match &mut self.role {
            Role::Leading(l) => l,
            _ => unreachable!("leader handler called outside the leader role"),
        }
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leading(LeaderRole {
            phase: Phase::Discovery,
            started: self.now,
            epoch: None,
            counter: 0,
            followers: BTreeMap::new(),
            self_accepted: false,
            current_requested: false,
            self_current: false,
            ack_newleader: BTreeSet::new(),
            proposals: BTreeMap::new(),
            last_ping: self.now,
        });
        self.leader_try_choose_epoch();
    }

    pub(super) fn leader_on_message(&mut self, from: Sid, msg: ZabMessage) {
        let now = self.now;
        if let Some(f) = self.leader().followers.get_mut(&from) {
            f.last_heard = now;
        }
        match msg {
            ZabMessage::FollowerInfo { .. }
                if !self.voters.contains(&from) && !self.observers.contains(&from) =>
            {
                tracing::info!(
                    me = self.me,
                    from,
                    "a server that is neither a voter nor an observer may not follow"
                );
            }
            ZabMessage::FollowerInfo {
                accepted_epoch,
                last_zxid: _,
            } => {
                let observer = !self.is_voter(from);
                if let Some(epoch) = self
                    .leader()
                    .epoch
                    .filter(|e| accepted_epoch > *e && !observer)
                {
                    // The follower promised a newer epoch (to a leader that failed to
                    // establish it) and will never follow this one: only a new discovery,
                    // which chooses an epoch above every promise it hears, can take it back.
                    tracing::warn!(
                        me = self.me,
                        follower = from,
                        accepted_epoch,
                        epoch,
                        "follower accepted a newer epoch than this leader's; leader steps down"
                    );
                    self.look();
                    return;
                }
                self.leader().followers.insert(
                    from,
                    FollowerHandle {
                        stage: Stage::Info,
                        observer,
                        accepted_epoch,
                        last_heard: now,
                    },
                );
                self.leader().ack_newleader.remove(&from);
                match self.leader().epoch {
                    Some(epoch) => self.send(from, ZabMessage::LeaderInfo { new_epoch: epoch }),
                    None => self.leader_try_choose_epoch(),
                }
            }
            ZabMessage::AckEpoch {
                current_epoch,
                last_zxid,
            } => self.leader_on_ack_epoch(from, current_epoch, last_zxid),
            ZabMessage::AckNewLeader { epoch } => self.leader_on_ack_newleader(from, epoch),
            ZabMessage::Ack(zxid) => {
                if self.leader().forwarding_voters().contains(&from) {
                    self.leader_record_ack(from, zxid);
                }
            }
            ZabMessage::Request { request_id, body } => {
                // Only a synced follower serves clients; anything else forwarding writes is
                // not following this leader.
                if self.leader().stage_of(from) == Some(Stage::Synced) {
                    self.leader_propose(from, request_id, body);
                } else {
                    tracing::warn!(
                        me = self.me,
                        from,
                        "write forwarded by an unsynced peer ignored"
                    );
                }
            }
            ZabMessage::PingReply => {}
            other => {
                tracing::debug!(
                    me = self.me,
                    from,
                    ?other,
                    "leader ignores unexpected message"
                );
            }
        }
    }

    fn leader_try_choose_epoch(&mut self) {
        let accepted = self.accepted_epoch;
        let voters = self.voters.clone();
        let leader = self.leader();
        if leader.epoch.is_some() {
            return;
        }
        let infos = leader.count_voters(&voters, |_| true) + 1;
        let max_accepted = leader
            .followers
            .values()
            .filter(|f| !f.observer)
            .map(|f| f.accepted_epoch)
            .max()
            .unwrap_or(0)
            .max(accepted);
        if !self.quorum(infos) {
            return;
        }
        let Some(epoch) = max_accepted.checked_add(1) else {
            tracing::error!(
                me = self.me,
                "the epoch space is exhausted; leader steps down"
            );
            self.look();
            return;
        };
        let leader = self.leader();
        leader.epoch = Some(epoch);
        leader.phase = Phase::Sync;
        let targets: Vec<Sid> = leader.followers.keys().copied().collect();
        tracing::info!(me = self.me, epoch, "leader proposes a new epoch");
        self.accepted_epoch = epoch;
        self.persist(
            StorageOp::AcceptedEpoch(epoch),
            Some(PersistToken::AcceptedEpoch(epoch)),
        );
        for to in targets {
            self.send(to, ZabMessage::LeaderInfo { new_epoch: epoch });
        }
    }

    fn leader_on_ack_epoch(&mut self, from: Sid, current_epoch: u32, last_zxid: Zxid) {
        let (my_epoch, my_last) = (self.current_epoch, self.log.last());
        let Some(f) = self.leader().followers.get_mut(&from) else {
            return;
        };
        if f.stage != Stage::Info {
            return;
        }
        // An observer's history comes from established leaders only, never counted: it cannot
        // hold a commit this leader lacks, and whatever it holds past this log is truncated.
        if !f.observer && (current_epoch, last_zxid) > (my_epoch, my_last) {
            tracing::warn!(
                me = self.me,
                follower = from,
                "follower is ahead of the leader ({current_epoch}, {last_zxid}) > ({my_epoch}, {my_last}); abandoning leadership"
            );
            self.look();
            return;
        }
        f.stage = Stage::EpochAcked { last_zxid };
        if self.leader_may_sync(from) {
            self.leader_sync(from, last_zxid);
        } else {
            self.leader_try_start_sync();
        }
    }

    /// A voter is synced once the leader writes currentEpoch; an observer once established.
    fn leader_may_sync(&mut self, sid: Sid) -> bool {
        let leader = self.leader();
        match leader.followers.get(&sid) {
            Some(f) if f.observer => leader.phase == Phase::Broadcast,
            Some(_) => leader.current_requested,
            None => false,
        }
    }

    /// Once a quorum (this leader included) accepted the epoch, write currentEpoch and sync.
    fn leader_try_start_sync(&mut self) {
        let voters = self.voters.clone();
        let leader = self.leader();
        if !leader.self_accepted || leader.current_requested {
            return;
        }
        let acked = leader.count_voters(&voters, |f| !matches!(f.stage, Stage::Info));
        if !self.quorum(acked + 1) {
            return;
        }
        let Some(epoch) = self.leader().epoch else {
            return;
        };
        self.persist(
            StorageOp::CurrentEpoch(epoch),
            Some(PersistToken::CurrentEpoch(epoch)),
        );
        self.leader().current_requested = true;
        let waiting: Vec<(Sid, Zxid)> = self
            .leader()
            .followers
            .iter()
            .filter_map(|(s, f)| match f.stage {
                Stage::EpochAcked { last_zxid } if !f.observer => Some((*s, last_zxid)),
                _ => None,
            })
            .collect();
        for (to, last_zxid) in waiting {
            self.leader_sync(to, last_zxid);
        }
    }

    /// Chooses DIFF, TRUNC+DIFF or SNAP from the follower's last zxid and sends NEWLEADER.
    fn leader_sync(&mut self, to: Sid, follower_last: Zxid) {
        let Some(epoch) = self.leader().epoch else {
            return;
        };
        match self.log.floor(follower_last) {
            Some(point) => {
                let truncate_to = (point != follower_last).then_some(point);
                let txns = self.log.after(point);
                tracing::info!(
                    me = self.me,
                    follower = to,
                    %follower_last,
                    txns = txns.len(),
                    truncate = ?truncate_to,
                    "syncing follower by {}",
                    if truncate_to.is_some() { "TRUNC+DIFF" } else { "DIFF" }
                );
                self.send(
                    to,
                    ZabMessage::NewLeader {
                        epoch,
                        truncate_to,
                        snapshot: None,
                        txns,
                    },
                );
            }
            None => {
                let txns = self.log.after(self.log.applied());
                tracing::info!(me = self.me, follower = to, %follower_last, "syncing follower by SNAP");
                self.emit(Output::SendSnapshotSync { to, epoch, txns });
            }
        }
        if let Some(f) = self.leader().followers.get_mut(&to) {
            f.stage = Stage::Syncing;
        }
    }

    fn leader_on_ack_newleader(&mut self, from: Sid, epoch: u32) {
        let leader = self.leader();
        if leader.epoch != Some(epoch)
            || leader.followers.get(&from).map(|f| f.stage) != Some(Stage::Syncing)
        {
            return;
        }
        leader.ack_newleader.insert(from);
        if leader.phase == Phase::Broadcast {
            self.leader_up_to_date(from);
        } else {
            self.leader_try_establish();
        }
    }

    fn leader_try_establish(&mut self) {
        let leader = self.leader();
        if leader.phase != Phase::Sync || !leader.self_current {
            return;
        }
        let mut acked = leader.ack_newleader.clone();
        acked.insert(self.me);
        if !(quorum_of(&acked, &self.voters) && self.tail_reconfigs_acked(&acked)) {
            return;
        }
        let now = self.now;
        let leader = self.leader();
        leader.phase = Phase::Broadcast;
        leader.last_ping = now;
        let synced: Vec<Sid> = leader.ack_newleader.iter().copied().collect();
        for f in leader.followers.values_mut() {
            f.last_heard = now;
        }
        // Zab: the new leader's whole initial history is committed once a quorum synced it.
        let last = self.log.last();
        self.log.commit(last);
        self.apply_up_to(last);
        self.established(self.current_epoch);
        tracing::info!(me = self.me, epoch = self.current_epoch, %last, "leader established");
        for to in synced {
            self.leader_up_to_date(to);
        }
        for (to, last_zxid) in self.leader().waiting_observers() {
            self.leader_sync(to, last_zxid);
        }
    }

    fn leader_up_to_date(&mut self, to: Sid) {
        let committed = self.log.committed();
        if let Some(f) = self.leader().followers.get_mut(&to) {
            f.stage = Stage::Synced;
        }
        self.send(to, ZabMessage::UpToDate { committed });
    }

    pub(super) fn leader_on_persisted(&mut self, token: PersistToken) {
        match token {
            PersistToken::AcceptedEpoch(e) if self.leader().epoch == Some(e) => {
                self.leader().self_accepted = true;
                self.leader_try_start_sync();
            }
            PersistToken::CurrentEpoch(e) if self.leader().epoch == Some(e) => {
                self.current_epoch = e;
                self.leader().self_current = true;
                self.leader_try_establish();
            }
            PersistToken::Txns(z) => {
                let me = self.me;
                self.leader_record_ack(me, z);
                self.leader_tell_durable(z);
            }
            _ => {}
        }
    }

    /// Tells the voters that this leader holds every proposal up to `z` on disk, where it and
    /// one follower are a quorum and `z` is not committed yet: each follower then commits what
    /// it also holds on disk without waiting for the COMMIT (see the follower role). Only
    /// when `z` is the last proposal: with more in flight (a busy leader) the message would
    /// cost each follower a wake-up per fsync, and the COMMIT soon follows anyway.
    fn leader_tell_durable(&mut self, z: Zxid) {
        if !self.quorum(2) || self.log.committed() >= z || self.log.last() != z {
            return;
        }
        for to in self.leader().forwarding_voters() {
            self.send(to, ZabMessage::LeaderDurable(z));
        }
    }

    /// Proposes a write as the next zxid of this epoch.
    pub(super) fn leader_propose(&mut self, origin: Sid, request_id: u64, body: Vec<u8>) {
        if let Err(why) = (self.body_check)(&body) {
            tracing::warn!(me = self.me, origin, "write refused before logging: {why}");
            self.leader_refuse(origin, request_id, SubmitError::Refused(why));
            return;
        }
        let synced = || match &self.role {
            Role::Leading(l) => l.synced(),
            _ => BTreeSet::new(),
        };
        let reconfig = match self.admit_reconfig(&body, synced) {
            Ok(r) => r,
            Err(why) => {
                self.leader_refuse(origin, request_id, SubmitError::Refused(why));
                return;
            }
        };
        let leader = self.leader();
        let epoch = match (leader.phase, leader.epoch) {
            (Phase::Broadcast, Some(_)) if leader.counter == u32::MAX => {
                // The zxid counter is spent: a new epoch starts it again (ZooKeeper does the
                // same on rollover).
                tracing::warn!(me = self.me, "zxid counter exhausted; leader steps down");
                self.leader_refuse(origin, request_id, SubmitError::LeaderChanged);
                self.look();
                return;
            }
            (Phase::Broadcast, Some(epoch)) => epoch,
            _ => {
                self.leader_refuse(origin, request_id, SubmitError::NotServing);
                return;
            }
        };
        leader.counter += 1;
        let zxid = Zxid::new(epoch, leader.counter);
        leader.proposals.insert(zxid, BTreeSet::new());
        if let Some(voters) = reconfig {
            self.pending_reconfig = Some((zxid, voters));
        }
        let leader = self.leader();
        let targets = leader.forwarding_voters();
        let txn = Txn {
            zxid,
            origin,
            request_id,
            body,
        };
        self.log.push(txn.clone());
        self.persist(
            StorageOp::Append(vec![txn.clone()]),
            Some(PersistToken::Txns(zxid)),
        );
        for to in targets {
            self.send(to, ZabMessage::Proposal(txn.clone()));
        }
    }

    fn leader_refuse(&mut self, origin: Sid, request_id: u64, why: SubmitError) {
        if origin == self.me {
            self.complete(request_id, Err(why));
        } else {
            self.send(
                origin,
                ZabMessage::RequestFailed {
                    request_id,
                    reason: why.to_string(),
                },
            );
        }
    }

    /// Records that `from` has every proposal up to `zxid` on disk; commits what a quorum
    /// including this leader holds, strictly in zxid order.
    fn leader_record_ack(&mut self, from: Sid, zxid: Zxid) {
        let me = self.me;
        let leader = self.leader();
        for (_, acks) in leader.proposals.range_mut(..=zxid) {
            acks.insert(from);
        }
        let mut last_committed = None;
        loop {
            let leader = self.leader();
            let Some((&z, acks)) = leader.proposals.iter().next() else {
                break;
            };
            let acks = acks.clone();
            if !(acks.contains(&me) && self.commit_quorum(z, &acks)) {
                break;
            }
            self.leader().proposals.remove(&z);
            last_committed = Some(z);
        }
        if let Some(z) = last_committed {
            let before = self.log.committed();
            self.log.commit(z);
            for to in self.leader().forwarding_voters() {
                self.send(to, ZabMessage::Commit(z));
            }
            self.leader_inform(before, z);
            self.apply_up_to(z);
        }
    }

    /// Sends observers the txns committed above `from` up to `to`.
    fn leader_inform(&mut self, from: Zxid, to: Zxid) {
        let observers = self.leader().forwarding_observers();
        if observers.is_empty() {
            return;
        }
        for txn in self.log.between(from, to) {
            for &o in &observers {
                self.send(o, ZabMessage::Inform(txn.clone()));
            }
        }
    }

    pub(super) fn leader_on_tick(&mut self) {
        let now = self.now;
        let init = self.ticks_ms(self.timing.init_limit);
        let sync = self.ticks_ms(self.timing.sync_limit);
        let half_tick = self.timing.tick_ms / 2;
        let me = self.me;
        let voters = self.voters.clone();
        let leader = self.leader();
        if leader.phase != Phase::Broadcast {
            if now.saturating_sub(leader.started) > init {
                tracing::warn!(
                    me = self.me,
                    "no quorum synced within initLimit; leader steps down"
                );
                self.look();
            }
            return;
        }
        let stale: Vec<Sid> = leader
            .followers
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.last_heard) > sync)
            .map(|(s, _)| *s)
            .collect();
        for s in &stale {
            tracing::warn!(me, follower = s, "follower silent for syncLimit; dropped");
            leader.followers.remove(s);
            leader.ack_newleader.remove(s);
        }
        let alive = leader.count_voters(&voters, |f| f.stage == Stage::Synced) + 1;
        if !self.quorum(alive) {
            tracing::warn!(me = self.me, "lost the quorum; leader steps down");
            self.look();
            return;
        }
        let leader = self.leader();
        if now.saturating_sub(leader.last_ping) >= half_tick {
            leader.last_ping = now;
            let committed = self.log.committed();
            for to in self.leader().forwarding() {
                self.send(to, ZabMessage::Ping { committed });
            }
        }
    }

    pub(super) fn leader_on_disconnected(&mut self, sid: Sid) {
        let leader = self.leader();
        if leader.followers.remove(&sid).is_some() {
            leader.ack_newleader.remove(&sid);
            tracing::info!(me = self.me, follower = sid, "follower link closed");
        }
    }
}
