//! The request pipeline actor: the data tree and the client service's pure core, fed in
//! order by Zab with what it applies, and by the client connections with their requests.
//!
//! Zab ([`QuorumPeerActor`](crate::zab::QuorumPeerActor)) hands it every tree it builds (at
//! start, after a restart, from a SNAP) and every committed batch, outcome and role change, in
//! the order its core decided them; the pipeline answers reads and sessions from the tree and
//! sends the txns its clients ask for back to Zab to propose.

mod actor;
mod messages;

pub use actor::{PipelineActor, PipelineSettings};
pub use messages::{
    ApplyTxns, ConfigApplied, FailPipeline, GetCounts, GetPublishedTree, GetReport, InstallTree,
    PipelineCounts, Propose, ReadData, ReloadFromDisk, ResetConnectionStats, RoleSeen, ServerAddrs,
    ServerReport, SnapshotFor, Submit, TxnCompleted, WriteResult, ZabHandle,
};
