//! The replicated state machine: an in-memory tree of znodes.
//!
//! Every committed txn body is a [`TreeOp`]; applying it is deterministic, so every server
//! that applies the same txns in the same order holds the same tree and gives the same
//! [`TreeResult`]. Snapshots are the bincode image of the whole tree.

use ensemble_messages::{codec, Txn, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A write to the tree, carried as a txn body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeOp {
    /// Create a znode; its parent must exist.
    Create { path: String, data: Vec<u8> },
    /// Replace a znode's data if its version matches (`-1` matches any).
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    /// Delete a childless znode if its version matches (`-1` matches any).
    Delete { path: String, version: i32 },
}

impl TreeOp {
    /// Encodes the op as a txn body.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self).expect("tree ops always encode")
    }
}

/// Outcome of applying a [`TreeOp`], with ZooKeeper's error names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeResult {
    /// Applied.
    Ok,
    /// The znode (or the parent, for a create) does not exist.
    NoNode,
    /// A znode already exists at the path.
    NodeExists,
    /// The znode has children.
    NotEmpty,
    /// The expected version did not match.
    BadVersion,
    /// The path or the txn body is malformed.
    BadArguments,
}

/// One znode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    /// Content.
    pub data: Vec<u8>,
    /// Txn that created it.
    pub czxid: Zxid,
    /// Txn that last changed its data.
    pub mzxid: Zxid,
    /// Number of data changes.
    pub version: i32,
    /// Names of its children.
    pub children: BTreeSet<String>,
}

/// The znode tree, keyed by absolute path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataTree {
    nodes: BTreeMap<String, Znode>,
    last_applied: Zxid,
}

impl Default for DataTree {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Znode::default());
        DataTree {
            nodes,
            last_applied: Zxid::ZERO,
        }
    }
}

impl DataTree {
    /// Applies one committed txn. Replaying a txn at or below the last applied zxid is a no-op.
    pub fn apply(&mut self, txn: &Txn) -> TreeResult {
        if txn.zxid <= self.last_applied {
            return TreeResult::Ok;
        }
        self.last_applied = txn.zxid;
        match codec::decode::<TreeOp>(&txn.body) {
            Ok(op) => self.apply_op(op, txn.zxid),
            Err(_) => TreeResult::BadArguments,
        }
    }

    fn apply_op(&mut self, op: TreeOp, zxid: Zxid) -> TreeResult {
        match op {
            TreeOp::Create { path, data } => {
                let Some(parent) = parent_of(&path) else {
                    return TreeResult::BadArguments;
                };
                if self.nodes.contains_key(&path) {
                    return TreeResult::NodeExists;
                }
                let Some(p) = self.nodes.get_mut(parent) else {
                    return TreeResult::NoNode;
                };
                p.children
                    .insert(path[parent.len()..].trim_start_matches('/').to_string());
                self.nodes.insert(
                    path,
                    Znode {
                        data,
                        czxid: zxid,
                        mzxid: zxid,
                        ..Znode::default()
                    },
                );
                TreeResult::Ok
            }
            TreeOp::SetData {
                path,
                data,
                version,
            } => match self.nodes.get_mut(&path) {
                None => TreeResult::NoNode,
                Some(n) if version != -1 && version != n.version => TreeResult::BadVersion,
                Some(n) => {
                    n.data = data;
                    n.version += 1;
                    n.mzxid = zxid;
                    TreeResult::Ok
                }
            },
            TreeOp::Delete { path, version } => {
                let Some(parent) = parent_of(&path) else {
                    return TreeResult::BadArguments;
                };
                match self.nodes.get(&path) {
                    None => return TreeResult::NoNode,
                    Some(n) if version != -1 && version != n.version => {
                        return TreeResult::BadVersion
                    }
                    Some(n) if !n.children.is_empty() => return TreeResult::NotEmpty,
                    Some(_) => {}
                }
                self.nodes.remove(&path);
                let name = path[parent.len()..].trim_start_matches('/');
                if let Some(p) = self.nodes.get_mut(parent) {
                    p.children.remove(name);
                }
                TreeResult::Ok
            }
        }
    }

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// Number of znodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Last zxid applied.
    pub fn last_applied(&self) -> Zxid {
        self.last_applied
    }

    /// The snapshot image of the tree.
    pub fn serialize(&self) -> Vec<u8> {
        codec::encode(self).expect("the tree always encodes")
    }

    /// Rebuilds a tree from a snapshot image.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, String> {
        codec::decode(bytes).map_err(|e| format!("snapshot does not decode as a data tree: {e}"))
    }
}

/// The parent of an absolute, normalized path; `None` for the root or a malformed path.
fn parent_of(path: &str) -> Option<&str> {
    if !path.starts_with('/') || path == "/" || path.ends_with('/') || path.contains("//") {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(c: u32, op: TreeOp) -> Txn {
        Txn {
            zxid: Zxid::new(1, c),
            origin: 1,
            request_id: 0,
            body: op.encode(),
        }
    }

    #[test]
    fn zookeeper_semantics_and_idempotent_replay() {
        let mut t = DataTree::default();
        let create = |c, p: &str| {
            txn(
                c,
                TreeOp::Create {
                    path: p.into(),
                    data: b"x".to_vec(),
                },
            )
        };
        assert_eq!(t.apply(&create(1, "/a")), TreeResult::Ok);
        assert_eq!(t.apply(&create(2, "/a")), TreeResult::NodeExists);
        assert_eq!(t.apply(&create(3, "/b/c")), TreeResult::NoNode);
        assert_eq!(t.apply(&create(4, "/a/b")), TreeResult::Ok);
        assert_eq!(t.apply(&create(5, "bad")), TreeResult::BadArguments);
        assert_eq!(
            t.apply(&txn(
                6,
                TreeOp::Delete {
                    path: "/a".into(),
                    version: -1
                }
            )),
            TreeResult::NotEmpty
        );
        let set = txn(
            7,
            TreeOp::SetData {
                path: "/a".into(),
                data: b"y".to_vec(),
                version: 0,
            },
        );
        assert_eq!(t.apply(&set), TreeResult::Ok);
        assert_eq!(
            t.apply(&txn(
                8,
                TreeOp::SetData {
                    path: "/a".into(),
                    data: vec![],
                    version: 0
                }
            )),
            TreeResult::BadVersion
        );
        let before = t.clone();
        assert_eq!(t.apply(&set), TreeResult::Ok, "a replayed txn is a no-op");
        assert_eq!(t, before);
        assert_eq!(t.get("/a").unwrap().version, 1);
        assert_eq!(t.get("/").unwrap().children.len(), 1);
        let back = DataTree::deserialize(&t.serialize()).unwrap();
        assert_eq!(back, t);
    }
}
