//! `/zookeeper/config`: the membership in ZooKeeper's text, written only by reconfig txns.

use super::{DataTree, OpResult, TreeTxn, Trigger, Undo};
use ensemble_messages::zk::{EventType, ZkError};

/// The config node's path.
pub const PATH: &str = "/zookeeper/config";

/// The `version=HEX` of a config text (0 without one or when unreadable).
pub fn version_of(text: &[u8]) -> u64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("version="))
        })
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

impl DataTree {
    /// The config node's text and version.
    pub fn config(&self) -> (Vec<u8>, u64) {
        let data = self
            .get(PATH)
            .map(|n| n.data().to_vec())
            .unwrap_or_default();
        let version = version_of(&data);
        (data, version)
    }

    /// Sets the config node's text without a txn: how a server starts with the configured
    /// membership, or with the newer one its last reconfig left in dataDir when its snapshot
    /// is older (mzxid then names that reconfig; the older reconfigs replayed from the log
    /// after it fail their version check and change nothing).
    pub fn init_config(&mut self, text: &str) {
        let version = version_of(text.as_bytes());
        if let Some(node) = self.nodes.get_mut(PATH) {
            node.set_data(Some(text.as_bytes().to_vec()));
            node.stat.mzxid = i64::try_from(version).unwrap_or(i64::MAX);
        }
    }

    /// Applies a reconfig at `zxid`: the node gets `servers` and `version=<zxid hex>` if its
    /// version is `expected.0`; `expected.1` says whether the client named that version.
    pub(super) fn reconfig(
        &mut self,
        servers: &str,
        expected: (u64, bool),
        (t, zxid): (&TreeTxn, i64),
        undo: &mut Undo,
        triggers: &mut Vec<Trigger>,
    ) -> Result<OpResult, ZkError> {
        let (_, current) = self.config();
        if current != expected.0 {
            return Err(if expected.1 {
                ZkError::BadVersion
            } else {
                ZkError::ReconfigInProgress
            });
        }
        let mut text = servers.to_string();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("version={zxid:x}"));
        self.save_node(undo, PATH);
        let node = self.nodes.get_mut(PATH).ok_or(ZkError::NoNode)?;
        node.set_data(Some(text.into_bytes()));
        node.stat.version += 1;
        node.stat.mzxid = zxid;
        node.stat.mtime = t.time_ms;
        triggers.push(self.trigger(PATH, EventType::NodeDataChanged));
        Ok(OpResult::DataSet {
            stat: self.stat(PATH).ok_or(ZkError::NoNode)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_last_line() {
        assert_eq!(
            version_of(b"server.1=a:1:2:participant;3\nversion=100000002"),
            0x1_0000_0002
        );
        assert_eq!(version_of(b""), 0);
        assert_eq!(version_of(b"version=zz"), 0);
        assert_eq!(version_of(&[0xff, 0xfe]), 0);
    }
}
