//! Spark-style masters riding through ensemble trouble, as real processes on loopback: the
//! ensemble's leader killed under the ALIVE master (its session moves to another server and it
//! stays ALIVE), and a worker registered just before a master failover (its record is stored
//! before it is answered, so the next master knows it).

use ensemble_node::local_cluster::wait_until;
use ensemble_tests::spark::{json, Topology};
use serde_json::Value;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// How soon after the ensemble's leader dies a master must be ALIVE, acting, with every worker.
const RIDE_THROUGH_LIMIT: Duration = Duration::from_secs(2);

/// Masters (1-based) that say ALIVE, with their /json.
fn alive(t: &Topology) -> Vec<(usize, Value)> {
    (1..=3)
        .filter(|m| t.masters[m - 1].is_some())
        .filter_map(|m| json(&t.master_ip(m), 8080).map(|j| (m, j)))
        .filter(|(_, j)| j["status"] == "ALIVE")
        .collect()
}

/// `kill -9` of the ensemble's leader, the server the masters hold their sessions on: the
/// ALIVE master rides through on its session (suspended while reconnecting, never deposed),
/// is ALIVE, acting and with both workers within 2 s, and no second master is ever ALIVE.
#[test]
fn the_ensemble_leader_killed_under_the_alive_master_leaves_it_alive_with_every_worker() {
    let (mut t, leader) = Topology::start_on_leader(EXE.as_ref(), 100, "");
    assert_ne!(leader, 0, "an ensemble leader");
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    t.wait_records("worker_", 2, Duration::from_secs(10));
    assert_eq!(
        t.ensemble.leader(),
        Some(leader),
        "the leader the masters dialed"
    );
    t.ensemble.kill9(leader);
    let killed = Instant::now();
    let mut back: Option<Duration> = None;
    // Watch past the session timeout (2 s): a master deposed late would show here.
    while killed.elapsed() < Duration::from_secs(5) {
        let now_alive = alive(&t);
        assert!(
            now_alive.len() <= 1,
            "two ALIVE masters: {now_alive:?}\n{}",
            t.logs()
        );
        let acting = matches!(&now_alive[..], [(_, j)]
            if j["suspended"] == false && j["aliveworkers"] == 2);
        match (acting, back) {
            (true, None) => back = Some(killed.elapsed()),
            (false, Some(at)) => panic!(
                "back at {at:?}, then not acting with both workers: {now_alive:?}\n{}",
                t.logs()
            ),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let back = back.unwrap_or_else(|| panic!("never back\n{}", t.logs()));
    println!("ALIVE with every worker {back:?} after the ensemble leader was killed");
    assert!(back <= RIDE_THROUGH_LIMIT, "took {back:?}");
    assert_eq!(t.alive(), vec![old], "the same master rode through");
    let log = t.masters[old - 1]
        .as_ref()
        .map(|p| p.log())
        .unwrap_or_default();
    for line in log
        .lines()
        .filter(|l| l.contains("riding through") || l.contains("again"))
    {
        println!("master {old}: {line}");
    }
    assert!(
        log.contains("riding through") && !log.contains("contending again"),
        "the ALIVE master lost its connection and kept its session:\n{log}"
    );
}

/// A worker that registers just before the ALIVE master freezes (and so loses its session)
/// ends up registered with the next ALIVE master: its registration was answered only once its
/// record was stored, so the next master tells it MasterChanged. The old master, thawed and
/// STANDBY, answers anything the worker still sends it with MasterInStandby.
#[test]
fn a_worker_registered_just_before_a_failover_follows_the_new_master() {
    let mut t = Topology::start(EXE.as_ref(), 101, "");
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    let old_url = format!("spark://{}:7077", t.master_ip(old));
    t.start_worker(3);
    wait_until(
        "worker 3 registered with the ALIVE master",
        Duration::from_secs(20),
        || json(&t.worker_ip(3), 8081).is_some_and(|j| j["masterurl"] == old_url.as_str()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let pid = t.masters[old - 1].as_ref().expect("running").pid();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let mut new = 0;
    let taken = wait_until("another master ALIVE", Duration::from_secs(20), || {
        new = alive(&t)
            .into_iter()
            .find(|(m, _)| *m != old)
            .map_or(0, |(m, _)| m);
        new != 0
    });
    signal("-CONT");
    taken.unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    let new_url = format!("spark://{}:7077", t.master_ip(new));
    wait_until(
        "every worker on the new master",
        Duration::from_secs(20),
        || {
            (1..=3).all(|w| {
                json(&t.worker_ip(w), 8081).is_some_and(|j| j["masterurl"] == new_url.as_str())
            }) && json(&t.master_ip(new), 8080).is_some_and(|j| j["aliveworkers"] == 3)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", t.statuses(), t.logs()));
    assert_eq!(t.alive(), vec![new]);
}
