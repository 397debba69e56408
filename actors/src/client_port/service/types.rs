//! What the request pipeline core is told and what it asks for: the documented inputs and
//! outputs of [`ClientService::step`](super::ClientService::step).

use crate::client_port::protocol::{ClientConnect, ClientPacket, ClientSink};
use crate::data_tree::{Applied, OpResult, SessionPassword, TreeTxn};
use ensemble_messages::jute::ConnectRequest;
use ensemble_messages::zk::{ConnectionId, SessionId};
use ensemble_messages::{Txn, Zxid};
use std::time::Instant;

/// A connection's handshake, without the connection's sink (the host keeps sinks; the core
/// only names connections).
#[derive(Clone, Debug)]
pub struct Hello {
    /// Connection id, unique on this server.
    pub conn: ConnectionId,
    /// The handshake record.
    pub request: ConnectRequest,
    /// The client asked for read-only service.
    pub read_only: bool,
    /// The client's IP address, for `ip` ACLs.
    pub ip: String,
    /// Identities the transport proved, as `(scheme, id)`.
    pub identities: Vec<(String, String)>,
}

impl ClientConnect {
    /// The handshake and the sink its replies go to.
    pub fn split(self) -> (Hello, ClientSink) {
        let hello = Hello {
            conn: self.conn,
            request: self.request,
            read_only: self.read_only,
            ip: self.ip,
            identities: self.identities,
        };
        (hello, self.sink)
    }
}

/// When a step runs: the monotonic instant (request latencies) and the wall clock in ms (the
/// time a txn carries). The core reads no clock of its own.
#[derive(Clone, Copy, Debug)]
pub struct StepClock {
    /// Monotonic now.
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
}

/// One input of the request pipeline.
pub enum ServiceInput<'a> {
    /// A connection's handshake. `password` is what a new session gets: the host draws it,
    /// as the core has no randomness.
    Connect {
        /// The handshake.
        hello: Hello,
        /// 16 random bytes.
        password: SessionPassword,
    },
    /// A request frame of a connection.
    Packet(ClientPacket),
    /// The connection closed (its session lives on until it expires or is closed).
    Gone(ConnectionId),
    /// This server joined (`true`) or left the serving quorum.
    Serving(bool),
    /// A committed txn was applied to the tree; `own` when this server originated it.
    Applied {
        /// The txn.
        txn: &'a Txn,
        /// What applying it did.
        applied: &'a Applied,
        /// Whether it came from this server.
        own: bool,
    },
    /// A txn this service proposed will not be applied here: it failed.
    Failed {
        /// The request id of its [`ServiceOutput::Propose`].
        request_id: u64,
        /// Why.
        why: String,
    },
}

/// What the host carries out after a step, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum ServiceOutput {
    /// A frame that answers no request: a handshake reply or a watch notification.
    Push {
        /// To this connection.
        conn: ConnectionId,
        /// The frame's payload.
        frame: Vec<u8>,
    },
    /// The reply to one of the connection's requests, in its order.
    Reply {
        /// To this connection.
        conn: ConnectionId,
        /// The frame's payload.
        frame: Vec<u8>,
    },
    /// Closes the connection after what was sent to it before.
    Close(ConnectionId),
    /// The connection's thread may answer reads of `session` itself, with these identities.
    ShareSession {
        /// The connection.
        conn: ConnectionId,
        /// Its session, now settled on this server.
        session: SessionId,
        /// Its identities.
        auth: Vec<(String, String)>,
    },
    /// The connection's identities grew (an `addauth`).
    ShareAuth {
        /// The connection.
        conn: ConnectionId,
        /// All its identities.
        auth: Vec<(String, String)>,
    },
    /// Proposes a txn. Its apply (`ServiceInput::Applied` with this request id) or its failure
    /// (`ServiceInput::Failed`) answers it.
    Propose {
        /// Unique on this server.
        request_id: u64,
        /// The txn.
        txn: TreeTxn,
    },
}

/// The outcome of a txn the service proposed, as the core resolves it.
pub(super) type Outcome = Result<(Zxid, OpResult), String>;
