//! Apache's tree rebuilt from a snapshot and the logged txns above it, with Apache's replay
//! rules, then handed over as ensemble's [`DataTree`].
//!
//! Apache snapshots are fuzzy: a snapshot named `Z` may already hold changes of txns above `Z`.
//! Replaying those txns again must converge, so (as Apache does) a create of an existing znode,
//! a delete or set of a missing one is skipped, and creates carry the parent's cversion.

use super::checksum::apache_session_password;
use super::records::{CreateOwner, CreateTxn, LoggedTxn, StatPersisted, TxnBody, TxnHeader};
use super::snapshot::ApacheSnapshot;
use crate::data_tree::{
    ttl_of_owner, ttl_owner, validate_path, AclEntry, DataTree, NodeStat, SessionEntry, Znode,
};
use ensemble_messages::zk::{OpCode, SessionId, CONTAINER_OWNER};
use ensemble_messages::Zxid;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// The config znode ensemble maintains itself; Apache's copy is not imported.
const CONFIG_NODE: &str = "/zookeeper/config";

#[derive(Clone, Debug)]
struct Node {
    /// `None`: null, which stays null in ensemble's tree.
    data: Option<Vec<u8>>,
    acl: Vec<AclEntry>,
    stat: StatPersisted,
}

/// Apache's tree during replay.
#[derive(Clone, Debug, Default)]
pub struct ApacheTree {
    nodes: BTreeMap<String, Node>,
    sessions: BTreeMap<i64, i32>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
}

/// What an import holds, for the log line and the dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeCounts {
    /// Znodes, the root included.
    pub znodes: usize,
    /// Ephemeral znodes.
    pub ephemerals: usize,
    /// Open sessions.
    pub sessions: usize,
    /// Container znodes.
    pub containers: usize,
    /// TTL znodes.
    pub ttls: usize,
}

/// Whether an ephemeralOwner names a session.
fn is_session(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && ttl_of_owner(owner).is_none()
}

/// The parent of a valid non-root path.
fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl ApacheTree {
    /// The tree of a parsed snapshot: every znode's parent must come before it, every ACL
    /// reference must resolve, and ephemerals cannot have children.
    pub fn from_snapshot(snap: &ApacheSnapshot) -> Result<ApacheTree, String> {
        let mut tree = ApacheTree::default();
        for n in &snap.nodes {
            validate_path(&n.path).map_err(|e| format!("snapshot: {e}"))?;
            if n.path != "/" && !tree.nodes.contains_key(parent_of(&n.path)) {
                return Err(format!(
                    "snapshot: znode {} comes before its parent",
                    n.path
                ));
            }
            if is_session(
                tree.nodes
                    .get(parent_of(&n.path))
                    .map_or(0, |p| p.stat.ephemeral_owner),
            ) && n.path != "/"
            {
                return Err(format!(
                    "snapshot: znode {} has an ephemeral parent",
                    n.path
                ));
            }
            let node = Node {
                data: n.data.clone(),
                acl: snap.acl_of(n)?,
                stat: n.stat,
            };
            if tree.nodes.insert(n.path.clone(), node).is_some() {
                return Err(format!("snapshot: znode {} appears twice", n.path));
            }
            if is_session(n.stat.ephemeral_owner) {
                tree.ephemerals
                    .entry(n.stat.ephemeral_owner)
                    .or_default()
                    .insert(n.path.clone());
            }
        }
        if !tree.nodes.contains_key("/") {
            return Err("snapshot: no root znode".into());
        }
        tree.sessions = snap.sessions.iter().copied().collect();
        Ok(tree)
    }

    /// Applies one logged txn as Apache replays it.
    pub fn apply(&mut self, txn: &LoggedTxn) {
        let h = &txn.header;
        match &txn.body {
            TxnBody::CreateSession { timeout_ms } => {
                self.sessions.insert(h.client_id, *timeout_ms);
            }
            TxnBody::CloseSession { paths } => {
                self.sessions.remove(&h.client_id);
                for p in paths.iter().flatten() {
                    self.delete(p, h.zxid);
                }
                let rest = self.ephemerals.remove(&h.client_id).unwrap_or_default();
                for p in rest {
                    self.delete(&p, h.zxid);
                }
            }
            TxnBody::Multi(ops) => {
                if ops.iter().any(|(_, b)| matches!(b, TxnBody::Error { .. })) {
                    return;
                }
                for (kind, body) in ops {
                    self.apply_op(h, *kind, body);
                }
            }
            body => self.apply_op(h, h.kind, body),
        }
    }

    fn apply_op(&mut self, h: &TxnHeader, kind: i32, body: &TxnBody) {
        match body {
            TxnBody::Create(c) => self.create(h, kind, c),
            TxnBody::Delete { path } => self.delete(path, h.zxid),
            TxnBody::SetData {
                path,
                data,
                version,
            } => {
                if let Some(n) = self.nodes.get_mut(path) {
                    n.data = data.clone();
                    n.stat.mtime = h.time;
                    n.stat.mzxid = h.zxid;
                    n.stat.version = *version;
                }
            }
            TxnBody::SetAcl { path, acl, version } => {
                if let Some(n) = self.nodes.get_mut(path) {
                    n.acl = acl.clone();
                    n.stat.aversion = *version;
                }
            }
            _ => {}
        }
    }

    fn create(&mut self, h: &TxnHeader, kind: i32, c: &CreateTxn) {
        if c.path == "/" || validate_path(&c.path).is_err() {
            return;
        }
        let parent = parent_of(&c.path).to_string();
        let Some(p) = self.nodes.get_mut(&parent) else {
            return;
        };
        if is_session(p.stat.ephemeral_owner) {
            return;
        }
        if let Some(existing) = self.nodes.get_mut(&c.path) {
            // Apache sets the ACL, then fixes the parent's cversion for a plain create.
            existing.acl = c.acl.clone();
            if kind == OpCode::Create.code() {
                self.raise_cversion(&parent, c.parent_cversion, h.zxid);
            }
            return;
        }
        self.raise_cversion(&parent, c.parent_cversion, h.zxid);
        let owner = match c.owner {
            CreateOwner::None => 0,
            CreateOwner::Session => h.client_id,
            CreateOwner::Container => CONTAINER_OWNER,
            CreateOwner::Ttl(ttl) => ttl_owner(ttl),
        };
        let stat = StatPersisted {
            czxid: h.zxid,
            mzxid: h.zxid,
            pzxid: h.zxid,
            ctime: h.time,
            mtime: h.time,
            ephemeral_owner: owner,
            ..StatPersisted::default()
        };
        let node = Node {
            data: c.data.clone(),
            acl: c.acl.clone(),
            stat,
        };
        self.nodes.insert(c.path.clone(), node);
        if is_session(owner) {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(c.path.clone());
        }
    }

    /// Apache's `setCversionPzxid`: -1 increments; a higher cversion also moves pzxid.
    fn raise_cversion(&mut self, path: &str, cversion: i32, zxid: i64) {
        if let Some(p) = self.nodes.get_mut(path) {
            let cversion = if cversion == -1 {
                p.stat.cversion.saturating_add(1)
            } else {
                cversion
            };
            if cversion > p.stat.cversion {
                p.stat.cversion = cversion;
                p.stat.pzxid = zxid;
            }
        }
    }

    /// Deletes a znode; a replayed delete of a znode that (in a fuzzy snapshot) gained
    /// children takes them along, so that no znode is left without its parent.
    fn delete(&mut self, path: &str, zxid: i64) {
        if path == "/" {
            return;
        }
        if let Some(p) = self.nodes.get_mut(parent_of(path)) {
            p.stat.pzxid = p.stat.pzxid.max(zxid);
        }
        let prefix = format!("{path}/");
        let below: Vec<String> = self
            .nodes
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for p in below.iter().map(String::as_str).chain([path]) {
            if let Some(n) = self.nodes.remove(p) {
                if let Some(set) = self.ephemerals.get_mut(&n.stat.ephemeral_owner) {
                    set.remove(p);
                }
            }
        }
    }

    /// What the tree holds.
    pub fn counts(&self) -> TreeCounts {
        let owners = self.nodes.values().map(|n| n.stat.ephemeral_owner);
        TreeCounts {
            znodes: self.nodes.len(),
            ephemerals: owners.clone().filter(|o| is_session(*o)).count(),
            sessions: self.sessions.len(),
            containers: owners.clone().filter(|o| *o == CONTAINER_OWNER).count(),
            ttls: owners.filter(|o| ttl_of_owner(*o).is_some()).count(),
        }
    }

    /// Converts to ensemble's tree. Sessions keep their timeouts (they expire that long after
    /// the start unless their clients resume them) and get Apache's passwords; ephemerals of a
    /// session that is not open get a session that expires at once, so they are deleted
    /// through the quorum like any expired session's.
    pub fn into_data_tree(self, last: Zxid) -> DataTree {
        let mut sessions: BTreeMap<SessionId, SessionEntry> = BTreeMap::new();
        let owners = self.sessions.keys().chain(self.ephemerals.keys());
        for &id in owners {
            sessions
                .entry(SessionId(id))
                .or_insert_with(|| SessionEntry {
                    timeout_ms: self.sessions.get(&id).copied().unwrap_or(0),
                    ephemerals: self.ephemerals.get(&id).cloned().unwrap_or_default(),
                    owner: (id as u64) >> 56,
                    password: apache_session_password(id),
                });
        }
        let znodes = self
            .nodes
            .into_iter()
            .filter(|(p, _)| p != CONFIG_NODE)
            .map(|(path, n)| {
                let s = n.stat;
                let stat = NodeStat {
                    czxid: s.czxid,
                    mzxid: s.mzxid,
                    ctime: s.ctime,
                    mtime: s.mtime,
                    version: s.version,
                    cversion: s.cversion,
                    aversion: s.aversion,
                    ephemeral_owner: s.ephemeral_owner,
                    pzxid: s.pzxid,
                    data_length: 0,
                    num_children: 0,
                };
                let null = n.data.is_none();
                let data = n.data.unwrap_or_default();
                let znode = Znode::new(data, n.acl.into(), stat).with_null_data(null);
                (path, znode)
            });
        DataTree::from_imported(znodes, sessions, last)
    }
}
