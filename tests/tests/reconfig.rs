//! Dynamic reconfig as ZooKeeper 3.5+ (issue 8): `/zookeeper/config` in ZooKeeper's text, the
//! reconfig op's errors, servers removed under write load (a follower, then the leader, which
//! hands over without losing an acknowledged write), a restart of everyone keeping the new
//! membership, and observers removed, added back and made of a voter through reconfig.

use ensemble_actors::client_port::digest_id;
use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::CreateMode;
use ensemble_messages::zk::ZkError;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const ELECTION: Duration = Duration::from_secs(30);
const SUPER: &str = "super:secret";

fn cluster(size: u64, block: u8, enabled: bool) -> ProcessCluster {
    let extra = format!(
        "reconfigEnabled={enabled}\nDigestAuthenticationProvider.superDigest={}\n",
        digest_id(SUPER)
    );
    let mut c = ProcessCluster::with_zoo_cfg_lines(size, block, EXE.into(), &extra);
    c.start_all();
    c.wait_serving(ELECTION).unwrap();
    c
}

/// A session on server `id`, authenticated as the super user when `admin`.
fn session(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64, admin: bool) -> ZkClient {
    rt.block_on(async {
        let z = ZkClient::connect(&[c.client_addr(id)], Duration::from_secs(10))
            .await
            .unwrap();
        if admin {
            z.add_auth("digest", SUPER.as_bytes()).await.unwrap();
        }
        z
    })
}

fn line(block: u8, id: u64) -> String {
    format!("server.{id}=127.0.{block}.{id}:2888:3888:participant;127.0.{block}.{id}:2181")
}

fn code<T>(r: Result<T, ClientError>) -> Result<(), ZkError> {
    match r {
        Ok(_) => Ok(()),
        Err(ClientError::Server(c)) => Err(c),
        Err(e) => panic!("unexpected {e}"),
    }
}

fn config(rt: &tokio::runtime::Runtime, z: &ZkClient) -> String {
    let (data, _) = rt.block_on(z.get_data("/zookeeper/config")).unwrap();
    String::from_utf8(data).unwrap()
}

#[test]
fn config_node_text_and_the_errors_of_reconfig_as_zookeeper() {
    const B: u8 = 175;
    let c = cluster(3, B, true);
    let rt = runtime();
    let (admin, stranger) = (session(&rt, &c, 1, true), session(&rt, &c, 2, false));
    let lines: Vec<String> = (1..=3).map(|i| line(B, i)).collect();
    assert_eq!(
        config(&rt, &stranger),
        format!("{}\nversion=0", lines.join("\n"))
    );
    rt.block_on(async {
        // Clients read it but do not write it.
        assert_eq!(
            code(stranger.set_data("/zookeeper/config", b"x", -1).await),
            Err(ZkError::NoAuth)
        );
        let joining = "server.4=127.0.175.4:2888:3888;2181";
        assert_eq!(
            code(stranger.reconfig(joining, "", "", -1).await),
            Err(ZkError::NoAuth)
        );
        for (j, l, m) in [
            ("some thing", "", ""),
            ("", "x", ""),
            ("", "1,2,3", ""),
            (joining, "", &lines[0][..]),
        ] {
            assert_eq!(
                code(admin.reconfig(j, l, m, -1).await),
                Err(ZkError::BadArguments),
                "{j}|{l}|{m}"
            );
        }
        assert_eq!(
            code(admin.reconfig("", "3", "", 0x77).await),
            Err(ZkError::BadVersion)
        );
        // Nothing above changed the membership.
        let (_, stat) = admin.get_data("/zookeeper/config").await.unwrap();
        assert_eq!((stat.version, stat.mzxid), (0, 0));
    });
    // The shell's config and reconfig, as zkCli's.
    let shell = |args: &[&str]| {
        let out = std::process::Command::new(EXE)
            .args(["shell", "-server", &c.client_addr(1)])
            .args(args)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (out.status.code(), output_text(&out))
    };
    let (status, out) = shell(&["config"]);
    assert_eq!(status, Some(0));
    assert_eq!(out, format!("{}\nversion=0\n", lines.join("\n")));
    let (status, out) = shell(&["reconfig", "-remove", "3"]);
    assert_eq!(
        (status, out.as_str()),
        (Some(1), "Insufficient permission : \n")
    );
    let (_, out) = shell(&["reconfig", "-members", &lines[0], "-add", &lines[1]]);
    assert!(
        out.contains("mixing incremental and non-incremental"),
        "{out}"
    );
    drop(c);
    let c = cluster(3, 176, false);
    let admin = session(&rt, &c, 1, true);
    assert_eq!(
        code(rt.block_on(admin.reconfig("", "3", "", -1))),
        Err(ZkError::ReconfigDisabled)
    );
}

/// Writes `/w<n>` through server `via` until stopped; records each acknowledged write.
fn write_load(
    c: &ProcessCluster,
    via: u64,
    stop: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let mut order = vec![c.client_addr(via)];
    order.extend((1..=4).map(|i| c.client_addr(i)));
    ensemble_tests::write_load(order, stop)
}

#[test]
fn removing_a_follower_then_the_leader_under_load_loses_no_write_and_survives_restart() {
    const B: u8 = 175;
    let mut c = cluster(4, B, true);
    let rt = runtime();
    let leader = c.leader().unwrap();
    let followers: Vec<u64> = (1..=4).filter(|i| *i != leader).collect();
    let (gone, stay) = (followers[0], followers[1]);
    let stop = Arc::new(AtomicBool::new(false));
    let (load, acked) = write_load(&c, stay, stop.clone());
    let admin = session(&rt, &c, stay, true);
    wait_until("writes to flow", ELECTION, || {
        acked.lock().unwrap().len() > 20
    })
    .unwrap();

    let (text, stat) = rt
        .block_on(admin.reconfig("", &gone.to_string(), "", -1))
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains(&format!("server.{gone}=")), "{text}");
    assert!(
        text.ends_with(&format!("version={:x}", stat.mzxid)),
        "{text}"
    );
    assert_eq!(stat.version, 1);
    wait_until("the removed follower to stop serving", ELECTION, || {
        c.mode(gone) != "follower"
    })
    .unwrap();
    let before = acked.lock().unwrap().len();
    wait_until("writes to flow with 3 voters", ELECTION, || {
        acked.lock().unwrap().len() > before + 20
    })
    .unwrap();

    // The leader removes itself: it hands over; the two left elect a new leader.
    let (text, _) = rt
        .block_on(admin.reconfig("", &leader.to_string(), "", -1))
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("server.")).count(),
        2,
        "{text}"
    );
    let left: Vec<u64> = (1..=4).filter(|i| *i != gone && *i != leader).collect();
    let served = |c: &ProcessCluster| {
        let modes: Vec<String> = left.iter().map(|i| c.mode(*i)).collect();
        modes.contains(&"leader".to_string()) && modes.contains(&"follower".to_string())
    };
    wait_until("the two left to serve", ELECTION, || served(&c)).unwrap();
    let before = acked.lock().unwrap().len();
    wait_until("writes to flow after the handover", ELECTION, || {
        acked.lock().unwrap().len() > before + 20
    })
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    // Every acknowledged write is on both servers left, after a restart of everyone. (The
    // admin's server stopped serving for the election, which ended its connection.)
    drop(admin);
    let expected = config(&rt, &session(&rt, &c, left[0], false));
    for id in 1..=4 {
        c.kill9(id);
    }
    for id in 1..=4 {
        c.start(id);
    }
    wait_until("the two members to serve after a restart", ELECTION, || {
        served(&c)
    })
    .unwrap();
    let acked = acked.lock().unwrap().clone();
    for id in &left {
        let z = session(&rt, &c, *id, false);
        assert_eq!(config(&rt, &z), expected, "server {id}");
        rt.block_on(async {
            for p in &acked {
                assert!(z.exists(p).await.unwrap().is_some(), "{p} lost on {id}");
            }
        });
    }
    // The removed servers are out: they serve no client as members.
    for id in [gone, leader] {
        assert!(
            !["leader", "follower"].contains(&c.mode(id).as_str()),
            "server {id}"
        );
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// kazoo's reconfig tests: no super auth, bad input, a stale from_config, a participant
/// removed and added back (it follows again).
#[test]
fn kazoo_reconfig_tests_pass() {
    const B: u8 = 176;
    let c = cluster(3, B, true);
    let follower = (1..=3).find(|i| c.mode(*i) == "follower").unwrap();
    // The clients use the servers that stay: a removed server stops serving and drops its
    // connections (as ZooKeeper's does), which made the next call fail with ConnectionLoss.
    let hosts: Vec<String> = (1..=3)
        .filter(|i| *i != follower)
        .map(|i| c.client_addr(i))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/kazoo_reconfig.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(hosts.join(","))
        .arg(SUPER)
        .arg(follower.to_string())
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text = output_text(&out);
    assert!(out.status.success(), "kazoo reconfig failed:\n{text}");
    assert_eq!(text.matches("ok ").count(), 6, "{text}");
    wait_until("the server added back to follow again", ELECTION, || {
        c.mode(follower) == "follower"
    })
    .unwrap();
}

/// Curator 5's EnsembleTracker sees the connection string change when a server is removed.
#[test]
fn curator_ensemble_tracker_follows_a_reconfig() {
    const B: u8 = 175;
    let classes = tempfile::tempdir().unwrap();
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/interop/EnsembleTrackerCheck.java"
    );
    let built = std::process::Command::new("javac")
        .args(["-cp", "/usr/share/java/*", "-d"])
        .arg(classes.path())
        .arg(source)
        .output()
        .expect("javac runs (./scripts/test installs Curator)");
    assert!(built.status.success(), "{}", output_text(&built));
    let c = cluster(3, B, true);
    let hosts: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let classpath = format!("{}:/usr/share/java/*", classes.path().display());
    let out = std::process::Command::new("java")
        .args(["-cp", &classpath, "EnsembleTrackerCheck"])
        .arg(hosts.join(","))
        .arg(SUPER)
        .arg(c.client_addr(3))
        .arg("3")
        .output()
        .expect("java runs");
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains("tracker ok"),
        "{text}"
    );
    let now = text.lines().find(|l| l.starts_with("tracker ok")).unwrap();
    assert!(
        now.contains(&c.client_addr(1)) && now.contains(&c.client_addr(2)),
        "{now}"
    );
}

/// Server `i`'s zoo.cfg for 3 voters and observer 4 (block `b`), reconfig enabled.
fn observer_cfg(b: u8, i: u64, data: &std::path::Path) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort=2181\n\
         clientPortAddress=127.0.{b}.{i}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
         reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={}\n",
        data.display(),
        digest_id(SUPER)
    );
    for j in 1..=4 {
        cfg.push_str(&format!("{}\n", role_line(b, j, j == 4)));
    }
    cfg
}

fn role_line(b: u8, id: u64, observer: bool) -> String {
    let role = if observer { "observer" } else { "participant" };
    format!("server.{id}=127.0.{b}.{id}:2888:3888:{role};127.0.{b}.{id}:2181")
}

/// A write through server `id`'s session is read back from every server in `readers`.
fn write_through(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64, readers: &[u64]) {
    let path = format!("/through-{id}-{}", readers.len());
    let z = session(rt, c, id, false);
    rt.block_on(z.create(&path, b"x", CreateMode::Persistent))
        .unwrap();
    for r in readers {
        wait_until(&format!("server {r} to serve {path}"), ELECTION, || {
            rt.block_on(async {
                let Ok(z) = ZkClient::connect(&[c.client_addr(*r)], Duration::from_secs(2)).await
                else {
                    return false;
                };
                z.exists(&path).await.is_ok_and(|s| s.is_some())
            })
        })
        .unwrap();
    }
}

#[test]
fn observers_leave_join_and_replace_a_voter_through_reconfig() {
    const B: u8 = 177;
    let mut c = ProcessCluster::with_zoo_cfg_text(
        4,
        B,
        EXE.into(),
        |i, data| observer_cfg(B, i, data),
        |i| format!("127.0.{B}.{i}:2181"),
    );
    c.start_all();
    c.wait_serving(ELECTION).unwrap();
    assert_eq!(c.mode(4), "observer");
    let rt = runtime();
    let leader = c.leader().unwrap();
    let admin = session(&rt, &c, leader, true);

    // The observer leaves: it stops serving, the voters go on.
    let (text, _) = rt.block_on(admin.reconfig("", "4", "", -1)).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains("server.4="), "{text}");
    wait_until("the removed observer to stop serving", ELECTION, || {
        c.mode(4) != "observer"
    })
    .unwrap();
    write_through(&rt, &c, leader, &[1, 2, 3]);

    // It joins again as an observer: it serves and learns every write.
    let (text, _) = rt
        .block_on(admin.reconfig(&role_line(B, 4, true), "", "", -1))
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&role_line(B, 4, true)), "{text}");
    wait_until("server 4 to observe again", ELECTION, || {
        c.mode(4) == "observer"
    })
    .unwrap();
    write_through(&rt, &c, 4, &[1, 2, 3, 4]);

    // A follower becomes an observer: two voters and two observers serve.
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let (text, _) = rt
        .block_on(admin.reconfig(&role_line(B, follower, true), "", "", -1))
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&role_line(B, follower, true)), "{text}");
    wait_until("the follower to observe", ELECTION, || {
        c.mode(follower) == "observer"
    })
    .unwrap();
    write_through(&rt, &c, follower, &[1, 2, 3, 4]);
    let modes: Vec<String> = (1..=4).map(|i| c.mode(i)).collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "observer").count(),
        2,
        "{modes:?}"
    );
    assert_eq!(c.leader(), Some(leader), "{modes:?}");
}
