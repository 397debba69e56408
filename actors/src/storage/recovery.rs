//! Reading a server's durable state back at start, refusing state that cannot be trusted.
//!
//! A server that starts claims every txn up to its last zxid (it votes with that claim), so
//! recovery refuses whenever it cannot show that it holds all of them: a log that does not
//! continue from the snapshot (a deleted snapshot, log file or purged history), a damaged record
//! that is not a torn tail, missing epoch files while data exists, or files of another format.

use super::files::{self, check_log_header, read_record, LogHeader, RecordRead};
use super::{SnapshotRef, StorageError};
use ensemble_messages::{Txn, Zxid};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

/// What a server finds on disk.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Content of the acceptedEpoch file (0 for a fresh server).
    pub accepted_epoch: u32,
    /// Content of the currentEpoch file (0 for a fresh server).
    pub current_epoch: u32,
    /// The whole snapshot the newest valid restore point rests on.
    pub snapshot: Option<SnapshotRef>,
    /// The incremental snapshots to apply onto it, in order (none when the restore point is
    /// the whole snapshot itself).
    pub deltas: Vec<SnapshotRef>,
    /// Logged txns above the snapshot, in order, without gaps.
    pub log: Vec<Txn>,
    /// Repairs made and damage skipped, for the operator.
    pub warnings: Vec<String>,
}

impl Recovered {
    /// Last zxid of the restore point (its last delta, or its snapshot), or zero.
    pub fn snapshot_zxid(&self) -> Zxid {
        self.deltas
            .last()
            .or(self.snapshot.as_ref())
            .map_or(Zxid::ZERO, SnapshotRef::last_zxid)
    }

    /// Last zxid this server holds.
    pub fn last_zxid(&self) -> Zxid {
        self.log.last().map_or(self.snapshot_zxid(), |t| t.zxid)
    }
}

/// A link of a restore point's chain.
enum Link {
    /// The whole snapshot the chain rests on.
    Whole(SnapshotRef),
    /// An incremental snapshot, with the zxid of the one it applies onto.
    Delta(SnapshotRef, Zxid),
}

/// What the operator does when a server refuses to start.
const ADVICE: &str = "refusing to start: delete this server's dataDir and dataLogDir to resync it \
                      from the other servers";

/// A refusal to start, stated in one line with what to do.
fn refuse(what: impl Display) -> StorageError {
    StorageError::Corrupt(format!("{what}; {ADVICE}"))
}

/// Reads the epochs, finds the newest valid restore point (its snapshot files checked, left
/// on disk when of the current formats) and reads the log above it, or refuses to start.
pub fn recover(data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    refuse_old_format(data_dir)?;
    refuse_old_format(data_log_dir)?;
    let mut warnings = Vec::new();
    let snapshots = files::list_snapshots(&files::snapshot_dir(data_dir))?;
    let (snapshot, deltas) = newest_restore_point(&snapshots, &mut warnings)?;
    let log_dir = files::log_dir(data_log_dir);
    let log_files = files::list_logs(&log_dir)?;
    refuse_lost_newest_log(data_dir, &log_files, &log_dir)?;
    let mut rec = Recovered {
        snapshot,
        deltas,
        ..Recovered::default()
    };
    let logged = read_logs(&log_files, rec.snapshot_zxid(), &mut warnings)?;
    rec.warnings = warnings;
    rec.log = continuing_from(rec.snapshot_zxid(), logged, &log_dir)?;
    let has_data = !snapshots.is_empty() || !log_files.is_empty();
    (rec.accepted_epoch, rec.current_epoch) = read_epochs(data_dir, has_data, rec.last_zxid())?;
    Ok(rec)
}

/// Refuses files of the previous format instead of starting empty beside them.
fn refuse_old_format(dir: &Path) -> Result<(), StorageError> {
    let old = dir.join(files::OLD_VERSION_DIR);
    let has_files = fs::read_dir(&old).is_ok_and(|mut entries| entries.next().is_some());
    if has_files {
        return Err(refuse(format!(
            "{} holds data in an older storage format that this version does not read",
            old.display()
        )));
    }
    Ok(())
}

/// Refuses when the newest-log marker names a log file newer than every one on disk: the
/// newest log file was lost, and with it txns this server may have acknowledged.
fn refuse_lost_newest_log(
    data_dir: &Path,
    log_files: &[(Zxid, PathBuf)],
    log_dir: &Path,
) -> Result<(), StorageError> {
    let Some(marked) = files::read_newest_log(data_dir)? else {
        return Ok(());
    };
    let newest = log_files.last().map_or(Zxid::ZERO, |(first, _)| *first);
    if marked > newest {
        return Err(refuse(format!(
            "{}: the newest log file, {}, is missing; txns this server logged are lost",
            log_dir.display(),
            files::log_path(log_dir, marked)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )));
    }
    Ok(())
}

/// The newest restore point that reads back whole: a snapshot, or an incremental one with
/// every link of its chain down to a whole snapshot (the whole one, then the deltas in order).
/// A damaged file or a broken chain is skipped with a warning (the log must then cover the
/// gap from an older restore point).
fn newest_restore_point(
    snapshots: &[(Zxid, PathBuf)],
    warnings: &mut Vec<String>,
) -> Result<(Option<SnapshotRef>, Vec<SnapshotRef>), StorageError> {
    let mut broken = BTreeSet::new();
    for (zxid, path) in snapshots.iter().rev() {
        match chain_of(*zxid, path, snapshots, &mut broken) {
            Ok((whole, deltas)) => return Ok((Some(whole), deltas)),
            Err(why) => warnings.push(format!("{why}; falling back to an older snapshot")),
        }
    }
    Ok((None, Vec::new()))
}

/// The chain of the snapshot at `zxid` (the file `top`), read from `snapshots`: the whole
/// snapshot and the deltas onto it in order, or why it does not read back. `broken` holds the
/// zxids of the files found missing or damaged so far, and gets any this walk finds: a chain
/// through one of them is refused from the files' headers, without reading them again.
pub(super) fn chain_of(
    zxid: Zxid,
    top: &Path,
    snapshots: &[(Zxid, PathBuf)],
    broken: &mut BTreeSet<Zxid>,
) -> Result<(SnapshotRef, Vec<SnapshotRef>), String> {
    if let Some(b) = known_broken_link(zxid, snapshots, broken) {
        return Err(format!(
            "{}: it rests on the snapshot {b}, which does not read back",
            top.display()
        ));
    }
    let mut deltas = Vec::new();
    let mut want = zxid;
    // Each link's base is older than the link: the walk ends within the listed files.
    for _ in 0..=snapshots.len() {
        let link = read_link(want, top, snapshots).inspect_err(|_| {
            broken.insert(want);
        })?;
        match link {
            Link::Whole(whole) => {
                deltas.reverse();
                return Ok((whole, deltas));
            }
            Link::Delta(s, b) if b < want => {
                deltas.push(s);
                want = b;
            }
            Link::Delta(_, b) => {
                broken.insert(want);
                return Err(format!(
                    "{}: the base {b} of the snapshot {want} is not older",
                    top.display()
                ));
            }
        }
    }
    Err(format!("{}: its chain of snapshots loops", top.display()))
}

/// The first link of the chain under `zxid` that is in `broken`, found from the files'
/// headers alone.
fn known_broken_link(
    zxid: Zxid,
    snapshots: &[(Zxid, PathBuf)],
    broken: &BTreeSet<Zxid>,
) -> Option<Zxid> {
    let mut want = zxid;
    for _ in 0..=snapshots.len() {
        if broken.contains(&want) {
            return Some(want);
        }
        let (_, path) = snapshots.iter().find(|(z, _)| *z == want)?;
        match files::snapshot_base(path) {
            Ok(Some(b)) if b < want => want = b,
            _ => return None,
        }
    }
    None
}

/// The snapshot file of `want`, checked whole: a link of the chain of `top`. A file of the
/// current formats is checked as it streams and left on disk; older ones are held.
fn read_link(want: Zxid, top: &Path, snapshots: &[(Zxid, PathBuf)]) -> Result<Link, String> {
    let Some((_, path)) = snapshots.iter().find(|(z, _)| *z == want) else {
        return Err(format!(
            "{}: the snapshot {want} it rests on is missing",
            top.display()
        ));
    };
    let at = |e| format!("{}: {e}", path.display());
    let disagree = || Err(at("name and content disagree".to_string()));
    if let Some(zxids) = files::check_snapshot_file(path)? {
        if zxids.last != want {
            return disagree();
        }
        let link = SnapshotRef::File {
            path: path.clone(),
            zxids,
        };
        return Ok(match zxids.base {
            None => Link::Whole(link),
            Some(b) => Link::Delta(link, b),
        });
    }
    let bytes = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (s, base) = files::decode_snapshot_bytes(bytes.into()).map_err(at)?;
    if s.last_zxid != want {
        return disagree();
    }
    Ok(match base {
        None => Link::Whole(SnapshotRef::Held(s)),
        Some(b) => Link::Delta(SnapshotRef::Held(s), b),
    })
}

/// The logged txns above `base` (the restore point's), in zxid order. Every file is read and
/// checked, but only the txns above `base` are kept: the logs a purge keeps below the restore
/// point (for a fallback) would otherwise be held in memory beside the tree. A torn tail (the
/// incomplete last record of the last file) is cut off with a warning; any other damage
/// refuses.
fn read_logs(
    logs: &[(Zxid, PathBuf)],
    base: Zxid,
    warnings: &mut Vec<String>,
) -> Result<Vec<Txn>, StorageError> {
    let mut out: Vec<Txn> = Vec::new();
    let mut last = None;
    for (i, (_, path)) in logs.iter().enumerate() {
        let is_last_file = i + 1 == logs.len();
        let bytes =
            fs::read(path).map_err(StorageError::io(format!("reading {}", path.display())))?;
        let Some(txns) = read_log_file(path, &bytes, is_last_file, warnings)? else {
            continue;
        };
        for txn in txns {
            if let Some(prev) = last.filter(|p| txn.zxid <= *p) {
                return Err(refuse(format!(
                    "{}: zxid {} does not follow {prev}",
                    path.display(),
                    txn.zxid
                )));
            }
            last = Some(txn.zxid);
            if txn.zxid > base {
                out.push(txn);
            }
        }
    }
    Ok(out)
}

/// The txns of one log file; `None` when it was a torn, header-less last file (removed).
fn read_log_file(
    path: &Path,
    bytes: &[u8],
    is_last_file: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<Txn>>, StorageError> {
    match check_log_header(bytes) {
        LogHeader::Valid => {}
        LogHeader::Truncated if is_last_file => {
            let msg = format!(
                "{}: ends inside its header (crash right after creating it); removed",
                path.display()
            );
            tracing::warn!("{msg}");
            warnings.push(msg);
            fs::remove_file(path)
                .map_err(StorageError::io(format!("removing {}", path.display())))?;
            return Ok(None);
        }
        LogHeader::Truncated => {
            return Err(refuse(format!(
                "{}: ends inside its header, but later log files exist",
                path.display()
            )))
        }
        LogHeader::Wrong(why) => return Err(refuse(format!("{}: {why}", path.display()))),
    }
    let mut txns = Vec::new();
    let mut offset = files::LOG_HEADER_LEN;
    while offset < bytes.len() {
        let read = read_record(bytes, offset);
        let torn = is_last_file && is_torn_tail(&read, bytes, offset);
        match read {
            RecordRead::Record(txn, next) => {
                txns.push(txn);
                offset = next;
                continue;
            }
            _ if is_last_file && all_zero(&bytes[offset..]) => {
                cut_unused_end(path, offset)?;
                break;
            }
            _ if torn => {
                truncate_torn_tail(path, offset, bytes.len(), warnings)?;
                break;
            }
            RecordRead::Truncated => {
                return Err(refuse(format!(
                    "{}: ends inside a record at offset {offset}, but later log files exist",
                    path.display()
                )))
            }
            RecordRead::BadBody(_) => {
                return Err(refuse(format!(
                    "{}: record at offset {offset} fails its checksum, with more data after it",
                    path.display()
                )))
            }
            RecordRead::Damaged(why) => {
                return Err(refuse(format!(
                    "{}: record at offset {offset}: {why}",
                    path.display()
                )))
            }
        }
    }
    Ok(Some(txns))
}

/// Whether what stopped the reading at `offset` of the last file is a write cut short by a
/// crash: a record that ends past the end of the file, or a last record whose body was not
/// fully written (nothing but zeros, never written, follows it).
pub(super) fn is_torn_tail(read: &RecordRead, bytes: &[u8], offset: usize) -> bool {
    match read {
        RecordRead::Record(..) => false,
        RecordRead::Truncated => true,
        RecordRead::BadBody(end) => all_zero(&bytes[*end..]),
        RecordRead::Damaged(_) => all_zero(&bytes[offset..]),
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// Cuts the zeros the writer wrote ahead of its records (see `log_file`) off the newest log
/// file, from `offset`: no record starts with zeros, so this is its normal end, not damage.
fn cut_unused_end(path: &Path, offset: usize) -> Result<(), StorageError> {
    tracing::debug!("{}: unused end cut off at offset {offset}", path.display());
    cut_at(path, offset)
}

/// The logged txns `above` `base`, which must continue from it without a gap.
fn continuing_from(base: Zxid, above: Vec<Txn>, log_dir: &Path) -> Result<Vec<Txn>, StorageError> {
    let mut prev = base;
    for txn in &above {
        if !follows(prev, txn.zxid) {
            let from = if prev == base && base == Zxid::ZERO {
                "zxid 0 (no snapshot)".to_string()
            } else if prev == base {
                format!("snapshot {base}")
            } else {
                format!("logged txn {prev}")
            };
            return Err(refuse(format!(
                "{}: the log does not continue from {from} (next logged txn {}); txns are missing",
                log_dir.display(),
                txn.zxid
            )));
        }
        prev = txn.zxid;
    }
    Ok(above)
}

/// Whether `next` is the txn right after `prev`: the next counter of the same epoch, or the
/// first txn (counter 1) of a later epoch (epochs that committed nothing leave no trace).
pub fn follows(prev: Zxid, next: Zxid) -> bool {
    let same_epoch = prev
        .counter()
        .checked_add(1)
        .is_some_and(|c| next == Zxid::new(prev.epoch(), c));
    same_epoch || (next.epoch() > prev.epoch() && next.counter() == 1)
}

/// The acceptedEpoch and currentEpoch files. The writer creates both before any other file, so
/// a missing one beside data means it was lost; an accepted epoch below the current one or
/// below the last txn's epoch means one was rolled back.
fn read_epochs(data_dir: &Path, has_data: bool, last: Zxid) -> Result<(u32, u32), StorageError> {
    let read = |name: &str| -> Result<u32, StorageError> {
        let path = data_dir.join(name);
        match files::read_epoch(&path)? {
            Some(e) => Ok(e),
            None if has_data => Err(refuse(format!(
                "{} is missing, but the data dir holds snapshots or logs",
                path.display()
            ))),
            None => Ok(0),
        }
    };
    let (accepted, current) = (read(files::ACCEPTED_EPOCH)?, read(files::CURRENT_EPOCH)?);
    if accepted < current || accepted < last.epoch() {
        return Err(refuse(format!(
            "{}: acceptedEpoch {accepted} is below currentEpoch {current} or below the epoch of \
             the last txn {last}",
            data_dir.display()
        )));
    }
    Ok((accepted, current))
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
    cut_at(path, offset)
}

/// Cuts the file at `path` to `offset` bytes, durably.
fn cut_at(path: &Path, offset: usize) -> Result<(), StorageError> {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(StorageError::io(format!("opening {}", path.display())))?;
    f.set_len(offset as u64)
        .and_then(|_| f.sync_all())
        .map_err(StorageError::io(format!("truncating {}", path.display())))
}
