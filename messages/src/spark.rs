//! What Spark-style masters, workers and application clients send each other, framed by
//! [`crate::codec::PeerCodec`].
//!
//! Names follow Spark's standalone deploy messages. Every message from a master carries its
//! leadership epoch (the zxid of its latch znode); a worker ignores messages from an epoch older
//! than the newest it has seen, so a deposed master cannot direct it.

use crate::zk::SessionId;
use serde::{Deserialize, Serialize};

/// A master's leadership epoch: the zxid of its election latch znode (0 while never elected).
pub type MasterEpoch = i64;

/// What a worker offers, as it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// `worker-<yyyyMMddHHmmss>-<host>-<port>`.
    pub id: String,
    /// Address the worker is reached at.
    pub host: String,
    /// Its web UI port (workers dial their masters; they listen only for the UI).
    pub port: u16,
    /// Cores it offers.
    pub cores: u32,
    /// Memory it offers, in MiB.
    pub memory_mb: u64,
    /// Its web UI, `http://host:port`.
    pub webui: String,
}

/// An application as submitted (client deploy mode: the submitter is the driver).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDesc {
    /// Its name.
    pub name: String,
    /// The executor command and its arguments; workers run it with APP_ID, EXECUTOR_ID,
    /// EXECUTOR_CORES and EXECUTOR_MEMORY_MB in its environment.
    pub command: Vec<String>,
    /// spark.cores.max (`--total-executor-cores`); None: every core alive at submission.
    pub max_cores: Option<u32>,
    /// spark.executor.cores.
    pub executor_cores: u32,
    /// spark.executor.memory, in MiB.
    pub executor_memory_mb: u64,
    /// Who submitted it (Spark's `user`: SPARK_USER, else the login name).
    #[serde(default)]
    pub user: String,
}

/// Spark's ExecutorState.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutorState {
    /// Being started by its worker.
    Launching,
    /// Its process runs.
    Running,
    /// Killed on request.
    Killed,
    /// Its process failed (a non-zero exit, or it could not start).
    Failed,
    /// Its worker was lost.
    Lost,
    /// Its process exited with status 0: its work is done.
    Exited,
    /// Its worker is being decommissioned: the application gets a replacement elsewhere, and
    /// the process runs on to its end.
    Decommissioned,
}

impl ExecutorState {
    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorState::Launching => "LAUNCHING",
            ExecutorState::Running => "RUNNING",
            ExecutorState::Killed => "KILLED",
            ExecutorState::Failed => "FAILED",
            ExecutorState::Lost => "LOST",
            ExecutorState::Exited => "EXITED",
            ExecutorState::Decommissioned => "DECOMMISSIONED",
        }
    }

    /// Whether the executor is over.
    pub fn is_finished(self) -> bool {
        !matches!(self, ExecutorState::Launching | ExecutorState::Running)
    }
}

/// A driver submitted in cluster deploy mode: a command a worker runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverDesc {
    /// The command and its arguments; the worker runs it with DRIVER_ID in its environment.
    pub command: Vec<String>,
    /// spark.driver.cores.
    pub cores: u32,
    /// spark.driver.memory, in MiB.
    pub memory_mb: u64,
    /// Relaunch it when it fails or its worker is lost.
    pub supervise: bool,
}

/// Spark's DriverState.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverState {
    /// Waiting for a worker.
    Submitted,
    /// Launched on a worker.
    Running,
    /// Exited with status 0.
    Finished,
    /// Being relaunched (supervised).
    Relaunching,
    /// Persisted by an earlier master, not heard from since this one was elected.
    Unknown,
    /// Killed on request.
    Killed,
    /// Exited with a non-zero status.
    Failed,
    /// Could not run (it failed to start, or its worker was lost and it is not supervised).
    Error,
}

impl DriverState {
    /// Spark's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            DriverState::Submitted => "SUBMITTED",
            DriverState::Running => "RUNNING",
            DriverState::Finished => "FINISHED",
            DriverState::Relaunching => "RELAUNCHING",
            DriverState::Unknown => "UNKNOWN",
            DriverState::Killed => "KILLED",
            DriverState::Failed => "FAILED",
            DriverState::Error => "ERROR",
        }
    }

    /// Whether the driver is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            DriverState::Finished | DriverState::Killed | DriverState::Failed | DriverState::Error
        )
    }
}

/// A driver a worker runs, as it reports it to a new master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRef {
    /// Its id.
    pub driver_id: String,
    /// Cores it holds.
    pub cores: u32,
    /// Memory it holds, MiB.
    pub memory_mb: u64,
}

/// An executor a worker runs, as it reports it to a new master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorRef {
    /// Its application.
    pub app_id: String,
    /// Its number within the application.
    pub exec_id: u32,
    /// Cores it holds.
    pub cores: u32,
    /// Memory it holds, MiB.
    pub memory_mb: u64,
}

/// The end of a failed process's stderr, as its worker read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StderrTail {
    /// The file, on the worker's host.
    pub path: String,
    /// Its last lines (or why the process could not start).
    pub tail: String,
}

/// Worker or application client to master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToMaster {
    /// Register (sent to every master until one accepts).
    RegisterWorker(WorkerSpec),
    /// Liveness, every `spark.worker.timeout / 4`, to the active master only.
    Heartbeat {
        /// The worker.
        worker_id: String,
    },
    /// The answer to MasterChanged: the worker follows the new master, and says what it runs.
    WorkerSchedulerStateResponse {
        /// The worker.
        worker_id: String,
        /// Its running executors.
        executors: Vec<ExecutorRef>,
        /// Its running drivers.
        drivers: Vec<DriverRef>,
    },
    /// A driver changed state on its worker.
    DriverStateChanged {
        /// The driver.
        driver_id: String,
        /// The new state.
        state: DriverState,
        /// The exit status, once it exited.
        exit_code: Option<i32>,
    },
    /// Submit a driver (cluster deploy mode).
    RequestSubmitDriver(DriverDesc),
    /// An executor changed state on its worker.
    ExecutorStateChanged {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
        /// The new state.
        state: ExecutorState,
        /// The exit status, once it exited.
        exit_code: Option<i32>,
        /// Its stderr, when it FAILED.
        stderr: Option<StderrTail>,
    },
    /// An application client registers (sent to every master until one accepts).
    RegisterApplication {
        /// What to run.
        desc: AppDesc,
        /// Its id, when registering again after a lost connection.
        app_id: Option<String>,
    },
    /// The client ends its application; its executors are killed.
    UnregisterApplication {
        /// The application.
        app_id: String,
    },
    /// The client's answer to MasterChanged.
    MasterChangeAcknowledged {
        /// The application.
        app_id: String,
    },
    /// The worker is being decommissioned (SIGPWR with spark.decommission.enabled): no new
    /// executors or drivers for it (Spark's WorkerDecommissioning).
    WorkerDecommissioning {
        /// The worker.
        worker_id: String,
    },
    /// Another master asks which ensemble session this master's process holds (an ensemble
    /// addition, for the session take-over of a dead ALIVE master).
    Identify,
}

/// Master to worker or application client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromMaster {
    /// The ALIVE master accepted the registration (`duplicate`: it already knew the worker).
    RegisteredWorker {
        /// `spark://host:port` of the master.
        master_url: String,
        /// The master's web UI.
        webui: String,
        /// Its leadership epoch.
        epoch: MasterEpoch,
        /// Whether the worker was already registered.
        duplicate: bool,
        /// Where it elects: `<ensemble servers><dir>`, or `none` in recovery mode NONE.
        election: String,
    },
    /// The registration was refused.
    RegisterWorkerFailed {
        /// Why.
        message: String,
    },
    /// A STANDBY master does not register workers.
    MasterInStandby {
        /// `spark://host:port` of the master.
        master_url: String,
    },
    /// A newly elected master takes over; the worker answers WorkerSchedulerStateResponse.
    MasterChanged {
        /// `spark://host:port` of the new master.
        master_url: String,
        /// Its web UI.
        webui: String,
        /// Its leadership epoch.
        epoch: MasterEpoch,
    },
    /// A heartbeat reached a master that does not know the worker (or marked it DEAD): register
    /// again.
    ReconnectWorker {
        /// `spark://host:port` of the master.
        master_url: String,
        /// Its leadership epoch.
        epoch: MasterEpoch,
    },
    /// Start an executor.
    LaunchExecutor {
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
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// Kill an executor.
    KillExecutor {
        /// Its application.
        app_id: String,
        /// Its number.
        exec_id: u32,
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// The ALIVE master accepted an application.
    RegisteredApplication {
        /// Its id, `app-<yyyyMMddHHmmss>-<nnnn>`.
        app_id: String,
        /// `spark://host:port` of the master.
        master_url: String,
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// The application was refused.
    RegisterApplicationFailed {
        /// Why.
        message: String,
    },
    /// One of the application's executors changed state.
    ExecutorUpdated {
        /// Its number.
        exec_id: u32,
        /// Its worker.
        worker_id: String,
        /// The new state.
        state: ExecutorState,
        /// The exit status, once it exited.
        exit_code: Option<i32>,
        /// Its stderr, when it FAILED.
        stderr: Option<StderrTail>,
    },
    /// The application ended (FINISHED, FAILED or KILLED).
    ApplicationRemoved {
        /// Spark's application state name.
        state: String,
    },
    /// Start a driver.
    LaunchDriver {
        /// Its id.
        driver_id: String,
        /// What to run.
        desc: DriverDesc,
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// Kill a driver.
    KillDriver {
        /// Its id.
        driver_id: String,
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// The answer to RequestSubmitDriver.
    SubmitDriverResponse {
        /// The new driver's id, or None when refused.
        driver_id: Option<String>,
        /// What happened.
        message: String,
    },
    /// The master decommissioned the worker (its kill-workers endpoint): it launches no more
    /// executors, and tells any later master so.
    DecommissionWorker {
        /// The master's epoch.
        epoch: MasterEpoch,
    },
    /// The answer to Identify: the ensemble session this master's process holds (none yet:
    /// [`SessionId::NONE`]) and its epoch (0 unless it leads).
    Identity {
        /// The session id.
        session_id: SessionId,
        /// The master's epoch.
        epoch: MasterEpoch,
    },
}

impl FromMaster {
    /// The epoch a master message carries; refusals and standby answers carry none.
    pub fn epoch(&self) -> Option<MasterEpoch> {
        match self {
            FromMaster::RegisteredWorker { epoch, .. }
            | FromMaster::MasterChanged { epoch, .. }
            | FromMaster::ReconnectWorker { epoch, .. }
            | FromMaster::LaunchExecutor { epoch, .. }
            | FromMaster::KillExecutor { epoch, .. }
            | FromMaster::LaunchDriver { epoch, .. }
            | FromMaster::KillDriver { epoch, .. }
            | FromMaster::DecommissionWorker { epoch }
            | FromMaster::RegisteredApplication { epoch, .. } => Some(*epoch),
            FromMaster::RegisterWorkerFailed { .. }
            | FromMaster::MasterInStandby { .. }
            | FromMaster::RegisterApplicationFailed { .. }
            | FromMaster::ExecutorUpdated { .. }
            | FromMaster::ApplicationRemoved { .. }
            | FromMaster::Identity { .. }
            | FromMaster::SubmitDriverResponse { .. } => None,
        }
    }
}
