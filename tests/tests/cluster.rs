//! Real server processes on loopback: the seed report's scenarios and crash recovery.

use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use std::time::Duration;

const ELECTION: Duration = Duration::from_secs(20);

fn cli() -> Program {
    Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into())
}

fn writer() -> Program {
    Program::Writer(env!("CARGO_BIN_EXE_ensemble-cli").into())
}

fn wait_leader(c: &ProcessCluster, expected: u64, followers: &[u64]) {
    wait_until(
        &format!("server {expected} to lead with {followers:?} following"),
        ELECTION,
        || c.mode(expected) == "leader" && followers.iter().all(|f| c.mode(*f) == "follower"),
    )
    .unwrap_or_else(|e| {
        let modes: Vec<String> = (1..=5).map(|i| format!("{i}: {}", c.mode(i))).collect();
        panic!(
            "{e}; modes: {modes:?}\nlog of {expected}:\n{}",
            c.log(expected)
        )
    });
}

/// The seed report: the highest sid leads; killing leaders elects 5, then 4, then 3; with 2 of
/// 5 servers left there is no service; restarting the others brings it back.
#[test]
fn seed_leader_succession_and_no_quorum_no_service() {
    let mut c = ProcessCluster::new(5, 11, cli(), "");
    c.start_all();
    wait_leader(&c, 5, &[1, 2, 3, 4]);
    c.kill9(5);
    wait_leader(&c, 4, &[1, 2, 3]);
    c.kill9(4);
    wait_leader(&c, 3, &[1, 2]);
    c.kill9(3);
    wait_until("no quorum, no service", ELECTION, || {
        c.mode(1) == "not serving" && c.mode(2) == "not serving"
    })
    .unwrap();
    let out =
        ensemble_node::four_letter::ask(&c.client_addr(1), "srvr", Duration::from_secs(2)).unwrap();
    assert_eq!(
        out,
        "This ZooKeeper instance is not currently serving requests\n"
    );
    for id in [3, 4, 5] {
        c.start(id);
    }
    wait_until("service to return with all 5 servers", ELECTION, || {
        c.leader().is_some() && (1..=5).filter(|i| c.mode(*i) == "follower").count() == 4
    })
    .unwrap();
    // `ensemble status` reports every mode, as zkServer.sh status does.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(["status", "--config"])
        .arg(c.config_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("Mode: follower").count(), 4, "{text}");
    assert_eq!(text.matches("Mode: leader").count(), 1, "{text}");
}

/// Misconfigurations end with one clear line and a non-zero exit.
#[test]
fn config_mistakes_fail_fast_with_one_line() {
    let c = ProcessCluster::new(3, 12, cli(), "");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let config = c.config_path().to_str().unwrap().to_string();
    let (code, err) = run(&["node", "--config", &config, "--id", "7"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("ensemble: myid 7 matches no server entry (servers: 1, 2, 3)"),
        "{err}"
    );
    // zoo.cfg whose myid matches no server line: the seed report's mistake.
    let (cfg_path, mut cfg) = c.file("zoo.cfg");
    let data = cfg_path.parent().unwrap().join("zk-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), "4\n").unwrap();
    use std::io::Write;
    write!(
        cfg,
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort=2181\n\
         server.1=127.0.12.1:2888:3888\nserver.2=127.0.12.2:2888:3888\nserver.3=127.0.12.3:2888:3888\n",
        data.display()
    )
    .unwrap();
    let (code, err) = run(&["node", "--zoo-cfg", cfg_path.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("ensemble: myid 4 matches no server entry (servers: 1, 2, 3)"),
        "{err}"
    );
    std::fs::write(data.join("myid"), "one").unwrap();
    let (_, err) = run(&["node", "--zoo-cfg", cfg_path.to_str().unwrap()]);
    assert!(err.contains("not a server id"), "{err}");
    // A client port already taken.
    let _taken = std::net::TcpListener::bind("127.0.12.1:2181").unwrap();
    let (code, err) = run(&["node", "--config", &config, "--id", "1"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("ensemble: client port 127.0.12.1:2181 is not available"),
        "{err}"
    );
}

/// A server holding another peer secret never joins the quorum: each handshake fails on the
/// proofs, and both sides say why without the refusal revealing anything.
#[test]
fn servers_with_different_peer_secrets_refuse_each_other() {
    let mut c = ProcessCluster::new(3, 17, cli(), "");
    let (secret, _) = c.file("other.secret");
    std::fs::write(&secret, "a different peer secret\n").unwrap();
    let text = std::fs::read_to_string(c.config_path()).unwrap();
    let other = format!("{text}\n[peer]\nsecret_file = \"{}\"\n", secret.display());
    let (other_path, _) = c.file("other.toml");
    std::fs::write(&other_path, other).unwrap();
    c.start(1);
    c.start(2);
    c.start_with_config(3, &other_path);
    wait_until("1 and 2 to form a quorum without 3", ELECTION, || {
        c.mode(2) == "leader" && c.mode(1) == "follower"
    })
    .unwrap_or_else(|e| {
        let modes = [c.mode(1), c.mode(2), c.mode(3)];
        panic!("{e}: modes {modes:?}\nlog of 2:\n{}", c.log(2))
    });
    wait_until("both sides to log the refusal", ELECTION, || {
        c.log(3)
            .contains("server 2 failed to prove it holds the peer secret")
            && c.log(2)
                .contains("a peer claiming server 3 hung up instead of proving itself")
    })
    .unwrap_or_else(|e| panic!("{e}\nlog of 3:\n{}\nlog of 2:\n{}", c.log(3), c.log(2)));
    assert_eq!(c.mode(3), "not serving");
    assert!(
        !c.log(3).contains("different peer secret"),
        "the secret never shows"
    );
}

/// Overrides from the environment (`ENSEMBLE__SECTION__KEY`) win over the file.
#[test]
fn environment_overrides_the_config_file() {
    let mut c = ProcessCluster::new(1, 18, cli(), "");
    std::env::set_var("ENSEMBLE__ENSEMBLE__TICK_MS", "321");
    c.start(1);
    std::env::remove_var("ENSEMBLE__ENSEMBLE__TICK_MS");
    wait_until("standalone mode", ELECTION, || c.mode(1) == "standalone").unwrap();
    let conf =
        ensemble_node::four_letter::ask(&c.client_addr(1), "conf", Duration::from_secs(2)).unwrap();
    assert!(conf.contains("tickTime=321\n"), "{conf}");
}

/// A single-server config runs standalone and commits on its own.
#[test]
fn single_server_runs_standalone() {
    let mut c = ProcessCluster::new(1, 13, writer(), "");
    c.start_all();
    wait_until("standalone mode", ELECTION, || c.mode(1) == "standalone").unwrap();
    let reply = c
        .ask(1, "create /solo x", "ok /solo")
        .expect("write acknowledged");
    assert!(reply.ends_with(" Ok"), "{reply}");
    assert_eq!(c.ask(1, "get /solo", "data /solo").unwrap(), "data /solo x");
}

/// Starts a 3-server writer cluster and waits until everyone serves.
fn writer_cluster(block: u8, storage: &str) -> ProcessCluster {
    let mut c = ProcessCluster::new(3, block, writer(), storage);
    c.start_all();
    wait_leader(&c, 3, &[1, 2]);
    c
}

fn applied(c: &mut ProcessCluster, id: u64) -> Option<u64> {
    let line = c.ask(id, "status", "status")?;
    line.split_whitespace().nth(4)?.parse().ok()
}

fn write_n(c: &mut ProcessCluster, via: u64, from: u32, to: u32) {
    for i in from..to {
        c.send(via, &format!("create /n{i} v{i}"));
    }
    for i in from..to {
        let path = format!("/n{i} ");
        let line = c
            .expect_line(via, Duration::from_secs(20), |l| {
                l.starts_with("ok /n") || l.starts_with("err /n")
            })
            .unwrap_or_else(|| panic!("no answer for {path}"));
        assert!(line.starts_with("ok "), "{line}");
    }
}

/// A restarted follower catches up by DIFF; one further behind than the commit log by SNAP.
#[test]
fn restarted_followers_catch_up_by_diff_and_by_snap() {
    let mut c = writer_cluster(14, "commit_log_count = 50\nsnap_count = 40");
    write_n(&mut c, 3, 0, 20);
    c.kill9(1);
    write_n(&mut c, 2, 20, 30);
    c.start(1);
    let target = applied(&mut c, 3).unwrap();
    wait_until("follower 1 to catch up by DIFF", ELECTION, || {
        applied(&mut c, 1) == Some(target)
    })
    .unwrap();
    assert!(
        c.log(3).contains("syncing follower by DIFF"),
        "{}",
        c.log(3)
    );
    assert_eq!(c.ask(1, "get /n25", "data /n25").unwrap(), "data /n25 v25");
    c.kill9(1);
    write_n(&mut c, 2, 30, 130);
    c.start(1);
    let target = applied(&mut c, 3).unwrap();
    wait_until("follower 1 to catch up by SNAP", ELECTION, || {
        applied(&mut c, 1) == Some(target)
    })
    .unwrap();
    assert!(
        c.log(3).contains("syncing follower by SNAP"),
        "{}",
        c.log(3)
    );
    assert!(
        c.log(1).contains("installed the leader's snapshot"),
        "{}",
        c.log(1)
    );
    assert_eq!(
        c.ask(1, "get /n129", "data /n129").unwrap(),
        "data /n129 v129"
    );
    assert_eq!(c.ask(1, "get /n3", "data /n3").unwrap(), "data /n3 v3");
    // Background snapshots were taken and old ones purged; a restart recovers from one.
    assert!(c.log(3).contains("snapshot taken"), "{}", c.log(3));
    c.kill9(2);
    c.start(2);
    wait_until(
        "server 2 to recover from its snapshot and rejoin",
        ELECTION,
        || c.mode(2) == "follower",
    )
    .unwrap();
    assert_eq!(c.ask(2, "get /n77", "data /n77").unwrap(), "data /n77 v77");
}

/// A follower restarted under a steady write load rejoins once: the commits the leader forwards
/// while the follower is still writing its synced history are kept, not a reason to look again
/// (they once sent it back to LOOKING, over and over while the load lasted).
#[test]
fn a_follower_restarted_under_write_load_rejoins_once() {
    let mut c = writer_cluster(220, "");
    write_n(&mut c, 2, 0, 2000);
    c.kill9(1);
    // A history to sync that takes a while to write.
    write_n(&mut c, 2, 2000, 6000);
    c.start(1);
    let mut load = WriteLoad::default();
    wait_until("follower 1 to rejoin under load", ELECTION, || {
        load.step(&mut c, 2);
        c.mode(1) == "follower"
    })
    .unwrap();
    let rejoined = load.sent;
    wait_until("more writes through the rejoined cluster", ELECTION, || {
        load.step(&mut c, 2);
        load.sent > rejoined + 2000
    })
    .unwrap();
    wait_until("an answer to every write", ELECTION, || {
        load.collect(&mut c, 2);
        load.answered == load.sent
    })
    .unwrap();
    let log = c.log(1);
    assert_eq!(
        log.matches("unexpected message from the leader").count(),
        0,
        "server 1 left its leader while rejoining:\n{log}"
    );
    let target = applied(&mut c, 3).unwrap();
    wait_until("follower 1 to apply every write", ELECTION, || {
        applied(&mut c, 1) == Some(target)
    })
    .unwrap();
    let last = load.sent - 1;
    assert_eq!(
        c.ask(1, &format!("get /w{last}"), &format!("data /w{last} ")),
        Some(format!("data /w{last} v{last}"))
    );
}

/// Creates `/wN` sent in chunks without waiting, answers collected as they come.
#[derive(Default)]
struct WriteLoad {
    sent: usize,
    answered: usize,
}

impl WriteLoad {
    /// Sends the next chunk of creates through server `via` and collects what was answered.
    fn step(&mut self, c: &mut ProcessCluster, via: u64) {
        if self.sent - self.answered < 200 {
            for _ in 0..50 {
                c.send(via, &format!("create /w{0} v{0}", self.sent));
                self.sent += 1;
            }
        }
        self.collect(c, via);
    }

    /// Counts the answers so far; every write must succeed.
    fn collect(&mut self, c: &mut ProcessCluster, via: u64) {
        let failed = c.drain_lines(via, |l| l.starts_with("err /w"));
        assert!(failed.is_empty(), "writes failed: {failed:?}");
        self.answered += c.drain_lines(via, |l| l.starts_with("ok /w")).len();
    }
}

/// `kill -9` of the leader under a write load loses no acknowledged write.
#[test]
fn leader_kill9_under_load_loses_no_acknowledged_write() {
    let mut c = writer_cluster(15, "snap_count = 30");
    let mut sent = [0usize; 3];
    let mut next = 0u32;
    let mut acked: Vec<String> = Vec::new();
    let mut answered = [0usize; 3];
    let mut send_batch = |c: &mut ProcessCluster, sent: &mut [usize; 3]| {
        for via in [1u64, 2] {
            for _ in 0..25 {
                c.send(via, &format!("create /load{next} v{next}"));
                next += 1;
                sent[via as usize] += 1;
            }
        }
    };
    let collect = |c: &mut ProcessCluster, acked: &mut Vec<String>, answered: &mut [usize; 3]| {
        for via in [1u64, 2] {
            let ok = c.drain_lines(via, |l| l.starts_with("ok /load"));
            let err = c.drain_lines(via, |l| l.starts_with("err /load"));
            answered[via as usize] += ok.len() + err.len();
            acked.extend(ok);
        }
    };
    send_batch(&mut c, &mut sent);
    wait_until(
        "the first writes to commit",
        Duration::from_secs(20),
        || {
            collect(&mut c, &mut acked, &mut answered);
            acked.len() >= 10
        },
    )
    .unwrap();
    // More writes are in flight when the leader dies.
    send_batch(&mut c, &mut sent);
    c.kill9(3);
    // The most up-to-date survivor leads: under load that may be either of them.
    wait_until("a new leader among the survivors", ELECTION, || {
        let modes = [c.mode(1), c.mode(2)];
        modes.contains(&"leader".to_string()) && modes.contains(&"follower".to_string())
    })
    .unwrap();
    send_batch(&mut c, &mut sent);
    wait_until("an answer to every write", Duration::from_secs(30), || {
        collect(&mut c, &mut acked, &mut answered);
        answered[1] == sent[1] && answered[2] == sent[2]
    })
    .unwrap();
    c.start(3);
    wait_until("server 3 to rejoin", ELECTION, || c.mode(3) == "follower").unwrap();
    eprintln!(
        "{} of 150 writes acknowledged across the leader's death",
        acked.len()
    );
    assert!(
        acked.len() >= 60,
        "only {} of 150 writes acknowledged",
        acked.len()
    );
    for line in &acked {
        let path = line.split_whitespace().nth(1).unwrap().to_string();
        let value = path.trim_start_matches("/load");
        for id in 1..=3 {
            let got = c
                .ask(id, &format!("get {path}"), &format!("data {path} "))
                .unwrap();
            assert_eq!(
                got,
                format!("data {path} v{value}"),
                "server {id} lost an acknowledged write"
            );
        }
    }
}

/// A crashed quorum peer actor or peer link is restarted by its supervisor; the process lives
/// on and serves again.
#[test]
fn supervised_actors_restart_and_the_node_keeps_serving() {
    let mut c = writer_cluster(16, "");
    write_n(&mut c, 1, 0, 5);
    assert_eq!(
        c.ask(1, "fail link 3", "injected").as_deref(),
        Some("injected")
    );
    assert_eq!(
        c.ask(1, "fail zab", "injected").as_deref(),
        Some("injected")
    );
    wait_until(
        "server 1 to restart its quorum peer and follow again",
        ELECTION,
        || {
            c.ask(1, "status", "status")
                .is_some_and(|s| s.starts_with("status Following true 3") && s.ends_with(" 1"))
        },
    )
    .unwrap();
    assert!(c.is_running(1));
    write_n(&mut c, 1, 5, 10);
    assert_eq!(
        c.ask(1, "get /n2", "data /n2").unwrap(),
        "data /n2 v2",
        "state rebuilt from disk"
    );
    let log = c.log(1);
    assert!(
        log.contains("peer link restarting") && log.contains("quorum peer restarting from disk"),
        "{log}"
    );
}
