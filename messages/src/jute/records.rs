//! The ZooKeeper records real clients send and expect (see shared/docs/zookeeper-protocol.md).

use super::{Buffer, NullableBuffer};
use crate::jute_record;

jute_record! {
    /// An identity: scheme and id (`world:anyone`, `digest:user:hash`, `ip:1.2.3.4`).
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    /// A permission grant.
    pub struct Acl { pub perms: i32, pub id: Id }
}

jute_record! {
    /// A znode's metadata (68 bytes).
    pub struct Stat {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub data_length: i32, pub num_children: i32, pub pzxid: i64,
    }
}

jute_record! {
    /// First client frame.
    pub struct ConnectRequest {
        pub protocol_version: i32, pub last_zxid_seen: i64, pub time_out: i32,
        pub session_id: i64, pub passwd: Buffer,
    }
}

jute_record! {
    /// First server frame (the readOnly byte follows).
    pub struct ConnectResponse {
        pub protocol_version: i32, pub time_out: i32, pub session_id: i64, pub passwd: Buffer,
        pub read_only: bool,
    }
}

jute_record! {
    /// Header of every request after the connect.
    pub struct RequestHeader { pub xid: i32, pub op: i32 }
}

jute_record! {
    /// Header of every reply.
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}

jute_record! {
    /// create, create2, createContainer.
    pub struct CreateRequest { pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub flags: i32 }
}

jute_record! {
    /// createTTL.
    pub struct CreateTtlRequest {
        pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64,
    }
}

jute_record! {
    /// Reply to create.
    pub struct CreateResponse { pub path: String }
}

jute_record! {
    /// Reply to create2 and its variants.
    pub struct Create2Response { pub path: String, pub stat: Stat }
}

jute_record! {
    /// delete.
    pub struct DeleteRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// exists, getData, getChildren, getChildren2.
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}

jute_record! {
    /// Reply to exists and setData, and to setACL.
    pub struct StatResponse { pub stat: Stat }
}

jute_record! {
    /// Reply to getData.
    pub struct GetDataResponse { pub data: NullableBuffer, pub stat: Stat }
}

jute_record! {
    /// reconfig: comma-separated joining `server.N=...` specs and leaving ids (incremental),
    /// or the whole new membership; `cur_config_id` is the expected config version (-1: any).
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// setData.
    pub struct SetDataRequest { pub path: String, pub data: NullableBuffer, pub version: i32 }
}

jute_record! {
    /// Reply to getChildren.
    pub struct GetChildrenResponse { pub children: Vec<String> }
}

jute_record! {
    /// Reply to getChildren2.
    pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat }
}

jute_record! {
    /// sync, getACL, getEphemerals, getAllChildrenNumber, and the reply to sync.
    pub struct PathRequest { pub path: String }
}

jute_record! {
    /// check (in multi).
    pub struct CheckVersionRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// Reply to getACL.
    pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat }
}

jute_record! {
    /// setACL.
    pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 }
}

jute_record! {
    /// auth.
    pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Buffer }
}

jute_record! {
    /// A watch notification (xid -1).
    pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String }
}

jute_record! {
    /// Header of each multi sub-op and result.
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}

impl MultiHeader {
    /// The header after a multi's last op or result: op -1, done, err -1.
    pub const END: MultiHeader = MultiHeader {
        op: crate::zk::OpCode::Error.code(),
        done: true,
        err: -1,
    };
}

jute_record! {
    /// The error result of a failed multi sub-op.
    pub struct ErrorResponse { pub err: i32 }
}

jute_record! {
    /// setWatches (on reconnect).
    pub struct SetWatches {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// addWatch: mode 0 persistent, 1 persistent recursive.
    pub struct AddWatchRequest { pub path: String, pub mode: i32 }
}

jute_record! {
    /// checkWatches and removeWatches.
    pub struct WatchesRequest { pub path: String, pub watcher_type: i32 }
}

jute_record! {
    /// One authenticated identity, in a whoAmI reply.
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

jute_record! {
    /// Reply to whoAmI.
    pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> }
}

jute_record! {
    /// setWatches2: setWatches plus persistent and persistent-recursive watches.
    pub struct SetWatches2 {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>, pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// Reply to getAllChildrenNumber.
    pub struct IntResponse { pub number: i32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::{Jute, JuteError};

    #[test]
    fn the_end_of_a_multi_is_op_minus_one_done_err_minus_one() {
        let end = MultiHeader::END.to_bytes();
        assert_eq!(end, [0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn stat_is_68_bytes_and_round_trips() {
        let s = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 68);
        assert_eq!(Stat::from_bytes(&b).unwrap(), s);
    }

    #[test]
    fn connect_request_of_the_c_client_is_44_bytes_plus_read_only() {
        let c = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: 0,
            passwd: Buffer(vec![0; 16]),
        };
        assert_eq!(c.to_bytes().len(), 44);
    }

    #[test]
    fn null_data_stays_null_and_empty_data_empty() {
        let null = SetDataRequest {
            path: "/a".into(),
            data: NullableBuffer(None),
            version: -1,
        };
        let bytes = null.to_bytes();
        assert_eq!(&bytes[6..10], &(-1i32).to_be_bytes());
        assert_eq!(SetDataRequest::from_bytes(&bytes).unwrap(), null);
        let empty = SetDataRequest {
            data: NullableBuffer::bytes(Vec::new()),
            ..null
        };
        let bytes = empty.to_bytes();
        assert_eq!(&bytes[6..10], &0i32.to_be_bytes());
        let back = SetDataRequest::from_bytes(&bytes).unwrap();
        assert!(!back.data.is_null());
        assert_eq!(back, empty);
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        let mut bytes = PathRequest { path: "/a".into() }.to_bytes();
        bytes[0..4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            PathRequest::from_bytes(&bytes),
            Err(JuteError::BadLength { .. })
        ));
        let bytes = (-5i32).to_be_bytes();
        assert!(matches!(
            GetChildrenResponse::from_bytes(&bytes),
            Err(JuteError::BadLength { .. })
        ));
        assert!(matches!(
            Stat::from_bytes(&[0; 10]),
            Err(JuteError::Truncated { .. })
        ));
    }
}
