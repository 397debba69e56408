//! The snapshot image of a tree (format 3): `ENT3`, then in bincode the last applied zxid,
//! each distinct ACL once (as Apache's snapshots store their ACL map), every znode (path,
//! data, whether the data is null, ACL index, Stat) with parents before their children, and
//! the sessions. Reading builds the tree as it goes: no second copy of the znodes, children
//! counted rather than trusted, and a znode whose parent did not come before it refused.
//!
//! Images of format 2 (the serde form of the tree as it was, children sets included) still
//! read: they start with a map length, never with the tag, whose first key is `/`.

use super::bincode_out;
use super::store::{self, NodeMap};
use super::{path, AclCache, AclEntry, DataTree, NodeStat, SessionEntry, Znode};
use ensemble_messages::zk::SessionId;
use ensemble_messages::{codec, Zxid};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// First bytes of an image of this format.
const TAG: [u8; 4] = *b"ENT3";

impl DataTree {
    /// The snapshot image of the tree. Run it on a clone (O(1)) away from the thread that
    /// applies txns: it reads every znode.
    pub fn serialize(&self) -> Vec<u8> {
        let table = AclTable::of(&self.nodes);
        // Sized once: growing a buffer of hundreds of MB by doubling copies it over and over.
        let size = table.node_bytes
            + self.nodes.len() * NODE_OVERHEAD
            + self.sessions.len() * SESSION_SIZE
            + 1024;
        let mut out = Vec::with_capacity(size);
        // A tuple in bincode is its elements one after the other.
        encode_into(&(TAG, self.last_applied, &table.acls), &mut out);
        write_nodes(&mut out, &self.nodes, &table);
        encode_into(&SessionsOut(&self.sessions), &mut out);
        out
    }

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

/// Bytes a znode's image takes beside its path and data, at most (length prefixes, flags,
/// ACL index, and a Stat of 64-bit zxids and times as varints), give or take.
const NODE_OVERHEAD: usize = 64;

/// Bytes a session's image takes, give or take.
const SESSION_SIZE: usize = 48;

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

/// Distinct ACLs by the address of their shared copy, and their indexes; and the bytes the
/// znodes' paths and data take, to size the image up front.
struct AclTable<'a> {
    index: HashMap<usize, u32>,
    acls: Vec<&'a [AclEntry]>,
    node_bytes: usize,
}

impl<'a> AclTable<'a> {
    fn of(nodes: &'a NodeMap) -> Self {
        let mut table = AclTable {
            index: HashMap::new(),
            acls: Vec::new(),
            node_bytes: 0,
        };
        // Most znodes share the ACL of the znode before them: skip the map for those.
        let mut last = None;
        for (key, n) in nodes.iter() {
            table.node_bytes += key.len() + n.data().len();
            let at = address(&n.acl);
            if last == Some(at) {
                continue;
            }
            last = Some(at);
            let next = table.acls.len() as u32;
            if *table.index.entry(at).or_insert(next) == next {
                table.acls.push(&n.acl);
            }
        }
        table
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

/// The sessions, written.
struct SessionsOut<'a>(&'a imbl::OrdMap<SessionId, Arc<SessionEntry>>);

/// Appends the znodes in key order, each with its ACL index: a sequence of
/// `(path, data, null_data, acl, stat)` in bincode (see [`bincode_out`]).
fn write_nodes(out: &mut Vec<u8>, nodes: &NodeMap, table: &AclTable) {
    bincode_out::put_u64(out, nodes.len() as u64);
    let mut last_acl = (0, 0);
    for (key, n) in nodes.iter() {
        store::put_path_of(key, out);
        bincode_out::put_bytes(out, n.data());
        out.push(u8::from(n.is_null_data()));
        let acl = table.index_of(address(&n.acl), &mut last_acl);
        bincode_out::put_u64(out, u64::from(acl));
        write_stat(out, &n.stat);
    }
}

/// Appends a Stat, its fields in declaration order.
fn write_stat(out: &mut Vec<u8>, s: &NodeStat) {
    use bincode_out::{put_i32, put_i64};
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

/// Appends `value` in bincode.
fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, codec::bincode_config())
        .expect("the tree always encodes into memory");
}

impl Serialize for SessionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (id, session) in self.0.iter() {
            seq.serialize_element(&(id, session.as_ref()))?;
        }
        seq.end()
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
