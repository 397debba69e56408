//! Where the links' events go: election notifications to the election actor, every other
//! message to the quorum peer actor, and a link's ups and downs to both.

use super::link::PeerEvent;
use actix::prelude::*;
use ensemble_messages::PeerMessage;

/// The receivers of a server's link events.
#[derive(Clone)]
pub struct PeerSinks {
    quorum: Recipient<PeerEvent>,
    election: Recipient<PeerEvent>,
}

impl PeerSinks {
    /// Events for the quorum peer actor (`quorum`) and the election actor (`election`).
    pub fn new(quorum: Recipient<PeerEvent>, election: Recipient<PeerEvent>) -> Self {
        PeerSinks { quorum, election }
    }

    /// Sends `event` to whichever actor it concerns.
    pub fn do_send(&self, event: PeerEvent) {
        match &event {
            PeerEvent::Message(_, PeerMessage::Election(_)) => self.election.do_send(event),
            PeerEvent::Message(..) => self.quorum.do_send(event),
            PeerEvent::Connected(_) | PeerEvent::Disconnected(_) => {
                self.election.do_send(event.clone());
                self.quorum.do_send(event);
            }
        }
    }
}
