//! The snapshot images of a tree. Format 5 (a snapshot file's) is in [`super::compact_image`].
//! Format 4 (the snapshot files of the previous build): `ENT4`, then in bincode the last
//! applied zxid, every znode (path, data, whether the data is null, ACL, Stat) with parents
//! before their children, and the sessions. A znode's ACL is `0, number` for one an earlier
//! znode held, or `1, ACL` for a new one, which takes the next number: the writer numbered the
//! distinct ACLs as it streamed the znodes. Format 3 (a SNAP's) is `ENT3`, the zxid, each
//! distinct ACL once (as Apache's snapshots store their ACL map), then the znodes with an ACL
//! number alone, and the sessions. Reading builds the tree as it goes: no second copy of the
//! znodes, children counted rather than trusted, and a znode whose parent did not come before
//! it refused.
//!
//! Images of format 2 (the serde form of the tree as it was, children sets included) still
//! read: they start with a map length, never with a tag, whose first key is `/`.

use super::compact_image::{self, TAG_5};
use super::store::{self, NodeMap};
use super::{path, AclCache, AclEntry, DataTree, NodeStat, SessionEntry, Znode};
use ensemble_messages::zk::SessionId;
use ensemble_messages::{codec, Zxid};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// First bytes of an image of format 4.
pub(super) const TAG: [u8; 4] = *b"ENT4";
/// First bytes of an image of format 3.
pub(super) const TAG_3: [u8; 4] = *b"ENT3";
/// In formats 4 and 5, the variant of a znode's ACL that an earlier znode held: its number
/// follows.
pub(super) const ACL_KNOWN: u64 = 0;
/// In formats 4 and 5, the variant of a znode's ACL that no earlier znode held: the ACL
/// follows.
pub(super) const ACL_NEW: u64 = 1;

impl DataTree {
    /// Rebuilds a tree from a snapshot image (format 5, 4, 3 or 2).
    pub fn deserialize(bytes: &[u8]) -> Result<Self, String> {
        let read = if bytes.starts_with(&TAG_5) {
            compact_image::read(&mut { bytes }, bytes.len() as u64)
        } else if bytes.starts_with(&TAG) || bytes.starts_with(&TAG_3) {
            codec::decode::<ImageIn>(bytes)
                .map(|i| i.0)
                .map_err(|e| e.to_string())
        } else {
            codec::decode::<LegacyTree>(bytes)
                .map(LegacyTree::into_tree)
                .map_err(|e| e.to_string())
        };
        read.map_err(|e| format!("snapshot does not decode as a data tree: {e}"))
    }

    /// Rebuilds a tree from an image of `len` bytes read from `reader`, as
    /// [`DataTree::deserialize`] does from a slice. Images of formats 3 (a SNAP's), 4 and 5
    /// (a snapshot file's) are read as they stream, so the image is never held whole beside
    /// the tree; format 2 is read whole first. The caller checks that `reader` held no more
    /// than the image.
    pub fn read_image(reader: &mut dyn std::io::Read, len: u64) -> Result<Self, String> {
        use std::io::Read;
        let fail = |e: std::io::Error| format!("reading a snapshot image: {e}");
        let mut tag = Vec::with_capacity(4);
        reader.take(4).read_to_end(&mut tag).map_err(fail)?;
        let what = |e| format!("snapshot does not decode as a data tree: {e}");
        let mut chained = (&tag[..]).chain(reader);
        if tag[..] == TAG_5 {
            return compact_image::read(&mut chained, len).map_err(what);
        }
        if tag[..] == TAG_3 || tag[..] == TAG {
            return codec::decode_from_reader::<ImageIn, _>(chained, len)
                .map(|i| i.0)
                .map_err(|e| what(e.to_string()));
        }
        let reader = chained.into_inner().1;
        let rest = len.saturating_sub(tag.len() as u64);
        let mut bytes = tag;
        reader.take(rest).read_to_end(&mut bytes).map_err(fail)?;
        Self::deserialize(&bytes)
    }

    /// The tree of an image read: its znodes, their ACLs, and its sessions, each left with the
    /// ephemerals the znodes hold.
    pub(super) fn assemble(
        nodes: NodeMap,
        acls: Acls,
        sessions: Vec<(SessionId, SessionEntry)>,
        last_applied: Zxid,
    ) -> DataTree {
        let mut tree = DataTree {
            nodes,
            acls: acls.cache,
            sessions: imbl::OrdMap::new(),
            last_applied,
        };
        for (id, mut s) in sessions {
            s.ephemerals.retain(|p| tree.nodes.contains(p));
            tree.sessions.insert(id, Arc::new(s));
        }
        tree
    }
}

/// One znode, read, its ACL as `A` (a number in format 3, an [`AclRef`] in format 4).
#[derive(Deserialize)]
struct NodeIn<A> {
    path: String,
    data: BytesIn,
    null_data: bool,
    acl: A,
    stat: NodeStat,
}

/// A znode's ACL in an image: by the number of one listed or met before, or new. (The
/// variants' order is their tag: [`ACL_KNOWN`], [`ACL_NEW`].)
#[derive(Deserialize)]
pub(super) enum AclRef {
    Known(u32),
    New(Vec<AclEntry>),
}

impl From<u32> for AclRef {
    fn from(number: u32) -> Self {
        AclRef::Known(number)
    }
}

/// The ACLs of an image read so far: shared through the tree's cache, by number.
#[derive(Default)]
pub(super) struct Acls {
    cache: AclCache,
    numbered: Vec<Arc<[AclEntry]>>,
}

impl Acls {
    /// Numbers ACLs afresh, sharing them through `cache`.
    pub(super) fn with_cache(cache: AclCache) -> Self {
        Acls {
            cache,
            numbered: Vec::new(),
        }
    }

    /// The cache the ACLs were shared through.
    pub(super) fn into_cache(self) -> AclCache {
        self.cache
    }

    /// Gives `acl` the next number.
    fn define(&mut self, acl: &[AclEntry]) -> Arc<[AclEntry]> {
        let shared = self.cache.intern(acl);
        self.numbered.push(Arc::clone(&shared));
        shared
    }

    /// The shared copy `r` stands for; `None` for a number not given yet.
    pub(super) fn resolve(&mut self, r: AclRef) -> Option<Arc<[AclEntry]>> {
        match r {
            AclRef::Known(n) => self.numbered.get(n as usize).cloned(),
            AclRef::New(acl) => Some(self.define(&acl)),
        }
    }
}

/// Data read as one byte string.
struct BytesIn(Vec<u8>);

impl<'de> Deserialize<'de> for BytesIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = BytesIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<BytesIn, E> {
        Ok(BytesIn(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<BytesIn, E> {
        Ok(BytesIn(v))
    }
}

/// A tree read from an image of this format.
struct ImageIn(DataTree);

impl<'de> Deserialize<'de> for ImageIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_tuple(5, ImageVisitor)
    }
}

struct ImageVisitor;

/// The next element of an image, which must be there.
fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    what: &str,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom(format!("image ends before its {what}")))
}

impl<'de> Visitor<'de> for ImageVisitor {
    type Value = ImageIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a data tree image")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ImageIn, A::Error> {
        let tag: [u8; 4] = next(&mut seq, "tag")?;
        let last_applied: Zxid = next(&mut seq, "zxid")?;
        let mut acls = Acls::default();
        let nodes = if tag == TAG_3 {
            let listed: Vec<Vec<AclEntry>> = next(&mut seq, "ACLs")?;
            for acl in &listed {
                acls.define(acl);
            }
            drop(listed);
            seq.next_element_seed(NodesSeed::<u32>::new(&mut acls))?
        } else if tag == TAG {
            seq.next_element_seed(NodesSeed::<AclRef>::new(&mut acls))?
        } else {
            return Err(de::Error::custom("not a data tree image"));
        };
        let nodes = nodes.ok_or_else(|| de::Error::custom("image ends before its znodes"))?;
        let sessions: Vec<(SessionId, SessionEntry)> = next(&mut seq, "sessions")?;
        Ok(ImageIn(DataTree::assemble(
            nodes,
            acls,
            sessions,
            last_applied,
        )))
    }
}

/// Reads the znodes into a map, their ACLs (written as `A`) shared through `acls`.
struct NodesSeed<'a, A> {
    acls: &'a mut Acls,
    written_as: PhantomData<A>,
}

impl<'a, A> NodesSeed<'a, A> {
    fn new(acls: &'a mut Acls) -> Self {
        NodesSeed {
            acls,
            written_as: PhantomData,
        }
    }
}

impl<'de, A: Deserialize<'de> + Into<AclRef>> DeserializeSeed<'de> for NodesSeed<'_, A> {
    type Value = NodeMap;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NodeMap, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, A: Deserialize<'de> + Into<AclRef>> Visitor<'de> for NodesSeed<'_, A> {
    type Value = NodeMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("znodes, parents first")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<NodeMap, S::Error> {
        let mut nodes = NodesIn::default();
        while let Some(n) = seq.next_element::<NodeIn<A>>()? {
            let fail = |why: &str| de::Error::custom(format!("znode {:?}: {why}", n.path));
            let acl = self
                .acls
                .resolve(n.acl.into())
                .ok_or_else(|| fail("no such ACL"))?;
            let node = Znode::new(n.data.0, acl, n.stat).with_null_data(n.null_data);
            nodes.add(&n.path, node).map_err(|e| fail(&e))?;
        }
        nodes.finish().map_err(de::Error::custom)
    }
}

/// The znodes of an image, gathered into a map as they are read, parents first.
///
/// Images list the znodes in the map's key order, which puts a znode's children one after the
/// other: while they come in that order, a znode cannot be one listed before (no lookup), and
/// its parent is looked up only when it is not the previous znode's parent.
#[derive(Default)]
pub(super) struct NodesIn {
    nodes: NodeMap,
    /// The key of the znode added last, and room for the next one's.
    last_key: Vec<u8>,
    key: Vec<u8>,
    /// Whether a znode came out of key order: each is then looked for before it is added.
    unordered: bool,
    /// The parent of the znode added last, and how many of its children are not yet counted
    /// in its Stat.
    parent: String,
    uncounted: i32,
}

impl NodesIn {
    /// Adds `node` at `path`, counting it among its parent's children (the count it was
    /// read with is not trusted); the error says what is wrong with it.
    pub(super) fn add(&mut self, path: &str, mut node: Znode) -> Result<(), String> {
        path::validate_path(path)?;
        store::key_into(path, &mut self.key);
        if !self.unordered && !self.nodes.is_empty() && self.key <= self.last_key {
            self.unordered = true;
        }
        if self.unordered && self.nodes.contains(path) {
            return Err("listed twice".into());
        }
        match path::parent(path) {
            Some(p) => self.count_child_of(p)?,
            None if !self.nodes.is_empty() => return Err("the root comes first".into()),
            None => {}
        }
        node.stat.num_children = 0;
        self.nodes.insert(path, Arc::new(node));
        std::mem::swap(&mut self.last_key, &mut self.key);
        Ok(())
    }

    /// Counts one more child of `parent`, which must be there.
    fn count_child_of(&mut self, parent: &str) -> Result<(), String> {
        if self.uncounted == 0 || self.parent != parent {
            self.count_children();
            if !self.nodes.contains(parent) {
                return Err("its parent is missing".into());
            }
            parent.clone_into(&mut self.parent);
        }
        self.uncounted = self.uncounted.saturating_add(1);
        Ok(())
    }

    /// Adds the children not yet counted to their parent's Stat.
    fn count_children(&mut self) {
        if let Some(parent) = self.nodes.get_mut(&self.parent) {
            let n = &mut parent.stat.num_children;
            *n = n.saturating_add(std::mem::take(&mut self.uncounted));
        }
    }

    /// The znodes read, which must include the root.
    pub(super) fn finish(mut self) -> Result<NodeMap, String> {
        self.count_children();
        if self.nodes.get("/").is_none() {
            return Err("the image has no root znode".into());
        }
        Ok(self.nodes)
    }
}

/// The serde form of the tree in format 2.
#[derive(Deserialize)]
struct LegacyTree {
    nodes: BTreeMap<String, LegacyZnode>,
    sessions: BTreeMap<SessionId, SessionEntry>,
    last_applied: Zxid,
}

/// A znode in format 2.
#[derive(Deserialize)]
struct LegacyZnode {
    data: Vec<u8>,
    acl: Vec<AclEntry>,
    stat: NodeStat,
    _children: BTreeSet<String>,
}

impl LegacyTree {
    fn into_tree(self) -> DataTree {
        let znodes = self
            .nodes
            .into_iter()
            .map(|(p, n)| (p, Znode::new(n.data, n.acl.into(), n.stat)));
        DataTree::from_imported(znodes, self.sessions, self.last_applied)
    }
}
