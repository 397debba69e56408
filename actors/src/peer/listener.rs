//! Accepts peer connections, runs the handshake and hands each stream to its link.

use super::handshake::{self, HandshakeError, HANDSHAKE_TIMEOUT};
use super::link::{Fail, Inbound};
use super::roster::PeerRoster;
use super::tls::PeerTls;
use super::PeerStream;
use crate::accept::{accepted, listen, Accepted};
use actix::prelude::*;
use ensemble_messages::Sid;
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
    roster: PeerRoster,
    listener: std::net::TcpListener,
    pending: Arc<Semaphore>,
}

impl PeerListener {
    /// A listener on an already bound, non-blocking socket, admitting the servers `roster`
    /// keeps links to (as they are when each one dials).
    pub fn new(roster: PeerRoster, listener: std::net::TcpListener) -> Self {
        PeerListener {
            roster,
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
        let roster = self.roster.clone();
        // A task of its own: a restart of the listener does not cut a handshake short.
        actix::spawn(async move {
            let _ = stream.set_nodelay(true);
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(stream, &roster)).await;
            drop(permit);
            match outcome {
                Ok(Ok((sid, stream))) => match roster.link(sid) {
                    Some(link) => link.do_send(Inbound(stream)),
                    None => tracing::warn!(sid, "a reconfig removed the peer as it connected"),
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

/// Why `roster` does not admit a dialer claiming `sid`, if it does not: only the servers of
/// the membership this server counts with may connect.
fn member(roster: &PeerRoster, sid: Sid) -> Result<(), String> {
    if roster.contains(sid) {
        Ok(())
    } else {
        Err(format!(
            "server {sid} is not a member of the config this server counts with (a new server \
             connects once a reconfig adds it)"
        ))
    }
}

/// Runs TLS (when configured) and the handshake on an accepted connection: the dialer's sid
/// and the stream to hand to its link.
async fn accept(tcp: TcpStream, roster: &PeerRoster) -> Result<(Sid, PeerStream), HandshakeError> {
    let identity = roster.identity();
    match &identity.tls {
        None => {
            let mut stream = tcp;
            let sid = handshake::accept(&mut stream, identity, |sid| member(roster, sid)).await?;
            Ok((sid, Box::new(stream)))
        }
        Some(tls) => {
            let mut stream = tls.accept(tcp).await.map_err(|e| {
                HandshakeError::Rejected(format!("a peer failed the quorum TLS handshake: {e}"))
            })?;
            let chain = PeerTls::chain(&stream);
            let admit = |sid| member(roster, sid).and_then(|()| tls.vouch(&chain, sid));
            let sid = handshake::accept(&mut stream, identity, admit).await?;
            Ok((sid, Box::new(stream)))
        }
    }
}
