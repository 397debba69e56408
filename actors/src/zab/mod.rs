//! Zab: discovery, synchronization and broadcast, as a pure core.
//!
//! [`QuorumPeer`] is the replication state machine of one server: it asks the
//! [`Election`](crate::election::Election) core (another core, with a driver of its own) for a
//! leader with [`Output::Election`], takes its decision as [`Input::Elected`] and then plays
//! the leader or follower role. It is driven by [`QuorumPeer::step`] with an [`Input`] and the
//! current time, and answers with [`Output`]s for its driver to carry out. It does no I/O of
//! its own.

mod actor;
mod composed;
mod events;
mod follower;
mod leader;
mod log;
pub mod membership;
mod peer;
mod types;

pub use actor::{FailQuorumPeer, GetStatus, NodeStatus, QuorumPeerActor, QuorumSettings};
pub use composed::ComposedPeer;
pub use events::{NodeEvent, NodeEvents};
pub use log::TxnLog;
pub use peer::{BodyCheck, QuorumPeer};
pub use types::{Durable, Input, Output, PeerStatus, PeerTiming, SubmitError};

#[cfg(test)]
mod tests;
