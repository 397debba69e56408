//! What `up` reports after its banner: each server's mode and master's status as it changes.

use super::super::status;
use ensemble_config::EnsembleFile;
use std::time::{Duration, Instant};

/// (process name, state) of every server (its mode) and master (ALIVE, STANDBY, ...).
pub(super) fn states(file: &EnsembleFile) -> Vec<(String, String)> {
    let servers = file.servers.iter().map(|s| {
        let addr = format!("{}:{}", s.host, s.client_port);
        (
            format!("server.{}", s.id),
            crate::four_letter::mode(&addr, Duration::from_millis(500)),
        )
    });
    let masters = file.masters.iter().map(|m| {
        let state = status::json(&m.host, m.webui_port)
            .and_then(|j| j["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "not answering".into());
        (super::master_name(m), state)
    });
    servers.chain(masters).collect()
}

/// The ALIVE master's name, if one is.
fn alive(states: &[(String, String)]) -> Option<&str> {
    states
        .iter()
        .find(|(_, s)| s == "ALIVE")
        .map(|(n, _)| n.as_str())
}

/// Seconds since `start`, as `up` stamps its lines.
pub(super) fn stamp(start: Instant) -> String {
    format!("[{:>6.1}s]", start.elapsed().as_secs_f64())
}

/// Polls every second from a thread of its own and prints each change on stdout.
pub(super) fn spawn(file: EnsembleFile, start: Instant) {
    std::thread::spawn(move || {
        let mut before = states(&file);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = states(&file);
            for ((name, old), (_, new)) in before.iter().zip(&now) {
                if old != new {
                    println!("{} {name}: {old} -> {new}", stamp(start));
                }
            }
            if alive(&before) != alive(&now) {
                println!(
                    "{} ALIVE master: {} -> {}",
                    stamp(start),
                    alive(&before).unwrap_or("none"),
                    alive(&now).unwrap_or("none")
                );
            }
            before = now;
        }
    });
}

/// One line on what startup still waits for.
pub(super) fn progress(
    file: &EnsembleFile,
    states: &[(String, String)],
    waited: Duration,
) -> String {
    let list: Vec<String> = states.iter().map(|(n, s)| format!("{n} {s}")).collect();
    let mut line = format!("waiting, {} s: {}", waited.as_secs(), list.join(", "));
    let serving = states
        .iter()
        .any(|(n, s)| n.starts_with("server.") && (s == "leader" || s == "standalone"));
    if serving && !file.masters.is_empty() && alive(states).is_none() {
        line.push_str(
            "; no ALIVE master yet: the masters elect one through the ensemble, and a master of \
             an earlier run keeps the leader latch until its session expires (spark.session_timeout)",
        );
    }
    line
}
