//! Unit tests of the master core: each feeds inputs and compares the exact outputs.

use super::*;

fn settings() -> MasterSettings {
    MasterSettings {
        url: "spark://m1:7077".into(),
        webui: "http://m1:8080".into(),
        worker_timeout_ms: 1000,
        recovery_timeout_ms: 3000,
        dead_worker_persistence: 2,
    }
}

fn spec(id: &str) -> WorkerSpec {
    WorkerSpec {
        id: id.into(),
        host: "h".into(),
        port: 1,
        cores: 2,
        memory_mb: 512,
        webui: "http://h:8081".into(),
    }
}

fn register(id: &str) -> ToMaster {
    ToMaster::RegisterWorker(spec(id))
}

fn msg(conn: ConnId, msg: ToMaster) -> Input {
    Input::Message { conn, msg }
}

fn registered(epoch: MasterEpoch, duplicate: bool) -> ToWorker {
    ToWorker::RegisteredWorker {
        master_url: "spark://m1:7077".into(),
        webui: "http://m1:8080".into(),
        epoch,
        duplicate,
    }
}

fn state_of(core: &MasterCore, id: &str) -> WorkerState {
    core.workers()
        .find(|w| w.spec.id == id)
        .map(|w| w.state)
        .expect("listed")
}

#[test]
fn a_standby_master_refuses_registration() {
    let mut m = MasterCore::new(settings());
    let out = m.step(msg(1, register("w1")), 0);
    assert_eq!(
        out,
        vec![Output::Send {
            conn: 1,
            msg: ToWorker::MasterInStandby {
                master_url: "spark://m1:7077".into()
            }
        }]
    );
    assert_eq!(
        m.step(
            msg(
                1,
                ToMaster::Heartbeat {
                    worker_id: "w1".into()
                }
            ),
            0
        ),
        vec![]
    );
    assert_eq!(m.state(), RecoveryState::Standby);
}

#[test]
fn elected_with_nothing_stored_it_is_alive_and_registers_and_persists_workers() {
    let mut m = MasterCore::new(settings());
    assert_eq!(
        m.step(
            Input::Elected {
                epoch: 7,
                stored: vec![]
            },
            0
        ),
        vec![]
    );
    assert_eq!(m.state(), RecoveryState::Alive);
    let out = m.step(msg(1, register("w1")), 10);
    assert_eq!(
        out,
        vec![
            Output::PersistWorker(spec("w1")),
            Output::Send {
                conn: 1,
                msg: registered(7, false)
            }
        ]
    );
    // Registering again (a lost connection, a failover) is the same worker, not an error.
    let again = m.step(msg(2, register("w1")), 20);
    assert_eq!(
        again,
        vec![Output::Send {
            conn: 2,
            msg: registered(7, true)
        }]
    );
    let bad = WorkerSpec {
        cores: 0,
        ..spec("w2")
    };
    let out = m.step(msg(3, ToMaster::RegisterWorker(bad)), 30);
    assert!(matches!(
        &out[..],
        [Output::Send {
            conn: 3,
            msg: ToWorker::RegisterWorkerFailed { .. }
        }]
    ));
}

#[test]
fn recovery_completes_as_soon_as_every_stored_worker_answers() {
    let mut m = MasterCore::new(settings());
    // While standby, the workers' connections became known.
    m.step(msg(1, register("w1")), 0);
    m.step(msg(2, register("w2")), 0);
    let out = m.step(
        Input::Elected {
            epoch: 9,
            stored: vec![spec("w1"), spec("w2")],
        },
        100,
    );
    let changed = ToWorker::MasterChanged {
        master_url: "spark://m1:7077".into(),
        webui: "http://m1:8080".into(),
        epoch: 9,
    };
    assert_eq!(
        out,
        vec![
            Output::Send {
                conn: 1,
                msg: changed.clone()
            },
            Output::Send {
                conn: 2,
                msg: changed
            }
        ]
    );
    assert_eq!(m.state(), RecoveryState::Recovering);
    assert_eq!(state_of(&m, "w1"), WorkerState::Unknown);
    let answer = |id: &str| ToMaster::WorkerSchedulerStateResponse {
        worker_id: id.into(),
    };
    assert_eq!(m.step(msg(1, answer("w1")), 150), vec![]);
    assert_eq!(m.state(), RecoveryState::Recovering, "w2 has not answered");
    let out = m.step(msg(2, answer("w2")), 180);
    assert_eq!(out, vec![Output::RecoveryComplete { took_ms: 80 }]);
    assert_eq!(m.state(), RecoveryState::Alive);
    assert_eq!(state_of(&m, "w2"), WorkerState::Alive);
}

#[test]
fn silent_workers_become_dead_at_the_recovery_timeout_and_may_come_back() {
    let mut m = MasterCore::new(settings());
    m.step(
        Input::Elected {
            epoch: 3,
            stored: vec![spec("w1"), spec("gone")],
        },
        0,
    );
    m.step(msg(1, register("w1")), 10);
    assert_eq!(m.state(), RecoveryState::Recovering);
    assert_eq!(m.step(Input::Tick, 2999), vec![]);
    let out = m.step(Input::Tick, 3000);
    assert_eq!(
        out,
        vec![
            Output::ForgetWorker("gone".into()),
            Output::RecoveryComplete { took_ms: 3000 }
        ]
    );
    assert_eq!(state_of(&m, "gone"), WorkerState::Dead);
    // It comes back: told to reconnect, then registered afresh and persisted again.
    let out = m.step(
        msg(
            5,
            ToMaster::Heartbeat {
                worker_id: "gone".into(),
            },
        ),
        3100,
    );
    assert_eq!(
        out,
        vec![Output::Send {
            conn: 5,
            msg: ToWorker::ReconnectWorker {
                master_url: "spark://m1:7077".into(),
                epoch: 3
            }
        }]
    );
    let out = m.step(msg(5, register("gone")), 3200);
    assert_eq!(
        out,
        vec![
            Output::PersistWorker(spec("gone")),
            Output::Send {
                conn: 5,
                msg: registered(3, false)
            }
        ]
    );
}

#[test]
fn a_worker_silent_for_the_timeout_is_dead_then_dropped_from_the_list() {
    let mut m = MasterCore::new(settings());
    m.step(
        Input::Elected {
            epoch: 1,
            stored: vec![],
        },
        0,
    );
    m.step(msg(1, register("w1")), 0);
    m.step(
        msg(
            1,
            ToMaster::Heartbeat {
                worker_id: "w1".into(),
            },
        ),
        900,
    );
    assert_eq!(
        m.step(Input::Tick, 1900),
        vec![],
        "heard from 1000 ms ago: alive"
    );
    assert_eq!(
        m.step(Input::Tick, 1901),
        vec![Output::ForgetWorker("w1".into())]
    );
    assert_eq!(state_of(&m, "w1"), WorkerState::Dead);
    m.step(Input::Tick, 3901);
    assert_eq!(
        m.workers().count(),
        1,
        "kept for dead_worker_persistence timeouts"
    );
    m.step(Input::Tick, 3902);
    assert_eq!(m.workers().count(), 0);
}

#[test]
fn a_deposed_master_is_standby_and_forgets_the_registry() {
    let mut m = MasterCore::new(settings());
    m.step(
        Input::Elected {
            epoch: 1,
            stored: vec![],
        },
        0,
    );
    m.step(msg(1, register("w1")), 0);
    assert_eq!(m.step(Input::Deposed, 5), vec![]);
    assert_eq!(
        (m.state(), m.epoch(), m.workers().count()),
        (RecoveryState::Standby, 0, 0)
    );
    assert_eq!(m.step(Input::Tick, 99_999), vec![]);
}
