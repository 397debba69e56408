//! The watches of the sessions connected to this server: one-shot data, exist and child
//! watches, and the persistent (and persistent-recursive) watches of `addWatch`.

use ensemble_messages::zk::{EventType, SessionId, WatcherType};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a watch was set by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    /// getData, or exists on an existing node.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren.
    Child,
    /// addWatch mode 0: every change of the node and its child list, until removed.
    Persistent,
    /// addWatch mode 1: every create, delete and data change at or below the path, until removed.
    PersistentRecursive,
}

/// The kinds a removeWatches/checkWatches type names.
pub fn kinds_of_type(watcher_type: WatcherType) -> &'static [WatchKind] {
    match watcher_type {
        WatcherType::Children => &[WatchKind::Child],
        WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
        WatcherType::Any => &[
            WatchKind::Child,
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ],
        WatcherType::Persistent => &[WatchKind::Persistent],
        WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
    }
}

type Watches = BTreeMap<String, BTreeSet<SessionId>>;

/// The watches set by this server's sessions: by path (to fire them) and by session (so a
/// session's end costs its own watches, not everyone's), with the counts the status words
/// report kept up to date rather than recounted.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: Watches,
    exist: Watches,
    child: Watches,
    persistent: Watches,
    recursive: Watches,
    by_session: HashMap<SessionId, BTreeSet<(WatchKind, String)>>,
    /// For each watched path, how many kinds of watch it has.
    kinds_per_path: HashMap<String, usize>,
    total: usize,
}

impl WatchManager {
    fn map(&mut self, kind: WatchKind) -> &mut Watches {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    fn maps(&self) -> [&Watches; 5] {
        [
            &self.data,
            &self.exist,
            &self.child,
            &self.persistent,
            &self.recursive,
        ]
    }

    /// Sets a watch for `session` on `path`.
    pub fn add(&mut self, kind: WatchKind, path: &str, session: SessionId) {
        let map = self.map(kind);
        let new_path = !map.contains_key(path);
        if !map.entry(path.to_string()).or_default().insert(session) {
            return;
        }
        if new_path {
            *self.kinds_per_path.entry(path.to_string()).or_default() += 1;
        }
        self.total += 1;
        self.by_session
            .entry(session)
            .or_default()
            .insert((kind, path.to_string()));
    }

    /// Whether `session` has a watch of one of `kinds` on `path`.
    pub fn has(&mut self, kinds: &[WatchKind], path: &str, session: SessionId) -> bool {
        kinds
            .iter()
            .any(|k| self.map(*k).get(path).is_some_and(|s| s.contains(&session)))
    }

    /// Removes `session`'s watches of `kinds` on `path`; whether any was there.
    pub fn remove(&mut self, kinds: &[WatchKind], path: &str, session: SessionId) -> bool {
        let mut removed = false;
        for k in kinds {
            if self.unlink_from_path(*k, path, session) {
                self.unlink_from_session(session, *k, path);
                removed = true;
            }
        }
        removed
    }

    /// Takes `session` out of the watchers of `path` of this kind; whether it was there.
    fn unlink_from_path(&mut self, kind: WatchKind, path: &str, session: SessionId) -> bool {
        let map = self.map(kind);
        let Some(s) = map.get_mut(path) else {
            return false;
        };
        if !s.remove(&session) {
            return false;
        }
        if s.is_empty() {
            map.remove(path);
            self.path_lost_kind(path);
        }
        self.total -= 1;
        true
    }

    fn unlink_from_session(&mut self, session: SessionId, kind: WatchKind, path: &str) {
        if let Some(own) = self.by_session.get_mut(&session) {
            own.remove(&(kind, path.to_string()));
            if own.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    fn path_lost_kind(&mut self, path: &str) {
        if let Some(n) = self.kinds_per_path.get_mut(path) {
            *n -= 1;
            if *n == 0 {
                self.kinds_per_path.remove(path);
            }
        }
    }

    /// Fires the watches a change triggers, removing the one-shot ones:
    /// (session, event type, path). As in ZooKeeper since CVE-2024-23944, only sessions for
    /// which `may_read` holds (READ on the changed znode) get the event; the others' one-shot
    /// watches are used up all the same.
    pub fn trigger(
        &mut self,
        path: &str,
        event_type: EventType,
        mut may_read: impl FnMut(SessionId) -> bool,
    ) -> Vec<(SessionId, EventType, String)> {
        let mut sessions = BTreeSet::new();
        let kinds: &[WatchKind] = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                &[WatchKind::Data, WatchKind::Exist]
            }
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            _ => &[],
        };
        for k in kinds {
            if let Some(s) = self.map(*k).remove(path) {
                self.path_lost_kind(path);
                self.total -= s.len();
                for session in &s {
                    self.unlink_from_session(*session, *k, path);
                }
                sessions.extend(s);
            }
        }
        // Persistent watches stay; recursive ones see every change below them but child lists.
        if let Some(s) = self.persistent.get(path) {
            sessions.extend(s.iter().copied());
        }
        if event_type != EventType::NodeChildrenChanged {
            let mut at = Some(path);
            while let Some(p) = at {
                if let Some(s) = self.recursive.get(p) {
                    sessions.extend(s.iter().copied());
                }
                at = parent(p);
            }
        }
        sessions
            .into_iter()
            .filter(|s| may_read(*s))
            .map(|s| (s, event_type, path.to_string()))
            .collect()
    }

    /// Drops every watch of a session: its own watches, not a scan of everyone's.
    pub fn remove_session(&mut self, session: SessionId) {
        for (kind, path) in self.by_session.remove(&session).unwrap_or_default() {
            self.unlink_from_path(kind, &path, session);
        }
    }

    /// Number of watches set.
    pub fn count(&self) -> usize {
        self.total
    }

    /// Every watch as (session, path), sorted, for the `wchc` and `wchp` words.
    pub fn all(&self) -> Vec<(SessionId, String)> {
        let mut out: Vec<(SessionId, String)> = self
            .maps()
            .iter()
            .flat_map(|m| {
                m.iter()
                    .flat_map(|(p, s)| s.iter().map(move |id| (*id, p.clone())))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Paths watched.
    pub fn paths(&self) -> usize {
        self.kinds_per_path.len()
    }
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    path.rfind('/')
        .map(|i| if i == 0 { "/" } else { &path[..i] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_fire_once_for_the_right_events() {
        let mut w = WatchManager::default();
        w.add(WatchKind::Data, "/a", SessionId(1));
        w.add(WatchKind::Child, "/a", SessionId(2));
        w.add(WatchKind::Exist, "/b", SessionId(3));
        assert_eq!(
            w.trigger("/a", EventType::NodeChildrenChanged, |_| true),
            vec![(SessionId(2), EventType::NodeChildrenChanged, "/a".into())]
        );
        assert!(
            w.trigger("/a", EventType::NodeChildrenChanged, |_| true)
                .is_empty(),
            "one-shot"
        );
        assert_eq!(
            w.trigger("/b", EventType::NodeCreated, |_| true),
            vec![(SessionId(3), EventType::NodeCreated, "/b".into())]
        );
        assert_eq!(
            w.trigger("/a", EventType::NodeDeleted, |_| true),
            vec![(SessionId(1), EventType::NodeDeleted, "/a".into())]
        );
        w.add(WatchKind::Data, "/c", SessionId(4));
        w.remove_session(SessionId(4));
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn persistent_and_recursive_watches_stay_and_reach_below() {
        let mut w = WatchManager::default();
        w.add(WatchKind::Persistent, "/p", SessionId(1));
        w.add(WatchKind::PersistentRecursive, "/r", SessionId(2));
        for _ in 0..2 {
            assert_eq!(
                w.trigger("/p", EventType::NodeDataChanged, |_| true),
                vec![(SessionId(1), EventType::NodeDataChanged, "/p".into())]
            );
        }
        assert_eq!(
            w.trigger("/p", EventType::NodeChildrenChanged, |_| true)
                .len(),
            1
        );
        assert_eq!(
            w.trigger("/r/a/b", EventType::NodeCreated, |_| true),
            vec![(SessionId(2), EventType::NodeCreated, "/r/a/b".into())]
        );
        assert!(
            w.trigger("/r/a", EventType::NodeChildrenChanged, |_| true)
                .is_empty(),
            "recursive watches skip child lists"
        );
        assert!(w.has(
            kinds_of_type(WatcherType::PersistentRecursive),
            "/r",
            SessionId(2)
        ));
        assert!(w.remove(kinds_of_type(WatcherType::Any), "/r", SessionId(2)));
        assert!(
            !w.remove(kinds_of_type(WatcherType::Any), "/r", SessionId(2)),
            "nothing left: NoWatcher"
        );
    }

    #[test]
    fn only_sessions_that_may_read_the_node_get_its_events() {
        let mut w = WatchManager::default();
        w.add(WatchKind::PersistentRecursive, "/", SessionId(1));
        w.add(WatchKind::PersistentRecursive, "/", SessionId(2));
        w.add(WatchKind::Data, "/secret", SessionId(3));
        assert_eq!(
            w.trigger("/secret", EventType::NodeDataChanged, |s| s == SessionId(2)),
            vec![(SessionId(2), EventType::NodeDataChanged, "/secret".into())]
        );
        assert!(
            w.trigger("/secret", EventType::NodeDataChanged, |s| s == SessionId(3))
                .is_empty(),
            "a filtered one-shot watch is used up"
        );
    }
    /// The counts and the per-session index, recomputed from the per-path maps.
    fn recount(w: &WatchManager) -> (usize, usize, usize) {
        let total = w
            .maps()
            .iter()
            .map(|m| m.values().map(BTreeSet::len).sum::<usize>())
            .sum();
        let paths: BTreeSet<&String> = w.maps().iter().flat_map(|m| m.keys()).collect();
        let indexed = w.by_session.values().map(BTreeSet::len).sum();
        (total, paths.len(), indexed)
    }

    #[test]
    fn counts_and_the_session_index_follow_every_change() {
        let mut w = WatchManager::default();
        let kinds = [
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ];
        for i in 0..300i64 {
            let path = format!("/n{}", i % 7);
            w.add(kinds[(i % 5) as usize], &path, SessionId(i % 11));
            match i % 6 {
                0 => drop(w.trigger(&path, EventType::NodeDeleted, |_| true)),
                1 => drop(w.trigger(&path, EventType::NodeChildrenChanged, |_| true)),
                2 => drop(w.remove(
                    kinds_of_type(WatcherType::Any),
                    &format!("/n{}", i % 5),
                    SessionId(i % 3),
                )),
                3 if i % 4 == 0 => w.remove_session(SessionId(i % 11)),
                _ => {}
            }
            let (total, paths, indexed) = recount(&w);
            assert_eq!((w.count(), w.paths()), (total, paths), "step {i}");
            assert_eq!(indexed, total, "step {i}");
        }
    }

    #[test]
    fn a_session_end_costs_its_own_watches_not_everyones() {
        // One session holds 200,000 watches (two setWatches of 1 MiB); 2,000 short sessions
        // come and go. Before the index each end scanned every watch: 2,000 x 200,000.
        let mut w = WatchManager::default();
        for i in 0..200_000 {
            w.add(WatchKind::Data, &format!("/w{i}"), SessionId(1));
        }
        let started = std::time::Instant::now();
        for s in 2..2_002 {
            w.add(WatchKind::Child, "/w7", SessionId(s));
            w.remove_session(SessionId(s));
        }
        println!(
            "2,000 session ends among 200,000 watches: {:?}",
            started.elapsed()
        );
        // Every four-letter word (even an unknown one) asks for these counts.
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert_eq!((w.count(), w.paths()), (200_000, 200_000));
        }
        println!(
            "100 status counts of 200,000 watches: {:?}",
            started.elapsed()
        );
        assert_eq!(
            w.trigger("/w7", EventType::NodeDeleted, |_| true),
            vec![(SessionId(1), EventType::NodeDeleted, "/w7".into())]
        );
        w.remove_session(SessionId(1));
        assert_eq!((w.count(), w.paths()), (0, 0));
    }
}
