//! What Spark-style masters and workers send each other, framed by [`crate::codec::PeerCodec`].
//!
//! Names follow Spark's standalone deploy messages. Every message from a master carries its
//! leadership epoch (the zxid of its latch znode); a worker ignores messages from an epoch older
//! than the newest it has seen, so a deposed master cannot direct it.

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

/// Worker to master.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToMaster {
    /// Register (sent to every master until one accepts).
    RegisterWorker(WorkerSpec),
    /// Liveness, every `spark.worker.timeout / 4`, to the active master only.
    Heartbeat {
        /// The worker.
        worker_id: String,
    },
    /// The answer to MasterChanged: the worker follows the new master.
    WorkerSchedulerStateResponse {
        /// The worker.
        worker_id: String,
    },
}

/// Master to worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
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
}

impl ToWorker {
    /// The epoch a master message carries; refusals and standby answers carry none.
    pub fn epoch(&self) -> Option<MasterEpoch> {
        match self {
            ToWorker::RegisteredWorker { epoch, .. }
            | ToWorker::MasterChanged { epoch, .. }
            | ToWorker::ReconnectWorker { epoch, .. } => Some(*epoch),
            ToWorker::RegisterWorkerFailed { .. } | ToWorker::MasterInStandby { .. } => None,
        }
    }
}
