//! Where the znodes live: one persistent (copy-on-write) ordered map from a compact key to a
//! shared znode.
//!
//! Why persistent: a snapshot is a clone of the map, which is O(1) (the root chunk is shared
//! and counted), so the thread that applies txns never copies the tree; the snapshot thread
//! serializes the clone while writes go on, and a write copies only the chunks on its path
//! (and the znode it changes) when a snapshot still shares them. Measured against the
//! alternative, an incremental fuzzy snapshot as ZooKeeper takes: see docs/benchmarks.md.
//!
//! The key of a znode is its path with the last `/` replaced by NUL, which no path holds
//! (`/a/b` → `/a\0b`, `/a` → `\0a`, the root → `\0`). Keys then sort by (parent, name): the
//! children of a znode are one contiguous range, in name order, and a parent sorts before its
//! children (its own last `/` became a NUL, below the `/` its children's keys hold there).
//! The tree therefore keeps no set of child names: a name is stored once, in its key, and
//! a short key is held in the map's own nodes ([`NodeKey`]).

use super::node_key::NodeKey;
use super::notes::Notes;
use super::Znode;
use std::ops::Bound;
use std::sync::Arc;

/// Paths up to this length are looked up without allocating their key.
const INLINE_KEY: usize = 256;

/// The znodes, keyed as the module explains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct NodeMap {
    map: imbl::OrdMap<NodeKey, Arc<Znode>>,
    changes: Changes,
}

/// The znodes written since the changes were last taken, for an incremental snapshot; `None`
/// while they are not noted. Not part of the map's value: a clone (a snapshot's or a
/// published reader's) notes nothing, and maps compare equal whatever they note.
#[derive(Debug, Default)]
struct Changes(Option<Box<Notes>>);

impl Clone for Changes {
    fn clone(&self) -> Self {
        Changes(None)
    }
}

impl PartialEq for Changes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Changes {}

impl Changes {
    /// Notes a write to the znode of key `key` in a map of `len` znodes; past the notes' cap,
    /// noting stops until the changes are taken.
    fn note(&mut self, key: &[u8], len: usize) {
        if let Some(notes) = &mut self.0 {
            if !notes.note(key, len) {
                self.0 = None;
            }
        }
    }
}

/// Whether `path` could name a stored znode: absolute and without NUL.
fn plausible(path: &str) -> bool {
    path.starts_with('/') && !path.contains('\0')
}

/// Calls `f` with the key of `path`; `None` when `path` cannot name a znode.
fn with_key<R>(path: &str, f: impl FnOnce(&[u8]) -> Option<R>) -> Option<R> {
    if !plausible(path) {
        return None;
    }
    let slash = path.rfind('/')?;
    if path.len() <= INLINE_KEY {
        let mut buf = [0u8; INLINE_KEY];
        let key = &mut buf[..path.len()];
        key.copy_from_slice(path.as_bytes());
        key[slash] = 0;
        f(key)
    } else {
        let mut key = path.as_bytes().to_vec();
        key[slash] = 0;
        f(&key)
    }
}

/// Replaces the bytes in `out` with the key of `path`, a valid path.
pub(super) fn key_into(path: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(path.as_bytes());
    if let Some(slash) = out.iter().rposition(|&b| b == b'/') {
        out[slash] = 0;
    }
}

/// The key of `path`, owned.
pub(super) fn key_of(path: &str) -> Option<NodeKey> {
    with_key(path, |k| Some(NodeKey::new(k)))
}

/// The path a key stands for.
pub(super) fn path_of(key: &NodeKey) -> String {
    // A key is made from a path, so its bytes are UTF-8.
    let key = String::from_utf8_lossy(key.as_bytes());
    match key.as_ref() {
        "\0" => "/".to_string(),
        _ => key.replacen('\0', "/", 1),
    }
}

/// Appends the path `key` stands for to `out` as a bincode string (the snapshot image's
/// loop: no allocation).
pub(super) fn put_path_of(key: &NodeKey, out: &mut Vec<u8>) {
    let key = key.as_bytes();
    super::bincode_out::put_u64(out, key.len() as u64);
    let start = out.len();
    out.extend_from_slice(key);
    // The NUL is the last separator: only the name, which holds neither, follows it.
    if let Some(at) = key.iter().rposition(|&b| b == 0) {
        out[start + at] = b'/';
    }
}

/// Replaces the bytes in `out` with the path `key` stands for.
pub(super) fn path_into(key: &NodeKey, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(key.as_bytes());
    // The NUL is the last separator: only the name, which holds neither, follows it.
    if let Some(at) = out.iter().rposition(|&b| b == 0) {
        out[at] = b'/';
    }
}

/// The prefix every key of a child of `path` starts with.
fn children_prefix(path: &str) -> Option<String> {
    if !plausible(path) {
        return None;
    }
    Some(match path {
        "/" => "\0".to_string(),
        _ => format!("{path}\0"),
    })
}

impl NodeMap {
    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Arc<Znode>> {
        with_key(path, |k| self.map.get(k))
    }

    /// The znode at `path`, to change: copied first if a snapshot still shares it.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Znode> {
        self.get_mut_shared(path).map(Arc::make_mut)
    }

    /// The shared znode at `path`, to look at, keep, or change with `Arc::make_mut`. The walk
    /// copies the map's chunks on the way if a snapshot still shares them, and the znode
    /// counts as changed, even when the caller then changes nothing.
    pub fn get_mut_shared(&mut self, path: &str) -> Option<&mut Arc<Znode>> {
        let len = self.map.len();
        let (map, changes) = (&mut self.map, &mut self.changes);
        with_key(path, |k| {
            let node = map.get_mut(k)?;
            changes.note(k, len);
            Some(node)
        })
    }

    /// The znode under `key`.
    pub fn get_key(&self, key: &NodeKey) -> Option<&Arc<Znode>> {
        self.map.get(key.as_bytes())
    }

    /// Whether a znode exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Puts a znode at `path` (which must be plausible; others are ignored).
    pub fn insert(&mut self, path: &str, node: Arc<Znode>) {
        if let Some(key) = key_of(path) {
            self.insert_key(key, node);
        }
    }

    /// Puts a znode at `path` unless one is there already (then gives `false` and leaves
    /// it): one walk of the map, where a check and an insert take two.
    pub fn insert_new(&mut self, path: &str, node: Arc<Znode>) -> bool {
        let Some(key) = key_of(path) else {
            return false;
        };
        match self.map.insert(key.clone(), node) {
            None => {
                self.changes.note(key.as_bytes(), self.map.len());
                true
            }
            Some(there) => {
                self.map.insert(key, there);
                false
            }
        }
    }

    /// Puts a znode under its key.
    pub fn insert_key(&mut self, key: NodeKey, node: Arc<Znode>) -> Option<Arc<Znode>> {
        self.changes.note(key.as_bytes(), self.map.len());
        self.map.insert(key, node)
    }

    /// Removes the znode at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Arc<Znode>> {
        let len = self.map.len();
        let (map, changes) = (&mut self.map, &mut self.changes);
        with_key(path, |k| {
            let node = map.remove(k)?;
            changes.note(k, len);
            Some(node)
        })
    }

    /// The keys of the znodes written since the last call, in the order written and with
    /// repeats, and noting starts over (the first call starts it); `None` when they were not
    /// all noted.
    pub fn take_changes(&mut self) -> Option<Vec<NodeKey>> {
        let taken = self.changes.0.replace(Box::default())?;
        Some(taken.into_keys())
    }

    /// Number of znodes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no znode at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every znode with its key, parents before their children.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeKey, &Arc<Znode>)> {
        self.map.iter()
    }

    /// As [`NodeMap::iter`], for a walk that reads every znode's data: their memory is fetched
    /// a few entries ahead (see [`super::fetch_ahead`]).
    pub fn iter_fetching_ahead(&self) -> impl Iterator<Item = (&NodeKey, &Arc<Znode>)> {
        super::fetch_ahead::FetchAhead::new(self.map.iter())
    }

    /// Names of the children of `path`, sorted (nothing for a path without children or
    /// without a znode).
    pub fn child_names<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = children_prefix(path).unwrap_or_default();
        let range = (!prefix.is_empty()).then(|| {
            self.map
                .range::<_, [u8]>((Bound::Included(prefix.as_bytes()), Bound::Unbounded))
        });
        range
            .into_iter()
            .flatten()
            .map_while(move |(k, _)| k.as_bytes().strip_prefix(prefix.as_bytes()))
            .filter(|name| !name.is_empty())
            // A key is made from a path, so its name is UTF-8.
            .filter_map(|name| std::str::from_utf8(name).ok())
    }
}
