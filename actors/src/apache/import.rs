//! Reading a whole Apache data directory: the newest valid snapshot, the logs above it, the
//! epoch files, replayed into one tree.

use super::log::{parse_log, LogEnd};
use super::records::LoggedTxn;
use super::replay::{ApacheTree, TreeCounts};
use super::snapshot::parse_snapshot;
use crate::data_tree::DataTree;
use crate::storage::follows;
use ensemble_messages::Zxid;
use std::fs;
use std::path::{Path, PathBuf};

/// Subdirectory of dataDir (snapshots, epoch files) and dataLogDir (logs) Apache writes.
pub const APACHE_DIR: &str = "version-2";

/// Apache's files in a data directory, each with the zxid of its name, oldest first.
#[derive(Clone, Debug, Default)]
pub struct ApacheFiles {
    /// `dataDir/version-2`.
    pub snap_dir: PathBuf,
    /// `snapshot.<zxid>` files.
    pub snapshots: Vec<(i64, PathBuf)>,
    /// `log.<zxid>` files (in `dataLogDir/version-2`).
    pub logs: Vec<(i64, PathBuf)>,
}

impl ApacheFiles {
    /// Whether there is any snapshot or log.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.logs.is_empty()
    }
}

/// Files of `dir` named `<prefix>.<hex zxid>` (no other suffix), sorted by zxid; a compressed
/// snapshot (`.gz`, `.snappy`) is refused rather than skipped.
fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let (hex, suffix) = rest.split_once('.').unwrap_or((rest, ""));
        let Ok(zxid) = i64::from_str_radix(hex, 16) else {
            continue;
        };
        if !suffix.is_empty() {
            return Err(format!(
                "{}: compressed snapshots are not supported; restart Apache with \
                 zookeeper.snapshot.compression.method=none to write a plain one",
                entry.path().display()
            ));
        }
        out.push((zxid, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Lists Apache's files under `data_dir` and `data_log_dir`.
pub fn find(data_dir: &Path, data_log_dir: &Path) -> Result<ApacheFiles, String> {
    let snap_dir = data_dir.join(APACHE_DIR);
    Ok(ApacheFiles {
        snapshots: list(&snap_dir, "snapshot")?,
        logs: list(&data_log_dir.join(APACHE_DIR), "log")?,
        snap_dir,
    })
}

/// An Apache data directory, read and replayed.
#[derive(Debug)]
pub struct Imported {
    /// The tree, as ensemble holds it.
    pub tree: DataTree,
    /// The last txn: the last logged one above the snapshot, or the snapshot's.
    pub last_zxid: Zxid,
    /// Apache's acceptedEpoch.
    pub accepted_epoch: u32,
    /// Apache's currentEpoch.
    pub current_epoch: u32,
    /// The snapshot the import started from.
    pub snapshot: PathBuf,
    /// Logged txns replayed above it.
    pub txns: usize,
    /// What the tree holds.
    pub counts: TreeCounts,
    /// Snapshots skipped and torn tails, for the operator.
    pub warnings: Vec<String>,
}

/// Reads Apache's data under `data_dir` and `data_log_dir` as Apache 3.8 would at start, or
/// says in one line why it cannot.
pub fn import(data_dir: &Path, data_log_dir: &Path) -> Result<Imported, String> {
    let files = find(data_dir, data_log_dir)?;
    let mut warnings = Vec::new();
    let (snap_zxid, snap_path, mut tree) = newest_valid_snapshot(&files, &mut warnings)?;
    let txns = txns_above(&files.logs, snap_zxid, &mut warnings)?;
    for t in &txns {
        tree.apply(t);
    }
    let last = txns.last().map_or(snap_zxid, |t| t.header.zxid);
    let last = Zxid(u64::try_from(last).map_err(|_| format!("negative zxid {last:#x}"))?);
    let (accepted_epoch, current_epoch) = read_epochs(&files.snap_dir, last, &mut warnings)?;
    let counts = tree.counts();
    Ok(Imported {
        tree: tree.into_data_tree(last),
        last_zxid: last,
        accepted_epoch,
        current_epoch,
        snapshot: snap_path,
        txns: txns.len(),
        counts,
        warnings,
    })
}

/// The newest snapshot that reads back whole, as Apache picks it: damaged newer ones are
/// skipped with a warning (the logs must then cover the gap).
fn newest_valid_snapshot(
    files: &ApacheFiles,
    warnings: &mut Vec<String>,
) -> Result<(i64, PathBuf, ApacheTree), String> {
    if files.snapshots.is_empty() {
        return Err(format!(
            "{} holds log files but no snapshot",
            files.snap_dir.display()
        ));
    }
    for (zxid, path) in files.snapshots.iter().rev() {
        let parsed = fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| parse_snapshot(&b))
            .and_then(|s| ApacheTree::from_snapshot(&s));
        match parsed {
            Ok(tree) => return Ok((*zxid, path.clone(), tree)),
            Err(e) => warnings.push(format!("{}: {e}; trying an older one", path.display())),
        }
    }
    Err(format!(
        "no snapshot in {} reads back whole ({})",
        files.snap_dir.display(),
        warnings.join("; ")
    ))
}

/// The logged txns above `snap_zxid`, which must continue from it without a gap. As Apache,
/// reading starts at the last log file that begins at or below the snapshot; a torn record ends
/// the last file (with a warning), anywhere else it refuses.
fn txns_above(
    logs: &[(i64, PathBuf)],
    snap_zxid: i64,
    warnings: &mut Vec<String>,
) -> Result<Vec<LoggedTxn>, String> {
    let start = logs.iter().rposition(|(z, _)| *z <= snap_zxid).unwrap_or(0);
    let mut out: Vec<LoggedTxn> = Vec::new();
    let mut prev = snap_zxid;
    for (i, (_, path)) in logs.iter().enumerate().skip(start) {
        let bytes = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let log = parse_log(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if let LogEnd::Torn(offset, why) = &log.end {
            let msg = format!("{}: torn record at offset {offset}: {why}", path.display());
            if i + 1 != logs.len() {
                return Err(format!("{msg}, and later log files exist"));
            }
            warnings.push(format!("{msg}; the log ends there, as Apache reads it"));
        }
        for rec in log.records {
            let zxid = rec.txn.header.zxid;
            if zxid <= snap_zxid {
                continue;
            }
            if zxid < 0 || !follows(Zxid(prev as u64), Zxid(zxid as u64)) {
                return Err(format!(
                    "{}: txn {zxid:#x} does not follow {prev:#x}; txns are missing",
                    path.display()
                ));
            }
            prev = zxid;
            out.push(rec.txn);
        }
    }
    Ok(out)
}

/// Apache's epoch files in `version-2`. As Apache, missing ones take the last txn's epoch; an
/// accepted epoch below the current one, or a current one below the last txn's, refuses.
fn read_epochs(
    snap_dir: &Path,
    last: Zxid,
    warnings: &mut Vec<String>,
) -> Result<(u32, u32), String> {
    let read = |name: &str, warnings: &mut Vec<String>| -> Result<u32, String> {
        let path = snap_dir.join(name);
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{} holds {:?}, not an epoch", path.display(), s.trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warnings.push(format!(
                    "{} is missing; using the last txn's epoch {}",
                    path.display(),
                    last.epoch()
                ));
                Ok(last.epoch())
            }
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    };
    let current = read("currentEpoch", warnings)?;
    let accepted = read("acceptedEpoch", warnings)?;
    if current < last.epoch() || accepted < current {
        return Err(format!(
            "{}: acceptedEpoch {accepted}, currentEpoch {current} and last txn {last} disagree",
            snap_dir.display()
        ));
    }
    Ok((accepted, current))
}
