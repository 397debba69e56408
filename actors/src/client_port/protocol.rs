//! What client connections and the quorum peer actor tell each other.

use actix::Message;
use ensemble_messages::jute::ConnectRequest;
use tokio::sync::mpsc::UnboundedSender;

/// Sent to a client connection, in order.
#[derive(Debug)]
pub enum ToClient {
    /// A whole frame payload (the connection adds the length prefix).
    Frame(Vec<u8>),
    /// Close the connection after what was sent before.
    Close,
}

/// Where a connection's outgoing frames go.
pub type ClientSink = UnboundedSender<ToClient>;

/// A new connection's handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientConnect {
    /// Connection id, unique on this server.
    pub conn: u64,
    /// The handshake record.
    pub request: ConnectRequest,
    /// The client asked for read-only service.
    pub read_only: bool,
    /// The client's IP address, for `ip` ACLs.
    pub ip: String,
    /// Where replies go.
    pub sink: ClientSink,
}

/// One request frame after the handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientPacket {
    /// Connection id.
    pub conn: u64,
    /// Request xid.
    pub xid: i32,
    /// Op code.
    pub op: i32,
    /// The request record after the header.
    pub body: Vec<u8>,
}

/// The connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientGone {
    /// Connection id.
    pub conn: u64,
}
