//! The invariants checked after every step, and at the end of a run.

use super::{Membership, Node, Sim, SimReport};
use ensemble_actors::zab::StorageOp;
use ensemble_messages::{ServerState, Sid, Zxid};

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

    pub(super) fn final_checks(self) -> Result<SimReport, String> {
        for (body, zxid) in &self.acked {
            let found = self.canonical.iter().find(|(z, _)| z == zxid);
            if found.map(|(_, b)| b) != Some(body) {
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
            n.disk.snapshot.iter().any(|(z, _)| *z == zxid)
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
        history: &[(Zxid, Vec<u8>)],
        from: usize,
    ) -> Result<(), String> {
        for (i, entry) in history.iter().enumerate().skip(from) {
            match self.canonical.get(i) {
                Some(c) if c == entry => {}
                Some(c) => {
                    return Err(format!(
                        "node {id} applied {} ({}) at position {i} where another server applied {} ({})",
                        entry.0,
                        String::from_utf8_lossy(&entry.1),
                        c.0,
                        String::from_utf8_lossy(&c.1)
                    ))
                }
                None => {
                    let holding = self.voters_holding(entry.0);
                    if holding <= self.cfg.nodes / 2 {
                        return Err(format!(
                            "node {id} applied {} first, but only {holding} of {} voters hold it\n{}",
                            entry.0,
                            self.cfg.nodes,
                            self.describe()
                        ));
                    }
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
