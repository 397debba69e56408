//! The peer handshake: one frame each way, before the stream carries peer messages.

use ensemble_messages::codec;
use ensemble_messages::peer::PEER_PROTOCOL_VERSION;
use ensemble_messages::{Handshake, HandshakeReply, Sid};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Handshake frames are small; anything larger is not a peer.
const MAX_HANDSHAKE: usize = 4096;
/// Time allowed for the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who this server is on the peer network.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    /// Own sid.
    pub sid: Sid,
    /// Digest of the server list.
    pub cluster_id: String,
    /// Sids of the configured peers.
    pub members: Vec<Sid>,
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or timed out.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The other side sent something that is not a handshake.
    #[error("not a peer handshake: {0}")]
    Garbage(String),
    /// The other side refused.
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// We refused the other side.
    #[error("refused a peer: {0}")]
    Rejected(String),
}

async fn write_frame<T: Serialize>(
    stream: &mut TcpStream,
    value: &T,
) -> Result<(), HandshakeError> {
    let bytes = codec::encode(value).map_err(|e| HandshakeError::Garbage(e.to_string()))?;
    stream
        .write_all(&(bytes.len() as u32).to_be_bytes())
        .await?;
    stream.write_all(&bytes).await?;
    Ok(())
}

async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> Result<T, HandshakeError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HANDSHAKE {
        return Err(HandshakeError::Garbage(format!(
            "{len}-byte handshake frame"
        )));
    }
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    codec::decode(&buf).map_err(|e| HandshakeError::Garbage(e.to_string()))
}

/// Dialing side: sends our identity, returns once the acceptor agreed.
pub async fn dial(stream: &mut TcpStream, me: &PeerIdentity) -> Result<Sid, HandshakeError> {
    let hello = Handshake {
        version: PEER_PROTOCOL_VERSION,
        sid: me.sid,
        cluster_id: me.cluster_id.clone(),
    };
    write_frame(stream, &hello).await?;
    match read_frame(stream).await? {
        HandshakeReply::Accepted { sid } => Ok(sid),
        HandshakeReply::Refused { reason } => Err(HandshakeError::Refused(reason)),
    }
}

/// Accepting side: reads the dialer's identity and accepts or refuses it.
pub async fn accept(stream: &mut TcpStream, me: &PeerIdentity) -> Result<Sid, HandshakeError> {
    let hello: Handshake = read_frame(stream).await?;
    let refusal = if hello.version != PEER_PROTOCOL_VERSION {
        Some(format!(
            "peer protocol version {} is not {PEER_PROTOCOL_VERSION}",
            hello.version
        ))
    } else if hello.cluster_id != me.cluster_id {
        Some(format!(
            "server {} belongs to another ensemble (server list digest {}, ours {}): check that every server lists the same servers",
            hello.sid, hello.cluster_id, me.cluster_id
        ))
    } else if !me.members.contains(&hello.sid) || hello.sid == me.sid {
        Some(format!(
            "sid {} is not another member of this ensemble",
            hello.sid
        ))
    } else if hello.sid < me.sid {
        Some(format!(
            "connection from lower sid {} dropped: sid {} dials it",
            hello.sid, me.sid
        ))
    } else {
        None
    };
    match refusal {
        Some(reason) => {
            write_frame(
                stream,
                &HandshakeReply::Refused {
                    reason: reason.clone(),
                },
            )
            .await?;
            Err(HandshakeError::Rejected(reason))
        }
        None => {
            write_frame(stream, &HandshakeReply::Accepted { sid: me.sid }).await?;
            Ok(hello.sid)
        }
    }
}
