//! Whole-cluster test support for ensemble.
//!
//! - [`sim`]: a deterministic simulation of several [`QuorumPeer`](ensemble_actors::zab::QuorumPeer)
//!   cores with their data trees, client services and clients' sessions, with a simulated clock,
//!   network and disk, checking safety invariants after every step.
//! - [`jepsen`]: fault cycles on real processes (proxied peer links, `kill -9`, SIGSTOP,
//!   partitions) under client load, with a linearizability checker over the history.
//! - [`certs`]: test CAs and certificates made at test time, for TLS tests.
//! - [`spark`]: ensemble's Spark-style masters and workers as real processes beside an ensemble.
//! - [`spark_load`]: many fake workers and application clients over the real protocol.
//! - [`raw_client`]: a blocking client that shows the wire's answers byte for byte.

pub mod certs;
pub mod jepsen;
pub mod raw_client;
pub mod sim;
pub mod spark;
pub mod spark_load;

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A current-thread tokio runtime to drive the async client from a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A runtime and a healthy session on `addr`, for tests that check a server keeps serving
/// beside hostile input.
pub fn client_session(addr: &str) -> (tokio::runtime::Runtime, ZkClient) {
    let rt = runtime();
    let client = rt
        .block_on(ZkClient::connect(
            &[addr.to_string()],
            Duration::from_secs(10),
        ))
        .expect("a session");
    (rt, client)
}

/// `GET path` on `addr` over HTTP/1.0: the status code and body, or why it failed.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// The value of the sample `name` (without labels) in a Prometheus text exposition.
pub fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.parse().ok()).flatten()
    })
}

/// Creates `/w<n>` on a thread of its own, through the first of `servers` (then any other),
/// until `stop`; the paths acknowledged so far.
pub fn write_load(
    servers: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let out = acked.clone();
    let handle = std::thread::spawn(move || {
        let rt = runtime();
        let z = rt
            .block_on(ZkClient::connect(&servers, Duration::from_secs(10)))
            .expect("a session for the write load");
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let path = format!("/w{n}");
            n += 1;
            if rt
                .block_on(z.create(&path, b"v", CreateMode::Persistent))
                .is_ok()
            {
                out.lock().expect("the acknowledged list").push(path);
            }
        }
    });
    (handle, acked)
}
