//! ensemble's own Spark-style masters and workers as real processes on loopback, through a real
//! 3-server ensemble: the seed lab's scenarios (TEST 1: one ALIVE master, the others STANDBY,
//! every worker registered with it; TEST 2: `kill -9` of the ALIVE master) and the ensemble's
//! leader dying under them.

use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// A master or worker process, killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(dir: &Path, name: &str, args: &[String]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(EXE)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("ensemble runs");
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /json` from a web UI, or None while it does not answer.
fn json(ip: &str, port: u16) -> Option<Value> {
    let mut s = std::net::TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET /json HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

fn status(ip: &str) -> String {
    json(ip, 8080)
        .and_then(|j| j["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// An ensemble, three masters and two workers on 127.0.B.x.
struct Topology {
    ensemble: ProcessCluster,
    dir: tempfile::TempDir,
    block: u8,
    masters: Vec<Option<Proc>>,
    workers: Vec<Option<Proc>>,
}

impl Topology {
    fn start(block: u8, properties: &str) -> Topology {
        let mut ensemble = ProcessCluster::new(3, block, Program::Cli(EXE.into()), "");
        ensemble.start_all();
        ensemble.wait_serving(Duration::from_secs(20)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<String> = (1..=3).map(|i| ensemble.client_addr(i)).collect();
        let props = dir.path().join("spark.conf");
        std::fs::write(
            &props,
            format!(
                "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {}\n\
                 spark.deploy.zookeeper.sessionTimeout 2s\n{properties}",
                servers.join(",")
            ),
        )
        .unwrap();
        let props = props.display().to_string();
        let mut t = Topology {
            ensemble,
            dir,
            block,
            masters: Vec::new(),
            workers: Vec::new(),
        };
        for m in 1..=3 {
            let host = t.master_ip(m);
            let args = [
                "master",
                "--host",
                &host,
                "--port",
                "7077",
                "--webui-port",
                "8080",
            ];
            let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            args.extend(["--properties-file".to_string(), props.clone()]);
            let p = Proc::start(t.dir.path(), &format!("master-{m}"), &args);
            t.masters.push(Some(p));
        }
        let url = format!(
            "spark://{}",
            (1..=3)
                .map(|m| format!("{}:7077", t.master_ip(m)))
                .collect::<Vec<_>>()
                .join(",")
        );
        for w in 1..=2 {
            let host = t.worker_ip(w);
            let work = t.dir.path().join(format!("work-{w}"));
            let args = [
                "worker",
                &url,
                "--host",
                &host,
                "--cores",
                "2",
                "--memory",
                "512m",
                "--webui-port",
                "8081",
                "--work-dir",
            ];
            let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            args.extend([
                work.display().to_string(),
                "--properties-file".into(),
                props.clone(),
            ]);
            let p = Proc::start(t.dir.path(), &format!("worker-{w}"), &args);
            t.workers.push(Some(p));
        }
        t
    }

    fn master_ip(&self, m: usize) -> String {
        format!("127.0.{}.{}", self.block, 10 + m)
    }

    fn worker_ip(&self, w: usize) -> String {
        format!("127.0.{}.{}", self.block, 20 + w)
    }

    /// Masters (1-based) by status, among those running.
    fn statuses(&self) -> Vec<(usize, String)> {
        (1..=3)
            .filter(|m| self.masters[m - 1].is_some())
            .map(|m| (m, status(&self.master_ip(m))))
            .collect()
    }

    fn alive(&self) -> Vec<usize> {
        self.statuses()
            .into_iter()
            .filter(|(_, s)| s == "ALIVE")
            .map(|(m, _)| m)
            .collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (name, p) in self
            .masters
            .iter()
            .chain(self.workers.iter())
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        {
            out.push_str(&format!("--- process {name}\n{}\n", p.log()));
        }
        out
    }

    /// Waits until exactly one master is ALIVE with `workers` alive workers, and returns it.
    fn wait_alive_with(&self, workers: usize, timeout: Duration) -> usize {
        let mut found = 0;
        wait_until("one ALIVE master with its workers", timeout, || {
            let alive = self.alive();
            if let [m] = alive[..] {
                let j = json(&self.master_ip(m), 8080).unwrap_or_default();
                if j["aliveworkers"] == workers {
                    found = m;
                    return true;
                }
            }
            false
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", self.statuses(), self.logs()));
        found
    }
}

/// Seed TEST 1: exactly one master is ALIVE, the others STANDBY, and every worker registers
/// with the ALIVE one.
#[test]
fn seed_test_1_one_alive_master_and_every_worker_registered_with_it() {
    let t = Topology::start(43, "");
    let alive = t.wait_alive_with(2, Duration::from_secs(30));
    let statuses = t.statuses();
    let standby = statuses.iter().filter(|(_, s)| s == "STANDBY").count();
    assert_eq!(standby, 2, "{statuses:?}");
    let url = format!("spark://{}:7077", t.master_ip(alive));
    for w in 1..=2 {
        let j = json(&t.worker_ip(w), 8081).expect("worker /json");
        assert_eq!(j["masterurl"], url.as_str(), "worker {w}");
    }
    let j = json(&t.master_ip(alive), 8080).unwrap();
    assert_eq!(
        (j["cores"].clone(), j["memory"].clone()),
        (4.into(), 1024.into())
    );
}

/// Seed TEST 2: `kill -9` of the ALIVE master. Another goes RECOVERING, then ALIVE; the live
/// worker re-registers; a worker killed just before goes UNKNOWN, then DEAD.
#[test]
fn seed_test_2_the_alive_master_killed_another_recovers_the_workers() {
    let mut t = Topology::start(
        44,
        "spark.worker.timeout 20\nspark.deploy.recoveryTimeout 3s\n",
    );
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    t.workers[1] = None;
    t.masters[old - 1] = None;
    let killed = Instant::now();
    let mut seen_recovering = false;
    let mut new = 0;
    wait_until("a new master ALIVE", Duration::from_secs(30), || {
        for (m, s) in t.statuses() {
            if s == "RECOVERING" {
                seen_recovering = true;
                let j = json(&t.master_ip(m), 8080).unwrap_or_default();
                let states: Vec<&str> = j["workers"]
                    .as_array()
                    .map(|ws| ws.iter().filter_map(|w| w["state"].as_str()).collect())
                    .unwrap_or_default();
                assert!(
                    !states.contains(&"DEAD"),
                    "no worker is DEAD during recovery"
                );
            }
            if s == "ALIVE" {
                new = m;
            }
        }
        new != 0
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let took = killed.elapsed();
    assert!(seen_recovering, "the new master went through RECOVERING");
    let j = json(&t.master_ip(new), 8080).unwrap();
    let state_of = |host: String| {
        j["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["host"] == host.as_str()))
            .map(|w| w["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(state_of(t.worker_ip(1)).as_deref(), Some("ALIVE"));
    assert_eq!(
        state_of(t.worker_ip(2)).as_deref(),
        Some("DEAD"),
        "the worker killed before the failover never answered: {j}"
    );
    assert_eq!(j["aliveworkers"], 1);
    assert_eq!(t.alive(), vec![new], "exactly one ALIVE master");
    println!("failover with a silent worker (3 s recovery timeout): {took:?}");
}

/// The ensemble's leader dies under the masters (the seed report saw this take the ALIVE
/// master down): sessions move to the surviving servers, and there is never more than one
/// ALIVE master; exactly one remains or returns.
#[test]
fn the_ensemble_leader_killed_leaves_exactly_one_alive_master() {
    let mut t = Topology::start(45, "");
    t.wait_alive_with(2, Duration::from_secs(30));
    let leader = t.ensemble.leader().expect("an ensemble leader");
    t.ensemble.kill9(leader);
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let alive = t.alive();
        assert!(
            alive.len() <= 1,
            "two ALIVE masters: {alive:?}\n{}",
            t.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.wait_alive_with(2, Duration::from_secs(30));
}
