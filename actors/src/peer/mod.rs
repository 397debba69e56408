//! Peer links: one supervised actor per remote server, over TCP with length-prefixed bincode.
//!
//! The higher sid dials; a connection dialed by the lower sid is refused (at most one
//! connection per pair). Membership is a matter of server ids and of the peer secret: in the
//! handshake each side proves over the other's fresh nonce that it holds the ensemble's secret
//! (HMAC-SHA256), so a stranger that reaches a quorum port cannot speak FLE or Zab. Refusals
//! close the connection without detail and are logged on the refusing side.

mod handshake;
mod link;
mod listener;
mod secret;

pub use handshake::{HandshakeError, PeerIdentity};
pub use link::{Announce, Fail, PeerEvent, PeerLink, SendPeer, SendPeerLater};
pub use listener::PeerListener;
pub use secret::{PeerSecret, MIN_SECRET_LEN};
