//! Reading a server's durable state back at start.

use super::files::{self, read_record, RecordRead};
use super::StorageError;
use ensemble_messages::{Snapshot, Txn, Zxid};
use std::fs;
use std::path::Path;

/// What a server finds on disk.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Content of the acceptedEpoch file (0 when absent).
    pub accepted_epoch: u32,
    /// Content of the currentEpoch file (0 when absent).
    pub current_epoch: u32,
    /// The newest valid snapshot.
    pub snapshot: Option<Snapshot>,
    /// Logged txns above the snapshot, in order.
    pub log: Vec<Txn>,
    /// Repairs made and damage skipped, for the operator.
    pub warnings: Vec<String>,
}

impl Recovered {
    /// Last zxid of the snapshot, or zero.
    pub fn snapshot_zxid(&self) -> Zxid {
        self.snapshot.as_ref().map_or(Zxid::ZERO, |s| s.last_zxid)
    }
}

/// Reads the epochs, the newest valid snapshot and the log above it.
pub fn recover(data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    let mut rec = Recovered {
        accepted_epoch: files::read_epoch(&data_dir.join("acceptedEpoch"))?,
        current_epoch: files::read_epoch(&data_dir.join("currentEpoch"))?,
        ..Recovered::default()
    };
    for (zxid, path) in files::list_snapshots(&files::snapshot_dir(data_dir))?
        .into_iter()
        .rev()
    {
        let bytes =
            fs::read(&path).map_err(StorageError::io(format!("reading {}", path.display())))?;
        match files::decode_snapshot(&bytes) {
            Ok(s) if s.last_zxid == zxid => {
                rec.snapshot = Some(s);
                break;
            }
            Ok(_) => rec.warnings.push(format!(
                "{}: name and content disagree; skipped",
                path.display()
            )),
            Err(e) => rec.warnings.push(format!(
                "{}: {e}; falling back to an older snapshot",
                path.display()
            )),
        }
    }
    let base = rec.snapshot_zxid();
    let logs = files::list_logs(&files::log_dir(data_log_dir))?;
    let mut last = Zxid::ZERO;
    for (i, (_, path)) in logs.iter().enumerate() {
        let is_last_file = i + 1 == logs.len();
        let bytes =
            fs::read(path).map_err(StorageError::io(format!("reading {}", path.display())))?;
        let mut offset = 0;
        while offset < bytes.len() {
            match read_record(&bytes, offset) {
                RecordRead::Record(txn, next) => {
                    if txn.zxid <= last {
                        return Err(StorageError::Corrupt(format!(
                            "{} at offset {offset}: zxid {} does not follow {last}; refusing to start",
                            path.display(),
                            txn.zxid
                        )));
                    }
                    last = txn.zxid;
                    if txn.zxid > base {
                        rec.log.push(txn);
                    }
                    offset = next;
                }
                RecordRead::Truncated if is_last_file => {
                    truncate_torn_tail(path, offset, bytes.len(), &mut rec.warnings)?;
                    break;
                }
                RecordRead::Damaged(why) if is_last_file && reaches_end(&bytes, offset) => {
                    rec.warnings.push(format!("{}: last record {why}", path.display()));
                    truncate_torn_tail(path, offset, bytes.len(), &mut rec.warnings)?;
                    break;
                }
                RecordRead::Truncated => {
                    return Err(StorageError::Corrupt(format!(
                        "{} ends inside a record at offset {offset}, but later log files exist; refusing to start",
                        path.display()
                    )))
                }
                RecordRead::Damaged(why) => {
                    return Err(StorageError::Corrupt(format!(
                        "{} at offset {offset}: {why}, with more records after it; refusing to start rather than drop committed txns",
                        path.display()
                    )))
                }
            }
        }
    }
    Ok(rec)
}

/// Whether the record at `offset` is the last thing in the file.
fn reaches_end(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    rest.len() >= 4
        && 8 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize >= rest.len()
}

fn truncate_torn_tail(
    path: &Path,
    offset: usize,
    len: usize,
    warnings: &mut Vec<String>,
) -> Result<(), StorageError> {
    let msg = format!(
        "{}: torn record at offset {offset} (crash during a write); truncated {} bytes",
        path.display(),
        len - offset
    );
    tracing::warn!("{msg}");
    warnings.push(msg);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StorageError::io(format!("opening {}", path.display())))?;
    f.set_len(offset as u64)
        .and_then(|_| f.sync_all())
        .map_err(StorageError::io(format!("truncating {}", path.display())))
}
