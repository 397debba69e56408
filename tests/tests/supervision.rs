//! Supervised actors (issue 9): while three sessions write, each of a node's supervised
//! actors is made to fail (`fail ACTOR` on `--control-stdin`), on a follower and on the
//! leader. Each time the ensemble serves again and the writes go on; afterwards no session
//! expired (each still owns its ephemeral znode, under the same session id) and every
//! acknowledged create is on every server.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::{CreateMode, KeeperState, SessionId};
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ELECTION: Duration = Duration::from_secs(30);
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Every actor `fail` names, with what its restart logs.
const ACTORS: [(&str, &str); 7] = [
    ("election", "election restarting"),
    ("zab", "quorum peer restarting from disk"),
    ("pipeline", "request pipeline restarting"),
    ("sessions", "session tracker restarting"),
    ("client-port", "client port restarting"),
    ("peer-listener", "peer listener restarting"),
    ("storage", "storage writer restarting"),
];

/// Writes from one session per server, on a thread of its own, until told to stop.
struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    expired: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<SessionId>>,
}

impl Load {
    /// Opens a session on each of `servers` (the others as fallbacks), each owning an
    /// ephemeral `/e<i>`, then creates `/w/s<i>-<k>` in a loop.
    fn start(servers: Vec<String>) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let expired = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, e, s) = (acked.clone(), expired.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            ensemble_tests::runtime().block_on(async move {
                let tasks: Vec<_> = (0..servers.len())
                    .map(|i| {
                        let mut order = servers.clone();
                        order.rotate_left(i);
                        tokio::spawn(session(i, order, a.clone(), e.clone(), s.clone()))
                    })
                    .collect();
                let mut ids = Vec::new();
                for t in tasks {
                    ids.push(t.await.expect("a session task"));
                }
                ids
            })
        });
        Load {
            acked,
            expired,
            stop,
            thread,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the writers; the acknowledged paths and each session's id.
    fn finish(self) -> (Vec<String>, Vec<SessionId>, bool) {
        self.stop.store(true, Ordering::SeqCst);
        let ids = self.thread.join().expect("the load thread");
        let acked = self.acked.lock().unwrap().clone();
        (acked, ids, self.expired.load(Ordering::SeqCst))
    }
}

/// One session's writes; returns its id.
async fn session(
    i: usize,
    servers: Vec<String>,
    acked: Arc<Mutex<Vec<String>>>,
    expired: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> SessionId {
    let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = ZkClient::connect_with_events(&servers, SESSION_TIMEOUT, events)
        .await
        .expect("a session");
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if ev.state == KeeperState::Expired {
                expired.store(true, Ordering::SeqCst);
            }
        }
    });
    client
        .create(&format!("/e{i}"), b"", CreateMode::Ephemeral)
        .await
        .expect("the ephemeral znode");
    let mut k = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let path = format!("/w/s{i}-{k}");
        k += 1;
        match client.create(&path, b"x", CreateMode::Persistent).await {
            Ok(_) => acked.lock().unwrap().push(path),
            // Lost with the connection, or refused while no leader serves: not acknowledged.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    client.session_id
}

/// Waits until every server serves again and the load has made `more` acknowledged writes.
fn wait_recovered(c: &ProcessCluster, load: &Load, what: &str, more: usize) {
    let target = load.acked() + more;
    c.wait_serving(ELECTION)
        .unwrap_or_else(|e| panic!("after {what}: {e}"));
    wait_until(&format!("writes to go on after {what}"), ELECTION, || {
        load.acked() >= target
    })
    .unwrap();
}

/// Fails `actor` on server `id`: the answer must be `injected`, and its restart is logged.
fn fail(c: &mut ProcessCluster, id: u64, (actor, restarted): (&str, &str)) {
    let before = c.log(id).matches(restarted).count();
    c.send(id, &format!("fail {actor}"));
    let answer = c.expect_line(id, Duration::from_secs(10), |l| {
        l == "injected" || l.starts_with("err fail")
    });
    assert_eq!(answer.as_deref(), Some("injected"), "fail {actor} on {id}");
    wait_until(&format!("{actor} on {id} to restart"), ELECTION, || {
        c.log(id).matches(restarted).count() > before
    })
    .unwrap();
}

/// What server `id` holds under `/w`, once it has caught up with the leader.
fn children(addr: String) -> BTreeSet<String> {
    let rt = ensemble_tests::runtime();
    rt.block_on(async {
        let client = ZkClient::connect(&[addr], SESSION_TIMEOUT).await.unwrap();
        client.sync("/w").await.unwrap();
        let (kids, _) = client.get_children("/w", false).await.unwrap();
        kids.into_iter().map(|k| format!("/w/{k}")).collect()
    })
}

/// The session owning the ephemeral `path`, as server `addr` sees it.
fn owner(addr: String, path: &str) -> Option<SessionId> {
    let rt = ensemble_tests::runtime();
    rt.block_on(async {
        let client = ZkClient::connect(&[addr], SESSION_TIMEOUT).await.ok()?;
        client.sync(path).await.ok()?;
        let stat = client.exists(path).await.ok()??;
        Some(SessionId(stat.ephemeral_owner))
    })
}

#[test]
fn every_supervised_actor_fails_on_a_follower_and_the_leader_and_nothing_is_lost() {
    let program = Program::Writer(env!("CARGO_BIN_EXE_ensemble-cli").into());
    let mut c = ProcessCluster::new(3, 190, program, "snap_count = 200");
    c.start_all();
    c.wait_serving(ELECTION).unwrap();
    let servers: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    assert_eq!(
        c.ask(1, "create /w -", "ok /w").map(|l| l.ends_with(" Ok")),
        Some(true)
    );
    let load = Load::start(servers.clone());
    wait_recovered(&c, &load, "the start", 20);
    for leader in [false, true] {
        for actor in ACTORS {
            let lead = c.leader().expect("a leader");
            let id = if leader { lead } else { lead % 3 + 1 };
            fail(&mut c, id, actor);
            let what = format!("fail {} on server {id} (leader {lead})", actor.0);
            wait_recovered(&c, &load, &what, 10);
            assert!(c.is_running(id), "{what}: the process lives on");
            if actor.0 == "election" {
                assert_eq!(c.leader(), Some(lead), "{what}: the server kept its place");
            }
        }
    }
    let (acked, ids, expired) = load.finish();
    assert!(!expired, "a session expired");
    for (id, addr) in (1..=3).zip(&servers) {
        let held = children(addr.clone());
        let lost: Vec<&String> = acked.iter().filter(|p| !held.contains(*p)).collect();
        assert!(
            lost.is_empty(),
            "server {id} lost {} of {} acknowledged creates: {lost:?}",
            lost.len(),
            acked.len()
        );
        for (i, session) in ids.iter().enumerate() {
            assert_eq!(
                owner(addr.clone(), &format!("/e{i}")),
                Some(*session),
                "server {id}: session {i} still owns its ephemeral znode"
            );
        }
    }
    eprintln!(
        "{} acknowledged creates from {} sessions across 14 injected failures",
        acked.len(),
        ids.len()
    );
}
