//! Valid inputs for each target, from which fuzzing starts: real encodings made by the same
//! code the servers use, so that mutations reach past the first length check.

use ensemble_actors::data_tree::quota::{limit_path, stat_path};
use ensemble_actors::data_tree::{AclEntry, CreateMode, DataTree, TreeOp, TreeTxn};
use ensemble_actors::election::ElectionTiming;
use ensemble_actors::spark_master::ensemble_link::{record_change, StoreOp};
use ensemble_actors::storage::{files, SnapshotImage};
use ensemble_actors::zab::{Durable, PeerTiming, QuorumPeer};
use ensemble_messages::jute::*;
use ensemble_messages::peer::{HandshakeFrame, NONCE_LEN};
use ensemble_messages::spark::WorkerSpec;
use ensemble_messages::sync_parts;
use ensemble_messages::zk::{OpCode, SessionId};
use ensemble_messages::{
    codec, Notification, PeerMessage, ServerState, Snapshot, Txn, Vote, ZabMessage, Zxid,
};

/// The seeds of the target called `target`; none for an unknown name.
pub fn of(target: &str) -> Vec<Vec<u8>> {
    match target {
        "peer_stream" => peer_stream(),
        "client_session" => client_session(),
        "txn_apply" => tree_txns().iter().map(TreeTxn::encode).collect(),
        "storage_log" => vec![log_file()],
        "storage_snapshot" => snapshot_file(),
        "spark_record" => spark_record(),
        "config_text" => config_text(),
        "zab_peer" => zab_scripts(),
        "apache_files" => vec![APACHE_SNAPSHOT.to_vec(), APACHE_LOG.to_vec()],
        "rest_request" => rest_request(),
        "key_store" => key_store(),
        _ => Vec::new(),
    }
}

/// Every target's name, as `fuzz_targets/` and `seeds/` name them.
pub const TARGETS: [&str; 11] = [
    "peer_stream",
    "client_session",
    "txn_apply",
    "storage_log",
    "storage_snapshot",
    "spark_record",
    "config_text",
    "zab_peer",
    "apache_files",
    "rest_request",
    "key_store",
];

/// The password of the encrypted key in the `key_store` seeds.
pub const KEY_PASSWORD: &str = "fuzz";

/// A snapshot Apache ZooKeeper 3.8 wrote (the import's fixture).
pub const APACHE_SNAPSHOT: &[u8] =
    include_bytes!("../../actors/fixtures/apache-3.8/version-2/snapshot.10000005b");

/// A txn log Apache ZooKeeper 3.8 wrote, with its preallocated padding.
pub const APACHE_LOG: &[u8] =
    include_bytes!("../../actors/fixtures/apache-3.8/version-2/log.100000052");

/// A tree with a few znodes of each kind, the ACLs of each scheme and a session.
pub fn populated_tree() -> DataTree {
    populate(DataTree::default())
}

/// `tree` with the txns of [`populated_tree`] applied.
fn populate(mut tree: DataTree) -> DataTree {
    for (i, t) in tree_txns().iter().enumerate() {
        let _ = tree.apply(&Txn {
            zxid: Zxid::new(1, i as u32 + 1),
            origin: 1,
            request_id: 0,
            body: t.encode(),
        });
    }
    tree
}

fn world() -> Vec<AclEntry> {
    vec![AclEntry {
        perms: 31,
        scheme: "world".into(),
        id: "anyone".into(),
    }]
}

fn txn(session_id: i64, op: TreeOp) -> TreeTxn {
    TreeTxn {
        session_id: SessionId(session_id),
        time_ms: 5,
        auth: vec![("digest".into(), "u:hash".into())],
        op,
    }
}

fn create(path: &str, acl: Vec<AclEntry>, mode: CreateMode) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: b"data".to_vec(),
        acl,
        mode,
    }
}

/// Txns of every kind, valid in this order on an empty tree.
fn tree_txns() -> Vec<TreeTxn> {
    let digest = vec![AclEntry {
        perms: 1,
        scheme: "digest".into(),
        id: "u:hash".into(),
    }];
    vec![
        txn(
            7,
            TreeOp::CreateSession {
                timeout_ms: 4000,
                password: [3; 16],
            },
        ),
        txn(7, create("/a", world(), CreateMode::Persistent)),
        txn(7, create("/a/b", digest, CreateMode::Persistent)),
        txn(7, create("/a/e", world(), CreateMode::Ephemeral)),
        txn(7, create("/a/s", world(), CreateMode::PersistentSequential)),
        txn(7, create("/c", world(), CreateMode::Container)),
        txn(
            7,
            TreeOp::Multi(vec![
                create("/m", world(), CreateMode::Persistent),
                TreeOp::SetData {
                    path: "/m".into(),
                    data: b"x".to_vec(),
                    version: 0,
                },
                TreeOp::Check {
                    path: "/m".into(),
                    version: 1,
                },
            ]),
        ),
        txn(
            7,
            TreeOp::SetAcl {
                path: "/m".into(),
                acl: world(),
                version: -1,
            },
        ),
        txn(
            7,
            TreeOp::Delete {
                path: "/m".into(),
                version: -1,
            },
        ),
        // Null data (length -1 on the wire), which has txn kinds of its own.
        txn(
            7,
            TreeOp::create("/null".into(), None, world(), CreateMode::Persistent),
        ),
        txn(7, TreeOp::set_data("/a".into(), None, -1)),
        txn(0, TreeOp::Reap { path: "/c".into() }),
        txn(7, TreeOp::MoveSession),
        txn(7, TreeOp::CloseSession),
        // A quota on /a, its usage kept by every later write under /a.
        txn(
            7,
            create("/zookeeper/quota/a", world(), CreateMode::Persistent),
        ),
        txn(
            7,
            create_with(&limit_path("/a"), b"count=5,bytes=-1=;byteHardLimit=64"),
        ),
        txn(7, create_with(&stat_path("/a"), b"count=0,bytes=0")),
        txn(
            7,
            TreeOp::SetData {
                path: "/a".into(),
                data: b"quota".to_vec(),
                version: -1,
            },
        ),
    ]
}

fn create_with(path: &str, data: &[u8]) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: data.to_vec(),
        acl: world(),
        mode: CreateMode::Persistent,
    }
}

fn frame(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend(bytes);
    out
}

fn peer_stream() -> Vec<Vec<u8>> {
    let handshakes = [
        HandshakeFrame::Hello {
            version: 2,
            sid: 3,
            nonce: [9; NONCE_LEN],
        },
        HandshakeFrame::Challenge {
            sid: 1,
            nonce: [4; NONCE_LEN],
            proof: Some([5; 32]),
        },
        HandshakeFrame::Prove { proof: None },
        HandshakeFrame::Accepted,
        HandshakeFrame::DialsBack,
    ];
    let body = tree_txns()[1].encode();
    let txn = Txn {
        zxid: Zxid::new(3, 9),
        origin: 2,
        request_id: 77,
        body: body.clone(),
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
        PeerMessage::Zab(ZabMessage::FollowerInfo {
            accepted_epoch: 2,
            last_zxid: Zxid::new(2, 7),
        }),
        PeerMessage::Zab(ZabMessage::Inform(txn.clone())),
        PeerMessage::Zab(ZabMessage::LeaderDurable(Zxid::new(2, 8))),
        PeerMessage::Zab(ZabMessage::Proposal(txn)),
        PeerMessage::Zab(ZabMessage::Request {
            request_id: 78,
            body,
        }),
    ];
    let mut stream = Vec::new();
    let mut seeds = Vec::new();
    for h in &handshakes {
        let f = frame(codec::encode(h).unwrap_or_default());
        stream.extend_from_slice(&f);
        seeds.push(f);
    }
    // A SNAP's NEWLEADER as a link sends it: its image's pieces, its txns, then itself.
    let snap = PeerMessage::Zab(ZabMessage::NewLeader {
        epoch: 3,
        truncate_to: None,
        snapshot: Some(Snapshot {
            last_zxid: Zxid::new(2, 8),
            state: populated_tree().serialize().into(),
        }),
        txns: vec![Txn {
            zxid: Zxid::new(3, 1),
            origin: 2,
            request_id: 79,
            body: tree_txns()[2].encode(),
        }],
    });
    for m in messages.iter().cloned().chain(sync_parts::split(snap)) {
        let f = frame(codec::encode(&m).unwrap_or_default());
        stream.extend_from_slice(&f);
        seeds.push(f);
    }
    seeds.push(stream);
    seeds
}

fn request(xid: i32, code: OpCode, body: impl Jute) -> Vec<u8> {
    let mut bytes = RequestHeader {
        xid,
        op: code.code(),
    }
    .to_bytes();
    bytes.extend(body.to_bytes());
    frame(bytes)
}

fn acl(scheme: &str, id: &str) -> Vec<Acl> {
    vec![Acl {
        perms: 31,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }]
}

fn create_request(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: NullableBuffer::bytes(b"v".to_vec()),
        acl: acl("world", "anyone"),
        flags,
    }
}

fn path_watch(path: &str) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch: true,
    }
}

/// A multi of a create, a setData, a check and a delete, with its closing header.
fn multi_body() -> Vec<u8> {
    let mut out = Vec::new();
    let mut part = |code: OpCode, body: Vec<u8>| {
        out.extend(
            MultiHeader {
                op: code.code(),
                done: false,
                err: -1,
            }
            .to_bytes(),
        );
        out.extend(body);
    };
    part(OpCode::Create, create_request("/x", 0).to_bytes());
    let set = SetDataRequest {
        path: "/x".into(),
        data: NullableBuffer(None),
        version: 0,
    };
    part(OpCode::SetData, set.to_bytes());
    let check = CheckVersionRequest {
        path: "/x".into(),
        version: 1,
    };
    part(OpCode::Check, check.to_bytes());
    let delete = DeleteRequest {
        path: "/x".into(),
        version: -1,
    };
    part(OpCode::Delete, delete.to_bytes());
    out.extend(MultiHeader::END.to_bytes());
    out
}

/// A session's connect, then requests of each kind.
fn client_session() -> Vec<Vec<u8>> {
    let connect = frame(
        ConnectRequest {
            time_out: 10_000,
            passwd: Buffer(vec![0; 16]),
            ..ConnectRequest::default()
        }
        .to_bytes(),
    );
    let auth = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Buffer(b"u:p".to_vec()),
    };
    let requests = [
        request(1, OpCode::Create, create_request("/n", 0)),
        request(2, OpCode::Create2, create_request("/n/s-", 3)),
        request(3, OpCode::GetData, path_watch("/n")),
        request(4, OpCode::GetChildren2, path_watch("/n")),
        request(5, OpCode::Exists, path_watch("/none")),
        request(-4, OpCode::Auth, auth),
        request(6, OpCode::SetAcl, {
            SetAclRequest {
                path: "/n".into(),
                acl: acl("auth", ""),
                version: -1,
            }
        }),
        request(
            7,
            OpCode::GetAcl,
            PathRequest {
                path: "/a/b".into(),
            },
        ),
        request(
            8,
            OpCode::AddWatch,
            AddWatchRequest {
                path: "/".into(),
                mode: 1,
            },
        ),
        request(
            9,
            OpCode::GetAllChildrenNumber,
            PathRequest { path: "/".into() },
        ),
        request(10, OpCode::Sync, PathRequest { path: "/n".into() }),
        {
            let mut bytes = RequestHeader {
                xid: 11,
                op: OpCode::Multi.code(),
            }
            .to_bytes();
            bytes.extend(multi_body());
            frame(bytes)
        },
        request(
            12,
            OpCode::SetData,
            SetDataRequest {
                path: "/n".into(),
                data: NullableBuffer::bytes(b"w".to_vec()),
                version: 0,
            },
        ),
        request(
            13,
            OpCode::RemoveWatches,
            WatchesRequest {
                path: "/n".into(),
                watcher_type: 1,
            },
        ),
        request(14, OpCode::GetEphemerals, PathRequest { path: "/".into() }),
        request(
            15,
            OpCode::Delete,
            DeleteRequest {
                path: "/n".into(),
                version: -1,
            },
        ),
        request(16, OpCode::CloseSession, Buffer(Vec::new())),
    ];
    let mut whole = connect.clone();
    let mut seeds = Vec::new();
    for r in &requests {
        whole.extend_from_slice(r);
        let mut one = connect.clone();
        one.extend_from_slice(r);
        seeds.push(one);
    }
    seeds.push(whole);
    seeds
}

/// A log file of every kind of txn.
fn log_file() -> Vec<u8> {
    let mut out = files::log_header().to_vec();
    for (i, t) in tree_txns().iter().enumerate() {
        let txn = Txn {
            zxid: Zxid::new(1, i as u32 + 1),
            origin: 1,
            request_id: i as u64,
            body: t.encode(),
        };
        out.extend(files::encode_record(&txn).unwrap_or_default());
    }
    out
}

/// A snapshot file of the populated tree, and the bare image a SNAP sync sends.
/// Snapshot files and their images: a SNAP's image (format 3) and a snapshot file's
/// (format 5, streamed).
fn snapshot_file() -> Vec<Vec<u8>> {
    let tree = populated_tree();
    let mut streamed = Vec::new();
    let _ = tree.clone().image().write_to(&mut streamed);
    let mut seeds = Vec::new();
    for state in [tree.serialize(), streamed] {
        let snapshot = Snapshot {
            last_zxid: Zxid::new(1, 12),
            state: state.clone().into(),
        };
        seeds.extend([files::encode_snapshot(&snapshot).unwrap_or_default(), state]);
    }
    // An incremental image of the same txns onto the empty tree, which the target applies.
    let mut tracked = DataTree::default();
    let _ = tracked.take_changes();
    let mut tracked = populate(tracked);
    if let Some(changes) = tracked.take_changes() {
        let mut delta = Vec::new();
        let _ = tracked
            .clone()
            .delta_image(Zxid::ZERO, changes)
            .write_to(&mut delta);
        seeds.push(delta);
    }
    seeds
}

fn spark_record() -> Vec<Vec<u8>> {
    let spec = WorkerSpec {
        id: "worker-20261201000000-h-7".into(),
        host: "h".into(),
        port: 7,
        cores: 2,
        memory_mb: 1024,
        webui: "http://h:8081".into(),
    };
    let (_, worker) = record_change(StoreOp::PutWorker(spec));
    vec![
        worker.unwrap_or_default(),
        b"{\"a\":[1,2.5e3,\"s\",null,true]}".to_vec(),
    ]
}

fn rest_request() -> Vec<Vec<u8>> {
    let create = "/v1/submissions/create\n{\"action\":\"CreateSubmissionRequest\",\
                  \"clientSparkVersion\":\"3.5.3\",\"appResource\":\"file:/bin/sh\",\
                  \"appArgs\":[\"-c\",\"true\"],\"sparkProperties\":{\"spark.app.name\":\"x\",\
                  \"spark.driver.memory\":\"1g\",\"spark.driver.cores\":\"2\",\
                  \"spark.driver.supervise\":\"true\"},\"environmentVariables\":{\"A\":\"b\"}}";
    let jar = "/v1/submissions/kill/driver-1-0000\n{\"action\":\"CreateSubmissionRequest\",\
               \"clientSparkVersion\":\"4.0.5\",\"appResource\":\"/a.jar\",\"mainClass\":\"M\",\
               \"sparkProperties\":{\"spark.app.name\":\"y\"},\"extra\":[1]}";
    vec![
        create.as_bytes().to_vec(),
        jar.as_bytes().to_vec(),
        b"/v2/x/status/d\n{}".to_vec(),
    ]
}

fn config_text() -> Vec<Vec<u8>> {
    let zoo = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zk\nclientPort=2181\n\
               server.1=127.0.0.1:2888:3888;2181\nserver.2=localhost:2889:3889:participant\n\
               server.3=[::1]:2890:3890;127.0.0.1:2183\nmaxClientCnxns=60\n\
               4lw.commands.whitelist=srvr, ruok\nzookeeper.DigestAuthenticationProvider.superDigest=super:abc\n\
               sslQuorum=true\nssl.quorum.keyStore.location=/k/q.pem\n\
               ssl.quorum.trustStore.location=/k/ca.p12\nssl.quorum.hostnameVerification=false\n";
    let toml = "[ensemble]\ntick_ms = 200\n[client]\nfour_letter_words = [\"*\"]\n\
                [storage]\ndata_dir = \"/tmp/e\"\n[[servers]]\nid = 1\nhost = \"127.0.0.1\"\n\
                peer_port = 2888\nclient_port = 2181\n";
    vec![zoo.as_bytes().to_vec(), toml.as_bytes().to_vec()]
}

/// PEM files with a certificate block and an encrypted key (one PBKDF2 iteration, so that
/// fuzzing stays fast) whose plaintext is a minimal DER sequence, and the same key alone.
fn key_store() -> Vec<Vec<u8>> {
    let cert = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    let key = ensemble_actors::tls::encrypt_key_pem(
        &[0x30, 0x03, 0x02, 0x01, 0x00],
        KEY_PASSWORD,
        1,
        &[7; 16],
        [9; 16],
    )
    .expect("an encrypted key");
    vec![format!("{cert}{key}").into_bytes(), key.into_bytes()]
}

/// Server 1 of three, with fast election timing and an empty history.
pub fn quorum_peer() -> QuorumPeer {
    let timing = PeerTiming {
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        election: ElectionTiming {
            finalize_wait_ms: 30,
            initial_timeout_ms: 50,
            max_timeout_ms: 800,
        },
        diff_window: 40,
    };
    let durable = Durable {
        accepted_epoch: 0,
        current_epoch: 0,
        snapshot_zxid: Zxid::ZERO,
        log: Vec::new(),
    };
    QuorumPeer::new(1, vec![1, 2, 3], timing, durable)
}

/// The body of a client write a [`zab_peer`](crate::zab_peer) script submits: one of the
/// valid txns, chosen by `pick`.
pub fn write_body(pick: u8) -> Vec<u8> {
    let txns = tree_txns();
    txns[usize::from(pick) % txns.len()].encode()
}

/// Script steps, as [`zab_peer`](crate::zab_peer) reads them.
enum Step {
    From(u64, PeerMessage),
    Tick(u8),
    Durable(usize),
    Up(u64),
    Submit,
}

fn script(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::From(sid, msg) => {
                let bytes = codec::encode(msg).unwrap_or_default();
                out.push(if *sid == 3 { 0x80 } else { 0 });
                out.extend((bytes.len() as u16).to_be_bytes());
                out.extend(bytes);
            }
            Step::Tick(n) => out.extend([1, *n]),
            Step::Durable(n) => out.extend(std::iter::repeat_n(2, *n)),
            Step::Up(sid) => out.push(if *sid == 3 { 0x83 } else { 3 }),
            Step::Submit => out.push(6),
        }
    }
    out
}

fn notification(leader: u64, state: ServerState) -> PeerMessage {
    PeerMessage::Election(Notification {
        state,
        vote: Vote {
            leader,
            zxid: Zxid::ZERO,
            peer_epoch: 0,
        },
        election_epoch: 1,
        config_version: 0,
    })
}

fn zab(msg: ZabMessage) -> PeerMessage {
    PeerMessage::Zab(msg)
}

/// Server 1 elected by the others and leading them through discovery, sync and a few writes;
/// and server 1 following server 3 through the same.
fn zab_scripts() -> Vec<Vec<u8>> {
    use Step::*;
    let looking = ServerState::Looking;
    let body = tree_txns()[1].encode();
    let leading = script(&[
        Up(2),
        Up(3),
        From(2, notification(1, looking)),
        From(3, notification(1, looking)),
        Tick(5),
        Durable(2),
        From(
            2,
            zab(ZabMessage::FollowerInfo {
                accepted_epoch: 0,
                last_zxid: Zxid::ZERO,
            }),
        ),
        From(
            3,
            zab(ZabMessage::FollowerInfo {
                accepted_epoch: 0,
                last_zxid: Zxid::ZERO,
            }),
        ),
        Durable(2),
        From(
            2,
            zab(ZabMessage::AckEpoch {
                current_epoch: 0,
                last_zxid: Zxid::ZERO,
            }),
        ),
        From(
            3,
            zab(ZabMessage::AckEpoch {
                current_epoch: 0,
                last_zxid: Zxid::ZERO,
            }),
        ),
        Durable(2),
        From(2, zab(ZabMessage::AckNewLeader { epoch: 1 })),
        From(3, zab(ZabMessage::AckNewLeader { epoch: 1 })),
        Submit,
        Durable(1),
        From(2, zab(ZabMessage::Ack(Zxid::new(1, 1)))),
        From(
            2,
            zab(ZabMessage::Request {
                request_id: 9,
                body: body.clone(),
            }),
        ),
        Durable(1),
        From(3, zab(ZabMessage::Ack(Zxid::new(1, 2)))),
        From(3, zab(ZabMessage::PingReply)),
        Tick(20),
    ]);
    let txn = Txn {
        zxid: Zxid::new(1, 1),
        origin: 3,
        request_id: 4,
        body,
    };
    let following = script(&[
        Up(2),
        Up(3),
        From(2, notification(3, looking)),
        From(3, notification(3, ServerState::Leading)),
        Tick(5),
        From(3, zab(ZabMessage::LeaderInfo { new_epoch: 1 })),
        Durable(1),
        From(
            3,
            zab(ZabMessage::NewLeader {
                epoch: 1,
                truncate_to: None,
                snapshot: None,
                txns: Vec::new(),
            }),
        ),
        Durable(2),
        From(
            3,
            zab(ZabMessage::UpToDate {
                committed: Zxid::ZERO,
            }),
        ),
        From(3, zab(ZabMessage::Proposal(txn))),
        From(3, zab(ZabMessage::LeaderDurable(Zxid::new(1, 1)))),
        Durable(1),
        From(3, zab(ZabMessage::Commit(Zxid::new(1, 1)))),
        Submit,
        From(
            3,
            zab(ZabMessage::Ping {
                committed: Zxid::new(1, 1),
            }),
        ),
        Tick(20),
    ]);
    vec![leading, following]
}
