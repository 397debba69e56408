//! One whole run: start servers behind the proxies, load them, inject a fault per cycle, heal,
//! then check the history and every server's copy.

use super::linearizability::{check, Call, Op, Outcome, Register, Verdict};
use super::load::{
    key_path, read_register, since, CreateOutcome, History, Load, LoadConfig, CREATES, ROOT,
};
use super::nemesis::{self, Net};
use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};

/// Time allowed for the ensemble to serve again after a heal (or at start).
const RECOVERY: Duration = Duration::from_secs(60);
/// Search steps allowed per key before the checker says "undecided".
const MAX_STEPS: u64 = 50_000_000;
/// The client session timeout.
const SESSION: Duration = Duration::from_secs(3);

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The `ensemble` executable.
    pub exe: PathBuf,
    /// Servers.
    pub servers: u64,
    /// Servers on `127.0.block.x`.
    pub block: u8,
    /// Proxies on `127.0.proxy_block.x`.
    pub proxy_block: u8,
    /// Fault cycles.
    pub cycles: u32,
    /// Seed of the fault schedule and of the clients' choices.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Registers.
    pub keys: usize,
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Fault cycles run.
    pub cycles: u32,
    /// Register operations recorded (final reads included).
    pub ops: usize,
    /// Reads answered.
    pub reads: usize,
    /// Sets and CASes acknowledged.
    pub writes_acknowledged: usize,
    /// CASes refused with BadVersion.
    pub cas_refused: usize,
    /// Register operations without an answer.
    pub unknown: usize,
    /// Creates acknowledged.
    pub creates_acknowledged: usize,
    /// Creates without an answer, and how many of those exist at the end.
    pub creates_unknown: (usize, usize),
    /// Acknowledged creates missing on some server at the end.
    pub lost: usize,
    /// Keys whose history is not linearizable, plus creates that failed yet exist.
    pub anomalies: usize,
    /// Keys the checker could not decide within its step bound.
    pub undecided: usize,
    /// Servers whose final copy differs from server 1's.
    pub divergent: usize,
    /// Time the checker took.
    pub checked_in: Duration,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cycles {}, register ops {} (reads {}, acknowledged writes {}, CAS refused {}, \
             unknown {}), creates acknowledged {}, creates unknown {} ({} exist), \
             lost {}, anomalies {}, undecided {}, divergent servers {}, checked in {:.1?}, \
             {:.0?} in all",
            self.cycles,
            self.ops,
            self.reads,
            self.writes_acknowledged,
            self.cas_refused,
            self.unknown,
            self.creates_acknowledged,
            self.creates_unknown.0,
            self.creates_unknown.1,
            self.lost,
            self.anomalies,
            self.undecided,
            self.divergent,
            self.checked_in,
            self.elapsed
        )
    }
}

/// One server's data at the end.
#[derive(Debug, PartialEq, Eq)]
struct Copy {
    registers: Vec<Register>,
    creates: BTreeSet<String>,
}

/// Runs `config`; an error means the ensemble stopped serving (a liveness failure) or the
/// harness failed, and carries the servers' log tails.
pub fn run(config: &RunConfig) -> Result<Summary, String> {
    let began = Instant::now();
    let size = config.servers;
    // Declared before the runtime, so that the proxies' sockets close before the next cluster
    // may start.
    let mut cluster = ProcessCluster::new(size, config.block, Program::Cli(config.exe.clone()), "");
    let rt = runtime()?;
    let net = Net::start(rt.handle(), size, config.block, config.proxy_block)
        .map_err(|e| format!("proxies: {e}"))?;
    cluster.route_peers(|from, to| net.dial_host(from, to));
    cluster.start_all();
    cluster
        .wait_serving(RECOVERY)
        .map_err(|e| failure(&cluster, size, &e))?;
    setup(&rt, &cluster.client_addr(1), config.keys).map_err(|e| failure(&cluster, size, &e))?;
    let start = Instant::now();
    let load = Load::start(
        rt.handle(),
        &LoadConfig {
            servers: (1..=size).map(|i| cluster.client_addr(i)).collect(),
            clients: config.clients,
            keys: config.keys,
            seed: config.seed,
            session_timeout: SESSION,
            op_timeout: SESSION * 2,
            think: Duration::from_millis(5),
        },
        start,
    );
    wait_progress(&cluster, size, &load)?;
    fault_cycles(&mut cluster, &net, &load, config)?;
    let mut history = load.stop(rt.handle());
    let copies = final_copies(
        rt.handle(),
        &cluster,
        size,
        config.keys,
        start,
        &mut history.ops,
    )
    .map_err(|e| failure(&cluster, size, &e))?;
    let checking = Instant::now();
    let mut summary = judge(&history, &copies);
    summary.checked_in = checking.elapsed();
    summary.cycles = config.cycles;
    summary.elapsed = began.elapsed();
    Ok(summary)
}

/// Injects a fault per cycle, holds it, heals it and waits until the ensemble serves and
/// acknowledges writes again.
fn fault_cycles(
    cluster: &mut ProcessCluster,
    net: &Net,
    load: &Load,
    config: &RunConfig,
) -> Result<(), String> {
    let size = config.servers;
    let mut rng = SmallRng::seed_from_u64(config.seed);
    for cycle in 1..=config.cycles {
        let leader = cluster.leader();
        let fault = nemesis::choose(&mut rng, size, leader);
        let hold = Duration::from_millis(rng.random_range(1000..5000));
        let leader = leader.map_or("unknown".into(), |l| l.to_string());
        println!("jepsen: cycle {cycle}: {fault} for {hold:?} (leader {leader})");
        nemesis::apply(cluster, net, &fault, size);
        // The deliberate fault duration.
        std::thread::sleep(hold);
        nemesis::heal(cluster, net, &fault, size);
        cluster.wait_serving(RECOVERY).map_err(|e| {
            let why = format!("after cycle {cycle} ({fault}): {e}");
            failure(cluster, size, &why)
        })?;
        wait_progress(cluster, size, load)?;
    }
    Ok(())
}

/// The runtime of the proxies and the clients.
pub fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// Creates the registers (value 0, version 0) and the parent of the created znodes.
fn setup(rt: &Runtime, addr: &str, keys: usize) -> Result<(), String> {
    rt.block_on(async {
        let c = ZkClient::connect(&[addr.to_string()], SESSION).await?;
        c.create(ROOT, b"", CreateMode::Persistent).await?;
        c.create(CREATES, b"", CreateMode::Persistent).await?;
        for k in 0..keys {
            c.create(&key_path(k), b"0", CreateMode::Persistent).await?;
        }
        c.close().await
    })
    .map_err(|e: ClientError| format!("setup: {e}"))
}

/// Waits until the clients get another write acknowledged: the ensemble does work again.
fn wait_progress(cluster: &ProcessCluster, size: u64, load: &Load) -> Result<(), String> {
    let before = load.acknowledged();
    wait_until("an acknowledged write", RECOVERY, || {
        load.acknowledged() > before
    })
    .map_err(|e| failure(cluster, size, &e))
}

/// Reads every register (after a sync) and the created znodes from each server; the reads go
/// into the history as the last operations.
fn final_copies(
    rt: &Handle,
    cluster: &ProcessCluster,
    size: u64,
    keys: usize,
    start: Instant,
    ops: &mut Vec<Op>,
) -> Result<Vec<Copy>, String> {
    cluster.wait_serving(RECOVERY)?;
    let mut copies = Vec::new();
    for server in 1..=size {
        let addr = cluster.client_addr(server);
        let mut got = None;
        wait_until(&format!("a full read of server {server}"), RECOVERY, || {
            got = rt.block_on(read_copy(&addr, keys, start)).ok();
            got.is_some()
        })?;
        let (copy, reads) = got.ok_or("no copy")?;
        for (key, (invoked, completed, register)) in reads.into_iter().enumerate() {
            ops.push(Op {
                client: 1000 + server as usize,
                key,
                call: Call::Read,
                outcome: Outcome::Read(register),
                invoked,
                completed,
            });
        }
        copies.push(copy);
    }
    Ok(copies)
}

type TimedReads = Vec<(u64, u64, Register)>;

/// One server's copy, read on a session bound to that server alone.
async fn read_copy(
    addr: &str,
    keys: usize,
    start: Instant,
) -> Result<(Copy, TimedReads), ClientError> {
    let c = tokio::time::timeout(SESSION * 2, ZkClient::connect(&[addr.to_string()], SESSION))
        .await
        .map_err(|_| ClientError::ConnectionLoss("connect timed out".into()))??;
    let mut reads = Vec::new();
    for k in 0..keys {
        let path = key_path(k);
        let invoked = since(start);
        c.sync(&path).await?;
        let (data, stat) = c.get_data(&path).await?;
        reads.push((invoked, since(start), read_register(&data, stat.version)));
    }
    let (children, _) = c.get_children(CREATES, false).await?;
    let _ = c.close().await;
    let copy = Copy {
        registers: reads.iter().map(|r| r.2).collect(),
        creates: children.into_iter().collect(),
    };
    Ok((copy, reads))
}

/// Counts, checks the history and compares the copies.
fn judge(history: &History, copies: &[Copy]) -> Summary {
    let mut s = Summary {
        ops: history.ops.len(),
        ..Summary::default()
    };
    for op in &history.ops {
        match (op.call, op.outcome) {
            (Call::Read, Outcome::Read(_)) => s.reads += 1,
            (_, Outcome::Written { .. }) => s.writes_acknowledged += 1,
            (_, Outcome::BadVersion) => s.cas_refused += 1,
            (_, Outcome::Unknown) => s.unknown += 1,
            _ => {}
        }
    }
    let initial = Register {
        value: 0,
        version: 0,
    };
    for (key, verdict) in check(&history.ops, initial, MAX_STEPS) {
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Undecided => {
                s.undecided += 1;
                println!("jepsen: key {key}: undecided within {MAX_STEPS} steps");
            }
            Verdict::NotLinearizable { stuck, linearized } => {
                s.anomalies += 1;
                report_anomaly(history, key, &stuck, linearized);
            }
        }
    }
    let first = copies.first();
    s.divergent = copies.iter().filter(|c| Some(*c) != first).count();
    let every: Vec<&BTreeSet<String>> = copies.iter().map(|c| &c.creates).collect();
    for (name, outcome) in &history.creates {
        let present = every.iter().filter(|set| set.contains(name)).count();
        match outcome {
            CreateOutcome::Acknowledged => {
                s.creates_acknowledged += 1;
                if present < every.len() {
                    s.lost += 1;
                    println!("jepsen: acknowledged create {name} is missing on some server");
                }
            }
            CreateOutcome::Unknown => {
                s.creates_unknown.0 += 1;
                s.creates_unknown.1 += usize::from(present > 0);
            }
            CreateOutcome::Failed if present > 0 => {
                s.anomalies += 1;
                println!("jepsen: create {name} failed definitely, yet exists");
            }
            CreateOutcome::Failed => {}
        }
    }
    s
}

/// Prints the operations on `key` around the one the checker could not place.
fn report_anomaly(history: &History, key: usize, stuck: &Op, linearized: usize) {
    println!("jepsen: key {key} is NOT linearizable; stuck at {stuck:?} after {linearized} ops");
    let window = 2_000_000_000;
    for op in history.ops.iter().filter(|o| o.key == key) {
        if op.invoked + window >= stuck.invoked && op.invoked <= stuck.completed + window {
            println!("jepsen:   {op:?}");
        }
    }
}

/// `why`, with the end of every server's log; with `JEPSEN_LOG_DIR` set, every server's
/// whole log is also copied there as `server-<id>.log`.
fn failure(cluster: &ProcessCluster, size: u64, why: &str) -> String {
    let mut out = format!("{why}\n");
    let keep = std::env::var_os("JEPSEN_LOG_DIR").map(std::path::PathBuf::from);
    for id in 1..=size {
        let log = cluster.log(id);
        if let Some(dir) = &keep {
            let path = dir.join(format!("server-{id}.log"));
            match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &log)) {
                Ok(()) => out.push_str(&format!("(whole log in {})\n", path.display())),
                Err(e) => out.push_str(&format!(
                    "(cannot keep the log in {}: {e})\n",
                    path.display()
                )),
            }
        }
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        out.push_str(&format!("--- server {id} ({}):\n", cluster.mode(id)));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}
