//! ZooKeeper's wire vocabulary: op codes, error codes, watch event types and states, create
//! modes, session ids, special xids and permission bits.

mod codes;
mod create_mode;
mod ids;

pub use codes::{
    AddWatchMode, EventType, KeeperState, OpCode, UnknownOpCode, WatcherType, ZkError, OK,
};
pub use create_mode::{ttl_of_owner, ttl_owner, CreateMode, MAX_TTL_MS};
pub use ids::{ConnectionId, SessionId};

/// Special xids.
pub mod xid {
    pub const WATCH_EVENT: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// Permission bits.
pub mod perm {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// `ephemeralOwner` of container znodes.
pub const CONTAINER_OWNER: i64 = i64::MIN;
