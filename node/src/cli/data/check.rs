//! `ensemble data check`: checksums and continuity of a data dir's Apache and ensemble files.

use ensemble_actors::apache;
use ensemble_actors::data_tree::DataTree;
use ensemble_actors::storage::{self, follows, inspect};
use ensemble_messages::Zxid;
use std::path::{Path, PathBuf};

/// Findings, printed as they come.
#[derive(Default)]
struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    fn ok(&self, what: String) {
        println!("ok: {what}");
    }
    fn warn(&mut self, what: String) {
        self.warnings += 1;
        println!("warning: {what}");
    }
    fn error(&mut self, what: String) {
        self.errors += 1;
        println!("error: {what}");
    }
}

pub(super) fn run(dir: &Path) -> i32 {
    let mut r = Report::default();
    let mut found = false;
    match apache::find(dir, dir) {
        Ok(files) if !files.is_empty() => {
            found = true;
            check_apache(&files, dir, &mut r);
        }
        Ok(_) => {}
        Err(e) => r.error(e),
    }
    found |= check_ensemble(dir, &mut r);
    if !found {
        r.error(format!(
            "{}: no Apache or ensemble data files",
            dir.display()
        ));
    }
    println!("{} errors, {} warnings", r.errors, r.warnings);
    i32::from(r.errors > 0)
}

/// Whether Apache's logged txn `z` may come after `prev`: it follows it, or a snapshot taken
/// at or above `prev` holds what lies between (a follower synced by SNAP logs on from the
/// snapshot it was sent, in the same log file).
fn continues(prev: i64, z: i64, snapshots: &[(i64, PathBuf)]) -> bool {
    let after = |a: i64| follows(Zxid(a as u64), Zxid(z as u64));
    after(prev) || snapshots.iter().any(|(s, _)| *s >= prev && after(*s))
}

/// Apache's files: every snapshot's seals, every log record's Adler-32, zxids continuing
/// across the logs, and an import as ensemble would do it at start.
fn check_apache(files: &apache::ApacheFiles, dir: &Path, r: &mut Report) {
    for (_, path) in &files.snapshots {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| apache::parse_snapshot(&b))
            .and_then(|s| apache::ApacheTree::from_snapshot(&s).map(|_| s.nodes.len()));
        match parsed {
            Ok(n) => r.ok(format!("{}: {n} znodes, seals match", path.display())),
            Err(e) => r.error(format!("{}: {e}", path.display())),
        }
    }
    let mut prev: Option<i64> = None;
    for (i, (_, path)) in files.logs.iter().enumerate() {
        let log = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| apache::parse_log(&b))
        {
            Ok(log) => log,
            Err(e) => {
                r.error(format!("{}: {e}", path.display()));
                prev = None;
                continue;
            }
        };
        for rec in &log.records {
            let z = rec.txn.header.zxid;
            if let Some(p) = prev.filter(|p| z < 0 || !continues(*p, z, &files.snapshots)) {
                r.error(format!(
                    "{}: txn {z:#x} does not follow {p:#x}",
                    path.display()
                ));
            }
            prev = Some(z);
        }
        let n = log.records.len();
        match log.end {
            apache::LogEnd::Torn(offset, why) if i + 1 == files.logs.len() => r.warn(format!(
                "{}: {n} txns, then a torn record at offset {offset} ({why}); Apache stops there",
                path.display()
            )),
            apache::LogEnd::Torn(offset, why) => r.error(format!(
                "{}: torn record at offset {offset} ({why}) before later log files",
                path.display()
            )),
            apache::LogEnd::Clean(_) => r.ok(format!(
                "{}: {n} txns, Adler-32 of each matches",
                path.display()
            )),
        }
    }
    match apache::import(dir, dir) {
        Ok(i) => {
            for w in i.warnings {
                r.warn(w);
            }
            r.ok(format!(
                "Apache data imports: {} and {} txns above it, last zxid {}, {} znodes, \
                 {} sessions, epochs {}/{}",
                i.snapshot.display(),
                i.txns,
                i.last_zxid,
                i.counts.znodes,
                i.counts.sessions,
                i.accepted_epoch,
                i.current_epoch
            ))
        }
        Err(e) => r.error(format!("Apache data does not import: {e}")),
    }
}

/// The newest-log marker against the log files present: a marked file that is gone means the
/// newest log was lost.
fn check_newest_log_marker(dir: &Path, logs: &[(Zxid, PathBuf)], r: &mut Report) {
    let newest = logs.last().map_or(Zxid::ZERO, |(first, _)| *first);
    match storage::files::read_newest_log(dir) {
        Ok(Some(marked)) if marked > newest => r.error(format!(
            "the newest log file, {}, is missing",
            storage::files::log_path(&storage::log_dir(dir), marked).display()
        )),
        Ok(Some(_)) => r.ok("the newest log file the marker names is present".into()),
        Ok(None) => {}
        Err(e) => r.error(e.to_string()),
    }
}

/// The zxid of the newest restore point, as recovery picks it: a snapshot whose chain of
/// incremental snapshots reads back down to a whole one, which then rebuilds a tree.
fn newest_restore_point(snaps: &[(Zxid, PathBuf)], r: &mut Report) -> Option<Zxid> {
    let mut broken = std::collections::BTreeSet::new();
    for (zxid, path) in snaps.iter().rev() {
        let (whole, deltas) = match inspect::read_restore_point(*zxid, path, snaps, &mut broken) {
            Ok(chain) => chain,
            Err(why) => {
                r.warn(format!("{why}; recovery falls back to an older snapshot"));
                continue;
            }
        };
        let count = deltas.len();
        match DataTree::from_restore_point(&whole, &deltas) {
            Ok(tree) => r.ok(format!(
                "restore point {zxid}: the snapshot {} and {count} incremental snapshots onto \
                 it rebuild {} znodes",
                whole.last_zxid(),
                tree.node_count()
            )),
            Err(e) => r.error(format!("restore point {zxid} does not rebuild a tree: {e}")),
        }
        return Some(*zxid);
    }
    None
}

/// ensemble's files: every snapshot's and record's CRC-32, and the logs continuing from the
/// newest snapshot. Returns whether there were any.
fn check_ensemble(dir: &Path, r: &mut Report) -> bool {
    let list = |what: Result<Vec<(Zxid, PathBuf)>, storage::StorageError>, r: &mut Report| {
        what.unwrap_or_else(|e| {
            r.error(e.to_string());
            Vec::new()
        })
    };
    let snaps = list(storage::list_snapshots(&storage::snapshot_dir(dir)), r);
    let logs = list(storage::list_logs(&storage::log_dir(dir)), r);
    for (zxid, path) in &snaps {
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| inspect::read_snapshot(&b))
        {
            Ok((s, _)) if s.last_zxid != *zxid => {
                r.error(format!("{}: name and content disagree", path.display()))
            }
            Ok((_, None)) => r.ok(format!("{}: CRC-32 matches", path.display())),
            Ok((_, Some(base))) => r.ok(format!(
                "{}: CRC-32 matches (incremental, onto the snapshot {base})",
                path.display()
            )),
            Err(e) => r.error(format!("{}: {e}", path.display())),
        }
    }
    let newest = newest_restore_point(&snaps, r);
    let mut txns = Vec::new();
    for (i, (_, path)) in logs.iter().enumerate() {
        let content = std::fs::read(path)
            .map(|b| inspect::read_log(&b))
            .unwrap_or_else(|e| inspect::LogContent {
                problem: Some(e.to_string()),
                ..Default::default()
            });
        let n = content.txns.len();
        let last = i + 1 == logs.len();
        txns.extend(content.txns.into_iter().map(|(_, t)| t.zxid));
        // Only the newest file may end in a write a crash cut short; recovery repairs it.
        let repair = content.repair.filter(|_| last);
        match (content.problem, content.unused_from) {
            (Some(p), _) => match repair {
                Some(action) => r.warn(format!(
                    "{}: {n} txns, then {p}, a write a crash cut short (recovery {action})",
                    path.display()
                )),
                None => r.error(format!("{}: {p}", path.display())),
            },
            (None, Some(at)) if !last => r.error(format!(
                "{}: zeros from offset {at} to its end, but later log files exist",
                path.display()
            )),
            (None, Some(at)) => r.ok(format!(
                "{}: {n} txns, CRC-32 of each matches, then unused zeros from offset {at} \
                 (recovery cuts them off)",
                path.display()
            )),
            (None, None) => r.ok(format!(
                "{}: {n} txns, CRC-32 of each matches",
                path.display()
            )),
        }
    }
    check_newest_log_marker(dir, &logs, r);
    let base = newest.unwrap_or(Zxid::ZERO);
    let mut prev = base;
    for z in txns.into_iter().filter(|z| *z > base) {
        if !follows(prev, z) {
            r.error(format!("ensemble log: txn {z} does not follow {prev}"));
        }
        prev = z;
    }
    !snaps.is_empty() || !logs.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gap in Apache's log is fine only where a snapshot holds what it skips.
    #[test]
    fn a_log_gap_is_bridged_only_by_a_snapshot_at_or_above_its_start() {
        let z = |c: i64| (1i64 << 32) | c;
        let snaps = |at: &[i64]| -> Vec<(i64, PathBuf)> {
            at.iter().map(|&c| (z(c), PathBuf::new())).collect()
        };
        assert!(continues(z(1), z(2), &[]));
        assert!(!continues(z(1), z(5), &[]));
        assert!(continues(z(1), z(5), &snaps(&[4])));
        assert!(!continues(z(1), z(5), &snaps(&[3])));
        assert!(!continues(z(3), z(5), &snaps(&[2])));
        assert!(continues(z(1), (2i64 << 32) | 1, &[]));
    }
}
