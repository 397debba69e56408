//! The keys of the znodes written since the last snapshot, noted as they are written, for an
//! incremental snapshot (see [`super::delta_image`]).

use super::node_key::NodeKey;

/// Notes held at least, whatever the tree's size.
const MIN_NOTES: usize = 1024;
/// Slots of the cache of recent notes.
const RECENT: usize = 16;

/// The keys noted, in the order written. A key still in the small cache of recent notes is
/// not noted again (a create notes its znode, then its parent, over and over); others may
/// repeat. Sorting and removing repeats is left to the snapshot thread: a note is one push.
#[derive(Debug)]
pub(super) struct Notes {
    keys: Vec<NodeKey>,
    /// Keys noted since the notes began, each in the slot its hash picks.
    recent: [Option<NodeKey>; RECENT],
}

impl Default for Notes {
    fn default() -> Self {
        Notes {
            keys: Vec::new(),
            recent: std::array::from_fn(|_| None),
        }
    }
}

impl Notes {
    /// Notes a write to the znode of key `key` in a tree of `len` znodes; false once there
    /// are more notes than half the tree's znodes (and a floor for small trees): a whole
    /// snapshot then costs no more than a delta.
    pub fn note(&mut self, key: &[u8], len: usize) -> bool {
        if self.keys.len() > (len / 2).max(MIN_NOTES) {
            return false;
        }
        let slot = &mut self.recent[slot_of(key)];
        if slot.as_ref().map(NodeKey::as_bytes) != Some(key) {
            let key = NodeKey::new(key);
            *slot = Some(key.clone());
            self.keys.push(key);
        }
        true
    }

    /// The keys noted, in the order written, with repeats.
    pub fn into_keys(self) -> Vec<NodeKey> {
        self.keys
    }
}

/// The cache slot of `key` (FNV-1a).
fn slot_of(key: &[u8]) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % RECENT as u64) as usize
}
