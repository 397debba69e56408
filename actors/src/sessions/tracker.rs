//! Session expiry in buckets, as ZooKeeper's ExpiryQueue: no timer per session.

use ensemble_messages::zk::SessionId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Tracks when each session expires, rounded up to the next bucket boundary.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    bucket_ms: u64,
    deadline: HashMap<SessionId, (u64, u64)>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
}

impl SessionTracker {
    /// A tracker whose deadlines are multiples of `bucket_ms` (the tick).
    pub fn new(bucket_ms: u64) -> Self {
        SessionTracker {
            bucket_ms: bucket_ms.max(1),
            deadline: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// Sessions tracked.
    pub fn len(&self) -> usize {
        self.deadline.len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.deadline.is_empty()
    }

    /// The session is alive at `now`: it expires `timeout_ms` later (rounded up to a bucket).
    pub fn touch(&mut self, session: SessionId, timeout_ms: u64, now: u64) {
        let at = (now + timeout_ms).div_ceil(self.bucket_ms) * self.bucket_ms;
        if let Some((old, _)) = self.deadline.insert(session, (at, timeout_ms)) {
            if old == at {
                return;
            }
            if let Some(b) = self.buckets.get_mut(&old) {
                b.remove(&session);
                if b.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
        self.buckets.entry(at).or_default().insert(session);
    }

    /// Touches a known session with its own timeout; unknown sessions are ignored.
    pub fn touch_known(&mut self, session: SessionId, now: u64) {
        if let Some(&(_, timeout)) = self.deadline.get(&session) {
            self.touch(session, timeout, now);
        }
    }

    /// Stops tracking a session.
    pub fn remove(&mut self, session: SessionId) {
        if let Some((at, _)) = self.deadline.remove(&session) {
            if let Some(b) = self.buckets.get_mut(&at) {
                b.remove(&session);
                if b.is_empty() {
                    self.buckets.remove(&at);
                }
            }
        }
    }

    /// Whether a session is tracked.
    pub fn contains(&self, session: SessionId) -> bool {
        self.deadline.contains_key(&session)
    }

    /// The tracked sessions.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.deadline.keys().copied().collect()
    }

    /// Matches the tracked set to the replicated one: new sessions get a whole timeout from
    /// `now`, closed ones are dropped.
    pub fn sync_with(&mut self, sessions: impl Iterator<Item = (SessionId, i32)>, now: u64) {
        let mut live = BTreeSet::new();
        for (id, timeout) in sessions {
            live.insert(id);
            if !self.contains(id) {
                self.touch(id, timeout.max(0) as u64, now);
            }
        }
        for id in self.sessions() {
            if !live.contains(&id) {
                self.remove(id);
            }
        }
    }

    /// Removes and returns the sessions whose deadline passed at `now`.
    pub fn expire(&mut self, now: u64) -> Vec<SessionId> {
        let expired = self.expired(now);
        for id in &expired {
            self.remove(*id);
        }
        expired
    }

    /// Sessions whose deadline passed at `now`; they stay tracked until removed.
    pub fn expired(&self, now: u64) -> Vec<SessionId> {
        self.buckets
            .range(..=now)
            .flat_map(|(_, s)| s.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_in_buckets_unless_touched() {
        let mut t = SessionTracker::new(100);
        t.touch(SessionId(1), 1000, 0);
        t.touch(SessionId(2), 1000, 50);
        assert!(t.expired(999).is_empty());
        assert_eq!(t.expired(1000), vec![SessionId(1)]);
        assert_eq!(t.expired(1100), vec![SessionId(1), SessionId(2)]);
        t.touch_known(SessionId(1), 900);
        assert_eq!(t.expired(1100), vec![SessionId(2)]);
        t.remove(SessionId(2));
        assert!(t.expired(1100).is_empty());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn sync_with_adopts_new_sessions_and_drops_closed_ones() {
        let mut t = SessionTracker::new(100);
        t.touch(SessionId(1), 1000, 0);
        t.sync_with([(SessionId(2), 500)].into_iter(), 200);
        assert_eq!(t.sessions(), vec![SessionId(2)]);
        assert!(t.expire(600).is_empty());
        assert_eq!(t.expire(700), vec![SessionId(2)]);
        assert!(t.is_empty());
    }
}
