//! Unit tests of decommissioning in the master core.

use super::super::core::{Input, MasterCore, MasterSettings, Output, RecoveryState};
use super::*;
use ensemble_messages::spark::{AppDesc, ToMaster, WorkerSpec};

fn settings() -> MasterSettings {
    MasterSettings {
        url: "spark://m:7077".into(),
        webui: "http://m:8080".into(),
        worker_timeout_ms: 1000,
        recovery_timeout_ms: 3000,
        dead_worker_persistence: 2,
        spread_out: true,
        default_cores: None,
        max_executor_retries: Some(10),
        election: "zk:1/spark".into(),
        retained_apps: 200,
        retained_drivers: 200,
        wall_origin_ms: 0,
    }
}

fn spec(id: &str, host: &str) -> WorkerSpec {
    WorkerSpec {
        id: id.into(),
        host: host.into(),
        port: 8081,
        cores: 1,
        memory_mb: 512,
        webui: format!("http://{host}:8081"),
    }
}

/// Steps, then stores every record change at once.
fn step(m: &mut MasterCore, input: Input, now: u64) -> Vec<Output> {
    let mut out = m.step(input, now);
    if let Some(seq) = m.unstored() {
        let epoch = m.epoch();
        out.extend(m.step(Input::Stored { epoch, seq }, now));
    }
    out
}

fn msg(conn: u64, msg: ToMaster) -> Input {
    Input::Message { conn, msg }
}

fn state_of(m: &MasterCore, id: &str) -> WorkerState {
    m.workers()
        .find(|w| w.spec.id == id)
        .map(|w| w.state)
        .expect("listed")
}

/// An ALIVE master with workers w1 (host a, conn 1) and w2 (host b, conn 2) and one
/// application (conn 10) whose single executor runs on w1.
fn cluster() -> MasterCore {
    let mut m = MasterCore::new(settings());
    let elected = Input::Elected {
        epoch: 5,
        stored: vec![],
        apps: vec![],
        drivers: vec![],
    };
    step(&mut m, elected, 0);
    step(&mut m, msg(1, ToMaster::RegisterWorker(spec("w1", "a"))), 0);
    let desc = AppDesc {
        name: "app".into(),
        command: vec!["true".into()],
        max_cores: Some(1),
        executor_cores: 1,
        executor_memory_mb: 64,
        user: "u".into(),
    };
    let app = ToMaster::RegisterApplication { desc, app_id: None };
    step(&mut m, msg(10, app), 0);
    step(&mut m, msg(2, ToMaster::RegisterWorker(spec("w2", "b"))), 0);
    assert_eq!(m.used("w1").0, 1, "the executor runs on w1");
    m
}

fn launched_on(out: &[Output]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                conn,
                msg: FromMaster::LaunchExecutor { .. },
            } => Some(*conn),
            _ => None,
        })
        .collect()
}

#[test]
fn a_decommissioning_worker_gets_nothing_new_and_its_executor_moves() {
    let mut m = cluster();
    let out = step(
        &mut m,
        msg(
            1,
            ToMaster::WorkerDecommissioning {
                worker_id: "w1".into(),
            },
        ),
        10,
    );
    assert_eq!(state_of(&m, "w1"), WorkerState::Decommissioned);
    assert!(out.contains(&Output::ForgetWorker("w1".into())), "{out:?}");
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                conn: 10,
                msg: FromMaster::ExecutorUpdated {
                    state: ExecutorState::Decommissioned,
                    ..
                },
            }
        )),
        "the application is told: {out:?}"
    );
    assert_eq!(launched_on(&out), vec![2], "the replacement goes to w2");
    // Still heartbeating and registering, still decommissioned, never recorded again.
    let beat = ToMaster::Heartbeat {
        worker_id: "w1".into(),
    };
    assert!(step(&mut m, msg(1, beat), 500).is_empty());
    let again = step(
        &mut m,
        msg(1, ToMaster::RegisterWorker(spec("w1", "a"))),
        600,
    );
    assert_eq!(state_of(&m, "w1"), WorkerState::Decommissioned);
    assert!(
        !again.iter().any(|o| matches!(o, Output::PersistWorker(_))),
        "{again:?}"
    );
    // The executor's process ends later: nothing changes.
    let ended = ToMaster::ExecutorStateChanged {
        app_id: m.apps().next().map(|a| a.id.clone()).unwrap_or_default(),
        exec_id: 0,
        state: ExecutorState::Exited,
        exit_code: Some(0),
        stderr: None,
    };
    assert!(launched_on(&step(&mut m, msg(1, ended), 700)).is_empty());
    // Silent past the timeout, it is DEAD like any worker.
    step(&mut m, Input::Tick, 3000);
    assert_eq!(state_of(&m, "w1"), WorkerState::Dead);
}

#[test]
fn the_kill_workers_endpoint_decommissions_by_host_and_tells_the_worker() {
    let mut m = cluster();
    assert_eq!(m.workers_on_hosts(&["B".into()]), vec!["w2".to_string()]);
    assert!(m.workers_on_hosts(&["c".into()]).is_empty());
    let out = step(&mut m, Input::DecommissionWorkers(vec!["w2".into()]), 10);
    assert!(out.contains(&Output::Send {
        conn: 2,
        msg: FromMaster::DecommissionWorker { epoch: 5 },
    }));
    assert_eq!(state_of(&m, "w2"), WorkerState::Decommissioned);
    assert_eq!(state_of(&m, "w1"), WorkerState::Alive);
    // A STANDBY master decommissions nothing.
    let mut standby = MasterCore::new(settings());
    assert!(standby
        .step(Input::DecommissionWorkers(vec!["w1".into()]), 0)
        .is_empty());
    let told = standby.step(
        msg(
            3,
            ToMaster::WorkerDecommissioning {
                worker_id: "w1".into(),
            },
        ),
        0,
    );
    assert!(matches!(
        told[..],
        [Output::Send {
            conn: 3,
            msg: FromMaster::MasterInStandby { .. }
        }]
    ));
    assert_eq!(standby.state(), RecoveryState::Standby);
}
