//! Servers join a running ensemble through reconfig (issue 8): a brand-new 4th server, started
//! with a config naming the three members and itself, is added with `ensemble shell reconfig
//! -add` under write load; every server opens a link to it, it syncs, its vote counts from
//! then on, the leader's mntr counts it, and a restart of everyone keeps the 4 members. An
//! observer made a participant counts for the quorum too.

use ensemble_actors::client_port::digest_id;
use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use ensemble_node::four_letter;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::runtime;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const DEADLINE: Duration = Duration::from_secs(30);
const SUPER: &str = "super:secret";

/// Server `id`'s server line in block `b` (an observer when `observer`).
fn line(b: u8, id: u64, observer: bool) -> String {
    let role = if observer { "observer" } else { "participant" };
    format!("server.{id}=127.0.{b}.{id}:2888:3888:{role};127.0.{b}.{id}:2181")
}

/// A zoo.cfg naming `servers` (server 4 an observer when `observer4`), reconfig enabled.
fn zoo_cfg(b: u8, i: u64, data: &std::path::Path, servers: u64, observer4: bool) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort=2181\n\
         clientPortAddress=127.0.{b}.{i}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={}\n",
        data.display(),
        digest_id(SUPER)
    );
    for j in 1..=servers {
        cfg.push_str(&format!("{}\n", line(b, j, j == 4 && observer4)));
    }
    cfg
}

/// A mntr figure of server `id`.
fn mntr(c: &ProcessCluster, id: u64, key: &str) -> Option<String> {
    let reply = four_letter::ask(&c.client_addr(id), "mntr", Duration::from_secs(2)).ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")).map(str::to_string))
}

/// Waits until the leader's mntr says `quorum_size`, `learners`, `synced_followers` and
/// `synced_observers` are `want`.
fn wait_learner_counts(c: &ProcessCluster, leader: u64, want: [u64; 4]) {
    let keys = [
        "quorum_size",
        "learners",
        "synced_followers",
        "synced_observers",
    ];
    let read = || keys.map(|k| mntr(c, leader, k).and_then(|v| v.parse::<u64>().ok()));
    wait_until(
        &format!("the leader's mntr to count {want:?}"),
        DEADLINE,
        || read() == want.map(Some),
    )
    .unwrap_or_else(|e| panic!("{e}: {keys:?} = {:?}", read()));
}

/// Runs `script` in `ensemble shell` against server `id`; its output.
fn shell(c: &ProcessCluster, id: u64, script: &str) -> String {
    let mut child = Command::new(EXE)
        .args(["shell", "-server", &c.client_addr(id)])
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Creates `/w<n>` through `via` (then any server of `others`) until `stop`; the paths
/// acknowledged.
fn write_load(
    c: &ProcessCluster,
    via: u64,
    others: &[u64],
    stop: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let mut order = vec![c.client_addr(via)];
    order.extend(others.iter().map(|i| c.client_addr(*i)));
    ensemble_tests::write_load(order, stop)
}

/// A session on server `id` alone.
fn session(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64) -> ZkClient {
    rt.block_on(ZkClient::connect(
        &[c.client_addr(id)],
        Duration::from_secs(10),
    ))
    .unwrap()
}

/// Server `id`'s `/zookeeper/config` text and the children of `/`, once it caught up.
fn tree(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64) -> (String, Vec<String>) {
    let z = session(rt, c, id);
    rt.block_on(async {
        z.sync("/").await.unwrap();
        let (config, _) = z.get_data("/zookeeper/config").await.unwrap();
        let (mut children, _) = z.get_children("/", false).await.unwrap();
        children.sort();
        (String::from_utf8(config).unwrap(), children)
    })
}

/// Whether a create through server `id` is acknowledged within a few seconds.
fn writes(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64, path: &str) -> bool {
    rt.block_on(async {
        let Ok(z) = ZkClient::connect(&[c.client_addr(id)], Duration::from_secs(2)).await else {
            return false;
        };
        tokio::time::timeout(
            Duration::from_secs(3),
            z.create(path, b"x", CreateMode::Persistent),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    })
}

/// With 4 voters, killing the two old followers one after the other: the ensemble serves
/// after the first (the vote of server 4 makes the quorum of 3) and stops after the second.
fn quorum_of_four_counts_server_4(c: &mut ProcessCluster, rt: &tokio::runtime::Runtime) {
    let leader = c.leader().unwrap();
    let old: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    c.kill9(old[0]);
    let mut n = 0;
    wait_until("a write through server 4 with 3 of 4 up", DEADLINE, || {
        n += 1;
        writes(rt, c, 4, &format!("/three-of-four-{n}"))
    })
    .unwrap();
    assert_eq!(c.leader(), Some(leader));
    c.kill9(old[1]);
    wait_until(
        "the leader to stop serving with 2 of 4 up",
        DEADLINE,
        || c.mode(leader) != "leader" && c.mode(4) != "follower",
    )
    .unwrap();
    assert!(!writes(rt, c, 4, "/two-of-four"));
}

#[test]
fn a_new_server_joins_under_load_its_vote_counts_and_a_restart_keeps_it() {
    const B: u8 = 200;
    let mut c = ProcessCluster::with_zoo_cfg_text(
        4,
        B,
        EXE.into(),
        |i, data| zoo_cfg(B, i, data, if i == 4 { 4 } else { 3 }, false),
        |i| format!("127.0.{B}.{i}:2181"),
    );
    for i in 1..=3 {
        c.start(i);
    }
    let rt = runtime();
    wait_until("a leader of 3", DEADLINE, || c.leader().is_some()).unwrap();
    let leader = c.leader().unwrap();
    wait_learner_counts(&c, leader, [3, 2, 2, 0]);
    let via = (1..=3).find(|i| *i != leader).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (load, acked) = write_load(&c, via, &[1, 2, 3], stop.clone());
    wait_until("writes to flow", DEADLINE, || {
        acked.lock().unwrap().len() > 20
    })
    .unwrap();

    // The new server runs before it is a member: the members do not let it in yet.
    c.start(4);
    wait_until("the members to refuse server 4", DEADLINE, || {
        c.log(leader).contains("server 4 is not a member")
    })
    .unwrap();
    assert_ne!(c.mode(4), "follower");
    let out = shell(
        &c,
        via,
        &format!(
            "addauth digest {SUPER}\nreconfig -add {}\n",
            line(B, 4, false)
        ),
    );
    assert!(out.contains(&line(B, 4, false)), "{out}");
    wait_until("server 4 to follow", DEADLINE, || c.mode(4) == "follower").unwrap();
    wait_learner_counts(&c, leader, [4, 3, 3, 0]);
    let before = acked.lock().unwrap().len();
    wait_until("writes to flow with 4 voters", DEADLINE, || {
        acked.lock().unwrap().len() > before + 20
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    let expected = tree(&rt, &c, leader);
    assert!(expected.0.contains(&line(B, 4, false)), "{}", expected.0);
    for p in acked.lock().unwrap().iter() {
        assert!(expected.1.contains(&p[1..].to_string()), "{p} lost");
    }
    for id in 1..=4 {
        assert_eq!(tree(&rt, &c, id), expected, "server {id}");
    }

    quorum_of_four_counts_server_4(&mut c, &rt);

    // Everyone restarts: the 4 members hold (servers 1 to 3 have only 3 in their zoo.cfg).
    for id in 1..=4 {
        c.kill9(id);
    }
    for id in 1..=4 {
        c.start(id);
    }
    c.wait_serving(DEADLINE).unwrap();
    let leader = c.leader().unwrap();
    wait_learner_counts(&c, leader, [4, 3, 3, 0]);
    let after = tree(&rt, &c, 4);
    assert_eq!(after.0, expected.0);
    for id in 1..=3 {
        assert_eq!(tree(&rt, &c, id), after, "server {id}");
    }
}

#[test]
fn an_observer_made_a_participant_counts_for_the_quorum() {
    const B: u8 = 201;
    let mut c = ProcessCluster::with_zoo_cfg_text(
        4,
        B,
        EXE.into(),
        |i, data| zoo_cfg(B, i, data, 4, true),
        |i| format!("127.0.{B}.{i}:2181"),
    );
    c.start_all();
    c.wait_serving(DEADLINE).unwrap();
    assert_eq!(c.mode(4), "observer");
    let leader = c.leader().unwrap();
    wait_learner_counts(&c, leader, [3, 3, 2, 1]);
    let rt = runtime();
    let admin = session(&rt, &c, leader);
    rt.block_on(admin.add_auth("digest", SUPER.as_bytes()))
        .unwrap();
    let (text, _) = rt
        .block_on(admin.reconfig(&line(B, 4, false), "", "", -1))
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&line(B, 4, false)), "{text}");
    wait_until("server 4 to follow", DEADLINE, || c.mode(4) == "follower").unwrap();
    wait_learner_counts(&c, leader, [4, 3, 3, 0]);
    drop(admin);
    quorum_of_four_counts_server_4(&mut c, &rt);
}
