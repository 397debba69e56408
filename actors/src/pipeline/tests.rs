//! The request pipeline actor against a stand-in Zab actor and storage writer.

use super::*;
use crate::data_tree::AclEntry;
use crate::peer::{snap_channel, SnapReceiver};
use ensemble_messages::sync_parts::SyncJoiner;
use ensemble_messages::zk::CreateMode;
use ensemble_messages::ServerState;
use std::sync::Mutex;

const SID: Sid = 1;

/// What the pipeline asked of Zab.
#[derive(Default)]
struct Asked {
    proposals: Vec<(u64, TreeTxn)>,
    reloads: usize,
}

/// Records what it is asked.
struct Zab(Arc<Mutex<Asked>>);

impl Actor for Zab {
    type Context = Context<Self>;
}

impl Handler<Propose> for Zab {
    type Result = ();

    fn handle(&mut self, p: Propose, _: &mut Context<Self>) {
        let txn: TreeTxn =
            ensemble_messages::codec::decode(&p.body).expect("the pipeline proposes tree txns");
        self.0.lock().unwrap().proposals.push((p.request_id, txn));
    }
}

impl Handler<ConfigApplied> for Zab {
    type Result = ();

    fn handle(&mut self, _: ConfigApplied, _: &mut Context<Self>) {}
}

impl Handler<ReloadFromDisk> for Zab {
    type Result = ();

    fn handle(&mut self, _: ReloadFromDisk, _: &mut Context<Self>) {
        self.0.lock().unwrap().reloads += 1;
    }
}

/// Takes no snapshot.
struct Storage;

impl Actor for Storage {
    type Context = Context<Self>;
}

impl Handler<TakeSnapshot> for Storage {
    type Result = ();

    fn handle(&mut self, _: TakeSnapshot, _: &mut Context<Self>) {}
}

/// A pipeline wired to a recording Zab, serving a fresh tree as the leader.
fn start() -> (Addr<PipelineActor>, Arc<Mutex<Asked>>) {
    let asked = Arc::new(Mutex::new(Asked::default()));
    let zab = Zab(asked.clone()).start();
    let settings = PipelineSettings {
        sid: SID,
        service: ServiceSettings {
            min_ms: 200,
            max_ms: 2_000,
            max_buffer: 0xfffff,
            read_only_mode: false,
            super_digest: None,
            enforce_quota: false,
            reconfig_enabled: false,
        },
        snap_count: 100_000,
        container_check_ms: 60_000,
        tick_ms: 100,
        metrics: Arc::new(ServerMetrics::new(1000)),
    };
    let storage = Storage.start().recipient();
    let pipeline =
        Supervisor::start(move |_| PipelineActor::new(settings, ZabHandle::of(zab), storage));
    pipeline.do_send(InstallTree(DataTree::default()));
    pipeline.do_send(RoleSeen {
        state: ServerState::Leading,
        serving: true,
        leader: Some(SID),
    });
    (pipeline, asked)
}

/// A create of `path` with open ACLs.
fn create(path: &str) -> TreeTxn {
    TreeTxn {
        session_id: SessionId::NONE,
        time_ms: 0,
        auth: Vec::new(),
        op: TreeOp::Create {
            path: path.into(),
            data: b"d".to_vec(),
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        },
    }
}

/// Submits `txn` through the node API; returns the request id Zab was asked to propose it
/// under, and where its outcome arrives.
async fn submit(
    pipeline: &Addr<PipelineActor>,
    asked: &Mutex<Asked>,
    txn: TreeTxn,
) -> (u64, oneshot::Receiver<WriteResult>) {
    let (reply, outcome) = oneshot::channel();
    let before = asked.lock().unwrap().proposals.len();
    pipeline.send(Submit { txn, reply }).await.unwrap();
    // The mailbox is in order: once the pipeline answers, the proposal went out.
    pipeline.send(GetCounts).await.unwrap();
    let asked = asked.lock().unwrap();
    assert_eq!(asked.proposals.len(), before + 1, "one proposal per submit");
    (asked.proposals[before].0, outcome)
}

/// The committed txn Zab would apply for a proposal of this server's.
fn committed(zxid: Zxid, request_id: u64, txn: &TreeTxn) -> Txn {
    Txn {
        zxid,
        origin: SID,
        request_id,
        body: txn.encode(),
    }
}

#[actix::test]
async fn a_submitted_write_is_proposed_applied_in_order_and_answered() {
    let (pipeline, asked) = start();
    let (id, outcome) = submit(&pipeline, &asked, create("/a")).await;
    let zxid = Zxid::new(1, 1);
    pipeline.do_send(ApplyTxns(vec![committed(zxid, id, &create("/a"))]));
    pipeline.do_send(TxnCompleted {
        request_id: id,
        result: Ok(zxid),
    });
    let (at, result) = outcome.await.unwrap().unwrap();
    assert_eq!(at, zxid);
    assert!(matches!(result, OpResult::Created { .. }), "{result:?}");
    let read = pipeline.send(ReadData("/a".into())).await.unwrap();
    assert_eq!(read, Some(b"d".to_vec()));
}

#[actix::test]
async fn a_restart_fails_pending_writes_asks_for_a_reload_and_waits_for_a_tree() {
    let (pipeline, asked) = start();
    let (id, outcome) = submit(&pipeline, &asked, create("/a")).await;
    pipeline.do_send(FailPipeline);
    assert!(matches!(
        outcome.await.unwrap(),
        Err(SubmitError::LeaderChanged)
    ));
    // A batch of the old core, still in the mailbox, applies to no tree.
    let a = committed(Zxid::new(1, 1), id, &create("/a"));
    pipeline.do_send(ApplyTxns(vec![a.clone()]));
    let read = |path: &str| pipeline.send(ReadData(path.into()));
    assert_eq!(read("/a").await.unwrap(), None);
    assert_eq!(pipeline.send(GetCounts).await.unwrap().restarts, 1);
    assert_eq!(asked.lock().unwrap().reloads, 1);
    // Zab hands over the tree it reloaded; later batches apply to it.
    let mut reloaded = DataTree::default();
    reloaded.apply(&a);
    pipeline.do_send(InstallTree(reloaded));
    let b = create("/b");
    pipeline.do_send(ApplyTxns(vec![committed(Zxid::new(1, 2), 7, &b)]));
    assert_eq!(read("/a").await.unwrap(), Some(b"d".to_vec()));
    assert_eq!(read("/b").await.unwrap(), Some(b"d".to_vec()));
}

#[actix::test]
async fn a_new_tree_fails_the_writes_still_pending() {
    let (pipeline, asked) = start();
    let (_, outcome) = submit(&pipeline, &asked, create("/a")).await;
    pipeline.do_send(InstallTree(DataTree::default()));
    assert!(matches!(
        outcome.await.unwrap(),
        Err(SubmitError::LeaderChanged)
    ));
    assert_eq!(asked.lock().unwrap().reloads, 0);
}

#[actix::test]
async fn a_snap_image_covers_the_batches_sent_before_and_none_is_built_without_a_tree() {
    let (pipeline, _) = start();
    pipeline.do_send(ApplyTxns(vec![committed(
        Zxid::new(1, 1),
        9,
        &create("/a"),
    )]));
    let (reply, built) = snap_channel();
    let txns = Vec::new();
    pipeline.do_send(SnapshotFor {
        epoch: 2,
        txns,
        reply,
    });
    let msg = joined(built).await.expect("an image is built");
    let PeerMessage::Zab(ZabMessage::NewLeader {
        epoch: 2,
        snapshot: Some(image),
        ..
    }) = msg
    else {
        panic!("not a NewLeader with an image: {msg:?}");
    };
    assert_eq!(image.last_zxid, Zxid::new(1, 1));
    let tree = DataTree::deserialize(&image.state).unwrap();
    assert!(
        tree.get("/a").is_some(),
        "the image has the batch applied before"
    );
    pipeline.do_send(FailPipeline);
    let (reply, built) = snap_channel();
    let txns = Vec::new();
    pipeline.do_send(SnapshotFor {
        epoch: 3,
        txns,
        reply,
    });
    assert!(
        joined(built).await.is_none(),
        "no image without a tree: the link gives the sync up"
    );
}

/// What a SNAP's builder sent, joined as the receiving link joins it.
async fn joined(mut built: SnapReceiver) -> Option<PeerMessage> {
    let mut joiner = SyncJoiner::default();
    let mut whole = None;
    while let Some(msg) = built.recv().await {
        whole = joiner.accept(msg).expect("pieces join").or(whole);
    }
    whole
}

#[actix::test]
async fn without_a_tree_a_write_is_refused_and_not_proposed() {
    let (pipeline, asked) = start();
    pipeline.do_send(FailPipeline);
    let (reply, outcome) = oneshot::channel();
    pipeline
        .send(Submit {
            txn: create("/a"),
            reply,
        })
        .await
        .unwrap();
    assert!(matches!(
        outcome.await.unwrap(),
        Err(SubmitError::NotServing)
    ));
    assert!(asked.lock().unwrap().proposals.is_empty());
}
