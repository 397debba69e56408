//! Accepts client connections and answers four-letter words.

use super::four_letter::{render, ServerInfo, REPORT_WORDS};
use crate::accept::{accepted, Accepted};
use crate::zab::{GetReport, GetStatus, QuorumPeerActor, ResetConnectionStats};
use actix::prelude::*;
use ensemble_config::NodeConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Time a client has to send its first bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

/// The client port actor.
pub struct ClientPort {
    config: Arc<NodeConfig>,
    quorum: Addr<QuorumPeerActor>,
    listener: Option<TcpListener>,
    counters: Arc<Counters>,
    started: Instant,
    next_conn: u64,
}

impl ClientPort {
    /// A client port on an already bound socket.
    pub fn new(
        config: Arc<NodeConfig>,
        quorum: Addr<QuorumPeerActor>,
        listener: TcpListener,
    ) -> Self {
        ClientPort {
            config,
            quorum,
            listener: Some(listener),
            counters: Arc::default(),
            started: Instant::now(),
            next_conn: 0,
        }
    }
}

impl Actor for ClientPort {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(listener) = self.listener.take() {
            ctx.add_stream(accepted(listener, "client"));
        }
    }
}

impl StreamHandler<Accepted> for ClientPort {
    fn handle(&mut self, Accepted(stream): Accepted, _: &mut Context<Self>) {
        let config = self.config.clone();
        let quorum = self.quorum.clone();
        let counters = self.counters.clone();
        let uptime_ms = self.started.elapsed().as_millis() as u64;
        self.next_conn += 1;
        let conn = self.next_conn;
        actix::spawn(async move {
            counters.connections.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = serve(stream, &config, quorum, &counters, uptime_ms, conn).await {
                tracing::debug!("client connection ended: {e}");
            }
            counters.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

async fn serve(
    mut stream: TcpStream,
    config: &NodeConfig,
    quorum: Addr<QuorumPeerActor>,
    counters: &Counters,
    uptime_ms: u64,
    conn: u64,
) -> std::io::Result<()> {
    let mut word = [0u8; 4];
    tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.read_exact(&mut word))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    counters.received.fetch_add(1, Ordering::Relaxed);
    // A four-letter word is four lowercase letters; anything else is a frame length.
    if !word.iter().all(u8::is_ascii_lowercase) {
        let _ = stream.set_nodelay(true);
        let max_buffer = config.client.max_buffer_bytes as usize;
        super::connection::run(stream, word, quorum, conn, max_buffer).await;
        return Ok(());
    }
    let word = String::from_utf8_lossy(&word).to_string();
    let Ok(status) = quorum.send(GetStatus).await else {
        return Ok(());
    };
    let report = if REPORT_WORDS.contains(&word.as_str()) {
        quorum.send(GetReport).await.ok()
    } else {
        None
    };
    if word == "crst" {
        let _ = quorum.send(ResetConnectionStats).await;
    }
    let info = ServerInfo {
        config,
        status: &status,
        connections: status.connections as u64,
        received: counters.received.load(Ordering::Relaxed),
        sent: counters.sent.load(Ordering::Relaxed),
        uptime_ms,
        report: report.as_ref(),
    };
    match render(&word, &info) {
        Some(reply) => {
            stream.write_all(reply.as_bytes()).await?;
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        None => tracing::debug!(?word, "unknown four-letter word"),
    }
    stream.shutdown().await
}
