//! Typed messages of ensemble.
//!
//! - [`peer`]: what servers send each other (handshake, election notifications, Zab packets),
//!   framed as length-prefixed bincode 2 by [`codec::PeerCodec`].
//! - [`frame`]: the length-prefixed frame every TCP protocol here shares.
//! - [`sync_parts`]: a sync's NEWLEADER (a SNAP's image, a DIFF's txns) on a peer link, in parts.
//! - [`zxid`]: transaction ids, `epoch << 32 | counter`.
//! - [`spark`]: what Spark-style masters and workers send each other.

pub mod byte_vec;
pub mod codec;
pub mod frame;
mod image_buffer;
pub mod jute;
pub mod mutation;
pub mod peer;
pub mod spark;
pub mod sync_parts;
pub mod zk;
pub mod zxid;

pub use peer::{
    HandshakeFrame, Notification, PeerMessage, ServerState, Snapshot, Txn, Vote, ZabMessage,
};
pub use zxid::Zxid;

#[cfg(test)]
mod robustness_tests;

/// Server id, the `N` of `server.N` and the content of `myid`.
pub type Sid = u64;
