//! Seeded mutation fuzzing of every decoder in this crate: the peer codec (frames, handshake
//! frames, peer messages) and every jute record. Valid encodings are mutated (bit flips, byte
//! overwrites with extreme values, truncation, splicing) and random bytes are fed too; no input
//! may panic, abort or allocate beyond what the limits allow. `ROBUSTNESS_CASES=N` runs more.

use crate::codec::{self, PeerCodec};
use crate::jute::*;
use crate::mutation::{self, mutate, Rng};
use crate::zk::SessionId;
use crate::{HandshakeFrame, Notification, PeerMessage, ServerState, Txn, Vote, ZabMessage, Zxid};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

fn cases() -> u64 {
    mutation::cases("ROBUSTNESS_CASES", 20_000)
}

fn peer_samples() -> Vec<Vec<u8>> {
    let txn = Txn {
        zxid: Zxid::new(3, 9),
        origin: 2,
        request_id: 77,
        body: b"/a/b body".to_vec(),
    };
    let messages = [
        PeerMessage::Election(Notification {
            state: ServerState::Looking,
            vote: Vote {
                leader: 3,
                zxid: Zxid::new(1, 2),
                peer_epoch: 1,
            },
            election_epoch: 5,
            config_version: 0,
        }),
        PeerMessage::Zab(ZabMessage::Proposal(txn.clone())),
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: 4,
            truncate_to: Some(Zxid::new(3, 1)),
            snapshot: None,
            txns: vec![txn],
        }),
        PeerMessage::Zab(ZabMessage::RequestFailed {
            request_id: 1,
            reason: "no".into(),
        }),
        PeerMessage::SessionTouch(vec![SessionId(1), SessionId(-1), SessionId(i64::MAX)]),
    ];
    let mut out: Vec<Vec<u8>> = messages.iter().map(|m| codec::encode(m).unwrap()).collect();
    out.push(
        codec::encode(&HandshakeFrame::Hello {
            version: 2,
            sid: 3,
            nonce: [9; 32],
        })
        .unwrap(),
    );
    out
}

#[test]
fn mutated_peer_frames_never_panic() {
    let samples = peer_samples();
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..cases() {
        let pick = rng.below(samples.len());
        let input = mutate(&mut rng, &samples[pick]);
        let _ = codec::decode::<PeerMessage>(&input);
        let _ = codec::decode::<HandshakeFrame>(&input);
        let mut framed = BytesMut::from(&(input.len() as u32).to_be_bytes()[..]);
        framed.extend_from_slice(&input);
        let mut c = PeerCodec::<PeerMessage, PeerMessage>::default();
        let _ = c.decode(&mut framed);
    }
}

fn jute_samples() -> Vec<Vec<u8>> {
    let acl = vec![Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: "u:h".into(),
        },
    }];
    vec![
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 1,
            time_out: 4000,
            session_id: 7,
            passwd: Buffer(vec![1; 16]),
        }
        .to_bytes(),
        CreateRequest {
            path: "/a".into(),
            data: NullableBuffer::bytes(b"d".to_vec()),
            acl: acl.clone(),
            flags: 0,
        }
        .to_bytes(),
        SetAclRequest {
            path: "/a".into(),
            acl,
            version: -1,
        }
        .to_bytes(),
        MultiHeader {
            op: 1,
            done: false,
            err: -1,
        }
        .to_bytes(),
        SetWatches {
            relative_zxid: 1,
            data_watches: vec!["/a".into()],
            exist_watches: vec![],
            child_watches: vec!["/b".into()],
        }
        .to_bytes(),
    ]
}

/// Decodes `input` as every jute record a client or server reads.
fn read_every_record(input: &[u8]) {
    macro_rules! read_all {
        ($($t:ty),*) => { $( let _ = <$t>::from_bytes(input); )* };
    }
    read_all!(
        Id,
        Acl,
        Stat,
        ConnectRequest,
        ConnectResponse,
        RequestHeader,
        ReplyHeader,
        CreateRequest,
        CreateTtlRequest,
        CreateResponse,
        Create2Response,
        DeleteRequest,
        PathWatchRequest,
        StatResponse,
        GetDataResponse,
        SetDataRequest,
        GetChildrenResponse,
        GetChildren2Response,
        PathRequest,
        CheckVersionRequest,
        GetAclResponse,
        SetAclRequest,
        AuthPacket,
        WatcherEvent,
        MultiHeader,
        ErrorResponse,
        SetWatches,
        AddWatchRequest,
        WatchesRequest,
        ClientInfo,
        WhoAmIResponse,
        SetWatches2,
        IntResponse
    );
}

#[test]
fn mutated_jute_records_never_panic() {
    let samples = jute_samples();
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..cases() {
        let pick = rng.below(samples.len());
        read_every_record(&mutate(&mut rng, &samples[pick]));
    }
}
