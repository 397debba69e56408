//! The replicated state machine: ZooKeeper's tree of znodes, with sessions and ephemerals.
//!
//! Every committed txn body is a [`TreeTxn`]. Applying it is deterministic (the time and the
//! caller's identities travel in the txn), so every server that applies the same txns in the
//! same order holds the same tree and computes the same [`OpResult`]. Applying also reports the
//! [`Trigger`]s that fire watches. Replaying a txn at or below the last applied zxid does
//! nothing, which makes snapshot + log replay idempotent.

mod acl;
mod bincode_out;
mod compact_image;
pub mod config_node;
mod delta_image;
mod fetch_ahead;
mod image;
mod image_out;
mod image_reader;
mod node_key;
mod notes;
mod ops;
mod path;
pub mod quota;
mod restore;
mod store;

pub use acl::{masked, permits, AclCache, PermissionMemo};
pub use delta_image::{ChangedZnodes, DeltaContent, DeltaImage};
pub use ops::{
    ttl_of_owner, ttl_owner, AclEntry, CreateMode, NodeStat, OpResult, SessionPassword, TreeOp,
    TreeTxn, Trigger, MAX_TTL_MS,
};
pub use path::validate_path;

use ensemble_messages::zk::{perm, EventType, SessionId, ZkError, CONTAINER_OWNER};
use ensemble_messages::{codec, Sid, Txn, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use store::NodeMap;

/// One znode: its content, its (shared) ACL and its metadata. Its children are not stored in
/// it: the tree finds them by their keys (see the `store` module).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Znode {
    data: Box<[u8]>,
    null_data: bool,
    /// Access control list, one allocation per distinct ACL (see [`AclCache`]), shared with
    /// the triggers of its changes rather than copied.
    pub acl: Arc<[AclEntry]>,
    /// Metadata, kept current (data_length, num_children) but for cversion, which counts
    /// child creates (see [`DataTree::stat`]).
    pub stat: NodeStat,
}

impl Znode {
    /// A znode holding `data` (not null).
    pub fn new(data: Vec<u8>, acl: Arc<[AclEntry]>, stat: NodeStat) -> Znode {
        let mut node = Znode {
            data: Box::default(),
            null_data: false,
            acl,
            stat,
        };
        node.set_data(Some(data));
        node
    }

    /// The same znode, with its data null (jute length -1) if `null`: a null must read back
    /// as null, as in ZooKeeper, and empty data as empty.
    pub fn with_null_data(mut self, null: bool) -> Znode {
        self.null_data = null && self.data.is_empty();
        self
    }

    /// Its content (empty when null).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Its content, `None` when null.
    pub fn nullable_data(&self) -> Option<&[u8]> {
        (!self.null_data).then_some(&*self.data)
    }

    /// Whether its data is null rather than empty.
    pub fn is_null_data(&self) -> bool {
        self.null_data
    }

    /// Replaces the data (`None`: null) and its length in the Stat.
    fn set_data(&mut self, data: Option<Vec<u8>>) {
        self.null_data = data.is_none();
        let data = data.unwrap_or_default();
        self.stat.data_length = i32::try_from(data.len()).unwrap_or(i32::MAX);
        self.data = data.into_boxed_slice();
    }
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

/// The Stat a client is shown for `node` (see [`DataTree::stat`]).
fn reported_stat(node: &Znode) -> NodeStat {
    NodeStat {
        cversion: 2 * node.stat.cversion - node.stat.num_children,
        ..node.stat
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
    pub closed_session: Option<SessionId>,
    /// The session this txn opened (or re-opened) and its timeout in ms.
    pub opened_session: Option<(SessionId, i32)>,
}

/// The znode tree with the open sessions. Both are persistent maps, so a clone (a snapshot)
/// costs O(1) and shares everything with the tree until the tree changes.
#[derive(Clone, Debug)]
pub struct DataTree {
    nodes: NodeMap,
    acls: AclCache,
    sessions: imbl::OrdMap<SessionId, Arc<SessionEntry>>,
    last_applied: Zxid,
}

impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
            && self.sessions == other.sessions
            && self.last_applied == other.last_applied
    }
}

impl Eq for DataTree {}

/// What a multi's ops changed, to undo them if a later op fails. Records are small: a znode
/// is shared, not copied.
#[derive(Default)]
struct Undo {
    enabled: bool,
    log: Vec<Saved>,
}

#[derive(Clone, Debug)]
enum Saved {
    /// The znode at this path was this one (or there was none): put it back.
    Node(String, Option<Arc<Znode>>),
    /// A session gained or lost an ephemeral path.
    Ephemeral {
        session: SessionId,
        path: String,
        added: bool,
    },
}

impl Default for DataTree {
    fn default() -> Self {
        let mut t = DataTree {
            nodes: NodeMap::default(),
            acls: AclCache::default(),
            sessions: imbl::OrdMap::new(),
            last_applied: Zxid::ZERO,
        };
        let open = t.acls.intern(&AclEntry::open());
        t.nodes.insert(
            "/",
            Arc::new(Znode::new(Vec::new(), open.clone(), NodeStat::default())),
        );
        for p in ["/zookeeper", "/zookeeper/quota"] {
            t.insert_child(p, Znode::new(Vec::new(), open.clone(), NodeStat::default()));
        }
        // As in ZooKeeper, only a reconfig writes the config node: clients may read it.
        let read_only = t.acls.intern(&[AclEntry {
            perms: perm::READ,
            scheme: "world".into(),
            id: "anyone".into(),
        }]);
        t.insert_child(
            "/zookeeper/config",
            Znode::new(Vec::new(), read_only, NodeStat::default()),
        );
        t
    }
}

impl DataTree {
    /// Applies one committed txn. A txn at or below the last applied zxid is skipped.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        if txn.zxid <= self.last_applied {
            return Applied {
                result: OpResult::Error(ZkError::RuntimeInconsistency),
                triggers: Vec::new(),
                closed_session: None,
                opened_session: None,
            };
        }
        self.last_applied = txn.zxid;
        let Ok(t) = codec::decode::<TreeTxn>(&txn.body) else {
            return Applied {
                result: OpResult::Error(ZkError::MarshallingError),
                triggers: Vec::new(),
                closed_session: None,
                opened_session: None,
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
            _ if moved => OpResult::Error(ZkError::SessionMoved),
            TreeOp::CreateSession {
                timeout_ms,
                password,
            } => {
                if !self.sessions.contains_key(&t.session_id) {
                    self.sessions.insert(t.session_id, Arc::default());
                }
                let Some(session) = self.session_mut(t.session_id) else {
                    return Applied {
                        result: OpResult::Error(ZkError::RuntimeInconsistency),
                        triggers,
                        closed_session: None,
                        opened_session: None,
                    };
                };
                session.timeout_ms = *timeout_ms;
                session.owner = txn.origin;
                session.password = *password;
                OpResult::Session
            }
            TreeOp::MoveSession => match self.session_mut(t.session_id) {
                Some(session) => {
                    session.owner = txn.origin;
                    OpResult::Session
                }
                None => OpResult::Error(ZkError::SessionExpired),
            },
            TreeOp::Multi(ops) => self.apply_multi(&t, ops, zxid, &mut triggers),
            op => self
                .try_op(&t, op, zxid, &mut undo, &mut memo, &mut triggers)
                .unwrap_or_else(OpResult::Error),
        };
        let closed = matches!(t.op, TreeOp::CloseSession | TreeOp::ExpireSession);
        let closed_session = (closed && !moved).then_some(t.session_id);
        let opened_session = match t.op {
            TreeOp::CreateSession { timeout_ms, .. } => Some((t.session_id, timeout_ms)),
            _ => None,
        };
        Applied {
            result,
            triggers,
            closed_session,
            opened_session,
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
                | TreeOp::Reap { .. }
                | TreeOp::Reconfig { .. } => OpResult::Error(ZkError::BadArguments),
                op => self
                    .try_op(t, op, zxid, &mut undo, &mut memo, &mut fired)
                    .unwrap_or_else(OpResult::Error),
            };
            if let OpResult::Error(code) = r {
                for saved in undo.log.into_iter().rev() {
                    self.restore(saved);
                }
                let mut out = vec![OpResult::RolledBack; i];
                out.push(OpResult::Error(code));
                out.extend(std::iter::repeat_n(
                    OpResult::Error(ZkError::RuntimeInconsistency),
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
            Saved::Node(path, Some(node)) => self.nodes.insert(&path, node),
            Saved::Node(path, None) => {
                self.nodes.remove(&path);
            }
            Saved::Ephemeral {
                session,
                path,
                added,
            } => {
                if let Some(s) = self.session_mut(session) {
                    if added {
                        s.ephemerals.remove(&path);
                    } else {
                        s.ephemerals.insert(path);
                    }
                }
            }
        }
    }

    /// A session, to change: copied first if a snapshot still shares it.
    fn session_mut(&mut self, id: SessionId) -> Option<&mut SessionEntry> {
        self.sessions.get_mut(&id).map(Arc::make_mut)
    }

    fn save(undo: &mut Undo, saved: impl FnOnce() -> Saved) {
        if undo.enabled {
            undo.log.push(saved());
        }
    }

    /// Records the znode at `path` as it is (shared, not copied), to put it back on undo.
    fn save_node(&self, undo: &mut Undo, path: &str) {
        Self::save(undo, || {
            Saved::Node(path.to_string(), self.nodes.get(path).cloned())
        });
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
    ) -> Result<OpResult, ZkError> {
        match op {
            TreeOp::Reconfig {
                servers,
                expected_version,
                explicit,
            } => {
                self.check_perm(config_node::PATH, perm::WRITE, t, memo)?;
                let expected = (*expected_version, *explicit);
                self.reconfig(servers, expected, (t, zxid), undo, triggers)
            }
            TreeOp::Reap { path } => {
                let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if node.stat.num_children > 0 {
                    return Err(ZkError::NotEmpty);
                }
                if !is_due(node, t.time_ms) {
                    return Err(ZkError::BadVersion);
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
            } => self.create(
                t,
                path,
                Some(data),
                acl,
                *mode,
                zxid,
                (undo, memo),
                triggers,
            ),
            TreeOp::CreateNullData { path, acl, mode } => {
                self.create(t, path, None, acl, *mode, zxid, (undo, memo), triggers)
            }
            TreeOp::Delete { path, version } => {
                let parent = path::parent(path).ok_or(ZkError::BadArguments)?;
                self.check_perm(parent, perm::DELETE, t, memo)?;
                let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(ZkError::BadVersion);
                }
                if node.stat.num_children > 0 {
                    return Err(ZkError::NotEmpty);
                }
                self.remove_node(path, zxid, undo, triggers);
                Ok(OpResult::Deleted)
            }
            TreeOp::SetData {
                path,
                data,
                version,
            } => self.set_data(t, path, Some(data), *version, zxid, (undo, memo), triggers),
            TreeOp::SetNullData { path, version } => {
                self.set_data(t, path, None, *version, zxid, (undo, memo), triggers)
            }
            TreeOp::SetAcl { path, acl, version } => {
                self.check_perm(path, perm::ADMIN, t, memo)?;
                let acl = acl::resolve(acl, &t.auth)?;
                let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if *version != -1 && *version != node.stat.aversion {
                    return Err(ZkError::BadVersion);
                }
                let acl = self.acls.intern(&acl);
                self.save_node(undo, path);
                let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
                node.acl = acl;
                node.stat.aversion += 1;
                Ok(OpResult::AclSet {
                    stat: self.stat(path).ok_or(ZkError::NoNode)?,
                })
            }
            TreeOp::Check { path, version } => {
                self.check_perm(path, perm::READ, t, memo)?;
                let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if *version != -1 && *version != node.stat.version {
                    return Err(ZkError::BadVersion);
                }
                Ok(OpResult::Checked)
            }
            TreeOp::Multi(_) | TreeOp::CreateSession { .. } | TreeOp::MoveSession => {
                Err(ZkError::BadArguments)
            }
        }
    }

    /// Replaces the data of `path` (`None`: null) if `version` matches (-1: any).
    #[allow(clippy::too_many_arguments)]
    fn set_data(
        &mut self,
        t: &TreeTxn,
        path: &str,
        data: Option<&Vec<u8>>,
        version: i32,
        zxid: i64,
        (undo, memo): (&mut Undo, &mut PermissionMemo),
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, ZkError> {
        // One walk for the permission, the version, the undo record and the change: each
        // walk of a large map costs.
        let slot = self.nodes.get_mut_shared(path).ok_or(ZkError::NoNode)?;
        if !memo.permits(&slot.acl, perm::WRITE, &t.auth) {
            return Err(ZkError::NoAuth);
        }
        if version != -1 && version != slot.stat.version {
            return Err(ZkError::BadVersion);
        }
        Self::save(undo, || {
            Saved::Node(path.to_string(), Some(Arc::clone(slot)))
        });
        let node = Arc::make_mut(slot);
        let old_len = node.data.len();
        let new_len = data.map_or(0, Vec::len);
        node.set_data(data.cloned());
        node.stat.version += 1;
        node.stat.mzxid = zxid;
        node.stat.mtime = t.time_ms;
        let (acl, mut stat) = (node.acl.clone(), reported_stat(node));
        if self.quota_rewritten(path, old_len, new_len, undo) {
            stat = self.stat(path).ok_or(ZkError::NoNode)?;
        }
        triggers.push(Trigger {
            path: path.to_string(),
            event: EventType::NodeDataChanged,
            acl,
        });
        Ok(OpResult::DataSet { stat })
    }

    /// Creates `path` holding `data` (`None`: null).
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        t: &TreeTxn,
        path: &str,
        data: Option<&Vec<u8>>,
        acl: &[AclEntry],
        mode: CreateMode,
        zxid: i64,
        (undo, memo): (&mut Undo, &mut PermissionMemo),
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, ZkError> {
        let parent_path = path::parent(path).ok_or(ZkError::BadArguments)?.to_string();
        // The parent is looked up once for all it is needed for: each lookup walks a map
        // that may hold millions of znodes. Errors keep ZooKeeper's order (NoAuth, then a
        // bad ACL, then NoNode).
        let parent = self.nodes.get(&parent_path);
        if parent.is_some_and(|p| !memo.permits(&p.acl, perm::CREATE, &t.auth)) {
            return Err(ZkError::NoAuth);
        }
        let acl = acl::resolve(acl, &t.auth)?;
        let parent = parent.ok_or(ZkError::NoNode)?;
        if is_session_owner(parent.stat.ephemeral_owner) {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let parent_acl = parent.acl.clone();
        let path = if mode.is_sequential() {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        validate_path(&path).map_err(|_| ZkError::BadArguments)?;
        let owner = self.owner_for(t, mode);
        if owner.is_err() && self.nodes.contains(&path) {
            return Err(ZkError::NodeExists);
        }
        let stat = NodeStat {
            czxid: zxid,
            mzxid: zxid,
            ctime: t.time_ms,
            mtime: t.time_ms,
            ephemeral_owner: owner?,
            pzxid: zxid,
            ..NodeStat::default()
        };
        let acl = self.acls.intern(&acl);
        let mut node = Znode::new(Vec::new(), acl.clone(), stat);
        node.set_data(data.cloned());
        let len = node.data.len();
        // A new znode has no children, so its stat is as stored (see `stat`).
        let mut stat = node.stat;
        // The existence check is the insert itself: one walk to a place that is seldom in
        // the cache. Nothing was changed or saved for undoing before it.
        if !self.nodes.insert_new(&path, Arc::new(node)) {
            return Err(ZkError::NodeExists);
        }
        Self::save(undo, || Saved::Node(path.clone(), None));
        self.save_node(undo, &parent_path);
        if let Some(p) = self.nodes.get_mut(&parent_path) {
            p.stat.num_children = p.stat.num_children.saturating_add(1);
            p.stat.cversion += 1;
            p.stat.pzxid = zxid;
        }
        if self.quota_created(&path, len, undo) {
            stat = self.stat(&path).ok_or(ZkError::NoNode)?;
        }
        if mode.is_ephemeral() {
            Self::save(undo, || Saved::Ephemeral {
                session: t.session_id,
                path: path.clone(),
                added: true,
            });
            if let Some(s) = self.session_mut(t.session_id) {
                s.ephemerals.insert(path.clone());
            }
        }
        triggers.push(Trigger {
            path: path.clone(),
            event: EventType::NodeCreated,
            acl,
        });
        triggers.push(Trigger {
            path: parent_path,
            event: EventType::NodeChildrenChanged,
            acl: parent_acl,
        });
        Ok(OpResult::Created { path, stat })
    }

    /// The ephemeralOwner of a znode `t` creates in `mode`: its session (which must be open),
    /// the container or TTL marker, or none.
    fn owner_for(&self, t: &TreeTxn, mode: CreateMode) -> Result<i64, ZkError> {
        Ok(match mode {
            m if m.is_ephemeral() => {
                if !self.sessions.contains_key(&t.session_id) {
                    return Err(ZkError::SessionExpired);
                }
                t.session_id.0
            }
            CreateMode::Container => CONTAINER_OWNER,
            CreateMode::PersistentWithTtl { ttl_ms }
            | CreateMode::PersistentSequentialWithTtl { ttl_ms } => ttl_owner(ttl_ms),
            _ => 0,
        })
    }

    /// Puts a znode (which has no children) under its parent, counting it there.
    fn insert_child(&mut self, path: &str, node: Znode) {
        if let Some(p) = path::parent(path).and_then(|p| self.nodes.get_mut(p)) {
            p.stat.num_children = p.stat.num_children.saturating_add(1);
        }
        self.nodes.insert(path, Arc::new(node));
    }

    /// Removes a znode (which has no children), updating its parent and its session.
    fn remove_node(&mut self, path: &str, zxid: i64, undo: &mut Undo, triggers: &mut Vec<Trigger>) {
        let Some(parent) = path::parent(path) else {
            return;
        };
        self.save_node(undo, parent);
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        let owner = node.stat.ephemeral_owner;
        let len = node.data.len();
        triggers.push(Trigger {
            path: path.to_string(),
            event: EventType::NodeDeleted,
            acl: node.acl.clone(),
        });
        Self::save(undo, || Saved::Node(path.to_string(), Some(node)));
        if is_session_owner(owner) {
            let owner = SessionId(owner);
            Self::save(undo, || Saved::Ephemeral {
                session: owner,
                path: path.to_string(),
                added: false,
            });
            if let Some(s) = self.session_mut(owner) {
                s.ephemerals.remove(path);
            }
        }
        if let Some(p) = self.nodes.get_mut(parent) {
            p.stat.num_children = p.stat.num_children.saturating_sub(1);
            // The stored cversion counts creates; a delete shows in the reported one (see stat).
            p.stat.pzxid = zxid;
        }
        self.quota_removed(path, len, undo);
        triggers.push(self.trigger(parent, EventType::NodeChildrenChanged));
    }

    /// The trigger of a change of the (existing) znode at `path`, with its ACL.
    fn trigger(&self, path: &str, event: EventType) -> Trigger {
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
    ) -> Result<(), ZkError> {
        match self.nodes.get(path) {
            Some(n) if !memo.permits(&n.acl, needed, &t.auth) => Err(ZkError::NoAuth),
            _ => Ok(()),
        }
    }

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path).map(|n| n.as_ref())
    }

    /// The full Stat of the znode at `path`. As in ZooKeeper, the stored cversion counts child
    /// creates (it names sequential children) and the reported one counts creates and deletes:
    /// `2 * creates - children`.
    pub fn stat(&self, path: &str) -> Option<NodeStat> {
        self.nodes.get(path).map(|n| reported_stat(n))
    }

    /// Children names of the znode at `path`, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes.get(path)?;
        Some(self.nodes.child_names(path).map(str::to_string).collect())
    }

    /// Number of znodes below `path` (at any depth; for the root, every other znode), found
    /// by a walk of its subtree (as ZooKeeper's getAllChildrenNumber), without recursion.
    pub fn descendant_count(&self, path: &str) -> usize {
        if path == "/" {
            return self.nodes.len().saturating_sub(1);
        }
        let mut count = 0;
        self.walk_below(path, |_, _| count += 1);
        count
    }

    /// Visits every znode below `path` (at any depth, not `path` itself), without recursion.
    fn walk_below(&self, path: &str, mut visit: impl FnMut(&str, &Znode)) {
        let mut todo = vec![path.to_string()];
        while let Some(p) = todo.pop() {
            let base = if p == "/" { "" } else { p.as_str() };
            for name in self.nodes.child_names(&p) {
                let child = format!("{base}/{name}");
                if let Some(node) = self.nodes.get(&child) {
                    visit(&child, node);
                }
                todo.push(child);
            }
        }
    }

    /// Whether a session is open.
    pub fn has_session(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    /// The open sessions and their timeouts.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        self.sessions.iter().map(|(id, s)| (*id, s.timeout_ms))
    }

    /// Paths of a session's ephemeral znodes.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.sessions
            .get(&session)
            .map(|s| s.ephemerals.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Paths of a session's ephemeral znodes that start with `prefix` (as a string, the way
    /// ZooKeeper's getEphemerals filters): one range of the sorted set, not a scan of them all.
    pub fn ephemerals_with_prefix(&self, session: SessionId, prefix: &str) -> Vec<String> {
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
            .filter(|(_, n)| n.stat.num_children == 0 && is_due(n, now_ms))
            .map(|(key, _)| store::path_of(key))
            .collect()
    }

    /// The password of an open session.
    pub fn session_password(&self, id: SessionId) -> Option<&SessionPassword> {
        self.sessions.get(&id).map(|s| &s.password)
    }

    /// The server a session's client is connected to.
    pub fn session_owner(&self, id: SessionId) -> Option<Sid> {
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

    /// A copy to read from, O(1): the persistent maps are shared, the ACL interning cache
    /// (which only writes use) is left out.
    pub fn read_view(&self) -> DataTree {
        DataTree {
            nodes: self.nodes.clone(),
            acls: AclCache::default(),
            sessions: self.sessions.clone(),
            last_applied: self.last_applied,
        }
    }

    /// Last zxid applied.
    pub fn last_applied(&self) -> Zxid {
        self.last_applied
    }

    /// Builds a tree from znodes and sessions read elsewhere (an Apache ZooKeeper data dir,
    /// or a snapshot of an older format). The given znodes replace the default ones of the
    /// same path; each znode's children are derived from the paths, so every parent must be
    /// among them or the defaults (znodes under a missing parent are dropped), and ACLs are
    /// shared through the tree's cache.
    pub fn from_imported(
        znodes: impl IntoIterator<Item = (String, Znode)>,
        sessions: BTreeMap<SessionId, SessionEntry>,
        last_applied: Zxid,
    ) -> DataTree {
        let defaults = DataTree::default();
        let mut all: BTreeMap<node_key::NodeKey, Znode> = defaults
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.as_ref().clone()))
            .collect();
        for (path, node) in znodes {
            if let Some(key) = store::key_of(&path) {
                all.insert(key, node);
            }
        }
        let mut tree = DataTree {
            last_applied,
            ..DataTree::default()
        };
        tree.nodes = NodeMap::default();
        // Keys sort parents before their children, so one pass finds orphans.
        for (key, mut node) in all {
            node.stat.num_children = 0;
            node.stat.data_length = i32::try_from(node.data.len()).unwrap_or(i32::MAX);
            node.acl = tree.acls.intern(&node.acl);
            let path = store::path_of(&key);
            let parent = path::parent(&path);
            if let Some(p) = parent.and_then(|p| tree.nodes.get_mut(p)) {
                p.stat.num_children = p.stat.num_children.saturating_add(1);
            } else if parent.is_some() {
                continue;
            }
            tree.nodes.insert_key(key, Arc::new(node));
        }
        for (id, mut s) in sessions {
            s.ephemerals.retain(|p| tree.nodes.contains(p));
            tree.sessions.insert(id, Arc::new(s));
        }
        tree.recompute_quota_usage();
        tree
    }

    /// Number of distinct ACLs the tree's cache holds.
    pub fn distinct_acls(&self) -> usize {
        self.acls.len()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_tests;

#[cfg(test)]
mod null_data_tests;

#[cfg(test)]
mod stream_tests;

#[cfg(test)]
mod compact_image_tests;

#[cfg(test)]
mod delta_image_tests;
