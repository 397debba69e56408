//! `ensemble bench`: measurements on real server processes on loopback (127.0.250.x), fsync on.

use crate::local_cluster::{wait_until, ProcessCluster, Program, Timing};
use ensemble_messages::zk::CreateMode;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `ensemble bench --connect ...` measures a running ensemble (or Apache ZooKeeper) through the
/// ZooKeeper protocol; the subcommands start their own servers.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    kind: Option<Bench>,
    #[command(flatten)]
    client: ClientBench,
}

/// Client-protocol load against running servers.
#[derive(clap::Args, Debug)]
struct ClientBench {
    /// Servers, host:port,host:port,...
    #[arg(long)]
    connect: Option<String>,
    /// create, set, get, exists, mixed (get and set), or churn: rounds (until --duration ends)
    /// in which --clients sessions each create --inflight ephemerals and watch one znode,
    /// one change fires every watch, and the sessions close.
    #[arg(long, default_value = "mixed")]
    op: String,
    /// Share of reads in `mixed`, in percent.
    #[arg(long, default_value_t = 80)]
    read_pct: u32,
    /// Client sessions, spread over the servers.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests in flight per client.
    #[arg(long, default_value_t = 8)]
    inflight: usize,
    /// Bytes of data per write.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// With `create`: stop after this many znodes (a fill of the tree), however long it takes.
    #[arg(long)]
    count: Option<usize>,
    /// With `delete`: the root a `create` run made (`/bench-<pid>`, the same --clients and
    /// --inflight); each of its clients deletes what its twin created, until NoNode.
    #[arg(long)]
    root: Option<String>,
}

/// Benchmarks that start their own ensemble.
#[derive(clap::Subcommand, Debug)]
pub(super) enum Bench {
    /// Replicated writes through a local ensemble: txns/s and commit latency.
    Consensus {
        /// Servers in the ensemble.
        #[arg(long, default_value_t = 3)]
        servers: u64,
        /// Seconds to measure (after one second of warm-up).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Writes in flight at once, spread over the servers.
        #[arg(long, default_value_t = 64)]
        inflight: usize,
        /// Bytes of data per write.
        #[arg(long, default_value_t = 100)]
        size: usize,
    },
    /// Time from killing the leader to the next committed write.
    Failover {
        /// Measurements to take.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Tick length in ms.
        #[arg(long, default_value_t = 2000)]
        tick_ms: u64,
        /// syncLimit in ticks.
        #[arg(long, default_value_t = 5)]
        sync_limit: u32,
        /// How the leader dies: `kill` (SIGKILL, sockets close) or `stop` (SIGSTOP, the leader
        /// goes silent and only syncLimit can tell).
        #[arg(long, default_value = "kill")]
        signal: String,
    },
}

const BLOCK: u8 = 250;

pub(super) fn run(args: BenchArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let Some(bench) = args.kind else {
        return client_bench(args.client);
    };
    let exe = std::env::current_exe()?;
    match bench {
        Bench::Consensus {
            servers,
            duration,
            inflight,
            size,
        } => consensus(exe, servers, duration, inflight, size),
        Bench::Failover {
            rounds,
            tick_ms,
            sync_limit,
            signal,
        } => {
            let signal = match signal.as_str() {
                "kill" => "-KILL",
                "stop" => "-STOP",
                other => return Err(format!("--signal {other:?}: use kill or stop").into()),
            };
            let timing = Timing {
                tick_ms,
                init_limit: 10,
                sync_limit,
            };
            failover(exe, rounds, timing, signal)
        }
    }
}

fn start(exe: std::path::PathBuf, servers: u64, timing: Timing) -> Result<ProcessCluster, String> {
    let mut c = ProcessCluster::with_timing(servers, BLOCK, Program::Writer(exe), "", timing);
    c.start_all();
    wait_until(
        "a leader and serving followers",
        Duration::from_secs(60),
        || {
            c.leader().is_some()
                && (1..=servers).filter(|i| c.mode(*i) == "follower").count() as u64 == servers - 1
        },
    )?;
    Ok(c)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn consensus(
    exe: std::path::PathBuf,
    servers: u64,
    duration: u64,
    inflight: usize,
    size: usize,
) -> Result<i32, Box<dyn std::error::Error>> {
    let mut c = start(exe, servers, Timing::ZOOKEEPER_DEFAULT)?;
    let data = "x".repeat(size.max(1));
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let (mut next, mut errors) = (0u64, 0u64);
    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(duration);
    while Instant::now() < end {
        while sent.len() < inflight {
            let path = format!("/b{next}");
            c.send(next % servers + 1, &format!("create {path} {data}"));
            sent.insert(path, Instant::now());
            next += 1;
        }
        if let Some((_, line)) = c.next_line(Duration::from_secs(5)) {
            let mut words = line.split_whitespace();
            let (kind, path) = (words.next(), words.next());
            if let Some(at) = path.and_then(|p| sent.remove(p)) {
                match kind {
                    Some("ok") if at >= measure_from => latencies.push(at.elapsed()),
                    Some("ok") => {}
                    _ => errors += 1,
                }
            }
        }
    }
    let elapsed = end.duration_since(measure_from).as_secs_f64();
    latencies.sort();
    let rss: Vec<String> = (1..=servers)
        .map(|i| {
            c.rss_kib(i)
                .map_or("?".into(), |k| format!("{} MiB", k / 1024))
        })
        .collect();
    println!(
        "consensus: {servers} servers, fsync on, {inflight} writes in flight, {size}-byte data, {duration} s"
    );
    println!(
        "  committed writes: {} ({:.0} txns/s), errors: {errors}",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "  commit latency ms: p50 {:.2}, p99 {:.2}, p999 {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999)
    );
    println!("  server RSS: {}", rss.join(", "));
    Ok(0)
}

fn failover(
    exe: std::path::PathBuf,
    rounds: u32,
    timing: Timing,
    signal: &str,
) -> Result<i32, Box<dyn std::error::Error>> {
    let mut gaps = Vec::new();
    for round in 1..=rounds {
        let mut c = start(exe.clone(), 3, timing)?;
        let leader = c.leader().ok_or("no leader")?;
        let via = if leader == 1 { 2 } else { 1 };
        // A steady writer: one write in flight through a server that survives.
        let mut n = 0u64;
        let mut write = |c: &mut ProcessCluster| -> Option<bool> {
            n += 1;
            let path = format!("/f{n}");
            c.send(via, &format!("create {path} x"));
            let line = c.expect_line(via, Duration::from_secs(120), |l| {
                l.contains(&format!(" {path} "))
            })?;
            Some(line.starts_with("ok "))
        };
        for _ in 0..20 {
            write(&mut c);
        }
        let pid = c.pid(leader).ok_or("leader has no pid")?;
        let killed = Instant::now();
        std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()?;
        let mut committed = false;
        while killed.elapsed() < Duration::from_secs(120) {
            if write(&mut c) == Some(true) {
                committed = true;
                break;
            }
        }
        let gap = killed.elapsed();
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
        if !committed {
            return Err(format!(
                "round {round}: no write committed within 120 s of the leader's death"
            )
            .into());
        }
        println!(
            "  round {round}: leader {leader} {signal} -> next committed write after {:.0} ms",
            gap.as_secs_f64() * 1000.0
        );
        gaps.push(gap);
    }
    gaps.sort();
    println!(
        "failover ({signal}, tick {} ms, syncLimit {}): min {:.0} ms, median {:.0} ms, max {:.0} ms over {rounds} rounds",
        timing.tick_ms,
        timing.sync_limit,
        percentile(&gaps, 0.0),
        percentile(&gaps, 0.5),
        percentile(&gaps, 1.0)
    );
    Ok(0)
}

/// Churn rounds until `--duration` ends: sessions open, create ephemerals, all watch one znode
/// whose change fires every watch, and close. Prints one line per round.
async fn churn(
    servers: &[String],
    root: &str,
    b: &ClientBench,
    setup: &ensemble_actors::zk_client::ZkClient,
) -> Result<i32, Box<dyn std::error::Error>> {
    use ensemble_actors::zk_client::ZkClient;
    let hot = format!("{root}/hot");
    setup.create(&hot, b"", CreateMode::Persistent).await?;
    let deadline = Instant::now() + Duration::from_secs(b.duration);
    let data = vec![b'x'; b.size];
    let mut round = 0;
    while Instant::now() < deadline {
        round += 1;
        let began = Instant::now();
        let mut sessions = Vec::new();
        for c in 0..b.clients {
            let mut order = servers.to_vec();
            order.rotate_left(c % servers.len());
            sessions.push(ZkClient::connect(&order, Duration::from_secs(10)).await?);
        }
        let mut tasks = Vec::new();
        for (c, client) in sessions.iter().enumerate() {
            let (client, hot, data) = (client.clone(), hot.clone(), data.clone());
            let (root, ephemerals) = (root.to_string(), b.inflight);
            tasks.push(tokio::spawn(async move {
                for e in 0..ephemerals {
                    client
                        .create(&format!("{root}/e{c}-{e}"), &data, CreateMode::Ephemeral)
                        .await?;
                }
                client.exists_watch(&hot, true).await.map(|_| ())
            }));
        }
        for t in tasks {
            t.await??;
        }
        setup.set_data(&hot, &data, -1).await?;
        for client in &sessions {
            client.close().await?;
        }
        println!(
            "churn round {round}: {} sessions x {} ephemerals, {} watches fired, {:.1} s",
            b.clients,
            b.inflight,
            b.clients,
            began.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

/// Takes one op from what is left to do; false once nothing is.
fn take_one(left: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering;
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn client_bench(b: ClientBench) -> Result<i32, Box<dyn std::error::Error>> {
    let servers: Vec<String> = b
        .connect
        .as_deref()
        .ok_or("give --connect host:port,... or a subcommand (consensus, failover)")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let ops = ["create", "set", "get", "exists", "mixed", "churn", "delete"];
    if !ops.contains(&b.op.as_str()) {
        return Err(format!("--op {:?}: use one of {ops:?}", b.op).into());
    }
    if (b.op == "delete") != b.root.is_some() {
        return Err("--root goes with --op delete, and --op delete needs it".into());
    }
    if b.clients == 0 || b.inflight == 0 || b.read_pct > 100 {
        return Err("--clients and --inflight must be at least 1, --read-pct at most 100".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use ensemble_actors::zk_client::ZkClient;
        let timeout = Duration::from_secs(10);
        let data = vec![b'x'; b.size];
        let run_id = std::process::id();
        let root = b.root.clone().unwrap_or(format!("/bench-{run_id}"));
        let setup = ZkClient::connect(&servers, timeout).await?;
        const KEYS: usize = 100;
        if b.root.is_none() {
            setup.create(&root, b"", CreateMode::Persistent).await?;
            for k in 0..KEYS {
                setup
                    .create(&format!("{root}/k{k}"), &data, CreateMode::Persistent)
                    .await?;
            }
        }
        if b.op == "churn" {
            return churn(&servers, &root, &b, &setup).await;
        }
        let began = Instant::now();
        // A fill or a delete runs until it is done, however long it takes.
        let deadline = match b.count.is_some() || b.root.is_some() {
            true => began + Duration::from_secs(24 * 3600),
            false => began + Duration::from_secs(b.duration),
        };
        let quota = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(
            b.count.unwrap_or(usize::MAX),
        ));
        let mut tasks = Vec::new();
        for c in 0..b.clients {
            // Spread sessions over the servers: client c starts on server c.
            let mut order = servers.clone();
            order.rotate_left(c % servers.len());
            let client = ZkClient::connect(&order, timeout).await?;
            for w in 0..b.inflight {
                let (client, root, data, op) =
                    (client.clone(), root.clone(), data.clone(), b.op.clone());
                let read_pct = b.read_pct as usize;
                let quota = quota.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut n = 0usize;
                    while Instant::now() < deadline && take_one(&quota) {
                        n += 1;
                        let key = format!("{root}/k{}", (c * 131 + w * 17 + n) % KEYS);
                        let read = match op.as_str() {
                            "get" | "exists" => true,
                            "mixed" => (n * 37 + w) % 100 < read_pct,
                            _ => false,
                        };
                        let start = Instant::now();
                        let r = match (op.as_str(), read) {
                            ("delete", _) => {
                                let path = format!("{root}/c{c}-{w}-{n}");
                                if client.delete(&path, -1).await.is_err() {
                                    break;
                                }
                                Ok(())
                            }
                            ("create", _) => client
                                .create(
                                    &format!("{root}/c{c}-{w}-{n}"),
                                    &data,
                                    CreateMode::Persistent,
                                )
                                .await
                                .map(|_| ()),
                            ("exists", _) => client.exists(&key).await.map(|_| ()),
                            (_, true) => client.get_data(&key).await.map(|_| ()),
                            (_, false) => client.set_data(&key, &data, -1).await.map(|_| ()),
                        };
                        match r {
                            Ok(()) => lat.push(start.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                }));
            }
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            latencies.extend(l);
            errors += e;
        }
        latencies.sort();
        let elapsed = began.elapsed().as_secs_f64();
        println!(
            "bench {}: {} clients x {} in flight, {}-byte data, {:.1} s against {}",
            b.op,
            b.clients,
            b.inflight,
            b.size,
            elapsed,
            servers.join(",")
        );
        println!(
            "  {} ops ({:.0} ops/s), errors {errors}; latency ms p50 {:.2}, p99 {:.2}, p999 {:.2}",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.999)
        );
        Ok::<i32, Box<dyn std::error::Error>>(0)
    })
}
