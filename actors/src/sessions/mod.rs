//! Sessions: ids and password checks, the expiry tracker and policy, and the watch manager
//! (pure cores), and the session tracker actor that runs the expiry policy.

mod actor;
mod expiry;
mod tracker;
mod watches;

pub use actor::{
    ClientActivity, FailSessions, PipelineHandle, ProposeExpiry, ResyncSessions, RoleChanged,
    SessionsActor, SessionsChanged, SessionsState, TouchesReported,
};
pub use expiry::{ExpiryAction, ExpiryRole, SessionChange, SessionExpiry};
pub use tracker::SessionTracker;
pub use watches::{kinds_of_type, WatchKind, WatchManager};

use ensemble_messages::zk::SessionId;
use ensemble_messages::Sid;

/// Whether a reconnect's password is the session's, compared in constant time.
pub fn password_matches(given: &[u8], expected: &[u8; 16]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The first session id a server hands out: its sid in the top byte, the start time below,
/// so that ids stay unique across servers and restarts.
pub fn first_session_id(sid: Sid, now_ms: i64) -> SessionId {
    let time = ((now_ms as u64) << 24) >> 8;
    SessionId((time | ((sid & 0xff) << 56)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_match_only_exactly_and_ids_depend_on_the_server() {
        let p = [7u8; 16];
        assert!(password_matches(&p, &p));
        let mut q = p;
        q[15] = 8;
        assert!(!password_matches(&q, &p));
        assert!(!password_matches(&p[..15], &p));
        assert!(!password_matches(&[], &p));
        let a = first_session_id(1, 1_700_000_000_000);
        let b = first_session_id(2, 1_700_000_000_000);
        assert_ne!(a, b);
        assert_eq!((a.0 as u64) >> 56, 1);
    }
}
