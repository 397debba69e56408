//! The Zab core with the election core beside it, composed in one thread as their actors
//! compose them through messages (for unit tests and fuzz targets that drive one server).
//! Notifications and link changes reach the election, the Zab core's election requests are
//! carried out after its other outputs, the election's decision comes back as
//! [`Input::Elected`], and its notifications come out as peer sends.

use super::{Input, Output, QuorumPeer};
use crate::election::{Election, ElectionOutput};
use ensemble_messages::PeerMessage;

/// One server's two cores.
pub struct ComposedPeer {
    zab: QuorumPeer,
    election: Election,
}

impl ComposedPeer {
    /// `zab` with an election of its own (it learns its members from the first look).
    pub fn of(zab: QuorumPeer) -> Self {
        let election = Election::new(zab.me, Vec::new(), zab.timing.election.clone());
        ComposedPeer { zab, election }
    }

    /// Starts looking for a leader.
    pub fn start(&mut self, now: u64) -> Vec<Output> {
        let outs = self.zab.start(now);
        self.compose(outs, now)
    }

    /// Feeds one input to the core it concerns; the outputs of both, in order.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        match input {
            Input::Message {
                from,
                msg: PeerMessage::Election(n),
            } => {
                let mut outs = Vec::new();
                if n.config_version > self.election.config_version() {
                    outs = self.step_zab(Input::ConfigHeard(n.config_version), now);
                }
                let elected = self.election.on_notification(from, n, now);
                outs.extend(self.elected(elected, now));
                outs
            }
            Input::Tick => {
                let elected = self.election.tick(now);
                let mut outs = self.elected(elected, now);
                outs.extend(self.step_zab(Input::Tick, now));
                outs
            }
            Input::PeerConnected(sid) => {
                let elected = self.election.peer_connected(sid);
                let mut outs = self.elected(elected, now);
                outs.extend(self.step_zab(input, now));
                outs
            }
            Input::PeerDisconnected(sid) => {
                let elected = self.election.peer_disconnected(sid);
                let mut outs = self.elected(elected, now);
                outs.extend(self.step_zab(input, now));
                outs
            }
            input => self.step_zab(input, now),
        }
    }

    /// The election core.
    pub fn election(&self) -> &Election {
        &self.election
    }

    fn step_zab(&mut self, input: Input, now: u64) -> Vec<Output> {
        let outs = self.zab.step(input, now);
        self.compose(outs, now)
    }

    /// Keeps the Zab core's outputs but its election requests, which are carried out after.
    fn compose(&mut self, outs: Vec<Output>, now: u64) -> Vec<Output> {
        let (requests, mut kept): (Vec<Output>, Vec<Output>) = outs
            .into_iter()
            .partition(|o| matches!(o, Output::Election(_)));
        for r in requests {
            if let Output::Election(request) = r {
                let elected = self.election.request(request, now);
                kept.extend(self.elected(elected, now));
            }
        }
        kept
    }

    fn elected(&mut self, outs: Vec<ElectionOutput>, now: u64) -> Vec<Output> {
        let mut composed = Vec::new();
        for o in outs {
            match o {
                ElectionOutput::Send { to, notification } => composed.push(Output::Send {
                    to,
                    msg: PeerMessage::Election(notification),
                }),
                ElectionOutput::Decided { vote, .. } => {
                    let decision = self.election.decision(vote);
                    composed.extend(self.step_zab(Input::Elected(decision), now));
                }
            }
        }
        composed
    }
}

impl std::ops::Deref for ComposedPeer {
    type Target = QuorumPeer;

    fn deref(&self) -> &QuorumPeer {
        &self.zab
    }
}

impl std::ops::DerefMut for ComposedPeer {
    fn deref_mut(&mut self) -> &mut QuorumPeer {
        &mut self.zab
    }
}
