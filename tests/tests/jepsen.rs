//! A Jepsen-style run on real processes: five servers whose peer links all go through
//! userspace proxies, concurrent clients on every server, and a fault per cycle (`kill -9`,
//! SIGSTOP, cut or blackholed partitions, one-way links, slow links, all servers killed),
//! each healed before the next. Afterwards every acknowledged create must exist on every
//! server, every copy must be identical and each register's history linearizable.
//!
//! CI runs 4 cycles; `JEPSEN_CYCLES=N` runs N, `JEPSEN_SEED=S` picks the fault schedule.

use ensemble_tests::jepsen::run::{run, RunConfig};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn faults_in_cycles_lose_no_acknowledged_write_and_keep_every_history_linearizable() {
    let config = RunConfig {
        exe: env!("CARGO_BIN_EXE_ensemble-cli").into(),
        servers: 5,
        block: 90,
        proxy_block: 91,
        cycles: env_or("JEPSEN_CYCLES", 4) as u32,
        seed: env_or("JEPSEN_SEED", 1),
        clients: 5,
        keys: 3,
    };
    println!("jepsen: seed {}, {} cycles", config.seed, config.cycles);
    let summary = run(&config).unwrap_or_else(|e| panic!("the run failed: {e}"));
    println!("jepsen: {summary}");
    assert!(
        summary.writes_acknowledged > 0 && summary.reads > 0,
        "{summary}"
    );
    assert_eq!(
        (
            summary.lost,
            summary.anomalies,
            summary.undecided,
            summary.divergent
        ),
        (0, 0, 0, 0),
        "{summary}"
    );
}
