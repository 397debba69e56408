//! The replicated operations on the tree and their results.

pub use ensemble_messages::zk::{ttl_of_owner, ttl_owner, CreateMode, MAX_TTL_MS};
use ensemble_messages::zk::{EventType, SessionId, ZkError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One permission grant, as the tree stores it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    /// Permission bits.
    pub perms: i32,
    /// Scheme: world, auth, digest, ip, x509.
    pub scheme: String,
    /// Identity within the scheme.
    pub id: String,
}

impl AclEntry {
    /// `world:anyone` with every permission (ZooKeeper's OPEN_ACL_UNSAFE).
    pub fn open() -> Vec<AclEntry> {
        vec![AclEntry {
            perms: ensemble_messages::zk::perm::ALL,
            scheme: "world".into(),
            id: "anyone".into(),
        }]
    }
}

/// A session's password: 16 random bytes.
pub type SessionPassword = [u8; 16];

/// A write to the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeOp {
    /// Open a session with this timeout. The password is drawn at random by the server that
    /// opens the session; it is replicated so that any server can check a reconnect.
    CreateSession {
        timeout_ms: i32,
        password: SessionPassword,
    },
    /// The client closes its session; its ephemeral znodes are deleted.
    CloseSession,
    /// The leader expires a silent session; its ephemeral znodes are deleted.
    ExpireSession,
    /// The session moved to the server that proposed this txn (a client reconnected there);
    /// writes it sends through any other server now fail with SessionMoved.
    MoveSession,
    /// Create a znode.
    Create {
        path: String,
        #[serde(with = "ensemble_messages::byte_vec")]
        data: Vec<u8>,
        acl: Vec<AclEntry>,
        mode: CreateMode,
    },
    /// Delete a childless znode if the version matches (-1: any).
    Delete { path: String, version: i32 },
    /// Replace a znode's data if the version matches (-1: any).
    SetData {
        path: String,
        #[serde(with = "ensemble_messages::byte_vec")]
        data: Vec<u8>,
        version: i32,
    },
    /// Replace a znode's ACL if the ACL version matches (-1: any).
    SetAcl {
        path: String,
        acl: Vec<AclEntry>,
        version: i32,
    },
    /// Check a znode's version (inside a multi).
    Check { path: String, version: i32 },
    /// The leader deletes a container or TTL znode that is due, if it still is when applied.
    Reap { path: String },
    /// All or nothing, at one zxid. A multi never holds a multi: decoding refuses one, so the
    /// depth of a decoded op is at most two whatever its bytes say.
    Multi(#[serde(deserialize_with = "flat_ops")] Vec<TreeOp>),
    /// A reconfig: `/zookeeper/config` gets these `server.N` lines and the txn's zxid as its
    /// version, if its current version is still `expected_version` (else BadVersion when the
    /// client named that version, ReconfigInProgress when another reconfig came first).
    Reconfig {
        servers: String,
        expected_version: u64,
        explicit: bool,
    },
    /// [`TreeOp::Create`] with null data (jute length -1), which reads back null. A variant
    /// of its own, after the others, so that the txns of earlier versions still decode.
    CreateNullData {
        path: String,
        acl: Vec<AclEntry>,
        mode: CreateMode,
    },
    /// [`TreeOp::SetData`] with null data; after the others for the same reason.
    SetNullData { path: String, version: i32 },
}

impl TreeOp {
    /// A create of `data` (`None`: null), as the variant that carries it.
    pub fn create(
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<AclEntry>,
        mode: CreateMode,
    ) -> TreeOp {
        match data {
            Some(data) => TreeOp::Create {
                path,
                data,
                acl,
                mode,
            },
            None => TreeOp::CreateNullData { path, acl, mode },
        }
    }

    /// A setData of `data` (`None`: null), as the variant that carries it.
    pub fn set_data(path: String, data: Option<Vec<u8>>, version: i32) -> TreeOp {
        match data {
            Some(data) => TreeOp::SetData {
                path,
                data,
                version,
            },
            None => TreeOp::SetNullData { path, version },
        }
    }
}

/// A txn body: the op, who asked, and when (the time is part of the txn so that every replica
/// stamps the same ctime and mtime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeTxn {
    /// Session that issued the op (0 for server-internal ops).
    pub session_id: SessionId,
    /// Wall-clock time at the origin server, in ms.
    pub time_ms: i64,
    /// The session's authenticated identities (scheme, id), for ACL checks.
    pub auth: Vec<(String, String)>,
    /// The operation.
    pub op: TreeOp,
}

thread_local! {
    /// How many multis the current thread is decoding, one inside the other.
    static MULTI_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Decodes the ops of a multi, refusing a multi among them.
fn flat_ops<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TreeOp>, D::Error> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            MULTI_DEPTH.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    let depth = MULTI_DEPTH.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let _leave = Leave;
    if depth > 1 {
        return Err(serde::de::Error::custom("a multi inside a multi"));
    }
    Vec::<TreeOp>::deserialize(d)
}

impl TreeTxn {
    /// Decodes a txn body and checks that it is a txn this tree can apply: every path valid,
    /// data within `max_data` bytes, and a multi holding only the ops ZooKeeper allows in one.
    /// The leader proposes nothing that fails, so no server ever logs it.
    pub fn check_body(body: &[u8], max_data: usize) -> Result<(), String> {
        let t: TreeTxn = ensemble_messages::codec::decode(body)
            .map_err(|e| format!("undecodable txn body: {e}"))?;
        match &t.op {
            TreeOp::Multi(ops) => ops.iter().try_for_each(|op| match op {
                TreeOp::Create { .. }
                | TreeOp::CreateNullData { .. }
                | TreeOp::Delete { .. }
                | TreeOp::SetData { .. }
                | TreeOp::SetNullData { .. }
                | TreeOp::Check { .. } => op.check(max_data),
                other => Err(format!("{other:?} is not allowed in a multi")),
            }),
            op => op.check(max_data),
        }
    }
}

impl TreeTxn {
    /// The membership a reconfig txn body proposes (None for any other body).
    pub fn membership_of(body: &[u8]) -> Option<crate::zab::membership::ProposedMembership> {
        // Every committed txn is asked this; only a reconfig is worth a whole decode.
        if op_tag(body).is_some_and(|tag| tag != RECONFIG_TAG) {
            return None;
        }
        let t: TreeTxn = ensemble_messages::codec::decode(body).ok()?;
        let TreeOp::Reconfig {
            servers,
            expected_version,
            ..
        } = t.op
        else {
            return None;
        };
        let (voters, observers) = crate::zab::membership::members_of_lines(&servers)?;
        Some(crate::zab::membership::ProposedMembership {
            expected_version,
            voters,
            observers,
        })
    }
}

/// The bincode variant index of [`TreeOp::Reconfig`] (pinned by a test).
const RECONFIG_TAG: u32 = 11;

/// The head of an encoded [`TreeTxn`] up to its op's variant index, borrowed from the body.
#[derive(Deserialize)]
struct TxnHead<'a> {
    _session_id: SessionId,
    _time_ms: i64,
    #[serde(borrow)]
    _auth: Vec<(&'a str, &'a str)>,
    op_tag: u32,
}

/// The variant index of the op of an encoded txn, read without decoding the op; `None` when
/// the head does not decode (the caller then decodes the whole body to find out).
fn op_tag(body: &[u8]) -> Option<u32> {
    let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    bincode::serde::borrow_decode_from_slice::<TxnHead, _>(body, config)
        .ok()
        .map(|(head, _)| head.op_tag)
}

impl TreeOp {
    /// Checks the paths and data sizes of one op.
    fn check(&self, max_data: usize) -> Result<(), String> {
        let data_fits = |data: &[u8]| {
            if data.len() > max_data {
                return Err(format!("{} bytes of data: over {max_data}", data.len()));
            }
            Ok(())
        };
        let named = |path: &str, mode: &CreateMode| {
            if mode.is_sequential() {
                super::validate_path(&format!("{path}0000000000"))
            } else {
                super::validate_path(path)
            }
        };
        match self {
            TreeOp::Create {
                path, data, mode, ..
            } => {
                named(path, mode)?;
                data_fits(data)
            }
            TreeOp::CreateNullData { path, mode, .. } => named(path, mode),
            TreeOp::SetData { path, data, .. } => {
                super::validate_path(path)?;
                data_fits(data)
            }
            TreeOp::SetNullData { path, .. }
            | TreeOp::Delete { path, .. }
            | TreeOp::SetAcl { path, .. }
            | TreeOp::Check { path, .. }
            | TreeOp::Reap { path } => super::validate_path(path),
            TreeOp::Reconfig { servers, .. } => crate::zab::membership::voters_of_lines(servers)
                .filter(|v| !v.is_empty())
                .map(|_| ())
                .ok_or_else(|| "a reconfig names no voter or a malformed server".to_string()),
            _ => Ok(()),
        }
    }
}

impl TreeTxn {
    /// Encodes the txn as a Zab txn body.
    pub fn encode(&self) -> Vec<u8> {
        ensemble_messages::codec::encode(self).expect("tree txns always encode")
    }
}

/// A znode's metadata, as ZooKeeper's Stat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// The outcome of one op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A znode was created under this (possibly sequential) path.
    Created { path: String, stat: NodeStat },
    /// A znode was deleted.
    Deleted,
    /// Data was set.
    DataSet { stat: NodeStat },
    /// An ACL was set.
    AclSet { stat: NodeStat },
    /// A version check passed.
    Checked,
    /// A session was opened or closed.
    Session,
    /// Every sub-op's result, in order.
    Multi(Vec<OpResult>),
    /// The op failed.
    Error(ZkError),
    /// A sub-op of a failed multi that had succeeded and was undone (ZooKeeper reports it
    /// as an error result with code 0).
    RolledBack,
}

impl OpResult {
    /// The op's error, if it failed.
    pub fn outcome(&self) -> Result<(), ZkError> {
        match self {
            OpResult::Error(e) => Err(*e),
            _ => Ok(()),
        }
    }
}

/// A change that fires watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// The changed path.
    pub path: String,
    /// ZooKeeper event type (NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged).
    pub event: EventType,
    /// The ACL of the znode at `path` when it changed (as it was, for a deleted one): only
    /// watchers with READ on it get the event. Shared with the znode, not copied.
    pub acl: Arc<[AclEntry]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data fields are read as one byte string, yet encode exactly as the sequence of `u8`
    /// they were written as before: txns in old logs and from older peers still decode.
    #[test]
    fn data_encodes_as_the_byte_sequence_it_always_was() {
        let op = TreeOp::SetData {
            path: "/a".into(),
            data: vec![1, 2, 3],
            version: 5,
        };
        // Variant 6, "/a", three bytes, zigzag 5.
        let bytes = ensemble_messages::codec::encode(&op).unwrap();
        assert_eq!(bytes, [6, 2, b'/', b'a', 3, 1, 2, 3, 10]);
        assert_eq!(
            ensemble_messages::codec::decode::<TreeOp>(&bytes).unwrap(),
            op
        );
        let create = TreeOp::create(
            "/b".into(),
            Some(vec![9; 300]),
            Vec::new(),
            CreateMode::Persistent,
        );
        let bytes = ensemble_messages::codec::encode(&create).unwrap();
        // Variant 4, "/b", a varint length of 300 (251, then u16 little-endian), the bytes.
        assert_eq!(bytes[..7], [4, 2, b'/', b'b', 251, 44, 1]);
        assert_eq!(
            ensemble_messages::codec::decode::<TreeOp>(&bytes).unwrap(),
            create
        );
    }

    /// One op of every variant, in declaration order.
    fn one_of_each() -> Vec<TreeOp> {
        let path = || "/p".to_string();
        vec![
            TreeOp::CreateSession {
                timeout_ms: 1,
                password: [1; 16],
            },
            TreeOp::CloseSession,
            TreeOp::ExpireSession,
            TreeOp::MoveSession,
            TreeOp::create(path(), Some(vec![1]), Vec::new(), CreateMode::Persistent),
            TreeOp::Delete {
                path: path(),
                version: 1,
            },
            TreeOp::SetData {
                path: path(),
                data: vec![1],
                version: 1,
            },
            TreeOp::SetAcl {
                path: path(),
                acl: Vec::new(),
                version: 1,
            },
            TreeOp::Check {
                path: path(),
                version: 1,
            },
            TreeOp::Reap { path: path() },
            TreeOp::Multi(Vec::new()),
            TreeOp::Reconfig {
                servers: "server.1=a:1:2:participant;3".into(),
                expected_version: 0,
                explicit: true,
            },
            TreeOp::create(path(), None, Vec::new(), CreateMode::Persistent),
            TreeOp::SetNullData {
                path: path(),
                version: 1,
            },
        ]
    }

    fn body(op: TreeOp) -> Vec<u8> {
        TreeTxn {
            session_id: SessionId(7),
            time_ms: -3,
            auth: vec![
                ("ip".into(), "10.0.0.1".into()),
                ("super".into(), String::new()),
            ],
            op,
        }
        .encode()
    }

    /// `membership_of` skips the whole decode of every txn but a reconfig: the variant index
    /// it reads from the head is the op's, and only the reconfig's is `RECONFIG_TAG`.
    #[test]
    fn the_op_tag_read_from_the_head_is_the_variant_index() {
        for (index, op) in one_of_each().into_iter().enumerate() {
            let is_reconfig = matches!(op, TreeOp::Reconfig { .. });
            let b = body(op);
            assert_eq!(op_tag(&b), Some(index as u32));
            assert_eq!(index as u32 == RECONFIG_TAG, is_reconfig);
            assert_eq!(TreeTxn::membership_of(&b).is_some(), is_reconfig);
        }
    }

    /// Whatever the bytes, reading the tag first answers as decoding the whole body does.
    #[test]
    fn membership_of_answers_as_a_whole_decode_on_any_bytes() {
        let whole = |b: &[u8]| {
            let t: Option<TreeTxn> = ensemble_messages::codec::decode(b).ok();
            t.is_some_and(|t| matches!(t.op, TreeOp::Reconfig { .. }))
        };
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for op in one_of_each() {
            let b = body(op);
            for cut in 0..=b.len() {
                let mut bytes = b[..cut].to_vec();
                assert_eq!(TreeTxn::membership_of(&bytes).is_some(), whole(&bytes));
                if let Some(i) = (!bytes.is_empty()).then(|| (state as usize) % bytes.len()) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    bytes[i] = state as u8;
                    let reconfig = TreeTxn::membership_of(&bytes).is_some();
                    assert!(!reconfig || whole(&bytes), "{bytes:?}");
                }
            }
        }
    }
}
