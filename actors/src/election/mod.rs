//! Fast Leader Election: the pure core ([`Election`]). Its driver is the quorum peer actor.

mod core;

pub use self::core::{Election, ElectionOutput, ElectionTiming};
