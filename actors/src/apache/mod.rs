//! Apache ZooKeeper 3.x data directories: readers of its snapshot and txn-log files, and the
//! import of its data at the first start of ensemble on the same `dataDir`/`dataLogDir`.
//!
//! Apache keeps `dataDir/version-2/snapshot.<zxid>` (plus `acceptedEpoch`, `currentEpoch`) and
//! `dataLogDir/version-2/log.<zxid>`; ensemble keeps `ensemble-v2/` and `dataDir/acceptedEpoch`,
//! `dataDir/currentEpoch`, so neither touches the other's files.
//!
//! [`recover_or_import`] decides at start: when ensemble's own storage holds no snapshot or log
//! and `version-2/` holds Apache data, that data is read as Apache 3.8 would read it (newest
//! valid snapshot, the logs above it, the epochs), written as ensemble's first snapshot and
//! epoch files, and logged with counts; Apache's files are only read. Once ensemble has
//! storage of its own, Apache's files are ignored, which a log line says. Data that cannot be
//! read refuses the start with one line; it never starts empty.
//!
//! Every byte of these files is treated as hostile: lengths are checked against the bytes left
//! before anything is allocated, and nothing recurses on the input.

mod checksum;
mod import;
mod log;
mod records;
mod replay;
mod snapshot;

#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;

pub use checksum::{adler32, apache_session_password};
pub use import::{find, import, ApacheFiles, Imported, APACHE_DIR};
pub use log::{parse_log, ApacheLog, LogEnd, LogRecord};
pub use records::{
    CreateOwner, CreateTxn, FileHeader, LoggedTxn, StatPersisted, TxnBody, TxnHeader,
};
pub use replay::{ApacheTree, TreeCounts};
pub use snapshot::{parse_snapshot, ApacheSnapshot, SnapDigest, SnapNode};

use crate::storage::{files, recover, Recovered, StorageError};
use std::path::Path;

/// Whether ensemble's own storage holds a snapshot or a log file.
fn has_own_storage(data_dir: &Path, data_log_dir: &Path) -> Result<bool, StorageError> {
    let snaps = files::list_snapshots(&files::snapshot_dir(data_dir))?;
    let logs = files::list_logs(&files::log_dir(data_log_dir))?;
    Ok(!snaps.is_empty() || !logs.is_empty())
}

/// Recovers ensemble's storage, importing Apache's data first when ensemble has none of its
/// own and `version-2/` holds some.
pub fn recover_or_import(
    data_dir: &Path,
    data_log_dir: &Path,
    fsync: bool,
) -> Result<Recovered, StorageError> {
    let apache = find(data_dir, data_log_dir).map_err(refuse)?;
    if apache.is_empty() {
        return recover(data_dir, data_log_dir);
    }
    if has_own_storage(data_dir, data_log_dir)? {
        tracing::info!(
            "ensemble's own storage exists in {}; Apache ZooKeeper's files in {} are ignored",
            files::snapshot_dir(data_dir).display(),
            apache.snap_dir.display()
        );
        return recover(data_dir, data_log_dir);
    }
    let imported = import(data_dir, data_log_dir).map_err(refuse)?;
    adopt(data_dir, &imported, fsync)?;
    let c = imported.counts;
    tracing::info!(
        snapshot = %imported.snapshot.display(),
        txns = imported.txns,
        last_zxid = %imported.last_zxid,
        znodes = c.znodes,
        ephemerals = c.ephemerals,
        sessions = c.sessions,
        containers = c.containers,
        ttls = c.ttls,
        accepted_epoch = imported.accepted_epoch,
        current_epoch = imported.current_epoch,
        "imported Apache ZooKeeper data (its files are left untouched)"
    );
    let mut recovered = recover(data_dir, data_log_dir)?;
    recovered.warnings.extend(imported.warnings);
    Ok(recovered)
}

/// A refusal to start on Apache data that cannot be read.
fn refuse(why: String) -> StorageError {
    StorageError::Corrupt(format!(
        "cannot import Apache ZooKeeper data: {why}; refusing to start (Apache's files are \
         unchanged)"
    ))
}

/// Writes the imported state as ensemble's storage: the epoch files first, then the snapshot
/// (until the snapshot exists, the next start imports again).
fn adopt(data_dir: &Path, imported: &Imported, fsync: bool) -> Result<(), StorageError> {
    let dir = files::snapshot_dir(data_dir);
    files::ensure_dir(&dir)?;
    for (name, epoch) in [
        (files::ACCEPTED_EPOCH, imported.accepted_epoch),
        (files::CURRENT_EPOCH, imported.current_epoch),
    ] {
        files::write_atomic(&data_dir.join(name), epoch.to_string().as_bytes(), fsync)?;
    }
    files::write_snapshot(
        &files::snapshot_path(&dir, imported.last_zxid),
        imported.last_zxid,
        &imported.tree.clone().image(),
        fsync,
    )
}
