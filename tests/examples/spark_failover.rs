//! Benchmark of ensemble's Spark-style masters (not a timed test):
//! 1. failover: from `kill -9` of the ALIVE master to a new ALIVE master with every live worker
//!    re-registered, over several runs of a 3-server ensemble, 3 masters and 2 workers;
//! 2. recovery: how long a newly elected master takes to read 1000 persisted worker records and
//!    1000 application records.
//!
//! Build the binaries first, then run:
//!   cargo build --release -p ensemble-tests
//!   cargo run --release -p ensemble-tests --example spark_failover -- [RUNS] [SESSION]
//! SESSION is the masters' spark.deploy.zookeeper.sessionTimeout (default 3s, as `ensemble up`).

use ensemble_actors::spark_master::ensemble_link::{encode_record, encode_worker};
use ensemble_actors::spark_master::StoredApp;
use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::spark::{AppDesc, WorkerSpec};
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use ensemble_tests::spark::{json, Proc, Topology};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("ensemble-cli")))
        .filter(|p| p.exists())
        .expect("target/release/ensemble-cli: run `cargo build --release -p ensemble-tests` first");
    let session = std::env::args().nth(2).unwrap_or_else(|| "3s".into());
    failover(&exe, runs, &session);
    recovery(&exe, 1000);
}

fn failover(exe: &Path, runs: usize, session: &str) {
    let props = format!("spark.deploy.zookeeper.sessionTimeout {session}\n");
    let mut times = Vec::new();
    for run in 0..runs {
        let mut t = Topology::start(exe, 46, &props);
        let old = t.wait_alive_with(2, Duration::from_secs(30));
        t.wait_records("worker_", 2, Duration::from_secs(10));
        t.masters[old - 1] = None;
        let killed = Instant::now();
        t.wait_alive_with(2, Duration::from_secs(60));
        let took = killed.elapsed();
        println!("run {run}: failover {:.2} s", took.as_secs_f64());
        times.push(took);
    }
    times.sort();
    println!(
        "failover with {session} sessions over {runs} runs: min {:.2} s, median {:.2} s, max {:.2} s",
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}

fn recovery(exe: &Path, records: usize) {
    let mut ensemble = ProcessCluster::new(3, 47, Program::Cli(exe.to_path_buf()), "");
    ensemble.start_all();
    ensemble.wait_serving(Duration::from_secs(20)).unwrap();
    let servers: Vec<String> = (1..=3).map(|i| ensemble.client_addr(i)).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = ZkClient::connect(&servers, Duration::from_secs(10))
            .await
            .unwrap();
        for p in ["/spark", "/spark/master_status"] {
            let _ = c.create(p, b"", 0).await;
        }
        for i in 0..records {
            let spec = WorkerSpec {
                id: format!("worker-20261122000000-10.0.{}.{}-8081", i / 250, i % 250),
                host: format!("10.0.{}.{}", i / 250, i % 250),
                port: 8081,
                cores: 8,
                memory_mb: 16384,
                webui: format!("http://10.0.{}.{}:8081", i / 250, i % 250),
            };
            let path = format!("/spark/master_status/worker_{}", spec.id);
            c.create(&path, &encode_worker(&spec), 0).await.unwrap();
            let app = StoredApp {
                id: format!("app-1-{i:04}"),
                desc: AppDesc {
                    name: format!("job-{i}"),
                    command: vec!["run".into(), "--input".into(), format!("part-{i}")],
                    max_cores: Some(8),
                    executor_cores: 2,
                    executor_memory_mb: 4096,
                    user: String::new(),
                },
                wanted: 4,
                completed: 1,
                next_exec: 3,
                submitted_ms: 0,
            };
            let path = format!("/spark/master_status/app_{}", app.id);
            c.create(&path, &encode_record(&app), 0).await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("spark.conf");
    std::fs::write(
        &props,
        format!(
            "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {}\n\
             spark.deploy.recoveryTimeout 60s\n",
            servers.join(",")
        ),
    )
    .unwrap();
    let args: Vec<String> = [
        "master",
        "--host",
        "127.0.47.11",
        "--port",
        "7077",
        "--webui-port",
        "8080",
        "--properties-file",
        props.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let master = Proc::start(exe, dir.path(), "master", &args);
    wait_until(
        "the master to recover the records",
        Duration::from_secs(60),
        || {
            json("127.0.47.11", 8080).is_some_and(|j| {
                j["status"] == "RECOVERING"
                    && j["workers"].as_array().is_some_and(|w| w.len() == records)
                    && j["activeapps"]
                        .as_array()
                        .is_some_and(|a| a.len() == records)
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", master.log()));
    let log = master.log();
    let read = log
        .lines()
        .find(|l| l.contains("application records"))
        .unwrap_or_default();
    println!(
        "recovery of {records} persisted workers and {records} applications: RECOVERING with all \
         listed {:.2} s after the process started; {}",
        started.elapsed().as_secs_f64(),
        read.split("elected leader; ").nth(1).unwrap_or(read)
    );
}
