//! The snapshot image of a tree (format 3): `ENT3`, then in bincode the last applied zxid,
//! each distinct ACL once (as Apache's snapshots store their ACL map), every znode (path,
//! data, whether the data is null, ACL index, Stat) with parents before their children, and
//! the sessions. Reading builds the tree as it goes: no second copy of the znodes, children
//! counted rather than trusted, and a znode whose parent did not come before it refused.
//!
//! Images of format 2 (the serde form of the tree as it was, children sets included) still
//! read: they start with a map length, never with the tag, whose first key is `/`.

use super::store::NodeMap;
use super::{path, AclCache, AclEntry, DataTree, NodeStat, SessionEntry, Znode};
use ensemble_messages::zk::SessionId;
use ensemble_messages::{codec, Zxid};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// First bytes of an image of this format.
pub(super) const TAG: [u8; 4] = *b"ENT3";

impl DataTree {
    /// Rebuilds a tree from a snapshot image (this format or format 2).
    pub fn deserialize(bytes: &[u8]) -> Result<Self, String> {
        let read = if bytes.starts_with(&TAG) {
            codec::decode::<ImageIn>(bytes).map(|i| i.0)
        } else {
            codec::decode::<LegacyTree>(bytes).map(LegacyTree::into_tree)
        };
        read.map_err(|e| format!("snapshot does not decode as a data tree: {e}"))
    }
}

/// One znode, read.
#[derive(Deserialize)]
struct NodeIn {
    path: String,
    data: BytesIn,
    null_data: bool,
    acl: u32,
    stat: NodeStat,
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
        if tag != TAG {
            return Err(de::Error::custom("not a data tree image"));
        }
        let last_applied: Zxid = next(&mut seq, "zxid")?;
        let listed: Vec<Vec<AclEntry>> = next(&mut seq, "ACLs")?;
        let mut acls = AclCache::default();
        let shared: Vec<Arc<[AclEntry]>> = listed.iter().map(|a| acls.intern(a)).collect();
        drop(listed);
        let nodes = seq
            .next_element_seed(NodesSeed(&shared))?
            .ok_or_else(|| de::Error::custom("image ends before its znodes"))?;
        let sessions: Vec<(SessionId, SessionEntry)> = next(&mut seq, "sessions")?;
        let mut tree = DataTree {
            nodes,
            acls,
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

/// Reads the znodes into a map, with the image's shared ACLs.
struct NodesSeed<'a>(&'a [Arc<[AclEntry]>]);

impl<'de> DeserializeSeed<'de> for NodesSeed<'_> {
    type Value = NodeMap;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NodeMap, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for NodesSeed<'_> {
    type Value = NodeMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("znodes, parents first")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeMap, A::Error> {
        let mut nodes = NodeMap::default();
        while let Some(n) = seq.next_element::<NodeIn>()? {
            let fail = |why: &str| de::Error::custom(format!("znode {:?}: {why}", n.path));
            path::validate_path(&n.path).map_err(|e| fail(&e))?;
            let acl = self
                .0
                .get(n.acl as usize)
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
            let node = Znode::new(n.data.0, acl.clone(), stat).with_null_data(n.null_data);
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
