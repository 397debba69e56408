//! Worker decommissioning as real processes on loopback (a master at 127.0.140.31, workers at
//! 127.0.140.41-42, beside the Spark 4 test's addresses in the same block): SIGPWR to a worker
//! with `spark.decommission.enabled` makes it DECOMMISSIONED, its executor's application gets
//! a replacement on the other worker while the process runs on; the master's
//! `POST /workers/kill/?host=` decommissions the other.

use ensemble_node::local_cluster::wait_until;
use ensemble_tests::spark::{json, request, Proc};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
const MASTER: &str = "127.0.140.31";
const WORKERS: [&str; 2] = ["127.0.140.41", "127.0.140.42"];

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The master's view of the worker on `host`: its state and cores used.
fn worker_at(host: &str) -> Option<(String, u64)> {
    let j = json(MASTER, 8080)?;
    let w = j["workers"]
        .as_array()?
        .iter()
        .find(|w| w["host"] == host)?
        .clone();
    Some((w["state"].as_str()?.to_string(), w["coresused"].as_u64()?))
}

/// How many executors the worker on `host` says it runs (its own `/json`).
fn executors_on(host: &str) -> Option<usize> {
    json(host, 8081)?["executors"].as_array().map(Vec::len)
}

#[test]
fn sigpwr_and_the_kill_workers_endpoint_decommission_workers() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("worker.conf");
    std::fs::write(&props, "spark.decommission.enabled true\n").unwrap();
    let props = props.display().to_string();
    let master = Proc::start(
        EXE.as_ref(),
        dir.path(),
        "master",
        &args(&[
            "master",
            "--host",
            MASTER,
            "--port",
            "7077",
            "--webui-port",
            "8080",
        ]),
    );
    let url = format!("spark://{MASTER}:7077");
    let workers: Vec<Proc> = WORKERS
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let work = dir.path().join(format!("work-{i}"));
            let list = [
                "worker",
                &url,
                "--host",
                host,
                "--cores",
                "1",
                "--memory",
                "256m",
                "--webui-port",
                "8081",
                "--work-dir",
                &work.display().to_string(),
                "--properties-file",
                &props,
            ];
            Proc::start(
                EXE.as_ref(),
                dir.path(),
                &format!("worker-{i}"),
                &args(&list),
            )
        })
        .collect();
    let logs = || {
        let mut all = master.log();
        for w in &workers {
            all.push_str(&w.log());
        }
        all
    };
    wait_until("both workers registered", Duration::from_secs(20), || {
        json(MASTER, 8080).is_some_and(|j| j["aliveworkers"] == 2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let mut app = std::process::Command::new(EXE)
        .args(["submit", "--master", &url, "--total-executor-cores", "1"])
        .args(["--executor-memory", "64m", "--", "sleep", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ensemble submit runs");
    // Running on the worker itself, not only granted by the master: a worker decommissioned
    // before its LaunchExecutor arrives launches nothing (as Spark's does).
    let mut busy = 0;
    wait_until("the executor running", Duration::from_secs(20), || {
        busy = (0..2)
            .find(|i| worker_at(WORKERS[*i]).is_some_and(|(_, used)| used == 1))
            .unwrap_or(9);
        busy < 2 && executors_on(WORKERS[busy]) == Some(1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let other = 1 - busy;
    workers[busy].signal("-PWR");
    let moved = wait_until(
        "the worker DECOMMISSIONED and the executor replaced on the other",
        Duration::from_secs(20),
        || {
            worker_at(WORKERS[busy]).is_some_and(|(s, _)| s == "DECOMMISSIONED")
                && worker_at(WORKERS[other]).is_some_and(|(s, used)| s == "ALIVE" && used == 1)
        },
    );
    let own = json(WORKERS[busy], 8081).unwrap_or_default();
    let killed = request(
        MASTER,
        8080,
        "POST",
        &format!("/workers/kill/?host={}", WORKERS[other]),
        "",
        "",
    );
    let nobody = request(
        MASTER,
        8080,
        "POST",
        "/workers/kill/?host=127.0.140.99",
        "",
        "",
    );
    let _ = app.kill();
    let _ = app.wait();
    moved.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(own["state"], "DECOMMISSIONED", "{own}");
    assert_eq!(
        own["executors"].as_array().map(Vec::len),
        Some(1),
        "its executor runs on: {own}"
    );
    assert_eq!(killed.map(|r| r.0), Some(200));
    assert_eq!(nobody.map(|r| r.0), Some(404));
    wait_until("the other worker told", Duration::from_secs(10), || {
        json(WORKERS[other], 8081).is_some_and(|j| j["state"] == "DECOMMISSIONED")
            && worker_at(WORKERS[other]).is_some_and(|(s, _)| s == "DECOMMISSIONED")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let page = request(MASTER, 8080, "GET", "/", "", "")
        .unwrap_or_default()
        .1;
    assert!(page.contains("DECOMMISSIONED"), "{page}");
}
