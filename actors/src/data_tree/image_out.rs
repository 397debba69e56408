//! Writing a tree's snapshot images.
//!
//! A snapshot file holds format 5 ([`super::compact_image`]), streamed through a small buffer
//! in one pass over the znodes: each distinct ACL is numbered, and written whole, where a
//! znode first holds it, and nothing before the znodes depends on what follows (the file's
//! header takes the length after the stream). The thread never holds an image of the whole
//! tree nor reads the znodes twice.
//!
//! A SNAP carries format 3 ([`super::image`]), which servers of earlier builds read too: its
//! table of distinct ACLs comes first, so a pass numbers them (and measures the image) before
//! the znodes are streamed to the peer link.

use super::bincode_out::{i32_len, i64_len, put_bytes, put_i32, put_i64, put_u64, u64_len};
use super::compact_image::{self, ZnodesOut};
use super::image::TAG_3;
use super::node_key::NodeKey;
use super::store::{self, NodeMap};
use super::{AclEntry, DataTree, NodeStat, SessionEntry, Znode};
use crate::storage::SnapshotImage;
use ensemble_messages::codec;
use ensemble_messages::zk::SessionId;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Bytes gathered before each write of a streamed image.
pub(super) const CHUNK: usize = 256 * 1024;

impl DataTree {
    /// The snapshot image of this tree (format 5), to stream into a snapshot file: nothing is
    /// read before it is written. Take it of a clone (O(1)) away from the thread that applies
    /// txns: writing it reads every znode.
    pub fn image(self) -> TreeImage {
        TreeImage { tree: self }
    }

    /// The snapshot image of the tree in format 3, in memory.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let written = self.write_format_3(&mut out, |out, len| out.reserve_exact(len));
        debug_assert!(written.is_ok(), "writing into memory does not fail");
        out
    }

    /// Streams the snapshot image of the tree in format 3 into `out` (a SNAP carries it, and
    /// servers of earlier builds read only this format), a chunk of it at a time. Take it of a
    /// clone (O(1)) away from the thread that applies txns: writing it reads every znode twice.
    pub fn write_snap_image(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.write_format_3(out, |_, _| ())
    }

    /// Writes format 3 into `out`, once `reserve` was told its length.
    fn write_format_3<W: Write>(
        &self,
        out: &mut W,
        reserve: impl FnOnce(&mut W, usize),
    ) -> std::io::Result<()> {
        let (table, nodes_len) = AclTable::of(&self.nodes);
        let acls: Vec<&[AclEntry]> = table.acls.iter().map(|a| &**a).collect();
        let mut head = Vec::new();
        // A tuple in bincode is its elements one after the other; the znodes are a sequence.
        encode_into(&(TAG_3, self.last_applied, &acls), &mut head);
        put_u64(&mut head, self.nodes.len() as u64);
        let mut tail = Vec::new();
        encode_into(&SessionsOut(&self.sessions), &mut tail);
        let len = head.len() as u64 + nodes_len + tail.len() as u64;
        reserve(out, usize::try_from(len).unwrap_or(0));
        out.write_all(&head)?;
        let mut last_acl = (0, 0);
        let mut buf = Vec::with_capacity(CHUNK * 2);
        for (key, n) in self.nodes.iter_fetching_ahead() {
            let acl = table.index_of(address(&n.acl), &mut last_acl);
            put_node(key, n, acl, &mut buf);
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        buf.extend_from_slice(&tail);
        out.write_all(&buf)
    }
}

/// A tree to stream as an image of format 5.
pub struct TreeImage {
    tree: DataTree,
}

impl SnapshotImage for TreeImage {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let tree = &self.tree;
        let mut buf = Vec::with_capacity(CHUNK * 2);
        compact_image::put_head(&mut buf, tree.last_applied, tree.nodes.len());
        let mut znodes = ZnodesOut::default();
        for (key, n) in tree.nodes.iter_fetching_ahead() {
            znodes.put(key, n, &mut buf);
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        encode_into(&SessionsOut(&tree.sessions), &mut buf);
        out.write_all(&buf)
    }
}

/// Appends a znode to `buf` (format 3), its ACL as the index `acl`.
fn put_node(key: &NodeKey, n: &Znode, acl: u32, buf: &mut Vec<u8>) {
    store::put_path_of(key, buf);
    put_bytes(buf, n.data());
    buf.push(u8::from(n.is_null_data()));
    put_u64(buf, u64::from(acl));
    put_stat(buf, &n.stat);
}

/// Distinct ACLs by the address of their shared copy, and their indexes, for format 3.
struct AclTable {
    index: HashMap<usize, u32>,
    acls: Vec<Arc<[AclEntry]>>,
}

impl AclTable {
    /// The table of `nodes`' ACLs, and the length of their encoded znodes (format 3).
    fn of(nodes: &NodeMap) -> (Self, u64) {
        let mut table = AclTable {
            index: HashMap::new(),
            acls: Vec::new(),
        };
        let mut len = 0u64;
        // Most znodes share the ACL of the znode before them: skip the map for those.
        let mut last_acl = (0, 0);
        for (key, n) in nodes.iter_fetching_ahead() {
            let at = address(&n.acl);
            if last_acl.0 != at {
                let next = table.acls.len() as u32;
                let id = *table.index.entry(at).or_insert(next);
                if id == next {
                    table.acls.push(n.acl.clone());
                }
                last_acl = (at, id);
            }
            let (path, data) = (key.as_bytes().len() as u64, n.data().len() as u64);
            len += u64_len(path) as u64 + path + u64_len(data) as u64 + data + 1;
            len += (u64_len(u64::from(last_acl.1)) + stat_len(&n.stat)) as u64;
        }
        (table, len)
    }

    /// The index of the ACL at `at`, remembering the last one asked for in `last`.
    fn index_of(&self, at: usize, last: &mut (usize, u32)) -> u32 {
        if last.0 != at {
            *last = (at, self.index.get(&at).copied().unwrap_or(0));
        }
        last.1
    }
}

/// The address of an ACL's shared copy, which names it while the tree being written holds it.
pub(super) fn address(acl: &Arc<[AclEntry]>) -> usize {
    Arc::as_ptr(acl).cast::<AclEntry>() as usize
}

/// Appends a Stat, its fields in declaration order.
fn put_stat(out: &mut Vec<u8>, s: &NodeStat) {
    put_i64(out, s.czxid);
    put_i64(out, s.mzxid);
    put_i64(out, s.ctime);
    put_i64(out, s.mtime);
    put_i32(out, s.version);
    put_i32(out, s.cversion);
    put_i32(out, s.aversion);
    put_i64(out, s.ephemeral_owner);
    put_i32(out, s.data_length);
    put_i32(out, s.num_children);
    put_i64(out, s.pzxid);
}

/// Bytes [`put_stat`] appends for `s`.
fn stat_len(s: &NodeStat) -> usize {
    [
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        s.ephemeral_owner,
        s.pzxid,
    ]
    .into_iter()
    .map(i64_len)
    .sum::<usize>()
        + [
            s.version,
            s.cversion,
            s.aversion,
            s.data_length,
            s.num_children,
        ]
        .into_iter()
        .map(i32_len)
        .sum::<usize>()
}

/// Appends `value` in bincode.
pub(super) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, codec::bincode_config())
        .expect("the tree always encodes into memory");
}

/// The sessions, written.
pub(super) struct SessionsOut<'a>(pub(super) &'a imbl::OrdMap<SessionId, Arc<SessionEntry>>);

impl Serialize for SessionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (id, session) in self.0.iter() {
            seq.serialize_element(&(id, session.as_ref()))?;
        }
        seq.end()
    }
}
