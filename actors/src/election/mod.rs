//! Fast Leader Election: the pure core ([`Election`]), the requests the Zab core makes of it
//! ([`ElectionRequest`]) and its driver ([`ElectionActor`]).

mod actor;
mod core;
mod requests;

pub use self::actor::{
    ConfigHeard, Elected, ElectionActor, ElectionSettings, FailElection, GetElectionView,
    QuorumPeerHandle, Request,
};
pub use self::core::{Election, ElectionOutput, ElectionTiming};
pub use self::requests::{Decision, ElectionRequest, ElectionView, Look, Members};
