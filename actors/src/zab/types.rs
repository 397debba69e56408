//! Inputs, outputs and settings of the [`QuorumPeer`](super::QuorumPeer) core.

use crate::election::{Decision, ElectionRequest, ElectionTiming};
use crate::storage::{PersistToken, StorageOp};
use ensemble_messages::{PeerMessage, ServerState, Sid, Snapshot, Txn, Zxid};

/// Timing of one server, in ms and ticks.
#[derive(Clone, Debug)]
pub struct PeerTiming {
    /// Length of a tick.
    pub tick_ms: u64,
    /// Ticks allowed for discovery and synchronization.
    pub init_limit: u32,
    /// Ticks of silence tolerated between leader and follower.
    pub sync_limit: u32,
    /// Election timing.
    pub election: ElectionTiming,
    /// Committed txns kept in memory past the applied point, for DIFF sync.
    pub diff_window: usize,
}

/// What a server recovered from disk at start.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// Last epoch this server acknowledged in discovery.
    pub accepted_epoch: u32,
    /// Epoch of the last leader this server synchronized with.
    pub current_epoch: u32,
    /// Last zxid of the snapshot the state machine was loaded from.
    pub snapshot_zxid: Zxid,
    /// Logged txns after the snapshot, in order; not applied yet.
    pub log: Vec<Txn>,
}

/// Why a submitted write did not commit (its outcome is then unknown, as ZooKeeper's
/// ConnectionLoss).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// This server is not following an established leader right now.
    NotServing,
    /// Leadership changed before the write committed; it may or may not commit later.
    LeaderChanged,
    /// The leader refused the forwarded write.
    Refused(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::NotServing => write!(f, "this server is not currently serving requests"),
            SubmitError::LeaderChanged => {
                write!(f, "leadership changed; the write's outcome is unknown")
            }
            SubmitError::Refused(why) => write!(f, "the leader refused the write: {why}"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// Events for the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from a peer.
    Message { from: Sid, msg: PeerMessage },
    /// Time passed; the driver ticks at least every tick/4.
    Tick,
    /// A storage operation carrying this token, and all before it, is durable.
    Persisted(PersistToken),
    /// A client write received at this server.
    Submit { request_id: u64, body: Vec<u8> },
    /// A peer link came up.
    PeerConnected(Sid),
    /// A peer link went down.
    PeerDisconnected(Sid),
    /// The election decided, answering an [`ElectionRequest::Look`] (ignored unless it answers
    /// the last one and the server still looks).
    Elected(Decision),
    /// A peer's notification named this config version: adopted if it is newer and this
    /// server logged the reconfigs that lead to it. Its driver feeds it before the notification
    /// reaches the election, which then counts with the adopted members.
    ConfigHeard(u64),
}

/// Work for the driver, to carry out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message to a peer (dropped if the link is down).
    Send { to: Sid, msg: PeerMessage },
    /// Make an operation durable; report `token` when it is.
    Persist {
        op: StorageOp,
        token: Option<PersistToken>,
    },
    /// Apply committed txns to the state machine, in order.
    Apply(Vec<Txn>),
    /// Replace the state machine with this image (a SNAP sync).
    InstallSnapshot(Snapshot),
    /// Sync a follower by SNAP: send `NewLeader` with the state machine's current image
    /// (it covers every applied txn) followed by `txns`.
    SendSnapshotSync { to: Sid, epoch: u32, txns: Vec<Txn> },
    /// A write submitted here finished.
    Completed {
        request_id: u64,
        result: Result<Zxid, SubmitError>,
    },
    /// For the election, in order: look for a leader (answered by [`Input::Elected`]), count
    /// with new members, or carry an established epoch in its answers.
    Election(ElectionRequest),
}

/// A summary of the server for status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// Role.
    pub state: ServerState,
    /// Whether the role is established (the leader has a synced quorum, the follower is synced).
    pub serving: bool,
    /// The leader followed or led, if any.
    pub leader: Option<Sid>,
    /// Epoch of the last established leader.
    pub current_epoch: u32,
    /// Last logged zxid.
    pub last_logged: Zxid,
    /// Last committed zxid.
    pub committed: Zxid,
    /// Last applied zxid.
    pub applied: Zxid,
    /// Voting followers synced to this leader (0 unless leading).
    pub synced_followers: usize,
    /// Observers synced to this leader (0 unless leading).
    pub synced_observers: usize,
    /// Learners (followers and observers) connected to this leader, synced or not (0 unless
    /// leading).
    pub learners: usize,
    /// Voters of the config this server counts with (ZooKeeper's quorum_size).
    pub voters: usize,
    /// Election round of the last decision.
    pub election_epoch: u64,
}
