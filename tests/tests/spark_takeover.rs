//! Fast failover of Spark-style masters, as real processes on loopback: a `kill -9`ed ALIVE
//! master's session is taken over and closed by a standby that finds its RPC port refusing
//! connections, so the next master leads long before the session would expire (tickTime 2000:
//! sessions of at least 4 s); a stopped (SIGSTOP) ALIVE master is not taken over, since a frozen
//! process is no proof of death, and is replaced only once its session expires. Never two
//! ALIVE masters.

use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::ZkError;
use ensemble_node::local_cluster::{wait_until, Timing};
use ensemble_tests::spark::{json, status, Proc, Topology};
use serde_json::Value;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// The masters' credential, as `ensemble up` writes it.
const AUTH: &str = "spark.deploy.zookeeper.masterAuth masters:test-secret\n";

/// A generous bound for a loaded machine; the measured time is printed (about 0.1-0.3 s when
/// idle, against the 4 s session expiry it replaces).
const FAILOVER_LIMIT: Duration = Duration::from_secs(10);

/// Running masters (1-based) that say ALIVE, with their /json; `skip` is not asked (a stopped
/// process would not answer).
fn alive(t: &Topology, skip: usize) -> Vec<(usize, Value)> {
    (1..=3)
        .filter(|m| *m != skip && t.masters[m - 1].is_some())
        .filter_map(|m| json(&t.master_ip(m), 8080).map(|j| (m, j)))
        .filter(|(_, j)| j["status"] == "ALIVE")
        .collect()
}

/// Polls every master but `skip` until exactly one is ALIVE with both workers and the running
/// application; fails if two are ever ALIVE at once. Returns it and when it was first seen.
fn wait_new_alive(t: &Topology, skip: usize, since: Instant, limit: Duration) -> (usize, Duration) {
    loop {
        let now_alive = alive(t, skip);
        assert!(
            now_alive.len() <= 1,
            "two ALIVE masters: {now_alive:?}\n{}",
            t.logs()
        );
        if let [(m, j)] = &now_alive[..] {
            let running = j["activeapps"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["state"] == "RUNNING");
            if j["aliveworkers"] == 2 && running {
                return (*m, since.elapsed());
            }
        }
        assert!(
            since.elapsed() < limit,
            "no new ALIVE master with both workers and the application within {limit:?}: \
             {now_alive:?}\n{}",
            t.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every master log of the topology, killed masters' included.
fn master_logs(t: &Topology) -> String {
    let mut names: Vec<_> = std::fs::read_dir(t.dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("master-"))
    });
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// Starts a long-running application (1 core) and waits for it to run and be stored.
fn submit(t: &Topology, leader: usize) -> Proc {
    let driver = t.submit_sleeper();
    wait_until("the application running", Duration::from_secs(30), || {
        json(&t.master_ip(leader), 8080).is_some_and(|j| j["coresused"] == 1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", t.logs(), driver.log()));
    t.wait_records("app_", 1, Duration::from_secs(10));
    driver
}

/// The published session record exists and is readable only with the masters' credential.
fn check_record_is_masters_only(t: &Topology) {
    let servers: Vec<String> = (1..=3).map(|i| t.ensemble.client_addr(i)).collect();
    let rt = ensemble_tests::runtime();
    rt.block_on(async {
        let c = ZkClient::connect(&servers, Duration::from_secs(10))
            .await
            .expect("a session");
        let path = "/spark/leader_session";
        assert!(c.exists(path).await.expect("exists").is_some());
        assert_eq!(
            c.get_data(path).await.map(|_| ()),
            Err(ClientError::Server(ZkError::NoAuth)),
            "the world cannot read the ALIVE master's session"
        );
        c.add_auth("digest", b"masters:test-secret")
            .await
            .expect("auth");
        assert!(c.get_data(path).await.is_ok(), "the masters can");
        let (acl, _) = c.get_acl(path).await.expect("getACL");
        assert!(
            acl.iter().all(|a| a.id.scheme == "digest"),
            "digest only: {acl:?}"
        );
        let _ = c.close().await;
    });
}

/// `kill -9` of the ALIVE master with ZooKeeper's default tickTime (2000 ms, so sessions last at
/// least 4 s): a standby finds its port refusing connections, closes its session, and a new
/// master is ALIVE with both workers and the running application well within the limit (and in
/// practice far under the 4 s the session would take to expire). The killed master restarted
/// on the same port holds a new session and is STANDBY; still one ALIVE. Then the new leader
/// is killed and restarted at once on its port, and is replaced as fast.
#[test]
fn the_alive_master_killed_is_replaced_at_once_with_2s_ticks() {
    let mut t = Topology::start_with(EXE.as_ref(), 135, AUTH, false, Timing::ZOOKEEPER_DEFAULT);
    let old = t.wait_alive_with(2, Duration::from_secs(60));
    let _driver = submit(&t, old);
    t.wait_records("worker_", 2, Duration::from_secs(10));
    check_record_is_masters_only(&t);
    t.masters[old - 1] = None;
    let killed = Instant::now();
    let (new, took) = wait_new_alive(&t, old, killed, FAILOVER_LIMIT);
    println!("kill -9 of the ALIVE master to a new ALIVE master with every worker: {took:?}");
    let logs = t.logs();
    assert!(
        logs.contains("refuses connections") && logs.contains("closed the dead master's session"),
        "a standby took the dead master's session over:\n{logs}"
    );
    // The killed master back on its port, with a new session: STANDBY, last in line.
    t.start_master(old);
    wait_until(
        "the restarted master STANDBY",
        Duration::from_secs(30),
        || status(&t.master_ip(old)) == "STANDBY",
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert_eq!(
        alive(&t, 0).into_iter().map(|(m, _)| m).collect::<Vec<_>>(),
        vec![new],
        "still one ALIVE master"
    );
    // The new leader killed and restarted at once on its port: whether the probe finds the
    // port refusing or the new process answering with its own session, the dead session is
    // closed and another master leads at once; the restarted one is STANDBY.
    t.masters[new - 1] = None;
    t.start_master(new);
    let killed = Instant::now();
    let (third, took) = wait_new_alive(&t, 0, killed, FAILOVER_LIMIT);
    println!("kill -9 and restart on the same port of the ALIVE master to a new ALIVE: {took:?}");
    assert_ne!(
        third, new,
        "the restarted process holds a new session and waits in line"
    );
    let logs = master_logs(&t);
    assert_eq!(
        logs.matches("closed the dead master's session").count(),
        2,
        "both dead sessions were taken over:\n{logs}"
    );
}

/// SIGSTOP of the ALIVE master: its port still accepts connections but nothing answers, which
/// proves nothing, so no standby takes its session over; another master leads only once the
/// session expired, and never while a second one is ALIVE.
#[test]
fn a_stopped_alive_master_is_not_taken_over_and_is_replaced_on_expiry() {
    let t = Topology::start(EXE.as_ref(), 136, AUTH);
    let old = t.wait_alive_with(2, Duration::from_secs(30));
    let _driver = submit(&t, old);
    t.wait_records("worker_", 2, Duration::from_secs(10));
    let stopped = t.masters[old - 1].as_ref().expect("running");
    stopped.signal("-STOP");
    let since = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_new_alive(&t, old, since, Duration::from_secs(30))
    }));
    stopped.signal("-CONT");
    let (new, took) = outcome.unwrap_or_else(|e| std::panic::resume_unwind(e));
    println!("SIGSTOP of the ALIVE master to a new ALIVE master (session expiry): {took:?}");
    let logs = t.logs();
    assert!(
        !logs.contains("taking over its session"),
        "nobody took a stopped master's session over:\n{logs}"
    );
    // Its session (2 s) expires at least 2 s after it was last heard from, and it pinged at
    // most a third of that before it stopped.
    assert!(
        took >= Duration::from_secs(1),
        "replaced only once its session expired: {took:?}"
    );
    wait_until("the thawed master STANDBY", Duration::from_secs(30), || {
        status(&t.master_ip(old)) == "STANDBY"
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert_eq!(
        alive(&t, 0).into_iter().map(|(m, _)| m).collect::<Vec<_>>(),
        vec![new]
    );
}
