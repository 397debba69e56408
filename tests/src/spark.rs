//! Ensemble's own Spark-style masters and workers as real processes on loopback, beside a real
//! 3-server ensemble: the harness of the seed scenarios and of the failover benchmark.

use ensemble_actors::zk_client::ZkClient;
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program, Timing};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A master or worker process, killed (SIGKILL) when dropped.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `exe args`, logging to `dir/name.log`.
    pub fn start(exe: &Path, dir: &Path, name: &str, args: &[String]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("ensemble runs");
        Proc { child, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it a signal with kill(1), e.g. `-STOP` or `-CONT`; panics if kill fails.
    pub fn signal(&self, sig: &str) {
        let pid = self.pid();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// Waits up to `timeout` for it to exit; its status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        let _ = wait_until("the process to exit", timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
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
pub fn json(ip: &str, port: u16) -> Option<Value> {
    let (_, body) = get(ip, port, "/json")?;
    serde_json::from_str(&body).ok()
}

/// `GET target` from a web UI: its status code and body, or None while it does not answer.
pub fn get(ip: &str, port: u16, target: &str) -> Option<(u16, String)> {
    request(ip, port, "GET", target, "", "")
}

/// An HTTP/1.0 request with extra `headers` (each ending in CRLF) and `body`: the status code
/// and body answered, or None while nothing answers.
pub fn request(
    ip: &str,
    port: u16,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let length = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!("{method} {target} HTTP/1.0\r\nHost: {ip}\r\n{length}{headers}\r\n");
    s.write_all(format!("{head}{body}").as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A master's status on its web UI (port 8080), or empty while it does not answer.
pub fn status(ip: &str) -> String {
    json(ip, 8080)
        .and_then(|j| j["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// An ensemble, three masters and two workers on 127.0.B.x.
pub struct Topology {
    /// The ensemble's servers.
    pub ensemble: ProcessCluster,
    /// The ensemble's leader when the masters started.
    ensemble_leader: Option<u64>,
    /// The Spark properties file of every process.
    props: String,
    dir: tempfile::TempDir,
    block: u8,
    exe: PathBuf,
    /// Masters 1-3 (None once killed).
    pub masters: Vec<Option<Proc>>,
    /// Workers 1-2 (None once killed).
    pub workers: Vec<Option<Proc>>,
}

impl Topology {
    /// Starts the ensemble (servers 127.0.B.1-3), masters 127.0.B.11-13 and workers
    /// 127.0.B.21-22 of `exe`, with extra Spark `properties` lines.
    pub fn start(exe: &Path, block: u8, properties: &str) -> Topology {
        Self::start_with(exe, block, properties, false, Timing::TEST)
    }

    /// Like [`Topology::start`], with the ensemble's leader first in the masters' server list,
    /// so that they open their sessions on it; returns the leader too.
    pub fn start_on_leader(exe: &Path, block: u8, properties: &str) -> (Topology, u64) {
        let t = Self::start_with(exe, block, properties, true, Timing::TEST);
        let leader = t.ensemble_leader.unwrap_or_default();
        (t, leader)
    }

    /// Like [`Topology::start`], with the ensemble's quorum `timing` (its tick bounds the
    /// masters' sessions), and with `leader_first` as [`Topology::start_on_leader`].
    pub fn start_with(
        exe: &Path,
        block: u8,
        properties: &str,
        leader_first: bool,
        timing: Timing,
    ) -> Topology {
        let program = Program::Cli(exe.into());
        let mut ensemble = ProcessCluster::with_timing(3, block, program, "", timing);
        ensemble.start_all();
        ensemble.wait_serving(Duration::from_secs(20)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut order: Vec<u64> = vec![1, 2, 3];
        let ensemble_leader = ensemble.leader();
        if let Some(l) = ensemble_leader.filter(|_| leader_first) {
            order.retain(|i| *i != l);
            order.insert(0, l);
        }
        let servers: Vec<String> = order.iter().map(|i| ensemble.client_addr(*i)).collect();
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
            ensemble_leader,
            props: String::new(),
            dir,
            block,
            exe: exe.into(),
            masters: Vec::new(),
            workers: Vec::new(),
        };
        t.props = props;
        t.masters.resize_with(3, || None);
        for m in 1..=3 {
            t.start_master(m);
        }
        for w in 1..=2 {
            t.start_worker(w);
        }
        t
    }

    /// Starts master `m` (1-based, on 127.0.B.1m, RPC port 7077, web UI 8080) as the `masters`
    /// entry `m - 1`, logging to `master-<m>.log` (`master-<m>-again.log` when restarted).
    pub fn start_master(&mut self, m: usize) {
        let host = self.master_ip(m);
        let args = [
            "master",
            "--host",
            &host,
            "--port",
            "7077",
            "--webui-port",
            "8080",
            "--properties-file",
            &self.props,
        ];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let name = format!("master-{m}");
        let restarts = self.dir.path().join(format!("{name}.log")).exists();
        let name = if restarts {
            format!("{name}-again")
        } else {
            name
        };
        self.masters[m - 1] = Some(Proc::start(&self.exe, self.dir.path(), &name, &args));
    }

    /// `spark://` URL of the three masters.
    pub fn masters_url(&self) -> String {
        let list: Vec<String> = (1..=3)
            .map(|m| format!("{}:7077", self.master_ip(m)))
            .collect();
        format!("spark://{}", list.join(","))
    }

    /// Starts `ensemble submit` of a 1-core application that sleeps for 10 minutes, logging to
    /// `submit.log`.
    pub fn submit_sleeper(&self) -> Proc {
        let url = self.masters_url();
        let args = [
            "submit",
            "--master",
            &url,
            "--total-executor-cores",
            "1",
            "--executor-memory",
            "256m",
            "--",
            "sleep",
            "600",
        ];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Proc::start(&self.exe, self.dir.path(), "submit", &args)
    }

    /// Starts worker `w` (1-based, on 127.0.B.2w) with every master in its URL, as the
    /// `workers` entry `w - 1`.
    pub fn start_worker(&mut self, w: usize) {
        let url = format!(
            "spark://{}",
            (1..=3)
                .map(|m| format!("{}:7077", self.master_ip(m)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let host = self.worker_ip(w);
        let work = self.dir.path().join(format!("work-{w}"));
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
            self.props.clone(),
        ]);
        let p = Proc::start(&self.exe, self.dir.path(), &format!("worker-{w}"), &args);
        if self.workers.len() < w {
            self.workers.resize_with(w, || None);
        }
        self.workers[w - 1] = Some(p);
    }

    /// The directory holding the logs and properties of this topology.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Address of master `m` (1-based).
    pub fn master_ip(&self, m: usize) -> String {
        format!("127.0.{}.{}", self.block, 10 + m)
    }

    /// Address of worker `w` (1-based).
    pub fn worker_ip(&self, w: usize) -> String {
        format!("127.0.{}.{}", self.block, 20 + w)
    }

    /// Masters (1-based) by status, among those running.
    pub fn statuses(&self) -> Vec<(usize, String)> {
        (1..=3)
            .filter(|m| self.masters[m - 1].is_some())
            .map(|m| (m, status(&self.master_ip(m))))
            .collect()
    }

    /// Running masters that are ALIVE.
    pub fn alive(&self) -> Vec<usize> {
        self.statuses()
            .into_iter()
            .filter(|(_, s)| s == "ALIVE")
            .map(|(m, _)| m)
            .collect()
    }

    /// Every running process's log.
    pub fn logs(&self) -> String {
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

    /// Waits until `count` records named `<prefix>...` are in the ensemble under
    /// `/spark/master_status`. A master lists a worker as soon as it registers and answers it
    /// once its record is stored, so a test that kills the master after seeing the worker
    /// listed must first wait for what the next master should find.
    pub fn wait_records(&self, prefix: &str, count: usize, timeout: Duration) {
        let servers: Vec<String> = (1..=3).map(|i| self.ensemble.client_addr(i)).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = rt
            .block_on(ZkClient::connect(&servers, Duration::from_secs(10)))
            .expect("a session on the ensemble");
        wait_until(&format!("{count} {prefix} records"), timeout, || {
            rt.block_on(client.get_children("/spark/master_status", false))
                .is_ok_and(|(names, _)| {
                    names.iter().filter(|n| n.starts_with(prefix)).count() >= count
                })
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let _ = rt.block_on(client.close());
    }

    /// Waits until exactly one master is ALIVE with `workers` alive workers, and returns it.
    pub fn wait_alive_with(&self, workers: usize, timeout: Duration) -> usize {
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
