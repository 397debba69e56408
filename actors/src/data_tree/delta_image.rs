//! Incremental snapshot images (see docs/incremental-snapshots.md): the znodes written since a
//! base snapshot, applied onto the tree that snapshot rebuilds.
//!
//! ```text
//! delta:   `ENTD`, base zxid, last applied zxid, changed znodes, END, removed count,
//!          removed paths (bincode strings), sessions (bincode)
//! changed: each as a znode of format 5 (see [`super::compact_image`]), in key order
//! END:     the byte 0x80, which no znode's flags hold
//! ```

use super::bincode_out::put_u64;
use super::compact_image::{ZnodesIn, ZnodesOut};
use super::image::Acls;
use super::image_out::{encode_into, SessionsOut, CHUNK};
use super::image_reader::Reader;
use super::node_key::NodeKey;
use super::{path, store, AclCache, DataTree, SessionEntry, Znode};
use crate::storage::SnapshotImage;
use ensemble_messages::codec;
use ensemble_messages::zk::SessionId;
use ensemble_messages::Zxid;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::sync::Arc;

/// First bytes of a delta image.
const TAG_D: [u8; 4] = *b"ENTD";
/// The byte that closes the changed znodes.
const END: u8 = 0x80;

/// A tree's changes since the snapshot at `base`, to stream into a snapshot file.
pub struct DeltaImage {
    tree: DataTree,
    base: Zxid,
    changed: ChangedZnodes,
}

/// The znodes written since changes were last taken from a tree, as noted: in the order
/// written, with repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedZnodes(Vec<NodeKey>);

impl DataTree {
    /// The znodes written since the last call, and noting starts over; `None` when they were
    /// not all noted (the first call, which starts noting, or too many: a whole snapshot is
    /// then due). A tree read from an image or cloned notes nothing until it is called.
    pub fn take_changes(&mut self) -> Option<ChangedZnodes> {
        self.nodes.take_changes().map(ChangedZnodes)
    }

    /// The delta image of this tree (a clone) against the snapshot at `base`, given the
    /// znodes written since it. Sorts them: call it off the thread that applies txns.
    pub fn delta_image(self, base: Zxid, mut changed: ChangedZnodes) -> DeltaImage {
        changed.0.sort_unstable();
        changed.0.dedup();
        DeltaImage {
            tree: self,
            base,
            changed,
        }
    }
}

impl SnapshotImage for DeltaImage {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let tree = &self.tree;
        let mut buf = Vec::with_capacity(CHUNK * 2);
        buf.extend_from_slice(&TAG_D);
        put_u64(&mut buf, self.base.0);
        put_u64(&mut buf, tree.last_applied.0);
        let mut znodes = ZnodesOut::default();
        let mut removed = Vec::new();
        for key in &self.changed.0 {
            match tree.nodes.get_key(key) {
                Some(n) => znodes.put(key, n, &mut buf),
                None => removed.push(key),
            }
            // In chunks, as a whole image streams: the file paces its write-back by them.
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        buf.push(END);
        put_u64(&mut buf, removed.len() as u64);
        for key in removed {
            store::put_path_of(key, &mut buf);
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        encode_into(&SessionsOut(&tree.sessions), &mut buf);
        out.write_all(&buf)
    }

    fn base(&self) -> Option<Zxid> {
        Some(self.base)
    }
}

/// A delta image read back, before it is applied.
#[derive(Debug)]
pub struct DeltaContent {
    /// The zxid of the snapshot it applies onto.
    pub base: Zxid,
    /// The zxid of the last txn it covers.
    pub last_applied: Zxid,
    /// The znodes written since the base, in key order; their child counts are zero (applying
    /// recounts them).
    pub changed: Vec<(String, Znode)>,
    /// The paths of the znodes removed since the base (some may have been created since).
    pub removed: Vec<String>,
    /// The whole session table.
    pub sessions: Vec<(SessionId, SessionEntry)>,
}

impl DeltaContent {
    /// Reads a delta image; the error says where it does not parse.
    pub fn read(bytes: &[u8]) -> Result<DeltaContent, String> {
        Self::read_sharing(bytes, AclCache::default()).0
    }

    /// As [`Self::read`], sharing ACLs through `cache`, which is given back.
    fn read_sharing(bytes: &[u8], cache: AclCache) -> (Result<DeltaContent, String>, AclCache) {
        let mut source = bytes;
        let mut r = Reader::new(&mut source, bytes.len() as u64);
        let mut znodes = ZnodesIn::with_acls(Acls::with_cache(cache));
        let read = Self::read_from(&mut r, &mut znodes);
        (read, znodes.acls.into_cache())
    }

    fn read_from(r: &mut Reader, znodes: &mut ZnodesIn) -> Result<DeltaContent, String> {
        let (base, last_applied) = read_head(r)?;
        let changed = read_changed(r, znodes)?;
        let removed = read_removed(r)?;
        let sessions = codec::decode(r.rest()?).map_err(|e| format!("its sessions: {e}"))?;
        Ok(DeltaContent {
            base,
            last_applied,
            changed,
            removed,
            sessions,
        })
    }
}

/// The head of a delta image: the zxids of its base and of its last txn.
fn read_head(r: &mut Reader) -> Result<(Zxid, Zxid), String> {
    if r.take(TAG_D.len())? != TAG_D {
        return Err("not a delta image".into());
    }
    Ok((Zxid(r.u64()?), Zxid(r.u64()?)))
}

/// The changed znodes of `r`, up to END.
fn read_changed(r: &mut Reader, znodes: &mut ZnodesIn) -> Result<Vec<(String, Znode)>, String> {
    let mut changed = Vec::new();
    each_changed(r, znodes, |p, node| changed.push((p.to_owned(), node)))?;
    Ok(changed)
}

/// Reads the changed znodes of `r`, up to END, and gives each to `each` as it is read, its
/// path checked and its child count left for the tree to derive.
fn each_changed(
    r: &mut Reader,
    znodes: &mut ZnodesIn,
    mut each: impl FnMut(&str, Znode),
) -> Result<(), String> {
    loop {
        let flags = r.u8()?;
        if flags == END {
            return Ok(());
        }
        let (p, mut node) = znodes.read(flags, r)?;
        path::validate_path(p).map_err(|e| format!("znode {p:?}: {e}"))?;
        node.stat.num_children = 0;
        each(p, node);
    }
}

/// The removed paths of `r`.
fn read_removed(r: &mut Reader) -> Result<Vec<String>, String> {
    let count = r.u64()?;
    let mut removed = Vec::new();
    for _ in 0..count {
        let p = std::str::from_utf8(r.bytes()?).map_err(|_| "a removed path is not UTF-8")?;
        path::validate_path(p).map_err(|e| format!("removed znode {p:?}: {e}"))?;
        if p == "/" {
            return Err("it removes the root znode".into());
        }
        removed.push(p.to_owned());
    }
    Ok(removed)
}

impl DataTree {
    /// Applies a delta image onto this tree, which must be the one its base rebuilds; the
    /// error says what does not fit, and the tree is then left unusable.
    pub fn apply_delta(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.apply_delta_from(&mut { bytes }, bytes.len() as u64)
    }

    /// As [`Self::apply_delta`], of a delta image of `len` bytes that `source` streams: each
    /// changed znode goes into the tree as it is read, and each removed one out.
    pub fn apply_delta_from(&mut self, source: &mut dyn Read, len: u64) -> Result<(), String> {
        let mut r = Reader::new(source, len);
        let (base, last_applied) = read_head(&mut r)?;
        if base != self.last_applied {
            return Err(format!(
                "a delta on {base} does not apply to a tree at {}",
                self.last_applied
            ));
        }
        if last_applied <= base {
            return Err(format!(
                "a delta up to {last_applied} is not above its base {base}"
            ));
        }
        let mut znodes = ZnodesIn::with_acls(Acls::with_cache(std::mem::take(&mut self.acls)));
        let changed = self.put_changed(&mut r, &mut znodes);
        self.acls = znodes.acls.into_cache();
        let mut touched = changed?;
        self.take_removed(&mut r, &mut touched)?;
        self.recount_children(&touched)?;
        let sessions: Vec<(SessionId, SessionEntry)> =
            codec::decode(r.rest()?).map_err(|e| format!("its sessions: {e}"))?;
        self.sessions = imbl::OrdMap::new();
        for (id, mut s) in sessions {
            s.ephemerals.retain(|p| self.nodes.contains(p));
            self.sessions.insert(id, Arc::new(s));
        }
        self.last_applied = last_applied;
        Ok(())
    }

    /// Puts the changed znodes of `r` into the tree, up to END: the paths touched.
    fn put_changed(
        &mut self,
        r: &mut Reader,
        znodes: &mut ZnodesIn,
    ) -> Result<BTreeSet<String>, String> {
        let mut touched = BTreeSet::new();
        each_changed(r, znodes, |p, node| {
            self.nodes.insert(p, Arc::new(node));
            touched.insert(p.to_owned());
        })?;
        Ok(touched)
    }

    /// Takes the removed znodes of `r` out of the tree, adding those it held to `touched`.
    fn take_removed(
        &mut self,
        r: &mut Reader,
        touched: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        for p in read_removed(r)? {
            // A znode created and deleted since the base is listed too: nothing to remove.
            if self.nodes.remove(&p).is_some() {
                touched.insert(p);
            }
        }
        Ok(())
    }

    /// Sets the child count of every touched znode and of their parents, and checks that
    /// each touched znode's parent is there and no removed one left children behind.
    fn recount_children(&mut self, touched: &BTreeSet<String>) -> Result<(), String> {
        let mut counted = BTreeSet::new();
        for p in touched {
            if let Some(parent) = path::parent(p) {
                if self.nodes.contains(p) && !self.nodes.contains(parent) {
                    return Err(format!("znode {p:?} has no parent"));
                }
                counted.insert(parent.to_owned());
            }
            if self.nodes.contains(p) {
                counted.insert(p.clone());
            } else if self.nodes.child_names(p).next().is_some() {
                return Err(format!("removes {p:?} but not its children"));
            }
        }
        for p in counted {
            let n = self.nodes.child_names(&p).count();
            if let Some(node) = self.nodes.get_mut(&p) {
                node.stat.num_children = i32::try_from(n).unwrap_or(i32::MAX);
            }
        }
        Ok(())
    }
}
