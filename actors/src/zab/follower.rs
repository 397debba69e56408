//! The follower role: join the leader, sync, then log, ack and apply its proposals.
//!
//! An observer plays this role too, but never acks: it logs and applies the committed txns
//! its leader informs it of.

use super::peer::{QuorumPeer, Role};
use super::types::SubmitError;
use crate::storage::{PersistToken, StorageOp};
use ensemble_messages::{Sid, Snapshot, Txn, ZabMessage, Zxid};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    AwaitLeaderInfo,
    /// Writing the accepted epoch before ACKEPOCH.
    PersistingEpoch(u32),
    /// ACKEPOCH sent; waiting for NEWLEADER.
    AwaitNewLeader(u32),
    /// Writing the synced history, then currentEpoch, before acking NEWLEADER.
    PersistingSync(u32),
    /// NEWLEADER acked; waiting for UPTODATE.
    AwaitUpToDate(u32),
    /// Serving.
    Broadcast(u32),
}

/// State of the follower role.
pub(super) struct FollowerRole {
    pub(super) leader: Sid,
    phase: Phase,
    started: u64,
    last_heard: u64,
    /// Highest commit point the leader announced.
    commit_target: Zxid,
    /// Highest zxid the leader said it holds on disk (LEADERDURABLE).
    leader_durable: Zxid,
}

impl FollowerRole {
    pub(super) fn is_serving(&self) -> bool {
        matches!(self.phase, Phase::Broadcast(_))
    }

    /// The epoch of the leader once known, for proposal checks.
    fn epoch(&self) -> Option<u32> {
        match self.phase {
            Phase::PersistingSync(e) | Phase::AwaitUpToDate(e) | Phase::Broadcast(e) => Some(e),
            _ => None,
        }
    }

    /// Whether NEWLEADER was acked, so proposals may be acked.
    fn acks_allowed(&self) -> bool {
        matches!(self.phase, Phase::AwaitUpToDate(_) | Phase::Broadcast(_))
    }
}

impl QuorumPeer {
    fn follower(&mut self) -> &mut FollowerRole {
        match &mut self.role {
            Role::Following(f) => f,
            _ => unreachable!("follower handler called outside the follower role"),
        }
    }

    pub(super) fn become_follower(&mut self, leader: Sid) {
        self.role = Role::Following(FollowerRole {
            leader,
            phase: Phase::AwaitLeaderInfo,
            started: self.now,
            last_heard: self.now,
            commit_target: self.log.committed(),
            leader_durable: Zxid::ZERO,
        });
        self.follower_send_info();
    }

    fn follower_send_info(&mut self) {
        let leader = self.follower().leader;
        let msg = ZabMessage::FollowerInfo {
            accepted_epoch: self.accepted_epoch,
            last_zxid: self.log.last(),
        };
        self.send(leader, msg);
    }

    pub(super) fn follower_on_connected(&mut self, sid: Sid) {
        let f = self.follower();
        if f.leader == sid && f.phase == Phase::AwaitLeaderInfo {
            self.follower_send_info();
        }
    }

    pub(super) fn follower_on_message(&mut self, from: Sid, msg: ZabMessage) {
        let now = self.now;
        let f = self.follower();
        if from != f.leader {
            return;
        }
        f.last_heard = now;
        let phase = f.phase;
        match (msg, phase) {
            (ZabMessage::LeaderInfo { new_epoch }, Phase::AwaitLeaderInfo) => {
                self.follower_on_leader_info(new_epoch)
            }
            (
                ZabMessage::NewLeader {
                    epoch,
                    truncate_to,
                    snapshot,
                    txns,
                },
                Phase::AwaitNewLeader(expected),
            ) if epoch == expected => self.follower_sync(epoch, truncate_to, snapshot, txns),
            (ZabMessage::UpToDate { committed }, Phase::AwaitUpToDate(e)) => {
                self.follower().phase = Phase::Broadcast(e);
                self.established(e);
                tracing::info!(
                    me = self.me,
                    leader = from,
                    epoch = e,
                    "follower synced and serving"
                );
                self.follower_commit(committed);
            }
            (ZabMessage::Inform(txn), _) if self.is_observer() => self.observer_on_inform(txn),
            (ZabMessage::Proposal(txn), _) => self.follower_on_proposal(txn),
            // The leader forwards proposals and commits to a follower from NEWLEADER on, so
            // a commit may arrive while the synced history is still being written.
            (ZabMessage::Commit(z), _) if self.follower().epoch().is_some() => {
                self.follower_commit(z)
            }
            (ZabMessage::Ping { committed }, Phase::Broadcast(_)) => {
                self.send(from, ZabMessage::PingReply);
                self.follower_commit(committed);
            }
            (ZabMessage::LeaderDurable(z), Phase::Broadcast(_)) => {
                let f = self.follower();
                f.leader_durable = f.leader_durable.max(z);
                self.follower_commit_durable();
            }
            (ZabMessage::RequestFailed { request_id, reason }, _) => {
                self.complete(request_id, Err(SubmitError::Refused(reason)))
            }
            (ZabMessage::LeaderInfo { .. }, _)
            | (ZabMessage::Ping { .. }, _)
            | (ZabMessage::LeaderDurable(_), _) => {}
            (other, phase) => {
                tracing::warn!(
                    me = self.me,
                    ?phase,
                    ?other,
                    "unexpected message from the leader; looking"
                );
                self.look();
            }
        }
    }

    fn follower_on_leader_info(&mut self, new_epoch: u32) {
        // An observer never acks, so its accepted epoch promises nothing: it takes the
        // leader's epoch, even an older one, rather than stay out until the next election.
        if new_epoch < self.accepted_epoch && !self.is_observer() {
            tracing::warn!(
                me = self.me,
                new_epoch,
                accepted = self.accepted_epoch,
                "leader proposes an epoch older than the one accepted; looking"
            );
            self.look();
        } else if new_epoch != self.accepted_epoch {
            self.accepted_epoch = new_epoch;
            self.follower().phase = Phase::PersistingEpoch(new_epoch);
            self.persist(
                StorageOp::AcceptedEpoch(new_epoch),
                Some(PersistToken::AcceptedEpoch(new_epoch)),
            );
        } else {
            self.follower_ack_epoch(new_epoch);
        }
    }

    fn follower_ack_epoch(&mut self, epoch: u32) {
        self.follower().phase = Phase::AwaitNewLeader(epoch);
        let leader = self.follower().leader;
        let msg = ZabMessage::AckEpoch {
            current_epoch: self.current_epoch,
            last_zxid: self.log.last(),
        };
        self.send(leader, msg);
    }

    /// NEWLEADER: truncate or install, append, and write currentEpoch; ack once all is durable.
    fn follower_sync(
        &mut self,
        epoch: u32,
        truncate_to: Option<Zxid>,
        snapshot: Option<Snapshot>,
        txns: Vec<Txn>,
    ) {
        if let Some(snapshot) = snapshot {
            self.install_snapshot(snapshot);
        }
        if let Some(z) = truncate_to {
            self.log.truncate(z);
            self.persisted = self.persisted.min(self.log.last());
            self.persist(StorageOp::Truncate(self.log.last()), None);
        }
        let fresh: Vec<Txn> = txns
            .into_iter()
            .filter(|t| t.zxid > self.log.last())
            .collect();
        if let Some(last) = fresh.last().map(|t| t.zxid) {
            for t in &fresh {
                self.log.push(t.clone());
            }
            self.persist(StorageOp::Append(fresh), Some(PersistToken::Txns(last)));
        }
        self.follower().phase = Phase::PersistingSync(epoch);
        self.persist(
            StorageOp::CurrentEpoch(epoch),
            Some(PersistToken::CurrentEpoch(epoch)),
        );
    }

    fn follower_on_proposal(&mut self, txn: Txn) {
        let Some(epoch) = self.follower().epoch() else {
            tracing::warn!(me = self.me, zxid = %txn.zxid, "proposal before sync; looking");
            self.look();
            return;
        };
        let last = self.log.last();
        if txn.zxid.epoch() < epoch || txn.zxid <= last {
            tracing::debug!(me = self.me, zxid = %txn.zxid, "stale or duplicate proposal ignored");
            return;
        }
        let expected = if last.epoch() == epoch {
            Zxid::new(epoch, last.counter() + 1)
        } else {
            Zxid::new(epoch, 1)
        };
        if txn.zxid != expected {
            tracing::warn!(me = self.me, got = %txn.zxid, %expected, "proposal out of order; looking");
            self.look();
            return;
        }
        let zxid = txn.zxid;
        self.log.push(txn.clone());
        self.persist(StorageOp::Append(vec![txn]), Some(PersistToken::Txns(zxid)));
    }

    pub(super) fn follower_on_persisted(&mut self, token: PersistToken) {
        let phase = self.follower().phase;
        match (token, phase) {
            (PersistToken::AcceptedEpoch(e), Phase::PersistingEpoch(p)) if e == p => {
                self.follower_ack_epoch(e)
            }
            (PersistToken::CurrentEpoch(e), Phase::PersistingSync(p)) if e == p => {
                self.current_epoch = e;
                self.follower().phase = Phase::AwaitUpToDate(e);
                let leader = self.follower().leader;
                self.send(leader, ZabMessage::AckNewLeader { epoch: e });
            }
            (PersistToken::Txns(z), _) if self.follower().acks_allowed() => {
                if !self.is_observer() {
                    let leader = self.follower().leader;
                    self.send(leader, ZabMessage::Ack(z));
                }
                let target = self.follower().commit_target;
                self.apply_up_to(target.min(self.persisted));
                self.follower_commit_durable();
            }
            _ => {}
        }
    }

    /// Where this follower and its leader are a quorum (at most three voters), a txn both
    /// hold on disk is committed: Zab commits what a quorum has logged, and any later leader
    /// holds it. The follower then commits it on its own, a round trip (its ACK, the leader's
    /// COMMIT) sooner. Not past a reconfig, whose commit needs the quorums of two configs:
    /// that one waits for the leader's COMMIT, which also brings the new voters.
    fn follower_commit_durable(&mut self) {
        if !self.follower().is_serving() || self.is_observer() || !self.quorum(2) {
            return;
        }
        let on_both = self
            .follower()
            .leader_durable
            .min(self.persisted)
            .min(self.log.last());
        let target = self.last_before_reconfig(on_both);
        if target > self.follower().commit_target {
            self.follower_commit(target);
        }
    }

    /// The last uncommitted txn at or below `limit` with no reconfig at or before it (the
    /// commit point if there is none).
    fn last_before_reconfig(&self, limit: Zxid) -> Zxid {
        let mut last = self.log.committed();
        for t in self.log.iter_after(last) {
            if t.zxid > limit || (self.membership_of)(&t.body).is_some() {
                break;
            }
            last = t.zxid;
        }
        last
    }

    /// A committed txn for an observer: logged unless the sync already brought it, then
    /// committed (once synced; UPTODATE carries the commit point of earlier ones).
    fn observer_on_inform(&mut self, txn: Txn) {
        let zxid = txn.zxid;
        if zxid > self.log.last() {
            self.follower_on_proposal(txn);
            if !matches!(self.role, Role::Following(_)) {
                return;
            }
        }
        if self.follower().acks_allowed() {
            self.follower_commit(zxid);
        }
    }

    fn follower_commit(&mut self, zxid: Zxid) {
        if zxid > self.log.last() {
            tracing::warn!(me = self.me, %zxid, last = %self.log.last(), "commit beyond the log; looking");
            self.look();
            return;
        }
        let f = self.follower();
        f.commit_target = f.commit_target.max(zxid);
        let target = f.commit_target;
        self.log.commit(target);
        self.apply_up_to(target.min(self.persisted));
    }

    pub(super) fn follower_forward(&mut self, request_id: u64, body: Vec<u8>) {
        if self.follower().is_serving() {
            let leader = self.follower().leader;
            self.send(leader, ZabMessage::Request { request_id, body });
        } else {
            self.complete(request_id, Err(SubmitError::NotServing));
        }
    }

    pub(super) fn follower_on_tick(&mut self) {
        let now = self.now;
        let init = self.ticks_ms(self.timing.init_limit);
        let sync = self.ticks_ms(self.timing.sync_limit);
        let me = self.me;
        let f = self.follower();
        if f.is_serving() {
            if now.saturating_sub(f.last_heard) > sync {
                tracing::warn!(
                    me,
                    leader = f.leader,
                    "leader silent for syncLimit; looking"
                );
                self.look();
            }
        } else if now.saturating_sub(f.started) > init {
            tracing::warn!(
                me,
                leader = f.leader,
                "not synced within initLimit; looking"
            );
            self.look();
        } else if f.phase == Phase::AwaitLeaderInfo {
            self.follower_send_info();
        }
    }
}
