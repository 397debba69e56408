//! What client connections and the request pipeline actor tell each other.

use super::direct::SessionShare;
use super::limits::Flow;
use actix::Message;
use ensemble_messages::jute::ConnectRequest;
use ensemble_messages::zk::{ConnectionId, OpCode, UnknownOpCode};
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Sent to a client connection, in order.
#[derive(Debug)]
pub enum ToClient {
    /// A whole frame payload (the connection adds the length prefix).
    Frame(Vec<u8>),
    /// Close the connection after what was sent before.
    Close,
}

/// Where a connection's outgoing frames go. The queue counts its bytes against the
/// connection's [`Flow`]: a frame that would pass the bound is dropped and the connection is
/// closed, so a client that does not read cannot grow the server.
#[derive(Clone)]
pub struct ClientSink {
    tx: UnboundedSender<ToClient>,
    flow: Arc<Flow>,
    share: Arc<SessionShare>,
}

impl ClientSink {
    /// A sink accounted in `flow`, and the queue the connection's writer drains.
    pub fn new(flow: Arc<Flow>) -> (Self, UnboundedReceiver<ToClient>) {
        let (tx, rx) = unbounded_channel();
        let share = Arc::new(SessionShare::default());
        (ClientSink { tx, flow, share }, rx)
    }

    /// What the connection's thread knows of its session, to answer reads itself.
    pub fn share(&self) -> &Arc<SessionShare> {
        &self.share
    }

    /// The reply to one request. It is queued before the request stops counting as in flight,
    /// so a read the connection answers itself once idle is queued after it.
    pub fn reply(&self, frame: Vec<u8>) {
        self.push(frame);
        self.flow.request_answered();
    }

    /// A frame that answers no request: the handshake reply or a watch notification.
    pub fn push(&self, frame: Vec<u8>) {
        if self.flow.queue(frame.len()) {
            let _ = self.tx.send(ToClient::Frame(frame));
        }
    }

    /// Closes the connection after what was queued before.
    pub fn close(&self) {
        let _ = self.tx.send(ToClient::Close);
    }
}

/// A new connection's handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientConnect {
    /// Connection id, unique on this server.
    pub conn: ConnectionId,
    /// The handshake record.
    pub request: ConnectRequest,
    /// The client asked for read-only service.
    pub read_only: bool,
    /// The client's IP address, for `ip` ACLs.
    pub ip: String,
    /// Identities the transport proved, as `(scheme, id)`: `x509` (and `super`) from a TLS
    /// client certificate.
    pub identities: Vec<(String, String)>,
    /// Where replies go.
    pub sink: ClientSink,
}

/// One request frame after the handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientPacket {
    /// Connection id.
    pub conn: ConnectionId,
    /// Request xid.
    pub xid: i32,
    /// Op code; an unknown one is answered Unimplemented in the connection's order.
    pub op: Result<OpCode, UnknownOpCode>,
    /// The request record after the header.
    pub body: Vec<u8>,
}

/// The connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientGone {
    /// Connection id.
    pub conn: ConnectionId,
}

impl ClientSink {
    /// A sink without limits, for driving a [`ClientService`](super::ClientService) outside a
    /// connection: unit tests and the fuzz targets.
    pub fn unlimited() -> (Self, UnboundedReceiver<ToClient>) {
        Self::new(Flow::new(super::limits::Load::new(0), usize::MAX))
    }
}
