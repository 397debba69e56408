//! The link to one remote server.

use super::handshake::{self, HandshakeError, PeerIdentity, HANDSHAKE_TIMEOUT};
use super::memory_limit::memory_limit;
use super::sinks::PeerSinks;
use super::snap_stream::SnapReceiver;
use super::PeerStream;
use actix::prelude::*;
use ensemble_messages::codec::{CodecError, PeerCodec};
use ensemble_messages::sync_parts::{self, JoinBudget, SyncJoiner, MAX_JOINED};
use ensemble_messages::{PeerMessage, Sid};
use futures::{SinkExt, StreamExt};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{FramedRead, FramedWrite};

/// First reconnect delay; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Cap of the reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// Messages queued for the socket before the link is declared stuck and reset.
const SEND_QUEUE: usize = 65_536;

/// What a link tells the quorum peer and election actors (see [`PeerSinks`]).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum PeerEvent {
    /// The link to `sid` is up.
    Connected(Sid),
    /// The link to `sid` went down.
    Disconnected(Sid),
    /// A message arrived from `sid`.
    Message(Sid, PeerMessage),
}

/// Sends a message to the peer; dropped while the link is down.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendPeer(pub PeerMessage);

/// Sends a SNAP's NEWLEADER while it is being built on another thread (its image's pieces as
/// they are written, then itself): messages sent after it wait behind it, so the peer sees
/// them in the order they were sent. Dropped while the link is down; if its builder gives up,
/// the connection closes.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SendPeerLater(pub SnapReceiver);

/// The writing half of a peer connection (plain TCP or TLS).
type PeerWriteHalf = tokio::io::WriteHalf<PeerStream>;

/// One entry of a connection's send queue.
enum Outgoing {
    /// Ready to write.
    Now(PeerMessage),
    /// Written as it is built; later entries wait for its end.
    Later(SnapReceiver),
}

/// Asks the link to report `Connected` again if it is up (after the quorum peer restarted).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Announce;

/// A handshaken inbound connection from this link's peer.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Inbound(pub PeerStream);

/// What connection `conn` read: a frame, or its end (`None`). The end carries the
/// connection's generation too: a connection replaced as it ends may still report its end
/// after the new one is installed, and must not take the new one down.
struct Frame(u64, Option<Result<PeerMessage, CodecError>>);

/// The link to one peer. Supervised: a restart drops the connection and dials again.
pub struct PeerLink {
    identity: PeerIdentity,
    peer: Sid,
    addr: String,
    sink: PeerSinks,
    /// Generation of the current connection (and of dial attempts).
    conn: u64,
    writer: Option<mpsc::Sender<Outgoing>>,
    /// The task writing the connection: aborted with it, so that a write stuck on a peer
    /// that stopped reading lets go of what it holds (a SNAP's builder, and its tree).
    writing: Option<tokio::task::AbortHandle>,
    reader: Option<SpawnHandle>,
    backoff: Duration,
    dialing: bool,
    /// A reconfig removed the peer: the link stays down for good.
    retired: bool,
}

impl PeerLink {
    /// A link from `identity` to `peer` at `addr`; events go to `sink`.
    pub fn new(identity: PeerIdentity, peer: Sid, addr: String, sink: PeerSinks) -> Self {
        PeerLink {
            identity,
            peer,
            addr,
            sink,
            conn: 0,
            writer: None,
            writing: None,
            reader: None,
            backoff: MIN_BACKOFF,
            dialing: false,
            retired: false,
        }
    }

    /// The higher sid of a pair dials.
    fn dials(&self) -> bool {
        self.identity.sid > self.peer
    }

    fn dial(&mut self, ctx: &mut Context<Self>) {
        if !self.dials() || self.writer.is_some() || self.dialing || self.retired {
            return;
        }
        self.dialing = true;
        let addr = self.addr.clone();
        let identity = self.identity.clone();
        let peer = self.peer;
        let attempt = async move {
            let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(&addr))
                .await
                .map_err(|_| (false, format!("connecting to {addr} timed out")))?
                .map_err(|e| (false, format!("connecting to {addr}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let mut stream: PeerStream = match &identity.tls {
                None => Box::new(tcp),
                Some(tls) => Box::new(
                    tls.connect(tcp, peer)
                        .await
                        .map_err(|e| (true, format!("TLS with {addr}: {e}")))?,
                ),
            };
            tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                handshake::dial(&mut stream, &identity, peer),
            )
            .await
            .map_err(|_| (false, format!("handshake with {addr} timed out")))?
            .map_err(|e| {
                let loud = matches!(e, HandshakeError::Rejected(_));
                (loud, format!("handshake with {addr}: {e}"))
            })?;
            Ok::<_, (bool, String)>(stream)
        };
        ctx.spawn(attempt.into_actor(self).map(|res, act, ctx| {
            act.dialing = false;
            match res {
                Ok(stream) => act.install(stream, ctx),
                Err((loud, e)) => {
                    if loud {
                        tracing::error!(peer = act.peer, "{e}");
                    } else {
                        tracing::debug!(peer = act.peer, "{e}");
                    }
                    act.schedule_dial(ctx);
                }
            }
        }));
    }

    fn schedule_dial(&mut self, ctx: &mut Context<Self>) {
        if !self.dials() {
            return;
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let conn = self.conn;
        ctx.run_later(delay, move |act, ctx| {
            // A timer can fire after a newer connection replaced the one it was for.
            if act.conn == conn {
                act.dial(ctx);
            }
        });
    }

    /// Makes `stream` the link's connection, replacing any older one.
    fn install(&mut self, stream: PeerStream, ctx: &mut Context<Self>) {
        self.drop_connection(ctx, false);
        self.conn += 1;
        self.backoff = MIN_BACKOFF;
        let conn = self.conn;
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel::<Outgoing>(SEND_QUEUE);
        let writing = actix::spawn(write_frames(write, rx, self.peer));
        self.writing = Some(writing.abort_handle());
        self.writer = Some(tx);
        let mut parts = SyncJoiner::within(join_budget());
        let frames = FramedRead::new(read, PeerCodec::<PeerMessage, PeerMessage>::default())
            .filter_map(move |r| std::future::ready(parts.join(r)))
            .map(move |r| Frame(conn, Some(r)))
            .chain(futures::stream::once(async move { Frame(conn, None) }));
        self.reader = Some(ctx.add_stream(frames));
        tracing::info!(me = self.identity.sid, peer = self.peer, "peer link up");
        self.sink.do_send(PeerEvent::Connected(self.peer));
    }

    fn drop_connection(&mut self, ctx: &mut Context<Self>, redial: bool) {
        if let Some(h) = self.reader.take() {
            ctx.cancel_future(h);
        }
        if let Some(w) = self.writing.take() {
            w.abort();
        }
        if self.writer.take().is_some() {
            tracing::info!(me = self.identity.sid, peer = self.peer, "peer link down");
            self.conn += 1;
            self.sink.do_send(PeerEvent::Disconnected(self.peer));
            if redial {
                self.schedule_dial(ctx);
            }
        }
    }
}

impl Actor for PeerLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.dial(ctx);
    }
}

impl Supervised for PeerLink {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(
            me = self.identity.sid,
            peer = self.peer,
            "peer link restarting"
        );
        self.reader = None;
        if let Some(w) = self.writing.take() {
            w.abort();
        }
        if self.writer.take().is_some() {
            self.sink.do_send(PeerEvent::Disconnected(self.peer));
        }
        self.conn += 1;
        self.dialing = false;
        self.backoff = MIN_BACKOFF;
        let _ = ctx;
    }
}

impl StreamHandler<Frame> for PeerLink {
    fn handle(&mut self, Frame(conn, frame): Frame, ctx: &mut Context<Self>) {
        if conn != self.conn {
            return;
        }
        match frame {
            Some(Ok(msg)) => self.sink.do_send(PeerEvent::Message(self.peer, msg)),
            Some(Err(e)) => {
                tracing::warn!(peer = self.peer, "dropping peer connection: {e}");
                self.drop_connection(ctx, true);
            }
            None => self.drop_connection(ctx, true),
        }
    }

    /// The end of a connection arrives as its last [`Frame`], tagged with its generation;
    /// the end of the stream itself changes nothing (and must not stop the link).
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<SendPeer> for PeerLink {
    type Result = ();

    fn handle(&mut self, SendPeer(msg): SendPeer, ctx: &mut Context<Self>) {
        self.enqueue(Outgoing::Now(msg), ctx);
    }
}

impl Handler<SendPeerLater> for PeerLink {
    type Result = ();

    fn handle(&mut self, SendPeerLater(msg): SendPeerLater, ctx: &mut Context<Self>) {
        self.enqueue(Outgoing::Later(msg), ctx);
    }
}

impl PeerLink {
    /// Queues `out` on the connection; a full queue means a stuck peer: the link resets.
    fn enqueue(&mut self, out: Outgoing, ctx: &mut Context<Self>) {
        let Some(tx) = &self.writer else {
            return;
        };
        if tx.try_send(out).is_err() {
            tracing::warn!(
                peer = self.peer,
                "peer send queue full or closed; resetting the link"
            );
            self.drop_connection(ctx, true);
        }
    }
}

impl Handler<Inbound> for PeerLink {
    type Result = ();

    fn handle(&mut self, Inbound(stream): Inbound, ctx: &mut Context<Self>) {
        if !self.retired {
            self.install(stream, ctx);
        }
    }
}

impl Handler<Announce> for PeerLink {
    type Result = ();

    fn handle(&mut self, _: Announce, _: &mut Context<Self>) {
        if self.writer.is_some() {
            self.sink.do_send(PeerEvent::Connected(self.peer));
        }
    }
}

/// Closes the link for good (a reconfig removed its peer) and stops its actor; should its
/// supervisor restart it while someone still holds its address, it stays closed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct Retire;

impl Handler<Retire> for PeerLink {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        self.retired = true;
        self.drop_connection(ctx, false);
        ctx.stop();
    }
}

/// Stops the link's actor so that its supervisor restarts it (fault injection).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Fail;

impl Handler<Fail> for PeerLink {
    type Result = ();

    fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        tracing::warn!(peer = self.peer, "peer link failure injected");
        ctx.stop();
    }
}

/// Writes queued messages to the connection in order, coalescing what is already queued into
/// one flush; a message still being built holds back those behind it.
async fn write_frames(write: PeerWriteHalf, mut rx: mpsc::Receiver<Outgoing>, peer: Sid) {
    let mut framed = FramedWrite::new(write, PeerCodec::<PeerMessage, PeerMessage>::default());
    while let Some(out) = rx.recv().await {
        let mut built = matches!(out, Outgoing::Later(_));
        if feed(&mut framed, out, peer).await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            built |= matches!(more, Outgoing::Later(_));
            if feed(&mut framed, more, peer).await.is_err() {
                return;
            }
        }
        if framed.flush().await.is_err() {
            return;
        }
        if built {
            // The write buffer grew to hold a SNAP image's pieces: give that memory back.
            *framed.write_buffer_mut() = BytesMut::new();
        }
    }
}

/// What the links of this process may hold of NEWLEADER parts at once, together: a quarter of
/// the memory it may use (the machine's, or its control group's limit when lower; a follower
/// builds a tree of about three times its image's bytes, so it could not take a larger image
/// anyway), at most [`MAX_JOINED`]. Servers in one process share it, as they share the memory.
fn join_budget() -> Arc<JoinBudget> {
    static BUDGET: OnceLock<Arc<JoinBudget>> = OnceLock::new();
    BUDGET
        .get_or_init(|| {
            let memory = memory_limit();
            let quarter = memory
                .and_then(|m| usize::try_from(m / 4).ok())
                .unwrap_or(MAX_JOINED)
                .min(MAX_JOINED);
            tracing::info!(
                "peer links may hold {} MiB of sync parts at once (memory limit: {} MiB)",
                quarter >> 20,
                memory.map_or_else(|| "unknown".to_string(), |m| (m >> 20).to_string())
            );
            JoinBudget::new(quarter)
        })
        .clone()
}

type PeerFramedWrite = FramedWrite<PeerWriteHalf, PeerCodec<PeerMessage, PeerMessage>>;

/// Feeds one queued entry to the frame writer, as it is built if it is still being built.
async fn feed(framed: &mut PeerFramedWrite, out: Outgoing, peer: Sid) -> Result<(), ()> {
    match out {
        Outgoing::Now(msg) => {
            for frame in sync_parts::split(msg) {
                feed_frame(framed, frame, peer).await?;
            }
            Ok(())
        }
        Outgoing::Later(mut rx) => {
            // Flush what is ahead of it first: building may take a while.
            framed.flush().await.map_err(|_| ())?;
            let mut ended = false;
            while let Some(msg) = rx.recv().await {
                for frame in sync_parts::split(msg) {
                    ended = matches!(frame, PeerMessage::Zab(_));
                    feed_frame(framed, frame, peer).await?;
                }
            }
            if !ended {
                tracing::warn!(peer, "a message being built for the peer was abandoned");
                return Err(());
            }
            Ok(())
        }
    }
}

async fn feed_frame(framed: &mut PeerFramedWrite, frame: PeerMessage, peer: Sid) -> Result<(), ()> {
    framed.feed(frame).await.map_err(|e| {
        tracing::debug!(peer, "peer write failed: {e}");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::{ZabMessage, Zxid};
    use tokio::io::DuplexStream;
    use tokio::net::TcpListener;

    /// Passes a link's events on, as lines, to a test.
    struct Recorder(Option<mpsc::UnboundedSender<String>>);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<PeerEvent> for Recorder {
        type Result = ();

        fn handle(&mut self, ev: PeerEvent, _: &mut Context<Self>) {
            let line = match ev {
                PeerEvent::Connected(_) => "up".to_string(),
                PeerEvent::Disconnected(_) => "down".to_string(),
                PeerEvent::Message(_, m) => format!("{m:?}"),
            };
            if let Some(tx) = &self.0 {
                let _ = tx.send(line);
            }
        }
    }

    /// A link of server 1 to server 2 (which dials: this link only accepts) and the events
    /// it tells the quorum peer actor.
    fn accepting_link() -> (Addr<PeerLink>, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let quorum = Recorder(Some(tx)).start();
        let election = Recorder(None).start();
        let sinks = PeerSinks::new(quorum.recipient(), election.recipient());
        let identity = PeerIdentity {
            sid: 1,
            secret: None,
            tls: None,
        };
        let link = PeerLink::new(identity, 2, "127.0.0.1:9".into(), sinks).start();
        (link, rx)
    }

    /// The next `n` events (waiting up to 5 s for each).
    async fn next_events(events: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(line)) => out.push(line),
                _ => break,
            }
        }
        out
    }

    type FarEnd = tokio_util::codec::Framed<DuplexStream, PeerCodec<PeerMessage, PeerMessage>>;

    /// A peer's new connection replaces its old one just as the old one ends: the end of the
    /// old one must not take the new one down. It did: the old stream's end dropped the new
    /// connection's writer and left its reader running, discarding every frame as stale, a
    /// half-open link on which a restarted server's election never heard the leader again.
    #[test]
    fn the_end_of_a_replaced_connection_leaves_the_new_one_up() {
        System::new().block_on(replace_a_connection_as_it_ends());
    }

    async fn replace_a_connection_as_it_ends() {
        let (link, mut events) = accepting_link();
        let (old, old_far) = tokio::io::duplex(4096);
        link.send(Inbound(Box::new(old))).await.unwrap();
        // The old connection ends and the new one arrives before the link runs again: its
        // next turn handles both.
        let (new, new_far) = tokio::io::duplex(4096);
        drop(old_far);
        link.do_send(Inbound(Box::new(new)));
        assert_eq!(next_events(&mut events, 3).await, ["up", "down", "up"]);
        // Both ways work on the new connection, and nothing took it down: the next event is
        // the peer's message.
        let mut far = FarEnd::new(new_far, PeerCodec::default());
        let hello = PeerMessage::Zab(ZabMessage::Commit(Zxid::new(1, 1)));
        far.send(hello.clone()).await.unwrap();
        assert_eq!(next_events(&mut events, 1).await, [format!("{hello:?}")]);
        link.send(SendPeer(hello.clone())).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(5), far.next()).await;
        assert_eq!(echoed.unwrap().unwrap().unwrap(), hello);
    }

    /// A SNAP's image crosses a link in pieces no larger than [`sync_parts::PIECE`], and
    /// the receiving link hands its quorum peer the NEWLEADER whole, image included.
    #[test]
    fn a_snapshot_image_crosses_in_pieces_and_arrives_whole() {
        System::new().block_on(send_and_receive_an_image());
    }

    async fn send_and_receive_an_image() {
        let (link, mut events) = accepting_link();
        let (near, far) = tokio::io::duplex(1 << 16);
        link.send(Inbound(Box::new(near))).await.unwrap();
        assert_eq!(next_events(&mut events, 1).await, ["up"]);
        let image: Vec<u8> = (0..5 * sync_parts::PIECE / 2).map(|i| i as u8).collect();
        let snap = PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: 2,
            truncate_to: None,
            snapshot: Some(ensemble_messages::Snapshot {
                last_zxid: Zxid::new(1, 7),
                state: image.into(),
            }),
            txns: Vec::new(),
        });
        // Sent: three pieces, then the NEWLEADER without its image.
        link.send(SendPeer(snap.clone())).await.unwrap();
        let mut far = FarEnd::new(far, PeerCodec::default());
        let mut sent = Vec::new();
        for _ in 0..4 {
            let frame = tokio::time::timeout(Duration::from_secs(5), far.next()).await;
            sent.push(frame.unwrap().unwrap().unwrap());
        }
        let pieces: Vec<usize> = sent[..3]
            .iter()
            .map(|m| match m {
                PeerMessage::ImagePiece(p) => p.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        let piece = sync_parts::PIECE;
        assert_eq!(pieces, [piece, piece, piece / 2]);
        assert_eq!(
            Some(&sent[3]),
            sync_parts::split(snap.clone()).nth(3).as_ref()
        );
        // Received: the same frames back make one message, the whole NEWLEADER.
        for frame in sent {
            far.send(frame).await.unwrap();
        }
        assert_eq!(next_events(&mut events, 1).await, [format!("{snap:?}")]);
    }

    /// A SNAP being sent to a peer that stopped reading blocks its builder (which holds a
    /// clone of the tree); when the link drops that connection, the builder is let go.
    #[test]
    fn a_dropped_connection_lets_go_of_a_snap_being_built() {
        System::new().block_on(drop_a_connection_during_a_snap());
    }

    async fn drop_a_connection_during_a_snap() {
        let (link, mut events) = accepting_link();
        let (stuck, _unread) = tokio::io::duplex(4096);
        link.send(Inbound(Box::new(stuck))).await.unwrap();
        let (image, rx) = crate::peer::snap_channel();
        link.send(SendPeerLater(rx)).await.unwrap();
        let builder = tokio::task::spawn_blocking(move || {
            let mut image = image;
            std::io::Write::write_all(&mut image, &vec![7; 64 * sync_parts::PIECE])
        });
        // The peer connects again: the link drops the stuck connection.
        let (new, _far) = tokio::io::duplex(4096);
        link.send(Inbound(Box::new(new))).await.unwrap();
        assert_eq!(next_events(&mut events, 3).await, ["up", "down", "up"]);
        let built = tokio::time::timeout(Duration::from_secs(5), builder).await;
        let e = built.expect("the builder is let go").unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn the_join_budget_is_one_per_process() {
        assert!(
            Arc::ptr_eq(&join_budget(), &join_budget()),
            "one budget per process"
        );
    }

    /// A connection's writer task over a real socket: its queue, its task, and the frames
    /// the far end reads.
    async fn writing_to_a_socket() -> (
        mpsc::Sender<Outgoing>,
        tokio::task::JoinHandle<()>,
        FramedRead<TcpStream, PeerCodec<PeerMessage, PeerMessage>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let stream: PeerStream = Box::new(dialed.unwrap());
        let (_, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_frames(write, rx, 2));
        let frames = FramedRead::new(accepted.unwrap().0, PeerCodec::default());
        (tx, writer, frames)
    }

    /// A message still being built holds back the messages queued after it.
    #[tokio::test]
    async fn a_message_being_built_keeps_its_place_in_the_queue() {
        let (tx, writer, frames) = writing_to_a_socket().await;
        let (built_tx, built_rx) = mpsc::channel(1);
        let first = PeerMessage::Zab(ZabMessage::Commit(Zxid::new(1, 1)));
        let second = PeerMessage::Zab(ZabMessage::Commit(Zxid::new(1, 2)));
        tx.send(Outgoing::Later(built_rx)).await.unwrap();
        tx.send(Outgoing::Now(second.clone())).await.unwrap();
        built_tx.send(first.clone()).await.unwrap();
        drop(built_tx);
        let mut frames = frames;
        assert_eq!(frames.next().await.unwrap().unwrap(), first);
        assert_eq!(frames.next().await.unwrap().unwrap(), second);
        drop(tx);
        writer.await.unwrap();
    }

    /// A SNAP whose builder gave up after a piece closes the connection: the peer must not
    /// take what comes next for the rest of the image.
    #[tokio::test]
    async fn an_abandoned_snap_closes_the_connection() {
        let (tx, writer, frames) = writing_to_a_socket().await;
        let (built_tx, built_rx) = mpsc::channel(1);
        let piece = PeerMessage::ImagePiece(vec![1, 2, 3].into());
        let after = PeerMessage::Zab(ZabMessage::Commit(Zxid::new(1, 2)));
        tx.send(Outgoing::Later(built_rx)).await.unwrap();
        tx.send(Outgoing::Now(after)).await.unwrap();
        built_tx.send(piece.clone()).await.unwrap();
        drop(built_tx);
        writer.await.unwrap();
        // Whatever of the image was flushed, then the end of the connection: never the next
        // message.
        let got: Vec<PeerMessage> = frames.map(|f| f.unwrap()).collect().await;
        assert!(got.iter().all(|m| *m == piece), "{got:?}");
    }
}
