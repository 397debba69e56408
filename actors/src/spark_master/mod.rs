//! A Spark-style standalone master: a pure registry core, leader election and persistence
//! through the ensemble, and the actor that drives them.

pub mod core;

pub use self::core::{
    ConnId, Input, MasterCore, MasterSettings, Output, RecoveryState, WorkerInfo, WorkerState,
};
