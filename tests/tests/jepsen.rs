//! A Jepsen-style run on real processes: five servers whose peer links all go through
//! userspace proxies, concurrent clients on every server, and a fault per cycle (`kill -9`,
//! SIGSTOP, cut or blackholed partitions, one-way links, slow links, all servers killed),
//! each healed before the next. Afterwards every acknowledged create must exist on every
//! server, every copy must be identical and each register's history linearizable.
//!
//! CI runs 4 cycles; `JEPSEN_CYCLES=N` runs N, `JEPSEN_SEED=S` picks the fault schedule, and
//! `JEPSEN_LOG_DIR=D` keeps every server's whole log in D when the run fails.

use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use ensemble_tests::jepsen::nemesis::Net;
use ensemble_tests::jepsen::proxy::LinkFault;
use ensemble_tests::jepsen::run::{run, runtime, RunConfig};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_ensemble-cli").into()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn faults_in_cycles_lose_no_acknowledged_write_and_keep_every_history_linearizable() {
    let config = RunConfig {
        exe: exe(),
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

/// The harness's own check: the peer links really run through the proxies, so cutting them
/// all takes the quorum away, and healing them brings it back.
#[test]
fn the_peer_links_run_through_the_proxies() {
    let mut cluster = ProcessCluster::new(3, 90, Program::Cli(exe()), "");
    let rt = runtime().expect("runtime");
    let net = Net::start(rt.handle(), 3, 90, 91).expect("proxies");
    cluster.route_peers(|from, to| net.dial_host(from, to));
    cluster.start_all();
    cluster
        .wait_serving(DEADLINE)
        .expect("serving through the proxies");
    net.all(LinkFault::CUT);
    wait_until("every server to stop serving", DEADLINE, || {
        (1..=3).all(|i| cluster.mode(i) == "not serving")
    })
    .expect("no quorum without the proxies");
    net.heal();
    cluster
        .wait_serving(DEADLINE)
        .expect("serving again once healed");
}
