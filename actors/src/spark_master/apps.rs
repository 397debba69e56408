//! Applications, their executors and scheduling, as part of the master core: FIFO over
//! waiting applications, spread out over workers or consolidated, with core and memory
//! accounting that cannot go negative (it is recomputed from live executors, never kept as a
//! running sum).

use super::core::{retire, MasterCore, Output, Peer, RecoveryState, WorkerState};
use ensemble_messages::spark::{AppDesc, ExecutorRef, ExecutorState, FromMaster, StderrTail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Default of spark.deploy.maxExecutorRetries: failed executors, with none proven since,
/// after which an application FAILS once none of its executors runs.
pub const MAX_EXECUTOR_RETRIES: u32 = 10;

/// How long an executor must stay RUNNING to prove that its command works, which resets its
/// application's retry count. (Spark resets at RUNNING itself, which an executor that exits at
/// once also reaches: its application would relaunch it forever.)
pub const PROVEN_RUNNING_MS: u64 = 5_000;

/// The first pause before relaunching for an application whose executor failed; it doubles
/// with each failure in the count, up to [`MAX_RELAUNCH_BACKOFF_MS`].
pub const RELAUNCH_BACKOFF_MS: u64 = 100;

/// The longest pause between relaunches.
pub const MAX_RELAUNCH_BACKOFF_MS: u64 = 3_200;

/// The pause before the next launch after `retries` failures in the count.
pub fn relaunch_backoff_ms(retries: u32) -> u64 {
    match retries {
        0 => 0,
        n => RELAUNCH_BACKOFF_MS
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_RELAUNCH_BACKOFF_MS),
    }
}

/// Spark's ApplicationState.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppState {
    /// Registered, wanting executors.
    Waiting,
    /// Has executors.
    Running,
    /// Ended normally.
    Finished,
    /// Too many executors failed.
    Failed,
    /// Killed from the UI.
    Killed,
    /// Persisted by an earlier master, not heard from since this one was elected.
    Unknown,
}

impl AppState {
    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            AppState::Waiting => "WAITING",
            AppState::Running => "RUNNING",
            AppState::Finished => "FINISHED",
            AppState::Failed => "FAILED",
            AppState::Killed => "KILLED",
            AppState::Unknown => "UNKNOWN",
        }
    }
}

/// An application's persisted record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredApp {
    /// Its id.
    pub id: String,
    /// What it runs.
    pub desc: AppDesc,
    /// Executors it wants in all.
    pub wanted: u32,
    /// Executors that exited 0.
    pub completed: u32,
    /// Next executor number.
    pub next_exec: u32,
    /// When the master registered it, ms since the Unix epoch (0 in older records).
    #[serde(default)]
    pub submitted_ms: u64,
}

/// One executor as the master tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecInfo {
    /// The worker it runs on.
    pub worker: String,
    /// Cores it holds.
    pub cores: u32,
    /// Memory it holds, MiB.
    pub memory_mb: u64,
    /// Its state.
    pub state: ExecutorState,
    /// When it reported RUNNING (ms on the master's clock).
    running_since: Option<u64>,
}

impl ExecInfo {
    /// Whether it runs, and has run long enough to prove its command works.
    fn proven(&self, now: u64) -> bool {
        self.state == ExecutorState::Running
            && self
                .running_since
                .is_some_and(|t| now.saturating_sub(t) >= PROVEN_RUNNING_MS)
    }
}

/// One application as the master tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// Its id.
    pub id: String,
    /// What it runs.
    pub desc: AppDesc,
    /// Its state.
    pub state: AppState,
    /// Executors it wants in all (spark.cores.max / spark.executor.cores).
    pub wanted: u32,
    /// Executors that exited 0.
    pub completed: u32,
    /// Its executors, by number (finished ones stay listed).
    pub executors: BTreeMap<u32, ExecInfo>,
    next_exec: u32,
    /// Failed executors since one last proved itself (Spark's retry count).
    pub retries: u32,
    /// No executor is launched for it before this time (ms): the relaunch backoff.
    relaunch_at: u64,
    /// When the master registered it, ms since the Unix epoch.
    pub submitted_ms: u64,
    /// When it ended, ms since the Unix epoch.
    pub ended_ms: Option<u64>,
    /// The most cores its executors held at once: what a completed application shows.
    pub peak_cores: u32,
}

impl AppInfo {
    fn from_stored(s: StoredApp, state: AppState) -> Self {
        AppInfo {
            id: s.id,
            desc: s.desc,
            state,
            wanted: s.wanted,
            completed: s.completed,
            executors: BTreeMap::new(),
            next_exec: s.next_exec,
            retries: 0,
            relaunch_at: 0,
            submitted_ms: s.submitted_ms,
            ended_ms: None,
            peak_cores: 0,
        }
    }

    pub(super) fn stored(&self) -> StoredApp {
        StoredApp {
            id: self.id.clone(),
            desc: self.desc.clone(),
            wanted: self.wanted,
            completed: self.completed,
            next_exec: self.next_exec,
            submitted_ms: self.submitted_ms,
        }
    }

    /// Cores its live executors hold.
    pub fn live_cores(&self) -> u32 {
        self.executors
            .values()
            .filter(|e| !e.state.is_finished())
            .map(|e| e.cores)
            .sum()
    }

    /// Cores shown for it: those held now while it is active, the most it held once it ended.
    pub fn shown_cores(&self) -> u32 {
        if self.is_active() {
            self.live_cores()
        } else {
            self.peak_cores
        }
    }

    /// Whether it still runs or waits (or may, once it answers recovery).
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            AppState::Waiting | AppState::Running | AppState::Unknown
        )
    }

    fn live(&self) -> u32 {
        self.executors
            .values()
            .filter(|e| !e.state.is_finished())
            .count() as u32
    }

    /// Executors still to launch.
    fn missing(&self) -> u32 {
        self.wanted
            .saturating_sub(self.completed)
            .saturating_sub(self.live())
    }

    /// Whether an executor reports RUNNING.
    fn any_running(&self) -> bool {
        self.executors
            .values()
            .any(|e| e.state == ExecutorState::Running)
    }

    /// Whether `max` retries (None: unlimited) are spent: nothing more is launched, and the
    /// application FAILS once none of its executors runs.
    fn retries_spent(&self, max: Option<u32>) -> bool {
        max.is_some_and(|m| self.retries > 0 && self.retries >= m)
    }

    /// Resets the retry count once one of its executors has run long enough.
    pub(super) fn check_proven(&mut self, now: u64) {
        if self.retries > 0 && self.executors.values().any(|e| e.proven(now)) {
            self.retries = 0;
            self.relaunch_at = 0;
        }
    }

    /// Counts an executor's end: a failure adds to the retry count and backs off relaunches;
    /// a normal exit is work done and, like a proven executor, resets the count.
    fn count_end(&mut self, state: ExecutorState, now: u64) {
        match state {
            ExecutorState::Exited => {
                self.completed += 1;
                self.retries = 0;
                self.relaunch_at = 0;
            }
            ExecutorState::Failed => {
                self.retries = self.retries.saturating_add(1);
                self.relaunch_at = now.saturating_add(relaunch_backoff_ms(self.retries));
            }
            // Killed on request, or lost with its worker: not the command's fault (as Spark).
            _ => {}
        }
    }

    /// Whether it may have an executor launched at `now`.
    fn may_launch(&self, now: u64, max: Option<u32>) -> bool {
        matches!(self.state, AppState::Waiting | AppState::Running)
            && now >= self.relaunch_at
            && !self.retries_spent(max)
            && self.missing() > 0
    }

    /// WAITING or RUNNING, from whether it has live executors.
    pub(super) fn refresh_state(&mut self) {
        self.peak_cores = self.peak_cores.max(self.live_cores());
        if matches!(self.state, AppState::Waiting | AppState::Running) {
            self.state = if self.live() > 0 {
                AppState::Running
            } else {
                AppState::Waiting
            };
        }
    }

    /// Takes back an executor a worker reports running.
    pub(super) fn adopt(&mut self, worker: &str, e: &ExecutorRef, now: u64) {
        self.executors.insert(
            e.exec_id,
            ExecInfo {
                worker: worker.to_string(),
                cores: e.cores,
                memory_mb: e.memory_mb,
                state: ExecutorState::Running,
                running_since: Some(now),
            },
        );
        self.next_exec = self.next_exec.max(e.exec_id + 1);
        self.refresh_state();
    }
}

impl MasterCore {
    pub(super) fn restore_app(&mut self, stored: StoredApp) {
        let id = stored.id.clone();
        self.app_order.push(id.clone());
        self.apps
            .insert(id, AppInfo::from_stored(stored, AppState::Unknown));
    }

    fn reply_to_app(&mut self, conn: u64, message: String) {
        self.send(conn, FromMaster::RegisterApplicationFailed { message });
    }

    pub(super) fn register_app(&mut self, conn: u64, desc: AppDesc, app_id: Option<String>) {
        if let Some(id) = &app_id {
            self.gone_apps.remove(id);
            self.conns.insert(conn, Peer::App(id.clone()));
        }
        if self.state == RecoveryState::Standby {
            let master_url = self.settings.url.clone();
            self.send(conn, FromMaster::MasterInStandby { master_url });
            return;
        }
        if let Some(id) = app_id.filter(|id| self.apps.get(id).is_some_and(AppInfo::is_active)) {
            // The client came back (a lost connection, a failover): same application.
            if let Some(app) = self.apps.get_mut(&id) {
                if app.state == AppState::Unknown {
                    app.state = AppState::Waiting;
                    app.refresh_state();
                }
            }
            self.registered_app(conn, id);
            return;
        }
        if let Err(why) = self.check_app(&desc) {
            self.reply_to_app(conn, why);
            return;
        }
        let alive_cores: u32 = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .map(|w| w.spec.cores)
            .sum();
        let cores = desc
            .max_cores
            .or(self.settings.default_cores)
            .unwrap_or(alive_cores);
        let wanted = (cores / desc.executor_cores).max(1);
        let id = format!("app-{:x}-{:04}", self.epoch, self.next_app);
        self.next_app += 1;
        let app = AppInfo::from_stored(
            StoredApp {
                id: id.clone(),
                desc,
                wanted,
                completed: 0,
                next_exec: 0,
                submitted_ms: self.wall_ms(),
            },
            AppState::Waiting,
        );
        self.store(Output::PersistApp(app.stored()));
        self.apps.insert(id.clone(), app);
        self.app_order.push(id.clone());
        self.conns.insert(conn, Peer::App(id.clone()));
        self.registered_app(conn, id);
        self.schedule();
    }

    fn registered_app(&mut self, conn: u64, app_id: String) {
        let msg = FromMaster::RegisteredApplication {
            app_id,
            master_url: self.settings.url.clone(),
            epoch: self.epoch,
        };
        self.send_stored(conn, msg);
    }

    /// A clear refusal for an application no worker could ever run.
    fn check_app(&self, d: &AppDesc) -> Result<(), String> {
        if d.command.is_empty() {
            return Err("the application has no executor command".into());
        }
        if d.executor_cores == 0 || d.executor_memory_mb == 0 {
            return Err("executors need at least 1 core and 1 MiB".into());
        }
        if d.max_cores.is_some_and(|m| m < d.executor_cores) {
            return Err(format!(
                "--total-executor-cores {} is less than --executor-cores {}",
                d.max_cores.unwrap_or_default(),
                d.executor_cores
            ));
        }
        let alive: Vec<_> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .collect();
        if !alive.is_empty() {
            let memory = alive.iter().map(|w| w.spec.memory_mb).max().unwrap_or(0);
            if d.executor_memory_mb > memory {
                return Err(format!(
                    "executor memory {} MiB is larger than any worker's ({} MiB)",
                    d.executor_memory_mb, memory
                ));
            }
            let cores = alive.iter().map(|w| w.spec.cores).max().unwrap_or(0);
            if d.executor_cores > cores {
                return Err(format!(
                    "{} executor cores are more than any worker has ({cores})",
                    d.executor_cores
                ));
            }
        }
        Ok(())
    }

    /// Ends an application: kills its live executors, tells its client, forgets its record.
    pub(super) fn finish_app(&mut self, id: &str, state: AppState) {
        let Some(app) = self.apps.get_mut(id) else {
            return;
        };
        if !app.is_active() {
            return;
        }
        app.peak_cores = app.peak_cores.max(app.live_cores());
        app.state = state;
        app.ended_ms = Some(self.settings.wall_origin_ms + self.now);
        let live: Vec<(u32, String)> = app
            .executors
            .iter_mut()
            .filter(|(_, e)| !e.state.is_finished())
            .map(|(n, e)| {
                e.state = ExecutorState::Killed;
                (*n, e.worker.clone())
            })
            .collect();
        for (exec_id, worker) in live {
            if let Some(conn) = self.conn_of(&Peer::Worker(worker)) {
                let msg = FromMaster::KillExecutor {
                    app_id: id.to_string(),
                    exec_id,
                    epoch: self.epoch,
                };
                self.send(conn, msg);
            }
        }
        if let Some(conn) = self.conn_of(&Peer::App(id.to_string())) {
            let msg = FromMaster::ApplicationRemoved {
                state: state.name().to_string(),
            };
            self.send(conn, msg);
        }
        self.store(Output::ForgetApp(id.to_string()));
        self.retain_app(id);
        self.schedule();
    }

    /// Keeps the ended application `id` in memory, dropping the oldest ended ones beyond
    /// spark.deploy.retainedApplications.
    fn retain_app(&mut self, id: &str) {
        let retained = self.settings.retained_apps;
        for old in retire(&mut self.ended_apps, id, retained) {
            self.apps.remove(&old);
            self.app_order.retain(|a| *a != old);
            self.gone_apps.remove(&old);
        }
    }

    /// An executor's state change from its worker (Spark's ExecutorStateChanged).
    pub(super) fn executor_changed(
        &mut self,
        app_id: &str,
        exec_id: u32,
        state: ExecutorState,
        exit_code: Option<i32>,
        stderr: Option<StderrTail>,
    ) {
        let (now, max) = (self.now, self.settings.max_executor_retries);
        let Some(app) = self.apps.get_mut(app_id) else {
            return;
        };
        if app
            .executors
            .get(&exec_id)
            .is_none_or(|e| e.state.is_finished())
        {
            return;
        }
        if state.is_finished() {
            // It may have proved itself since the last tick.
            app.check_proven(now);
        }
        let Some(e) = app.executors.get_mut(&exec_id) else {
            return;
        };
        if state == ExecutorState::Running && e.running_since.is_none() {
            e.running_since = Some(now);
        }
        e.state = state;
        let worker_id = e.worker.clone();
        if state.is_finished() {
            app.count_end(state, now);
        }
        app.refresh_state();
        let done = app.completed >= app.wanted && app.live() == 0;
        let failed = app.retries_spent(max) && !app.any_running();
        let stored = app.stored();
        if let Some(conn) = self.conn_of(&Peer::App(app_id.to_string())) {
            let msg = FromMaster::ExecutorUpdated {
                exec_id,
                worker_id,
                state,
                exit_code,
                stderr,
            };
            self.send(conn, msg);
        }
        if done {
            self.finish_app(app_id, AppState::Finished);
        } else if failed {
            self.finish_app(app_id, AppState::Failed);
        } else {
            if state.is_finished() {
                self.store(Output::PersistApp(stored));
            }
            self.schedule();
        }
    }

    /// A worker is DEAD: its live executors are LOST (and are replaced elsewhere).
    pub(super) fn worker_lost(&mut self, worker: &str) {
        let mut lost = Vec::new();
        for app in self.apps.values_mut() {
            for (n, e) in app.executors.iter_mut() {
                if e.worker == worker && !e.state.is_finished() {
                    e.state = ExecutorState::Lost;
                    lost.push((app.id.clone(), *n));
                }
            }
            app.refresh_state();
        }
        for (app_id, exec_id) in lost {
            if let Some(conn) = self.conn_of(&Peer::App(app_id)) {
                let msg = FromMaster::ExecutorUpdated {
                    exec_id,
                    worker_id: worker.to_string(),
                    state: ExecutorState::Lost,
                    exit_code: None,
                    stderr: None,
                };
                self.send(conn, msg);
            }
        }
    }

    /// Launches executors for waiting applications, first come first served. Workers are
    /// taken by free cores, most first: spread out, one executor per worker per pass; else
    /// each worker is filled before the next.
    pub(super) fn schedule(&mut self) {
        if !self.acting() {
            return;
        }
        self.schedule_drivers();
        let mut free = self.free_table();
        for app_id in self.app_order.clone() {
            let (now, max) = (self.now, self.settings.max_executor_retries);
            let Some(app) = self.apps.get(&app_id).filter(|a| a.may_launch(now, max)) else {
                continue;
            };
            let (cores, memory) = (app.desc.executor_cores, app.desc.executor_memory_mb);
            if !free.may_fit(cores, memory) {
                continue;
            }
            let order = free.by_most_cores();
            let mut place = |core: &mut Self, worker: &str| {
                let placed = free.fits(worker, cores, memory) && core.launch(&app_id, worker);
                if placed {
                    free.take(worker, cores, memory);
                }
                placed
            };
            if self.settings.spread_out {
                // Rounds of one executor per worker, while a round places any.
                loop {
                    let mut placed = false;
                    for worker in &order {
                        placed |= place(self, worker);
                    }
                    if !placed {
                        break;
                    }
                }
            } else {
                for worker in &order {
                    while place(self, worker) {}
                }
            }
        }
    }

    /// Free cores and memory of every ALIVE worker, for one scheduling pass.
    pub(super) fn free_table(&self) -> FreeTable {
        let usage = self.usage();
        let free = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .map(|w| {
                let (cores, memory) = usage.get(w.spec.id.as_str()).copied().unwrap_or((0, 0));
                let left = (
                    w.spec.cores.saturating_sub(cores),
                    w.spec.memory_mb.saturating_sub(memory),
                );
                (w.spec.id.clone(), left)
            })
            .collect();
        FreeTable::new(free)
    }

    /// Launches one executor of `app_id` on `worker` if the application still wants one.
    fn launch(&mut self, app_id: &str, worker: &str) -> bool {
        let Some(conn) = self.conn_of(&Peer::Worker(worker.to_string())) else {
            return false;
        };
        let (epoch, now, max) = (self.epoch, self.now, self.settings.max_executor_retries);
        let Some(app) = self.apps.get_mut(app_id).filter(|a| a.may_launch(now, max)) else {
            return false;
        };
        let exec_id = app.next_exec;
        app.next_exec += 1;
        let (cores, memory_mb) = (app.desc.executor_cores, app.desc.executor_memory_mb);
        app.executors.insert(
            exec_id,
            ExecInfo {
                worker: worker.to_string(),
                cores,
                memory_mb,
                state: ExecutorState::Launching,
                running_since: None,
            },
        );
        app.refresh_state();
        let command = app.desc.command.clone();
        let stored = app.stored();
        self.store(Output::PersistApp(stored));
        let launch = FromMaster::LaunchExecutor {
            app_id: app_id.to_string(),
            exec_id,
            command,
            cores,
            memory_mb,
            epoch,
        };
        self.send(conn, launch);
        if let Some(client) = self.conn_of(&Peer::App(app_id.to_string())) {
            let msg = FromMaster::ExecutorUpdated {
                exec_id,
                worker_id: worker.to_string(),
                state: ExecutorState::Launching,
                exit_code: None,
                stderr: None,
            };
            self.send(client, msg);
        }
        true
    }
}

/// Free cores and memory (MiB) of the ALIVE workers during one scheduling pass, with the
/// largest of each, so that an application nothing can host is passed over at once (a pass
/// costs launches times workers, not applications times workers times executors).
pub(super) struct FreeTable {
    free: HashMap<String, (u32, u64)>,
    most: (u32, u64),
}

impl FreeTable {
    fn new(free: HashMap<String, (u32, u64)>) -> Self {
        let mut table = FreeTable { free, most: (0, 0) };
        table.measure();
        table
    }

    fn measure(&mut self) {
        self.most = self
            .free
            .values()
            .fold((0, 0), |(c, m), &(fc, fm)| (c.max(fc), m.max(fm)));
    }

    /// False when no worker has the cores or no worker has the memory.
    pub(super) fn may_fit(&self, cores: u32, memory: u64) -> bool {
        cores <= self.most.0 && memory <= self.most.1
    }

    pub(super) fn fits(&self, worker: &str, cores: u32, memory: u64) -> bool {
        self.free
            .get(worker)
            .is_some_and(|&(c, m)| c >= cores && m >= memory)
    }

    pub(super) fn take(&mut self, worker: &str, cores: u32, memory: u64) {
        if let Some((c, m)) = self.free.get_mut(worker) {
            *c = c.saturating_sub(cores);
            *m = m.saturating_sub(memory);
        }
        self.measure();
    }

    /// Worker ids by free cores, most first (ties by id).
    fn by_most_cores(&self) -> Vec<String> {
        let mut order: Vec<(&String, u32)> = self.free.iter().map(|(w, f)| (w, f.0)).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        order.into_iter().map(|(w, _)| w.clone()).collect()
    }
}
