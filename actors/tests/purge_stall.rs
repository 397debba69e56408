//! What removing a big file does to the log's fsyncs on this disk: files of a purged log's
//! size are written and fsynced first; then a log appends a record and fdatasyncs it in a
//! loop, while every second one of the files is removed, alternately at once
//! (`fs::remove_file`) and a step at a time (the storage's own `remove_paced`). Prints the
//! fsyncs' latency during each kind of removal, and between removals.
//!
//! `PURGE_STALL_DIR=/data/dir cargo test --release -p ensemble-actors --test purge_stall -- --ignored --nocapture`
//! (`PURGE_STALL_MB`, default 64, sizes the files; `PURGE_STALL_FILES`, default 60, counts
//! them; `PURGE_STALL_MODE=at-once` or `paced` removes every file the one way, to see the
//! disk's stalls in the seconds after each kind of removal too.)

use ensemble_actors::storage::remove_paced;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the remover is doing: nothing, or removing a file at once or a step at a time.
const IDLE: u8 = 0;
const AT_ONCE: u8 = 1;
const PACED: u8 = 2;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes and fsyncs a file of `mb` MiB at `path`.
fn written(path: &Path, mb: u64) {
    let mut f = File::create(path).expect("a new file");
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..mb {
        f.write_all(&chunk).expect("a chunk");
    }
    f.sync_all().expect("fsync");
}

/// Every second, removes one of `files`, alternating the two ways unless `mode` names one.
fn remover(files: Vec<PathBuf>, mode: Option<String>, state: Arc<AtomicU8>) {
    let mut paced = mode.as_deref() == Some("paced");
    for path in files {
        std::thread::sleep(Duration::from_secs(1));
        state.store(if paced { PACED } else { AT_ONCE }, Ordering::SeqCst);
        if paced {
            remove_paced(&path, true).expect("removed a step at a time");
        } else {
            std::fs::remove_file(&path).expect("removed");
        }
        state.store(IDLE, Ordering::SeqCst);
        if mode.is_none() {
            paced = !paced;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
}

/// `p` (0..=1) of sorted `v`, in ms.
fn at(v: &[f64], p: f64) -> f64 {
    v.get(((v.len().max(1) - 1) as f64 * p) as usize)
        .copied()
        .unwrap_or(0.0)
}

#[test]
#[ignore = "a benchmark: run it with --ignored --nocapture"]
fn log_fsyncs_while_big_files_are_removed() {
    let (mb, count) = (
        env_or("PURGE_STALL_MB", 64),
        env_or("PURGE_STALL_FILES", 60),
    );
    let tmp = tempfile::tempdir_in(std::env::var("PURGE_STALL_DIR").unwrap_or("/tmp".into()))
        .expect("a temporary directory");
    let files: Vec<PathBuf> = (0..count)
        .map(|i| tmp.path().join(format!("log.{i:016x}")))
        .collect();
    for path in &files {
        written(path, mb);
    }
    let state = Arc::new(AtomicU8::new(IDLE));
    let shared = state.clone();
    let mode = std::env::var("PURGE_STALL_MODE").ok();
    let removing = std::thread::spawn(move || remover(files, mode, shared));
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(tmp.path().join("log"))
        .expect("the log");
    let record = vec![1u8; 1200];
    let mut latencies: [Vec<f64>; 3] = Default::default();
    while !removing.is_finished() {
        let before = state.load(Ordering::SeqCst);
        let t = Instant::now();
        log.write_all(&record).expect("a record");
        log.sync_data().expect("fdatasync");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let during = before.max(state.load(Ordering::SeqCst));
        latencies[usize::from(during)].push(ms);
    }
    removing.join().expect("the remover");
    println!("{count} removals of {mb} MiB files, log fsync latency (ms):");
    for (name, v) in ["no removal", "removal at once", "removal a step at a time"]
        .iter()
        .zip(latencies.iter_mut())
    {
        v.sort_by(f64::total_cmp);
        let slow = v.iter().filter(|ms| **ms > 10.0).count();
        println!(
            "  during {name}: {} fsyncs, p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}, {slow} over 10 ms",
            v.len(),
            at(v, 0.5),
            at(v, 0.99),
            at(v, 0.999),
            at(v, 1.0)
        );
    }
    assert!(
        latencies.iter().all(|v| !v.is_empty()),
        "every state was seen"
    );
}
