//! Read-only inspection of ensemble's own files, for `ensemble data dump` and `data check`
//! (recovery itself repairs torn tails; these functions never write).

use super::files::{self, check_log_header, read_record, LogHeader, RecordRead};
use super::SnapshotRef;
use ensemble_messages::{Snapshot, Txn, Zxid};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A log file's records up to the first problem, and that problem.
#[derive(Debug, Default)]
pub struct LogContent {
    /// Records read whole, with their offsets.
    pub txns: Vec<(usize, Txn)>,
    /// What stopped the reading before the end of the file, if anything.
    pub problem: Option<String>,
    /// Where the zeros the writer wrote ahead of its records begin, if the file ends with
    /// them (normal in the newest file of a server that did not stop cleanly).
    pub unused_from: Option<usize>,
    /// What recovery does about the problem when this is the newest log file, if the problem
    /// is a write a crash cut short there (it refuses any other): "removes the file" or
    /// "cuts it off".
    pub repair: Option<&'static str>,
}

/// Reads an ensemble log file's content.
pub fn read_log(bytes: &[u8]) -> LogContent {
    let mut out = LogContent::default();
    match check_log_header(bytes) {
        LogHeader::Valid => {}
        LogHeader::Truncated => {
            out.problem = Some("ends inside its header".into());
            out.repair = Some("removes the file");
            return out;
        }
        LogHeader::Wrong(why) => {
            out.problem = Some(why);
            return out;
        }
    }
    let mut offset = files::LOG_HEADER_LEN;
    while offset < bytes.len() {
        if bytes[offset..].iter().all(|b| *b == 0) {
            out.unused_from = Some(offset);
            break;
        }
        let read = read_record(bytes, offset);
        if super::recovery::is_torn_tail(&read, bytes, offset) {
            out.repair = Some("cuts it off");
        }
        match read {
            RecordRead::Record(txn, next) => {
                out.txns.push((offset, txn));
                offset = next;
            }
            RecordRead::Truncated => {
                out.problem = Some(format!("torn record at offset {offset}"));
                break;
            }
            RecordRead::BadBody(_) => {
                out.problem = Some(format!("record at offset {offset} fails its CRC-32"));
                break;
            }
            RecordRead::Damaged(why) => {
                out.problem = Some(format!("record at offset {offset}: {why}"));
                break;
            }
        }
    }
    out
}

/// Reads an ensemble snapshot file's content, checking its CRC-32, with the zxid of the
/// snapshot it applies onto when it is incremental (its state is then a delta image).
pub fn read_snapshot(bytes: &[u8]) -> Result<(Snapshot, Option<Zxid>), String> {
    files::decode_snapshot_file(bytes)
}

/// The restore point of the snapshot at `zxid` (the file `top`) among `snapshots` (as
/// recovery lists them): the whole snapshot it rests on and its incremental snapshots in
/// order, or why it does not read back. `broken` carries the files found damaged or missing
/// from one call to the next (start it empty), as recovery does.
pub fn read_restore_point(
    zxid: Zxid,
    top: &Path,
    snapshots: &[(Zxid, PathBuf)],
    broken: &mut BTreeSet<Zxid>,
) -> Result<(SnapshotRef, Vec<SnapshotRef>), String> {
    super::recovery::chain_of(zxid, top, snapshots, broken)
}

/// Which of ensemble's file kinds `bytes` starts like: `Some(true)` a snapshot, `Some(false)`
/// a log.
pub fn kind_of(bytes: &[u8]) -> Option<bool> {
    match bytes.get(..4) {
        Some(b"ENSS") => Some(true),
        Some(b"ENSL") => Some(false),
        _ => None,
    }
}
