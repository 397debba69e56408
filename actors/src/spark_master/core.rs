//! The master's registry of workers and its recovery states, as a pure state machine: inputs
//! are election changes, worker messages and ticks; outputs are messages to send and records to
//! persist or forget. No sockets, clocks or ZooKeeper calls here.

use ensemble_messages::spark::{MasterEpoch, ToMaster, ToWorker, WorkerSpec};
use std::collections::BTreeMap;

/// A connection from a worker, numbered by the actor.
pub type ConnId = u64;

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
}

impl WorkerState {
    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Alive => "ALIVE",
            WorkerState::Unknown => "UNKNOWN",
            WorkerState::Dead => "DEAD",
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
}

/// An input to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// This master won the election at `epoch`; `stored` are the persisted workers.
    Elected {
        /// The latch znode's zxid.
        epoch: MasterEpoch,
        /// Workers persisted by earlier masters.
        stored: Vec<WorkerSpec>,
    },
    /// This master lost its session or its latch: back to STANDBY.
    Deposed,
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
        msg: ToWorker,
    },
    /// Persist a worker's record.
    PersistWorker(WorkerSpec),
    /// Delete a worker's record.
    ForgetWorker(String),
    /// Recovery finished (for the log: how long it took, in ms).
    RecoveryComplete {
        /// Duration since the election.
        took_ms: u64,
    },
}

/// The master's registry and state.
pub struct MasterCore {
    settings: MasterSettings,
    state: RecoveryState,
    epoch: MasterEpoch,
    workers: BTreeMap<String, WorkerInfo>,
    /// Which worker each connection speaks for.
    conns: BTreeMap<ConnId, String>,
    elected_at: u64,
    out: Vec<Output>,
}

impl MasterCore {
    /// A STANDBY master.
    pub fn new(settings: MasterSettings) -> Self {
        MasterCore {
            settings,
            state: RecoveryState::Standby,
            epoch: 0,
            workers: BTreeMap::new(),
            conns: BTreeMap::new(),
            elected_at: 0,
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

    /// Workers, by id.
    pub fn workers(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.values()
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &MasterSettings {
        &self.settings
    }

    /// Feeds one input at `now` (ms) and returns what to do.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        match input {
            Input::Elected { epoch, stored } => self.elected(epoch, stored, now),
            Input::Deposed => self.deposed(),
            Input::Message { conn, msg } => self.message(conn, msg, now),
            Input::Disconnected(conn) => {
                self.conns.remove(&conn);
            }
            Input::Tick => self.tick(now),
        }
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, conn: ConnId, msg: ToWorker) {
        self.out.push(Output::Send { conn, msg });
    }

    fn conn_of(&self, worker: &str) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|(_, w)| w.as_str() == worker)
            .map(|(c, _)| *c)
    }

    fn elected(&mut self, epoch: MasterEpoch, stored: Vec<WorkerSpec>, now: u64) {
        self.epoch = epoch;
        self.elected_at = now;
        self.workers.clear();
        if stored.is_empty() {
            self.state = RecoveryState::Alive;
            return;
        }
        self.state = RecoveryState::Recovering;
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
            if let Some(conn) = self.conn_of(&id) {
                let msg = self.master_changed();
                self.send(conn, msg);
            }
        }
    }

    fn master_changed(&self) -> ToWorker {
        ToWorker::MasterChanged {
            master_url: self.settings.url.clone(),
            webui: self.settings.webui.clone(),
            epoch: self.epoch,
        }
    }

    fn deposed(&mut self) {
        self.state = RecoveryState::Standby;
        self.epoch = 0;
        self.workers.clear();
    }

    fn message(&mut self, conn: ConnId, msg: ToMaster, now: u64) {
        match msg {
            ToMaster::RegisterWorker(spec) => self.register(conn, spec, now),
            ToMaster::Heartbeat { worker_id } => {
                self.conns.insert(conn, worker_id.clone());
                if self.state == RecoveryState::Standby {
                    return;
                }
                match self.workers.get_mut(&worker_id) {
                    Some(w) if w.state == WorkerState::Alive => w.last_heartbeat = now,
                    _ => {
                        // Unknown here, or given up on: it must register again (Spark's
                        // ReconnectWorker), and keeps what it runs.
                        let msg = ToWorker::ReconnectWorker {
                            master_url: self.settings.url.clone(),
                            epoch: self.epoch,
                        };
                        self.send(conn, msg);
                    }
                }
            }
            ToMaster::WorkerSchedulerStateResponse { worker_id } => {
                self.conns.insert(conn, worker_id.clone());
                if let Some(w) = self.workers.get_mut(&worker_id) {
                    w.state = WorkerState::Alive;
                    w.last_heartbeat = now;
                    w.dead_since = None;
                }
                self.maybe_complete_recovery(now);
            }
        }
    }

    fn register(&mut self, conn: ConnId, spec: WorkerSpec, now: u64) {
        self.conns.insert(conn, spec.id.clone());
        if self.state == RecoveryState::Standby {
            let msg = ToWorker::MasterInStandby {
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
            self.send(conn, ToWorker::RegisterWorkerFailed { message });
            return;
        }
        // A known worker registering again (after a lost connection, or during a failover) is
        // accepted as the same worker rather than refused as a duplicate (SPARK-4592).
        let duplicate = self
            .workers
            .get(&spec.id)
            .is_some_and(|w| w.state != WorkerState::Dead);
        let changed = self.workers.get(&spec.id).is_none_or(|w| w.spec != spec);
        if changed || !duplicate {
            self.out.push(Output::PersistWorker(spec.clone()));
        }
        self.workers.insert(
            spec.id.clone(),
            WorkerInfo {
                spec,
                state: WorkerState::Alive,
                last_heartbeat: now,
                dead_since: None,
            },
        );
        let msg = ToWorker::RegisteredWorker {
            master_url: self.settings.url.clone(),
            webui: self.settings.webui.clone(),
            epoch: self.epoch,
            duplicate,
        };
        self.send(conn, msg);
        self.maybe_complete_recovery(now);
    }

    fn maybe_complete_recovery(&mut self, now: u64) {
        let waiting = self
            .workers
            .values()
            .any(|w| w.state == WorkerState::Unknown);
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
        self.state = RecoveryState::Alive;
        self.out.push(Output::RecoveryComplete {
            took_ms: now.saturating_sub(self.elected_at),
        });
    }

    fn mark_dead(&mut self, id: &str, now: u64) {
        if let Some(w) = self.workers.get_mut(id) {
            w.state = WorkerState::Dead;
            w.dead_since = Some(now);
            self.out.push(Output::ForgetWorker(id.to_string()));
        }
    }

    fn tick(&mut self, now: u64) {
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
                    .filter(|w| {
                        w.state == WorkerState::Alive
                            && now.saturating_sub(w.last_heartbeat) > timeout
                    })
                    .map(|w| w.spec.id.clone())
                    .collect();
                for id in silent {
                    self.mark_dead(&id, now);
                }
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
