//! The peer handshake: Hello, Challenge, Prove, Accepted, before the stream carries peer
//! messages. With a peer secret both sides prove they hold it (see [`HandshakeFrame`]); a
//! refusal closes the connection without detail and is logged on the refusing side.

use super::secret::{nonce, PeerSecret, ProofContext, ProofRole};
use super::tls::PeerTls;
use ensemble_messages::codec;
use ensemble_messages::frame::{self, FrameCodec, FrameError};
use ensemble_messages::peer::{Proof, PEER_PROTOCOL_VERSION};
use ensemble_messages::{HandshakeFrame, Sid};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Handshake frames are small; anything larger is not a peer.
const HANDSHAKE_FRAMES: FrameCodec = FrameCodec::new(512);
/// Time allowed for the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who this server is on the peer network.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    /// Own sid.
    pub sid: Sid,
    /// The ensemble's peer secret; `None` runs without peer authentication by secret.
    pub secret: Option<Arc<PeerSecret>>,
    /// Mutual TLS on every peer connection (sslQuorum), when configured.
    pub tls: Option<Arc<PeerTls>>,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed, timed out, or the other side hung up (a refusal looks like this).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The other side sent something that is not a handshake frame.
    #[error("not a peer handshake: {0}")]
    Garbage(String),
    /// The pair's link is dialed by the other side (the higher sid).
    #[error("the other side dials this pair")]
    DialsBack,
    /// This side refused the other: it is not the member it claims, or failed to prove it.
    #[error("refused a peer: {0}")]
    Rejected(String),
}

async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &HandshakeFrame,
) -> Result<(), HandshakeError> {
    let bytes = codec::encode(frame).map_err(|e| HandshakeError::Garbage(e.to_string()))?;
    frame::write_frame(stream, HANDSHAKE_FRAMES, &bytes)
        .await
        .map_err(std::io::Error::from)?;
    Ok(())
}

/// One handshake frame, and not a byte more: what follows belongs to the link.
async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<HandshakeFrame, HandshakeError> {
    let buf = frame::read_frame(stream, HANDSHAKE_FRAMES)
        .await
        .map_err(|e| match e {
            FrameError::Io(e) => HandshakeError::Io(e),
            too_large => HandshakeError::Garbage(too_large.to_string()),
        })?;
    codec::decode(&buf).map_err(|e| HandshakeError::Garbage(e.to_string()))
}

fn unexpected(frame: &HandshakeFrame) -> HandshakeError {
    HandshakeError::Garbage(format!("unexpected {frame:?}"))
}

/// This side's proof of `role`, if it has a secret.
fn proof(me: &PeerIdentity, role: ProofRole, ctx: &ProofContext) -> Proof {
    me.secret.as_ref().map(|k| k.prove(role, ctx))
}

/// Checks the other side's proof of `role`; `Err` says why it does not hold.
fn check(
    me: &PeerIdentity,
    role: ProofRole,
    ctx: &ProofContext,
    proof: &Proof,
) -> Result<(), String> {
    match (&me.secret, proof) {
        (None, None) => Ok(()),
        (Some(k), Some(p)) if k.verify(role, ctx, p) => Ok(()),
        (Some(_), Some(_)) => {
            Err("failed to prove it holds the peer secret (the secret files differ?)".into())
        }
        (Some(_), None) => {
            Err("runs without peer authentication, which this server requires".into())
        }
        (None, Some(_)) => {
            Err("authenticates peers, and this server has no peer secret configured".into())
        }
    }
}

/// Dialing side: proves itself to server `expected` and checks its proof.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &PeerIdentity,
    expected: Sid,
) -> Result<(), HandshakeError> {
    let dialer_nonce = nonce();
    let hello = HandshakeFrame::Hello {
        version: PEER_PROTOCOL_VERSION,
        sid: me.sid,
        nonce: dialer_nonce,
    };
    write_frame(stream, &hello).await?;
    let (sid, acceptor_nonce, their_proof) = match read_frame(stream).await? {
        HandshakeFrame::Challenge { sid, nonce, proof } => (sid, nonce, proof),
        HandshakeFrame::DialsBack => return Err(HandshakeError::DialsBack),
        other => return Err(unexpected(&other)),
    };
    if sid != expected {
        return Err(HandshakeError::Rejected(format!(
            "the server there answers as server {sid}, not {expected}"
        )));
    }
    let ctx = ProofContext {
        dialer: me.sid,
        acceptor: sid,
        dialer_nonce,
        acceptor_nonce,
    };
    check(me, ProofRole::Acceptor, &ctx, &their_proof)
        .map_err(|why| HandshakeError::Rejected(format!("server {sid} {why}")))?;
    let prove = HandshakeFrame::Prove {
        proof: proof(me, ProofRole::Dialer, &ctx),
    };
    write_frame(stream, &prove).await?;
    match read_frame(stream).await? {
        HandshakeFrame::Accepted => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// Accepting side: checks that the dialer is another server that holds the secret and that
/// `admit` accepts it for the sid it claims (a member of the membership this server counts
/// with, whose TLS certificate, if any, names that server), proves
/// itself, and returns the dialer's sid. A refused dialer gets no reason, only a closed socket.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &PeerIdentity,
    admit: impl Fn(Sid) -> Result<(), String>,
) -> Result<Sid, HandshakeError> {
    let (version, sid, dialer_nonce) = match read_frame(stream).await? {
        HandshakeFrame::Hello {
            version,
            sid,
            nonce,
        } => (version, sid, nonce),
        other => return Err(unexpected(&other)),
    };
    if version != PEER_PROTOCOL_VERSION {
        return Err(HandshakeError::Rejected(format!(
            "peer protocol version {version} is not {PEER_PROTOCOL_VERSION}"
        )));
    }
    if sid == me.sid {
        return Err(HandshakeError::Rejected(format!(
            "a peer claims this server's own sid {sid}"
        )));
    }
    admit(sid).map_err(|why| {
        HandshakeError::Rejected(format!("a peer claiming server {sid} is refused: {why}"))
    })?;
    if sid < me.sid {
        write_frame(stream, &HandshakeFrame::DialsBack).await?;
        return Err(HandshakeError::DialsBack);
    }
    let ctx = ProofContext {
        dialer: sid,
        acceptor: me.sid,
        dialer_nonce,
        acceptor_nonce: nonce(),
    };
    let challenge = HandshakeFrame::Challenge {
        sid: me.sid,
        nonce: ctx.acceptor_nonce,
        proof: proof(me, ProofRole::Acceptor, &ctx),
    };
    write_frame(stream, &challenge).await?;
    let their_proof = match read_frame(stream).await {
        Ok(HandshakeFrame::Prove { proof }) => proof,
        Ok(other) => return Err(unexpected(&other)),
        Err(HandshakeError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::Rejected(format!(
                "a peer claiming server {sid} hung up instead of proving itself: it did not \
                 accept this server's proof (the peer secret files differ?)"
            )))
        }
        Err(e) => return Err(e),
    };
    check(me, ProofRole::Dialer, &ctx, &their_proof)
        .map_err(|why| HandshakeError::Rejected(format!("a peer claiming server {sid} {why}")))?;
    write_frame(stream, &HandshakeFrame::Accepted).await?;
    Ok(sid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    fn identity(sid: Sid, secret: Option<&[u8]>) -> PeerIdentity {
        PeerIdentity {
            sid,
            secret: secret.map(|s| Arc::new(PeerSecret::from_bytes(s).unwrap())),
            tls: None,
        }
    }

    /// Runs a dial from `dialer` to `acceptor` (expected to be `expected`), the acceptor
    /// admitting servers 1 to 3.
    async fn run(
        dialer: PeerIdentity,
        acceptor: PeerIdentity,
        expected: Sid,
    ) -> (Result<(), HandshakeError>, Result<Sid, HandshakeError>) {
        let members = |sid: Sid| {
            (1..=3)
                .contains(&sid)
                .then_some(())
                .ok_or_else(|| format!("server {sid} is not a member"))
        };
        run_vouched(dialer, acceptor, expected, members).await
    }

    /// Like [`run`], the acceptor admitting the dialer's claimed sid with `vouch`.
    async fn run_vouched(
        dialer: PeerIdentity,
        acceptor: PeerIdentity,
        expected: Sid,
        vouch: impl Fn(Sid) -> Result<(), String> + Send + 'static,
    ) -> (Result<(), HandshakeError>, Result<Sid, HandshakeError>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            accept(&mut s, &acceptor, vouch).await
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let dialed = dial(&mut s, &dialer, expected).await;
        drop(s);
        (dialed, accepting.await.unwrap())
    }

    const K: &[u8] = b"the ensemble secret";

    #[tokio::test]
    async fn members_with_the_same_secret_connect() {
        let (d, a) = run(identity(3, Some(K)), identity(1, Some(K)), 1).await;
        assert!(d.is_ok(), "{d:?}");
        assert_eq!(a.unwrap(), 3);
        let (d, a) = run(identity(3, None), identity(1, None), 1).await;
        assert!(d.is_ok() && a.is_ok());
    }

    #[tokio::test]
    async fn a_different_or_missing_secret_is_refused_on_both_sides() {
        let other = b"another secret value";
        let (d, a) = run(identity(3, Some(other)), identity(1, Some(K)), 1).await;
        assert!(matches!(d, Err(HandshakeError::Rejected(_))), "{d:?}");
        // The acceptor's proof failed at the dialer, which hung up before proving.
        assert!(matches!(a, Err(HandshakeError::Rejected(m)) if m.contains("hung up")));
        let (d, a) = run(identity(3, None), identity(1, Some(K)), 1).await;
        assert!(d.is_err());
        assert!(a.is_err());
        let (d, a) = run(identity(3, Some(K)), identity(1, None), 1).await;
        assert!(matches!(d, Err(HandshakeError::Rejected(_))), "{d:?}");
        assert!(a.is_err());
    }

    #[tokio::test]
    async fn strangers_and_impostors_get_no_detail() {
        // A sid outside the ensemble: the socket closes without any frame.
        let (d, a) = run(identity(9, Some(K)), identity(1, Some(K)), 1).await;
        assert!(matches!(d, Err(HandshakeError::Io(_))), "{d:?}");
        assert!(matches!(a, Err(HandshakeError::Rejected(_))));
        // The wrong server answering the dialed address.
        let (d, _) = run(identity(3, Some(K)), identity(2, Some(K)), 1).await;
        assert!(matches!(d, Err(HandshakeError::Rejected(m)) if m.contains("server 2")));
        // A lower sid is told to wait for the higher one to dial.
        let (d, a) = run(identity(1, Some(K)), identity(3, Some(K)), 3).await;
        assert!(matches!(d, Err(HandshakeError::DialsBack)));
        assert!(matches!(a, Err(HandshakeError::DialsBack)));
    }

    #[tokio::test]
    async fn a_dialer_its_certificate_does_not_vouch_for_gets_no_detail() {
        let only_two = |sid: Sid| {
            (sid == 2)
                .then_some(())
                .ok_or_else(|| format!("certificate is not server {sid}'s"))
        };
        let (d, a) = run_vouched(identity(3, None), identity(1, None), 1, only_two).await;
        assert!(matches!(d, Err(HandshakeError::Io(_))), "{d:?}");
        assert!(matches!(a, Err(HandshakeError::Rejected(m)) if m.contains("not server 3's")));
        let (d, a) = run_vouched(identity(2, None), identity(1, None), 1, only_two).await;
        assert!(d.is_ok() && a.is_ok_and(|sid| sid == 2));
    }
}
