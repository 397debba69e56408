//! Null data stays null on the wire (issue 8): a znode created or set with a data buffer of
//! length -1 reads back with length -1, as in Apache ZooKeeper 3.8, not as empty bytes; empty
//! data stays empty. Checked through getData, multi and multiRead, on every server, after a
//! follower is synced by DIFF and by SNAP and after every server restarted; and the same
//! request script run against Apache ZooKeeper 3.8 (`/work/shared/tools/apache-zk.sh`, one
//! server on 127.0.0.1:15281) and ensemble must see the same answers. About 30 s.

use ensemble_messages::jute::{Jute, PathWatchRequest};
use ensemble_messages::zk::{EventType, OpCode};
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use ensemble_tests::raw_client::{create_request, set_request, RawSession, SubResult};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const SERVE: Duration = Duration::from_secs(30);
const APACHE_ZK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/tools/apache-zk.sh"
);
const APACHE_BASE_PORT: &str = "15280";
const APACHE_ADDR: &str = "127.0.0.1:15281";

/// What each path must read back as: `None` for null data.
type Expected = BTreeMap<String, Option<Vec<u8>>>;

/// Whether server `addr` serves every path of `want` with exactly that data (a follower that
/// has not caught up yet answers NoNode or older data, which is a plain `false`).
fn serves(addr: &str, want: &Expected) -> bool {
    let Ok(mut s) = RawSession::connect(addr) else {
        return false;
    };
    want.iter().all(|(path, data)| match s.get(path, false) {
        Ok((0, SubResult::Data(got, _, len))) => {
            got == *data && len == data.as_ref().map_or(0, |d| d.len() as i32)
        }
        _ => false,
    })
}

fn wait_served(c: &ProcessCluster, id: u64, want: &Expected, what: &str) {
    let addr = c.client_addr(id);
    if let Err(e) = wait_until(what, SERVE, || serves(&addr, want)) {
        panic!("server {id}: {e}; log:\n{}", c.log(id));
    }
}

/// How many times the leader's log says it synced `follower` by `how` (DIFF or SNAP).
fn syncs(c: &ProcessCluster, leader: u64, follower: u64, how: &str) -> usize {
    let by = format!("syncing follower by {how}");
    let to = format!("follower={follower}");
    c.log(leader)
        .lines()
        .filter(|l| l.contains(&by) && l.contains(&to))
        .count()
}

fn ok(answer: std::io::Result<(i32, i32, i32)>) {
    let (err, _, _) = answer.expect("the server answers");
    assert_eq!(err, 0);
}

#[test]
fn null_data_stays_null_on_every_server_through_diff_snap_and_restarts() {
    let mut c = ProcessCluster::new(
        3,
        195,
        Program::Cli(EXE.into()),
        "commit_log_count = 50\nsnap_count = 40",
    );
    c.start_all();
    c.wait_serving(SERVE).unwrap();
    let leader = c.leader().expect("one leader");
    let follower = (1..=3).find(|i| *i != leader).unwrap_or(1);
    let mut s = RawSession::connect(&c.client_addr(leader)).unwrap();
    let mut want = Expected::new();
    ok(s.create("/null", None));
    ok(s.create("/empty", Some(b"")));
    ok(s.create("/set", Some(b"x")));
    ok(s.set("/set", None));
    let multi = [(OpCode::Create, create_request("/multi", None).to_bytes())];
    assert_eq!(s.multi(OpCode::Multi, &multi).unwrap().0, 0);
    for (path, data) in [
        ("/null", None),
        ("/empty", Some(Vec::new())),
        ("/set", None),
        ("/multi", None),
    ] {
        want.insert(path.to_string(), data);
    }
    let reads: Vec<(OpCode, Vec<u8>)> = ["/null", "/empty"]
        .iter()
        .map(|p| {
            let r = PathWatchRequest {
                path: (*p).into(),
                watch: false,
            };
            (OpCode::GetData, r.to_bytes())
        })
        .collect();
    let (err, results) = s.multi(OpCode::MultiRead, &reads).unwrap();
    assert_eq!(err, 0);
    assert_eq!(
        results,
        vec![
            SubResult::Data(None, 0, 0),
            SubResult::Data(Some(Vec::new()), 0, 0)
        ]
    );
    for id in 1..=3 {
        wait_served(&c, id, &want, "the null znodes to be served");
    }

    // DIFF: the follower misses a few null writes.
    let diffs = syncs(&c, leader, follower, "DIFF");
    c.kill9(follower);
    ok(s.create("/diff", None));
    ok(s.set("/empty", None));
    want.insert("/diff".into(), None);
    want.insert("/empty".into(), None);
    c.start(follower);
    wait_served(&c, follower, &want, "the follower to catch up by DIFF");
    assert!(
        syncs(&c, leader, follower, "DIFF") > diffs,
        "{}",
        c.log(leader)
    );

    // SNAP: the follower misses more than the leader's commit log holds.
    let snaps = syncs(&c, leader, follower, "SNAP");
    c.kill9(follower);
    for i in 0..60 {
        ok(s.create(&format!("/fill{i}"), None));
    }
    ok(s.create("/snap", None));
    ok(s.set("/null", Some(b"")));
    ok(s.set("/null", None));
    want.insert("/snap".into(), None);
    want.insert("/fill59".into(), None);
    c.start(follower);
    wait_served(&c, follower, &want, "the follower to catch up by SNAP");
    assert!(
        syncs(&c, leader, follower, "SNAP") > snaps,
        "{}",
        c.log(leader)
    );
    drop(s);

    // Every server restarts from its own snapshot and log.
    for id in 1..=3 {
        c.kill9(id);
    }
    c.start_all();
    c.wait_serving(SERVE).unwrap();
    for id in 1..=3 {
        wait_served(&c, id, &want, "the null znodes after a restart");
    }
    // The shell prints null data as zkCli.sh does.
    let shell = Command::new(EXE)
        .args(["shell", "-server", &c.client_addr(1), "get", "/null"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "null\n");
}

/// Apache's server, stopped on drop even when the test fails.
struct Apache {
    dir: tempfile::TempDir,
}

impl Apache {
    fn start() -> Apache {
        assert!(
            std::path::Path::new(APACHE_ZK).exists(),
            "{APACHE_ZK} is missing: CI runs with shared/ beside the clone"
        );
        let apache = Apache {
            dir: tempfile::tempdir().unwrap(),
        };
        let status = Command::new("bash")
            .args([APACHE_ZK, "start", "1"])
            .arg(apache.dir.path())
            .env("APACHE_ZK_BASE_PORT", APACHE_BASE_PORT)
            .status()
            .expect("apache-zk.sh runs");
        assert!(status.success());
        wait_until("Apache ZooKeeper to serve", Duration::from_secs(60), || {
            ensemble_node::four_letter::mode(APACHE_ADDR, Duration::from_millis(500))
                == "standalone"
        })
        .unwrap();
        apache
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([APACHE_ZK, "stop"])
            .arg(self.dir.path())
            .status();
    }
}

fn get_record(path: &str) -> Vec<u8> {
    PathWatchRequest {
        path: path.into(),
        watch: false,
    }
    .to_bytes()
}

/// The same requests on one server, each answer as a line: error codes, data (null or
/// bytes), versions and dataLength, multi and multiRead results, watch events.
fn script(addr: &str) -> Vec<String> {
    let mut s = RawSession::connect(addr).unwrap();
    let mut out = Vec::new();
    let mut note = |step: &str, answer: String| out.push(format!("{step}: {answer}"));
    note(
        "create base",
        format!("{:?}", s.create("/nd", Some(b"base")).unwrap()),
    );
    note(
        "create null",
        format!("{:?}", s.create("/nd/null", None).unwrap()),
    );
    note(
        "create empty",
        format!("{:?}", s.create("/nd/empty", Some(b"")).unwrap()),
    );
    note(
        "get null",
        format!("{:?}", s.get("/nd/null", false).unwrap()),
    );
    note(
        "get empty",
        format!("{:?}", s.get("/nd/empty", false).unwrap()),
    );
    note(
        "set empty to null",
        format!("{:?}", s.set("/nd/empty", None).unwrap()),
    );
    note(
        "get set-null",
        format!("{:?}", s.get("/nd/empty", true).unwrap()),
    );
    note(
        "set null to bytes",
        format!("{:?}", s.set("/nd/empty", Some(b"v")).unwrap()),
    );
    note("events", format!("{:?}", s.events));
    note(
        "get bytes",
        format!("{:?}", s.get("/nd/empty", false).unwrap()),
    );
    let multi = [
        (OpCode::Create, create_request("/nd/m", None).to_bytes()),
        (
            OpCode::Create,
            create_request("/nd/m2", Some(b"b")).to_bytes(),
        ),
        (OpCode::SetData, set_request("/nd/m2", None).to_bytes()),
    ];
    note(
        "multi",
        format!("{:?}", s.multi(OpCode::Multi, &multi).unwrap()),
    );
    let failing = [
        (OpCode::SetData, set_request("/nd/m", Some(b"z")).to_bytes()),
        (OpCode::SetData, set_request("/nd/missing", None).to_bytes()),
    ];
    note(
        "failed multi",
        format!("{:?}", s.multi(OpCode::Multi, &failing).unwrap()),
    );
    let reads: Vec<(OpCode, Vec<u8>)> = ["/nd/m", "/nd/m2", "/nd/null", "/nd/missing"]
        .iter()
        .map(|p| (OpCode::GetData, get_record(p)))
        .collect();
    note(
        "multiRead",
        format!("{:?}", s.multi(OpCode::MultiRead, &reads).unwrap()),
    );
    out
}

#[test]
fn null_data_reads_back_as_apache_zookeeper_returns_it() {
    let apache = Apache::start();
    let theirs = script(APACHE_ADDR);
    drop(apache);
    let mut c = ProcessCluster::new(3, 196, Program::Cli(EXE.into()), "");
    c.start_all();
    c.wait_serving(SERVE).unwrap();
    let ours = script(&c.client_addr(1));
    println!("{}", theirs.join("\n"));
    assert_eq!(
        ours, theirs,
        "ensemble (left) and Apache 3.8 (right) differ"
    );
    // Not vacuous: Apache answered null for null data, and empty for empty.
    assert!(theirs.contains(&"get null: (0, Data(None, 0, 0))".to_string()));
    assert!(theirs.contains(&"get empty: (0, Data(Some([]), 0, 0))".to_string()));
    let changed = format!(
        "events: [({:?}, \"/nd/empty\")]",
        EventType::NodeDataChanged
    );
    assert!(theirs.contains(&changed), "{theirs:#?}");
}
