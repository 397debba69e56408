//! Concurrent client load with our Rust client, recording every operation.
//!
//! Each client has its own session, first on its own server, and loops over a few keys:
//! linearizable reads (`sync` then `getData` on the same session; ensemble commits a sync as a
//! no-op through the quorum, so the read sees every write acknowledged before it was invoked),
//! unconditional `setData`, `setData` with the version the client last saw (CAS), and creates of
//! unique znodes. Every value written is unique. Times are nanoseconds since the run started.

use super::linearizability::{Call, Op, Outcome, Register};
use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::CreateMode;
use ensemble_messages::zk::ZkError;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The parent of the registers and of the created znodes.
pub const ROOT: &str = "/jepsen";
/// The parent of the created znodes.
pub const CREATES: &str = "/jepsen/creates";

/// The path of register `key`.
pub fn key_path(key: usize) -> String {
    format!("{ROOT}/k{key}")
}

/// The shape of the load.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Client address of every server.
    pub servers: Vec<String>,
    /// Concurrent clients; client `c` starts on server `c % servers`.
    pub clients: usize,
    /// Registers.
    pub keys: usize,
    /// Seed of the clients' choices.
    pub seed: u64,
    /// Session timeout asked for.
    pub session_timeout: Duration,
    /// After this long without an answer an operation counts as unknown.
    pub op_timeout: Duration,
    /// Pause between two operations of one client.
    pub think: Duration,
}

/// How a create ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Acknowledged: the znode must exist from now on.
    Acknowledged,
    /// A definite error: the znode must not exist.
    Failed,
    /// No answer: it may exist or not.
    Unknown,
}

/// Everything the clients saw.
#[derive(Debug, Default)]
pub struct History {
    /// Register operations.
    pub ops: Vec<Op>,
    /// Created znodes (names under [`CREATES`]) and how each create ended.
    pub creates: Vec<(String, CreateOutcome)>,
}

/// Running clients; [`Load::stop`] ends them and hands back the history.
pub struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
    history: Arc<Mutex<History>>,
}

/// Nanoseconds since `start`.
pub fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Load {
    /// Starts `config.clients` clients on `rt`; times count from `start`.
    pub fn start(rt: &Handle, config: &LoadConfig, start: Instant) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(History::default()));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let tasks = (0..config.clients)
            .map(|c| {
                let worker = Worker {
                    id: c,
                    config: config.clone(),
                    start,
                    stop: stop.clone(),
                    acknowledged: acknowledged.clone(),
                    history: history.clone(),
                    rng: SmallRng::seed_from_u64(
                        config.seed.wrapping_mul(1000).wrapping_add(c as u64),
                    ),
                    seen: vec![0; config.keys],
                    count: 0,
                };
                rt.spawn(worker.run())
            })
            .collect();
        Load {
            stop,
            acknowledged,
            tasks,
            history,
        }
    }

    /// Writes and creates acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Stops the clients (each finishes its operation in flight, bounded by the op timeout)
    /// and returns the history.
    pub fn stop(self, rt: &Handle) -> History {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = rt.block_on(t);
        }
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *h)
    }
}

/// One client's loop.
struct Worker {
    id: usize,
    config: LoadConfig,
    start: Instant,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    history: Arc<Mutex<History>>,
    rng: SmallRng,
    /// The version this client last saw of each key, for its CAS.
    seen: Vec<i32>,
    count: u64,
}

/// How an operation's error is to be read.
fn classify(e: &ClientError) -> Outcome {
    match e {
        ClientError::Server(ZkError::BadVersion) => Outcome::BadVersion,
        ClientError::Server(code @ (ZkError::NoNode | ZkError::NodeExists)) => {
            Outcome::Failed(code.code())
        }
        _ => Outcome::Unknown,
    }
}

/// Whether the session is gone and a new one is needed.
fn session_gone(e: &ClientError) -> bool {
    match e {
        ClientError::Server(code) => *code == ZkError::SessionExpired,
        ClientError::ConnectionLoss(why) => why == "connection closed",
        ClientError::Marshalling(_) => false,
    }
}

impl Worker {
    async fn run(mut self) {
        let n = self.config.servers.len().max(1);
        let mut servers = self.config.servers.clone();
        servers.rotate_left(self.id % n);
        let mut client: Option<ZkClient> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let c = match &client {
                Some(c) => c.clone(),
                None => {
                    let connect = ZkClient::connect(&servers, self.config.session_timeout);
                    match tokio::time::timeout(self.config.op_timeout, connect).await {
                        Ok(Ok(c)) => {
                            client = Some(c.clone());
                            c
                        }
                        // No server takes a session now (an election): try again shortly.
                        _ => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
            };
            if let Some(e) = self.one_op(&c).await {
                if session_gone(&e) {
                    client = None;
                }
            }
            tokio::time::sleep(self.config.think).await;
        }
        if let Some(c) = client {
            let _ = tokio::time::timeout(Duration::from_secs(1), c.close()).await;
        }
    }

    /// Runs and records one random operation; returns its client error, if any.
    async fn one_op(&mut self, c: &ZkClient) -> Option<ClientError> {
        self.count += 1;
        let value = ((self.id as u64 + 1) << 32) | self.count;
        let key = self.rng.random_range(0..self.config.keys);
        let roll = self.rng.random_range(0..100);
        if roll >= 85 {
            return self.create(c).await;
        }
        let path = key_path(key);
        let call = match roll {
            0..30 => Call::Read,
            30..55 => Call::Set(value),
            _ => Call::Cas {
                expected: self.seen[key],
                value,
            },
        };
        let invoked = since(self.start);
        let result = tokio::time::timeout(self.config.op_timeout, async {
            match call {
                Call::Read => {
                    c.sync(&path).await?;
                    let (data, stat) = c.get_data(&path).await?;
                    Ok((Some(data), stat.version))
                }
                Call::Set(v) => c
                    .set_data(&path, v.to_string().as_bytes(), -1)
                    .await
                    .map(|s| (None, s.version)),
                Call::Cas { expected, value } => c
                    .set_data(&path, value.to_string().as_bytes(), expected)
                    .await
                    .map(|s| (None, s.version)),
            }
        })
        .await
        .unwrap_or_else(|_| Err(ClientError::ConnectionLoss("operation timed out".into())));
        let completed = since(self.start);
        let (outcome, error) = match result {
            Ok((Some(data), version)) => {
                self.seen[key] = version;
                (Outcome::Read(read_register(&data, version)), None)
            }
            Ok((None, version)) => {
                self.seen[key] = version;
                (Outcome::Written { version }, None)
            }
            Err(e) => (classify(&e), Some(e)),
        };
        self.record(Op {
            client: self.id,
            key,
            call,
            outcome,
            invoked,
            completed,
        });
        error
    }

    async fn create(&mut self, c: &ZkClient) -> Option<ClientError> {
        let name = format!("c{}-{}", self.id, self.count);
        let path = format!("{CREATES}/{name}");
        let result = tokio::time::timeout(
            self.config.op_timeout,
            c.create(&path, b"", CreateMode::Persistent),
        )
        .await
        .unwrap_or_else(|_| Err(ClientError::ConnectionLoss("operation timed out".into())));
        let (outcome, error) = match result {
            Ok(_) => (CreateOutcome::Acknowledged, None),
            Err(e) => match classify(&e) {
                Outcome::Unknown => (CreateOutcome::Unknown, Some(e)),
                _ => (CreateOutcome::Failed, Some(e)),
            },
        };
        if outcome == CreateOutcome::Acknowledged {
            self.acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut h) = self.history.lock() {
            h.creates.push((name, outcome));
        }
        error
    }

    fn record(&self, op: Op) {
        if matches!(op.outcome, Outcome::Written { .. }) {
            self.acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut h) = self.history.lock() {
            h.ops.push(op);
        }
    }
}

/// A register as read: data that is not a value this run wrote reads as `u64::MAX`, which no
/// write explains, so the checker reports it.
pub fn read_register(data: &[u8], version: i32) -> Register {
    let value = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    Register { value, version }
}
