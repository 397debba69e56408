//! Session and connection ids.

use serde::{Deserialize, Serialize};

/// A ZooKeeper session id. Encodes as its i64 on the wire, on disk and in bincode.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SessionId(pub i64);

impl SessionId {
    /// No session: what a client that asks for a new one sends, and the issuer of the
    /// server's own txns.
    pub const NONE: SessionId = SessionId(0);
}

impl std::fmt::Display for SessionId {
    /// As ZooKeeper prints session ids: `0x` and lower-case hex of the 64 bits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// One client connection of a server, unique for the server's lifetime (a session moves
/// between connections).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_print_as_zookeeper_does() {
        assert_eq!(SessionId(0x1000_0a3c_0001).to_string(), "0x10000a3c0001");
        assert_eq!(SessionId(-1).to_string(), "0xffffffffffffffff");
    }

    #[test]
    fn a_session_id_encodes_as_its_i64() {
        let id = crate::codec::encode(&SessionId(-7)).ok();
        assert_eq!(id, crate::codec::encode(&-7i64).ok());
    }
}
