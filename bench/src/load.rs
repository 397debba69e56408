//! Closed-loop load: `clients` sessions with `inflight` requests outstanding on each.

use crate::stats::Outcome;
use crate::target::Target;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zookeeper_client::{Acls, Client, CreateMode, Error};

/// Bytes of data in every create and set.
pub const DATA_LEN: usize = 100;
/// Pre-created znodes that reads and sets go to.
const KEYS: usize = 100;

/// What each request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create a new persistent znode.
    Create,
    /// Set the data of an existing znode.
    Set,
    /// Read an existing znode.
    Get,
    /// 90% gets, 10% sets.
    Mixed,
}

impl Op {
    /// Parses `create`, `set`, `get` or `mixed`.
    pub fn parse(s: &str) -> Result<Op, String> {
        match s {
            "create" => Ok(Op::Create),
            "set" => Ok(Op::Set),
            "get" => Ok(Op::Get),
            "mixed" => Ok(Op::Mixed),
            _ => Err(format!("unknown op {s}")),
        }
    }

    /// Name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Get => "get",
            Op::Mixed => "90% reads",
        }
    }
}

/// One row of the table: an operation at a concurrency.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// The operation.
    pub op: Op,
    /// Sessions.
    pub clients: usize,
    /// Requests in flight per session.
    pub inflight: usize,
}

impl Workload {
    /// Parses `OP:CLIENTSxINFLIGHT`, e.g. `create:16x64`.
    pub fn parse(s: &str) -> Result<Workload, String> {
        let (op, shape) = s.split_once(':').ok_or("expected OP:CxI")?;
        let (c, i) = shape.split_once('x').ok_or("expected CxI")?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{s}: {e}"));
        Ok(Workload {
            op: Op::parse(op)?,
            clients: num(c)?,
            inflight: num(i)?,
        })
    }

    /// Name in the table.
    pub fn label(&self) -> String {
        format!("{} {}x{}", self.op.label(), self.clients, self.inflight)
    }
}

/// Connects `n` sessions spread round-robin over the target's servers.
pub async fn connect_all(t: &Target, n: usize) -> Result<Vec<Client>, Error> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        clients.push(Client::connect(t.server(i)).await?);
    }
    Ok(clients)
}

/// Creates `path` unless it exists.
pub async fn ensure(c: &Client, path: &str) -> Result<(), Error> {
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match c.create(path, &[0u8; DATA_LEN], &opts).await {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One completed request: when it was sent and how long its answer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Microseconds since the Unix epoch when the request was sent.
    pub sent_unix_us: u64,
    /// Microseconds until its answer.
    pub latency_us: u64,
}

/// Runs `w` against `t` for `duration`, after creating the znodes it needs under `root`.
pub async fn run(
    t: &Target,
    w: Workload,
    root: &str,
    duration: Duration,
) -> Result<Outcome, Error> {
    Ok(run_sampled(t, w, root, duration).await?.0)
}

/// As [`run`], and every completed request as a [`Sample`], in no particular order.
pub async fn run_sampled(
    t: &Target,
    w: Workload,
    root: &str,
    duration: Duration,
) -> Result<(Outcome, Vec<Sample>), Error> {
    let clients = connect_all(t, w.clients).await?;
    ensure(&clients[0], root).await?;
    for k in 0..KEYS {
        ensure(&clients[0], &format!("{root}/k{k}")).await?;
    }
    // The keys were created through one session; another session's server may not have
    // applied them yet (ZooKeeper promises no more), so each session syncs before it reads.
    for c in &clients[1..] {
        c.sync(root).await?;
    }
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = t.cpu_seconds();
    let start = Instant::now();
    let start_unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let clock = (start, start_unix_us);
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (ci, c) in clients.iter().enumerate() {
        for ti in 0..w.inflight {
            let (c, errors, root) = (c.clone(), errors.clone(), root.to_owned());
            let seed = (ci * w.inflight + ti) as u64;
            tasks.push(tokio::spawn(async move {
                worker(c, w.op, root, seed, clock, deadline, errors).await
            }));
        }
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap_or_default());
    }
    let elapsed = start.elapsed();
    let cpu = t.cpu_seconds() - cpu0;
    let latencies = samples.iter().map(|s| s.latency_us).collect();
    let outcome = Outcome::new(latencies, errors.load(Ordering::Relaxed), elapsed, cpu);
    Ok((outcome, samples))
}

/// How many errors of a run are printed, each with its request.
const SHOWN_ERRORS: u64 = 5;

/// One request stream: issues the next request when the previous one is answered. `clock`
/// pairs the run's start with its Unix time in microseconds.
async fn worker(
    c: Client,
    op: Op,
    root: String,
    seed: u64,
    clock: (Instant, u64),
    deadline: Instant,
    errors: Arc<AtomicU64>,
) -> Vec<Sample> {
    let data = [7u8; DATA_LEN];
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let mut lat = Vec::new();
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut seq = 0u64;
    while Instant::now() < deadline {
        // xorshift: cheap and good enough to pick a key.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = format!("{root}/k{}", rng % KEYS as u64);
        let t0 = Instant::now();
        let outcome = match op {
            Op::Create => {
                seq += 1;
                let path = format!("{root}/c{seed}-{seq}");
                c.create(&path, &data, &opts).await.map(drop)
            }
            Op::Set => c.set_data(&key, &data, None).await.map(drop),
            Op::Get => c.get_data(&key).await.map(drop),
            Op::Mixed if rng.is_multiple_of(10) => c.set_data(&key, &data, None).await.map(drop),
            Op::Mixed => c.get_data(&key).await.map(drop),
        };
        match outcome {
            Ok(()) => lat.push(Sample {
                sent_unix_us: clock.1 + t0.duration_since(clock.0).as_micros() as u64,
                latency_us: t0.elapsed().as_micros() as u64,
            }),
            Err(e) => {
                // The first few say what went wrong; the count says how often.
                if errors.fetch_add(1, Ordering::Relaxed) < SHOWN_ERRORS {
                    eprintln!("{op:?} after {:?}: {e}", t0.elapsed());
                }
            }
        }
    }
    lat
}
