//! The worker's side of registration as a pure state machine: inputs are connection changes,
//! master messages and ticks; outputs are messages to masters. Jitter comes from a seeded
//! generator the actor provides, so runs are reproducible.

use ensemble_messages::spark::{MasterEpoch, ToMaster, ToWorker, WorkerSpec};
use std::collections::BTreeSet;

/// A master, by its position in the worker's master list.
pub type MasterIndex = usize;

/// Identity and timing of a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// What it registers with.
    pub spec: WorkerSpec,
    /// Heartbeat interval (spark.worker.timeout / 4), in ms.
    pub heartbeat_ms: u64,
    /// First registration retry interval, in ms; jittered by 0.5-1.5. After six tries the
    /// interval grows six-fold. Unlike Spark, the worker never gives up.
    pub register_retry_ms: u64,
    /// Seed of the jitter.
    pub seed: u64,
}

/// An input to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A connection to a master opened.
    Connected(MasterIndex),
    /// A connection to a master closed.
    Disconnected(MasterIndex),
    /// A master's message.
    Message {
        /// Which master.
        master: MasterIndex,
        /// The message.
        msg: ToWorker,
    },
    /// Time passed.
    Tick,
}

/// What the actor must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message to a master.
    Send {
        /// Which master.
        master: MasterIndex,
        /// The message.
        msg: ToMaster,
    },
    /// A master refused the worker for good (bad resources): report it and stop.
    Refused(String),
    /// A message from a deposed master's epoch was ignored.
    Fenced {
        /// The stale epoch.
        epoch: MasterEpoch,
    },
}

/// Registration state of a worker.
pub struct WorkerCore {
    settings: WorkerSettings,
    connected: BTreeSet<MasterIndex>,
    active: Option<MasterIndex>,
    max_epoch: MasterEpoch,
    next_heartbeat: u64,
    next_attempt: u64,
    attempts: u32,
    rng: u64,
    out: Vec<Output>,
}

impl WorkerCore {
    /// A worker registered with no master yet.
    pub fn new(settings: WorkerSettings) -> Self {
        let rng = settings.seed | 1;
        WorkerCore {
            settings,
            connected: BTreeSet::new(),
            active: None,
            max_epoch: 0,
            next_heartbeat: 0,
            next_attempt: 0,
            attempts: 0,
            rng,
            out: Vec::new(),
        }
    }

    /// The master it is registered with.
    pub fn active(&self) -> Option<MasterIndex> {
        self.active
    }

    /// The newest master epoch it has followed.
    pub fn max_epoch(&self) -> MasterEpoch {
        self.max_epoch
    }

    /// What it registers with.
    pub fn spec(&self) -> &WorkerSpec {
        &self.settings.spec
    }

    /// Feeds one input at `now` (ms) and returns what to do.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        match input {
            Input::Connected(m) => {
                self.connected.insert(m);
                if self.active.is_none() {
                    self.register_with(m);
                }
            }
            Input::Disconnected(m) => {
                self.connected.remove(&m);
                if self.active == Some(m) {
                    // Look for the new master at once, then back off.
                    self.active = None;
                    self.attempts = 0;
                    self.next_attempt = now;
                    self.tick(now);
                }
            }
            Input::Message { master, msg } => self.message(master, msg, now),
            Input::Tick => self.tick(now),
        }
        std::mem::take(&mut self.out)
    }

    fn register_with(&mut self, master: MasterIndex) {
        let msg = ToMaster::RegisterWorker(self.settings.spec.clone());
        self.out.push(Output::Send { master, msg });
    }

    fn follow(&mut self, master: MasterIndex, epoch: MasterEpoch, now: u64) {
        self.active = Some(master);
        self.max_epoch = epoch;
        self.attempts = 0;
        self.next_heartbeat = now + self.settings.heartbeat_ms;
    }

    fn message(&mut self, master: MasterIndex, msg: ToWorker, now: u64) {
        if let Some(epoch) = msg.epoch() {
            if epoch < self.max_epoch {
                self.out.push(Output::Fenced { epoch });
                return;
            }
        }
        match msg {
            ToWorker::RegisteredWorker { epoch, .. } => self.follow(master, epoch, now),
            ToWorker::MasterChanged { epoch, .. } => {
                self.follow(master, epoch, now);
                let worker_id = self.settings.spec.id.clone();
                let msg = ToMaster::WorkerSchedulerStateResponse { worker_id };
                self.out.push(Output::Send { master, msg });
            }
            ToWorker::ReconnectWorker { epoch, .. } => {
                self.max_epoch = epoch;
                self.active = None;
                self.next_attempt = now + self.retry_interval();
                self.register_with(master);
            }
            ToWorker::RegisterWorkerFailed { message } => self.out.push(Output::Refused(message)),
            ToWorker::MasterInStandby { .. } => {}
        }
    }

    fn tick(&mut self, now: u64) {
        match self.active {
            Some(master) if now >= self.next_heartbeat => {
                self.next_heartbeat = now + self.settings.heartbeat_ms;
                let worker_id = self.settings.spec.id.clone();
                let msg = ToMaster::Heartbeat { worker_id };
                self.out.push(Output::Send { master, msg });
            }
            None if now >= self.next_attempt => {
                self.attempts += 1;
                self.next_attempt = now + self.retry_interval();
                let masters: Vec<MasterIndex> = self.connected.iter().copied().collect();
                for m in masters {
                    self.register_with(m);
                }
            }
            _ => {}
        }
    }

    /// The next retry interval: the base, times six after six tries, jittered by 0.5-1.5.
    fn retry_interval(&mut self) -> u64 {
        let base = if self.attempts > 6 {
            self.settings.register_retry_ms * 6
        } else {
            self.settings.register_retry_ms
        };
        // xorshift64: enough for jitter, and reproducible from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        base / 2 + self.rng % base.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> WorkerCore {
        WorkerCore::new(WorkerSettings {
            spec: WorkerSpec {
                id: "w1".into(),
                host: "h".into(),
                port: 1,
                cores: 1,
                memory_mb: 512,
                webui: "http://h:8081".into(),
            },
            heartbeat_ms: 250,
            register_retry_ms: 1000,
            seed: 42,
        })
    }

    fn register() -> ToMaster {
        ToMaster::RegisterWorker(core().spec().clone())
    }

    fn registered(epoch: MasterEpoch) -> ToWorker {
        ToWorker::RegisteredWorker {
            master_url: "spark://m:1".into(),
            webui: String::new(),
            epoch,
            duplicate: false,
        }
    }

    #[test]
    fn it_registers_with_every_master_and_heartbeats_the_one_that_accepts() {
        let mut w = core();
        assert_eq!(
            w.step(Input::Connected(0), 0),
            vec![Output::Send {
                master: 0,
                msg: register()
            }]
        );
        assert_eq!(
            w.step(Input::Connected(1), 0),
            vec![Output::Send {
                master: 1,
                msg: register()
            }]
        );
        let standby = ToWorker::MasterInStandby {
            master_url: "spark://m:0".into(),
        };
        assert_eq!(
            w.step(
                Input::Message {
                    master: 0,
                    msg: standby
                },
                5
            ),
            vec![]
        );
        assert_eq!(
            w.step(
                Input::Message {
                    master: 1,
                    msg: registered(4)
                },
                10
            ),
            vec![]
        );
        assert_eq!(w.active(), Some(1));
        assert_eq!(w.step(Input::Tick, 259), vec![]);
        let beat = ToMaster::Heartbeat {
            worker_id: "w1".into(),
        };
        assert_eq!(
            w.step(Input::Tick, 260),
            vec![Output::Send {
                master: 1,
                msg: beat
            }]
        );
    }

    #[test]
    fn losing_its_master_it_registers_again_with_backoff_and_jitter() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(Input::Connected(1), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(4),
            },
            0,
        );
        // Master 0 dies: the worker asks the others at once.
        let out = w.step(Input::Disconnected(0), 100);
        assert_eq!(
            out,
            vec![Output::Send {
                master: 1,
                msg: register()
            }]
        );
        let mut retries = Vec::new();
        for now in (101..20_000).step_by(10) {
            if !w.step(Input::Tick, now).is_empty() {
                retries.push(now);
            }
        }
        let gaps: Vec<u64> = retries.windows(2).map(|p| p[1] - p[0]).collect();
        let (first, later) = gaps.split_at(5);
        assert!(first.iter().all(|g| (500..=1510).contains(g)), "{gaps:?}");
        assert!(!later.is_empty(), "{gaps:?}");
        assert!(
            later.iter().all(|g| (3000..=9010).contains(g)),
            "six-fold: {gaps:?}"
        );
        assert!(gaps.windows(2).any(|p| p[0] != p[1]), "jittered: {gaps:?}");
    }

    #[test]
    fn a_new_master_takes_over_and_an_older_epoch_is_fenced_off() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(Input::Connected(1), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(4),
            },
            0,
        );
        let changed = ToWorker::MasterChanged {
            master_url: "spark://m:1".into(),
            webui: String::new(),
            epoch: 9,
        };
        let out = w.step(
            Input::Message {
                master: 1,
                msg: changed,
            },
            10,
        );
        let answer = ToMaster::WorkerSchedulerStateResponse {
            worker_id: "w1".into(),
        };
        assert_eq!(
            out,
            vec![Output::Send {
                master: 1,
                msg: answer
            }]
        );
        assert_eq!((w.active(), w.max_epoch()), (Some(1), 9));
        // The deposed master (epoch 4) cannot pull the worker back.
        let stale = ToWorker::ReconnectWorker {
            master_url: "spark://m:0".into(),
            epoch: 4,
        };
        let out = w.step(
            Input::Message {
                master: 0,
                msg: stale,
            },
            20,
        );
        assert_eq!(out, vec![Output::Fenced { epoch: 4 }]);
        assert_eq!(w.active(), Some(1));
    }

    #[test]
    fn reconnect_worker_makes_it_register_again_and_a_refusal_is_reported() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(4),
            },
            0,
        );
        let again = ToWorker::ReconnectWorker {
            master_url: "spark://m:0".into(),
            epoch: 4,
        };
        let out = w.step(
            Input::Message {
                master: 0,
                msg: again,
            },
            10,
        );
        assert_eq!(
            out,
            vec![Output::Send {
                master: 0,
                msg: register()
            }]
        );
        assert_eq!(w.active(), None);
        let refused = ToWorker::RegisterWorkerFailed {
            message: "no".into(),
        };
        let out = w.step(
            Input::Message {
                master: 0,
                msg: refused,
            },
            20,
        );
        assert_eq!(out, vec![Output::Refused("no".into())]);
    }
}
