//! The figures one server keeps as it runs: atomics and [`Summary`]s its hot paths update
//! without locks, read by the four-letter words, the AdminServer and `/metrics`.

use super::summary::{Summary, SummarySnapshot};
use crate::client_port::Load;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// One server's running figures. Each node has its own; nothing here is global.
pub struct ServerMetrics {
    started: Instant,
    /// Requests received on the client port (ZooKeeper's packets_received).
    pub packets_received: AtomicU64,
    /// Replies and notifications sent on the client port (packets_sent).
    pub packets_sent: AtomicU64,
    /// Time from a read request's arrival to its reply (readlatency).
    pub read_latency: Summary,
    /// Time from a write request's arrival to its reply (updatelatency).
    pub update_latency: Summary,
    /// Time of each fsync of the transaction log (fsynctime).
    pub fsync_time: Summary,
    /// Log fsyncs slower than fsync.warningthresholdms (fsync_threshold_exceed_count).
    pub fsync_threshold_exceed_count: AtomicU64,
    /// Time to write each background snapshot (snapshottime).
    pub snapshot_time: Summary,
    /// Time from losing (or not yet having) a quorum to serving again (election_time).
    pub election_time: Summary,
    /// Times this server went looking for a leader (looking_count).
    pub looking_count: AtomicU64,
    /// Milliseconds after start, plus one, at which this server began leading; 0 when not.
    leading_since: AtomicU64,
    load: Arc<Load>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("uptime_ms", &self.uptime_ms())
            .finish_non_exhaustive()
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics::new(0)
    }
}

/// Request latency over reads and writes together, as `srvr` and `mntr` show it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Smallest, in ms.
    pub min_ms: f64,
    /// Mean, in ms.
    pub avg_ms: f64,
    /// Largest, in ms.
    pub max_ms: f64,
}

impl ServerMetrics {
    /// Figures of a server whose globalOutstandingLimit is `outstanding_limit` (0: none).
    pub fn new(outstanding_limit: u32) -> Self {
        ServerMetrics {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            read_latency: Summary::default(),
            update_latency: Summary::default(),
            fsync_time: Summary::default(),
            fsync_threshold_exceed_count: AtomicU64::new(0),
            snapshot_time: Summary::default(),
            election_time: Summary::default(),
            looking_count: AtomicU64::new(0),
            leading_since: AtomicU64::new(0),
            load: Load::new(outstanding_limit),
        }
    }

    /// The server-wide count of requests in flight, which the client port throttles on.
    pub fn load(&self) -> Arc<Load> {
        self.load.clone()
    }

    /// Requests read from clients and not answered yet.
    pub fn outstanding(&self) -> u64 {
        self.load.outstanding() as u64
    }

    /// Milliseconds since the server started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Counts one request received.
    pub fn received(&self) {
        self.packets_received.fetch_add(1, Relaxed);
    }

    /// Counts one packet sent.
    pub fn sent(&self) {
        self.packets_sent.fetch_add(1, Relaxed);
    }

    /// The server began or stopped leading.
    pub fn set_leading(&self, leading: bool) {
        let since = if leading { self.uptime_ms() + 1 } else { 0 };
        self.leading_since.store(since, Relaxed);
    }

    /// Milliseconds this server has led, when it leads.
    pub fn leader_uptime_ms(&self) -> Option<u64> {
        match self.leading_since.load(Relaxed) {
            0 => None,
            since => Some(self.uptime_ms().saturating_sub(since - 1)),
        }
    }

    /// Latency over reads and writes.
    pub fn latency(&self) -> Latency {
        combined(
            &self.read_latency.snapshot(),
            &self.update_latency.snapshot(),
        )
    }
}

fn combined(a: &SummarySnapshot, b: &SummarySnapshot) -> Latency {
    let count = a.count + b.count;
    let min = match (a.count, b.count) {
        (0, _) => b.min_ms,
        (_, 0) => a.min_ms,
        _ => a.min_ms.min(b.min_ms),
    };
    Latency {
        min_ms: min,
        avg_ms: if count == 0 {
            0.0
        } else {
            (a.sum_ms + b.sum_ms) / count as f64
        },
        max_ms: a.max_ms.max(b.max_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_combines_reads_and_writes() {
        let m = ServerMetrics::default();
        assert_eq!(m.latency(), Latency::default());
        m.read_latency.observe(Duration::from_millis(2));
        assert_eq!(m.latency().min_ms, 2.0);
        m.update_latency.observe(Duration::from_millis(6));
        let l = m.latency();
        assert_eq!((l.min_ms, l.avg_ms, l.max_ms), (2.0, 4.0, 6.0));
        assert_eq!(m.leader_uptime_ms(), None);
        m.set_leading(true);
        assert!(m.leader_uptime_ms().is_some());
        m.set_leading(false);
        assert_eq!(m.leader_uptime_ms(), None);
    }
}
