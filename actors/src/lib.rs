//! Pure protocol cores of ensemble and the actix actors that drive them.
//!
//! Each core is a state machine `step(input, now) -> outputs` with no I/O, clock or randomness;
//! its actor feeds it messages and ticks and carries out what it returns.

pub mod accept;
pub mod admin;
pub mod apache;
pub mod child;
pub mod client_port;
pub mod data_tree;
pub mod election;
pub mod framed;
pub mod metrics;
pub mod not_a_master;
pub mod peer;
pub mod pipeline;
pub mod quorum;
pub mod sessions;
pub mod spark_master;
pub mod spark_ui;
pub mod spark_worker;
pub mod storage;
pub mod tls;
pub mod zab;
pub mod zk_client;
