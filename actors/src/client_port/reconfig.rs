//! The reconfig op (ZooKeeper's op 16): checked here as ZooKeeper's PrepRequestProcessor
//! does, then submitted as a [`TreeOp::Reconfig`] txn.

use super::service::WriteRequest;
use crate::data_tree::{config_node, permits, DataTree, TreeOp};
use crate::zab::membership::{next_servers, server_lines};
use ensemble_config::dynamic::Membership;
use ensemble_messages::jute::{Jute, ReconfigRequest};
use ensemble_messages::zk::{perm, OpCode, ZkError};

/// The txn a reconfig request asks for, or ZooKeeper's error, checked in ZooKeeper 3.8's
/// order: ReconfigDisabled when the server does not serve reconfig, BadVersion when
/// `curConfigId` is not the current config version, BadArguments for a bad membership, then
/// NoAuth for a caller the config node's ACL refuses a write (everyone but the super user).
pub(super) fn reconfig_request(
    body: &[u8],
    tree: &DataTree,
    auth: &[(String, String)],
    enabled: bool,
) -> Result<WriteRequest, ZkError> {
    if !enabled {
        return Err(ZkError::ReconfigDisabled);
    }
    let r = ReconfigRequest::from_bytes(body).map_err(|_| ZkError::MarshallingError)?;
    let node = tree.get(config_node::PATH).ok_or(ZkError::NoNode)?;
    let current = std::str::from_utf8(node.data())
        .ok()
        .and_then(|t| Membership::parse(t).ok())
        .ok_or(ZkError::RuntimeInconsistency)?;
    let explicit = r.cur_config_id != -1;
    if explicit && u64::try_from(r.cur_config_id).ok() != Some(current.version) {
        return Err(ZkError::BadVersion);
    }
    let servers = next_servers(
        &current.servers,
        &r.joining_servers,
        &r.leaving_servers,
        &r.new_members,
    )?;
    // ZooKeeper 3.8 checks the caller last, so a bad request is BadVersion or BadArguments
    // whoever asks.
    if !permits(&node.acl, perm::WRITE, auth) {
        return Err(ZkError::NoAuth);
    }
    Ok(WriteRequest {
        code: OpCode::Reconfig,
        op: TreeOp::Reconfig {
            servers: server_lines(&servers),
            expected_version: current.version,
            explicit,
        },
        sub_ops: Vec::new(),
        path: config_node::PATH.to_string(),
    })
}
