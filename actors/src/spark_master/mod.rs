//! A Spark-style standalone master: a pure registry core, leader election and persistence
//! through the ensemble, the actor that drives them, and its web UI.

pub mod actor;
pub mod apps;
pub mod core;
pub mod decommission;
pub mod drivers;
pub mod ensemble_link;
pub mod file_link;
mod held;
pub mod kill_workers;
pub mod rest;
pub mod rest_protocol;
pub mod takeover;
pub mod takeover_io;
pub mod web;

pub use self::actor::{
    AppView, DriverView, ExecView, GetView, MasterActor, MasterView, Recovery, WorkerView,
};
pub use self::apps::{AppInfo, AppState, ExecInfo, StoredApp};
pub use self::core::{
    ConnId, Input, MasterCore, MasterSettings, Output, RecoveryState, WorkerInfo, WorkerState,
};
pub use self::drivers::{DriverInfo, StoredDriver};
pub use self::ensemble_link::EnsembleSettings;
