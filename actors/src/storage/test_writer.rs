//! A blocking handle on the storage actors for unit tests: they run in an actix `System` on
//! a thread of its own, and what they report is collected.

use super::actor::{
    FailStorage, Flush, HoldSnapshots, Persist, ReportTo, SnapshotJob, StorageActor, TakeSnapshot,
};
use super::{PersistToken, StorageEvent, StorageOp};
use super::{StorageError, WriterEvent, WriterSettings};
use actix::prelude::*;
use ensemble_messages::Zxid;
use std::sync::{Arc, Mutex};

/// Keeps every event the writer reports.
struct Collector(Arc<Mutex<Vec<WriterEvent>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

/// Answered once the collector has taken every event sent before it.
#[derive(Message)]
#[rtype(result = "()")]
struct Caught;

impl Handler<Caught> for Collector {
    type Result = ();

    fn handle(&mut self, _: Caught, _: &mut Context<Self>) {}
}

impl Handler<StorageEvent> for Collector {
    type Result = ();

    fn handle(&mut self, StorageEvent(e): StorageEvent, _: &mut Context<Self>) {
        if let Ok(mut events) = self.0.lock() {
            events.push(e);
        }
    }
}

/// The storage writer, driven from a test's thread; dropping it stops its `System`.
pub(crate) struct TestWriter {
    addr: Addr<StorageActor>,
    collector: Addr<Collector>,
    system: System,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What the writer reported so far.
    pub(crate) events: Arc<Mutex<Vec<WriterEvent>>>,
}

impl TestWriter {
    /// Starts the writer on `settings`.
    pub(crate) fn start(settings: WriterSettings) -> Result<TestWriter, StorageError> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = events.clone();
        let thread = std::thread::spawn(move || {
            let runner = System::new();
            runner.block_on(async move {
                let started = super::prepare(&settings).map(|()| {
                    let h = StorageActor::start(settings, Default::default());
                    let collector = Collector(sink).start();
                    h.addr.do_send(ReportTo(collector.clone().recipient()));
                    (h.addr, collector, System::current())
                });
                let _ = tx.send(started);
            });
            let _ = runner.run();
        });
        let (addr, collector, system) = rx
            .recv()
            .map_err(|_| StorageError::Corrupt("the test system did not start".into()))??;
        Ok(TestWriter {
            addr,
            collector,
            system,
            thread: Some(thread),
            events,
        })
    }

    /// Queues an operation.
    pub(crate) fn submit(&self, op: StorageOp, token: Option<PersistToken>) {
        self.addr.do_send(Persist { op, token });
    }

    /// Queues a background snapshot of `image`.
    pub(crate) fn snapshot(&self, last_zxid: Zxid, image: Vec<u8>) {
        self.snapshot_by(last_zxid, Box::new(move |_| Box::new(image)));
    }

    /// Queues a background snapshot that `job` makes.
    pub(crate) fn snapshot_by(&self, last_zxid: Zxid, job: SnapshotJob) {
        self.addr.do_send(TakeSnapshot { last_zxid, job });
    }

    /// Blocks until everything queued is durable, every snapshot written and every event
    /// reported so far collected.
    pub(crate) fn flush(&self) {
        let _ = futures::executor::block_on(self.addr.send(Flush));
        let _ = futures::executor::block_on(self.collector.send(Caught));
    }

    /// Waits until the writer reported `event`; false if it did not within 10 s.
    pub(crate) fn wait_for(&self, event: &WriterEvent) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.events.lock().is_ok_and(|e| e.contains(event)) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    /// Holds background snapshots or lets them go on.
    pub(crate) fn hold_snapshots(&self, held: bool) {
        self.addr.do_send(HoldSnapshots(held));
    }

    /// Makes the writer fail; its supervisor restarts it.
    pub(crate) fn fail(&self) {
        self.addr.do_send(FailStorage);
    }
}

impl Drop for TestWriter {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
