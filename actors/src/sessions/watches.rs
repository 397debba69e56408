//! One-shot watches of the sessions connected to this server.

use ensemble_messages::zk::event;
use std::collections::{BTreeMap, BTreeSet};

/// What a watch was set by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    /// getData, or exists on an existing node.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren.
    Child,
}

/// The watches set by this server's sessions.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: BTreeMap<String, BTreeSet<i64>>,
    exist: BTreeMap<String, BTreeSet<i64>>,
    child: BTreeMap<String, BTreeSet<i64>>,
}

impl WatchManager {
    /// Sets a watch for `session` on `path`.
    pub fn add(&mut self, kind: WatchKind, path: &str, session: i64) {
        let map = match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
        };
        map.entry(path.to_string()).or_default().insert(session);
    }

    /// Fires the watches a change triggers, removing them: (session, event type, path).
    pub fn trigger(&mut self, path: &str, event_type: i32) -> Vec<(i64, i32, String)> {
        let mut sessions = BTreeSet::new();
        let mut take = |map: &mut BTreeMap<String, BTreeSet<i64>>| {
            if let Some(s) = map.remove(path) {
                sessions.extend(s);
            }
        };
        match event_type {
            event::NODE_CREATED => {
                take(&mut self.data);
                take(&mut self.exist);
            }
            event::NODE_DATA_CHANGED => {
                take(&mut self.data);
                take(&mut self.exist);
            }
            event::NODE_DELETED => {
                take(&mut self.data);
                take(&mut self.exist);
                take(&mut self.child);
            }
            event::NODE_CHILDREN_CHANGED => take(&mut self.child),
            _ => {}
        }
        sessions
            .into_iter()
            .map(|s| (s, event_type, path.to_string()))
            .collect()
    }

    /// Drops every watch of a session.
    pub fn remove_session(&mut self, session: i64) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            map.retain(|_, s| {
                s.remove(&session);
                !s.is_empty()
            });
        }
    }

    /// Number of watches set.
    pub fn count(&self) -> usize {
        [&self.data, &self.exist, &self.child]
            .iter()
            .map(|m| m.values().map(BTreeSet::len).sum::<usize>())
            .sum()
    }

    /// Paths watched.
    pub fn paths(&self) -> usize {
        let mut all: BTreeSet<&String> = self.data.keys().collect();
        all.extend(self.exist.keys());
        all.extend(self.child.keys());
        all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_fire_once_for_the_right_events() {
        let mut w = WatchManager::default();
        w.add(WatchKind::Data, "/a", 1);
        w.add(WatchKind::Child, "/a", 2);
        w.add(WatchKind::Exist, "/b", 3);
        assert_eq!(
            w.trigger("/a", event::NODE_CHILDREN_CHANGED),
            vec![(2, event::NODE_CHILDREN_CHANGED, "/a".into())]
        );
        assert!(
            w.trigger("/a", event::NODE_CHILDREN_CHANGED).is_empty(),
            "one-shot"
        );
        assert_eq!(
            w.trigger("/b", event::NODE_CREATED),
            vec![(3, event::NODE_CREATED, "/b".into())]
        );
        assert_eq!(
            w.trigger("/a", event::NODE_DELETED),
            vec![(1, event::NODE_DELETED, "/a".into())]
        );
        w.add(WatchKind::Data, "/c", 4);
        w.remove_session(4);
        assert_eq!(w.count(), 0);
    }
}
