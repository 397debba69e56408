//! ZooKeeper's quotas. A quota on `/p` is the znode `/zookeeper/quota/p/zookeeper_limits`
//! (text such as `count=10,bytes=-1` and, since 3.7, `countHardLimit`/`byteHardLimit`); its
//! usage is `/zookeeper/quota/p/zookeeper_stats`, which the tree keeps up to date as znodes
//! under `/p` are created, deleted and rewritten. As in ZooKeeper the usage is derived while
//! txns apply, so every replica holds the same; it is rewritten in place (no new version), and
//! recomputed from the subtree when its znode is created and when Apache data is imported.
//! Enforcement (`zookeeper.enforceQuota`) happens before a write is submitted, see
//! [`DataTree::quota_refusal`].

use super::{path, CreateMode, DataTree, OpResult, TreeOp, Undo};
use ensemble_messages::zk::{perm, ZkError};
use std::collections::BTreeMap;

/// The znode under which quotas live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// Name of the znode holding a quota's limits.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the znode holding a quota's usage.
pub const STAT_NODE: &str = "zookeeper_stats";

/// ZooKeeper's StatsTrack: `key=value` pairs, -1 for a value not set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

/// Soft limit (or usage) on the number of znodes.
pub const COUNT: &str = "count";
/// Soft limit (or usage) on the bytes of data.
pub const BYTES: &str = "bytes";
/// Hard limit on the number of znodes.
pub const COUNT_HARD: &str = "countHardLimit";
/// Hard limit on the bytes of data.
pub const BYTES_HARD: &str = "byteHardLimit";

impl StatsTrack {
    /// Reads ZooKeeper's text: pairs separated by `,` or `;`, each `key=value` (an empty value
    /// is -1). Pairs that are not `key=number` are skipped (ZooKeeper would throw).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(key), Some(value)) = (kv.next(), kv.next()) else {
                continue;
            };
            let value = if value.is_empty() {
                Some(-1)
            } else {
                value.parse::<i64>().ok()
            };
            if let Some(v) = value {
                values.insert(key.to_string(), v);
            }
        }
        StatsTrack { values }
    }

    /// The value of `key`, -1 when not set.
    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    /// Sets `key`.
    pub fn set(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
    }

    /// ZooKeeper's text: `count=N,bytes=M` first; any other keys follow, sorted, after an
    /// extra `=` (which old parsers ignore), each as `;key=value`.
    pub fn text(&self) -> String {
        let mut out = format!("{COUNT}={},{BYTES}={}", self.get(COUNT), self.get(BYTES));
        let mut others = self
            .values
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .peekable();
        if others.peek().is_some() {
            out.push('=');
            for (k, v) in others {
                out.push_str(&format!(";{k}={v}"));
            }
        }
        out
    }
}

/// `/zookeeper/quota<path>/zookeeper_limits`.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

/// `/zookeeper/quota<path>/zookeeper_stats`.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

impl DataTree {
    /// The deepest path at or above `path` (not `/`) that has a quota. Walks the mirror of
    /// `path` under `/zookeeper/quota` and stops where it ends, so a tree without quotas
    /// costs one lookup.
    fn quota_root(&self, path: &str) -> Option<String> {
        let mut mirror = QUOTA_ROOT.to_string();
        let mut found = None;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            mirror.push('/');
            mirror.push_str(name);
            if !self.nodes.contains(&mirror) {
                break;
            }
            if self.nodes.contains(&format!("{mirror}/{LIMIT_NODE}")) {
                found = Some(mirror[QUOTA_ROOT.len()..].to_string());
            }
        }
        found
    }

    /// Count and bytes of the znode at `path` and every znode below it.
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let mut usage = match self.nodes.get(path).filter(|_| path != "/") {
            Some(n) => (1i64, n.data.len() as i64),
            None => (0, 0),
        };
        self.walk_below(path, |_, n| {
            usage = (
                usage.0.saturating_add(1),
                usage.1.saturating_add(n.data.len() as i64),
            )
        });
        usage
    }

    /// Adds `count` znodes and `bytes` bytes to the usage of the quota `root`, in place.
    fn add_usage(&mut self, root: &str, count: i64, bytes: i64, undo: &mut Undo) {
        let stat = stat_path(root);
        let Some(node) = self.nodes.get(&stat) else {
            tracing::error!("missing quota stat node {stat}");
            return;
        };
        let mut usage = StatsTrack::parse(&node.data);
        usage.set(COUNT, usage.get(COUNT).saturating_add(count));
        usage.set(BYTES, usage.get(BYTES).saturating_add(bytes));
        self.save_node(undo, &stat);
        if let Some(node) = self.nodes.get_mut(&stat) {
            node.set_data(Some(usage.text().into_bytes()));
        }
    }

    /// After a znode of `len` bytes was created at `path`; whether its data was rewritten
    /// (a stat node's).
    pub(super) fn quota_created(&mut self, path: &str, len: usize, undo: &mut Undo) -> bool {
        let stat_node = stat_node_of(path);
        if let Some(limited) = &stat_node {
            // A new stat node starts from the usage of its subtree, whatever it was given.
            let (count, bytes) = self.subtree_usage(limited);
            let mut usage = StatsTrack::default();
            usage.set(COUNT, count);
            usage.set(BYTES, bytes);
            if let Some(node) = self.nodes.get_mut(path) {
                node.set_data(Some(usage.text().into_bytes()));
            }
        }
        if let Some(root) = self.quota_root(path) {
            self.add_usage(&root, 1, len as i64, undo);
        }
        stat_node.is_some()
    }

    /// After the znode at `path`, which held `len` bytes, was deleted.
    pub(super) fn quota_removed(&mut self, path: &str, len: usize, undo: &mut Undo) {
        if let Some(root) = self.quota_root(path) {
            self.add_usage(&root, -1, -(len as i64), undo);
        }
    }

    /// After the data of the znode at `path` went from `old` to `new` bytes; whether that
    /// rewrote the znode at `path` itself (a stat node under the quota it counts for).
    pub(super) fn quota_rewritten(
        &mut self,
        path: &str,
        old: usize,
        new: usize,
        undo: &mut Undo,
    ) -> bool {
        let Some(root) = self.quota_root(path) else {
            return false;
        };
        self.add_usage(&root, 0, new as i64 - old as i64, undo);
        stat_path(&root) == path
    }

    /// Recomputes every quota's usage from its subtree (after importing a tree whose stat
    /// nodes may lag, as ZooKeeper does when it loads a snapshot).
    pub(super) fn recompute_quota_usage(&mut self) {
        let suffix = format!("/{LIMIT_NODE}");
        let mut limited = Vec::new();
        self.walk_below(QUOTA_ROOT, |path, _| {
            if self.nodes.child_names(path).next().is_some() {
                return;
            }
            let mirror = path.strip_suffix(&suffix);
            if let Some(quoted) = mirror.and_then(|m| m.strip_prefix(QUOTA_ROOT)) {
                limited.push(quoted.to_string());
            }
        });
        for path in limited {
            let (count, bytes) = self.subtree_usage(&path);
            let mut usage = StatsTrack::default();
            usage.set(COUNT, count);
            usage.set(BYTES, bytes);
            if let Some(node) = self.nodes.get_mut(&stat_path(&path)) {
                node.set_data(Some(usage.text().into_bytes()));
            }
        }
    }

    /// What a server with `zookeeper.enforceQuota=true` answers instead of submitting `op`:
    /// QuotaExceeded (-125) when a create or setData would take its quota's usage past a hard
    /// limit (a multi fails at its first such op, the others reported as ZooKeeper does).
    /// Going past a soft limit only logs a warning. As in ZooKeeper, the usage checked is the
    /// one applied so far, and only writes that would otherwise pass are checked.
    pub fn quota_refusal(&self, op: &TreeOp, auth: &[(String, String)]) -> Option<OpResult> {
        match op {
            TreeOp::Multi(ops) => {
                let i = ops
                    .iter()
                    .position(|op| self.exceeds_hard_limit(op, auth))?;
                let mut out = vec![OpResult::RolledBack; i];
                out.push(OpResult::Error(ZkError::QuotaExceeded));
                out.resize(ops.len(), OpResult::Error(ZkError::RuntimeInconsistency));
                Some(OpResult::Multi(out))
            }
            op => self
                .exceeds_hard_limit(op, auth)
                .then_some(OpResult::Error(ZkError::QuotaExceeded)),
        }
    }

    fn exceeds_hard_limit(&self, op: &TreeOp, auth: &[(String, String)]) -> bool {
        match op {
            TreeOp::Create {
                path, data, mode, ..
            } => self.create_over_hard_limit(path, data.len(), *mode, auth),
            TreeOp::CreateNullData { path, mode, .. } => {
                self.create_over_hard_limit(path, 0, *mode, auth)
            }
            TreeOp::SetData { path, data, .. } => self.set_over_hard_limit(path, data.len(), auth),
            TreeOp::SetNullData { path, .. } => self.set_over_hard_limit(path, 0, auth),
            _ => false,
        }
    }

    /// Whether `auth` has `needed` on the znode at `path`.
    fn allowed(&self, path: &str, needed: i32, auth: &[(String, String)]) -> bool {
        self.nodes
            .get(path)
            .is_some_and(|n| super::permits(&n.acl, needed, auth))
    }

    /// Whether creating `path` with `len` bytes of data passes a hard limit.
    fn create_over_hard_limit(
        &self,
        path: &str,
        len: usize,
        mode: CreateMode,
        auth: &[(String, String)],
    ) -> bool {
        let Some(parent) = path::parent(path) else {
            return false;
        };
        let Some(p) = self.nodes.get(parent) else {
            return false;
        };
        let path = if mode.is_sequential() {
            format!("{path}{:010}", p.stat.cversion)
        } else {
            path.to_string()
        };
        self.allowed(parent, perm::CREATE, auth)
            && !self.nodes.contains(&path)
            && self.over_hard_limit(&path, 1, len as i64)
    }

    /// Whether replacing the data of `path` with `len` bytes passes a hard limit.
    fn set_over_hard_limit(&self, path: &str, len: usize, auth: &[(String, String)]) -> bool {
        match self.nodes.get(path) {
            Some(n) if self.allowed(path, perm::WRITE, auth) => {
                self.over_hard_limit(path, 0, len as i64 - n.data.len() as i64)
            }
            _ => false,
        }
    }

    /// ZooKeeper's checkQuota: whether adding `count` znodes and `bytes` bytes under `path`
    /// passes a hard limit of its quota; passing a soft one logs a warning.
    fn over_hard_limit(&self, path: &str, count: i64, bytes: i64) -> bool {
        let Some(root) = self.quota_root(path) else {
            return false;
        };
        let Some(limits) = self.nodes.get(&limit_path(&root)) else {
            return false;
        };
        let limits = StatsTrack::parse(&limits.data);
        let Some(usage) = self.nodes.get(&stat_path(&root)) else {
            tracing::error!("missing quota stat node {}", stat_path(&root));
            return false;
        };
        let usage = StatsTrack::parse(&usage.data);
        let checks = [
            (count, COUNT, COUNT_HARD, "count", "CountLimit"),
            (bytes, BYTES, BYTES_HARD, "bytes", "ByteLimit"),
        ];
        let mut refused = false;
        for (diff, soft_key, hard_key, what, limit_name) in checks {
            let (soft, hard) = (limits.get(soft_key), limits.get(hard_key));
            if diff == 0 || (soft < 0 && hard < 0) {
                continue;
            }
            let now = usage.get(soft_key).saturating_add(diff);
            let (is_hard, limit) = if hard > -1 {
                (true, hard)
            } else {
                (false, soft)
            };
            if now > limit {
                let kind = if is_hard { "hard" } else { "soft" };
                tracing::warn!(
                    "Quota exceeded: {root} [current {what}={now}, {kind}{limit_name}={limit}]"
                );
                refused |= is_hard;
            }
        }
        refused
    }
}

/// The quota path whose stat node `path` is, if it is one.
fn stat_node_of(path: &str) -> Option<String> {
    let mirror = path.strip_suffix(&format!("/{STAT_NODE}"))?;
    let limited = mirror.strip_prefix(QUOTA_ROOT)?;
    limited.starts_with('/').then(|| limited.to_string())
}

#[cfg(test)]
mod tests;
