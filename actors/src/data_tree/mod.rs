//! The replicated state machine: ZooKeeper's tree of znodes, with sessions and ephemerals.
//!
//! Every committed txn body is a [`TreeTxn`]. Applying it is deterministic (the time and the
//! caller's identities travel in the txn), so every server that applies the same txns in the
//! same order holds the same tree and computes the same [`OpResult`]. Applying also reports the
//! [`Trigger`]s that fire watches. Replaying a txn at or below the last applied zxid does
//! nothing, which makes snapshot + log replay idempotent.

mod acl;
mod ops;
mod path;
pub mod quota;

pub use acl::{masked, permits, PermissionMemo};
pub use ops::{
    ttl_of_owner, ttl_owner, AclEntry, CreateMode, NodeStat, OpResult, SessionPassword, TreeOp,
    TreeTxn, Trigger, MAX_TTL_MS,
};
pub use path::validate_path;

use ensemble_messages::zk::{err, event, perm, CONTAINER_OWNER};
use ensemble_messages::{codec, Sid, Txn, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One znode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    /// Content.
    pub data: Vec<u8>,
    /// Access control list, shared with the triggers of its changes rather than copied.
    pub acl: Arc<[AclEntry]>,
    /// Metadata (data_length and num_children are filled in by [`DataTree::stat`]).
    pub stat: NodeStat,
    /// Names of its children.
    pub children: BTreeSet<String>,
}

/// An open session, as replicated in the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// Negotiated timeout in ms.
    pub timeout_ms: i32,
    /// Paths of its ephemeral znodes.
    pub ephemerals: BTreeSet<String>,
    /// The server its client is connected to; writes through any other fail with SessionMoved.
    pub owner: Sid,
    /// What a client must present to reconnect.
    pub password: SessionPassword,
}

/// Whether an ephemeralOwner names a session (rather than none, a container or a TTL).
fn is_session_owner(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && ttl_of_owner(owner).is_none()
}

/// Whether a childless container or TTL znode is due for deletion at `now_ms`.
fn is_due(node: &Znode, now_ms: i64) -> bool {
    let owner = node.stat.ephemeral_owner;
    match ttl_of_owner(owner) {
        _ if owner == CONTAINER_OWNER => node.stat.cversion > 0,
        Some(ttl) => now_ms.saturating_sub(node.stat.mtime) > ttl,
        None => false,
    }
}

/// What applying one txn did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The outcome for the caller.
    pub result: OpResult,
    /// The changes that fire watches.
    pub triggers: Vec<Trigger>,
    /// The session this txn closed, if it closed one.
    pub closed_session: Option<i64>,
}

/// The znode tree, keyed by absolute path, with the open sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataTree {
    nodes: BTreeMap<String, Znode>,
    sessions: BTreeMap<i64, SessionEntry>,
    last_applied: Zxid,
}

/// What a multi's ops changed, to undo them if a later op fails. Records are small: a parent
/// keeps its children, only the one name and its metadata are saved.
#[derive(Default)]
struct Undo {
    enabled: bool,
    log: Vec<Saved>,
}

#[derive(Clone, Debug)]
enum Saved {
    /// A znode was created here: remove it.
    Created(String),
    /// A (childless) znode was removed: put it back.
    Removed(String, Znode),
    /// A znode's content changed: restore it.
    Content(String, Vec<u8>, Arc<[AclEntry]>, NodeStat),
    /// A parent's metadata and one child name changed.
    Parent {
        path: String,
        stat: NodeStat,
        child: String,
        added: bool,
    },
    /// A session gained or lost an ephemeral path.
    Ephemeral {
        session: i64,
        path: String,
        added: bool,
    },
}

impl Default for DataTree {
    fn default() -> Self {
        let mut t = DataTree {
            nodes: BTreeMap::new(),
            sessions: BTreeMap::new(),
            last_applied: Zxid::ZERO,
        };
        t.nodes.insert(
            "/".into(),
            Znode {
                acl: AclEntry::open().into(),
                ..Znode::default()
            },
        );
        for p in ["/zookeeper", "/zookeeper/quota"] {
            t.insert_child(p, Vec::new(), AclEntry::open().into(), NodeStat::default());
        }
        // As in ZooKeeper, only a reconfig writes the config node: clients may read it.
        let read_only = Arc::from([AclEntry {
            perms: perm::READ,
            scheme: "world".into(),
            id: "anyone".into(),
        }]);
        t.insert_child(
            "/zookeeper/config",
            Vec::new(),
            read_only,
            NodeStat::default(),
        );
        t
    }
}

impl DataTree {
    /// Applies one committed txn. A txn at or below the last applied zxid is skipped.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        if txn.zxid <= self.last_applied {
            return Applied {
                result: OpResult::Error(err::RUNTIME_INCONSISTENCY),
                triggers: Vec::new(),
                closed_session: None,
            };
        }
        self.last_applied = txn.zxid;
        let Ok(t) = codec::decode::<TreeTxn>(&txn.body) else {
            return Applied {
                result: OpResult::Error(err::MARSHALLING_ERROR),
                triggers: Vec::new(),
                closed_session: None,
            };
        };
        let mut triggers = Vec::new();
        let mut undo = Undo::default();
        let mut memo = PermissionMemo::default();
        let zxid = txn.zxid.0 as i64;
        let moved = !matches!(
            t.op,
            TreeOp::CreateSession { .. } | TreeOp::MoveSession | TreeOp::ExpireSession
        ) && self
            .sessions
            .get(&t.session_id)
            .is_some_and(|s| s.owner != txn.origin);
        let result = match &t.op {
            _ if moved => OpResult::Error(err::SESSION_MOVED),
            TreeOp::CreateSession {
                timeout_ms,
                password,
            } => {
                let session = self.sessions.entry(t.session_id).or_default();
                session.timeout_ms = *timeout_ms;
                session.owner = txn.origin;
                session.password = *password;
                OpResult::Session
            }
            TreeOp::MoveSession => match self.sessions.get_mut(&t.session_id) {
                Some(session) => {
                    session.owner = txn.origin;
                    OpResult::Session
                }
                None => OpResult::Error(err::SESSION_EXPIRED),
            },
            TreeOp::Multi(ops) => self.apply_multi(&t, ops, zxid, &mut triggers),
            op => self
                .try_op(&t, op, zxid, &mut undo, &mut memo, &mut triggers)
                .unwrap_or_else(OpResult::Error),
        };
        let closed = matches!(t.op, TreeOp::CloseSession | TreeOp::ExpireSession);
        let closed_session = (closed && !moved).then_some(t.session_id);
        Applied {
            result,
            triggers,
            closed_session,
        }
    }

    fn apply_multi(
        &mut self,
        t: &TreeTxn,
        ops: &[TreeOp],
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> OpResult {
        let mut undo = Undo {
            enabled: true,
            log: Vec::new(),
        };
        let mut memo = PermissionMemo::default();
        let mut results = Vec::with_capacity(ops.len());
        let mut fired = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                TreeOp::Multi(_)
                | TreeOp::CreateSession { .. }
                | TreeOp::CloseSession
                | TreeOp::ExpireSession
                | TreeOp::MoveSession
                | TreeOp::Reap { .. } => OpResult::Error(err::BAD_ARGUMENTS),
                op => self
                    .try_op(t, op, zxid, &mut undo, &mut memo, &mut fired)
                    .unwrap_or_else(OpResult::Error),
            };
            if let OpResult::Error(code) = r {
                for saved in undo.log.into_iter().rev() {
                    self.restore(saved);
                }
                let mut out = vec![OpResult::Error(err::OK); i];
                out.push(OpResult::Error(code));
                out.extend(std::iter::repeat_n(
                    OpResult::Error(err::RUNTIME_INCONSISTENCY),
                    ops.len() - i - 1,
                ));
                return OpResult::Multi(out);
            }
            results.push(r);
        }
        triggers.extend(fired);
        OpResult::Multi(results)
    }

    fn restore(&mut self, saved: Saved) {
        match saved {
            Saved::Created(path) => {
                self.nodes.remove(&path);
            }
            Saved::Removed(path, node) => {
                self.nodes.insert(path, node);
            }
            Saved::Content(path, data, acl, stat) => {
                if let Some(n) = self.nodes.get_mut(&path) {
                    n.data = data;
                    n.acl = acl;
                    n.stat = stat;
                }
            }
            Saved::Parent {
                path,
                stat,
                child,
                added,
            } => {
                if let Some(p) = self.nodes.get_mut(&path) {
                    p.stat = stat;
                    if added {
                        p.children.remove(&child);
                    } else {
                        p.children.insert(child);
                    }
                }
            }
            Saved::Ephemeral {
                session,
                path,
                added,
            } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    if added {
                        s.ephemerals.remove(&path);
                    } else {
                        s.ephemerals.insert(path);
                    }
                }
            }
        }
    }

    fn save(undo: &mut Undo, saved: impl FnOnce() -> Saved) {
        if undo.enabled {
            undo.log.push(saved());
        }
    }

    fn save_content(&self, undo: &mut Undo, path: &str) {
        if let Some(n) = self.nodes.get(path) {
            Self::save(undo, || {
                Saved::Content(path.to_string(), n.data.clone(), n.acl.clone(), n.stat)
            });
        }
    }

    fn save_parent(&self, undo: &mut Undo, parent: &str, child: &str, added: bool) {
        if let Some(p) = self.nodes.get(parent) {
            Self::save(undo, || Saved::Parent {
                path: parent.to_string(),
                stat: p.stat,
                child: child.to_string(),
                added,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn try_op(
        &mut self,
        t: &TreeTxn,
        op: &TreeOp,
        zxid: i64,
        undo: &mut Undo,
        memo: &mut PermissionMemo,
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, i32> {
        match op {
            TreeOp::Reap { path } => {
                let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
                if !node.children.is_empty() {
                    return Err(err::NOT_EMPTY);
                }
                if !is_due(node, t.time_ms) {
                    return Err(err::BAD_VERSION);
                }
                self.remove_node(path, zxid, undo, triggers);
                Ok(OpResult::Deleted)
            }
            TreeOp::CloseSession | TreeOp::ExpireSession => {
                let Some(session) = self.sessions.remove(&t.session_id) else {
                    return Ok(OpResult::Session);
                };
                for path in session.ephemerals.iter().rev() {
                    self.remove_node(path, zxid, undo, triggers);
                }
                Ok(OpResult::Session)
            }
            TreeOp::Create {
                path,
                data,
                acl,
                mode,
            } => self.create(t, path, data, acl, *mode, zxid, (undo, memo), triggers),
            TreeOp::Delete { path, version } => {
                let parent = path::parent(path).ok_or(err::BAD_ARGUMENTS)?;
                self.check_perm(parent, perm::DELETE, t, memo)?;
                let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(err::BAD_VERSION);
                }
                if !node.children.is_empty() {
                    return Err(err::NOT_EMPTY);
                }
                self.remove_node(path, zxid, undo, triggers);
                Ok(OpResult::Deleted)
            }
            TreeOp::SetData {
                path,
                data,
                version,
            } => {
                self.check_perm(path, perm::WRITE, t, memo)?;
                let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(err::BAD_VERSION);
                }
                self.save_content(undo, path);
                let node = self.nodes.get_mut(path).ok_or(err::NO_NODE)?;
                let old_len = node.data.len();
                node.data = data.clone();
                node.stat.version += 1;
                node.stat.mzxid = zxid;
                node.stat.mtime = t.time_ms;
                self.quota_rewritten(path, old_len, data.len(), undo);
                triggers.push(self.trigger(path, event::NODE_DATA_CHANGED));
                Ok(OpResult::DataSet {
                    stat: self.stat(path).ok_or(err::NO_NODE)?,
                })
            }
            TreeOp::SetAcl { path, acl, version } => {
                self.check_perm(path, perm::ADMIN, t, memo)?;
                let acl = acl::resolve(acl, &t.auth)?;
                let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
                if *version != -1 && *version != node.stat.aversion {
                    return Err(err::BAD_VERSION);
                }
                self.save_content(undo, path);
                let node = self.nodes.get_mut(path).ok_or(err::NO_NODE)?;
                node.acl = acl.into();
                node.stat.aversion += 1;
                Ok(OpResult::AclSet {
                    stat: self.stat(path).ok_or(err::NO_NODE)?,
                })
            }
            TreeOp::Check { path, version } => {
                self.check_perm(path, perm::READ, t, memo)?;
                let node = self.nodes.get(path).ok_or(err::NO_NODE)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(err::BAD_VERSION);
                }
                Ok(OpResult::Checked)
            }
            TreeOp::Multi(_) | TreeOp::CreateSession { .. } | TreeOp::MoveSession => {
                Err(err::BAD_ARGUMENTS)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        t: &TreeTxn,
        path: &str,
        data: &[u8],
        acl: &[AclEntry],
        mode: CreateMode,
        zxid: i64,
        (undo, memo): (&mut Undo, &mut PermissionMemo),
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, i32> {
        let parent_path = path::parent(path).ok_or(err::BAD_ARGUMENTS)?.to_string();
        self.check_perm(&parent_path, perm::CREATE, t, memo)?;
        let acl = acl::resolve(acl, &t.auth)?;
        let parent = self.nodes.get(&parent_path).ok_or(err::NO_NODE)?;
        if is_session_owner(parent.stat.ephemeral_owner) {
            return Err(err::NO_CHILDREN_FOR_EPHEMERALS);
        }
        let path = if mode.is_sequential() {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        validate_path(&path).map_err(|_| err::BAD_ARGUMENTS)?;
        if self.nodes.contains_key(&path) {
            return Err(err::NODE_EXISTS);
        }
        let owner = match mode {
            m if m.is_ephemeral() => {
                if !self.sessions.contains_key(&t.session_id) {
                    return Err(err::SESSION_EXPIRED);
                }
                t.session_id
            }
            CreateMode::Container => CONTAINER_OWNER,
            CreateMode::PersistentWithTtl { ttl_ms }
            | CreateMode::PersistentSequentialWithTtl { ttl_ms } => ttl_owner(ttl_ms),
            _ => 0,
        };
        let name = path::name(&path).unwrap_or_default().to_string();
        self.save_parent(undo, &parent_path, &name, true);
        Self::save(undo, || Saved::Created(path.clone()));
        let stat = NodeStat {
            czxid: zxid,
            mzxid: zxid,
            ctime: t.time_ms,
            mtime: t.time_ms,
            ephemeral_owner: owner,
            pzxid: zxid,
            ..NodeStat::default()
        };
        self.insert_child(&path, data.to_vec(), acl.into(), stat);
        self.quota_created(&path, data.len(), undo);
        if let Some(p) = self.nodes.get_mut(&parent_path) {
            p.stat.cversion += 1;
            p.stat.pzxid = zxid;
        }
        if mode.is_ephemeral() {
            Self::save(undo, || Saved::Ephemeral {
                session: owner,
                path: path.clone(),
                added: true,
            });
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.insert(path.clone());
            }
        }
        triggers.push(self.trigger(&path, event::NODE_CREATED));
        triggers.push(self.trigger(&parent_path, event::NODE_CHILDREN_CHANGED));
        let stat = self.stat(&path).ok_or(err::NO_NODE)?;
        Ok(OpResult::Created { path, stat })
    }

    fn insert_child(&mut self, path: &str, data: Vec<u8>, acl: Arc<[AclEntry]>, stat: NodeStat) {
        if let Some((parent, name)) = path::parent(path).zip(path::name(path)) {
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.insert(name.to_string());
            }
        }
        self.nodes.insert(
            path.to_string(),
            Znode {
                data,
                acl,
                stat,
                children: BTreeSet::new(),
            },
        );
    }

    /// Removes a znode (which has no children), updating its parent and its session.
    fn remove_node(&mut self, path: &str, zxid: i64, undo: &mut Undo, triggers: &mut Vec<Trigger>) {
        let Some(parent) = path::parent(path).map(str::to_string) else {
            return;
        };
        let name = path::name(path).unwrap_or_default().to_string();
        self.save_parent(undo, &parent, &name, false);
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        let owner = node.stat.ephemeral_owner;
        let len = node.data.len();
        triggers.push(Trigger {
            path: path.to_string(),
            event: event::NODE_DELETED,
            acl: node.acl.clone(),
        });
        Self::save(undo, || Saved::Removed(path.to_string(), node));
        if is_session_owner(owner) {
            Self::save(undo, || Saved::Ephemeral {
                session: owner,
                path: path.to_string(),
                added: false,
            });
            if let Some(s) = self.sessions.get_mut(&owner) {
                s.ephemerals.remove(path);
            }
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            if let Some(name) = path::name(path) {
                p.children.remove(name);
            }
            // The stored cversion counts creates; a delete shows in the reported one (see stat).
            p.stat.pzxid = zxid;
        }
        self.quota_removed(path, len, undo);
        triggers.push(self.trigger(&parent, event::NODE_CHILDREN_CHANGED));
    }

    /// The trigger of a change of the (existing) znode at `path`, with its ACL.
    fn trigger(&self, path: &str, event: i32) -> Trigger {
        Trigger {
            path: path.to_string(),
            event,
            acl: self
                .nodes
                .get(path)
                .map(|n| n.acl.clone())
                .unwrap_or_default(),
        }
    }

    fn check_perm(
        &self,
        path: &str,
        needed: i32,
        t: &TreeTxn,
        memo: &mut PermissionMemo,
    ) -> Result<(), i32> {
        match self.nodes.get(path) {
            Some(n) if !memo.permits(&n.acl, needed, &t.auth) => Err(err::NO_AUTH),
            _ => Ok(()),
        }
    }

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    /// The full Stat of the znode at `path`. As in ZooKeeper, the stored cversion counts child
    /// creates (it names sequential children) and the reported one counts creates and deletes:
    /// `2 * creates - children`.
    pub fn stat(&self, path: &str) -> Option<NodeStat> {
        self.nodes.get(path).map(|n| {
            let children = n.children.len() as i32;
            NodeStat {
                data_length: n.data.len() as i32,
                num_children: children,
                cversion: 2 * n.stat.cversion - children,
                ..n.stat
            }
        })
    }

    /// Children names of the znode at `path`, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
    }

    /// Number of znodes below `path` (at any depth; for the root, every other znode). The
    /// tree is keyed by path, so they are one contiguous range of keys: no walk.
    pub fn descendant_count(&self, path: &str) -> usize {
        if path == "/" {
            return self.nodes.len().saturating_sub(1);
        }
        let prefix = format!("{path}/");
        self.nodes
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count()
    }

    /// Whether a session is open.
    pub fn has_session(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// The open sessions and their timeouts.
    pub fn sessions(&self) -> impl Iterator<Item = (i64, i32)> + '_ {
        self.sessions.iter().map(|(id, s)| (*id, s.timeout_ms))
    }

    /// Paths of a session's ephemeral znodes.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.sessions
            .get(&session)
            .map(|s| s.ephemerals.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Paths of a session's ephemeral znodes that start with `prefix` (as a string, the way
    /// ZooKeeper's getEphemerals filters): one range of the sorted set, not a scan of them all.
    pub fn ephemerals_with_prefix(&self, session: i64, prefix: &str) -> Vec<String> {
        let Some(s) = self.sessions.get(&session) else {
            return Vec::new();
        };
        s.ephemerals
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|p| p.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Znodes the leader should delete at `now_ms`: containers that had children and have
    /// none left, and childless TTL znodes not modified for longer than their TTL.
    pub fn due_for_reaping(&self, now_ms: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.children.is_empty() && is_due(n, now_ms))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The password of an open session.
    pub fn session_password(&self, id: i64) -> Option<&SessionPassword> {
        self.sessions.get(&id).map(|s| &s.password)
    }

    /// The server a session's client is connected to.
    pub fn session_owner(&self, id: i64) -> Option<Sid> {
        self.sessions.get(&id).map(|s| s.owner)
    }

    /// Number of znodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of ephemeral znodes.
    pub fn ephemeral_count(&self) -> usize {
        self.sessions.values().map(|s| s.ephemerals.len()).sum()
    }

    /// Last zxid applied.
    pub fn last_applied(&self) -> Zxid {
        self.last_applied
    }

    /// Builds a tree from znodes and sessions read elsewhere (an Apache ZooKeeper data dir).
    /// The given znodes replace the default ones of the same path; each znode's children are
    /// derived from the paths, so every parent must be among them or the defaults (znodes
    /// under a missing parent are dropped).
    pub fn from_imported(
        znodes: impl IntoIterator<Item = (String, Znode)>,
        sessions: BTreeMap<i64, SessionEntry>,
        last_applied: Zxid,
    ) -> DataTree {
        let mut tree = DataTree::default();
        for (path, node) in znodes {
            tree.nodes.insert(path, node);
        }
        for node in tree.nodes.values_mut() {
            node.children.clear();
        }
        let paths: Vec<String> = tree.nodes.keys().cloned().collect();
        // Sorted paths put every parent before its children, so one pass finds orphans.
        for path in paths {
            let Some((parent, name)) = path::parent(&path).zip(path::name(&path)) else {
                continue;
            };
            match tree.nodes.get_mut(parent) {
                Some(p) => {
                    p.children.insert(name.to_string());
                }
                None => {
                    tree.nodes.remove(&path);
                }
            }
        }
        tree.sessions = sessions;
        for s in tree.sessions.values_mut() {
            s.ephemerals.retain(|p| tree.nodes.contains_key(p));
        }
        tree.last_applied = last_applied;
        tree.recompute_quota_usage();
        tree
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

#[cfg(test)]
mod tests;
