//! A TCP connection as an actor uses it: the decoded messages it receives, and a queue of
//! messages that a task writes to it in order (Spark RPC: masters, workers, submit and the
//! load generator).

use ensemble_messages::codec::PeerCodec;
use futures::SinkExt;
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

/// The messages a peer sends, decoded as `In`.
pub type Incoming<In, Out> = FramedRead<OwnedReadHalf, PeerCodec<In, Out>>;

/// One connection split into what arrives and a queue of what to send.
pub struct FramedConnection<In, Out> {
    /// Messages from the peer.
    pub incoming: Incoming<In, Out>,
    /// Messages to the peer, written in order until the queue closes or a write fails.
    pub outgoing: UnboundedSender<Out>,
    /// The task that writes them.
    pub writer: JoinHandle<()>,
}

/// Splits `stream` into its incoming `In` messages and a queue of `Out` messages, which a
/// spawned task writes.
pub fn framed<In, Out>(stream: TcpStream) -> FramedConnection<In, Out>
where
    In: DeserializeOwned + 'static,
    Out: Serialize + Send + 'static,
{
    let (read, write) = stream.into_split();
    let (outgoing, mut queue) = unbounded_channel::<Out>();
    let writer = tokio::spawn(async move {
        let mut frames = FramedWrite::new(write, PeerCodec::<In, Out>::default());
        while let Some(msg) = queue.recv().await {
            if frames.send(msg).await.is_err() {
                break;
            }
        }
    });
    FramedConnection {
        incoming: FramedRead::new(read, PeerCodec::default()),
        outgoing,
        writer,
    }
}
