//! Whole-cluster test support for ensemble.
//!
//! - [`sim`]: a deterministic simulation of several [`QuorumPeer`](ensemble_actors::zab::QuorumPeer)
//!   cores with a simulated clock, network and disk, checking safety invariants after every step.
//! - [`spark`]: ensemble's Spark-style masters and workers as real processes beside an ensemble.

pub mod sim;
pub mod spark;
