//! One client connection speaking ZooKeeper's protocol: frames in, frames out, in order.
//!
//! Bounds: the connect request must arrive whole before the handshake deadline; after it, a
//! frame whose first byte arrived must complete within the session timeout, and a write that
//! makes no progress for the session timeout closes the connection. Reading pauses while the
//! connection's [`Flow`] is throttled; a frame's buffer grows only with the bytes received.

use super::direct::{DirectReader, PublishedTree};
use super::limits::Flow;
use super::protocol::{ClientConnect, ClientGone, ClientPacket, ClientSink, ToClient};
use crate::metrics::ServerMetrics;
use crate::pipeline::PipelineActor;
use actix::Addr;
use bytes::BytesMut;
use ensemble_messages::frame::{read_body, FrameCodec};
use ensemble_messages::jute::{ConnectRequest, Jute, JuteReader, RequestHeader};
use ensemble_messages::zk::{ConnectionId, OpCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::codec::Encoder;

/// Room for a request's header and fields beside its data, over jute.maxbuffer.
pub const FRAME_OVERHEAD: usize = 1024;

/// Bytes read from a client socket at once.
const READ_BUFFER: usize = 64 * 1024;

/// Replies gathered into one socket write (more when a single reply is larger).
const WRITE_BATCH: usize = 64 * 1024;

/// Smallest deadline for completing a frame or making write progress, whatever the session
/// timeout bounds say.
const MIN_STALL: Duration = Duration::from_secs(1);

/// The server's limits as one connection sees them.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Largest frame accepted: jute.maxbuffer plus [`FRAME_OVERHEAD`].
    pub max_frame: usize,
    /// minSessionTimeout in ms.
    pub min_timeout_ms: u64,
    /// maxSessionTimeout in ms.
    pub max_timeout_ms: u64,
}

impl ConnLimits {
    /// The session timeout the server grants a client asking for `requested_ms`; a stalled
    /// frame or write is given this long.
    fn stall(&self, requested_ms: i32) -> Duration {
        let ms = (requested_ms.max(0) as u64).clamp(self.min_timeout_ms, self.max_timeout_ms);
        Duration::from_millis(ms).max(MIN_STALL)
    }
}

/// A client connection after its first 4 bytes (`first`, a frame length) were read, over any
/// byte stream (plain TCP or TLS) split into its reading and writing halves.
pub struct Connection<R, W> {
    /// The reading half.
    pub read: R,
    /// The writing half.
    pub write: W,
    /// The client's IP address, for `ip` ACLs.
    pub ip: String,
    /// Identities the transport proved (`x509` from a TLS client certificate).
    pub identities: Vec<(String, String)>,
    /// The connect request's length prefix.
    pub first: [u8; 4],
    /// Connection id, unique on this server.
    pub conn: ConnectionId,
    /// Where requests go.
    pub pipeline: Addr<PipelineActor>,
    /// The server's limits.
    pub limits: ConnLimits,
    /// This connection's requests in flight and queued output.
    pub flow: Arc<Flow>,
    /// When the whole connect request must have arrived.
    pub handshake_deadline: Instant,
    /// The tree versions the request pipeline publishes, to answer reads on this thread;
    /// `None` sends every request to the actor.
    pub published: Option<Arc<PublishedTree>>,
    /// The server's running figures.
    pub metrics: Arc<ServerMetrics>,
}

/// Serves the connection until the client, the service or a limit ends it.
pub async fn run<R, W>(c: Connection<R, W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Connection {
        read,
        write,
        ip,
        identities,
        first,
        conn,
        pipeline,
        limits,
        flow,
        handshake_deadline,
        published,
        metrics,
    } = c;
    // Requests pipelined by the client arrive together: one read takes many of them.
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let _end = EndFlow(flow.clone());
    let outcome = async {
        let codec = FrameCodec::new(limits.max_frame);
        let connect = timeout_at(handshake_deadline, async {
            let len = frame_len(codec, first)?;
            read_body(&mut read, len).await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "no complete connect request in time".to_string())??;
        let request = ConnectRequest::from_bytes(&connect)
            .map_err(|e| format!("bad connect request: {e}"))?;
        // The readOnly byte follows the record (45 bytes from the C client and kazoo).
        let read_only = connect.len() > request.to_bytes().len() && connect[connect.len() - 1] != 0;
        let stall = limits.stall(request.time_out);
        let (sink, outgoing) = ClientSink::new(flow.clone());
        let direct = published.map(|p| {
            (
                DirectReader::new(p, sink.share().clone(), metrics),
                sink.clone(),
            )
        });
        pipeline.do_send(ClientConnect {
            conn,
            request,
            read_only,
            ip,
            identities,
            sink,
        });
        let requests = Requests {
            pipeline: &pipeline,
            conn,
            flow: &flow,
            direct,
        };
        tokio::select! {
            r = requests.run(&mut read, codec, stall) => r,
            r = write_replies(write, outgoing, &flow, stall) => r,
            _ = flow.overflow() => Err(format!(
                "over {} bytes of replies and notifications wait for a client that does not read",
                flow.queued()
            )),
        }
    }
    .await;
    if let Err(e) = outcome {
        tracing::debug!(%conn, "client connection closed: {e}");
    }
    pipeline.do_send(ClientGone { conn });
}

/// Ends a connection's flow however its task ends.
struct EndFlow(Arc<Flow>);

impl Drop for EndFlow {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Where a connection's requests go: reads it may answer itself are answered on its thread
/// (see [`super::direct`]), everything else goes to the request pipeline.
struct Requests<'a> {
    pipeline: &'a Addr<PipelineActor>,
    conn: ConnectionId,
    flow: &'a Flow,
    direct: Option<(DirectReader, ClientSink)>,
}

impl Requests<'_> {
    /// Reads requests and answers or forwards each, pausing while the connection is throttled.
    async fn run(
        mut self,
        read: &mut (impl AsyncBufRead + Unpin),
        codec: FrameCodec,
        stall: Duration,
    ) -> Result<(), String> {
        loop {
            if let Some(why) = self.flow.throttle() {
                tracing::debug!(conn = %self.conn, ?why, "not reading from a client for now");
                self.flow.wait_for_room().await;
            }
            let f = read_request(read, codec, stall).await?;
            let mut r = JuteReader::new(&f);
            let header = RequestHeader::read(&mut r, "request header")
                .map_err(|e| format!("bad request header: {e}"))?;
            let body = f.get(8..).unwrap_or_default();
            let op = OpCode::try_from(header.op);
            if let (Some((reader, sink)), Ok(code)) = (self.direct.as_mut(), op) {
                if let Some(reply) = reader.answer(self.flow.idle(), header.xid, code, body) {
                    sink.push(reply);
                    continue;
                }
            }
            self.flow.request_started();
            self.pipeline.do_send(ClientPacket {
                conn: self.conn,
                xid: header.xid,
                op,
                body: body.to_vec(),
            });
        }
    }
}

/// One request frame: waiting for its first byte has no deadline (an idle client is its
/// session's business), the rest must arrive within `stall`.
async fn read_request(
    read: &mut (impl AsyncBufRead + Unpin),
    codec: FrameCodec,
    stall: Duration,
) -> Result<Vec<u8>, String> {
    if read.fill_buf().await.map_err(|e| e.to_string())?.is_empty() {
        return Err("closed by the client".into());
    }
    timeout(stall, async {
        let mut prefix = [0u8; 4];
        read.read_exact(&mut prefix)
            .await
            .map_err(|e| e.to_string())?;
        let len = frame_len(codec, prefix)?;
        read_body(read, len).await.map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| format!("a request frame did not complete within {stall:?}"))?
}

/// The frame length in `prefix`, if within the codec's limit (logged when not).
fn frame_len(codec: FrameCodec, prefix: [u8; 4]) -> Result<usize, String> {
    codec.length(prefix).map_err(|e| {
        tracing::warn!(
            "closing a client connection: {e} (jute.maxbuffer plus {FRAME_OVERHEAD} bytes of \
             headers)"
        );
        e.to_string()
    })
}

/// Writes queued frames until the service closes the connection (Ok); a write that makes no
/// progress for `stall` ends it (Err). The frames already queued go out in one write.
async fn write_replies(
    mut write: impl AsyncWrite + Unpin,
    mut outgoing: UnboundedReceiver<ToClient>,
    flow: &Flow,
    stall: Duration,
) -> Result<(), String> {
    // Replies are not bounded by this server's jute.maxbuffer: clients check their own.
    let mut frames = FrameCodec::new(u32::MAX as usize);
    let mut buf = BytesMut::new();
    let mut open = true;
    while open {
        let Some(first) = outgoing.recv().await else {
            break;
        };
        buf.clear();
        let mut payload = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let ToClient::Frame(f) = msg else {
                open = false;
                break;
            };
            frames.encode(&f, &mut buf).map_err(|e| e.to_string())?;
            payload += f.len();
            if buf.len() < WRITE_BATCH {
                next = outgoing.try_recv().ok();
            }
        }
        write_all(&mut write, &buf, stall).await?;
        // TLS holds the last record until flushed; TCP's flush does nothing.
        timeout(stall, write.flush())
            .await
            .map_err(|_| format!("the client read nothing for {stall:?}"))?
            .map_err(|e| e.to_string())?;
        flow.written(payload);
    }
    let _ = write.shutdown().await;
    Ok(())
}

/// Writes `buf` whole; Err when the socket fails or takes nothing for `stall`.
async fn write_all(
    write: &mut (impl AsyncWrite + Unpin),
    buf: &[u8],
    stall: Duration,
) -> Result<(), String> {
    let mut sent = 0;
    while sent < buf.len() {
        let n = timeout(stall, write.write(&buf[sent..]))
            .await
            .map_err(|_| format!("the client read nothing for {stall:?}"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the socket took no bytes".into());
        }
        sent += n;
    }
    Ok(())
}
