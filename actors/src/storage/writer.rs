//! What the storage writer does with the files: carries out a batch of storage operations in
//! order and fsyncs once per batch (group commit), writes snapshots and purges old files.
//! [`super::actor`] runs it.

use super::files::{self, read_record, RecordRead};
use super::log_file::LogFile;
use super::paced_remove;
use super::StorageError;
use super::{PersistToken, StorageOp};
use crate::metrics::ServerMetrics;
use ensemble_messages::{Txn, Zxid};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Where and how the writer stores.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// Snapshots and epoch files.
    pub data_dir: PathBuf,
    /// Log files.
    pub data_log_dir: PathBuf,
    /// fsync before reporting durability.
    pub fsync: bool,
    /// A log fsync slower than this is logged as a warning and counted.
    pub fsync_warning: Duration,
    /// Snapshots kept by the purge.
    pub snap_retain_count: usize,
}

impl WriterSettings {
    /// The file of the snapshot covering txns up to `last`.
    pub fn snapshot_file(&self, last: Zxid) -> PathBuf {
        files::snapshot_path(&files::snapshot_dir(&self.data_dir), last)
    }
}

/// What the writer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterEvent {
    /// The operation that carried this token, and all before it, is durable.
    Durable(PersistToken),
    /// A background snapshot is on disk.
    SnapshotTaken(Zxid),
    /// Storage failed; the writer stopped. The server must not go on.
    Failed(String),
}

/// One request to the writer, in order.
pub(super) enum Request {
    Op(StorageOp, Option<PersistToken>),
    /// Start a new log file at the next append, so that old files can be purged whole.
    Roll,
    /// Answered once everything before is durable and reported.
    Flush(oneshot::Sender<()>),
}

/// Most requests folded into one fsync.
pub(super) const MAX_BATCH: usize = 4096;

/// Makes the directories ready for the writer, once recovery has accepted what is there:
/// creates them, the epoch files and the newest-log marker, and finishes the removals a crash
/// interrupted. Blocking.
pub fn prepare(settings: &WriterSettings) -> Result<(), StorageError> {
    for dir in [
        files::log_dir(&settings.data_log_dir),
        files::snapshot_dir(&settings.data_dir),
    ] {
        files::ensure_dir(&dir)?;
        paced_remove::finish_purges(&dir, settings.fsync)?;
    }
    create_epoch_files(settings)?;
    mark_newest_log(settings)
}

/// Adds `token` to a batch's events. Txns tokens are cumulative (txns up to that zxid are
/// durable), so a run of them folds into its last one: one report, one follower ack and one
/// commit round per fsync instead of one per txn.
fn push_durable(events: &mut Vec<WriterEvent>, token: PersistToken) {
    match (token, events.last_mut()) {
        (PersistToken::Txns(z), Some(WriterEvent::Durable(PersistToken::Txns(last)))) => *last = z,
        _ => events.push(WriterEvent::Durable(token)),
    }
}

/// The writer's open log file and unwritten records.
pub(super) struct WriterState {
    pub(super) settings: WriterSettings,
    metrics: Arc<ServerMetrics>,
    /// The log file being appended to.
    current: Option<LogFile>,
    /// Encoded records not yet written.
    buffer: Vec<u8>,
    /// Whether bytes were written since the last fsync.
    dirty: bool,
}

impl WriterState {
    /// No log file open yet: the first append opens one.
    pub(super) fn new(settings: WriterSettings, metrics: Arc<ServerMetrics>) -> Self {
        WriterState {
            settings,
            metrics,
            current: None,
            buffer: Vec::new(),
            dirty: false,
        }
    }

    /// Closes the log file (between batches it holds no unsynced bytes); the next append
    /// starts a new one. Cutting its unused end is best effort: recovery does it otherwise.
    pub(super) fn close_log(&mut self) {
        if let Err(e) = self.finish_log() {
            tracing::warn!("closing the log: {e}");
        }
    }

    /// Leaves the log file, cut to its records; the next append starts a new one.
    fn finish_log(&mut self) -> Result<(), StorageError> {
        match self.current.take() {
            Some(log) => log.finish(self.settings.fsync),
            None => Ok(()),
        }
    }

    /// Carries out a batch and syncs the log; flush requests are handed back in `flushes`, to
    /// be answered once the batch's events are reported.
    pub(super) fn run_batch(
        &mut self,
        batch: Vec<Request>,
        flushes: &mut Vec<oneshot::Sender<()>>,
    ) -> Result<Vec<WriterEvent>, StorageError> {
        let mut events = Vec::new();
        for req in batch {
            match req {
                Request::Op(op, token) => {
                    self.apply(op)?;
                    if let Some(token) = token {
                        push_durable(&mut events, token);
                    }
                }
                Request::Roll => {
                    self.sync_log()?;
                    self.finish_log()?;
                }
                Request::Flush(reply) => flushes.push(reply),
            }
        }
        self.sync_log()?;
        Ok(events)
    }

    fn apply(&mut self, op: StorageOp) -> Result<(), StorageError> {
        match op {
            StorageOp::Append(txns) => self.append(&txns),
            StorageOp::Truncate(z) => {
                self.sync_log()?;
                self.truncate(z)
            }
            StorageOp::InstallSnapshot(s) => {
                self.sync_log()?;
                write_snapshot(&self.settings, s.last_zxid, &s.state, files::INSTALL_TMP)?;
                self.current = None;
                self.write_newest_log(Zxid::ZERO)?;
                for (_, path) in files::list_logs(&self.log_dir())? {
                    remove(&self.settings, &path)?;
                }
                purge(&self.settings)
            }
            StorageOp::AcceptedEpoch(e) => self.write_epoch(files::ACCEPTED_EPOCH, e),
            StorageOp::CurrentEpoch(e) => self.write_epoch(files::CURRENT_EPOCH, e),
        }
    }

    fn log_dir(&self) -> PathBuf {
        files::log_dir(&self.settings.data_log_dir)
    }

    fn append(&mut self, txns: &[Txn]) -> Result<(), StorageError> {
        let Some(first) = txns.first() else {
            return Ok(());
        };
        if self.current.is_none() {
            let path = files::log_path(&self.log_dir(), first.zxid);
            self.current = Some(LogFile::open(&path)?);
            if self.settings.fsync {
                files::sync_dir(&self.log_dir())?;
            }
            self.write_newest_log(first.zxid)?;
        }
        for t in txns {
            self.buffer.extend_from_slice(&files::encode_record(t)?);
        }
        Ok(())
    }

    /// Writes buffered records and fsyncs the current log file.
    fn sync_log(&mut self) -> Result<(), StorageError> {
        if let Some(log) = self.current.as_mut() {
            if !self.buffer.is_empty() {
                log.append(&self.buffer)?;
                self.buffer.clear();
                self.dirty = true;
            }
            if self.dirty && self.settings.fsync {
                let began = Instant::now();
                log.sync()?;
                let took = began.elapsed();
                self.metrics.fsync_time.observe(took);
                if took > self.settings.fsync_warning {
                    report_slow_fsync(&self.metrics, took, self.settings.fsync_warning, log);
                }
            }
            self.dirty = false;
        }
        Ok(())
    }

    fn write_newest_log(&self, first: Zxid) -> Result<(), StorageError> {
        files::write_newest_log(&self.settings.data_dir, first, self.settings.fsync)
    }

    /// Drops every logged txn above `zxid`, across files.
    fn truncate(&mut self, zxid: Zxid) -> Result<(), StorageError> {
        self.finish_log()?;
        let logs = files::list_logs(&self.log_dir())?;
        let kept = logs.iter().map(|(first, _)| *first).filter(|f| *f <= zxid);
        self.write_newest_log(kept.max().unwrap_or(Zxid::ZERO))?;
        let mut last_kept = None;
        for (first, path) in logs {
            if first > zxid {
                remove(&self.settings, &path)?;
                continue;
            }
            let Some(bytes) = read_unless_purged(&path)? else {
                continue;
            };
            let mut offset = files::LOG_HEADER_LEN.min(bytes.len());
            while let RecordRead::Record(txn, next) = read_record(&bytes, offset) {
                if txn.zxid > zxid {
                    break;
                }
                offset = next;
            }
            if offset < bytes.len() {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(StorageError::io(format!("opening {}", path.display())))?;
                f.set_len(offset as u64)
                    .and_then(|_| f.sync_all())
                    .map_err(StorageError::io(format!("truncating {}", path.display())))?;
            }
            last_kept = Some(path);
        }
        if let Some(path) = last_kept {
            self.current = Some(LogFile::open(&path)?);
        }
        Ok(())
    }

    fn write_epoch(&mut self, name: &str, epoch: u32) -> Result<(), StorageError> {
        // Everything logged before the epoch change is durable first.
        self.sync_log()?;
        files::write_atomic(
            &self.settings.data_dir.join(name),
            epoch.to_string().as_bytes(),
            self.settings.fsync,
        )
    }
}

/// Creates missing epoch files holding 0, before anything else is written, so that recovery
/// can tell a fresh server from one whose epoch files were lost.
fn create_epoch_files(settings: &WriterSettings) -> Result<(), StorageError> {
    for name in [files::ACCEPTED_EPOCH, files::CURRENT_EPOCH] {
        let path = settings.data_dir.join(name);
        if files::read_epoch(&path)?.is_none() {
            files::write_atomic(&path, b"0", settings.fsync)?;
        }
    }
    Ok(())
}

/// Records the newest log file now on disk (recovery has accepted what is there).
fn mark_newest_log(settings: &WriterSettings) -> Result<(), StorageError> {
    let logs = files::list_logs(&files::log_dir(&settings.data_log_dir))?;
    let newest = logs.last().map_or(Zxid::ZERO, |(first, _)| *first);
    files::write_newest_log(&settings.data_dir, newest, settings.fsync)
}

/// Writes the snapshot file of `image` at `last_zxid` through the temporary file `tmp` (each
/// storage thread has its own).
pub(super) fn write_snapshot(
    settings: &WriterSettings,
    last_zxid: Zxid,
    image: &dyn files::SnapshotImage,
    tmp: &str,
) -> Result<u64, StorageError> {
    let path = settings.snapshot_file(last_zxid);
    files::write_snapshot_through(&path, tmp, last_zxid, image, settings.fsync)?;
    fs::metadata(&path)
        .map(|m| m.len())
        .map_err(StorageError::io(format!(
            "reading the length of {}",
            path.display()
        )))
}

/// Removes a file without stalling the log's fsyncs; one already gone (removed by the other
/// storage thread) is fine.
fn remove(settings: &WriterSettings, path: &Path) -> Result<(), StorageError> {
    paced_remove::remove_paced(path, settings.fsync)
}

/// The bytes of the log file at `path`, or `None` when the snapshot thread's purge removed it
/// after it was listed: it then held only txns below a snapshot, which a TRUNC keeps.
fn read_unless_purged(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(format!("reading {}", path.display()))(e)),
    }
}

/// Keeps the newest snapshots and the logs they need (see [`kept_snapshots`]). The newest log
/// file is never removed. The newest snapshot file purged stays as the spare the next
/// snapshot writes over.
pub(super) fn purge(settings: &WriterSettings) -> Result<(), StorageError> {
    // A removal an error stopped earlier is taken up again here, not only at the next start.
    for dir in [
        files::log_dir(&settings.data_log_dir),
        files::snapshot_dir(&settings.data_dir),
    ] {
        paced_remove::finish_purges(&dir, settings.fsync)?;
    }
    let snaps = files::list_snapshots(&files::snapshot_dir(&settings.data_dir))?;
    let keep = settings.snap_retain_count.max(1);
    if snaps.len() <= keep {
        return Ok(());
    }
    let mut bases = Vec::with_capacity(snaps.len());
    for (zxid, path) in &snaps {
        bases.push((*zxid, files::snapshot_base(path)?));
    }
    let (kept, oldest_kept) = kept_snapshots(&bases, keep);
    let purged: Vec<&(Zxid, PathBuf)> = snaps.iter().filter(|(z, _)| !kept.contains(z)).collect();
    if let Some(((_, spare), older)) = purged.split_last() {
        for (_, path) in older {
            remove(settings, path)?;
        }
        files::keep_as_spare(spare, settings.fsync)?;
    }
    let logs = files::list_logs(&files::log_dir(&settings.data_log_dir))?;
    for pair in logs.windows(2) {
        // A file holds txns below the next file's first zxid.
        if pair[1].0 <= oldest_kept {
            remove(settings, &pair[0].1)?;
        }
    }
    Ok(())
}

/// Which snapshots a purge keeps, given every snapshot file's zxid and base (oldest first, as
/// listed), and the zxid the logs must be kept from.
///
/// The `keep` newest restore points are kept, with every snapshot their chains rest on. When
/// `keep` is 2 or more and they all rest on one whole snapshot, the newest restore point
/// older than that whole snapshot is kept too: one damaged file (that whole snapshot among
/// them) then still leaves a restore point the kept logs continue from, as `keep` whole
/// snapshots did before snapshots were incremental.
fn kept_snapshots(snaps: &[(Zxid, Option<Zxid>)], keep: usize) -> (BTreeSet<Zxid>, Zxid) {
    let base_of = |z: Zxid| snaps.iter().find(|(s, _)| *s == z).map(|(_, b)| *b);
    // The whole snapshot under `z`, if every link down to it is listed.
    let whole_of = |mut z: Zxid| {
        for _ in 0..=snaps.len() {
            match base_of(z)? {
                None => return Some(z),
                Some(b) if b < z => z = b,
                Some(_) => return None,
            }
        }
        None
    };
    let mut tops: Vec<Zxid> = snaps.iter().rev().take(keep).map(|(z, _)| *z).collect();
    if let Some(w) = tops.first().and_then(|z| whole_of(*z)) {
        if keep >= 2 && tops.iter().all(|z| whole_of(*z) == Some(w)) {
            tops.extend(snaps.iter().rev().map(|(z, _)| *z).find(|z| *z < w));
        }
    }
    let mut kept = BTreeSet::new();
    for top in &tops {
        let mut z = *top;
        // Down the chain while its links are listed and not kept yet.
        while let Some(base) = base_of(z).filter(|_| kept.insert(z)) {
            match base {
                Some(b) if b < z => z = b,
                _ => break,
            }
        }
    }
    let oldest = tops.iter().min().copied().unwrap_or(Zxid::ZERO);
    (kept, oldest)
}

/// Counts and logs a log fsync slower than the warning threshold (as ZooKeeper's
/// fsync.warningthresholdms does): a slow disk makes every write wait.
fn report_slow_fsync(metrics: &ServerMetrics, took: Duration, threshold: Duration, log: &LogFile) {
    metrics
        .fsync_threshold_exceed_count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(
        "fsync of the log {} took {} ms (warning threshold {} ms): every write waited for it",
        log.path().display(),
        took.as_millis(),
        threshold.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::recover;
    use crate::storage::test_writer::TestWriter;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_run_of_txn_tokens_folds_into_its_last_but_epoch_tokens_stay_in_order() {
        let z = |c| PersistToken::Txns(Zxid::new(1, c));
        let mut events = Vec::new();
        for t in [z(1), z(2), PersistToken::CurrentEpoch(2), z(3), z(4)] {
            push_durable(&mut events, t);
        }
        assert_eq!(
            events,
            [
                WriterEvent::Durable(z(2)),
                WriterEvent::Durable(PersistToken::CurrentEpoch(2)),
                WriterEvent::Durable(z(4)),
            ]
        );
    }

    fn txn(e: u32, c: u32) -> Txn {
        Txn {
            zxid: Zxid::new(e, c),
            origin: 1,
            request_id: u64::from(c),
            body: vec![c as u8; 10],
        }
    }

    fn writer(dir: &std::path::Path) -> (TestWriter, Arc<Mutex<Vec<WriterEvent>>>) {
        let w = TestWriter::start(WriterSettings {
            data_dir: dir.to_path_buf(),
            data_log_dir: dir.to_path_buf(),
            fsync: true,
            fsync_warning: Duration::from_secs(1),
            snap_retain_count: 3,
        })
        .unwrap();
        let events = w.events.clone();
        (w, events)
    }

    /// How many of one append's log fsyncs counted as slow, with the warning at `threshold`.
    fn slow_fsyncs(threshold: Duration) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let settings = WriterSettings {
            data_dir: dir.path().to_path_buf(),
            data_log_dir: dir.path().to_path_buf(),
            fsync: true,
            fsync_warning: threshold,
            snap_retain_count: 3,
        };
        prepare(&settings).unwrap();
        let metrics = Arc::new(ServerMetrics::default());
        let mut state = WriterState::new(settings, metrics.clone());
        let append = StorageOp::Append(vec![txn(1, 1)]);
        let mut flushes = Vec::new();
        state
            .run_batch(vec![Request::Op(append, None)], &mut flushes)
            .unwrap();
        metrics
            .fsync_threshold_exceed_count
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_log_fsync_slower_than_the_warning_threshold_is_counted() {
        assert_eq!(slow_fsyncs(Duration::ZERO), 1);
        assert_eq!(slow_fsyncs(Duration::from_secs(3600)), 0);
    }

    #[test]
    fn appends_epochs_truncation_and_snapshots_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (w, events) = writer(dir.path());
        w.submit(
            StorageOp::AcceptedEpoch(1),
            Some(PersistToken::AcceptedEpoch(1)),
        );
        w.submit(
            StorageOp::Append((1..=5).map(|c| txn(1, c)).collect()),
            Some(PersistToken::Txns(Zxid::new(1, 5))),
        );
        w.submit(
            StorageOp::CurrentEpoch(1),
            Some(PersistToken::CurrentEpoch(1)),
        );
        w.submit(StorageOp::Truncate(Zxid::new(1, 3)), None);
        w.snapshot(Zxid::new(1, 2), b"state@2".to_vec());
        w.submit(StorageOp::AcceptedEpoch(2), None);
        w.submit(
            StorageOp::Append(vec![txn(2, 1)]),
            Some(PersistToken::Txns(Zxid::new(2, 1))),
        );
        w.flush();
        let events = events.lock().unwrap().clone();
        let (snapshots, durable): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| matches!(e, WriterEvent::SnapshotTaken(_)));
        assert_eq!(
            durable,
            vec![
                WriterEvent::Durable(PersistToken::AcceptedEpoch(1)),
                WriterEvent::Durable(PersistToken::Txns(Zxid::new(1, 5))),
                WriterEvent::Durable(PersistToken::CurrentEpoch(1)),
                WriterEvent::Durable(PersistToken::Txns(Zxid::new(2, 1))),
            ],
            "durability is reported in submission order"
        );
        assert_eq!(snapshots, vec![WriterEvent::SnapshotTaken(Zxid::new(1, 2))]);
        drop(w);
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!((r.accepted_epoch, r.current_epoch), (2, 1));
        assert_eq!(r.snapshot_zxid(), Zxid::new(1, 2));
        let zxids: Vec<Zxid> = r.log.iter().map(|t| t.zxid).collect();
        assert_eq!(zxids, vec![Zxid::new(1, 3), Zxid::new(2, 1)]);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn a_log_purged_between_listing_and_reading_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.0000000100000001");
        assert_eq!(read_unless_purged(&path).unwrap(), None);
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(read_unless_purged(&path).unwrap(), Some(b"abc".to_vec()));
        assert!(
            read_unless_purged(dir.path()).is_err(),
            "a directory is no log file"
        );
    }

    /// Purge keeps the newest restore points and their chains, and one more restore point
    /// below their whole snapshot when they all rest on it; the logs from the oldest kept.
    #[test]
    fn purge_keeps_a_restore_point_below_the_whole_snapshot_the_newest_ones_share() {
        let z = |c: u32| Zxid::new(1, c);
        // 10 whole, 20 and 30 on it; 40 whole, 50, 60, 70 a chain on it.
        let snaps = [
            (z(10), None),
            (z(20), Some(z(10))),
            (z(30), Some(z(20))),
            (z(40), None),
            (z(50), Some(z(40))),
            (z(60), Some(z(50))),
            (z(70), Some(z(60))),
        ];
        let kept = |keep| {
            let (files, oldest) = kept_snapshots(&snaps, keep);
            (files.into_iter().collect::<Vec<_>>(), oldest)
        };
        // 50-70 rest on 40: 30 is kept too, with 10 and 20 under it, and logs from 30.
        assert_eq!(
            kept(3),
            (vec![z(10), z(20), z(30), z(40), z(50), z(60), z(70)], z(30))
        );
        // 40-70 all rest on 40 too (40 itself is whole): 30 is kept as well.
        assert_eq!(
            kept(4),
            (vec![z(10), z(20), z(30), z(40), z(50), z(60), z(70)], z(30))
        );
        // 30-70 rest on two whole snapshots already.
        assert_eq!(
            kept(5),
            (vec![z(10), z(20), z(30), z(40), z(50), z(60), z(70)], z(30))
        );
        // One restore point asked for: no fallback, as before.
        assert_eq!(kept(1), (vec![z(40), z(50), z(60), z(70)], z(70)));
        // A broken chain (its base not listed) keeps what is there.
        let broken = [(z(10), None), (z(30), Some(z(20))), (z(40), Some(z(30)))];
        let (files, oldest) = kept_snapshots(&broken, 2);
        assert_eq!(files.into_iter().collect::<Vec<_>>(), vec![z(30), z(40)]);
        assert_eq!(oldest, z(30));
    }

    /// An incremental image for the tests: its bytes, onto the snapshot at its base.
    struct Delta(Zxid, Vec<u8>);

    impl crate::storage::SnapshotImage for Delta {
        fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
            out.write_all(&self.1)
        }

        fn base(&self) -> Option<Zxid> {
            Some(self.0)
        }
    }

    #[test]
    fn a_chain_of_incremental_snapshots_is_kept_whole_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _) = writer(dir.path());
        w.submit(StorageOp::AcceptedEpoch(1), None);
        for c in 1..=6u32 {
            w.submit(StorageOp::Append(vec![txn(1, c)]), None);
            w.flush();
            let image = vec![c as u8];
            if c == 1 {
                w.snapshot(Zxid::new(1, c), image);
            } else {
                let base = Zxid::new(1, c - 1);
                w.snapshot_by(
                    Zxid::new(1, c),
                    Box::new(move |_| Box::new(Delta(base, image))),
                );
            }
            w.flush();
        }
        w.submit(StorageOp::Append(vec![txn(1, 7)]), None);
        w.flush();
        drop(w);
        // Three restore points are kept, and every snapshot their chains rest on.
        let snaps = files::list_snapshots(&files::snapshot_dir(dir.path())).unwrap();
        assert_eq!(snaps.len(), 6);
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.snapshot.as_ref().unwrap().image(), vec![1]);
        use crate::storage::SnapshotRef;
        let on_disk = |s: &SnapshotRef| matches!(s, SnapshotRef::File { .. });
        assert!(
            r.deltas.iter().all(on_disk),
            "read from their files when used"
        );
        let deltas: Vec<Vec<u8>> = r.deltas.iter().map(SnapshotRef::image).collect();
        assert_eq!(deltas, vec![vec![2], vec![3], vec![4], vec![5], vec![6]]);
        assert_eq!(r.snapshot_zxid(), Zxid::new(1, 6));
        assert_eq!(r.log.len(), 1);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // A lost link breaks the chains above it: the newest whole chain below is read, and
        // the log covers the rest.
        std::fs::remove_file(&snaps[3].1).unwrap();
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.snapshot_zxid(), Zxid::new(1, 3));
        assert_eq!(r.log.len(), 4);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(
            r.warnings[0].contains("rests on is missing"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn purge_keeps_the_newest_snapshots_and_the_logs_they_need() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _) = writer(dir.path());
        w.submit(StorageOp::AcceptedEpoch(1), None);
        // The first two logs and snapshots are over a removal step: they go the paced way.
        let big = |c: u32| if c <= 2 { 3 << 20 } else { 1 };
        for c in 1..=6u32 {
            let mut t = txn(1, c);
            t.body = vec![c as u8; big(c)];
            w.submit(StorageOp::Append(vec![t]), None);
            w.flush();
            w.snapshot(Zxid::new(1, c), vec![c as u8; big(c)]);
            w.flush();
        }
        w.submit(StorageOp::Append(vec![txn(1, 7)]), None);
        w.flush();
        drop(w);
        let snaps = files::list_snapshots(&files::snapshot_dir(dir.path())).unwrap();
        assert_eq!(
            snaps.iter().map(|s| s.0.counter()).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        let logs = files::list_logs(&files::log_dir(dir.path())).unwrap();
        assert_eq!(
            logs.iter().map(|s| s.0.counter()).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        let r = recover(dir.path(), dir.path()).unwrap();
        assert_eq!(r.snapshot.unwrap().image(), vec![6]);
        assert_eq!(r.log.len(), 1);
        // The newest purged snapshot file is the spare: of snapshot 3, not listed, not read.
        let spare = files::snapshot_dir(dir.path()).join("spare-snapshot");
        let spare = files::decode_snapshot(&std::fs::read(spare).unwrap()).unwrap();
        assert_eq!(spare.last_zxid, Zxid::new(1, 3));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // None of the files removed a step at a time was left half removed.
        for d in [files::log_dir(dir.path()), files::snapshot_dir(dir.path())] {
            let names: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                names.iter().all(|n| !n.starts_with("purging.")),
                "{names:?}"
            );
        }
    }
}
