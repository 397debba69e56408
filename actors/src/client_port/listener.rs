//! Accepts client connections and answers four-letter words.

use super::connection::{run, ConnLimits, Connection, FRAME_OVERHEAD};
use super::direct::PublishedTree;
use super::four_letter::{render, screen, Screened, ServerInfo, REPORT_WORDS};
use super::limits::{Flow, IpSlot, Load, PerIpLimit};
use super::tls::{IntoHalves, SecurePort};
use crate::accept::{accepted, listen, Accepted};
use crate::metrics::ServerMetrics;
use crate::peer::Fail;
use crate::pipeline::{GetPublishedTree, GetReport, ResetConnectionStats, ServerAddrs};
use crate::zab::GetStatus;
use actix::prelude::*;
use ensemble_config::NodeConfig;
use ensemble_messages::zk::ConnectionId;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;

/// Time a new connection has to send a whole connect request or four-letter word (ZooKeeper's
/// zookeeper.nio.sessionlessCnxnTimeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client port whose socket cannot be registered waits before trying again.
const RETRY_LISTEN: Duration = Duration::from_secs(1);

/// The client port actor.
///
/// Restart policy (supervised; [`Fail`] injects one): it keeps its listening socket, bound
/// once when the node starts, and accepts on it again; connections that arrive meanwhile
/// wait in the socket's backlog. Open connections survive a restart: each runs as a task of
/// its own, independent of the port, and its session never notices. It keeps its connection
/// counters, per-address limits and the next connection id.
pub struct ClientPort {
    config: Arc<NodeConfig>,
    server: ServerAddrs,
    listener: std::net::TcpListener,
    metrics: Arc<ServerMetrics>,
    per_ip: Arc<PerIpLimit>,
    load: Arc<Load>,
    last_conn: ConnectionId,
    /// TLS in front of every connection: the secure client port.
    tls: Option<Arc<SecurePort>>,
    /// The threads connections run on, taken in turn; none runs them on the port's own
    /// thread (the node's).
    workers: Vec<Arbiter>,
    next_worker: usize,
    /// The request pipeline's published tree, for reads on the connection threads.
    published: Option<Arc<PublishedTree>>,
}

impl ClientPort {
    /// A client port on an already bound, non-blocking socket, counting into `metrics`
    /// (whose load it throttles on).
    pub fn new(
        config: Arc<NodeConfig>,
        server: ServerAddrs,
        listener: std::net::TcpListener,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        ClientPort {
            server,
            listener,
            per_ip: PerIpLimit::new(config.client.max_client_cnxns),
            load: metrics.load(),
            metrics,
            last_conn: ConnectionId(0),
            config,
            tls: None,
            workers: Vec::new(),
            next_worker: 0,
            published: None,
        }
    }

    /// The same port behind TLS (secureClientPort): a connection's TLS handshake comes first,
    /// within the handshake deadline. Connection ids start at `first_conn` so that they do not
    /// collide with the plain port's.
    pub fn secure(mut self, tls: SecurePort, first_conn: ConnectionId) -> Self {
        self.tls = Some(Arc::new(tls));
        self.last_conn = first_conn;
        self
    }
}

impl Actor for ClientPort {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The connection threads outlive restarts (the connections on them survive).
        if self.workers.is_empty() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = self.config.client.connection_threads_for(cores);
            match threads {
                0 => tracing::info!(cores, "client connections run on the node's own thread"),
                _ => tracing::info!(
                    threads,
                    cores,
                    "client connections run on threads of their own"
                ),
            }
            self.workers = (0..threads).map(|_| Arbiter::new()).collect();
        }
        let listener = match listen(&self.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("the client port cannot accept: {e}; trying again");
                ctx.run_later(RETRY_LISTEN, |_, ctx| ctx.stop());
                return;
            }
        };
        let pipeline = self.server.pipeline.clone();
        let published = async move { pipeline.send(GetPublishedTree).await.ok() };
        // Connections are accepted once they can answer reads on their own threads.
        ctx.wait(published.into_actor(self).map(move |published, act, ctx| {
            act.published = published;
            ctx.add_stream(accepted(listener, "client"));
        }));
    }
}

impl Drop for ClientPort {
    /// The connection threads end with the port, and the connections on them.
    fn drop(&mut self) {
        for w in &self.workers {
            w.stop();
        }
    }
}

impl Supervised for ClientPort {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("client port restarting; its socket and connections carry over");
    }
}

impl Handler<Fail> for ClientPort {
    type Result = ();

    fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        tracing::warn!("client port failure injected");
        ctx.stop();
    }
}

impl ClientPort {
    /// A place for a connection from the stream's address, or None (logged) when that address
    /// holds maxClientCnxns connections already.
    fn admit(&self, stream: &TcpStream) -> Option<IpSlot> {
        let ip = stream.peer_addr().ok()?.ip();
        let slot = self.per_ip.admit(ip);
        if slot.is_none() {
            tracing::warn!(
                "Too many connections from /{} - max is {}",
                ip.to_canonical(),
                self.per_ip.max()
            );
        }
        slot
    }
}

impl StreamHandler<Accepted> for ClientPort {
    fn handle(&mut self, Accepted(stream): Accepted, _: &mut Context<Self>) {
        let Some(slot) = self.admit(&stream) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        let served = Served {
            config: self.config.clone(),
            server: self.server.clone(),
            metrics: self.metrics.clone(),
            load: self.load.clone(),
            published: self.published.clone(),
        };
        self.last_conn = ConnectionId(self.last_conn.0 + 1);
        let conn = self.last_conn;
        let tls = self.tls.clone();
        let Some(worker) = self
            .workers
            .get(self.next_worker % self.workers.len().max(1))
        else {
            actix::spawn(connection(stream, slot, served, conn, deadline, tls));
            return;
        };
        self.next_worker = self.next_worker.wrapping_add(1);
        // The socket moves to the worker's own reactor.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot hand a client connection to a worker thread: {e}");
                return;
            }
        };
        worker.spawn_fn(move || match TcpStream::from_std(stream) {
            Ok(stream) => {
                actix::spawn(connection(stream, slot, served, conn, deadline, tls));
            }
            Err(e) => tracing::warn!("cannot serve a client connection: {e}"),
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Serves one accepted connection (behind TLS when `tls` is set) on the current thread.
async fn connection(
    stream: TcpStream,
    slot: IpSlot,
    served: Served,
    conn: ConnectionId,
    deadline: TokioInstant,
    tls: Option<Arc<SecurePort>>,
) {
    let _ = stream.set_nodelay(true);
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_default();
    let result = match tls {
        None => serve(stream, ip, Vec::new(), &served, conn, deadline).await,
        Some(tls) => match tls.accept(stream, deadline).await {
            Ok((stream, ids)) => serve(stream, ip, ids, &served, conn, deadline).await,
            Err(e) => {
                tracing::info!("unsuccessful TLS handshake with {ip}: {e}");
                Ok(())
            }
        },
    };
    if let Err(e) = result {
        tracing::debug!("client connection ended: {e}");
    }
    drop(slot);
}

/// What a connection's task shares with the port.
struct Served {
    config: Arc<NodeConfig>,
    server: ServerAddrs,
    metrics: Arc<ServerMetrics>,
    load: Arc<Load>,
    published: Option<Arc<PublishedTree>>,
}

impl Served {
    /// Serves a ZooKeeper session whose connect request's length prefix is `first`.
    async fn session(
        &self,
        stream: impl IntoHalves,
        peer: (String, Vec<(String, String)>),
        first: [u8; 4],
        conn: ConnectionId,
        deadline: TokioInstant,
    ) {
        let client = &self.config.client;
        let max_frame = client.max_buffer_bytes as usize + FRAME_OVERHEAD;
        let (read, write) = stream.into_halves();
        let (ip, identities) = peer;
        run(Connection {
            read,
            write,
            ip,
            identities,
            first,
            conn,
            pipeline: self.server.pipeline.clone(),
            limits: ConnLimits {
                max_frame,
                min_timeout_ms: client.min_session_timeout_ms,
                max_timeout_ms: client.max_session_timeout_ms,
            },
            flow: Flow::new(self.load.clone(), Flow::max_queued_for(max_frame)),
            handshake_deadline: deadline,
            published: self.published.clone(),
            metrics: self.metrics.clone(),
        })
        .await;
    }
}

/// Serves one connection: a four-letter word, or a session (`ip` and the transport's
/// `identities` name the client).
async fn serve(
    mut stream: impl IntoHalves + AsyncRead + AsyncWrite + Unpin,
    ip: String,
    identities: Vec<(String, String)>,
    served: &Served,
    conn: ConnectionId,
    deadline: TokioInstant,
) -> std::io::Result<()> {
    let mut word = [0u8; 4];
    tokio::time::timeout_at(deadline, stream.read_exact(&mut word))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    // A four-letter word is four lowercase letters; anything else is a frame length.
    if !word.iter().all(u8::is_ascii_lowercase) {
        served
            .session(stream, (ip, identities), word, conn, deadline)
            .await;
        return Ok(());
    }
    served.metrics.received();
    let word = String::from_utf8_lossy(&word).to_string();
    served.four_letter_word(stream, &word).await
}

impl Served {
    /// Answers a four-letter word and closes the connection.
    async fn four_letter_word(
        &self,
        mut stream: impl AsyncWrite + Unpin,
        word: &str,
    ) -> std::io::Result<()> {
        match screen(word, &self.config) {
            Screened::Allowed => {}
            Screened::Unknown => {
                tracing::debug!(?word, "unknown four-letter word");
                return stream.shutdown().await;
            }
            Screened::Refused(reply) => {
                stream.write_all(reply.as_bytes()).await?;
                self.metrics.sent();
                return stream.shutdown().await;
            }
        }
        let Ok(status) = self.server.quorum.send(GetStatus).await else {
            return Ok(());
        };
        let report = if REPORT_WORDS.contains(&word) {
            self.server.pipeline.send(GetReport).await.ok()
        } else {
            None
        };
        if word == "crst" {
            let _ = self.server.pipeline.send(ResetConnectionStats).await;
        }
        let info = ServerInfo {
            config: &self.config,
            status: &status,
            metrics: &self.metrics,
            report: report.as_ref(),
        };
        match render(word, &info) {
            Some(reply) => {
                stream.write_all(reply.as_bytes()).await?;
                self.metrics.sent();
            }
            None => tracing::debug!(?word, "unknown four-letter word"),
        }
        stream.shutdown().await
    }
}
