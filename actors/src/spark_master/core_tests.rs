//! Unit tests of the master core: each feeds inputs and compares the exact outputs.

use super::*;
use crate::spark_master::apps::{
    relaunch_backoff_ms, AppState, StoredApp, MAX_EXECUTOR_RETRIES, MAX_RELAUNCH_BACKOFF_MS,
};
use ensemble_messages::spark::{AppDesc, DriverDesc, DriverState, ExecutorRef, ExecutorState};

fn settings() -> MasterSettings {
    MasterSettings {
        url: "spark://m1:7077".into(),
        webui: "http://m1:8080".into(),
        worker_timeout_ms: 1000,
        recovery_timeout_ms: 3000,
        dead_worker_persistence: 2,
        spread_out: true,
        default_cores: None,
        max_executor_retries: Some(MAX_EXECUTOR_RETRIES),
        election: "zk-a:1/spark".into(),
        retained_apps: 200,
        retained_drivers: 200,
        wall_origin_ms: 1_000_000,
    }
}

fn spec(id: &str) -> WorkerSpec {
    WorkerSpec {
        id: id.into(),
        host: "h".into(),
        // Workers on one address replace each other: each test worker has its own port.
        port: id.bytes().map(u16::from).sum(),
        cores: 2,
        memory_mb: 512,
        webui: "http://h:8081".into(),
    }
}

fn register(id: &str) -> ToMaster {
    ToMaster::RegisterWorker(spec(id))
}

/// Steps the core and then stores at once every record change it issued, as a link with an
/// instant store would: the outputs of both steps.
trait StepStored {
    fn step_stored(&mut self, input: Input, now: u64) -> Vec<Output>;
}

impl StepStored for MasterCore {
    fn step_stored(&mut self, input: Input, now: u64) -> Vec<Output> {
        let mut out = self.step(input, now);
        if let Some(seq) = self.unstored() {
            let epoch = self.epoch();
            out.extend(self.step(Input::Stored { epoch, seq }, now));
        }
        out
    }
}

fn msg(conn: ConnId, msg: ToMaster) -> Input {
    Input::Message { conn, msg }
}

fn registered(epoch: MasterEpoch, duplicate: bool) -> FromMaster {
    FromMaster::RegisteredWorker {
        master_url: "spark://m1:7077".into(),
        webui: "http://m1:8080".into(),
        epoch,
        duplicate,
        election: "zk-a:1/spark".into(),
    }
}

fn state_of(core: &MasterCore, id: &str) -> WorkerState {
    core.workers()
        .find(|w| w.spec.id == id)
        .map(|w| w.state)
        .expect("listed")
}

fn in_standby(conn: ConnId) -> Vec<Output> {
    vec![Output::Send {
        conn,
        msg: FromMaster::MasterInStandby {
            master_url: "spark://m1:7077".into(),
        },
    }]
}

fn heartbeat(id: &str) -> ToMaster {
    ToMaster::Heartbeat {
        worker_id: id.into(),
    }
}

/// A STANDBY master registers nobody, and tells a worker that still heartbeats it (one whose
/// registration with it was never stored before it stepped down) to look for the ALIVE one.
#[test]
fn a_standby_master_refuses_registration_and_heartbeats() {
    let mut m = MasterCore::new(settings());
    assert_eq!(m.step(msg(1, register("w1")), 0), in_standby(1));
    assert_eq!(m.step(msg(2, heartbeat("w9")), 0), in_standby(2));
    assert_eq!(m.state(), RecoveryState::Standby);
}

#[test]
fn elected_with_nothing_stored_it_is_alive_and_registers_and_persists_workers() {
    let mut m = MasterCore::new(settings());
    assert_eq!(
        m.step_stored(
            Input::Elected {
                epoch: 7,
                stored: vec![],
                apps: vec![],
                drivers: vec![],
            },
            0
        ),
        vec![]
    );
    assert_eq!(m.state(), RecoveryState::Alive);
    let out = m.step_stored(msg(1, register("w1")), 10);
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
    let again = m.step_stored(msg(2, register("w1")), 20);
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
    let out = m.step_stored(msg(3, ToMaster::RegisterWorker(bad)), 30);
    assert!(matches!(
        &out[..],
        [Output::Send {
            conn: 3,
            msg: FromMaster::RegisterWorkerFailed { .. }
        }]
    ));
}

#[test]
fn recovery_completes_as_soon_as_every_stored_worker_answers() {
    let mut m = MasterCore::new(settings());
    // While standby, the workers' connections became known.
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(msg(2, register("w2")), 0);
    let out = m.step_stored(
        Input::Elected {
            epoch: 9,
            stored: vec![spec("w1"), spec("w2")],
            apps: vec![],
            drivers: vec![],
        },
        100,
    );
    let changed = FromMaster::MasterChanged {
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
        executors: vec![],
        drivers: vec![],
    };
    assert_eq!(m.step_stored(msg(1, answer("w1")), 150), vec![]);
    assert_eq!(m.state(), RecoveryState::Recovering, "w2 has not answered");
    let out = m.step_stored(msg(2, answer("w2")), 180);
    assert_eq!(out, vec![Output::RecoveryComplete { took_ms: 80 }]);
    assert_eq!(m.state(), RecoveryState::Alive);
    assert_eq!(state_of(&m, "w2"), WorkerState::Alive);
}

#[test]
fn silent_workers_become_dead_at_the_recovery_timeout_and_may_come_back() {
    let mut m = MasterCore::new(settings());
    m.step_stored(
        Input::Elected {
            epoch: 3,
            stored: vec![spec("w1"), spec("gone")],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 10);
    assert_eq!(m.state(), RecoveryState::Recovering);
    assert_eq!(m.step_stored(Input::Tick, 2999), vec![]);
    let out = m.step_stored(Input::Tick, 3000);
    assert_eq!(
        out,
        vec![
            Output::ForgetWorker("gone".into()),
            Output::RecoveryComplete { took_ms: 3000 }
        ]
    );
    assert_eq!(state_of(&m, "gone"), WorkerState::Dead);
    // It comes back: told to reconnect, then registered afresh and persisted again.
    let out = m.step_stored(
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
            msg: FromMaster::ReconnectWorker {
                master_url: "spark://m1:7077".into(),
                epoch: 3
            }
        }]
    );
    let out = m.step_stored(msg(5, register("gone")), 3200);
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
    m.step_stored(
        Input::Elected {
            epoch: 1,
            stored: vec![],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(
        msg(
            1,
            ToMaster::Heartbeat {
                worker_id: "w1".into(),
            },
        ),
        900,
    );
    assert_eq!(
        m.step_stored(Input::Tick, 1900),
        vec![],
        "heard from 1000 ms ago: alive"
    );
    assert_eq!(
        m.step_stored(Input::Tick, 1901),
        vec![Output::ForgetWorker("w1".into())]
    );
    assert_eq!(state_of(&m, "w1"), WorkerState::Dead);
    m.step_stored(Input::Tick, 3901);
    assert_eq!(
        m.workers().count(),
        1,
        "kept for dead_worker_persistence timeouts"
    );
    m.step_stored(Input::Tick, 3902);
    assert_eq!(m.workers().count(), 0);
}

#[test]
fn a_deposed_master_is_standby_and_forgets_the_registry() {
    let mut m = MasterCore::new(settings());
    m.step_stored(
        Input::Elected {
            epoch: 1,
            stored: vec![],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 0);
    assert_eq!(m.step_stored(Input::Deposed, 5), vec![]);
    assert_eq!(
        (m.state(), m.epoch(), m.workers().count()),
        (RecoveryState::Standby, 0, 0)
    );
    assert_eq!(m.step_stored(Input::Tick, 99_999), vec![]);
}

fn app(max_cores: Option<u32>, memory_mb: u64) -> ToMaster {
    ToMaster::RegisterApplication {
        desc: AppDesc {
            name: "job".into(),
            command: vec!["run".into()],
            max_cores,
            executor_cores: 1,
            executor_memory_mb: memory_mb,
            user: String::new(),
        },
        app_id: None,
    }
}

/// An ALIVE master with workers w1 (conn 1) and w2 (conn 2), 2 cores and 512 MiB each.
fn alive_with_two_workers() -> MasterCore {
    let mut m = MasterCore::new(settings());
    m.step_stored(
        Input::Elected {
            epoch: 5,
            stored: vec![],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(msg(2, register("w2")), 0);
    m
}

fn launches(out: &[Output]) -> Vec<(ConnId, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                conn,
                msg: FromMaster::LaunchExecutor { exec_id, .. },
            } => Some((*conn, *exec_id)),
            _ => None,
        })
        .collect()
}

fn exec_state(app_id: &str, exec_id: u32, state: ExecutorState, code: Option<i32>) -> ToMaster {
    ToMaster::ExecutorStateChanged {
        app_id: app_id.into(),
        exec_id,
        state,
        exit_code: code,
        stderr: None,
    }
}

#[test]
fn an_application_is_spread_over_workers_and_finishes_when_its_executors_exit() {
    let mut m = alive_with_two_workers();
    let out = m.step_stored(msg(9, app(Some(3), 256)), 10);
    assert!(out.contains(&Output::Send {
        conn: 9,
        msg: FromMaster::RegisteredApplication {
            app_id: "app-5-0000".into(),
            master_url: "spark://m1:7077".into(),
            epoch: 5,
        }
    }));
    // Three executors of one core: spread out, w1 and w2 first, then w1 again.
    assert_eq!(launches(&out), vec![(1, 0), (2, 1), (1, 2)]);
    assert_eq!((m.used("w1"), m.used("w2")), ((2, 512), (1, 256)));
    let a = m.apps().next().unwrap();
    assert_eq!((a.state, a.wanted), (AppState::Running, 3));
    for e in 0..3 {
        m.step_stored(
            msg(1, exec_state("app-5-0000", e, ExecutorState::Running, None)),
            20,
        );
    }
    m.step_stored(
        msg(
            1,
            exec_state("app-5-0000", 0, ExecutorState::Exited, Some(0)),
        ),
        30,
    );
    m.step_stored(
        msg(
            2,
            exec_state("app-5-0000", 1, ExecutorState::Exited, Some(0)),
        ),
        30,
    );
    assert_eq!(m.used("w2"), (0, 0), "accounting comes from live executors");
    let out = m.step_stored(
        msg(
            1,
            exec_state("app-5-0000", 2, ExecutorState::Exited, Some(0)),
        ),
        40,
    );
    assert!(out.contains(&Output::Send {
        conn: 9,
        msg: FromMaster::ApplicationRemoved {
            state: "FINISHED".into()
        }
    }));
    assert!(out.contains(&Output::ForgetApp("app-5-0000".into())));
    assert!(
        launches(&out).is_empty(),
        "completed executors are not replaced"
    );
    assert_eq!(m.apps().next().unwrap().state, AppState::Finished);
}

#[test]
fn consolidation_fills_one_worker_first() {
    let mut m = MasterCore::new(MasterSettings {
        spread_out: false,
        ..settings()
    });
    m.step_stored(
        Input::Elected {
            epoch: 5,
            stored: vec![],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(msg(2, register("w2")), 0);
    let out = m.step_stored(msg(9, app(Some(2), 256)), 10);
    assert_eq!(launches(&out), vec![(1, 0), (1, 1)]);
}

#[test]
fn impossible_applications_are_refused_with_a_reason() {
    let mut m = alive_with_two_workers();
    let out = m.step_stored(msg(9, app(None, 4096)), 10);
    assert_eq!(
        out,
        vec![Output::Send {
            conn: 9,
            msg: FromMaster::RegisterApplicationFailed {
                message: "executor memory 4096 MiB is larger than any worker's (512 MiB)".into()
            }
        }]
    );
    assert_eq!(m.apps().count(), 0);
}

/// An ALIVE master with two workers and `max` retries, running a 2-executor application.
fn failing_app(max: Option<u32>) -> (MasterCore, Vec<(ConnId, u32)>) {
    let mut m = MasterCore::new(MasterSettings {
        max_executor_retries: max,
        ..settings()
    });
    let elected = Input::Elected {
        epoch: 5,
        stored: vec![],
        apps: vec![],
        drivers: vec![],
    };
    m.step_stored(elected, 0);
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(msg(2, register("w2")), 0);
    let out = m.step_stored(msg(9, app(Some(2), 256)), 10);
    let launched = launches(&out);
    (m, launched)
}

/// Runs `launched` executors, each of which fails at once (RUNNING, then exit 3) at `now`;
/// returns what the master did.
fn fail_at_once(m: &mut MasterCore, launched: &[(ConnId, u32)], now: u64) -> Vec<Output> {
    let mut out = Vec::new();
    for (conn, e) in launched {
        let running = exec_state("app-5-0000", *e, ExecutorState::Running, None);
        out.extend(m.step_stored(msg(*conn, running), now));
        let failed = exec_state("app-5-0000", *e, ExecutorState::Failed, Some(3));
        out.extend(m.step_stored(msg(*conn, failed), now));
    }
    out
}

/// Both workers heartbeat, then time passes: what the master did.
fn tick(m: &mut MasterCore, now: u64) -> Vec<Output> {
    for (conn, w) in [(1, "w1"), (2, "w2")] {
        let beat = ToMaster::Heartbeat {
            worker_id: w.into(),
        };
        m.step_stored(msg(conn, beat), now);
    }
    m.step_stored(Input::Tick, now)
}

fn removed(out: &[Output], state: &str) -> bool {
    out.contains(&Output::Send {
        conn: 9,
        msg: FromMaster::ApplicationRemoved {
            state: state.into(),
        },
    })
}

#[test]
fn relaunch_backoff_doubles_from_100_ms_up_to_its_cap() {
    let pauses: Vec<u64> = (0..9).map(relaunch_backoff_ms).collect();
    assert_eq!(pauses, [0, 100, 200, 400, 800, 1600, 3200, 3200, 3200]);
    assert_eq!(relaunch_backoff_ms(u32::MAX), MAX_RELAUNCH_BACKOFF_MS);
}

/// Executors that exit non-zero at once (each reaching RUNNING first) fail their application
/// after maxExecutorRetries failures in all, with relaunches backed off in between and no more
/// launched than the retries plus those in flight.
#[test]
fn executors_failing_at_once_fail_the_application_after_the_retries() {
    let (mut m, mut launched) = failing_app(Some(5));
    assert_eq!(launched, vec![(1, 0), (2, 1)]);
    let (mut now, mut total, mut waves) = (20, launched.len(), Vec::new());
    loop {
        let out = fail_at_once(&mut m, &launched, now);
        assert!(launches(&out).is_empty(), "no relaunch before the backoff");
        if removed(&out, "FAILED") {
            break;
        }
        let failed_at = now;
        launched = Vec::new();
        while launched.is_empty() {
            now += 10;
            assert!(now < 60_000, "the application never FAILED");
            launched = launches(&tick(&mut m, now));
        }
        total += launched.len();
        waves.push(now - failed_at);
    }
    // Two executors fail per wave: after 2 and 4 failures, pauses of 200 then 800 ms; the
    // fifth failure ends it (the sixth executor, in flight, is killed).
    assert_eq!(waves, vec![200, 800]);
    assert_eq!(total, 6, "at most the 5 retries plus the 2 in flight");
    let a = m.apps().next().unwrap();
    assert_eq!((a.state, a.retries), (AppState::Failed, 5));
    assert_eq!(m.used("w1"), (0, 0));
    assert!(launches(&tick(&mut m, now + 10_000)).is_empty());
}

/// An executor that keeps RUNNING holds the application: spent retries stop relaunches but do
/// not fail it, and once it has run 5 s the count resets and relaunches go on.
#[test]
fn a_proven_executor_resets_the_retry_count() {
    let (mut m, launched) = failing_app(Some(2));
    let steady = exec_state("app-5-0000", 0, ExecutorState::Running, None);
    m.step_stored(msg(1, steady), 20);
    let mut flaky = vec![launched[1]];
    let mut now = 20;
    for _ in 0..2 {
        let out = fail_at_once(&mut m, &flaky, now);
        assert!(!removed(&out, "FAILED"), "an executor still runs");
        flaky.clear();
        while flaky.is_empty() && now < 4_000 {
            now += 10;
            flaky = launches(&tick(&mut m, now));
        }
    }
    assert!(flaky.is_empty(), "spent retries launch nothing more");
    assert_eq!(m.apps().next().unwrap().retries, 2);
    assert!(launches(&tick(&mut m, 5_010)).is_empty());
    let out = tick(&mut m, 5_020);
    assert_eq!(launches(&out), vec![(2, 3)], "proven at 5 s: relaunched");
    assert_eq!(m.apps().next().unwrap().retries, 0);
    // The steady executor fails after all: one failure is not yet the end.
    let failed = exec_state("app-5-0000", 0, ExecutorState::Failed, Some(1));
    let out = m.step_stored(msg(1, failed), 6_000);
    assert!(!removed(&out, "FAILED"));
    assert_eq!(m.apps().next().unwrap().retries, 1);
}

/// With -1 (unlimited) an application keeps relaunching, but never faster than the capped
/// backoff.
#[test]
fn unlimited_retries_relaunch_at_the_capped_backoff() {
    let (mut m, mut launched) = failing_app(None);
    let mut now = 20;
    for _ in 0..30 {
        let out = fail_at_once(&mut m, &launched, now);
        assert!(!removed(&out, "FAILED"));
        let failed_at = now;
        launched = Vec::new();
        while launched.is_empty() {
            now += 10;
            launched = launches(&tick(&mut m, now));
        }
        assert!(now - failed_at <= MAX_RELAUNCH_BACKOFF_MS);
    }
    assert_eq!(m.apps().next().unwrap().state, AppState::Running);
    fail_at_once(&mut m, &launched, now);
    assert!(launches(&tick(&mut m, now + 3_190)).is_empty());
    assert_eq!(launches(&tick(&mut m, now + 3_200)).len(), 2);
}

#[test]
fn a_new_master_adopts_running_executors_and_the_returning_client() {
    let mut m = MasterCore::new(settings());
    // Standby: the worker and the client are connected and known by id.
    m.step_stored(msg(1, register("w1")), 0);
    let client = ToMaster::RegisterApplication {
        desc: AppDesc {
            name: "job".into(),
            command: vec!["run".into()],
            max_cores: Some(1),
            executor_cores: 1,
            executor_memory_mb: 256,
            user: String::new(),
        },
        app_id: Some("app-5-0000".into()),
    };
    m.step_stored(msg(9, client.clone()), 0);
    let stored = StoredApp {
        id: "app-5-0000".into(),
        desc: AppDesc {
            name: "job".into(),
            command: vec!["run".into()],
            max_cores: Some(1),
            executor_cores: 1,
            executor_memory_mb: 256,
            user: String::new(),
        },
        wanted: 1,
        completed: 0,
        next_exec: 1,
        submitted_ms: 0,
    };
    let out = m.step_stored(
        Input::Elected {
            epoch: 8,
            stored: vec![spec("w1")],
            apps: vec![stored],
            drivers: vec![],
        },
        100,
    );
    assert_eq!(
        out.len(),
        2,
        "MasterChanged to the client and the worker: {out:?}"
    );
    assert_eq!(m.apps().next().unwrap().state, AppState::Unknown);
    let running = vec![ExecutorRef {
        app_id: "app-5-0000".into(),
        exec_id: 0,
        cores: 1,
        memory_mb: 256,
    }];
    let out = m.step_stored(
        msg(
            1,
            ToMaster::WorkerSchedulerStateResponse {
                worker_id: "w1".into(),
                executors: running,
                drivers: vec![],
            },
        ),
        110,
    );
    assert!(
        launches(&out).is_empty(),
        "the running executor is adopted, not replaced or killed"
    );
    assert_eq!(
        m.state(),
        RecoveryState::Recovering,
        "the client has not answered yet"
    );
    let out = m.step_stored(
        msg(
            9,
            ToMaster::MasterChangeAcknowledged {
                app_id: "app-5-0000".into(),
            },
        ),
        120,
    );
    assert!(out.contains(&Output::RecoveryComplete { took_ms: 20 }));
    let a = m.apps().next().unwrap();
    assert_eq!((a.state, m.used("w1")), (AppState::Running, (1, 256)));
    // The executor ends under the new master: FINISHED.
    let out = m.step_stored(
        msg(
            1,
            exec_state("app-5-0000", 0, ExecutorState::Exited, Some(0)),
        ),
        130,
    );
    assert!(out.contains(&Output::ForgetApp("app-5-0000".into())));
}

#[test]
fn a_client_that_disconnects_ends_its_application_and_its_executors() {
    let mut m = alive_with_two_workers();
    m.step_stored(msg(9, app(Some(1), 256)), 10);
    let out = m.step_stored(Input::Disconnected(9), 20);
    assert!(out.contains(&Output::Send {
        conn: 1,
        msg: FromMaster::KillExecutor {
            app_id: "app-5-0000".into(),
            exec_id: 0,
            epoch: 5
        }
    }));
    assert_eq!(m.apps().next().unwrap().state, AppState::Finished);
}

#[test]
fn the_kill_action_kills_the_application_and_its_executors() {
    let mut m = alive_with_two_workers();
    m.step_stored(msg(9, app(Some(1), 256)), 10);
    let out = m.step_stored(Input::KillApp("app-5-0000".into()), 20);
    assert!(out.contains(&Output::Send {
        conn: 9,
        msg: FromMaster::ApplicationRemoved {
            state: "KILLED".into()
        }
    }));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            conn: 1,
            msg: FromMaster::KillExecutor { .. }
        }
    )));
    assert_eq!(m.apps().next().unwrap().state, AppState::Killed);
    assert_eq!(m.used("w1"), (0, 0));
}

fn driver(supervise: bool) -> ToMaster {
    ToMaster::RequestSubmitDriver(DriverDesc {
        command: vec!["drive".into()],
        cores: 1,
        memory_mb: 128,
        supervise,
    })
}

fn driver_launches(out: &[Output]) -> Vec<ConnId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                conn,
                msg: FromMaster::LaunchDriver { .. },
            } => Some(*conn),
            _ => None,
        })
        .collect()
}

#[test]
fn drivers_run_on_workers_round_robin_and_hold_resources_until_they_end() {
    let mut m = alive_with_two_workers();
    let out = m.step_stored(msg(9, driver(false)), 10);
    assert!(out.contains(&Output::Send {
        conn: 9,
        msg: FromMaster::SubmitDriverResponse {
            driver_id: Some("driver-5-0000".into()),
            message: "Driver successfully submitted as driver-5-0000".into()
        }
    }));
    assert_eq!(driver_launches(&out), vec![1]);
    assert_eq!(
        driver_launches(&m.step_stored(msg(9, driver(false)), 11)),
        vec![2],
        "round-robin"
    );
    assert_eq!((m.used("w1"), m.used("w2")), ((1, 128), (1, 128)));
    let done = ToMaster::DriverStateChanged {
        driver_id: "driver-5-0000".into(),
        state: DriverState::Finished,
        exit_code: Some(0),
    };
    let out = m.step_stored(msg(1, done), 20);
    assert!(out.contains(&Output::ForgetDriver("driver-5-0000".into())));
    assert_eq!(m.used("w1"), (0, 0));
}

#[test]
fn a_supervised_driver_is_relaunched_when_it_fails_or_its_worker_is_lost() {
    let mut m = alive_with_two_workers();
    m.step_stored(msg(9, driver(true)), 10);
    let failed = ToMaster::DriverStateChanged {
        driver_id: "driver-5-0000".into(),
        state: DriverState::Failed,
        exit_code: Some(3),
    };
    let out = m.step_stored(msg(1, failed), 20);
    assert_eq!(
        driver_launches(&out),
        vec![2],
        "relaunched, on the next worker"
    );
    // Its worker goes silent: it is relaunched on the other one.
    m.step_stored(
        msg(
            1,
            ToMaster::Heartbeat {
                worker_id: "w1".into(),
            },
        ),
        1500,
    );
    let out = m.step_stored(Input::Tick, 1100 + 1000);
    assert_eq!(driver_launches(&out), vec![1], "{out:?}");
    // An unsupervised driver on a lost worker ends in ERROR.
    let mut m = alive_with_two_workers();
    m.step_stored(msg(9, driver(false)), 10);
    m.step_stored(
        msg(
            2,
            ToMaster::Heartbeat {
                worker_id: "w2".into(),
            },
        ),
        1500,
    );
    let out = m.step_stored(Input::Tick, 2100);
    assert!(
        out.contains(&Output::ForgetDriver("driver-5-0000".into())),
        "{out:?}"
    );
    assert_eq!(m.drivers().next().unwrap().state, DriverState::Error);
}

#[test]
fn default_cores_caps_applications_without_a_maximum() {
    let mut m = MasterCore::new(MasterSettings {
        default_cores: Some(1),
        ..settings()
    });
    m.step_stored(
        Input::Elected {
            epoch: 5,
            stored: vec![],
            apps: vec![],
            drivers: vec![],
        },
        0,
    );
    m.step_stored(msg(1, register("w1")), 0);
    m.step_stored(msg(2, register("w2")), 0);
    let out = m.step_stored(msg(9, app(None, 256)), 10);
    assert_eq!(launches(&out).len(), 1, "one core, not all four");
    let out = m.step_stored(msg(8, app(Some(2), 256)), 11);
    assert_eq!(launches(&out).len(), 2, "an explicit maximum wins");
}

/// An executor that ran 5 s before failing proved itself even with no tick in between (it
/// counts as one failure after a reset, as in Spark), and executors lost with their worker do
/// not count.
#[test]
fn failures_after_a_proven_run_or_with_a_lost_worker_count_as_spark_counts_them() {
    let (mut m, _) = failing_app(Some(3));
    let running = exec_state("app-5-0000", 0, ExecutorState::Running, None);
    m.step_stored(msg(1, running), 10);
    fail_at_once(&mut m, &[(2, 1)], 20);
    assert_eq!(m.apps().next().unwrap().retries, 1);
    let failed = exec_state("app-5-0000", 0, ExecutorState::Failed, Some(1));
    m.step_stored(msg(1, failed), 6_000);
    assert_eq!(
        m.apps().next().unwrap().retries,
        1,
        "reset, then one failure"
    );
    let relaunched = launches(&tick(&mut m, 6_200));
    assert_eq!(relaunched, vec![(1, 2), (2, 3)]);
    // Worker w2 goes silent past the timeout: its executor is LOST, not failed.
    let beat = ToMaster::Heartbeat {
        worker_id: "w1".into(),
    };
    m.step_stored(msg(1, beat), 7_300);
    m.step_stored(Input::Tick, 7_300);
    let a = m.apps().next().unwrap();
    assert_eq!(a.executors[&3].state, ExecutorState::Lost);
    assert_eq!(a.retries, 1);
}

fn elected(m: &mut MasterCore, epoch: MasterEpoch, stored: Vec<WorkerSpec>) -> Vec<Output> {
    m.step(
        Input::Elected {
            epoch,
            stored,
            apps: vec![],
            drivers: vec![],
        },
        0,
    )
}

/// Persist before you reply: the registration is answered once its record is stored, and
/// what follows on that connection waits behind the answer.
#[test]
fn a_registration_is_answered_only_once_its_record_is_stored() {
    let mut m = MasterCore::new(settings());
    elected(&mut m, 5, vec![]);
    assert_eq!(
        m.step(msg(1, register("w1")), 10),
        vec![Output::PersistWorker(spec("w1"))]
    );
    assert_eq!(m.unstored(), Some(1));
    let out = m.step(msg(9, app(Some(1), 256)), 20);
    assert!(
        out.iter().all(|o| matches!(o, Output::PersistApp(_))),
        "records only: the answer and the launch wait behind w1's record: {out:?}"
    );
    let out = m.step(Input::Stored { epoch: 5, seq: 1 }, 30);
    assert_eq!(
        out[0],
        Output::Send {
            conn: 1,
            msg: registered(5, false)
        }
    );
    assert_eq!(launches(&out), vec![(1, 0)], "then the launch, in order");
    assert_eq!(
        out.len(),
        2,
        "the client's answer waits for its record: {out:?}"
    );
    let out = m.step(Input::Stored { epoch: 5, seq: 3 }, 50);
    let to_client: Vec<&FromMaster> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn: 9, msg } => Some(msg),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            &to_client[..],
            [
                FromMaster::RegisteredApplication { .. },
                FromMaster::ExecutorUpdated { .. }
            ]
        ),
        "the answer first, then what followed it: {to_client:?}"
    );
    assert_eq!(m.unstored(), None);
}

/// Fencing: an acknowledgement of changes issued under an older epoch releases nothing that
/// waits under the current one, and a deposed master sends nothing it held.
#[test]
fn a_stale_epochs_store_acknowledgement_is_fenced() {
    let mut m = MasterCore::new(settings());
    elected(&mut m, 5, vec![]);
    m.step(msg(1, register("w1")), 10);
    m.step(Input::Deposed, 20);
    elected(&mut m, 9, vec![]);
    assert_eq!(
        m.step(msg(2, register("w2")), 30),
        vec![Output::PersistWorker(spec("w2"))]
    );
    assert_eq!(m.step(Input::Stored { epoch: 5, seq: 1 }, 40), vec![]);
    assert_eq!(
        m.step(Input::Stored { epoch: 9, seq: 1 }, 50),
        vec![Output::Send {
            conn: 2,
            msg: registered(9, false)
        }],
        "only w2's answer, under epoch 9; w1's died with epoch 5"
    );
    m.step(msg(3, register("w3")), 60);
    m.step(Input::Deposed, 70);
    assert_eq!(m.step(Input::Stored { epoch: 9, seq: 2 }, 80), vec![]);
}

/// Ride-through: with its ensemble connection lost but its session alive, the master stays
/// ALIVE and decides nothing (no worker timeout, no scheduling); once reconnected it acts
/// again; only the session's loss deposes it.
#[test]
fn a_lost_connection_suspends_the_alive_master_and_only_the_session_loss_deposes_it() {
    let mut m = alive_with_two_workers();
    assert_eq!(m.step(Input::Suspended, 100), vec![]);
    assert_eq!((m.state(), m.suspended()), (RecoveryState::Alive, true));
    // Silent far past the worker timeout: nobody is declared DEAD while suspended.
    assert_eq!(m.step(Input::Tick, 5_000), vec![]);
    assert_eq!(state_of(&m, "w1"), WorkerState::Alive);
    let out = m.step_stored(msg(9, app(Some(1), 256)), 5_010);
    assert!(launches(&out).is_empty(), "nothing scheduled: {out:?}");
    assert!(m
        .step(Input::KillApp("app-5-0000".into()), 5_020)
        .is_empty());
    m.step(msg(1, heartbeat("w1")), 5_030);
    m.step(msg(2, heartbeat("w2")), 5_030);
    let out = m.step(Input::Resumed, 5_040);
    assert_eq!(launches(&out).len(), 1, "scheduling resumes: {out:?}");
    assert_eq!((m.state(), m.suspended()), (RecoveryState::Alive, false));
    m.step(Input::Suspended, 6_000);
    assert_eq!(m.step(Input::Deposed, 6_100), vec![]);
    assert_eq!((m.state(), m.suspended()), (RecoveryState::Standby, false));
}

/// A worker restarted on the same host and port (a new id) replaces its predecessor at once:
/// the old one is DEAD and its record forgotten, not waited for.
#[test]
fn a_restarted_worker_replaces_its_predecessor_on_the_same_address() {
    let mut m = MasterCore::new(settings());
    let old = spec("worker-old");
    elected(&mut m, 5, vec![old.clone()]);
    assert_eq!(m.state(), RecoveryState::Recovering);
    let new = WorkerSpec {
        id: "worker-new".into(),
        ..old
    };
    let out = m.step_stored(msg(1, ToMaster::RegisterWorker(new.clone())), 10);
    assert!(out.contains(&Output::ForgetWorker("worker-old".into())));
    assert!(out.contains(&Output::PersistWorker(new)));
    assert_eq!(state_of(&m, "worker-old"), WorkerState::Dead);
    assert_eq!(
        m.state(),
        RecoveryState::Alive,
        "recovery ends at once: nobody left to wait for"
    );
}

/// A driver killed with `kill -9` while this master was STANDBY: its connection here closed,
/// so once elected the master finishes the application at once (forgetting its record)
/// instead of waiting the recovery timeout for an answer that cannot come.
#[test]
fn an_application_whose_driver_is_gone_is_not_waited_for_by_the_next_master() {
    let mut m = MasterCore::new(settings());
    let desc = AppDesc {
        name: "job".into(),
        command: vec!["run".into()],
        max_cores: Some(1),
        executor_cores: 1,
        executor_memory_mb: 256,
        user: String::new(),
    };
    let again = ToMaster::RegisterApplication {
        desc: desc.clone(),
        app_id: Some("app-5-0000".into()),
    };
    assert_eq!(m.step(msg(9, again), 0), in_standby(9));
    m.step(Input::Disconnected(9), 10);
    let stored = StoredApp {
        id: "app-5-0000".into(),
        desc,
        wanted: 1,
        completed: 0,
        next_exec: 1,
        submitted_ms: 0,
    };
    let out = m.step(
        Input::Elected {
            epoch: 9,
            stored: vec![],
            apps: vec![stored],
            drivers: vec![],
        },
        20,
    );
    assert!(
        out.contains(&Output::ForgetApp("app-5-0000".into())),
        "{out:?}"
    );
    assert_eq!(m.apps().next().map(|a| a.state), Some(AppState::Finished));
    assert_eq!(m.state(), RecoveryState::Alive, "nothing left to wait for");
}

#[test]
fn retire_drops_the_oldest_tenth_once_the_retained_number_is_kept() {
    let mut order = std::collections::VecDeque::new();
    let mut dropped = Vec::new();
    for n in 0..25 {
        dropped.extend(retire(&mut order, &format!("a{n}"), 20));
    }
    // At 20 kept, each newcomer makes the two oldest go (20 / 10).
    assert_eq!(order.len(), 19);
    assert_eq!(dropped, ["a0", "a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(order.front().map(String::as_str), Some("a6"));
    // Fewer than ten retained: one at a time; none retained keeps only the newest.
    let mut few = std::collections::VecDeque::new();
    for n in 0..5 {
        retire(&mut few, &n.to_string(), 3);
    }
    assert_eq!(few, ["2", "3", "4"]);
    let mut none = std::collections::VecDeque::new();
    retire(&mut none, "x", 0);
    assert_eq!(retire(&mut none, "y", 0), ["x"]);
}

#[test]
fn ended_applications_beyond_retained_applications_are_forgotten() {
    let mut m = MasterCore::new(MasterSettings {
        retained_apps: 2,
        ..settings()
    });
    elected(&mut m, 5, vec![]);
    m.step_stored(msg(1, register("w1")), 0);
    for n in 0..4u64 {
        m.step_stored(msg(10 + n, app(Some(1), 256)), 10 * n);
        m.step_stored(Input::Disconnected(10 + n), 10 * n + 5);
    }
    let ids: Vec<&str> = m.apps().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        ["app-5-0002", "app-5-0003"],
        "the two newest ended ones"
    );
    // A running application is never dropped, however many end after it.
    m.step_stored(msg(20, app(Some(1), 256)), 100);
    for n in 0..3u64 {
        m.step_stored(msg(30 + n, app(Some(1), 256)), 110 + n);
        m.step_stored(Input::Disconnected(30 + n), 120 + n);
    }
    assert!(m.apps().any(|a| a.id == "app-5-0004" && a.is_active()));
    assert_eq!(m.apps().filter(|a| !a.is_active()).count(), 2);
}

#[test]
fn ended_drivers_beyond_retained_drivers_are_forgotten() {
    let mut m = MasterCore::new(MasterSettings {
        retained_drivers: 1,
        ..settings()
    });
    elected(&mut m, 5, vec![]);
    m.step_stored(msg(1, register("w1")), 0);
    for n in 0..3u32 {
        m.step_stored(msg(9, driver(false)), 10);
        let done = ToMaster::DriverStateChanged {
            driver_id: format!("driver-5-{n:04}"),
            state: DriverState::Finished,
            exit_code: Some(0),
        };
        m.step_stored(msg(1, done), 20);
    }
    let ids: Vec<&str> = m.drivers().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["driver-5-0002"]);
}

#[test]
fn an_application_is_dated_and_an_ended_one_shows_the_cores_it_held() {
    let mut m = alive_with_two_workers();
    m.step_stored(msg(9, app(Some(3), 256)), 10);
    let a = m.apps().next().unwrap();
    assert_eq!((a.submitted_ms, a.ended_ms), (1_000_010, None));
    assert_eq!((a.live_cores(), a.shown_cores()), (3, 3));
    m.step_stored(Input::Disconnected(9), 70);
    let a = m.apps().next().unwrap();
    assert_eq!(a.ended_ms, Some(1_000_070));
    assert_eq!((a.live_cores(), a.shown_cores()), (0, 3));
    assert_eq!(a.stored().submitted_ms, 1_000_010, "dated in its record");
}

/// The scale of the recovery benchmark: 1,000 applications wait while 1,000 workers
/// register one by one. A scheduling pass once cost applications x workers x executors (the
/// master stopped answering for minutes); every application now gets its executors as the
/// workers arrive, in one pass per registration that skips what no worker can host.
#[test]
fn a_thousand_waiting_applications_are_placed_as_a_thousand_workers_arrive() {
    let mut m = MasterCore::new(settings());
    elected(&mut m, 5, vec![]);
    for a in 0..1000 {
        m.step_stored(msg(10_000 + a, app(Some(2), 256)), 1);
    }
    let launched = register_many_workers(&mut m, 1000, |out| launches(out).len());
    assert_eq!(launched, 2000);
    assert!(
        m.apps().all(|a| a.live_cores() == 2),
        "every app holds its 2 cores"
    );
    assert!(m.workers().all(|w| m.used(&w.spec.id) == (2, 512)));
}

/// The same for drivers (which REST clients may queue by the thousand): each waiting driver
/// finds a worker in one pass over a usage table, not a sum over every executor per worker.
#[test]
fn a_thousand_waiting_drivers_are_placed_as_a_thousand_workers_arrive() {
    let mut m = MasterCore::new(settings());
    elected(&mut m, 5, vec![]);
    for d in 0..2000 {
        m.step_stored(msg(10_000 + d, driver(false)), 1);
    }
    let launched = register_many_workers(&mut m, 1000, |out| driver_launches(out).len());
    assert_eq!(launched, 2000);
    assert!(m.workers().all(|w| m.used(&w.spec.id) == (2, 256)));
}

/// Registers `n` workers of 2 cores and 512 MiB one by one; sums `count` over the outputs.
fn register_many_workers(m: &mut MasterCore, n: u64, count: impl Fn(&[Output]) -> usize) -> usize {
    (0..n)
        .map(|w| {
            let spec = WorkerSpec {
                id: format!("worker-{w}"),
                host: format!("h{w}"),
                port: 7000,
                cores: 2,
                memory_mb: 512,
                webui: format!("http://h{w}:8081"),
            };
            count(&m.step_stored(msg(w, ToMaster::RegisterWorker(spec)), 2))
        })
        .sum()
}
