//! Who expires sessions, and when: the policy the quorum peer actor runs every half tick.
//!
//! Only the established leader tracks deadlines (a new leader gives every replicated session a
//! whole timeout, as ZooKeeper does). A serving follower or observer reports the sessions its
//! clients were active on to the leader, which touches them; a server that is not serving does
//! neither.

use super::SessionTracker;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{ServerState, Sid};

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

/// The expiry policy of one server: a tracker while it leads, none otherwise.
#[derive(Debug, Clone)]
pub struct SessionExpiry {
    tick_ms: u64,
    tracker: Option<SessionTracker>,
    last_check: u64,
}

impl SessionExpiry {
    /// A policy checked every half `tick_ms`, with deadlines rounded to ticks.
    pub fn new(tick_ms: u64) -> Self {
        SessionExpiry {
            tick_ms,
            tracker: None,
            last_check: 0,
        }
    }

    /// Whether a check is due at `now` (half a tick after the last one).
    pub fn due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_check) >= self.tick_ms / 2
    }

    /// One check at `now`: `touched` are the sessions this server's clients were active on
    /// since the last check, `sessions` the replicated open sessions with their timeouts.
    pub fn check(
        &mut self,
        role: ExpiryRole,
        touched: Vec<SessionId>,
        sessions: impl Iterator<Item = (SessionId, i32)>,
        now: u64,
    ) -> Option<ExpiryAction> {
        self.last_check = now;
        match role {
            ExpiryRole::Leader => {
                let tracker = self
                    .tracker
                    .get_or_insert_with(|| SessionTracker::new(self.tick_ms));
                tracker.sync_with(sessions, now);
                for id in touched {
                    tracker.touch_known(id, now);
                }
                let expired = tracker.expire(now);
                (!expired.is_empty()).then_some(ExpiryAction::Expire(expired))
            }
            ExpiryRole::Learner { leader } => {
                self.tracker = None;
                (!touched.is_empty()).then_some(ExpiryAction::Report {
                    leader,
                    sessions: touched,
                })
            }
            ExpiryRole::Idle => {
                self.tracker = None;
                None
            }
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

    fn open(ids: &[(SessionId, i32)]) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        ids.iter().copied()
    }

    #[test]
    fn the_leader_expires_silent_sessions_and_reported_ones_live_on() {
        let mut e = SessionExpiry::new(100);
        let sessions = [(S1, 1000), (S2, 1000)];
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![], open(&sessions), 0),
            None
        );
        assert!(!e.due(49) && e.due(50));
        e.reported(&[S2], 600);
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![], open(&sessions), 1000),
            Some(ExpiryAction::Expire(vec![S1]))
        );
        // Session 1 is still open in the tree until its close applies: not expired twice.
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![S2], open(&sessions), 1100),
            None
        );
    }

    #[test]
    fn learners_report_touches_and_a_new_leader_gives_a_whole_timeout() {
        let mut e = SessionExpiry::new(100);
        let sessions = [(S1, 1000)];
        assert_eq!(
            e.check(
                ExpiryRole::Learner { leader: 3 },
                vec![S1],
                open(&sessions),
                0
            ),
            Some(ExpiryAction::Report {
                leader: 3,
                sessions: vec![S1]
            })
        );
        assert_eq!(
            e.check(
                ExpiryRole::Learner { leader: 3 },
                vec![],
                open(&sessions),
                50
            ),
            None
        );
        // Reports reach only a leader.
        e.reported(&[S1], 60);
        assert_eq!(
            e.check(ExpiryRole::Idle, vec![S1], open(&sessions), 5000),
            None
        );
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![], open(&sessions), 9000),
            None
        );
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![], open(&sessions), 9900),
            None
        );
        assert_eq!(
            e.check(ExpiryRole::Leader, vec![], open(&sessions), 10_000),
            Some(ExpiryAction::Expire(vec![S1]))
        );
    }
}
