//! Sessions: ids and passwords, the expiry tracker and the watch manager (pure cores).

mod tracker;
mod watches;

pub use tracker::SessionTracker;
pub use watches::{kinds_of_type, WatchKind, WatchManager};

use ensemble_messages::Sid;

/// A session's 16-byte password, derived from its id so that every server can check it
/// without sharing state (ZooKeeper does the same with a fixed secret).
pub fn password(session_id: i64) -> [u8; 16] {
    let mut x = session_id as u64 ^ 0xB341_5C00_E5E1_B1E5;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        // SplitMix64.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out
}

/// The first session id a server hands out: its sid in the top byte, the start time below,
/// so that ids stay unique across servers and restarts.
pub fn first_session_id(sid: Sid, now_ms: i64) -> i64 {
    let time = ((now_ms as u64) << 24) >> 8;
    (time | ((sid & 0xff) << 56)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_depend_on_the_id_and_ids_on_the_server() {
        assert_eq!(password(42), password(42));
        assert_ne!(password(42), password(43));
        let a = first_session_id(1, 1_700_000_000_000);
        let b = first_session_id(2, 1_700_000_000_000);
        assert_ne!(a, b);
        assert_eq!((a as u64) >> 56, 1);
    }
}
