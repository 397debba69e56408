//! Benchmarks of ensemble's Spark-style masters (not timed tests). Build the binaries first:
//!   cargo build --release -p ensemble-tests --bins --examples
//! then run one of:
//!   spark_failover failover RUNS TICK_MS [expiry]
//!     `kill -9` of the ALIVE master to a new ALIVE master with both workers and the running
//!     application, over RUNS fresh topologies (3-server ensemble with TICK_MS ticks, 3 masters,
//!     2 workers, 1 application); with `expiry`, without the masters' credential (no take-over:
//!     the dead master's session must expire);
//!   spark_failover ensemble-leader RUNS TICK_MS
//!     `kill -9` of the ensemble's leader (the server the masters hold their sessions on) to the
//!     ALIVE master acting again with both workers;
//!   spark_failover recovery RUNS TICK_MS WORKERS APPS
//!     the ALIVE master `kill -9`ed under WORKERS fake workers and APPS fake applications (and the
//!     2 real workers), to a new ALIVE master with every one of them (from the masters' logs);
//!   spark_failover records N
//!     how long a newly elected master takes to read N persisted worker and N application
//!     records.
//! (run them as `cargo run --release -p ensemble-tests --example spark_failover -- MODE ...`)

use ensemble_actors::spark_master::ensemble_link::{encode_record, encode_worker};
use ensemble_actors::spark_master::StoredApp;
use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::spark::{AppDesc, WorkerSpec};
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program, Timing};
use ensemble_tests::spark::{json, Proc, Topology};
use ensemble_tests::spark_load::Load;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The masters' credential.
const AUTH: &str = "spark.deploy.zookeeper.masterAuth masters:bench-secret\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("ensemble-cli")))
        .filter(|p| p.exists())
        .expect("target/release/ensemble-cli: run `cargo build --release -p ensemble-tests` first");
    let (runs, tick) = (arg(1, 10) as usize, arg(2, 2000));
    match args.first().map(String::as_str) {
        Some("failover") => {
            let expiry = args.get(3).is_some_and(|a| a == "expiry");
            failover(&exe, runs, tick, expiry)
        }
        Some("ensemble-leader") => ensemble_leader(&exe, runs, tick),
        Some("recovery") => {
            let (workers, apps) = (arg(3, 1000) as usize, arg(4, 1000) as usize);
            recovery(&exe, runs, tick, workers, apps)
        }
        Some("records") => records(&exe, arg(1, 1000) as usize),
        _ => eprintln!(
            "usage: spark_failover failover|ensemble-leader|recovery|records ... (see the source)"
        ),
    }
}

/// Quorum timing with `tick` ms ticks and ZooKeeper's sample limits.
fn timing(tick: u64) -> Timing {
    Timing {
        tick_ms: tick,
        init_limit: 10,
        sync_limit: 5,
    }
}

/// Prints min / median / max of `times`.
fn summary(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        println!(
            "{what} over {} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            times.len(),
            ms(min),
            ms(&times[times.len() / 2]),
            ms(max)
        );
    }
}

/// A topology with both workers registered and a running application stored; the ALIVE master.
fn ready(t: &Topology) -> (usize, Proc) {
    let alive = t.wait_alive_with(2, Duration::from_secs(60));
    let driver = t.submit_sleeper();
    wait_until("the application running", Duration::from_secs(30), || {
        json(&t.master_ip(alive), 8080).is_some_and(|j| j["coresused"] == 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    t.wait_records("worker_", 2, Duration::from_secs(10));
    t.wait_records("app_", 1, Duration::from_secs(10));
    (alive, driver)
}

/// Masters other than `skip` that say ALIVE, with their /json.
fn alive_but(t: &Topology, skip: usize) -> Vec<(usize, Value)> {
    (1..=3)
        .filter(|m| *m != skip && t.masters[m - 1].is_some())
        .filter_map(|m| json(&t.master_ip(m), 8080).map(|j| (m, j)))
        .filter(|(_, j)| j["status"] == "ALIVE")
        .collect()
}

/// Whether `j` shows both workers and the application running, and acting.
fn complete(j: &Value) -> bool {
    let running = j["activeapps"]
        .as_array()
        .is_some_and(|a| a.len() == 1 && a[0]["state"] == "RUNNING");
    j["aliveworkers"] == 2 && running && j["suspended"] == false
}

fn failover(exe: &Path, runs: usize, tick: u64, expiry: bool) {
    let props = if expiry { "" } else { AUTH };
    let mut times = Vec::new();
    for run in 0..runs {
        let mut t = Topology::start_with(exe, 135, props, false, timing(tick));
        let (old, _driver) = ready(&t);
        t.masters[old - 1] = None;
        let killed = Instant::now();
        let took = loop {
            let alive = alive_but(&t, old);
            assert!(alive.len() <= 1, "two ALIVE masters: {alive:?}");
            if matches!(&alive[..], [(_, j)] if complete(j)) {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no failover\n{}",
                t.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        println!("run {run}: failover {:.0} ms", took.as_secs_f64() * 1000.0);
        times.push(took);
    }
    let how = if expiry {
        "session expiry"
    } else {
        "take-over"
    };
    summary(&format!("failover ({how}, {tick} ms ticks)"), times);
}

fn ensemble_leader(exe: &Path, runs: usize, tick: u64) {
    let mut times = Vec::new();
    for run in 0..runs {
        let mut t = Topology::start_with(exe, 135, AUTH, true, timing(tick));
        let (alive, _driver) = ready(&t);
        let leader = t.ensemble.leader().expect("an ensemble leader");
        let log = |t: &Topology| {
            t.masters[alive - 1]
                .as_ref()
                .map(Proc::log)
                .unwrap_or_default()
        };
        let resumed_before = log(&t).matches("resumed: acting again").count();
        t.ensemble.kill9(leader);
        let killed = Instant::now();
        let took = loop {
            let now_alive = alive_but(&t, 0);
            assert!(now_alive.len() <= 1, "two ALIVE masters: {now_alive:?}");
            let acting = matches!(&now_alive[..], [(m, j)] if *m == alive && complete(j));
            if acting && log(&t).matches("resumed: acting again").count() > resumed_before {
                break killed.elapsed();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "not back\n{}",
                t.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        println!(
            "run {run}: ALIVE and acting again {:.0} ms after the ensemble leader died",
            took.as_secs_f64() * 1000.0
        );
        times.push(took);
    }
    summary(&format!("ensemble leader killed ({tick} ms ticks)"), times);
}

/// Seconds since midnight UTC of a log line's timestamp (`2026-12-01T13:47:37.290442Z ...`).
fn log_time(line: &str) -> Option<f64> {
    let clock = line.get(11..26)?;
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Seconds since midnight UTC now.
fn day_time() -> f64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs_f64() % 86_400.0
}

fn recovery(exe: &Path, runs: usize, tick: u64, workers: usize, apps: usize) {
    // Long sessions: registering thousands at once on a busy machine can hold a master up for
    // seconds; the take-over does not wait for them.
    let props = format!(
        "{AUTH}spark.deploy.recoveryTimeout 120s\nspark.deploy.zookeeper.sessionTimeout 30s\n"
    );
    let (all_workers, mut times) = (workers + 2, Vec::new());
    for run in 0..runs {
        let mut t = Topology::start_with(exe, 136, &props, false, timing(tick));
        let old = t.wait_alive_with(2, Duration::from_secs(60));
        let masters: Vec<String> = (1..=3)
            .map(|m| format!("{}:7077", t.master_ip(m)))
            .collect();
        // Workers first, then applications: every registration makes the master schedule, and
        // its scheduler costs (waiting applications) x (workers) x (executors) per message,
        // which stalls it for minutes when 1,000 applications wait for 1,000 arriving workers.
        let heartbeat = Duration::from_millis(2500);
        let host = "127.0.136.100";
        let workers_load = Load::start(&masters, host, workers, 0, heartbeat);
        t.wait_records("worker_", all_workers, Duration::from_secs(300));
        let apps_load = Load::start(&masters, host, 0, apps, heartbeat);
        let loaded = Instant::now();
        let full = |j: &Value| {
            j["aliveworkers"] == all_workers
                && j["activeapps"]
                    .as_array()
                    .is_some_and(|a| a.len() == apps && a.iter().all(|a| a["state"] == "RUNNING"))
        };
        t.wait_records("worker_", all_workers, Duration::from_secs(300));
        t.wait_records("app_", apps, Duration::from_secs(300));
        wait_until(
            "every fake worker and application running",
            Duration::from_secs(300),
            || {
                std::thread::sleep(Duration::from_millis(1000));
                json(&t.master_ip(old), 8080).is_some_and(|j| full(&j))
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
        println!("run {run}: {all_workers} workers and {apps} applications running {:.1} s after the load started", loaded.elapsed().as_secs_f64());
        t.masters[old - 1] = None;
        let killed = day_time();
        let mut new = 0;
        wait_until("a new ALIVE master", Duration::from_secs(180), || {
            std::thread::sleep(Duration::from_millis(20));
            new = (1..=3)
                .filter(|m| *m != old)
                .find(|m| master_log(&t, *m).contains("RECOVERING -> ALIVE"))
                .unwrap_or(0);
            new != 0
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
        let log = master_log(&t, new);
        let at = |what: &str| log.lines().find(|l| l.contains(what)).and_then(log_time);
        let (elected, alive) = (at("elected leader"), at("RECOVERING -> ALIVE"));
        let j = json(&t.master_ip(new), 8080).unwrap_or_default();
        assert!(
            full(&j),
            "the new master has every worker and application running"
        );
        assert_eq!(alive_but(&t, 0).len(), 1, "one ALIVE master");
        if let (Some(elected), Some(alive)) = (elected, alive) {
            let took = Duration::from_secs_f64((alive - killed).max(0.0));
            println!(
                "run {run}: kill -9 to elected {:.0} ms, to ALIVE with all {all_workers} workers and {apps} applications {:.0} ms ({})",
                (elected - killed) * 1000.0,
                took.as_secs_f64() * 1000.0,
                log.lines().find(|l| l.contains("elected leader; ")).and_then(|l| l.split("elected leader; ").nth(1)).unwrap_or_default()
            );
            times.push(took);
        }
        drop((workers_load, apps_load));
    }
    summary(
        &format!("recovery of {workers}+2 workers and {apps} applications ({tick} ms ticks)"),
        times,
    );
}

/// What master `m` logged so far.
fn master_log(t: &Topology, m: usize) -> String {
    t.masters[m - 1].as_ref().map(Proc::log).unwrap_or_default()
}

fn records(exe: &Path, records: usize) {
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
            let _ = c.create(p, b"", CreateMode::Persistent).await;
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
            c.create(&path, &encode_worker(&spec), CreateMode::Persistent)
                .await
                .unwrap();
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
            c.create(&path, &encode_record(&app), CreateMode::Persistent)
                .await
                .unwrap();
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
