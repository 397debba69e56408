//! Three real servers started from zoo.cfg files with ZooKeeper's metricsProvider.* and
//! admin.* keys: `/metrics` carries ZooKeeper's metric names and follows the load, the
//! AdminServer answers its commands in Apache's JSON shapes, and admin.enableServer=false
//! leaves its port closed. Servers are on 127.0.105.x.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::{http_get, runtime, sample};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const PROMETHEUS: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

fn host(i: u64) -> String {
    format!("127.0.105.{i}")
}

/// Server `i`'s zoo.cfg: metrics on every server, the AdminServer on 1 and 2 (enabled by
/// admin.serverPort alone, as in ZooKeeper) and explicitly off on 3.
fn zoo_cfg(i: u64, data: &Path) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort=2181\n\
         clientPortAddress={h}\n4lw.commands.whitelist=*\n\
         metricsProvider.className={PROMETHEUS}\nmetricsProvider.httpHost={h}\n\
         metricsProvider.httpPort=7000\nadmin.serverAddress={h}\nadmin.serverPort=8080\n\
         fsync.warningthresholdms=2000\n",
        data.display(),
        h = host(i)
    );
    if i == 3 {
        cfg.push_str("admin.enableServer=false\n");
    }
    for j in 1..=3 {
        cfg.push_str(&format!("server.{j}={h}:2888:3888;{h}:2181\n", h = host(j)));
    }
    cfg
}

fn scrape(i: u64) -> String {
    let (status, body) = http_get(&format!("{}:7000", host(i)), "/metrics").expect("scrape");
    assert_eq!(status, 200, "{body}");
    body
}

fn metric(i: u64, name: &str) -> f64 {
    let body = scrape(i);
    sample(&body, name).unwrap_or_else(|| panic!("no {name} in\n{body}"))
}

fn command(i: u64, name: &str) -> Value {
    let (status, body) =
        http_get(&format!("{}:8080", host(i)), &format!("/commands/{name}")).expect("command");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e} in {body}"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Keys of Apache ZooKeeper 3.8's responses (captured from its AdminServer).
const SRVR_KEYS: &[&str] = &[
    "client_response",
    "command",
    "error",
    "node_count",
    "read_only",
    "server_stats",
    "version",
];
const SERVER_STATS_KEYS: &[&str] = &[
    "auth_failed_count",
    "avg_latency",
    "client_response_stats",
    "data_dir_size",
    "fsync_threshold_exceed_count",
    "last_processed_zxid",
    "log_dir_size",
    "max_latency",
    "min_latency",
    "non_mtlslocal_conn_count",
    "non_mtlsremote_conn_count",
    "num_alive_client_connections",
    "outstanding_requests",
    "packets_received",
    "packets_sent",
    "provider_null",
    "server_state",
    "uptime",
];
const CONF_KEYS: &[&str] = &[
    "client_port",
    "client_port_listen_backlog",
    "command",
    "data_dir",
    "data_log_dir",
    "error",
    "max_client_cnxns",
    "max_session_timeout",
    "min_session_timeout",
    "server_id",
    "tick_time",
];

fn has_all(v: &Value, expected: &[&str]) {
    let got = keys(v);
    let missing: Vec<&&str> = expected.iter().filter(|k| !got.contains(**k)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in {v}");
}

#[test]
fn metrics_and_admin_server_from_zoo_cfg() {
    let exe = env!("CARGO_BIN_EXE_ensemble-cli").into();
    let mut c =
        ProcessCluster::with_zoo_cfg_text(3, 105, exe, zoo_cfg, |i| format!("{}:2181", host(i)));
    c.start_all();
    c.wait_serving(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog of 1:\n{}", c.log(1)));
    let leader = c.leader().expect("a leader");
    wait_until(
        "the leader to count both followers",
        Duration::from_secs(10),
        || sample(&scrape(leader), "synced_followers") == Some(2.0),
    )
    .unwrap();
    let before = scrape(1);
    for name in [
        "# TYPE znode_count gauge",
        "# TYPE fsynctime summary",
        "# TYPE looking_count counter",
        "# TYPE fsync_threshold_exceed_count counter",
        "quorum_size 3",
        "readlatency{quantile=\"0.99\"}",
        "updatelatency_count",
        "election_time_count 1",
        "open_file_descriptor_count",
        "num_alive_connections",
        "outstanding_requests",
        "watch_count",
        "ephemerals_count",
        "uptime",
    ] {
        assert!(before.contains(name), "{name} missing from\n{before}");
    }
    assert!(sample(&scrape(leader), "leader_uptime").is_some());

    let rt = runtime();
    let client = rt
        .block_on(ZkClient::connect(
            &[c.client_addr(1)],
            Duration::from_secs(10),
        ))
        .unwrap();
    rt.block_on(client.create("/metrics-test", b"", CreateMode::Persistent))
        .unwrap();
    for k in 0..20 {
        rt.block_on(client.create(&format!("/metrics-test/n{k}"), b"x", CreateMode::Persistent))
            .unwrap();
    }
    rt.block_on(client.create("/metrics-test/e", b"", CreateMode::Ephemeral))
        .unwrap();
    rt.block_on(client.get_data_watch("/metrics-test", true))
        .unwrap();
    let znodes = sample(&before, "znode_count").unwrap();
    wait_until(
        "server 2 to count the new znodes",
        Duration::from_secs(10),
        || metric(2, "znode_count") == znodes + 22.0,
    )
    .unwrap();
    let after = scrape(1);
    let grew = |name: &str, by: f64| {
        let (b, a) = (
            sample(&before, name).unwrap(),
            sample(&after, name).unwrap(),
        );
        assert!(a >= b + by, "{name} went from {b} to {a}");
    };
    grew("packets_received", 23.0);
    grew("packets_sent", 23.0);
    grew("updatelatency_count", 22.0);
    grew("readlatency_count", 1.0);
    grew("watch_count", 1.0);
    grew("ephemerals_count", 1.0);
    grew("num_alive_connections", 1.0);
    assert!(metric(leader, "fsynctime_count") > 0.0);

    // The AdminServer, against the keys of Apache ZooKeeper 3.8's responses.
    let (status, list) = http_get(&format!("{}:8080", host(1)), "/commands").unwrap();
    assert_eq!(status, 200);
    assert!(
        list.contains("<a href=\"/commands/monitor\">monitor</a>"),
        "{list}"
    );
    assert_eq!(
        command(1, "ruok"),
        serde_json::json!({"command": "ruok", "error": null})
    );
    let srvr = command(1, "srvr");
    has_all(&srvr, SRVR_KEYS);
    has_all(&srvr["server_stats"], SERVER_STATS_KEYS);
    assert_eq!(srvr["command"], "server_stats");
    assert_eq!(srvr["node_count"].as_f64(), Some(znodes + 22.0));
    has_all(&command(1, "conf"), CONF_KEYS);
    let mntr = command(1, "mntr");
    assert_eq!(mntr["command"], "monitor");
    assert_eq!(mntr["znode_count"].as_f64(), Some(znodes + 22.0));
    assert!(
        mntr["cnt_fsynctime"].is_number() && mntr["avg_latency"].is_number(),
        "{mntr}"
    );
    let cons = command(1, "cons");
    assert_eq!(
        cons["connections"].as_array().map(Vec::len),
        Some(1),
        "{cons}"
    );
    has_all(
        &cons["connections"][0],
        &["remote_socket_address", "packets_received", "session_id"],
    );
    assert_eq!(
        command(1, "wchs"),
        serde_json::json!({"num_connections": 1, "num_paths": 1, "num_total_watches": 1,
            "command": "watch_summary", "error": null})
    );
    let dump = command(1, "dump");
    let ephemerals = dump["session_id_to_ephemeral_paths"].as_object().unwrap();
    assert_eq!(
        ephemerals.values().next().unwrap(),
        &serde_json::json!(["/metrics-test/e"])
    );
    let wchp = command(1, "watches_by_path");
    assert!(
        wchp["path_to_session_ids"]["/metrics-test"].is_array(),
        "{wchp}"
    );
    assert_eq!(command(2, "isro")["read_only"], false);
    let lead = command(2, "leader");
    assert_eq!(lead["leader_id"].as_u64(), Some(leader));
    assert_eq!(
        command(1, "voting_view")["current_config"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        command(1, "nosuch"),
        serde_json::json!({"command": "nosuch", "error": "Unknown command: nosuch"})
    );
    assert!(
        std::net::TcpStream::connect(format!("{}:8080", host(3))).is_err(),
        "admin.enableServer=false leaves the port closed"
    );
    assert!(sample(&scrape(3), "znode_count").is_some());
}
