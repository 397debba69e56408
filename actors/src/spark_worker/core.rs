//! The worker's side of registration and its executors, as a pure state machine: inputs are
//! connection changes, master messages, executor exits and ticks; outputs are messages to
//! masters and processes to start or kill. Jitter comes from a seeded generator the actor
//! provides, so runs are reproducible.

use ensemble_messages::spark::{
    DriverDesc, DriverRef, DriverState, ExecutorRef, ExecutorState, FromMaster, MasterEpoch,
    StderrTail, ToMaster, WorkerSpec,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
        msg: FromMaster,
    },
    /// An executor's process started.
    ExecutorStarted {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
    },
    /// An executor's process ended (or could not start: no exit code).
    ExecutorExited {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
        /// Its exit status.
        exit_code: Option<i32>,
        /// Whether it was killed on the master's request.
        killed: bool,
        /// The end of its stderr, passed on to the master if it failed.
        stderr: Option<StderrTail>,
    },
    /// A driver's process ended (or could not start: no exit code).
    DriverExited {
        /// The driver.
        driver_id: String,
        /// Its exit status.
        exit_code: Option<i32>,
        /// Whether it was killed on the master's request.
        killed: bool,
    },
    /// Decommission this worker (SIGPWR with spark.decommission.enabled): it tells its
    /// master, and every master it follows later, and launches no more executors.
    Decommission,
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
    /// Start an executor process.
    Launch {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
        /// The command.
        command: Vec<String>,
        /// Cores granted.
        cores: u32,
        /// Memory granted, MiB.
        memory_mb: u64,
    },
    /// Kill an executor process.
    Kill {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
    },
    /// Start a driver process.
    LaunchDriver {
        /// The driver.
        driver_id: String,
        /// What to run.
        desc: DriverDesc,
    },
    /// Kill a driver process.
    KillDriver {
        /// The driver.
        driver_id: String,
    },
    /// A second master accepted the worker while the first still leads: the masters elect in
    /// different places (different ensembles or dirs, or recovery mode NONE), a
    /// misconfiguration. The worker stays with the first.
    Conflict {
        /// The master it follows, and where it elects.
        ours: (String, String),
        /// The other master, and where it elects.
        other: (String, String),
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
    /// The active master's URL and election place.
    active_master: (String, String),
    /// Running executors.
    executors: BTreeMap<(String, u32), ExecutorRef>,
    /// Running drivers.
    drivers: BTreeMap<String, DriverRef>,
    /// Executor state changes not yet delivered to a master.
    unsent: VecDeque<ToMaster>,
    /// Whether it is decommissioned.
    decommissioned: bool,
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
            active_master: (String::new(), String::new()),
            executors: BTreeMap::new(),
            drivers: BTreeMap::new(),
            unsent: VecDeque::new(),
            decommissioned: false,
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

    /// Its running executors.
    pub fn executors(&self) -> impl Iterator<Item = &ExecutorRef> {
        self.executors.values()
    }

    /// Its running drivers.
    pub fn drivers(&self) -> impl Iterator<Item = &DriverRef> {
        self.drivers.values()
    }

    /// Whether it is decommissioned.
    pub fn decommissioned(&self) -> bool {
        self.decommissioned
    }

    /// Tells master `master` that this worker is decommissioned.
    fn announce_decommissioning(&mut self, master: MasterIndex) {
        let worker_id = self.settings.spec.id.clone();
        let msg = ToMaster::WorkerDecommissioning { worker_id };
        self.out.push(Output::Send { master, msg });
    }

    /// Feeds one input at `now` (ms) and returns what to do.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        match input {
            Input::Connected(m) => {
                self.connected.insert(m);
                match self.active {
                    None => self.register_with(m),
                    // A master reached after this worker registered elsewhere learns which
                    // worker this connection is, so that, elected later, it can tell it
                    // MasterChanged: a master that froze rather than died closes no connection
                    // that would make the worker look for its successor.
                    Some(a) if a != m => {
                        let worker_id = self.settings.spec.id.clone();
                        let msg = ToMaster::Heartbeat { worker_id };
                        self.out.push(Output::Send { master: m, msg });
                    }
                    Some(_) => {}
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
            Input::ExecutorStarted { app_id, exec_id } => {
                self.report(ToMaster::ExecutorStateChanged {
                    app_id,
                    exec_id,
                    state: ExecutorState::Running,
                    exit_code: None,
                    stderr: None,
                });
            }
            Input::ExecutorExited {
                app_id,
                exec_id,
                exit_code,
                killed,
                stderr,
            } => {
                self.executors.remove(&(app_id.clone(), exec_id));
                let state = match (killed, exit_code) {
                    (true, _) => ExecutorState::Killed,
                    (false, Some(0)) => ExecutorState::Exited,
                    (false, _) => ExecutorState::Failed,
                };
                let stderr = stderr.filter(|_| state == ExecutorState::Failed);
                self.report(ToMaster::ExecutorStateChanged {
                    app_id,
                    exec_id,
                    state,
                    exit_code,
                    stderr,
                });
            }
            Input::DriverExited {
                driver_id,
                exit_code,
                killed,
            } => {
                self.drivers.remove(&driver_id);
                let state = match (killed, exit_code) {
                    (true, _) => DriverState::Killed,
                    (false, Some(0)) => DriverState::Finished,
                    (false, Some(_)) => DriverState::Failed,
                    (false, None) => DriverState::Error,
                };
                self.report(ToMaster::DriverStateChanged {
                    driver_id,
                    state,
                    exit_code,
                });
            }
            Input::Decommission => {
                if !self.decommissioned {
                    self.decommissioned = true;
                    if let Some(master) = self.active {
                        self.announce_decommissioning(master);
                    }
                }
            }
            Input::Tick => self.tick(now),
        }
        std::mem::take(&mut self.out)
    }

    fn register_with(&mut self, master: MasterIndex) {
        let msg = ToMaster::RegisterWorker(self.settings.spec.clone());
        self.out.push(Output::Send { master, msg });
    }

    /// Sends a state change to the active master, or keeps it until there is one.
    fn report(&mut self, msg: ToMaster) {
        match self.active {
            Some(master) => self.out.push(Output::Send { master, msg }),
            None => self.unsent.push_back(msg),
        }
    }

    /// Follows `master`: tells it what runs here, then what changed while there was none.
    fn follow(&mut self, master: MasterIndex, epoch: MasterEpoch, now: u64) {
        self.active = Some(master);
        self.max_epoch = epoch;
        self.attempts = 0;
        self.next_heartbeat = now + self.settings.heartbeat_ms;
        let msg = ToMaster::WorkerSchedulerStateResponse {
            worker_id: self.settings.spec.id.clone(),
            executors: self.executors.values().cloned().collect(),
            drivers: self.drivers.values().cloned().collect(),
        };
        self.out.push(Output::Send { master, msg });
        while let Some(msg) = self.unsent.pop_front() {
            self.out.push(Output::Send { master, msg });
        }
        if self.decommissioned {
            self.announce_decommissioning(master);
        }
    }

    fn message(&mut self, master: MasterIndex, msg: FromMaster, now: u64) {
        // Masters that elect in different places have incomparable epochs: a second one
        // accepting this worker while the first still leads is a misconfiguration, whatever
        // its epoch. (In one place, a lower epoch is a deposed master: fenced below.)
        if let FromMaster::RegisteredWorker {
            master_url,
            election,
            ..
        } = &msg
        {
            let first_leads = self
                .active
                .is_some_and(|a| a != master && self.connected.contains(&a));
            if first_leads && *election != self.active_master.1 {
                self.out.push(Output::Conflict {
                    ours: self.active_master.clone(),
                    other: (master_url.clone(), election.clone()),
                });
                return;
            }
        }
        if let Some(epoch) = msg.epoch() {
            if epoch < self.max_epoch {
                self.out.push(Output::Fenced { epoch });
                return;
            }
        }
        match msg {
            FromMaster::RegisteredWorker {
                epoch,
                master_url,
                election,
                ..
            } => {
                self.active_master = (master_url, election);
                self.follow(master, epoch, now);
            }
            FromMaster::MasterChanged {
                epoch, master_url, ..
            } => {
                self.active_master = (master_url, self.active_master.1.clone());
                self.follow(master, epoch, now)
            }
            FromMaster::LaunchExecutor {
                app_id,
                exec_id,
                command,
                cores,
                memory_mb,
                ..
            } => {
                let key = (app_id.clone(), exec_id);
                if self.executors.contains_key(&key) {
                    return;
                }
                if self.decommissioned {
                    // Spark's worker launches nothing once decommissioned; this one says so,
                    // and the application gets its executor elsewhere.
                    self.report(ToMaster::ExecutorStateChanged {
                        app_id,
                        exec_id,
                        state: ExecutorState::Decommissioned,
                        exit_code: None,
                        stderr: None,
                    });
                    return;
                }
                let e = ExecutorRef {
                    app_id: app_id.clone(),
                    exec_id,
                    cores,
                    memory_mb,
                };
                self.executors.insert(key, e);
                self.out.push(Output::Launch {
                    app_id,
                    exec_id,
                    command,
                    cores,
                    memory_mb,
                });
            }
            FromMaster::KillExecutor {
                app_id, exec_id, ..
            } => {
                if self.executors.contains_key(&(app_id.clone(), exec_id)) {
                    self.out.push(Output::Kill { app_id, exec_id });
                }
            }
            FromMaster::ReconnectWorker { epoch, .. } => {
                self.max_epoch = epoch;
                self.active = None;
                self.next_attempt = now + self.retry_interval();
                self.register_with(master);
            }
            FromMaster::RegisterWorkerFailed { message } => self.out.push(Output::Refused(message)),
            FromMaster::LaunchDriver {
                driver_id, desc, ..
            } => {
                if self.drivers.contains_key(&driver_id) {
                    return;
                }
                let d = DriverRef {
                    driver_id: driver_id.clone(),
                    cores: desc.cores,
                    memory_mb: desc.memory_mb,
                };
                self.drivers.insert(driver_id.clone(), d);
                self.out.push(Output::LaunchDriver { driver_id, desc });
            }
            FromMaster::KillDriver { driver_id, .. } => {
                if self.drivers.contains_key(&driver_id) {
                    self.out.push(Output::KillDriver { driver_id });
                }
            }
            FromMaster::DecommissionWorker { .. } => self.decommissioned = true,
            FromMaster::MasterInStandby { .. } if self.active == Some(master) => {
                // The master it follows stepped down without a successor knowing this worker
                // (its registration was never stored): look for the ALIVE one at once.
                self.active = None;
                self.attempts = 0;
                self.next_attempt = now;
                self.tick(now);
            }
            // Answers meant for clients or masters, and other standby replies: nothing to do.
            FromMaster::MasterInStandby { .. }
            | FromMaster::Identity { .. }
            | FromMaster::SubmitDriverResponse { .. }
            | FromMaster::RegisteredApplication { .. }
            | FromMaster::RegisterApplicationFailed { .. }
            | FromMaster::ExecutorUpdated { .. }
            | FromMaster::ApplicationRemoved { .. } => {}
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

    fn registered(epoch: MasterEpoch) -> FromMaster {
        FromMaster::RegisteredWorker {
            master_url: "spark://m:1".into(),
            webui: String::new(),
            epoch,
            duplicate: false,
            election: "zk:1/spark".into(),
        }
    }

    /// Found by the SIGSTOP test of spark_takeover.rs: the worker registered with the first
    /// master before its connection to a standby was up, the standby never learnt which worker
    /// that connection was, and once elected (the first master frozen) it could not reach it.
    #[test]
    fn a_master_reached_after_registration_learns_which_worker_it_is() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(3),
            },
            1,
        );
        let hello = ToMaster::Heartbeat {
            worker_id: "w1".into(),
        };
        assert_eq!(
            w.step(Input::Connected(1), 2),
            vec![Output::Send {
                master: 1,
                msg: hello
            }]
        );
        let standby = FromMaster::MasterInStandby {
            master_url: "spark://m:1".into(),
        };
        let answer = Input::Message {
            master: 1,
            msg: standby,
        };
        assert_eq!(w.step(answer, 3), vec![], "the active master stays");
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
        let standby = FromMaster::MasterInStandby {
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
            vec![Output::Send {
                master: 1,
                msg: ToMaster::WorkerSchedulerStateResponse {
                    worker_id: "w1".into(),
                    executors: vec![],
                    drivers: vec![]
                }
            }],
            "registered, it says what it runs (nothing yet)"
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
        let changed = FromMaster::MasterChanged {
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
            executors: vec![],
            drivers: vec![],
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
        let stale = FromMaster::ReconnectWorker {
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
        let again = FromMaster::ReconnectWorker {
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
        let refused = FromMaster::RegisterWorkerFailed {
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

    #[test]
    fn executors_launch_report_and_survive_a_masterless_gap() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(4),
            },
            0,
        );
        let launch = FromMaster::LaunchExecutor {
            app_id: "app-1".into(),
            exec_id: 0,
            command: vec!["sleep".into(), "1".into()],
            cores: 1,
            memory_mb: 256,
            epoch: 4,
        };
        let out = w.step(
            Input::Message {
                master: 0,
                msg: launch.clone(),
            },
            5,
        );
        assert!(
            matches!(
                &out[..],
                [Output::Launch {
                    exec_id: 0,
                    cores: 1,
                    ..
                }]
            ),
            "{out:?}"
        );
        assert!(
            w.step(
                Input::Message {
                    master: 0,
                    msg: launch
                },
                6
            )
            .is_empty(),
            "a repeated launch starts nothing"
        );
        let started = Input::ExecutorStarted {
            app_id: "app-1".into(),
            exec_id: 0,
        };
        let running = ToMaster::ExecutorStateChanged {
            app_id: "app-1".into(),
            exec_id: 0,
            state: ExecutorState::Running,
            exit_code: None,
            stderr: None,
        };
        assert_eq!(
            w.step(started, 7),
            vec![Output::Send {
                master: 0,
                msg: running
            }]
        );
        // The master dies; the executor ends meanwhile; the next master hears of both.
        w.step(Input::Disconnected(0), 10);
        let exited = Input::ExecutorExited {
            app_id: "app-1".into(),
            exec_id: 0,
            exit_code: Some(0),
            killed: false,
            stderr: Some(StderrTail {
                path: "/w/app-1/0/stderr".into(),
                tail: "not a failure".into(),
            }),
        };
        assert_eq!(w.step(exited, 20), vec![]);
        w.step(Input::Connected(1), 30);
        let changed = FromMaster::MasterChanged {
            master_url: "spark://m:1".into(),
            webui: String::new(),
            epoch: 9,
        };
        let out = w.step(
            Input::Message {
                master: 1,
                msg: changed,
            },
            40,
        );
        assert_eq!(
            out,
            vec![
                Output::Send {
                    master: 1,
                    msg: ToMaster::WorkerSchedulerStateResponse {
                        worker_id: "w1".into(),
                        executors: vec![],
                        drivers: vec![]
                    }
                },
                Output::Send {
                    master: 1,
                    msg: ToMaster::ExecutorStateChanged {
                        app_id: "app-1".into(),
                        exec_id: 0,
                        state: ExecutorState::Exited,
                        exit_code: Some(0),
                        stderr: None,
                    }
                }
            ]
        );
        // A failed executor's stderr goes to the master.
        let tail = StderrTail {
            path: "/w/app-1/1/stderr".into(),
            tail: "boom".into(),
        };
        let failed = Input::ExecutorExited {
            app_id: "app-1".into(),
            exec_id: 1,
            exit_code: Some(3),
            killed: false,
            stderr: Some(tail.clone()),
        };
        assert_eq!(
            w.step(failed, 50),
            vec![Output::Send {
                master: 1,
                msg: ToMaster::ExecutorStateChanged {
                    app_id: "app-1".into(),
                    exec_id: 1,
                    state: ExecutorState::Failed,
                    exit_code: Some(3),
                    stderr: Some(tail),
                }
            }]
        );
    }

    #[test]
    fn kills_come_only_for_known_executors_and_fenced_launches_start_nothing() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(9),
            },
            0,
        );
        let kill = FromMaster::KillExecutor {
            app_id: "a".into(),
            exec_id: 3,
            epoch: 9,
        };
        assert!(w
            .step(
                Input::Message {
                    master: 0,
                    msg: kill
                },
                1
            )
            .is_empty());
        let stale = FromMaster::LaunchExecutor {
            app_id: "a".into(),
            exec_id: 0,
            command: vec!["true".into()],
            cores: 1,
            memory_mb: 1,
            epoch: 4,
        };
        let out = w.step(
            Input::Message {
                master: 0,
                msg: stale,
            },
            2,
        );
        assert_eq!(out, vec![Output::Fenced { epoch: 4 }]);
        assert_eq!(w.executors().count(), 0);
    }

    #[test]
    fn a_second_master_accepting_the_worker_is_reported_as_a_misconfiguration() {
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
        let other = FromMaster::RegisteredWorker {
            master_url: "spark://other:1".into(),
            webui: String::new(),
            epoch: 2,
            duplicate: false,
            election: "zk-b:1/spark".into(),
        };
        let out = w.step(
            Input::Message {
                master: 1,
                msg: other,
            },
            5,
        );
        assert_eq!(
            out,
            vec![Output::Conflict {
                ours: ("spark://m:1".into(), "zk:1/spark".into()),
                other: ("spark://other:1".into(), "zk-b:1/spark".into()),
            }]
        );
        assert_eq!(w.active(), Some(0), "it stays with the first");
    }

    /// The master it follows answers a heartbeat with MasterInStandby (it stepped down before
    /// storing this worker's record): the worker registers with every master again at once.
    #[test]
    fn a_standby_answer_from_its_master_sends_it_looking_for_the_alive_one() {
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(Input::Connected(1), 0);
        let ok = Input::Message {
            master: 0,
            msg: registered(4),
        };
        w.step(ok, 10);
        let standby = |master| Input::Message {
            master,
            msg: FromMaster::MasterInStandby {
                master_url: "spark://m:0".into(),
            },
        };
        assert_eq!(
            w.step(standby(1), 20),
            vec![],
            "another master's: no matter"
        );
        assert_eq!(w.active(), Some(0));
        assert_eq!(
            w.step(standby(0), 300),
            vec![
                Output::Send {
                    master: 0,
                    msg: register()
                },
                Output::Send {
                    master: 1,
                    msg: register()
                }
            ]
        );
        assert_eq!(w.active(), None);
    }

    #[test]
    fn a_decommissioned_worker_tells_each_master_and_launches_nothing() {
        let decommissioning = |master| Output::Send {
            master,
            msg: ToMaster::WorkerDecommissioning {
                worker_id: "w1".into(),
            },
        };
        let mut w = core();
        w.step(Input::Connected(0), 0);
        w.step(
            Input::Message {
                master: 0,
                msg: registered(3),
            },
            0,
        );
        assert_eq!(w.step(Input::Decommission, 10), vec![decommissioning(0)]);
        assert!(w.decommissioned());
        assert!(w.step(Input::Decommission, 20).is_empty(), "once");
        let launch = FromMaster::LaunchExecutor {
            app_id: "a".into(),
            exec_id: 0,
            command: vec!["true".into()],
            cores: 1,
            memory_mb: 64,
            epoch: 3,
        };
        let refused = w.step(
            Input::Message {
                master: 0,
                msg: launch,
            },
            30,
        );
        assert_eq!(
            refused,
            vec![Output::Send {
                master: 0,
                msg: ToMaster::ExecutorStateChanged {
                    app_id: "a".into(),
                    exec_id: 0,
                    state: ExecutorState::Decommissioned,
                    exit_code: None,
                    stderr: None,
                },
            }]
        );
        // A new master hears it too, after what runs here.
        w.step(Input::Connected(1), 40);
        let changed = FromMaster::MasterChanged {
            master_url: "spark://m2:1".into(),
            webui: String::new(),
            epoch: 4,
        };
        let out = w.step(
            Input::Message {
                master: 1,
                msg: changed,
            },
            50,
        );
        assert_eq!(out.last(), Some(&decommissioning(1)), "{out:?}");
        // Decommissioned by its master's endpoint: it knows from then on.
        let mut v = core();
        v.step(
            Input::Message {
                master: 0,
                msg: FromMaster::DecommissionWorker { epoch: 1 },
            },
            0,
        );
        assert!(v.decommissioned());
    }
}
