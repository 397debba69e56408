//! Applications, their executors and scheduling, as part of the master core: FIFO over
//! waiting applications, spread out over workers or consolidated, with core and memory
//! accounting that cannot go negative (it is recomputed from live executors, never kept as a
//! running sum).

use super::core::{MasterCore, Output, Peer, RecoveryState, WorkerState};
use ensemble_messages::spark::{AppDesc, ExecutorRef, ExecutorState, FromMaster};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failed executors in a row, with none running, after which an application FAILS
/// (spark.deploy.maxExecutorRetries).
pub const MAX_EXECUTOR_RETRIES: u32 = 10;

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
    failures_in_row: u32,
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
            failures_in_row: 0,
        }
    }

    fn stored(&self) -> StoredApp {
        StoredApp {
            id: self.id.clone(),
            desc: self.desc.clone(),
            wanted: self.wanted,
            completed: self.completed,
            next_exec: self.next_exec,
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

    /// WAITING or RUNNING, from whether it has live executors.
    pub(super) fn refresh_state(&mut self) {
        if matches!(self.state, AppState::Waiting | AppState::Running) {
            self.state = if self.live() > 0 {
                AppState::Running
            } else {
                AppState::Waiting
            };
        }
    }

    /// Takes back an executor a worker reports running.
    pub(super) fn adopt(&mut self, worker: &str, e: &ExecutorRef) {
        self.executors.insert(
            e.exec_id,
            ExecInfo {
                worker: worker.to_string(),
                cores: e.cores,
                memory_mb: e.memory_mb,
                state: ExecutorState::Running,
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
            },
            AppState::Waiting,
        );
        self.out.push(Output::PersistApp(app.stored()));
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
        self.send(conn, msg);
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
        app.state = state;
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
        self.out.push(Output::ForgetApp(id.to_string()));
        self.schedule();
    }

    pub(super) fn executor_changed(
        &mut self,
        app_id: &str,
        exec_id: u32,
        state: ExecutorState,
        exit_code: Option<i32>,
    ) {
        let Some(app) = self.apps.get_mut(app_id) else {
            return;
        };
        let Some(e) = app.executors.get_mut(&exec_id) else {
            return;
        };
        if e.state.is_finished() {
            return;
        }
        e.state = state;
        let worker_id = e.worker.clone();
        if state == ExecutorState::Exited {
            app.completed += 1;
            app.failures_in_row = 0;
        } else if state.is_finished() {
            app.failures_in_row += 1;
        }
        app.refresh_state();
        let (done, failed) = (
            app.completed >= app.wanted && app.live() == 0,
            app.failures_in_row >= MAX_EXECUTOR_RETRIES && app.live() == 0,
        );
        let stored = app.stored();
        if let Some(conn) = self.conn_of(&Peer::App(app_id.to_string())) {
            let msg = FromMaster::ExecutorUpdated {
                exec_id,
                worker_id,
                state,
                exit_code,
            };
            self.send(conn, msg);
        }
        if done {
            self.finish_app(app_id, AppState::Finished);
        } else if failed {
            self.finish_app(app_id, AppState::Failed);
        } else {
            if state.is_finished() {
                self.out.push(Output::PersistApp(stored));
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
                };
                self.send(conn, msg);
            }
        }
    }

    /// Launches executors for waiting applications, first come first served. Workers are
    /// taken by free cores, most first: spread out, one executor per worker per pass; else
    /// each worker is filled before the next.
    pub(super) fn schedule(&mut self) {
        if self.state != RecoveryState::Alive {
            return;
        }
        self.schedule_drivers();
        for app_id in self.app_order.clone() {
            let Some(app) = self
                .apps
                .get(&app_id)
                .filter(|a| matches!(a.state, AppState::Waiting | AppState::Running))
            else {
                continue;
            };
            let (cores, memory) = (app.desc.executor_cores, app.desc.executor_memory_mb);
            let mut order: Vec<(String, u32)> = self
                .workers
                .values()
                .filter(|w| w.state == WorkerState::Alive)
                .map(|w| (w.spec.id.clone(), self.free(&w.spec.id).0))
                .collect();
            order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            if self.settings.spread_out {
                loop {
                    let mut launched = false;
                    for (worker, _) in &order {
                        if self.fits(worker, cores, memory) && self.launch(&app_id, worker) {
                            launched = true;
                        }
                    }
                    if !launched {
                        break;
                    }
                }
            } else {
                for (worker, _) in &order {
                    while self.fits(worker, cores, memory) && self.launch(&app_id, worker) {}
                }
            }
        }
    }

    /// Free cores and memory (MiB) of a worker.
    fn free(&self, worker: &str) -> (u32, u64) {
        let Some(w) = self.workers.get(worker) else {
            return (0, 0);
        };
        let (cores, memory) = self.used(worker);
        (
            w.spec.cores.saturating_sub(cores),
            w.spec.memory_mb.saturating_sub(memory),
        )
    }

    pub(super) fn fits(&self, worker: &str, cores: u32, memory: u64) -> bool {
        let (free_cores, free_memory) = self.free(worker);
        free_cores >= cores && free_memory >= memory
    }

    /// Launches one executor of `app_id` on `worker` if the application still wants one.
    fn launch(&mut self, app_id: &str, worker: &str) -> bool {
        let Some(conn) = self.conn_of(&Peer::Worker(worker.to_string())) else {
            return false;
        };
        let epoch = self.epoch;
        let Some(app) = self.apps.get_mut(app_id).filter(|a| a.missing() > 0) else {
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
            },
        );
        app.refresh_state();
        let command = app.desc.command.clone();
        let stored = app.stored();
        self.out.push(Output::PersistApp(stored));
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
            };
            self.send(client, msg);
        }
        true
    }
}
