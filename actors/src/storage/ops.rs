//! The storage's vocabulary: the durable writes the Zab core asks for, the tokens that say
//! they are done, and the events the storage actor reports to its owner.

use super::WriterEvent;
use actix::Message;
use ensemble_messages::{Snapshot, Txn, Zxid};

/// A durable write for the storage actor. Operations are carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// Append txns to the log.
    Append(Vec<Txn>),
    /// Drop every logged txn above this zxid.
    Truncate(Zxid),
    /// Replace the whole history with this snapshot.
    InstallSnapshot(Snapshot),
    /// Write the acceptedEpoch file.
    AcceptedEpoch(u32),
    /// Write the currentEpoch file.
    CurrentEpoch(u32),
}

/// Reported back through [`Input::Persisted`] once an operation (and all before it) is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistToken {
    /// Txns up to this zxid are on disk.
    Txns(Zxid),
    /// The acceptedEpoch file holds this epoch.
    AcceptedEpoch(u32),
    /// The currentEpoch file holds this epoch.
    CurrentEpoch(u32),
}

/// What the storage actor reports to its owner (the quorum peer actor): durability, snapshots
/// taken, failures.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StorageEvent(pub WriterEvent);
