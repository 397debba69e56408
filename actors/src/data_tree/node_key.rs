//! The key a znode is stored under, held in place when short.
//!
//! A lookup in the node map compares the key it seeks with a dozen or more stored keys. Were
//! every stored key a pointer to a string elsewhere on the heap, each comparison would read
//! one more scattered cache line; on a tree of a million znodes those reads were most of a
//! lookup's time. Keys of up to [`INLINE`] bytes (most paths) therefore live inside the map's
//! own nodes; longer ones are shared on the heap.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Longest key held in place. A key then takes 32 bytes, and an entry of the map (key and
/// znode pointer) 40: a pointer to a shared string took 16 in the entry and 48 more on the
/// heap (counts, bytes, the allocator's rounding) for a path of 17 to 32 bytes. Longer keys
/// cost 16 bytes more than a shared string alone would.
const INLINE: usize = 30;

/// A znode's key (see the store module for what it holds), ordered as its bytes.
#[derive(Clone)]
pub(super) enum NodeKey {
    /// A short key, held in place: its length and its bytes.
    Inline(u8, [u8; INLINE]),
    /// A long key, on the heap.
    Shared(Arc<[u8]>),
}

impl NodeKey {
    /// The key with these bytes.
    pub fn new(bytes: &[u8]) -> NodeKey {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut held = [0u8; INLINE];
                held[..bytes.len()].copy_from_slice(bytes);
                NodeKey::Inline(len, held)
            }
            _ => NodeKey::Shared(Arc::from(bytes)),
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            NodeKey::Inline(len, held) => &held[..usize::from(*len)],
            NodeKey::Shared(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for NodeKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for NodeKey {
    fn eq(&self, other: &NodeKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for NodeKey {}

impl PartialOrd for NodeKey {
    fn partial_cmp(&self, other: &NodeKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeKey {
    fn cmp(&self, other: &NodeKey) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_takes_32_bytes() {
        assert_eq!(std::mem::size_of::<NodeKey>(), 32);
    }

    #[test]
    fn short_keys_are_held_in_place_and_long_ones_shared() {
        let short = vec![b'a'; INLINE];
        let long = vec![b'a'; INLINE + 1];
        assert!(matches!(NodeKey::new(&short), NodeKey::Inline(..)));
        assert!(matches!(NodeKey::new(&long), NodeKey::Shared(_)));
        assert_eq!(NodeKey::new(&short).as_bytes(), &short[..]);
        assert_eq!(NodeKey::new(&long).as_bytes(), &long[..]);
        assert!(matches!(NodeKey::new(&[b'a'; 300]), NodeKey::Shared(_)));
    }

    #[test]
    fn keys_order_as_their_bytes_whichever_way_they_are_held() {
        let words: Vec<Vec<u8>> = [
            &b""[..],
            b"\0",
            b"\0a",
            b"/a\0b",
            b"/a\0bb",
            &[b'/'; INLINE],
            &[b'/'; INLINE + 1],
            &[b'/'; INLINE + 2],
            b"/a/b\0c",
            b"\xff",
        ]
        .iter()
        .map(|w| w.to_vec())
        .collect();
        for a in &words {
            for b in &words {
                let (ka, kb) = (NodeKey::new(a), NodeKey::new(b));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} against {b:?}");
                assert_eq!(ka == kb, a == b);
            }
        }
    }
}
