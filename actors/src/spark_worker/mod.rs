//! A Spark-style standalone worker: its registration core and the actor that drives it.

pub mod core;

pub use self::core::{Input, MasterIndex, Output, WorkerCore, WorkerSettings};
