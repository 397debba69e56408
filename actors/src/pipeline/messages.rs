//! The messages between Zab, the request pipeline and the pipeline's other callers.

use crate::client_port::{ClientReport, PublishedTree};
use crate::data_tree::{DataTree, OpResult, TreeTxn};
use crate::peer::SnapSender;
use crate::zab::SubmitError;
use actix::prelude::*;
use ensemble_config::dynamic::Membership;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{ServerState, Sid, Txn, Zxid};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Result of a write submitted through this server.
pub type WriteResult = Result<(Zxid, OpResult), SubmitError>;

/// Zab to the pipeline: the tree to serve from now on (built from disk at a start or restart,
/// or from a leader's SNAP). Later batches apply to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InstallTree(pub DataTree);

/// Zab to the pipeline: committed txns to apply, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyTxns(pub Vec<Txn>);

/// Zab to the pipeline: a write it was asked to propose finished.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TxnCompleted {
    /// The id the pipeline proposed it under.
    pub request_id: u64,
    /// Its zxid, or why it failed.
    pub result: Result<Zxid, SubmitError>,
}

/// Zab to the pipeline: the server's role, sent whenever it changes.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RoleSeen {
    /// Zab's state.
    pub state: ServerState,
    /// Whether the role is established (clients may be served).
    pub serving: bool,
    /// The leader, if known.
    pub leader: Option<Sid>,
}

impl RoleSeen {
    /// The role of a server that does not serve (at start, and after a restart).
    pub const IDLE: RoleSeen = RoleSeen {
        state: ServerState::Looking,
        serving: false,
        leader: None,
    };
}

/// Zab to the pipeline: build a SNAP sync's `NewLeader` message of the tree as it stands
/// after every batch sent before, followed by `txns`, into `reply`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SnapshotFor {
    /// The new leader's epoch.
    pub epoch: u32,
    /// Txns the follower gets after the image.
    pub txns: Vec<Txn>,
    /// Where the message goes as it is built (the peer link sends it on).
    pub reply: SnapSender,
}

/// The pipeline to Zab: propose this txn body; the outcome comes back as [`TxnCompleted`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Propose {
    /// The pipeline's id for it.
    pub request_id: u64,
    /// The encoded [`TreeTxn`].
    pub body: Vec<u8>,
}

/// The pipeline to Zab: an applied reconfig changed the tree's config node to this membership.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConfigApplied(pub Membership);

/// The pipeline to Zab, after the pipeline restarted without a tree: reload the core and the
/// tree from disk and hand the tree over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReloadFromDisk;

/// Submits a tree write; resolves once it committed and was applied here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    /// The write.
    pub txn: TreeTxn,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<WriteResult>,
}

/// Reads a znode's data from this server's tree.
#[derive(Message)]
#[rtype(result = "Option<Vec<u8>>")]
pub struct ReadData(pub String);

/// Asks for the tree versions this server publishes for reads on the connection threads.
#[derive(Message)]
#[rtype(result = "Arc<PublishedTree>")]
pub struct GetPublishedTree;

/// Asks for the details the `cons`, `wchc`, `wchp` and `dump` words show.
#[derive(Message)]
#[rtype(result = "ServerReport")]
pub struct GetReport;

/// Zeroes the per-connection counters (the `crst` word).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResetConnectionStats;

/// Asks for the pipeline's part of the server's status.
#[derive(Message)]
#[rtype(result = "PipelineCounts")]
pub struct GetCounts;

/// Stops the pipeline so that its supervisor restarts it (fault injection).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailPipeline;

/// The pipeline's figures in a server's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineCounts {
    /// Znodes in the tree.
    pub node_count: usize,
    /// Open client connections.
    pub connections: usize,
    /// Watches set by this server's sessions.
    pub watches: usize,
    /// Paths those watches are on.
    pub watched_paths: usize,
    /// Ephemeral znodes.
    pub ephemerals: usize,
    /// Open sessions of the whole ensemble.
    pub sessions: usize,
    /// Supervised restarts of the pipeline.
    pub restarts: u64,
}

/// Connections, watches, sessions and ephemerals of one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// This server's connections and watches.
    pub clients: ClientReport,
    /// Every open session and its timeout in ms.
    pub sessions: Vec<(SessionId, i32)>,
    /// Sessions that own ephemeral znodes, with their paths.
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
}

/// Where the pipeline's requests to Zab go.
#[derive(Clone)]
pub struct ZabHandle {
    /// Txns to propose.
    pub propose: Recipient<Propose>,
    /// Memberships applied reconfigs left.
    pub config: Recipient<ConfigApplied>,
    /// The pipeline lost its tree.
    pub reload: Recipient<ReloadFromDisk>,
}

impl ZabHandle {
    /// The handle of an actor that takes all three messages.
    pub fn of<A>(addr: Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>>
            + Handler<Propose>
            + Handler<ConfigApplied>
            + Handler<ReloadFromDisk>,
    {
        ZabHandle {
            propose: addr.clone().recipient(),
            config: addr.clone().recipient(),
            reload: addr.recipient(),
        }
    }
}

/// The actors a server's client ports and HTTP endpoints talk to: Zab for the status, the
/// request pipeline for everything else.
#[derive(Clone)]
pub struct ServerAddrs {
    /// The quorum peer actor.
    pub quorum: Addr<crate::zab::QuorumPeerActor>,
    /// The request pipeline actor.
    pub pipeline: Addr<super::PipelineActor>,
}
