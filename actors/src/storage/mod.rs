//! Durable storage of one server: the transaction log, snapshots and the epoch files.
//!
//! Layout under the data directories:
//! - `dataLogDir/ensemble-v2/log.<first zxid hex>`: a header (magic, format version), then
//!   append-only txn records, each `u32 length, u32 crc32(length), u32 crc32(body), bincode Txn`,
//!   written over zeros the writer keeps up to a MiB ahead of them (see `log_file`: an fsync
//!   then rarely has the file's size or allocation to write);
//! - `dataDir/ensemble-v2/snapshot.<last zxid hex>`: magic, format version, `u64 length,
//!   u32 crc32` of the body, which is the last zxid (`u64`) and the tree's image streamed after
//!   it (the length and checksum are written last), to a temporary file written back to the
//!   disk 8 MiB at a time as it goes (see `paced_file`), fsynced and renamed;
//!   files of versions 2 and 3, whose body is a bincode Snapshot, still read;
//! - `dataDir/ensemble-v2/newest-log`: the first zxid of the newest log file, rewritten after a
//!   new log file exists and before log files are removed, so that a lost newest log is seen;
//! - `purging.*` beside them: a log or snapshot file being removed a step at a time (see
//!   `paced_remove`), never read, its removal finished at the next start;
//! - `dataDir/acceptedEpoch`, `dataDir/currentEpoch`: decimal text, written the same way, created
//!   (as 0) before anything else.
//!
//! [`recover`] reads them back: the newest valid snapshot, then the log above it, which must
//! continue from the snapshot without a gap and reach the newest log file the marker names. The
//! zeros at the end of the newest file are cut off quietly; a torn record there (a crash
//! mid-write, followed by nothing but zeros) is cut off with a warning; anything it cannot
//! trust (damage elsewhere, missing
//! txns, missing epoch files beside data, an older format) refuses to start with one line
//! naming the problem and what to do.
//! [`StorageActor`] owns the files on an arbiter of its own and does group commit; its restart
//! policy is in [`actor`].

pub mod actor;
mod cadence;
pub mod files;
pub mod inspect;
mod log_file;
mod ops;
mod paced_file;
mod paced_remove;
mod recovery;
mod snapshot_ref;
mod writer;

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod test_writer;
#[cfg(test)]
mod tests;

pub use actor::{
    FailStorage, Flush, HoldSnapshots, Persist, ReportTo, SnapshotJob, StorageActor, StorageHandle,
    TakeSnapshot,
};
pub use cadence::SnapshotCadence;
pub use files::{list_logs, list_snapshots, log_dir, snapshot_dir, SnapshotImage};
pub use ops::{PersistToken, StorageEvent, StorageOp};
pub use paced_remove::remove_paced;
pub use recovery::follows;
pub use recovery::{recover, Recovered};
pub use snapshot_ref::SnapshotRef;
pub use writer::{prepare, WriterEvent, WriterSettings};

/// A storage failure, stated in one line.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A file is damaged where damage cannot be a torn tail.
    #[error("{0}")]
    Corrupt(String),
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
        let context = context.into();
        move |source| StorageError::Io { context, source }
    }
}
