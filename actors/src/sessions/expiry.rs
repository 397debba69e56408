//! Who expires sessions, and when: the policy the session tracker actor runs every half tick.
//!
//! The core mirrors the replicated sessions with their timeouts (fed as txns open and close
//! them), the server's role, and the sessions its clients were active on. Only the
//! established leader tracks deadlines (a new leader gives every replicated session a whole
//! timeout, as ZooKeeper does). A serving follower or observer reports the sessions its
//! clients were active on to the leader, which touches them; a server that is not serving does
//! neither.

use super::SessionTracker;
use crate::data_tree::Applied;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{ServerState, Sid};
use std::collections::{BTreeMap, BTreeSet};

/// The part a server plays in session expiry, from its Zab status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryRole {
    /// The established, serving leader.
    Leader,
    /// A serving follower or observer of this leader.
    Learner {
        /// The leader that tracks the sessions.
        leader: Sid,
    },
    /// Not serving: nothing to track or report.
    Idle,
}

impl ExpiryRole {
    /// The role of a server in `state`, serving or not, that knows `leader`.
    pub fn of(state: ServerState, serving: bool, leader: Option<Sid>) -> Self {
        match (state, serving, leader) {
            (ServerState::Leading, true, _) => ExpiryRole::Leader,
            (ServerState::Following | ServerState::Observing, true, Some(leader)) => {
                ExpiryRole::Learner { leader }
            }
            _ => ExpiryRole::Idle,
        }
    }
}

/// How an applied txn changed the replicated sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// A session was opened (or re-opened) with this timeout in ms.
    Opened(SessionId, i32),
    /// A session was closed or expired.
    Closed(SessionId),
}

impl SessionChange {
    /// The change an applied txn made, if it opened or closed a session.
    pub fn of(applied: &Applied) -> Option<Self> {
        match (applied.opened_session, applied.closed_session) {
            (Some((id, timeout)), _) => Some(SessionChange::Opened(id, timeout)),
            (None, Some(id)) => Some(SessionChange::Closed(id)),
            (None, None) => None,
        }
    }
}

/// What a session check asks of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpiryAction {
    /// Propose closing these sessions (their deadline passed).
    Expire(Vec<SessionId>),
    /// Send these touched sessions to the leader.
    Report {
        /// The leader to tell.
        leader: Sid,
        /// Sessions with client activity since the last report.
        sessions: Vec<SessionId>,
    },
}

/// The expiry policy of one server: the replicated sessions, its role, its clients' recent
/// activity, and a deadline tracker while it leads.
#[derive(Debug, Clone)]
pub struct SessionExpiry {
    tick_ms: u64,
    role: ExpiryRole,
    sessions: BTreeMap<SessionId, i32>,
    touched: BTreeSet<SessionId>,
    tracker: Option<SessionTracker>,
    last_check: u64,
}

impl SessionExpiry {
    /// A policy checked every half `tick_ms`, with deadlines rounded to ticks; it starts idle
    /// and knows no session.
    pub fn new(tick_ms: u64) -> Self {
        SessionExpiry {
            tick_ms,
            role: ExpiryRole::Idle,
            sessions: BTreeMap::new(),
            touched: BTreeSet::new(),
            tracker: None,
            last_check: 0,
        }
    }

    /// The server's role changed. Leaving the lead drops every deadline; taking it gives
    /// every session a whole timeout from the next check.
    pub fn set_role(&mut self, role: ExpiryRole) {
        if role != ExpiryRole::Leader {
            self.tracker = None;
        }
        self.role = role;
    }

    /// Replaces the replicated sessions (at start, after a snapshot, after a restart).
    pub fn reset(&mut self, sessions: impl IntoIterator<Item = (SessionId, i32)>) {
        self.sessions = sessions.into_iter().collect();
    }

    /// An applied txn opened or closed a session.
    pub fn changed(&mut self, change: SessionChange) {
        match change {
            SessionChange::Opened(id, timeout) => {
                self.sessions.insert(id, timeout);
            }
            SessionChange::Closed(id) => {
                self.sessions.remove(&id);
                if let Some(tracker) = self.tracker.as_mut() {
                    tracker.remove(id);
                }
            }
        }
    }

    /// This server's clients were active on `sessions`.
    pub fn touched(&mut self, sessions: impl IntoIterator<Item = SessionId>) {
        self.touched.extend(sessions);
    }

    /// Whether a check is due at `now` (half a tick after the last one).
    pub fn due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_check) >= self.tick_ms / 2
    }

    /// One check at `now`, in the current role: the leader expires the sessions whose
    /// deadline passed, a learner reports its clients' activity.
    pub fn check(&mut self, now: u64) -> Option<ExpiryAction> {
        self.last_check = now;
        let touched = std::mem::take(&mut self.touched);
        match self.role {
            ExpiryRole::Leader => {
                let tracker = self
                    .tracker
                    .get_or_insert_with(|| SessionTracker::new(self.tick_ms));
                tracker.sync_with(self.sessions.iter().map(|(id, t)| (*id, *t)), now);
                for id in touched {
                    tracker.touch_known(id, now);
                }
                let expired = tracker.expire(now);
                (!expired.is_empty()).then_some(ExpiryAction::Expire(expired))
            }
            ExpiryRole::Learner { leader } => (!touched.is_empty()).then(|| ExpiryAction::Report {
                leader,
                sessions: touched.into_iter().collect(),
            }),
            ExpiryRole::Idle => None,
        }
    }

    /// A learner reported activity on `sessions`: touched if this server tracks them.
    pub fn reported(&mut self, sessions: &[SessionId], now: u64) {
        if let Some(tracker) = self.tracker.as_mut() {
            for id in sessions {
                tracker.touch_known(*id, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: SessionId = SessionId(1);
    const S2: SessionId = SessionId(2);

    /// A core in `role` that knows `sessions`.
    fn expiry(role: ExpiryRole, sessions: &[(SessionId, i32)]) -> SessionExpiry {
        let mut e = SessionExpiry::new(100);
        e.reset(sessions.iter().copied());
        e.set_role(role);
        e
    }

    #[test]
    fn the_leader_expires_silent_sessions_and_reported_ones_live_on() {
        let mut e = expiry(ExpiryRole::Leader, &[(S1, 1000), (S2, 1000)]);
        assert_eq!(e.check(0), None);
        assert!(!e.due(49) && e.due(50));
        e.reported(&[S2], 600);
        assert_eq!(e.check(1000), Some(ExpiryAction::Expire(vec![S1])));
        // Session 1 is still open in the tree until its close applies: not expired twice.
        e.touched([S2]);
        assert_eq!(e.check(1100), None);
    }

    #[test]
    fn learners_report_touches_and_a_new_leader_gives_a_whole_timeout() {
        let mut e = expiry(ExpiryRole::Learner { leader: 3 }, &[(S1, 1000)]);
        e.touched([S1]);
        assert_eq!(
            e.check(0),
            Some(ExpiryAction::Report {
                leader: 3,
                sessions: vec![S1]
            })
        );
        assert_eq!(e.check(50), None);
        // Reports reach only a leader, and an idle server drops its clients' activity.
        e.reported(&[S1], 60);
        e.set_role(ExpiryRole::Idle);
        e.touched([S1]);
        assert_eq!(e.check(5000), None);
        e.set_role(ExpiryRole::Leader);
        assert_eq!(e.check(9000), None);
        assert_eq!(e.check(9900), None);
        assert_eq!(e.check(10_000), Some(ExpiryAction::Expire(vec![S1])));
    }

    #[test]
    fn sessions_follow_the_applied_txns_and_losing_the_lead_drops_deadlines() {
        let mut e = expiry(ExpiryRole::Leader, &[]);
        e.changed(SessionChange::Opened(S1, 1000));
        e.changed(SessionChange::Opened(S2, 500));
        assert_eq!(e.check(0), None);
        e.changed(SessionChange::Closed(S2));
        assert_eq!(e.check(500), None, "a closed session is not expired");
        // A leader again after a spell as a learner: a whole timeout from its first check.
        e.set_role(ExpiryRole::Learner { leader: 2 });
        e.set_role(ExpiryRole::Leader);
        assert_eq!(e.check(900), None);
        assert_eq!(e.check(1800), None);
        assert_eq!(e.check(1900), Some(ExpiryAction::Expire(vec![S1])));
    }

    #[test]
    fn an_applied_txn_names_the_session_it_opened_or_closed() {
        let applied = |opened, closed| Applied {
            result: crate::data_tree::OpResult::Session,
            triggers: Vec::new(),
            closed_session: closed,
            opened_session: opened,
        };
        assert_eq!(
            SessionChange::of(&applied(Some((S1, 4000)), None)),
            Some(SessionChange::Opened(S1, 4000))
        );
        assert_eq!(
            SessionChange::of(&applied(None, Some(S2))),
            Some(SessionChange::Closed(S2))
        );
        assert_eq!(SessionChange::of(&applied(None, None)), None);
    }
}
