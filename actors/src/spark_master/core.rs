//! The master's registry of workers and applications and its recovery states, as a pure state
//! machine: inputs are election changes, messages and ticks; outputs are messages to send and
//! records to persist or forget. No sockets, clocks or ZooKeeper calls here. Applications and
//! scheduling are in `apps.rs`.

use super::apps::{AppInfo, AppState, StoredApp};
use super::drivers::{DriverInfo, StoredDriver};
use super::held::Held;
use ensemble_messages::spark::{ExecutorRef, FromMaster, MasterEpoch, ToMaster, WorkerSpec};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// How many gone applications a STANDBY master remembers.
const MAX_GONE_APPS: usize = 10_000;

/// A connection from a worker or an application client, numbered by the actor.
pub type ConnId = u64;

/// Who speaks on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Peer {
    /// A worker, by id.
    Worker(String),
    /// An application client, by application id.
    App(String),
}

/// Spark's master RecoveryState.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryState {
    /// Not the leader.
    Standby,
    /// The leader, scheduling.
    Alive,
    /// Just elected, waiting for the persisted workers to answer.
    Recovering,
    /// Finishing recovery: removing workers that never answered.
    CompletingRecovery,
}

impl RecoveryState {
    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            RecoveryState::Standby => "STANDBY",
            RecoveryState::Alive => "ALIVE",
            RecoveryState::Recovering => "RECOVERING",
            RecoveryState::CompletingRecovery => "COMPLETING_RECOVERY",
        }
    }
}

/// Spark's WorkerState, as far as the master tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Registered and heartbeating.
    Alive,
    /// Persisted by an earlier master and not heard from since this one was elected.
    Unknown,
    /// Silent for longer than `spark.worker.timeout`, or never answered recovery.
    Dead,
    /// Being decommissioned: it runs what it has, and gets nothing new.
    Decommissioned,
}

impl WorkerState {
    /// Whether it is registered and heartbeating (ALIVE or DECOMMISSIONED).
    pub fn is_live(self) -> bool {
        matches!(self, WorkerState::Alive | WorkerState::Decommissioned)
    }

    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Alive => "ALIVE",
            WorkerState::Unknown => "UNKNOWN",
            WorkerState::Dead => "DEAD",
            WorkerState::Decommissioned => "DECOMMISSIONED",
        }
    }
}

/// What the master knows of one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// What it registered with.
    pub spec: WorkerSpec,
    /// Its state.
    pub state: WorkerState,
    /// When it was last heard from (ms on the actor's clock).
    pub last_heartbeat: u64,
    /// When it was marked DEAD, to drop it from the list later.
    dead_since: Option<u64>,
}

/// Timing and identity of a master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterSettings {
    /// `spark://host:port`.
    pub url: String,
    /// `http://host:port` of the web UI.
    pub webui: String,
    /// spark.worker.timeout, in ms.
    pub worker_timeout_ms: u64,
    /// spark.deploy.recoveryTimeout, in ms.
    pub recovery_timeout_ms: u64,
    /// spark.dead.worker.persistence: DEAD workers stay listed this many timeouts.
    pub dead_worker_persistence: u64,
    /// spark.deploy.spreadOut: spread an application's executors over workers (true) or fill
    /// one worker first.
    pub spread_out: bool,
    /// spark.deploy.defaultCores: cores of an application that sets no maximum (None: every
    /// core alive at submission).
    pub default_cores: Option<u32>,
    /// spark.deploy.maxExecutorRetries: failed executors (with none proven since) after which
    /// an application FAILS once none of its executors runs; None: unlimited (Spark's -1).
    pub max_executor_retries: Option<u32>,
    /// Where it elects (`<ensemble servers><dir>`, or `none`), told to workers so that they can
    /// report masters that elect in different places.
    pub election: String,
    /// spark.deploy.retainedApplications: ended applications kept in memory (and shown).
    pub retained_apps: usize,
    /// spark.deploy.retainedDrivers: ended drivers kept in memory (and shown).
    pub retained_drivers: usize,
    /// The wall clock (ms since the Unix epoch) at time 0 of the times the core is given, to
    /// date submissions in records other masters read. The actor sets it as it starts its
    /// clock.
    pub wall_origin_ms: u64,
}

/// Spark's rule for ended applications and drivers kept in memory: once `retained` are kept,
/// the oldest tenth of `retained` (at least one) makes room for `id`. Returns the ids dropped.
pub fn retire(order: &mut VecDeque<String>, id: &str, retained: usize) -> Vec<String> {
    let mut dropped = Vec::new();
    if order.len() >= retained {
        let n = (retained / 10).max(1).min(order.len());
        dropped.extend(order.drain(..n));
    }
    order.push_back(id.to_string());
    dropped
}

/// An input to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// This master won the election at `epoch`; `stored` and `apps` were persisted.
    Elected {
        /// The latch znode's zxid.
        epoch: MasterEpoch,
        /// Workers persisted by earlier masters.
        stored: Vec<WorkerSpec>,
        /// Applications persisted by earlier masters.
        apps: Vec<StoredApp>,
        /// Drivers persisted by earlier masters.
        drivers: Vec<StoredDriver>,
    },
    /// This master lost its session or its latch: back to STANDBY.
    Deposed,
    /// The link lost its connection to the ensemble but the session may live: the master
    /// stays ALIVE and stops acting on the cluster until [`Input::Resumed`] or
    /// [`Input::Deposed`].
    Suspended,
    /// The link is connected again with the same session: the master acts again.
    Resumed,
    /// Record changes `1..=seq` issued under `epoch` are stored; replies waiting for them go.
    Stored {
        /// The epoch the changes were issued under (older ones are fenced off).
        epoch: MasterEpoch,
        /// The number of the last stored change.
        seq: u64,
    },
    /// Kill an application (the web UI's kill action).
    KillApp(String),
    /// Kill a driver (the web UI's kill action).
    KillDriver(String),
    /// Decommission these workers (the web UI's kill-workers endpoint).
    DecommissionWorkers(Vec<String>),
    /// A message on a worker connection.
    Message {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: ToMaster,
    },
    /// A worker connection closed.
    Disconnected(ConnId),
    /// Time passed.
    Tick,
}

/// What the actor must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: FromMaster,
    },
    /// Persist a worker's record.
    PersistWorker(WorkerSpec),
    /// Delete a worker's record.
    ForgetWorker(String),
    /// Persist an application's record.
    PersistApp(StoredApp),
    /// Delete an application's record.
    ForgetApp(String),
    /// Persist a driver's record.
    PersistDriver(StoredDriver),
    /// Delete a driver's record.
    ForgetDriver(String),
    /// Recovery finished (for the log: how long it took, in ms).
    RecoveryComplete {
        /// Duration since the election.
        took_ms: u64,
    },
}

/// The master's registry and state.
pub struct MasterCore {
    pub(super) settings: MasterSettings,
    pub(super) state: RecoveryState,
    pub(super) epoch: MasterEpoch,
    pub(super) workers: BTreeMap<String, WorkerInfo>,
    /// Applications, by id.
    pub(super) apps: BTreeMap<String, AppInfo>,
    /// Application ids in submission order (FIFO scheduling).
    pub(super) app_order: Vec<String>,
    /// Applications registered under this epoch, for ids.
    pub(super) next_app: u32,
    /// Drivers, by id.
    pub(super) drivers: BTreeMap<String, DriverInfo>,
    /// Drivers submitted under this epoch, for ids.
    pub(super) next_driver: u32,
    /// Where the round-robin placement of drivers goes on.
    pub(super) next_driver_worker: usize,
    /// Who each connection speaks for.
    pub(super) conns: BTreeMap<ConnId, Peer>,
    /// Applications whose driver connection closed, with none open since: finished as soon as
    /// this master leads, rather than waited for through recovery.
    pub(super) gone_apps: BTreeSet<String>,
    /// Ended applications kept, oldest first (spark.deploy.retainedApplications).
    pub(super) ended_apps: VecDeque<String>,
    /// Ended drivers kept, oldest first (spark.deploy.retainedDrivers).
    pub(super) ended_drivers: VecDeque<String>,
    /// Whether the link is disconnected (session maybe alive): ALIVE, but not acting.
    pub(super) suspended: bool,
    /// Replies waiting for their records to be stored.
    held: Held,
    elected_at: u64,
    /// The time of the input being handled (ms on the actor's clock).
    pub(super) now: u64,
    pub(super) out: Vec<Output>,
}

impl MasterCore {
    /// A STANDBY master.
    pub fn new(settings: MasterSettings) -> Self {
        MasterCore {
            settings,
            state: RecoveryState::Standby,
            epoch: 0,
            workers: BTreeMap::new(),
            apps: BTreeMap::new(),
            app_order: Vec::new(),
            next_app: 0,
            drivers: BTreeMap::new(),
            next_driver: 0,
            next_driver_worker: 0,
            conns: BTreeMap::new(),
            gone_apps: BTreeSet::new(),
            ended_apps: VecDeque::new(),
            ended_drivers: VecDeque::new(),
            suspended: false,
            held: Held::default(),
            elected_at: 0,
            now: 0,
            out: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> RecoveryState {
        self.state
    }

    /// Current leadership epoch (0 in STANDBY).
    pub fn epoch(&self) -> MasterEpoch {
        self.epoch
    }

    /// Whether it is ALIVE (or recovering) but not acting, its ensemble connection lost.
    pub fn suspended(&self) -> bool {
        self.suspended
    }

    /// The number of the last record change issued under the current epoch, when some are
    /// not stored yet.
    pub fn unstored(&self) -> Option<u64> {
        self.held.pending().then(|| self.held.issued())
    }

    /// Workers, by id.
    pub fn workers(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.values()
    }

    /// Applications, in submission order.
    pub fn apps(&self) -> impl Iterator<Item = &AppInfo> {
        self.app_order.iter().filter_map(|id| self.apps.get(id))
    }

    /// Drivers, by id.
    pub fn drivers(&self) -> impl Iterator<Item = &DriverInfo> {
        self.drivers.values()
    }

    /// Cores and memory (MiB) that live executors and running drivers hold on a worker.
    pub fn used(&self, worker: &str) -> (u32, u64) {
        self.usage().remove(worker).unwrap_or((0, 0))
    }

    /// Cores and memory (MiB) held on every worker that holds any, in one pass over the
    /// executors and drivers (a scheduling pass reads it once, not once per worker and app).
    pub(super) fn usage(&self) -> HashMap<&str, (u32, u64)> {
        let executors = self
            .apps
            .values()
            .flat_map(|a| a.executors.values())
            .filter(|e| !e.state.is_finished())
            .map(|e| (e.worker.as_str(), e.cores, e.memory_mb));
        let drivers = self
            .drivers
            .values()
            .filter(|d| d.is_running())
            .filter_map(|d| Some((d.worker.as_deref()?, d.desc.cores, d.desc.memory_mb)));
        let mut usage: HashMap<&str, (u32, u64)> = HashMap::new();
        for (worker, cores, memory) in executors.chain(drivers) {
            let held = usage.entry(worker).or_default();
            *held = (held.0.saturating_add(cores), held.1.saturating_add(memory));
        }
        usage
    }

    /// The wall-clock time of the input being handled, ms since the Unix epoch.
    pub fn wall_ms(&self) -> u64 {
        self.settings.wall_origin_ms + self.now
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &MasterSettings {
        &self.settings
    }

    /// Feeds one input at `now` (ms) and returns what to do.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Elected {
                epoch,
                stored,
                apps,
                drivers,
            } => {
                self.elected(epoch, stored, apps, now);
                for d in drivers {
                    self.restore_driver(d);
                }
                self.finish_gone_apps(now);
                if self.state == RecoveryState::Alive {
                    // Nothing else was stored: no worker will report these drivers.
                    self.recover_orphan_drivers();
                    self.schedule();
                }
            }
            Input::Deposed => self.deposed(),
            Input::Suspended => self.suspended = self.state != RecoveryState::Standby,
            Input::Resumed => {
                self.suspended = false;
                self.schedule();
            }
            Input::Stored { epoch, seq } => {
                // A change stored under an older epoch releases nothing of this one.
                if epoch == self.epoch && self.state != RecoveryState::Standby {
                    for (conn, msg) in self.held.stored_through(seq) {
                        self.out.push(Output::Send { conn, msg });
                    }
                }
            }
            Input::KillApp(id) => {
                if self.acting() {
                    self.finish_app(&id, AppState::Killed);
                }
            }
            Input::KillDriver(id) => {
                if self.acting() {
                    self.kill_driver(&id);
                }
            }
            Input::DecommissionWorkers(ids) => {
                if self.state != RecoveryState::Standby {
                    for id in ids {
                        self.decommission(&id, true);
                    }
                }
            }
            Input::Message { conn, msg } => self.message(conn, msg, now),
            Input::Disconnected(conn) => {
                self.held.drop_conn(conn);
                if let Some(Peer::App(id)) = self.conns.remove(&conn) {
                    if self.conn_of(&Peer::App(id.clone())).is_none() {
                        self.gone_apps.insert(id);
                        while self.gone_apps.len() > MAX_GONE_APPS {
                            // Ids sort by epoch: the oldest go first.
                            self.gone_apps.pop_first();
                        }
                        self.finish_gone_apps(now);
                    }
                }
            }
            Input::Tick => self.tick(now),
        }
        std::mem::take(&mut self.out)
    }

    /// Whether it is ALIVE and connected to the ensemble: it may change the cluster.
    pub(super) fn acting(&self) -> bool {
        self.state == RecoveryState::Alive && !self.suspended
    }

    /// Sends `msg`, after the replies still held for the connection.
    pub(super) fn send(&mut self, conn: ConnId, msg: FromMaster) {
        if let Some(msg) = self.held.in_order(conn, msg) {
            self.out.push(Output::Send { conn, msg });
        }
    }

    /// Sends `msg` once every record change issued so far is stored: the answer to a
    /// registration or submission, whose record must survive this master.
    pub(super) fn send_stored(&mut self, conn: ConnId, msg: FromMaster) {
        if let Some(msg) = self.held.after_stored(conn, msg) {
            self.out.push(Output::Send { conn, msg });
        }
    }

    /// Issues a record change (one of the Persist and Forget outputs).
    pub(super) fn store(&mut self, change: Output) {
        self.held.issue();
        self.out.push(change);
    }

    pub(super) fn conn_of(&self, peer: &Peer) -> Option<ConnId> {
        self.conns.iter().find(|(_, p)| *p == peer).map(|(c, _)| *c)
    }

    fn elected(
        &mut self,
        epoch: MasterEpoch,
        stored: Vec<WorkerSpec>,
        apps: Vec<StoredApp>,
        now: u64,
    ) {
        self.epoch = epoch;
        self.elected_at = now;
        self.suspended = false;
        self.held.reset();
        self.workers.clear();
        self.apps.clear();
        self.app_order.clear();
        self.next_app = 0;
        self.drivers.clear();
        self.next_driver = 0;
        if stored.is_empty() && apps.is_empty() {
            self.state = RecoveryState::Alive;
            return;
        }
        self.state = RecoveryState::Recovering;
        for app in apps {
            let id = app.id.clone();
            self.restore_app(app);
            if let Some(conn) = self.conn_of(&Peer::App(id)) {
                let msg = self.master_changed();
                self.send(conn, msg);
            }
        }
        for spec in stored {
            let id = spec.id.clone();
            self.workers.insert(
                id.clone(),
                WorkerInfo {
                    spec,
                    state: WorkerState::Unknown,
                    last_heartbeat: now,
                    dead_since: None,
                },
            );
            if let Some(conn) = self.conn_of(&Peer::Worker(id)) {
                let msg = self.master_changed();
                self.send(conn, msg);
            }
        }
    }

    /// The driver is gone (Spark's onDisconnected): its application ends, and is not waited
    /// for through a recovery. A STANDBY master remembers it for when it leads.
    fn finish_gone_apps(&mut self, now: u64) {
        if self.state == RecoveryState::Standby {
            return;
        }
        for id in std::mem::take(&mut self.gone_apps) {
            self.finish_app(&id, AppState::Finished);
        }
        self.maybe_complete_recovery(now);
    }

    fn master_changed(&self) -> FromMaster {
        FromMaster::MasterChanged {
            master_url: self.settings.url.clone(),
            webui: self.settings.webui.clone(),
            epoch: self.epoch,
        }
    }

    fn deposed(&mut self) {
        self.state = RecoveryState::Standby;
        self.epoch = 0;
        self.suspended = false;
        self.held.reset();
        self.workers.clear();
        self.apps.clear();
        self.app_order.clear();
        self.drivers.clear();
    }

    fn message(&mut self, conn: ConnId, msg: ToMaster, now: u64) {
        match msg {
            ToMaster::RegisterWorker(spec) => self.register(conn, spec, now),
            ToMaster::Heartbeat { worker_id } => {
                self.conns.insert(conn, Peer::Worker(worker_id.clone()));
                if self.state == RecoveryState::Standby {
                    // Spark's MasterInStandby: a worker still following this master (its
                    // registration was never stored) must look for the ALIVE one.
                    let master_url = self.settings.url.clone();
                    self.send(conn, FromMaster::MasterInStandby { master_url });
                    return;
                }
                match self.workers.get_mut(&worker_id) {
                    Some(w) if w.state.is_live() => w.last_heartbeat = now,
                    _ => {
                        // Unknown here, or given up on: it must register again (Spark's
                        // ReconnectWorker), and keeps what it runs.
                        let msg = FromMaster::ReconnectWorker {
                            master_url: self.settings.url.clone(),
                            epoch: self.epoch,
                        };
                        self.send(conn, msg);
                    }
                }
            }
            ToMaster::WorkerSchedulerStateResponse {
                worker_id,
                executors,
                drivers,
            } => {
                self.conns.insert(conn, Peer::Worker(worker_id.clone()));
                if self.state == RecoveryState::Standby {
                    return;
                }
                if let Some(w) = self.workers.get_mut(&worker_id) {
                    if w.state != WorkerState::Decommissioned {
                        w.state = WorkerState::Alive;
                    }
                    w.last_heartbeat = now;
                    w.dead_since = None;
                    self.adopt(conn, &worker_id, executors);
                    self.adopt_drivers(conn, &worker_id, drivers);
                }
                self.maybe_complete_recovery(now);
                self.schedule();
            }
            ToMaster::ExecutorStateChanged {
                app_id,
                exec_id,
                state,
                exit_code,
                stderr,
            } => self.executor_changed(&app_id, exec_id, state, exit_code, stderr),
            ToMaster::DriverStateChanged {
                driver_id, state, ..
            } => self.driver_changed(&driver_id, state),
            ToMaster::RequestSubmitDriver(desc) => self.submit_driver(conn, desc),
            ToMaster::RegisterApplication { desc, app_id } => self.register_app(conn, desc, app_id),
            ToMaster::UnregisterApplication { app_id } => {
                self.finish_app(&app_id, AppState::Finished)
            }
            ToMaster::WorkerDecommissioning { worker_id } => {
                self.conns.insert(conn, Peer::Worker(worker_id.clone()));
                if self.state == RecoveryState::Standby {
                    let master_url = self.settings.url.clone();
                    self.send(conn, FromMaster::MasterInStandby { master_url });
                    return;
                }
                self.decommission(&worker_id, false);
            }
            // Answered by the actor, which knows the ensemble session.
            ToMaster::Identify => {}
            ToMaster::MasterChangeAcknowledged { app_id } => {
                self.gone_apps.remove(&app_id);
                self.conns.insert(conn, Peer::App(app_id.clone()));
                if let Some(app) = self.apps.get_mut(&app_id) {
                    if app.state == AppState::Unknown {
                        app.state = AppState::Waiting;
                        app.refresh_state();
                    }
                }
                self.maybe_complete_recovery(now);
            }
        }
    }

    /// Re-attaches the executors a worker reports; kills those of applications it does not
    /// know (or that ended), as Spark's WorkerLatestState handling does.
    fn adopt(&mut self, conn: ConnId, worker: &str, executors: Vec<ExecutorRef>) {
        for e in executors {
            let known = self.apps.get_mut(&e.app_id).filter(|a| a.is_active());
            match known {
                Some(app) => app.adopt(worker, &e, self.now),
                None if self.state == RecoveryState::Alive => {
                    let msg = FromMaster::KillExecutor {
                        app_id: e.app_id,
                        exec_id: e.exec_id,
                        epoch: self.epoch,
                    };
                    self.send(conn, msg);
                }
                // Recovering: the application may still answer; it is decided at the end.
                None => {}
            }
        }
    }

    fn register(&mut self, conn: ConnId, spec: WorkerSpec, now: u64) {
        self.conns.insert(conn, Peer::Worker(spec.id.clone()));
        if self.state == RecoveryState::Standby {
            let msg = FromMaster::MasterInStandby {
                master_url: self.settings.url.clone(),
            };
            self.send(conn, msg);
            return;
        }
        if spec.cores == 0 || spec.memory_mb == 0 {
            let message = format!(
                "worker {} offers {} cores and {} MiB; both must be positive",
                spec.id, spec.cores, spec.memory_mb
            );
            self.send(conn, FromMaster::RegisterWorkerFailed { message });
            return;
        }
        // A known worker registering again (after a lost connection, or during a failover) is
        // accepted as the same worker rather than refused as a duplicate (SPARK-4592).
        let duplicate = self
            .workers
            .get(&spec.id)
            .is_some_and(|w| w.state != WorkerState::Dead);
        let changed = self.workers.get(&spec.id).is_none_or(|w| w.spec != spec);
        // A decommissioned worker registering again stays decommissioned, and unrecorded.
        let decommissioned = self
            .workers
            .get(&spec.id)
            .is_some_and(|w| w.state == WorkerState::Decommissioned);
        self.replace_predecessor(&spec, now);
        if (changed || !duplicate) && !decommissioned {
            self.store(Output::PersistWorker(spec.clone()));
        }
        let state = if decommissioned {
            WorkerState::Decommissioned
        } else {
            WorkerState::Alive
        };
        self.workers.insert(
            spec.id.clone(),
            WorkerInfo {
                spec,
                state,
                last_heartbeat: now,
                dead_since: None,
            },
        );
        let msg = FromMaster::RegisteredWorker {
            master_url: self.settings.url.clone(),
            webui: self.settings.webui.clone(),
            epoch: self.epoch,
            duplicate,
            election: self.settings.election.clone(),
        };
        self.send_stored(conn, msg);
        self.maybe_complete_recovery(now);
        self.schedule();
    }

    /// A worker restarted on the same host and port has a new id: its predecessor there is
    /// dead (two cannot hold one port), and is removed at once rather than waited for.
    fn replace_predecessor(&mut self, spec: &WorkerSpec, now: u64) {
        let old: Vec<String> = self
            .workers
            .values()
            .filter(|w| {
                w.spec.id != spec.id
                    && w.spec.host == spec.host
                    && w.spec.port == spec.port
                    && w.state != WorkerState::Dead
            })
            .map(|w| w.spec.id.clone())
            .collect();
        for id in old {
            tracing::info!(worker = %id, "replaced by {} on the same address", spec.id);
            self.mark_dead(&id, now);
        }
    }

    fn maybe_complete_recovery(&mut self, now: u64) {
        let waiting = self
            .workers
            .values()
            .any(|w| w.state == WorkerState::Unknown)
            || self.apps.values().any(|a| a.state == AppState::Unknown);
        if self.state == RecoveryState::Recovering && !waiting {
            self.complete_recovery(now);
        }
    }

    fn complete_recovery(&mut self, now: u64) {
        self.state = RecoveryState::CompletingRecovery;
        let silent: Vec<String> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Unknown)
            .map(|w| w.spec.id.clone())
            .collect();
        for id in silent {
            self.mark_dead(&id, now);
        }
        let unknown: Vec<String> = self
            .apps
            .values()
            .filter(|a| a.state == AppState::Unknown)
            .map(|a| a.id.clone())
            .collect();
        for id in unknown {
            self.finish_app(&id, AppState::Finished);
        }
        self.recover_orphan_drivers();
        self.state = RecoveryState::Alive;
        self.out.push(Output::RecoveryComplete {
            took_ms: now.saturating_sub(self.elected_at),
        });
        self.schedule();
    }

    fn mark_dead(&mut self, id: &str, now: u64) {
        if let Some(w) = self.workers.get_mut(id) {
            w.state = WorkerState::Dead;
            w.dead_since = Some(now);
            self.store(Output::ForgetWorker(id.to_string()));
            self.worker_lost(id);
            self.drivers_lost(id);
        }
    }

    fn tick(&mut self, now: u64) {
        if self.suspended {
            // Without the ensemble nothing is decided: no timeouts, no recovery end.
            return;
        }
        match self.state {
            RecoveryState::Recovering => {
                if now.saturating_sub(self.elected_at) >= self.settings.recovery_timeout_ms {
                    self.complete_recovery(now);
                }
            }
            RecoveryState::Alive => {
                let timeout = self.settings.worker_timeout_ms;
                let silent: Vec<String> = self
                    .workers
                    .values()
                    .filter(|w| w.state.is_live() && now.saturating_sub(w.last_heartbeat) > timeout)
                    .map(|w| w.spec.id.clone())
                    .collect();
                for id in silent {
                    self.mark_dead(&id, now);
                }
                for app in self.apps.values_mut() {
                    app.check_proven(now);
                }
                self.schedule();
                let keep = timeout.saturating_mul(self.settings.dead_worker_persistence);
                self.workers
                    .retain(|_, w| w.dead_since.is_none_or(|t| now.saturating_sub(t) <= keep));
            }
            RecoveryState::Standby | RecoveryState::CompletingRecovery => {}
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
