//! What a node tells the application that runs it: changes of role and failures it cannot
//! recover from. An embedding host subscribes; the `ensemble` binary exits on a failure.

use ensemble_messages::{ServerState, Sid};
use tokio::sync::broadcast;

/// Events of one node, in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The server's role, its service or the leader it follows changed.
    Role {
        /// LOOKING, FOLLOWING, LEADING or OBSERVING.
        state: ServerState,
        /// Whether it serves clients (a leader with a synced quorum, a synced follower).
        serving: bool,
        /// The leader, once one is known.
        leader: Option<Sid>,
    },
    /// The node cannot go on (its storage failed or cannot be reloaded) and has stopped: no
    /// write it did not acknowledge is lost, and it acknowledges nothing more.
    Failed(String),
}

/// Events kept for a subscriber that falls behind; older ones are dropped for it (it is told
/// how many by `RecvError::Lagged`).
const BACKLOG: usize = 64;

/// The sending side, shared by the node's actors.
#[derive(Clone, Debug)]
pub struct NodeEvents(broadcast::Sender<NodeEvent>);

impl Default for NodeEvents {
    fn default() -> Self {
        NodeEvents(broadcast::channel(BACKLOG).0)
    }
}

impl NodeEvents {
    /// A new subscription: it sees the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.0.subscribe()
    }

    /// Publishes an event (to no one if nobody subscribed).
    pub fn publish(&self, event: NodeEvent) {
        let _ = self.0.send(event);
    }
}
