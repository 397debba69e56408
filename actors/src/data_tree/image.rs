//! The snapshot images of a tree. Format 4 (a snapshot file's): `ENT4`, then in bincode the
//! last applied zxid, every znode (path, data, whether the data is null, ACL, Stat) with
//! parents before their children, and the sessions. A znode's ACL is `0, number` for one an
//! earlier znode held, or `1, ACL` for a new one, which takes the next number: the writer
//! numbers the distinct ACLs as it streams the znodes. Format 3 (a SNAP's) is `ENT3`, the
//! zxid, each distinct ACL once (as Apache's snapshots store their ACL map), then the znodes
//! with an ACL number alone, and the sessions. Reading builds the tree as it goes: no second
//! copy of the znodes, children counted rather than trusted, and a znode whose parent did not
//! come before it refused.
//!
//! Images of format 2 (the serde form of the tree as it was, children sets included) still
//! read: they start with a map length, never with a tag, whose first key is `/`.

use super::store::NodeMap;
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
/// In format 4, the variant of a znode's ACL that an earlier znode held: its number follows.
pub(super) const ACL_KNOWN: u64 = 0;
/// In format 4, the variant of a znode's ACL that no earlier znode held: the ACL follows.
pub(super) const ACL_NEW: u64 = 1;

impl DataTree {
    /// Rebuilds a tree from a snapshot image (format 4, 3 or 2).
    pub fn deserialize(bytes: &[u8]) -> Result<Self, String> {
        let read = if bytes.starts_with(&TAG) || bytes.starts_with(&TAG_3) {
            codec::decode::<ImageIn>(bytes).map(|i| i.0)
        } else {
            codec::decode::<LegacyTree>(bytes).map(LegacyTree::into_tree)
        };
        read.map_err(|e| format!("snapshot does not decode as a data tree: {e}"))
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
enum AclRef {
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
struct Acls {
    cache: AclCache,
    numbered: Vec<Arc<[AclEntry]>>,
}

impl Acls {
    /// Gives `acl` the next number.
    fn define(&mut self, acl: &[AclEntry]) -> Arc<[AclEntry]> {
        let shared = self.cache.intern(acl);
        self.numbered.push(Arc::clone(&shared));
        shared
    }

    /// The shared copy `r` stands for; `None` for a number not given yet.
    fn resolve(&mut self, r: AclRef) -> Option<Arc<[AclEntry]>> {
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
        Ok(ImageIn(tree))
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
        let mut nodes = NodeMap::default();
        while let Some(n) = seq.next_element::<NodeIn<A>>()? {
            let fail = |why: &str| de::Error::custom(format!("znode {:?}: {why}", n.path));
            path::validate_path(&n.path).map_err(|e| fail(&e))?;
            let acl = self
                .acls
                .resolve(n.acl.into())
                .ok_or_else(|| fail("no such ACL"))?;
            if nodes.contains(&n.path) {
                return Err(fail("listed twice"));
            }
            match path::parent(&n.path) {
                Some(p) => {
                    let parent = nodes
                        .get_mut(p)
                        .ok_or_else(|| fail("its parent is missing"))?;
                    parent.stat.num_children = parent.stat.num_children.saturating_add(1);
                }
                None if !nodes.is_empty() => return Err(fail("the root comes first")),
                None => {}
            }
            let stat = NodeStat {
                num_children: 0,
                ..n.stat
            };
            let node = Znode::new(n.data.0, acl, stat).with_null_data(n.null_data);
            nodes.insert(&n.path, Arc::new(node));
        }
        if nodes.get("/").is_none() {
            return Err(de::Error::custom("the image has no root znode"));
        }
        Ok(nodes)
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
