//! The invariants checked after every step, and at the end of a run.

use super::clients::{Heard, Life};
use super::membership::membership_after;
use super::{Membership, Node, Sim, SimReport};
use ensemble_actors::data_tree::{TreeOp, TreeTxn};
use ensemble_actors::storage::StorageOp;
use ensemble_messages::codec::decode;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{ServerState, Sid, Txn, Zxid};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

impl Sim {
    pub(super) fn established_leader(&self) -> Option<Sid> {
        let voters = self.voters();
        let members = || {
            self.nodes
                .iter()
                .filter(|(id, _)| voters.contains(id))
                .map(|(_, n)| n)
        };
        let mut leaders = self.nodes.iter().filter_map(|(id, n)| {
            let s = n.core.as_ref()?.status();
            (s.state == ServerState::Leading && s.serving).then_some(*id)
        });
        let l = leaders.next()?;
        let followers = members()
            .filter(|n| n.core.as_ref().is_some_and(|c| c.status().serving))
            .count();
        (followers == voters.len()).then_some(l)
    }

    pub(super) fn converged(&self) -> bool {
        let voters = self.voters();
        let mut histories = self
            .nodes
            .iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, n)| &n.applied);
        let first = histories.next();
        first.is_some_and(|f| histories.all(|h| h == f) && f.len() == self.canonical.len())
    }

    /// Whether the servers a reconfig removed stopped leading, following and observing (one
    /// that missed the commit stops once its leader's silence passes syncLimit).
    pub(super) fn removed_are_out(&self) -> bool {
        let Membership {
            voters, observers, ..
        } = self.membership();
        self.nodes.iter().all(|(id, n)| {
            voters.contains(id)
                || observers.contains(id)
                || !n.core.as_ref().is_some_and(|c| c.status().serving)
        })
    }

    /// Zab's commit rule, checked where a server applies: each txn is on the disks (log or
    /// snapshot, fsynced or kept by a crash) of a quorum of the voters of the config it
    /// applies under (the config before it, as the server's history has it).
    pub(super) fn check_quorum_durable(&self, id: Sid, txns: &[Txn]) -> Result<(), String> {
        let mut membership = self.nodes[&id].membership.clone();
        for t in txns {
            let holders = membership
                .voters
                .iter()
                .filter(|v| self.nodes.get(v).is_some_and(|n| n.disk.holds(t.zxid)))
                .count();
            if 2 * holders <= membership.voters.len() {
                return Err(format!(
                    "node {id} applied {} held on the disks of {holders} of the voters {:?}",
                    t.zxid, membership.voters
                ));
            }
            membership = membership_after(membership, std::slice::from_ref(t));
        }
        Ok(())
    }

    pub(super) fn final_checks(self) -> Result<SimReport, String> {
        for (body, zxid) in &self.acked {
            let found = self.canonical.iter().find(|t| t.zxid == *zxid);
            if found.map(|t| &t.body) != Some(body) {
                return Err(format!(
                    "acknowledged write {} at {zxid} is missing from the final history",
                    String::from_utf8_lossy(body)
                ));
            }
        }
        Ok(SimReport {
            acked: self.acked.len(),
            committed: self.canonical.len(),
            leaders: self.leaders.len(),
            crashes: self.crashes,
        })
    }

    /// How many voters hold `zxid` on disk or queued for it.
    pub(super) fn voters_holding(&self, zxid: Zxid) -> usize {
        let holds = |n: &Node| {
            n.disk.snapshot.iter().any(|t| t.zxid == zxid)
                || n.disk.log.iter().any(|t| t.zxid == zxid)
                || n.unsynced.iter().any(
                    |(op, _)| matches!(op, StorageOp::Append(ts) if ts.iter().any(|t| t.zxid == zxid)),
                )
        };
        self.voters()
            .iter()
            .filter(|v| self.nodes.get(v).is_some_and(holds))
            .count()
    }

    /// Every observer's applied history is a prefix of the newest established leader's
    /// (histories are already prefixes of one canonical history, so lengths tell).
    pub(super) fn check_observers(&self) -> Result<(), String> {
        let newest = self
            .nodes
            .iter()
            .filter_map(|(id, n)| {
                let s = n.core.as_ref()?.status();
                (s.state == ServerState::Leading && s.serving).then_some((s.current_epoch, *id))
            })
            .max();
        // A leader that has not noticed yet that a newer one replaced it is no reference.
        let newest_ever = self.leaders.keys().next_back().copied();
        let Some((_, leader)) = newest.filter(|(epoch, _)| Some(*epoch) == newest_ever) else {
            return Ok(());
        };
        let led = self.nodes[&leader].applied.len();
        for o in self.observers() {
            let n = &self.nodes[&o];
            if n.core.is_some() && n.applied.len() > led {
                return Err(format!(
                    "observer {o} applied {} txns, beyond leader {leader}'s {led}\n{}",
                    n.applied.len(),
                    self.describe()
                ));
            }
        }
        Ok(())
    }

    /// Checks `history[from..]` against the canonical history, extending it.
    pub(super) fn check_history(
        &mut self,
        id: Sid,
        history: &[Txn],
        from: usize,
    ) -> Result<(), String> {
        for (i, entry) in history.iter().enumerate().skip(from) {
            match self.canonical.get(i) {
                Some(c) if c == entry => {}
                Some(c) => {
                    return Err(format!(
                        "node {id} applied {} ({}) at position {i} where another server applied {} ({})",
                        entry.zxid,
                        String::from_utf8_lossy(&entry.body),
                        c.zxid,
                        String::from_utf8_lossy(&c.body)
                    ))
                }
                None => {
                    let holding = self.voters_holding(entry.zxid);
                    if holding <= self.cfg.nodes / 2 {
                        return Err(format!(
                            "node {id} applied {} first, but only {holding} of {} voters hold it\n{}",
                            entry.zxid,
                            self.cfg.nodes,
                            self.describe()
                        ));
                    }
                    self.note_committed(entry);
                    self.canonical.push(entry.clone())
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_leaders(&mut self) -> Result<(), String> {
        for (id, n) in &self.nodes {
            let Some(core) = &n.core else { continue };
            let s = core.status();
            if s.state == ServerState::Leading && s.serving {
                let prev = *self.leaders.entry(s.current_epoch).or_insert(*id);
                if prev != *id {
                    return Err(format!(
                        "two leaders established in epoch {}: {prev} and {id}",
                        s.current_epoch
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How long after its deadline a session of a client that is gone may still be open: two
/// ticks of bucket rounding and checks, and a commit.
const EXPIRY_SLACK_MS: u64 = 500;

impl Sim {
    /// A txn joined the committed history: notes the sessions it opened or closed.
    pub(super) fn note_committed(&mut self, txn: &Txn) {
        let Ok(t) = decode::<TreeTxn>(&txn.body) else {
            return;
        };
        match t.op {
            TreeOp::CreateSession { .. } => {
                self.session_born.entry(t.session_id).or_insert(self.now);
            }
            TreeOp::CloseSession | TreeOp::ExpireSession => {
                // A close through a server the session moved away from closes nothing.
                let owner = self.canonical_owner(t.session_id);
                if matches!(t.op, TreeOp::ExpireSession) || owner == Some(txn.origin) {
                    self.sessions_closed.insert(t.session_id);
                }
            }
            _ => {}
        }
        let mut tree = self.trees.values().next_back().cloned().unwrap_or_default();
        tree.apply(txn);
        self.trees.insert(txn.zxid, tree);
    }

    /// The server the committed history last gave the session to.
    fn canonical_owner(&self, session: SessionId) -> Option<Sid> {
        self.trees
            .values()
            .next_back()
            .and_then(|t| t.session_owner(session))
    }

    /// Server `id`'s live sessions, from its whole applied `history`.
    pub(super) fn reset_lives(&mut self, id: Sid, history: &[Txn]) {
        self.lives.insert(id, BTreeMap::new());
        for t in history {
            self.note_session_txn(id, t);
        }
    }

    /// Server `id` applied `txn`: the model of its live sessions follows, independently of the
    /// tree (a session lives from its createSession to a closeSession through the server
    /// that owns it, or to its expiry).
    pub(super) fn note_session_txn(&mut self, id: Sid, txn: &Txn) {
        let Ok(t) = decode::<TreeTxn>(&txn.body) else {
            return;
        };
        let lives = self.lives.entry(id).or_default();
        let s = t.session_id;
        match t.op {
            TreeOp::CreateSession { .. } => {
                lives.insert(s, txn.origin);
            }
            TreeOp::MoveSession => {
                if let Some(owner) = lives.get_mut(&s) {
                    *owner = txn.origin;
                }
            }
            TreeOp::ExpireSession => {
                lives.remove(&s);
            }
            TreeOp::CloseSession if lives.get(&s) == Some(&txn.origin) => {
                lives.remove(&s);
            }
            _ => {}
        }
    }

    /// Server `id`'s tree against its history: the same sessions live, every ephemeral owned
    /// by a live session, and the same tree as the committed one at that zxid.
    pub(super) fn check_tree(&self, id: Sid) -> Result<(), String> {
        let Some(tree) = self
            .nodes
            .get(&id)
            .and_then(|n| n.front.as_ref())
            .map(|f| &f.tree)
        else {
            return Ok(());
        };
        let empty = BTreeMap::new();
        let lives = self.lives.get(&id).unwrap_or(&empty);
        let in_tree: BTreeSet<SessionId> = tree.sessions().map(|(s, _)| s).collect();
        let in_history: BTreeSet<SessionId> = lives.keys().copied().collect();
        if in_tree != in_history {
            return Err(format!(
                "node {id} at {}: the tree's sessions {in_tree:x?} are not those its history leaves open {in_history:x?}",
                tree.last_applied()
            ));
        }
        for path in &self.ephemeral_paths {
            let Some(stat) = tree.stat(path) else {
                continue;
            };
            let owner = SessionId(stat.ephemeral_owner);
            if !lives.contains_key(&owner) || !tree.ephemerals(owner).contains(path) {
                return Err(format!(
                    "node {id} at {}: ephemeral {path} of session {owner}, which its history does not leave open",
                    tree.last_applied()
                ));
            }
        }
        match self.trees.get(&tree.last_applied()) {
            Some(t) if t != tree => Err(format!(
                "node {id}'s tree at {} differs from the committed one",
                tree.last_applied()
            )),
            _ => Ok(()),
        }
    }

    /// Leader `leader` is about to expire `session`: an error if its client, connected to a
    /// server that follows this leader, heard from servers serving under this leader at least
    /// every half timeout over the whole last timeout while no peer message was lost or late.
    pub(super) fn check_expiry_allowed(
        &self,
        leader: Sid,
        session: SessionId,
    ) -> Result<(), String> {
        let Some((c, client)) = self
            .clients
            .iter()
            .enumerate()
            .find(|(_, c)| c.session == session && c.life == Life::Live)
        else {
            return Ok(());
        };
        let follows = client.conn.as_ref().is_some_and(|k| {
            let status = self.nodes[&k.server].core.as_ref().map(|c| c.status());
            status.is_some_and(|s| s.serving && s.leader == Some(leader))
        });
        if !follows {
            return Ok(());
        }
        let t = client.timeout_ms;
        let since = self.now.saturating_sub(t);
        if self.last_disturbance >= since || !heard_throughout(&client.heard, leader, self.now, t) {
            return Ok(());
        }
        Err(format!(
            "session {session} of client {c} expires at {} though its client heard from a server at least every {} ms of its {t} ms timeout\n{}",
            self.now,
            t / 2,
            self.describe()
        ))
    }

    /// After the faults: whether every session the established leader holds belongs to a
    /// working client; an error if one of a gone client outlived its timeout and a tick bound.
    pub(super) fn sessions_settled(&self) -> Result<bool, String> {
        if self.faults {
            return Ok(false);
        }
        let Some(leader) = self.established_leader() else {
            return Ok(false);
        };
        let Some(front) = self.nodes[&leader].front.as_ref() else {
            return Ok(false);
        };
        let working: BTreeSet<SessionId> = self
            .clients
            .iter()
            .filter(|c| matches!(c.life, Life::Live | Life::Closing))
            .map(|c| c.session)
            .collect();
        let since = self.serving_since.get(&leader).copied().unwrap_or(0);
        let mut settled = true;
        for (session, timeout) in front.tree.sessions() {
            if working.contains(&session) {
                continue;
            }
            settled = false;
            let born = self.session_born.get(&session).copied().unwrap_or(0);
            let start = born.max(since).max(self.fault_end);
            let bound = start + timeout.max(0) as u64 + EXPIRY_SLACK_MS;
            if self.now > bound {
                return Err(format!(
                    "session {session} of a client that is gone is still open at {} (bound {bound})\n{}",
                    self.now,
                    self.describe()
                ));
            }
        }
        Ok(settled)
    }
}

/// Whether servers serving under `leader` heard from a client at least every half of its
/// `timeout_ms` over the whole timeout before `now`. Only they report to that leader: a stale
/// follower of an old leader answers pings until it notices, as ZooKeeper's do.
pub(super) fn heard_throughout(
    heard: &VecDeque<Heard>,
    leader: Sid,
    now: u64,
    timeout_ms: u64,
) -> bool {
    let Some(since) = now.checked_sub(timeout_ms) else {
        return false;
    };
    let under = |h: &&Heard| h.leader == Some(leader);
    let times = || heard.iter().filter(under).map(|h| h.at);
    let Some(mut prev) = times().rev().find(|at| *at <= since) else {
        return false;
    };
    for at in times().filter(|at| *at > since).chain([now]) {
        if at - prev > timeout_ms / 2 {
            return false;
        }
        prev = at;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(at: u64, leader: Sid) -> Heard {
        Heard {
            at,
            leader: Some(leader),
        }
    }

    #[test]
    fn a_client_heard_every_half_timeout_under_the_leader_may_not_expire() {
        let regular: VecDeque<Heard> = [0, 100, 200, 300, 400].map(|at| heard(at, 4)).into();
        assert!(
            heard_throughout(&regular, 4, 450, 300),
            "expiry here is an error"
        );
        // Heard by followers of another leader: that leader cannot know.
        assert!(!heard_throughout(&regular, 5, 450, 300));
        // A gap of more than half the timeout.
        let gap: VecDeque<Heard> = [0, 100, 300, 400].map(|at| heard(at, 4)).into();
        assert!(!heard_throughout(&gap, 4, 450, 300));
        // Silent since the last reply for more than half the timeout.
        assert!(!heard_throughout(&regular, 4, 600, 300));
        // Too young a history to cover a whole timeout.
        assert!(!heard_throughout(&regular, 4, 200, 300));
    }
}
