//! Faults of ensemble's Spark-style applications, on real processes beside a real 3-server
//! ensemble: executors that fail at once end their application FAILED after
//! spark.deploy.maxExecutorRetries instead of relaunching forever, and executors die with their
//! worker, whether it is `kill -9`ed or stopped cleanly.

use ensemble_node::local_cluster::wait_until;
use ensemble_tests::spark::{Proc, Topology};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// `spark://` URL of a topology's three masters.
fn masters(t: &Topology) -> String {
    let list: Vec<String> = (1..=3)
        .map(|m| format!("{}:7077", t.master_ip(m)))
        .collect();
    format!("spark://{}", list.join(","))
}

/// Starts `ensemble submit` of `script` (run by `sh -c`) with `cores` executor cores in all.
fn submit(t: &Topology, cores: u32, script: &str) -> Proc {
    submit_command(t, cores, &["sh", "-c", script])
}

/// Starts `ensemble submit` of `command` with `cores` executor cores in all.
fn submit_command(t: &Topology, cores: u32, command: &[&str]) -> Proc {
    let cores = cores.to_string();
    let args = [
        "submit",
        "--master",
        &masters(t),
        "--total-executor-cores",
        &cores,
        "--executor-memory",
        "256m",
        "--",
    ];
    let args: Vec<String> = args.iter().chain(command).map(|a| a.to_string()).collect();
    Proc::start(EXE.as_ref(), t.dir(), "submit", &args)
}

/// The executor directories (`<work-dir>/<app>/<exec>`) of worker `w`.
fn executor_dirs(t: &Topology, w: usize) -> Vec<PathBuf> {
    let apps = std::fs::read_dir(t.dir().join(format!("work-{w}")))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    apps.iter()
        .flat_map(|app| std::fs::read_dir(app).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect()
}

/// Whether process `pid` runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, s)| s.starts_with(" Z"))
    })
}

/// The pid an executor wrote to `file`, once it did.
fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Executors that exit 3 at once on two workers: the application ends FAILED within seconds,
/// with no more executors launched than the retries (4 here) plus the two in flight, and the
/// submitter exits non-zero showing where the failed executor's stderr is and how it ends.
#[test]
fn executors_failing_at_once_fail_their_application_after_the_retries() {
    let t = Topology::start(EXE.as_ref(), 80, "spark.deploy.maxExecutorRetries 4\n");
    t.wait_alive_with(2, Duration::from_secs(30));
    let started = Instant::now();
    let mut driver = submit(&t, 2, "echo \"no input at $EXECUTOR_ID\" >&2; exit 3");
    let status = driver.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    let out = driver.log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{out}\n{}",
        t.logs()
    );
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("(exit 3)"), "{out}");
    assert!(out.contains("/stderr on its worker, ending:"), "{out}");
    assert!(out.contains("no input at "), "{out}");
    let launched = executor_dirs(&t, 1).len() + executor_dirs(&t, 2).len();
    assert!(
        (4..=6).contains(&launched),
        "{launched} executors launched\n{out}"
    );
    println!("FAILED after {launched} executors in {took:?}");
    // Nothing more is launched once it FAILED: an absence, so it is watched over a window (the
    // relaunch backoff is at most 3.2 s; the core's unit tests pin the exact count) rather than
    // waited for.
    std::thread::sleep(Duration::from_millis(500));
    let later = executor_dirs(&t, 1).len() + executor_dirs(&t, 2).len();
    assert_eq!(later, launched);
}

/// An executor command that cannot start fails like one that exits non-zero, and the
/// submitter says why.
#[test]
fn an_executor_that_cannot_start_fails_its_application_with_the_reason() {
    let t = Topology::start(EXE.as_ref(), 82, "spark.deploy.maxExecutorRetries 2\n");
    t.wait_alive_with(2, Duration::from_secs(30));
    let mut driver = submit_command(&t, 1, &["/nonexistent/executor"]);
    let status = driver.wait_exit(Duration::from_secs(30));
    let out = driver.log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{out}\n{}",
        t.logs()
    );
    assert!(out.contains("(exit 127)"), "{out}");
    assert!(out.contains("/nonexistent/executor: not found"), "{out}");
    let launched = executor_dirs(&t, 1).len() + executor_dirs(&t, 2).len();
    assert!((2..=3).contains(&launched), "{launched} launched\n{out}");
}

/// One long executor on each worker, its work in a child process: `kill -9` of the first worker
/// kills that within seconds (parent-death signal to the executor's guard, which kills its
/// group), and SIGTERM to the second stops it with its executor.
#[test]
fn executors_die_with_their_worker() {
    let mut t = Topology::start(EXE.as_ref(), 81, "");
    t.wait_alive_with(2, Duration::from_secs(30));
    let pids = t.dir().join("pid-");
    // The long process is the executor's child: it must die with the worker too.
    let script = format!("sleep 600 & echo $! > {}$EXECUTOR_ID; wait", pids.display());
    let driver = submit(&t, 2, &script);
    let pid_file = |e: u32| PathBuf::from(format!("{}{e}", pids.display()));
    wait_until("both executors running", Duration::from_secs(20), || {
        (0..2).all(|e| pid_in(&pid_file(e)).is_some_and(running))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", driver.log(), t.logs()));
    // Which worker runs which executor: its directory says.
    let on_worker = |w: usize, e: u32| {
        executor_dirs(&t, w)
            .iter()
            .any(|d| d.file_name().is_some_and(|n| n == e.to_string().as_str()))
    };
    let first = (0..2)
        .find(|e| on_worker(1, *e))
        .expect("an executor on worker 1");
    let second = 1 - first;
    assert!(on_worker(2, second), "spread out: one executor per worker");
    let (victim, survivor) = (
        pid_in(&pid_file(first)).expect("a pid"),
        pid_in(&pid_file(second)).expect("a pid"),
    );
    t.workers[0] = None;
    wait_until(
        "the kill -9ed worker's executor to die",
        Duration::from_secs(5),
        || !running(victim),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
    assert!(running(survivor), "the other worker's executor runs on");
    let worker = t.workers[1].as_mut().expect("worker 2 runs");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &worker.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let stopped = worker.wait_exit(Duration::from_secs(10));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "{stopped:?}\n{}",
        worker.log()
    );
    wait_until(
        "the stopped worker's executor to die",
        Duration::from_secs(5),
        || !running(survivor),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", t.logs()));
}
