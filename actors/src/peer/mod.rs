//! Peer links: one supervised actor per remote server, over TCP (or mutual TLS) with
//! length-prefixed bincode.
//!
//! The higher sid dials; a connection dialed by the lower sid is refused (at most one
//! connection per pair). The links follow the membership the server counts with: a
//! reconfig's commit opens links to the servers it adds and closes those to the servers it
//! removes, and only members may connect. Membership is a matter of server ids and of proof: with a peer secret,
//! in the handshake each side proves over the other's fresh nonce that it holds the ensemble's
//! secret (HMAC-SHA256); with quorum TLS, each side presents a certificate the quorum trust
//! store vouches for (naming its server line's host, with hostname verification) before the
//! handshake starts. Either way a stranger that reaches a quorum port cannot speak FLE or Zab.
//! Refusals close the connection without detail and are logged on the refusing side.

mod handshake;
mod link;
mod listener;
mod memory_limit;
mod roster;
mod secret;
mod sinks;
mod snap_stream;
mod tls;

pub use handshake::{HandshakeError, PeerIdentity};
pub use link::{Announce, Fail, PeerEvent, PeerLink, SendPeer, SendPeerLater};
pub use listener::PeerListener;
pub use roster::{PeerEntry, PeerRoster};
pub use secret::{PeerSecret, MIN_SECRET_LEN};
pub use sinks::PeerSinks;
pub use snap_stream::{snap_channel, SnapReceiver, SnapSender};
pub use tls::PeerTls;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream a peer link runs over: plain TCP or TLS.
pub(crate) trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> PeerIo for T {}

/// A handshaken peer connection.
pub(crate) type PeerStream = Box<dyn PeerIo>;
