//! The storage writer as actors: [`StorageActor`] carries out storage operations in order on
//! an `Arbiter` of its own (so its writes and fsyncs never hold up an actor that serves
//! anything else) and fsyncs once per batch (group commit); background snapshots are
//! serialized and written by [`SnapshotWriter`] on a `SyncArbiter` thread, so they never hold
//! up the log. Durability goes back to the quorum peer actor as [`StorageEvent`] messages.
//!
//! Restart policy ([`FailStorage`], or any stop): the supervisor restarts the writer in place.
//! It keeps its mailbox and the batch it had queued but not yet written (they are carried out
//! after the restart, in order), its settings and what it already reported durable. It
//! reloads the log tail: the open log file is closed (the next append starts a new one, as a
//! roll does) and the newest log and snapshot are read back to find the last durable zxid,
//! which must reach every txn already reported durable, or the writer fails. Nothing
//! acknowledged is lost: a durability report, and so a follower's ACK or a client's reply,
//! only ever follows the fsync.

use super::files::{self, read_record, RecordRead, SnapshotImage};
use super::writer::{Request, WriterEvent, WriterSettings, WriterState, MAX_BATCH};
use super::StorageError;
use super::{PersistToken, StorageEvent, StorageOp};
use crate::metrics::ServerMetrics;
use actix::prelude::*;
use ensemble_messages::Zxid;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Queues a storage operation; `token`, if any, is reported durable once it is.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist {
    /// The operation.
    pub op: StorageOp,
    /// What to report once it is durable.
    pub token: Option<PersistToken>,
}

/// Produces a snapshot image (which then streams to the file); runs on the snapshot thread,
/// told the snapshot an incremental image may rest on (the last this thread wrote, while its
/// chain is short enough), or `None`: then a whole image.
pub type SnapshotJob = Box<dyn FnOnce(Option<Zxid>) -> Box<dyn SnapshotImage> + Send>;

/// Incremental snapshots in a row before a whole one, at most: bounds the files a restart
/// reads, and the logs a purge keeps (from a restore point below the chain's whole snapshot).
const MAX_CHAIN: usize = 8;

/// The last snapshot the snapshot thread wrote and the chain that leads to it; none after a
/// failure or a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Chain(Option<Link>);

/// The newest link of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    /// The snapshot's zxid.
    zxid: Zxid,
    /// Incremental snapshots since the whole one.
    links: usize,
    /// Their bytes.
    chained: u64,
    /// The bytes they may reach before a whole snapshot is due: between half and all of the
    /// whole snapshot's, drawn when it was written.
    budget: u64,
}

impl Chain {
    /// The snapshot the next one may rest on: the last written, while the chain leading to it
    /// is shorter than [`MAX_CHAIN`] and its incremental snapshots hold fewer bytes than its
    /// budget (a restart then reads at most about twice a whole snapshot's bytes, twice over:
    /// once to check them, once to build the tree); `None` calls
    /// for a whole snapshot.
    fn base(self) -> Option<Zxid> {
        self.0
            .filter(|l| l.links < MAX_CHAIN && l.chained < l.budget)
            .map(|l| l.zxid)
    }

    /// The chain once the snapshot at `zxid` (incremental onto `base`, or whole) was written
    /// with `written` bytes, or failed to be (`None`): then none, and the next one is whole.
    /// A whole snapshot's chain gets a budget drawn from `roll`: the servers of an ensemble
    /// apply the same txns, and chains of a growing tree that all ended at its whole
    /// snapshot's size would have every server write its next whole one together.
    fn after(self, zxid: Zxid, base: Option<Zxid>, written: Option<u64>, roll: u64) -> Chain {
        let Some(len) = written else {
            return Chain(None);
        };
        match (base, self.0) {
            (None, _) => Chain(Some(Link {
                zxid,
                links: 0,
                chained: 0,
                budget: len / 2 + roll % (len - len / 2 + 1),
            })),
            (Some(b), Some(last)) if b == last.zxid => Chain(Some(Link {
                zxid,
                links: last.links + 1,
                chained: last.chained.saturating_add(len),
                budget: last.budget,
            })),
            (Some(_), _) => Chain(None),
        }
    }
}

/// Takes a background snapshot covering txns up to `last_zxid`, whose image `job` produces on
/// the snapshot thread; the log rolls to a new file.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSnapshot {
    /// The last txn the image covers.
    pub last_zxid: Zxid,
    /// Produces the image.
    pub job: SnapshotJob,
}

/// Resolves once everything queued before is durable and every queued snapshot is written
/// (used at restart and shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Where durability reports go from now on (the quorum peer actor, once it has an address).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportTo(pub Recipient<StorageEvent>);

/// Holds background snapshots (`true`) or lets them go on (`false`): held while the quorum peer
/// reads the disk back after a restart, so that no snapshot's log roll or purge changes the
/// files it reads. A held snapshot is skipped, which loses nothing (the log holds every txn).
#[derive(Message)]
#[rtype(result = "()")]
pub struct HoldSnapshots(pub bool);

/// Makes the writer fail: its supervisor restarts it (fault injection).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailStorage;

/// Carries out the queued batch.
#[derive(Message)]
#[rtype(result = "()")]
struct RunBatch;

/// The storage writer actor. Supervised; see the module's restart policy.
pub struct StorageActor {
    state: WriterState,
    pending: Vec<Request>,
    scheduled: bool,
    report: Option<Recipient<StorageEvent>>,
    snapshots: Addr<SnapshotWriter>,
    /// Whether the snapshot writer is writing one (shared with it).
    snapshot_busy: Arc<AtomicBool>,
    /// Whether background snapshots are held ([`HoldSnapshots`]).
    snapshots_held: bool,
    /// No txn at or below it may be missing from the disk: the highest txn reported durable,
    /// lowered by truncations and raised by installed snapshots.
    floor: Zxid,
    failed: bool,
}

/// A running storage writer.
pub struct StorageHandle {
    /// The writer actor.
    pub addr: Addr<StorageActor>,
    arbiter: Arbiter,
}

impl StorageHandle {
    /// Waits until everything queued is durable, then stops the writer.
    pub async fn stop(self) {
        let _ = self.addr.send(Flush).await;
        self.arbiter.stop();
    }
}

impl StorageActor {
    /// Starts the writer under a supervisor on an `Arbiter` of its own and the snapshot writer
    /// on a thread of its own, over directories [`prepare`](super::prepare) made ready. Must be
    /// called inside a running actix `System`; reports go where [`ReportTo`] says.
    pub fn start(settings: WriterSettings, metrics: Arc<ServerMetrics>) -> StorageHandle {
        let snapshot_busy = Arc::new(AtomicBool::new(false));
        let snap = (settings.clone(), metrics.clone(), snapshot_busy.clone());
        let snapshots = SyncArbiter::start(1, move || {
            lower_this_threads_priority();
            SnapshotWriter {
                settings: snap.0.clone(),
                metrics: snap.1.clone(),
                busy: snap.2.clone(),
                chain: Chain::default(),
            }
        });
        let arbiter = Arbiter::new();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| StorageActor {
            state: WriterState::new(settings, metrics),
            pending: Vec::new(),
            scheduled: false,
            report: None,
            snapshots,
            snapshot_busy,
            snapshots_held: false,
            floor: Zxid::ZERO,
            failed: false,
        });
        StorageHandle { addr, arbiter }
    }

    fn report(&self, ev: WriterEvent) {
        if let Some(r) = &self.report {
            r.do_send(StorageEvent(ev));
        }
    }

    fn queue(&mut self, req: Request, ctx: &mut Context<Self>) {
        if self.failed {
            return;
        }
        self.pending.push(req);
        if self.pending.len() >= MAX_BATCH {
            self.run_batch();
        } else if !self.scheduled {
            // Runs once the mailbox is drained: every queued request shares one fsync.
            self.scheduled = true;
            ctx.notify(RunBatch);
        }
    }

    /// Writes and syncs the queued batch, then reports what became durable; flushes are
    /// answered after the reports, so that whoever flushed has seen them.
    fn run_batch(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        self.track_floor(&batch);
        let mut flushes = Vec::new();
        match self.state.run_batch(batch, &mut flushes) {
            Ok(events) => {
                for e in events {
                    if let WriterEvent::Durable(PersistToken::Txns(z)) = e {
                        self.floor = self.floor.max(z);
                    }
                    self.report(e);
                }
            }
            Err(e) => self.fail(e.to_string()),
        }
        for f in flushes {
            let _ = f.send(());
        }
    }

    /// Truncations lower the floor; installed snapshots raise it.
    fn track_floor(&mut self, batch: &[Request]) {
        for req in batch {
            match req {
                Request::Op(StorageOp::Truncate(z), _) => self.floor = self.floor.min(*z),
                Request::Op(StorageOp::InstallSnapshot(s), _) => self.floor = s.last_zxid,
                _ => {}
            }
        }
    }

    /// Storage failed: says so and stops the writer for good (its arbiter with it).
    fn fail(&mut self, why: String) {
        tracing::error!("storage failed: {why}");
        self.failed = true;
        self.pending.clear();
        self.report(WriterEvent::Failed(why));
        Arbiter::current().stop();
    }

    /// Reloads the log tail after a restart and checks it reaches the floor.
    fn reload(&mut self) {
        self.state.close_log();
        match durable_tail(&self.state.settings) {
            Ok(tail) if tail >= self.floor => {
                tracing::info!(%tail, "storage writer restarted; the log ends at {tail}")
            }
            Ok(tail) => self.fail(format!(
                "after a restart the storage ends at {tail}, below {} already reported durable",
                self.floor
            )),
            Err(e) => self.fail(format!("cannot reload the log after a restart: {e}")),
        }
    }
}

/// The last txn on disk: the newest of the newest non-empty log file's last record and the
/// newest snapshot.
fn durable_tail(settings: &WriterSettings) -> Result<Zxid, StorageError> {
    let snapshot = files::list_snapshots(&files::snapshot_dir(&settings.data_dir))?
        .last()
        .map_or(Zxid::ZERO, |(z, _)| *z);
    let logs = files::list_logs(&files::log_dir(&settings.data_log_dir))?;
    for (_, path) in logs.iter().rev() {
        let bytes =
            std::fs::read(path).map_err(StorageError::io(format!("reading {}", path.display())))?;
        let mut offset = files::LOG_HEADER_LEN.min(bytes.len());
        let mut last = None;
        while let RecordRead::Record(txn, next) = read_record(&bytes, offset) {
            last = Some(txn.zxid);
            offset = next;
        }
        if let Some(last) = last {
            return Ok(last.max(snapshot));
        }
    }
    Ok(snapshot)
}

impl Actor for StorageActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.pending.is_empty() {
            self.scheduled = true;
            ctx.notify(RunBatch);
        }
    }
}

impl Supervised for StorageActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("storage writer restarting; its queue carries over");
        self.scheduled = false;
        self.reload();
    }
}

impl Handler<Persist> for StorageActor {
    type Result = ();

    fn handle(&mut self, Persist { op, token }: Persist, ctx: &mut Context<Self>) {
        self.queue(Request::Op(op, token), ctx);
    }
}

impl Handler<TakeSnapshot> for StorageActor {
    type Result = ();

    fn handle(&mut self, m: TakeSnapshot, ctx: &mut Context<Self>) {
        if self.snapshots_held {
            tracing::info!(zxid = %m.last_zxid, "snapshot skipped: the server reloads its storage");
            return;
        }
        self.queue(Request::Roll, ctx);
        // As ZooKeeper: the log rolls, but no second snapshot queues behind a slow one (each
        // would hold a version of the tree while it waits).
        if self.snapshot_busy.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                zxid = %m.last_zxid,
                "too busy to snapshot: the previous snapshot is still being written; skipping"
            );
            return;
        }
        self.snapshots.do_send(WriteSnapshot {
            last_zxid: m.last_zxid,
            job: m.job,
            report: self.report.clone(),
        });
    }
}

impl Handler<HoldSnapshots> for StorageActor {
    type Result = ();

    fn handle(&mut self, HoldSnapshots(held): HoldSnapshots, _: &mut Context<Self>) {
        self.snapshots_held = held;
    }
}

impl Handler<Flush> for StorageActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> ResponseFuture<()> {
        let (tx, rx) = oneshot::channel();
        self.queue(Request::Flush(tx), ctx);
        let snapshots = self.snapshots.clone();
        Box::pin(async move {
            let _ = rx.await;
            let _ = snapshots.send(FlushSnapshots).await;
        })
    }
}

impl Handler<RunBatch> for StorageActor {
    type Result = ();

    fn handle(&mut self, _: RunBatch, _: &mut Context<Self>) {
        self.scheduled = false;
        if !self.failed {
            self.run_batch();
        }
    }
}

impl Handler<ReportTo> for StorageActor {
    type Result = ();

    fn handle(&mut self, ReportTo(r): ReportTo, _: &mut Context<Self>) {
        self.report = Some(r);
    }
}

impl Handler<FailStorage> for StorageActor {
    type Result = ();

    fn handle(&mut self, _: FailStorage, ctx: &mut Context<Self>) {
        tracing::warn!("storage writer failure injected");
        ctx.stop();
    }
}

/// Niceness the snapshot thread adds to the server's: on a busy machine a background
/// snapshot takes longer rather than taking the CPU from the threads that apply writes and
/// answer clients.
pub(super) const SNAPSHOT_NICENESS: libc::c_int = 10;

/// Lowers the CPU priority of the calling thread by [`SNAPSHOT_NICENESS`] (Linux niceness
/// is per thread; 19 is the lowest).
fn lower_this_threads_priority() {
    // SAFETY: gettid, getpriority and setpriority take and return integers only.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + SNAPSHOT_NICENESS).min(19))
    };
    if rc != 0 {
        tracing::warn!("the snapshot thread keeps its priority: setpriority refused");
    }
}

/// Writes background snapshots and purges what they make obsolete, on a thread of its own.
pub struct SnapshotWriter {
    settings: WriterSettings,
    metrics: Arc<ServerMetrics>,
    /// Set by the storage actor when it queues a snapshot; cleared here once it is done.
    busy: Arc<AtomicBool>,
    /// What the next snapshot may rest on.
    chain: Chain,
}

/// Clears the busy flag when a snapshot is done, also if writing it panicked.
struct NotBusy<'a>(&'a AtomicBool);

impl Drop for NotBusy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Actor for SnapshotWriter {
    type Context = SyncContext<Self>;
}

/// Writes one snapshot.
#[derive(Message)]
#[rtype(result = "()")]
struct WriteSnapshot {
    last_zxid: Zxid,
    job: SnapshotJob,
    report: Option<Recipient<StorageEvent>>,
}

/// Answers once every snapshot queued before is written.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushSnapshots;

impl Handler<WriteSnapshot> for SnapshotWriter {
    type Result = ();

    fn handle(&mut self, m: WriteSnapshot, _: &mut SyncContext<Self>) {
        let _done = NotBusy(&self.busy);
        let began = Instant::now();
        // Start and end at info level: benchmarks tell writes during a snapshot by them.
        tracing::info!(zxid = %m.last_zxid, "background snapshot started");
        let image = (m.job)(self.chain.base());
        let tmp = super::files::BACKGROUND_TMP;
        let written =
            super::writer::write_snapshot(&self.settings, m.last_zxid, image.as_ref(), tmp)
                .and_then(|len| super::writer::purge(&self.settings).map(|_| len));
        self.chain = self.chain.after(
            m.last_zxid,
            image.base(),
            written.as_ref().ok().copied(),
            rand::random(),
        );
        match written {
            Ok(bytes) => {
                self.metrics.snapshot_time.since(began);
                let ms = began.elapsed().as_millis() as u64;
                let incremental = image.base().is_some();
                tracing::info!(zxid = %m.last_zxid, bytes, incremental, ms, "background snapshot written");
                if let Some(r) = m.report {
                    r.do_send(StorageEvent(WriterEvent::SnapshotTaken(m.last_zxid)));
                }
            }
            // A failed snapshot loses nothing: the log still holds every txn.
            Err(e) => tracing::error!("background snapshot at {} failed: {e}", m.last_zxid),
        }
    }
}

impl Handler<FlushSnapshots> for SnapshotWriter {
    type Result = ();

    fn handle(&mut self, _: FlushSnapshots, _: &mut SyncContext<Self>) {}
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
