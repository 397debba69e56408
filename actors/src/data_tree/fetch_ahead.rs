//! A walk over every znode that asks the CPU for the memory of the znodes a few steps ahead.
//!
//! A znode's shared node and its data are two allocations (and its key a third when long),
//! and a walk in key order meets them in no particular order of address: at a million znodes
//! nearly every one is a cache miss, and a walk that waits for each in turn (a snapshot image
//! is one) spends most of its time waiting. Prefetching them some entries ahead lets those
//! misses overlap.

use super::node_key::NodeKey;
use super::Znode;
use std::collections::VecDeque;
use std::sync::Arc;

/// How many entries ahead of the one handed out their key and node are fetched; their data is
/// fetched half as far ahead, once the node that points to it has arrived.
const AHEAD: usize = 8;

/// Bytes in a cache line.
const LINE: usize = 64;

/// Asks the CPU to bring the cache lines of `bytes` (at most `lines` of them) into its caches
/// without waiting for them.
fn prefetch(bytes: *const u8, len: usize, lines: usize) {
    for line in 0..len.div_ceil(LINE).min(lines) {
        let at = bytes.wrapping_add(line * LINE);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch never faults, whatever the
        // address; `wrapping_add` keeps the address computation itself defined.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }
}

/// Prefetches the key (when held apart from the map) and the node of an entry.
fn fetch_entry(key: &NodeKey, node: &Arc<Znode>) {
    let key = key.as_bytes();
    prefetch(key.as_ptr(), key.len(), 1);
    prefetch(Arc::as_ptr(node).cast(), std::mem::size_of::<Znode>(), 2);
}

/// The entries of `I` in their order, their memory fetched ahead as the module explains.
pub(super) struct FetchAhead<'a, I> {
    inner: I,
    window: VecDeque<(&'a NodeKey, &'a Arc<Znode>)>,
}

impl<'a, I: Iterator<Item = (&'a NodeKey, &'a Arc<Znode>)>> FetchAhead<'a, I> {
    /// Starts the walk over `inner`, fetching its first entries.
    pub(super) fn new(mut inner: I) -> Self {
        let mut window = VecDeque::with_capacity(AHEAD + 1);
        window.extend(
            inner
                .by_ref()
                .take(AHEAD)
                .inspect(|(k, n)| fetch_entry(k, n)),
        );
        FetchAhead { inner, window }
    }
}

impl<'a, I: Iterator<Item = (&'a NodeKey, &'a Arc<Znode>)>> Iterator for FetchAhead<'a, I> {
    type Item = (&'a NodeKey, &'a Arc<Znode>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((key, node)) = self.inner.next() {
            fetch_entry(key, node);
            self.window.push_back((key, node));
        }
        if let Some((_, node)) = self.window.get(AHEAD / 2) {
            let data = node.data();
            prefetch(data.as_ptr(), data.len(), 2);
        }
        self.window.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_tree::NodeStat;

    #[test]
    fn every_entry_comes_out_once_in_order() {
        for len in [0, 1, AHEAD / 2, AHEAD, AHEAD + 1, 100] {
            let entries: Vec<(NodeKey, Arc<Znode>)> = (0..len)
                .map(|i| {
                    let data = vec![i as u8; i];
                    let node = Znode::new(data, Arc::from(Vec::new()), NodeStat::default());
                    (NodeKey::new(format!("/n{i:03}").as_bytes()), Arc::new(node))
                })
                .collect();
            let walked: Vec<_> = FetchAhead::new(entries.iter().map(|(k, n)| (k, n))).collect();
            let expected: Vec<_> = entries.iter().map(|(k, n)| (k, n)).collect();
            assert_eq!(walked, expected, "{len} entries");
        }
    }
}
