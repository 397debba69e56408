//! The body of `/metrics`: a server's figures under ZooKeeper's Prometheus metric names.

use super::process;
use super::text::Exposition;
use crate::client_port::ServerInfo;
use ensemble_messages::ServerState;
use std::sync::atomic::Ordering::Relaxed;

/// Renders `info` in the Prometheus text format.
pub fn render(info: &ServerInfo) -> String {
    let (s, m) = (info.status, info.metrics);
    let mut e = Exposition::default();
    let l = m.latency();
    let gauges = [
        ("znode_count", s.node_count as f64),
        ("watch_count", s.watches as f64),
        ("ephemerals_count", s.ephemerals as f64),
        ("global_sessions", s.sessions as f64),
        ("num_alive_connections", s.connections as f64),
        ("outstanding_requests", m.outstanding() as f64),
        ("packets_received", m.packets_received.load(Relaxed) as f64),
        ("packets_sent", m.packets_sent.load(Relaxed) as f64),
        ("avg_latency", l.avg_ms),
        ("min_latency", l.min_ms),
        ("max_latency", l.max_ms),
        ("uptime", m.uptime_ms() as f64),
        ("quorum_size", s.peer.voters as f64),
    ];
    for (name, v) in gauges {
        e.gauge(name, v);
    }
    if let (Some(open), Some(max)) = (process::open_fds(), process::max_fds()) {
        e.gauge("open_file_descriptor_count", open as f64);
        e.gauge("max_file_descriptor_count", max as f64);
    }
    if s.peer.state == ServerState::Leading && !s.standalone {
        e.gauge("learners", s.peer.learners as f64);
        e.gauge("synced_followers", s.peer.synced_followers as f64);
        e.gauge("synced_non_voting_followers", 0.0);
        e.gauge("synced_observers", s.peer.synced_observers as f64);
        e.gauge("pending_syncs", 0.0);
        if let Some(up) = m.leader_uptime_ms() {
            e.gauge("leader_uptime", up as f64);
        }
    }
    e.counter("looking_count", m.looking_count.load(Relaxed));
    e.counter(
        "fsync_threshold_exceed_count",
        m.fsync_threshold_exceed_count.load(Relaxed),
    );
    let summaries = [
        ("readlatency", &m.read_latency),
        ("updatelatency", &m.update_latency),
        ("fsynctime", &m.fsync_time),
        ("snapshottime", &m.snapshot_time),
        ("election_time", &m.election_time),
    ];
    for (name, summary) in summaries {
        e.summary(name, &summary.snapshot());
    }
    e.finish()
}
