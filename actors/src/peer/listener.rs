//! Accepts peer connections, runs the handshake and hands each stream to its link.

use super::handshake::{self, HandshakeError, PeerIdentity, HANDSHAKE_TIMEOUT};
use super::link::Fail;
use super::link::{Inbound, PeerLink};
use super::tls::PeerTls;
use super::PeerStream;
use crate::accept::{accepted, listen, Accepted};
use actix::prelude::*;
use ensemble_messages::Sid;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Handshakes under way at once; connections beyond are closed at once, so strangers cannot
/// hold the port's memory or tasks.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// How long a peer listener whose socket cannot be registered waits before trying again.
const RETRY_LISTEN: Duration = Duration::from_secs(1);

/// The peer port's acceptor.
///
/// Restart policy (supervised; [`Fail`] injects one): it keeps its listening socket, bound
/// once when the node starts, and accepts on it again; peers that dial meanwhile wait in the
/// socket's backlog. Handshakes under way run as tasks of their own and finish; established
/// peer connections belong to the links and never notice. It keeps its handshake limit.
pub struct PeerListener {
    identity: PeerIdentity,
    links: BTreeMap<Sid, Addr<PeerLink>>,
    listener: std::net::TcpListener,
    pending: Arc<Semaphore>,
}

impl PeerListener {
    /// A listener on an already bound, non-blocking socket.
    pub fn new(
        identity: PeerIdentity,
        links: BTreeMap<Sid, Addr<PeerLink>>,
        listener: std::net::TcpListener,
    ) -> Self {
        PeerListener {
            identity,
            links,
            listener,
            pending: Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES)),
        }
    }
}

impl Actor for PeerListener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match listen(&self.listener) {
            Ok(l) => {
                ctx.add_stream(accepted(l, "peer"));
            }
            Err(e) => {
                tracing::error!("the peer port cannot accept: {e}; trying again");
                ctx.run_later(RETRY_LISTEN, |_, ctx| ctx.stop());
            }
        }
    }
}

impl Supervised for PeerListener {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("peer listener restarting; its socket carries over");
    }
}

impl Handler<Fail> for PeerListener {
    type Result = ();

    fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        tracing::warn!("peer listener failure injected");
        ctx.stop();
    }
}

impl StreamHandler<Accepted> for PeerListener {
    fn handle(&mut self, Accepted(stream): Accepted, _: &mut Context<Self>) {
        let peer_addr = stream.peer_addr().ok();
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            tracing::warn!(
                ?peer_addr,
                "too many peer handshakes under way; connection closed"
            );
            return;
        };
        let identity = self.identity.clone();
        let links = self.links.clone();
        // A task of its own: a restart of the listener does not cut a handshake short.
        actix::spawn(async move {
            let _ = stream.set_nodelay(true);
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(stream, &identity)).await;
            drop(permit);
            match outcome {
                Ok(Ok((sid, stream))) => match links.get(&sid) {
                    Some(link) => link.do_send(Inbound(stream)),
                    None => tracing::warn!(sid, "accepted a peer without a link"),
                },
                Ok(Err(HandshakeError::DialsBack)) => {
                    tracing::debug!(?peer_addr, "a lower sid dialed; this server dials it");
                }
                Ok(Err(e @ HandshakeError::Rejected(_))) => tracing::error!(?peer_addr, "{e}"),
                Ok(Err(e)) => tracing::warn!(?peer_addr, "peer handshake failed: {e}"),
                Err(_) => tracing::warn!(?peer_addr, "peer handshake timed out"),
            }
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Runs TLS (when configured) and the handshake on an accepted connection: the dialer's sid
/// and the stream to hand to its link.
async fn accept(
    tcp: TcpStream,
    identity: &PeerIdentity,
) -> Result<(Sid, PeerStream), HandshakeError> {
    match &identity.tls {
        None => {
            let mut stream = tcp;
            let sid = handshake::accept(&mut stream, identity, |_| Ok(())).await?;
            Ok((sid, Box::new(stream)))
        }
        Some(tls) => {
            let mut stream = tls.accept(tcp).await.map_err(|e| {
                HandshakeError::Rejected(format!("a peer failed the quorum TLS handshake: {e}"))
            })?;
            let chain = PeerTls::chain(&stream);
            let sid =
                handshake::accept(&mut stream, identity, |sid| tls.vouch(&chain, sid)).await?;
            Ok((sid, Box::new(stream)))
        }
    }
}
