//! Three real server processes started from zoo.cfg files in the layouts ZooKeeper users write:
//! the single-host layout of ZooKeeper's "Running Replicated ZooKeeper" guide (server lines
//! without client ports, one clientPort per server), and the container layout where each
//! server's own line is `0.0.0.0` and the others are DNS names (also through a SNAP sync).
//! Ports are in the 175xx-177xx range so that the wildcard binds cannot clash with other
//! tests' `127.0.B.x:2181`.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use std::path::Path;
use std::time::Duration;

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_ensemble-cli").into()
}

/// zoo.cfg keys every server shares: test timing and every four-letter word.
fn common(data: &Path) -> String {
    format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\n4lw.commands.whitelist=*\n",
        data.display()
    )
}

/// The last lines of server `id`'s log.
fn log_tail(c: &ProcessCluster, id: u64) -> String {
    let log = c.log(id);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Starts every server and waits until they serve.
fn start_serving(c: &mut ProcessCluster) {
    c.start_all();
    c.wait_serving(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog of 1 ends:\n{}", log_tail(c, 1)));
}

/// A runtime for the test's clients.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client session on server `id`.
fn client(rt: &tokio::runtime::Runtime, c: &ProcessCluster, id: u64) -> ZkClient {
    rt.block_on(ZkClient::connect(
        &[c.client_addr(id)],
        Duration::from_secs(10),
    ))
    .unwrap()
}

/// Waits for a quorum, writes through server 1 and reads the write back through server 2.
fn write_on_one_read_on_another(c: &mut ProcessCluster) {
    start_serving(c);
    let rt = runtime();
    let connect = |id: u64| client(&rt, c, id);
    let writer = connect(1);
    rt.block_on(writer.create("/layout", b"written on 1", CreateMode::Persistent))
        .unwrap();
    let reader = connect(2);
    wait_until(
        "server 2 to serve the write",
        Duration::from_secs(10),
        || {
            rt.block_on(reader.get_data("/layout"))
                .is_ok_and(|(data, _)| data == b"written on 1")
        },
    )
    .unwrap();
}

/// The guide's single-host layout: `server.N=host:Q+N:E+N` without client ports, and each
/// server with its own clientPort (bound on every interface, as ZooKeeper does).
#[test]
fn guide_single_host_layout_forms_a_quorum() {
    let cfg = |i: u64, data: &Path| {
        let mut cfg = format!("{}clientPort={}\n", common(data), 17500 + i);
        for j in 1..=3 {
            cfg.push_str(&format!(
                "server.{j}=127.0.75.1:{}:{}\n",
                17510 + j,
                17520 + j
            ));
        }
        cfg
    };
    let mut c = ProcessCluster::with_zoo_cfg_text(3, 75, exe(), cfg, |i| {
        format!("127.0.75.1:{}", 17500 + i)
    });
    // A peer's client port is unknown to the others, and a server's own from `clientPort` is
    // static config: `conf` lists both lines without one, as Apache ZooKeeper 3.8 does.
    c.start(2);
    let mut conf = String::new();
    wait_until("server 2 to answer conf", Duration::from_secs(10), || {
        ensemble_node::four_letter::ask(&c.client_addr(2), "conf", Duration::from_secs(2))
            .map(|text| conf = text)
            .is_ok()
    })
    .unwrap();
    assert!(conf.contains("clientPort=17502\n"), "{conf}");
    assert!(
        conf.contains("server.1=127.0.75.1:17511:17521:participant\n"),
        "{conf}"
    );
    assert!(
        conf.contains("server.2=127.0.75.1:17512:17522:participant\n"),
        "{conf}"
    );
    c.kill9(2);
    write_on_one_read_on_another(&mut c);
    // `ensemble status --zoo-cfg` knows server 2's client port only.
    let out = std::process::Command::new(exe())
        .args(["status", "--zoo-cfg"])
        .arg(c.zoo_cfg_path(2).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("its server line names no client port").count(),
        2,
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("server.2")
            && l.contains("127.0.75.1:17502")
            && (l.ends_with("Mode: leader") || l.ends_with("Mode: follower"))),
        "{text}"
    );
}

/// Three servers on block `block` in the container layout, ports from `base`: each one's own
/// line is `0.0.0.0` (bind every interface), the others name it `localhost`, client ports on
/// the lines (`;port`); `extra` lines after them.
fn container_cluster(block: u8, base: u64, extra: &'static str) -> ProcessCluster {
    let cfg = move |i: u64, data: &Path| {
        let mut cfg = common(data);
        for j in 1..=3 {
            let host = if i == j { "0.0.0.0" } else { "localhost" };
            cfg.push_str(&format!(
                "server.{j}={host}:{}:{};{}\n",
                base + 10 + j,
                base + 20 + j,
                base + j
            ));
        }
        cfg + extra
    };
    ProcessCluster::with_zoo_cfg_text(3, block, exe(), cfg, move |i| {
        format!("127.0.{block}.{i}:{}", base + i)
    })
}

/// The container layout. ZooKeeper forms a quorum from these files; ensemble does once the
/// peer handshake stops comparing server lists.
#[test]
fn own_line_on_all_interfaces_forms_a_quorum() {
    let mut c = container_cluster(76, 17600, "");
    write_on_one_read_on_another(&mut c);
}

/// The container layout through a SNAP: a follower restarted further behind than the leader's
/// commit log installs the leader's snapshot, whose config node names the leader `0.0.0.0`.
/// Same config version, same membership: the follower keeps its own server lines, as
/// ZooKeeper does (ZOOKEEPER-2819). It used to take the leader's, replace every peer link
/// (the leader's among them: it dropped out again just synced) and, on hosts of their own,
/// dial the leader at `0.0.0.0`, itself.
#[test]
fn own_line_on_all_interfaces_survives_a_snap_sync() {
    let mut c = container_cluster(77, 17700, "commitLogCount=5\n");
    start_serving(&mut c);
    let leader = c.leader().expect("a leader");
    let follower = if leader == 1 { 2 } else { 1 };
    c.kill9(follower);
    let rt = runtime();
    let writer = client(&rt, &c, leader);
    for i in 0..20 {
        rt.block_on(writer.create(&format!("/snap{i}"), b"", CreateMode::Persistent))
            .unwrap();
    }
    let restarted_at = c.log(follower).len();
    c.start(follower);
    c.wait_serving(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog of {follower} ends:\n{}", log_tail(&c, follower)));
    let reader = client(&rt, &c, follower);
    rt.block_on(reader.sync("/")).unwrap();
    assert!(rt.block_on(reader.exists("/snap19")).unwrap().is_some());
    assert!(
        c.log(leader).contains("syncing follower by SNAP"),
        "{}",
        c.log(leader)
    );
    let since = c.log(follower)[restarted_at..].to_string();
    for symptom in ["link retired", "lost the link to the leader"] {
        assert!(!since.contains(symptom), "{symptom}:\n{since}");
    }
    let conf =
        ensemble_node::four_letter::ask(&c.client_addr(follower), "conf", Duration::from_secs(2))
            .unwrap();
    let leader_line = format!("server.{leader}=localhost:{}:", 17710 + leader);
    assert!(conf.contains(&leader_line), "{leader_line}:\n{conf}");
}
