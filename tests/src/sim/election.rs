//! Each simulated server's election core beside its Zab core, composed as the election and
//! quorum peer actors compose them: the Zab core's election requests are carried out after
//! its other outputs, the election's decision comes back as `Input::Elected`, notifications
//! and link changes reach the election, and a notification naming a newer config is first
//! offered to the Zab core (`Input::ConfigHeard`), as the election actor asks its quorum peer.

use super::Sim;
use ensemble_actors::election::{Election, ElectionOutput, ElectionRequest};
use ensemble_actors::zab::Input;
use ensemble_messages::{Notification, PeerMessage, Sid};

impl Sim {
    /// A fresh election for server `id` (it learns its members from the first look).
    pub(super) fn new_election(id: Sid) -> Election {
        Election::new(id, Vec::new(), super::timing().election)
    }

    /// Server `id`'s election carries out `requests` of its Zab core, in order.
    pub(super) fn carry_requests(
        &mut self,
        id: Sid,
        requests: Vec<ElectionRequest>,
    ) -> Result<(), String> {
        for request in requests {
            let now = self.now;
            let Some(e) = self.nodes.get_mut(&id).and_then(|n| n.election.as_mut()) else {
                return Ok(());
            };
            let outs = e.request(request, now);
            self.election_outputs(id, outs)?;
        }
        Ok(())
    }

    /// A notification from `from` reached server `id`.
    pub(super) fn notification(
        &mut self,
        id: Sid,
        from: Sid,
        n: Notification,
    ) -> Result<(), String> {
        let newer = self.nodes[&id]
            .election
            .as_ref()
            .is_some_and(|e| n.config_version > e.config_version());
        if newer {
            self.feed(id, Input::ConfigHeard(n.config_version))?;
        }
        let now = self.now;
        let Some(e) = self.nodes.get_mut(&id).and_then(|n| n.election.as_mut()) else {
            return Ok(());
        };
        let outs = e.on_notification(from, n, now);
        self.election_outputs(id, outs)
    }

    /// Server `id`'s election timers.
    pub(super) fn election_tick(&mut self, id: Sid) -> Result<(), String> {
        let now = self.now;
        let Some(e) = self.nodes.get_mut(&id).and_then(|n| n.election.as_mut()) else {
            return Ok(());
        };
        let outs = e.tick(now);
        self.election_outputs(id, outs)
    }

    /// Server `id`'s link to `peer` came up or went down: both cores learn it.
    pub(super) fn link_changed(&mut self, id: Sid, peer: Sid, up: bool) -> Result<(), String> {
        if let Some(e) = self.nodes.get_mut(&id).and_then(|n| n.election.as_mut()) {
            let outs = if up {
                e.peer_connected(peer)
            } else {
                e.peer_disconnected(peer)
            };
            self.election_outputs(id, outs)?;
        }
        let input = if up {
            Input::PeerConnected(peer)
        } else {
            Input::PeerDisconnected(peer)
        };
        self.feed(id, input)
    }

    fn election_outputs(&mut self, id: Sid, outs: Vec<ElectionOutput>) -> Result<(), String> {
        for out in outs {
            match out {
                ElectionOutput::Send { to, notification } => {
                    self.send(id, to, PeerMessage::Election(notification))
                }
                ElectionOutput::Decided { vote, .. } => {
                    let Some(e) = self.nodes.get(&id).and_then(|n| n.election.as_ref()) else {
                        return Ok(());
                    };
                    let decision = e.decision(vote);
                    self.feed(id, Input::Elected(decision))?;
                }
            }
        }
        Ok(())
    }
}
