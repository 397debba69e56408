//! Deterministic simulation over many seeds.
//!
//! `SIM_SEEDS=N` sets how many seeds run (default 500); `SIM_SEED=S` runs only seed S, which is
//! how a failure printed here is reproduced:
//! `SIM_SEED=S cargo test -p ensemble-tests --test sim -- --nocapture`; add `RUST_LOG=debug`
//! to see what each simulated server logs.

use ensemble_tests::sim::{Sim, SimConfig};

fn run_seed(seed: u64) -> Result<(), String> {
    run_shape(seed, SimConfig::for_seed(seed))
}

fn run_shape(seed: u64, cfg: SimConfig) -> Result<(), String> {
    let shape = format!("{cfg:?}");
    Sim::new(seed, cfg)
        .run()
        .map(|_| ())
        .map_err(|e| format!("seed {seed} ({shape}) failed: {e}\nreproduce: SIM_SEED={seed} cargo test -p ensemble-tests --test sim -- --nocapture"))
}

#[test]
fn simulated_clusters_stay_safe_and_recover() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .init();
        }
        if let Err(e) = run_seed(seed) {
            panic!("{e}");
        }
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let failures: Vec<String> = (0..seeds).filter_map(|s| run_seed(s).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed; first:\n{}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn a_quiet_run_commits_every_write() {
    let cfg = SimConfig {
        nodes: 3,
        observers: 0,
        fault_ms: 3_000,
        liveness_ms: 10_000,
        drop_rate: 0.0,
        clients: 3,
    };
    // Seed 7 of this shape injects no crash or partition before 3 s? Whatever it injects,
    // writes are acknowledged and the histories converge.
    let report = Sim::new(7, cfg).run().unwrap_or_else(|e| panic!("{e}"));
    assert!(report.acked > 10, "{report:?}");
    assert!(report.committed >= report.acked);
}

#[test]
fn observers_learn_every_commit_without_counting() {
    let cfg = SimConfig {
        nodes: 3,
        observers: 2,
        fault_ms: 3_000,
        liveness_ms: 10_000,
        drop_rate: 0.0,
        clients: 3,
    };
    let report = Sim::new(11, cfg).run().unwrap_or_else(|e| panic!("{e}"));
    assert!(report.acked > 10, "{report:?}");
}

/// Seeds that once failed, kept whatever `SIM_SEEDS` says: 7325 left a follower that had promised
/// a newer epoch LOOKING forever beside an established leader; 1382 (an observer) held the
/// observer against a stale leader that had not noticed its replacement yet; 870 (a reconfig
/// committed on one side of a partition) let the two servers that missed the commit elect the
/// removed one forever, until notifications carried the config version. They run as they were
/// found (without clients) and with the clients their seed draws now.
#[test]
fn regression_seeds_stay_fixed() {
    for seed in [7325, 1382, 870] {
        let as_found = SimConfig {
            clients: 0,
            ..SimConfig::for_seed(seed)
        };
        for result in [run_shape(seed, as_found), run_seed(seed)] {
            if let Err(e) = result {
                panic!("{e}");
            }
        }
    }
}

/// Seeds the session checkers failed: 34 (a client that moved to a server which had not applied
/// its session's creation yet was told the session had expired); 38 (a read queued behind a
/// write was answered after the whole batch of txns applied, so it saw the session's next write
/// and its reply's zxid was ahead of that write's); 6474 (the checker counted pings a stale
/// follower of the old leader answered as heard by the new leader, which expired the session).
#[test]
fn session_regression_seeds_stay_fixed() {
    for seed in [34, 38, 6474] {
        if let Err(e) = run_seed(seed) {
            panic!("{e}");
        }
    }
}
