//! ZooKeeper's wire codes as enums: op codes, error codes, watch event types and states.

/// Declares an enum of wire codes with `code()` and `known(code)` both ways.
macro_rules! wire_codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $(+ $unknown:ident)? {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            $(
                /// A code this version does not know, kept as it arrived.
                $unknown(i32),
            )?
        }

        impl $name {
            /// Every known value.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The code on the wire.
            pub const fn code(self) -> i32 {
                match self {
                    $($name::$variant => $code,)*
                    $($name::$unknown(code) => code,)?
                }
            }

            /// The known value of a wire code.
            pub const fn known(code: i32) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_codes! {
    /// A request's op code (ZooKeeper 3.8's `ZooDefs.OpCode`).
    pub enum OpCode {
        /// A watch event (only as a reply header's op).
        Notification = 0,
        /// create.
        Create = 1,
        /// delete.
        Delete = 2,
        /// exists.
        Exists = 3,
        /// getData.
        GetData = 4,
        /// setData.
        SetData = 5,
        /// getACL.
        GetAcl = 6,
        /// setACL.
        SetAcl = 7,
        /// getChildren.
        GetChildren = 8,
        /// sync.
        Sync = 9,
        /// ping.
        Ping = 11,
        /// getChildren2 (children and Stat).
        GetChildren2 = 12,
        /// check (a version, inside multi).
        Check = 13,
        /// multi.
        Multi = 14,
        /// create2 (path and Stat).
        Create2 = 15,
        /// reconfig.
        Reconfig = 16,
        /// checkWatches.
        CheckWatches = 17,
        /// removeWatches.
        RemoveWatches = 18,
        /// createContainer.
        CreateContainer = 19,
        /// deleteContainer (a txn of the container reaper, never a request).
        DeleteContainer = 20,
        /// createTTL.
        CreateTtl = 21,
        /// multiRead.
        MultiRead = 22,
        /// auth.
        Auth = 100,
        /// setWatches.
        SetWatches = 101,
        /// sasl.
        Sasl = 102,
        /// getEphemerals.
        GetEphemerals = 103,
        /// getAllChildrenNumber.
        GetAllChildrenNumber = 104,
        /// setWatches2.
        SetWatches2 = 105,
        /// addWatch.
        AddWatch = 106,
        /// whoAmI.
        WhoAmI = 107,
        /// createSession (a txn, never a request).
        CreateSession = -10,
        /// closeSession.
        CloseSession = -11,
        /// error (a failed sub-op of multi).
        Error = -1,
    }
}

/// An op code ZooKeeper does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown op code {0}")]
pub struct UnknownOpCode(pub i32);

impl TryFrom<i32> for OpCode {
    type Error = UnknownOpCode;

    fn try_from(code: i32) -> Result<OpCode, UnknownOpCode> {
        OpCode::known(code).ok_or(UnknownOpCode(code))
    }
}

wire_codes! {
    /// A failure in a reply header or multi result (ZooKeeper 3.8's `KeeperException.Code`
    /// without OK, which is the absence of an error).
    pub enum ZkError + Unknown {
        /// SystemError.
        SystemError = -1,
        /// RuntimeInconsistency (also: a multi sub-op after the one that failed).
        RuntimeInconsistency = -2,
        /// DataInconsistency.
        DataInconsistency = -3,
        /// ConnectionLoss.
        ConnectionLoss = -4,
        /// MarshallingError: the request did not decode.
        MarshallingError = -5,
        /// Unimplemented: an op this server does not have.
        Unimplemented = -6,
        /// OperationTimeout.
        OperationTimeout = -7,
        /// BadArguments.
        BadArguments = -8,
        /// UnknownSession.
        UnknownSession = -12,
        /// NewConfigNoQuorum.
        NewConfigNoQuorum = -13,
        /// ReconfigInProgress.
        ReconfigInProgress = -14,
        /// APIError.
        ApiError = -100,
        /// NoNode.
        NoNode = -101,
        /// NoAuth.
        NoAuth = -102,
        /// BadVersion.
        BadVersion = -103,
        /// NoChildrenForEphemerals.
        NoChildrenForEphemerals = -108,
        /// NodeExists.
        NodeExists = -110,
        /// NotEmpty.
        NotEmpty = -111,
        /// SessionExpired.
        SessionExpired = -112,
        /// InvalidCallback.
        InvalidCallback = -113,
        /// InvalidACL.
        InvalidAcl = -114,
        /// AuthFailed.
        AuthFailed = -115,
        /// SessionMoved.
        SessionMoved = -118,
        /// NotReadOnly: a write to a read-only server.
        NotReadOnly = -119,
        /// EphemeralOnLocalSession.
        EphemeralOnLocalSession = -120,
        /// NoWatcher.
        NoWatcher = -121,
        /// RequestTimeout.
        RequestTimeout = -122,
        /// ReconfigDisabled.
        ReconfigDisabled = -123,
        /// SessionClosedRequireSaslAuth.
        SessionClosedRequireSaslAuth = -124,
        /// QuotaExceeded.
        QuotaExceeded = -125,
        /// Throttled.
        Throttled = -127,
    }
}

/// The `err` of a reply that succeeded.
pub const OK: i32 = 0;

impl ZkError {
    /// The outcome a reply header's `err` carries: 0 is success, any other code an error
    /// (kept as [`ZkError::Unknown`] when this version does not know it).
    pub fn from_wire(code: i32) -> Result<(), ZkError> {
        match code {
            OK => Ok(()),
            _ => Err(ZkError::known(code).unwrap_or(ZkError::Unknown(code))),
        }
    }

    /// The `err` of a reply header for `outcome`.
    pub fn to_wire(outcome: Result<(), ZkError>) -> i32 {
        outcome.err().map_or(OK, ZkError::code)
    }
}

impl std::fmt::Display for ZkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZkError::Unknown(code) => write!(f, "unknown ZooKeeper error {code}"),
            known => write!(f, "{known:?} ({})", known.code()),
        }
    }
}

impl std::error::Error for ZkError {}

wire_codes! {
    /// What a watch event reports (ZooKeeper's `Watcher.Event.EventType`).
    pub enum EventType + Unknown {
        /// A change of the session's state, not of a znode.
        None = -1,
        /// NodeCreated.
        NodeCreated = 1,
        /// NodeDeleted.
        NodeDeleted = 2,
        /// NodeDataChanged.
        NodeDataChanged = 3,
        /// NodeChildrenChanged.
        NodeChildrenChanged = 4,
        /// DataWatchRemoved.
        DataWatchRemoved = 5,
        /// ChildWatchRemoved.
        ChildWatchRemoved = 6,
        /// PersistentWatchRemoved.
        PersistentWatchRemoved = 7,
    }
}

wire_codes! {
    /// A session's state in a watch event (ZooKeeper's `Watcher.Event.KeeperState`).
    pub enum KeeperState + Unknown {
        /// Disconnected.
        Disconnected = 0,
        /// SyncConnected.
        SyncConnected = 3,
        /// AuthFailed.
        AuthFailed = 4,
        /// ConnectedReadOnly.
        ConnectedReadOnly = 5,
        /// SaslAuthenticated.
        SaslAuthenticated = 6,
        /// Expired.
        Expired = -112,
        /// Closed (client side only).
        Closed = 7,
    }
}

wire_codes! {
    /// The mode of addWatch (ZooKeeper's `AddWatchMode`).
    pub enum AddWatchMode {
        /// Every change of the node and of its child list, until removed.
        Persistent = 0,
        /// Every create, delete and data change at or below the node, until removed.
        PersistentRecursive = 1,
    }
}

wire_codes! {
    /// The watches checkWatches and removeWatches name (ZooKeeper's `Watcher.WatcherType`).
    pub enum WatcherType {
        /// Child watches.
        Children = 1,
        /// Data and exist watches.
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

impl EventType {
    /// The event type of a wire code, unknown ones kept.
    pub fn from_wire(code: i32) -> EventType {
        EventType::known(code).unwrap_or(EventType::Unknown(code))
    }
}

impl KeeperState {
    /// The state of a wire code, unknown ones kept.
    pub fn from_wire(code: i32) -> KeeperState {
        KeeperState::known(code).unwrap_or(KeeperState::Unknown(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_and_are_distinct() {
        for op in OpCode::KNOWN {
            assert_eq!(OpCode::try_from(op.code()), Ok(*op));
        }
        for e in ZkError::KNOWN {
            assert_eq!(ZkError::from_wire(e.code()), Err(*e));
        }
        for e in EventType::KNOWN {
            assert_eq!(EventType::from_wire(e.code()), *e);
        }
        for s in KeeperState::KNOWN {
            assert_eq!(KeeperState::from_wire(s.code()), *s);
        }
        for m in AddWatchMode::KNOWN {
            assert_eq!(AddWatchMode::known(m.code()), Some(*m));
        }
        for t in WatcherType::KNOWN {
            assert_eq!(WatcherType::known(t.code()), Some(*t));
        }
        let mut codes: Vec<i32> = ZkError::KNOWN.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ZkError::KNOWN.len());
    }

    #[test]
    fn the_values_zookeeper_defines() {
        assert_eq!(OpCode::CreateTtl.code(), 21);
        assert_eq!(OpCode::CloseSession.code(), -11);
        assert_eq!(OpCode::WhoAmI.code(), 107);
        assert_eq!(ZkError::NoNode.code(), -101);
        assert_eq!(ZkError::QuotaExceeded.code(), -125);
        assert_eq!(KeeperState::Expired.code(), -112);
        assert_eq!(EventType::NodeChildrenChanged.code(), 4);
        assert_eq!(AddWatchMode::PersistentRecursive.code(), 1);
        assert_eq!(WatcherType::Children.code(), 1);
        assert_eq!(WatcherType::PersistentRecursive.code(), 5);
    }

    #[test]
    fn unknown_codes_are_typed_not_lost() {
        assert_eq!(OpCode::try_from(10), Err(UnknownOpCode(10)));
        assert_eq!(OpCode::try_from(i32::MIN), Err(UnknownOpCode(i32::MIN)));
        assert_eq!(ZkError::from_wire(0), Ok(()));
        assert_eq!(ZkError::from_wire(-999), Err(ZkError::Unknown(-999)));
        assert_eq!(ZkError::Unknown(-999).code(), -999);
        assert_eq!(ZkError::to_wire(Err(ZkError::Unknown(-999))), -999);
        assert_eq!(ZkError::to_wire(Ok(())), 0);
        assert_eq!(ZkError::NoNode.to_string(), "NoNode (-101)");
        assert_eq!(KeeperState::from_wire(42), KeeperState::Unknown(42));
    }
}
