//! Observers (issue 8) with real processes: 3 voters and 2 observers started from zoo.cfg files
//! in kazoo's harness layout (`server.N=host:quorum:election:observer` on every server's lines,
//! `peerType` naming each server's own role), on loopback block 127.0.170.x.
//!
//! Writes through an observer are seen everywhere, kazoo works against an observer, losing both
//! observers costs nothing, a restarted observer catches up, and losing 2 of the 3 voters makes
//! the observers stop serving until a voter returns.

use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::CreateMode;
use ensemble_node::four_letter;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::runtime;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::runtime::Runtime;

const BLOCK: u8 = 170;
const VOTERS: u64 = 3;
const SERVERS: u64 = 5;
const DEADLINE: Duration = Duration::from_secs(30);

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_ensemble-cli").into()
}

fn role(id: u64) -> &'static str {
    if id > VOTERS {
        "observer"
    } else {
        "participant"
    }
}

/// Server `i`'s zoo.cfg: every server line names its role, and peerType names `i`'s own.
fn zoo_cfg(i: u64, data: &Path) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort=2181\n\
         clientPortAddress=127.0.{BLOCK}.{i}\n4lw.commands.whitelist=*\n\
         admin.enableServer=false\npeerType={}\n",
        data.display(),
        role(i)
    );
    for j in 1..=SERVERS {
        cfg.push_str(&format!(
            "server.{j}=127.0.{BLOCK}.{j}:2888:3888:{};127.0.{BLOCK}.{j}:2181\n",
            role(j)
        ));
    }
    cfg
}

fn cluster() -> ProcessCluster {
    ProcessCluster::with_zoo_cfg_text(SERVERS, BLOCK, exe(), zoo_cfg, |i| {
        format!("127.0.{BLOCK}.{i}:2181")
    })
}

fn connect(rt: &Runtime, c: &ProcessCluster, id: u64) -> ZkClient {
    rt.block_on(ZkClient::connect(&[c.client_addr(id)], DEADLINE))
        .unwrap_or_else(|e| panic!("a session on server {id}: {e}"))
}

/// Waits until server `id` serves `path` with `data` to a fresh session.
fn wait_for_data(rt: &Runtime, c: &ProcessCluster, id: u64, path: &str, data: &[u8]) {
    wait_until(&format!("server {id} to serve {path}"), DEADLINE, || {
        rt.block_on(async {
            let Ok(client) = ZkClient::connect(&[c.client_addr(id)], Duration::from_secs(2)).await
            else {
                return false;
            };
            client.get_data(path).await.is_ok_and(|(d, _)| d == data)
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", tail(c, id)));
}

fn tail(c: &ProcessCluster, id: u64) -> String {
    let log = c.log(id);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// A mntr figure of server `id`.
fn mntr(c: &ProcessCluster, id: u64, key: &str) -> Option<String> {
    let reply = four_letter::ask(&c.client_addr(id), "mntr", Duration::from_secs(2)).ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")).map(str::to_string))
}

fn wait_mode(c: &ProcessCluster, id: u64, mode: &str) {
    wait_until(&format!("server {id} to say {mode}"), DEADLINE, || {
        c.mode(id) == mode
    })
    .unwrap_or_else(|e| panic!("{e} (it says {})\n{}", c.mode(id), tail(c, id)));
}

/// kazoo, connected to observer `id` only, creates a znode and reads `/via-observer` back.
fn kazoo_against(c: &ProcessCluster, id: u64) -> String {
    let script = "import sys\n\
        from kazoo.client import KazooClient\n\
        zk = KazooClient(hosts=sys.argv[1], timeout=8)\n\
        zk.start(timeout=15)\n\
        zk.create('/kazoo-observer', b'from kazoo')\n\
        print(zk.get('/via-observer')[0].decode())\n\
        zk.stop()\n";
    let out = Command::new("python3")
        .args(["-c", script, &c.client_addr(id)])
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    assert!(
        out.status.success(),
        "kazoo against observer {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn observers_serve_forward_writes_and_never_count() {
    let mut c = cluster();
    c.start_all();
    c.wait_serving(DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n{}", tail(&c, 4)));
    for o in [4, 5] {
        assert_eq!(c.mode(o), "observer", "srvr of server {o}");
    }
    let leader = c.leader().expect("one leader");
    assert!(leader <= VOTERS, "an observer never leads");
    wait_until("the leader to count its learners apart", DEADLINE, || {
        mntr(&c, leader, "synced_followers").as_deref() == Some("2")
            && mntr(&c, leader, "synced_observers").as_deref() == Some("2")
    })
    .unwrap();
    assert_eq!(mntr(&c, 4, "server_state").as_deref(), Some("observer"));
    assert_eq!(mntr(&c, leader, "quorum_size").as_deref(), Some("3"));

    // A write through an observer is forwarded, committed and seen everywhere.
    let rt = runtime();
    let via = connect(&rt, &c, 4);
    rt.block_on(via.create("/via-observer", b"written on 4", CreateMode::Persistent))
        .unwrap();
    for id in 1..=SERVERS {
        wait_for_data(&rt, &c, id, "/via-observer", b"written on 4");
    }
    assert_eq!(kazoo_against(&c, 5), "written on 4");
    wait_for_data(&rt, &c, 1, "/kazoo-observer", b"from kazoo");
    drop(via);

    // Both observers die: the voters keep their quorum and commit.
    c.kill9(4);
    c.kill9(5);
    let voter = connect(&rt, &c, leader % VOTERS + 1);
    rt.block_on(voter.create("/without-observers", b"still", CreateMode::Persistent))
        .expect("losing both observers never costs the quorum");
    drop(voter);
    // A restarted observer catches up on what it missed.
    c.start(4);
    c.start(5);
    wait_mode(&c, 4, "observer");
    wait_for_data(&rt, &c, 4, "/without-observers", b"still");

    // Two of three voters die: the observers stop serving, and their sessions are lost.
    let watcher = connect(&rt, &c, 5);
    let survivor = (1..=VOTERS).find(|v| *v != leader).expect("a voter");
    for v in (1..=VOTERS).filter(|v| *v != survivor) {
        c.kill9(v);
    }
    for o in [4, 5] {
        wait_mode(&c, o, "not serving");
    }
    wait_until(
        "the observer's session to see connection loss",
        DEADLINE,
        || {
            matches!(
                rt.block_on(watcher.get_data("/via-observer")),
                Err(ClientError::ConnectionLoss(_))
            )
        },
    )
    .unwrap();
    // A voter returns: a quorum again, and the observers serve and forward writes.
    let back = (1..=VOTERS).find(|v| *v != survivor).expect("a dead voter");
    c.start(back);
    for o in [4, 5] {
        wait_mode(&c, o, "observer");
    }
    let via = connect(&rt, &c, 5);
    rt.block_on(via.create("/after-quorum", b"back", CreateMode::Persistent))
        .expect("a write through an observer once the quorum is back");
    wait_for_data(&rt, &c, 4, "/after-quorum", b"back");
}
