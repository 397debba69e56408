//! Reads answered on the connection threads (issue 9) keep ZooKeeper's per-session guarantees
//! under concurrent write load on a 3-server ensemble: a session reads its own writes (also a
//! read pipelined behind its write), never reads backwards, and a watch set by a read fires for
//! the next change, with the event delivered before any reply that observes the change.
//! The first test serves connections on each node's own thread, the second on two connection
//! threads of their own (`zookeeper.nio.numSelectorThreads`), the two layouts a server picks
//! between by its cores.

use ensemble_actors::zk_client::{ClientError, WatchedEvent, ZkClient};
use ensemble_messages::zk::CreateMode;

use ensemble_messages::zk::EventType;
use ensemble_node::local_cluster::ProcessCluster;
use ensemble_tests::runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const TIMEOUT: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(20);
/// Each checker's write-then-read rounds.
const ROUNDS: u32 = 300;
/// Changes the watcher must see, one watch each.
const CHANGES: u32 = 150;

/// Three servers from zoo.cfg files, each with `threads` connection threads.
fn cluster(block: u8, threads: u16) -> ProcessCluster {
    let mut c = ProcessCluster::with_zoo_cfg_lines(
        3,
        block,
        env!("CARGO_BIN_EXE_ensemble-cli").into(),
        &format!("zookeeper.nio.numSelectorThreads={threads}\n"),
    );
    c.start_all();
    c.wait_serving(DEADLINE).expect("a serving ensemble");
    c
}

async fn session(addr: &str) -> ZkClient {
    ZkClient::connect(&[addr.to_string()], TIMEOUT)
        .await
        .expect("a session")
}

/// Sessions on every server that set `/load/w<i>` as fast as they are answered until `stop`.
async fn write_load(servers: Vec<String>, stop: Arc<AtomicBool>) -> u64 {
    let mut tasks = Vec::new();
    for (i, addr) in servers.iter().cycle().take(6).enumerate() {
        let c = session(addr).await;
        let path = format!("/load/w{i}");
        c.create(&path, b"0", CreateMode::Persistent)
            .await
            .expect("create");
        let stop = stop.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.set_data(&path, n.to_string().as_bytes(), -1)
                    .await
                    .expect("a write under load");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("a writer");
    }
    total
}

/// Writes `ROUNDS` values to its own znode and reads each back: once pipelined behind the write
/// (both in flight), once after it. Every read sees the value just written, and zxids of the
/// session's reads never go backwards.
async fn check_read_your_writes(c: ZkClient, path: String) {
    c.create(&path, b"start", CreateMode::Persistent)
        .await
        .expect("create");
    let mut last_mzxid = 0;
    for round in 0..ROUNDS {
        let value = format!("v{round}");
        let (written, read) =
            tokio::join!(c.set_data(&path, value.as_bytes(), -1), c.get_data(&path));
        let written = written.expect("a write");
        let (data, stat) = read.expect("a pipelined read");
        assert_eq!(
            data,
            value.as_bytes(),
            "{path}: pipelined read of round {round}"
        );
        assert_eq!(stat.mzxid, written.mzxid);
        let (data, stat) = c.get_data(&path).await.expect("a read");
        assert_eq!(data, value.as_bytes(), "{path}: read after round {round}");
        assert!(stat.mzxid >= last_mzxid, "{path}: a read went backwards");
        last_mzxid = stat.mzxid;
    }
}

#[test]
fn sessions_read_their_own_writes_under_concurrent_write_load() {
    let c = cluster(185, 0);
    let servers: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let writes = local.block_on(&rt, async {
        let setup = session(&servers[0]).await;
        setup
            .create("/load", b"", CreateMode::Persistent)
            .await
            .expect("create /load");
        setup
            .create("/ryw", b"", CreateMode::Persistent)
            .await
            .expect("create /ryw");
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::task::spawn_local(write_load(servers.clone(), stop.clone()));
        let mut checkers = Vec::new();
        for (i, addr) in servers.iter().cycle().take(6).enumerate() {
            let client = session(addr).await;
            let path = format!("/ryw/c{i}");
            checkers.push(tokio::task::spawn_local(check_read_your_writes(
                client, path,
            )));
        }
        for checker in checkers {
            checker.await.expect("a checker");
        }
        stop.store(true, Ordering::Relaxed);
        load.await.expect("the load")
    });
    assert!(writes > 0, "the load wrote");
}

/// The next watch event, within the deadline.
async fn next_event(events: &mut UnboundedReceiver<WatchedEvent>) -> WatchedEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("a watch event within the deadline")
        .expect("the event channel is open")
}

/// Reads `path` until it no longer holds `old`: the event of that change must already have
/// been delivered when the first read that observes it returns.
async fn read_until_changed(
    c: &ZkClient,
    events: &mut UnboundedReceiver<WatchedEvent>,
    path: &str,
    old: &[u8],
) -> Result<WatchedEvent, ClientError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (data, _) = c.get_data(path).await?;
        if data != old {
            let e = events
                .try_recv()
                .expect("the event arrives before a reply that observes the change");
            return Ok(e);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never changed"
        );
        tokio::task::yield_now().await;
    }
}

#[test]
fn watches_set_by_reads_fire_once_and_before_the_replies_that_observe_the_change() {
    let c = cluster(186, 2);
    let servers: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let setup = session(&servers[0]).await;
        setup
            .create("/load", b"", CreateMode::Persistent)
            .await
            .expect("create /load");
        setup
            .create("/watched", b"0", CreateMode::Persistent)
            .await
            .expect("create");
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::task::spawn_local(write_load(servers.clone(), stop.clone()));
        // The watcher sits on a follower or the leader, the writer on another server.
        let (tx, mut events) = unbounded_channel();
        let watcher = ZkClient::connect_with_events(&[servers[1].clone()], TIMEOUT, tx)
            .await
            .expect("a session");
        let writer = session(&servers[2]).await;
        for round in 0..CHANGES {
            let old = round.to_string();
            let (data, _) = watcher
                .get_data_watch("/watched", true)
                .await
                .expect("a watching read");
            assert_eq!(data, old.as_bytes());
            let new = (round + 1).to_string();
            let (set, seen) = tokio::join!(
                writer.set_data("/watched", new.as_bytes(), -1),
                read_until_changed(&watcher, &mut events, "/watched", old.as_bytes())
            );
            set.expect("a write");
            let e = seen.expect("reads");
            assert_eq!(
                (e.event_type, e.path.as_str()),
                (EventType::NodeDataChanged, "/watched"),
                "round {round}"
            );
            assert!(events.try_recv().is_err(), "a watch fires once");
            // An exists watch on a missing znode fires for its creation.
            let path = format!("/load/e{round}");
            assert!(watcher
                .exists_watch(&path, true)
                .await
                .expect("exists")
                .is_none());
            writer
                .create(&path, b"", CreateMode::Persistent)
                .await
                .expect("create");
            let e = next_event(&mut events).await;
            assert_eq!(
                (e.event_type, e.path.as_str()),
                (EventType::NodeCreated, path.as_str())
            );
            assert!(watcher.exists(&path).await.expect("exists").is_some());
        }
        stop.store(true, Ordering::Relaxed);
        load.await.expect("the load");
    });
}
