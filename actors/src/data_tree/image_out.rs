//! Writing a tree's snapshot image (the format is in [`super::image`]). A [`TreeImage`] is
//! measured first, in the pass that numbers the distinct ACLs, so that its exact length is
//! known before its bytes: the snapshot file streams it through a small buffer instead of
//! holding an image of the whole tree (176 MB at a million znodes of 100 bytes).

use super::bincode_out::{i32_len, i64_len, put_bytes, put_i32, put_i64, put_u64, u64_len};
use super::image::TAG;
use super::store::{self, NodeMap};
use super::{AclEntry, DataTree, NodeStat, SessionEntry};
use crate::storage::SnapshotImage;
use ensemble_messages::codec;
use ensemble_messages::zk::SessionId;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Bytes gathered before each write of a streamed image.
const CHUNK: usize = 256 * 1024;

impl DataTree {
    /// The snapshot image of this tree, measured and ready to write. Take it of a clone (O(1))
    /// away from the thread that applies txns: it reads every znode.
    pub fn image(self) -> TreeImage {
        TreeImage::of(self)
    }

    /// The snapshot image of the tree, in memory (a SNAP carries it in a peer message).
    pub fn serialize(&self) -> Vec<u8> {
        let image = self.clone().image();
        let mut out = Vec::with_capacity(usize::try_from(image.len()).unwrap_or(0));
        out.extend_from_slice(&image.head);
        // Straight into the one buffer: nothing to pass on while it grows.
        let kept: std::io::Result<()> = image.put_nodes(&mut out, |_| Ok(()));
        kept.expect("appending to memory never fails");
        out.extend_from_slice(&image.tail);
        out
    }
}

/// A tree's image: the bytes before and after its znodes encoded, the znodes' ACL table and
/// their encoded length.
pub struct TreeImage {
    tree: DataTree,
    table: AclTable,
    head: Vec<u8>,
    tail: Vec<u8>,
    nodes_len: u64,
}

impl TreeImage {
    fn of(tree: DataTree) -> Self {
        let (table, nodes_len) = AclTable::of(&tree.nodes);
        let acls: Vec<&[AclEntry]> = table.acls.iter().map(|a| &**a).collect();
        let mut head = Vec::new();
        // A tuple in bincode is its elements one after the other; the znodes are a sequence.
        encode_into(&(TAG, tree.last_applied, &acls), &mut head);
        put_u64(&mut head, tree.nodes.len() as u64);
        let mut tail = Vec::new();
        encode_into(&SessionsOut(&tree.sessions), &mut tail);
        TreeImage {
            tree,
            table,
            head,
            tail,
            nodes_len,
        }
    }
}

impl SnapshotImage for TreeImage {
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.nodes_len + self.tail.len() as u64
    }

    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self.head)?;
        let mut buf = Vec::with_capacity(CHUNK * 2);
        self.put_nodes(&mut buf, |buf| -> std::io::Result<()> {
            if buf.len() >= CHUNK {
                out.write_all(buf)?;
                buf.clear();
            }
            Ok(())
        })?;
        out.write_all(&buf)?;
        out.write_all(&self.tail)
    }
}

impl TreeImage {
    /// Appends every znode to `buf`, calling `pass_on` after each (to write out and empty
    /// `buf` when it is large enough).
    fn put_nodes<E>(
        &self,
        buf: &mut Vec<u8>,
        mut pass_on: impl FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut last_acl = (0, 0);
        for (key, n) in self.tree.nodes.iter() {
            store::put_path_of(key, buf);
            put_bytes(buf, n.data());
            buf.push(u8::from(n.is_null_data()));
            let acl = self.table.index_of(address(&n.acl), &mut last_acl);
            put_u64(buf, u64::from(acl));
            put_stat(buf, &n.stat);
            pass_on(buf)?;
        }
        Ok(())
    }
}

/// Distinct ACLs by the address of their shared copy, and their indexes.
struct AclTable {
    index: HashMap<usize, u32>,
    acls: Vec<Arc<[AclEntry]>>,
}

impl AclTable {
    /// The table of `nodes`' ACLs, and the length of their encoded znodes.
    fn of(nodes: &NodeMap) -> (Self, u64) {
        let mut table = AclTable {
            index: HashMap::new(),
            acls: Vec::new(),
        };
        let mut len = 0u64;
        // Most znodes share the ACL of the znode before them: skip the map for those.
        let mut last_acl = (0, 0);
        for (key, n) in nodes.iter() {
            let at = address(&n.acl);
            if last_acl.0 != at {
                let next = table.acls.len() as u32;
                let id = *table.index.entry(at).or_insert(next);
                if id == next {
                    table.acls.push(n.acl.clone());
                }
                last_acl = (at, id);
            }
            let (path, data) = (key.len() as u64, n.data().len() as u64);
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

fn address(acl: &Arc<[AclEntry]>) -> usize {
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
fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, codec::bincode_config())
        .expect("the tree always encodes into memory");
}

/// The sessions, written.
struct SessionsOut<'a>(&'a imbl::OrdMap<SessionId, Arc<SessionEntry>>);

impl Serialize for SessionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (id, session) in self.0.iter() {
            seq.serialize_element(&(id, session.as_ref()))?;
        }
        seq.end()
    }
}
