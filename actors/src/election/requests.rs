//! What the Zab core tells the election and what the election answers: the typed seam between
//! the two cores (and between their actors).

use ensemble_messages::{Sid, Vote, Zxid};

/// The membership an election counts with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Version of the config (the zxid of the reconfig that made it, 0 for the configured one).
    pub version: u64,
    /// Voting servers, sorted.
    pub voters: Vec<Sid>,
    /// Observers, sorted.
    pub observers: Vec<Sid>,
}

/// A request to look for a leader, with this server's vote material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Look {
    /// Names this request; the decision that answers it carries it back, so that the Zab core
    /// can tell a decision for an earlier request (one it no longer waits for) apart.
    pub ticket: u64,
    /// This server's current epoch.
    pub epoch: u32,
    /// This server's last logged zxid.
    pub last_zxid: Zxid,
    /// The membership to count with.
    pub members: Members,
}

/// What the Zab core asks of the election, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionRequest {
    /// Start a new round: the server is looking for a leader.
    Look(Look),
    /// Count with these members from now on (a reconfig took effect).
    Members(Members),
    /// The decided leader established this epoch: later notifications carry it.
    Established(u32),
}

/// Where the Zab core stands, for an election that lost its state (a restarted election
/// actor) to resume from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionView {
    /// The server looks for a leader: start a round for this request.
    Looking(Look),
    /// The server follows, observes or leads by this vote: answer notifications with it.
    Decided {
        /// The ticket of the look it decided.
        ticket: u64,
        /// The vote decided (its peer epoch the established one once established).
        vote: Vote,
        /// The membership to count with.
        members: Members,
    },
}

/// The decision that answers a [`Look`]: feed it to the Zab core as
/// [`Input::Elected`](crate::zab::Input::Elected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The ticket of the [`Look`] it answers.
    pub ticket: u64,
    /// The decided vote: `vote.leader` leads.
    pub vote: Vote,
    /// The election round it was decided in.
    pub round: u64,
}
