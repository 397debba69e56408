//! The server-to-server protocol: handshake, Fast Leader Election and Zab.

use crate::zk::SessionId;
use crate::{Sid, Zxid};
use serde::{Deserialize, Serialize};

/// Version of the peer protocol; a peer speaking another version is refused.
pub const PEER_PROTOCOL_VERSION: u32 = 4;

/// Length of the random nonces of the handshake.
pub const NONCE_LEN: usize = 32;

/// Length of a handshake proof (HMAC-SHA256).
pub const PROOF_LEN: usize = 32;

/// A proof that the sender holds the ensemble's peer secret: an HMAC over both sids and both
/// nonces, or `None` when the sender runs without peer authentication.
pub type Proof = Option<[u8; PROOF_LEN]>;

/// Frames of the peer handshake, in the order they travel:
/// `Hello` (dialer), `Challenge` (acceptor), `Prove` (dialer), `Accepted` (acceptor).
///
/// Each side proves it holds the peer secret over the other side's fresh nonce, so a recorded
/// handshake cannot be replayed and a proof cannot be reflected (the two proofs carry different
/// labels). An acceptor that refuses closes the connection without saying why; both sides log it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeFrame {
    /// Dialer -> acceptor: who is calling, with a fresh nonce.
    Hello {
        /// Protocol version of the sender.
        version: u32,
        /// Server id the dialer claims.
        sid: Sid,
        /// The dialer's fresh random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// Acceptor -> dialer: the acceptor's own proof over the dialer's nonce, and its nonce.
    Challenge {
        /// Server id of the acceptor.
        sid: Sid,
        /// The acceptor's fresh random nonce.
        nonce: [u8; NONCE_LEN],
        /// The acceptor's proof.
        proof: Proof,
    },
    /// Dialer -> acceptor: the dialer's proof over the acceptor's nonce.
    Prove {
        /// The dialer's proof.
        proof: Proof,
    },
    /// Acceptor -> dialer: the link is established.
    Accepted,
    /// Acceptor -> dialer: this pair's link is dialed by the acceptor (the higher sid); hang up.
    DialsBack,
}

/// The role a server plays, as election notifications and `srvr` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerState {
    /// Electing a leader.
    Looking,
    /// Following an elected leader.
    Following,
    /// Leading the ensemble.
    Leading,
    /// Following an elected leader without voting (an observer).
    Observing,
}

/// A vote: who should lead, and how up to date that candidate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// Proposed leader.
    pub leader: Sid,
    /// Last logged zxid of the proposed leader.
    pub zxid: Zxid,
    /// Current epoch of the proposed leader.
    pub peer_epoch: u32,
}

impl Vote {
    /// Fast Leader Election's total order: higher peer epoch, then higher zxid, then higher sid.
    pub fn beats(&self, other: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (other.peer_epoch, other.zxid, other.leader)
    }
}

/// An election notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// State of the sender.
    pub state: ServerState,
    /// The sender's current vote.
    pub vote: Vote,
    /// Logical clock of the sender's election rounds.
    pub election_epoch: u64,
    /// Version of the config the sender counts with (the zxid of the reconfig that made it, 0
    /// for the configured one), as ZooKeeper's notifications carry it: a server that counts
    /// with an older config and logged the reconfig that made this one adopts it.
    pub config_version: u64,
}

/// One replicated transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Position in the total order.
    pub zxid: Zxid,
    /// Server that received the request from its client.
    pub origin: Sid,
    /// Request id at the origin server, used to answer the client.
    pub request_id: u64,
    /// The state machine operation, opaque to Zab.
    #[serde(with = "crate::byte_vec")]
    pub body: Vec<u8>,
}

/// A serialized state machine image covering every txn up to `last_zxid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Last txn included in the image.
    pub last_zxid: Zxid,
    /// The state machine's serialized state, shared (a follower hands the same bytes to its
    /// disk and to its tree).
    #[serde(with = "crate::byte_vec::shared")]
    pub state: bytes::Bytes,
}

/// Zab packets between a leader and its followers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZabMessage {
    /// Follower -> leader: start of discovery.
    FollowerInfo {
        accepted_epoch: u32,
        last_zxid: Zxid,
    },
    /// Leader -> follower: the epoch it proposes to establish.
    LeaderInfo { new_epoch: u32 },
    /// Follower -> leader: the epoch is accepted (and persisted); its history summary.
    AckEpoch { current_epoch: u32, last_zxid: Zxid },
    /// Leader -> follower: synchronization. The follower truncates or installs the snapshot,
    /// appends `txns`, persists them, writes `currentEpoch = epoch`, then acks.
    NewLeader {
        epoch: u32,
        truncate_to: Option<Zxid>,
        snapshot: Option<Snapshot>,
        txns: Vec<Txn>,
    },
    /// Follower -> leader: the synced history and the new epoch are on disk.
    AckNewLeader { epoch: u32 },
    /// Leader -> follower: the follower may serve; everything up to `committed` is committed.
    UpToDate { committed: Zxid },
    /// Leader -> follower: a new txn to log.
    Proposal(Txn),
    /// Follower -> leader: every proposal up to this zxid is on disk.
    Ack(Zxid),
    /// Leader -> follower: every txn up to this zxid is committed.
    Commit(Zxid),
    /// Leader -> follower heartbeat, carrying the leader's commit point.
    Ping { committed: Zxid },
    /// Follower -> leader heartbeat answer.
    PingReply,
    /// Follower -> leader: a write forwarded from a follower's client.
    Request {
        request_id: u64,
        #[serde(with = "crate::byte_vec")]
        body: Vec<u8>,
    },
    /// Leader -> follower: a forwarded write could not be proposed.
    RequestFailed { request_id: u64, reason: String },
    /// Leader -> observer: a committed txn (observers get no proposals and never ack).
    Inform(Txn),
    /// Leader -> follower: every proposal up to this zxid is on the leader's disk. Where the
    /// leader and one follower are a quorum, that follower commits what both hold on disk
    /// without waiting for the COMMIT (protocol version 3).
    LeaderDurable(Zxid),
}

/// Everything sent on an established peer link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// A Fast Leader Election notification.
    Election(Notification),
    /// A Zab packet.
    Zab(ZabMessage),
    /// Follower -> leader: client sessions active on the sender since its last report.
    SessionTouch(Vec<SessionId>),
    /// A piece of the snapshot image of the `NewLeader` that follows it on the link, whose
    /// own image is then empty: an image travels in pieces of at most
    /// [`crate::sync_parts::PIECE`] bytes, so no frame grows with the tree (protocol
    /// version 4).
    ImagePiece(#[serde(with = "crate::byte_vec::shared")] bytes::Bytes),
    /// A batch of the txns of the `NewLeader` that follows it on the link, whose own txn list
    /// is then empty: a DIFF's txns travel in batches of about [`crate::sync_parts::PIECE`]
    /// bytes (protocol version 4).
    SyncTxns(Vec<Txn>),
}
