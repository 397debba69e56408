//! A Spark-style standalone worker: its registration core, the actor that drives it, and its
//! web UI.

pub mod actor;
pub mod core;
pub mod logs;
pub mod process;
pub mod web;

pub use self::actor::{Decommission, GetWorkerStatus, KillAll, WorkerActor, WorkerStatus};
pub use self::core::{Input, MasterIndex, Output, WorkerCore, WorkerSettings};
