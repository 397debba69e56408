//! Peer links: one supervised actor per remote server, over TCP with length-prefixed bincode.
//!
//! The higher sid dials; a connection dialed by the lower sid is refused (at most one
//! connection per pair). The handshake carries the sender's sid and the ensemble's cluster id;
//! a peer with a different server list is refused and both sides log why.

mod handshake;
mod link;
mod listener;

pub use handshake::{HandshakeError, PeerIdentity};
pub use link::{Announce, Fail, PeerEvent, PeerLink, SendPeer};
pub use listener::PeerListener;
