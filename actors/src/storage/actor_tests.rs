//! The storage writer's restart policy: a restart keeps its queue and reloads the log tail,
//! and fails when the disk no longer holds what it reported durable.

use super::super::test_writer::TestWriter;
use super::super::{files, recover, WriterEvent, WriterSettings};
use super::{PersistToken, StorageOp};
use ensemble_messages::{Txn, Zxid};

fn txn(c: u32) -> Txn {
    Txn {
        zxid: Zxid::new(1, c),
        origin: 1,
        request_id: u64::from(c),
        body: vec![c as u8; 10],
    }
}

fn append(w: &TestWriter, from: u32, to: u32) {
    for c in from..to {
        w.submit(
            StorageOp::Append(vec![txn(c)]),
            Some(PersistToken::Txns(Zxid::new(1, c))),
        );
    }
}

fn writer(dir: &std::path::Path) -> TestWriter {
    TestWriter::start(WriterSettings {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        fsync: true,
        fsync_warning: std::time::Duration::from_secs(1),
        snap_retain_count: 3,
    })
    .unwrap()
}

#[test]
fn a_restart_keeps_the_queue_and_the_log_goes_on_in_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path());
    w.submit(StorageOp::AcceptedEpoch(1), None);
    append(&w, 1, 25);
    w.flush();
    // Queued but not yet written when the failure comes.
    append(&w, 25, 50);
    w.fail();
    // Queued behind the failure: carried out after the restart, in order.
    append(&w, 50, 100);
    w.flush();
    let events = w.events.lock().unwrap().clone();
    assert!(
        !events.iter().any(|e| matches!(e, WriterEvent::Failed(_))),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&WriterEvent::Durable(PersistToken::Txns(Zxid::new(1, 99))))
    );
    drop(w);
    let logs = files::list_logs(&files::log_dir(dir.path())).unwrap();
    assert!(logs.len() >= 2, "the restart closed the log file: {logs:?}");
    let r = recover(dir.path(), dir.path()).unwrap();
    let zxids: Vec<u32> = r.log.iter().map(|t| t.zxid.counter()).collect();
    assert_eq!(zxids, (1..100).collect::<Vec<_>>());
}

#[test]
fn a_restart_that_finds_less_than_it_reported_durable_fails() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path());
    w.submit(StorageOp::AcceptedEpoch(1), None);
    append(&w, 1, 10);
    w.flush();
    for (_, path) in files::list_logs(&files::log_dir(dir.path())).unwrap() {
        std::fs::remove_file(path).unwrap();
    }
    w.fail();
    w.flush();
    let events = w.events.lock().unwrap().clone();
    let failed = events.iter().find_map(|e| match e {
        WriterEvent::Failed(why) => Some(why.clone()),
        _ => None,
    });
    assert!(
        failed
            .as_deref()
            .is_some_and(|w| w.contains("already reported durable")),
        "{events:?}"
    );
}

/// Niceness of each of this process's threads, from /proc.
fn thread_niceness() -> Vec<i64> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name's closing parenthesis: state is the first, nice
            // (field 19 of proc(5)) the seventeenth.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

#[test]
fn background_snapshots_run_on_a_thread_of_lower_priority() {
    // SAFETY: getpriority takes and returns integers only; 0 is the calling thread.
    let ours = i64::from(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
    let lowered = (ours + i64::from(super::SNAPSHOT_NICENESS)).min(19);
    let dir = tempfile::tempdir().unwrap();
    let _w = writer(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !thread_niceness().contains(&lowered) {
        assert!(
            std::time::Instant::now() < deadline,
            "no thread at niceness {lowered}: {:?}",
            thread_niceness()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// As ZooKeeper's "too busy to snap": a snapshot asked for while the previous one is still
/// being written is skipped, rather than queued with a version of the tree it would hold.
#[test]
fn a_snapshot_asked_for_while_one_is_written_is_skipped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path());
    append(&w, 1, 4);
    w.flush();
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (began, started) = std::sync::mpsc::channel::<()>();
    let image = |last: u32| vec![last as u8; 8];
    let (first, counted) = (image(3), runs.clone());
    w.snapshot_by(
        Zxid::new(1, 3),
        Box::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = began.send(());
            let _ = held.recv();
            Box::new(first)
        }),
    );
    started
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the first snapshot started");
    let (second, counted) = (image(3), runs.clone());
    w.snapshot_by(
        Zxid::new(1, 3),
        Box::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::new(second)
        }),
    );
    // The writer handles its messages in order: once a later write is durable, it has seen
    // the second snapshot, and only then may the first one end.
    append(&w, 4, 5);
    let durable = WriterEvent::Durable(PersistToken::Txns(Zxid::new(1, 4)));
    assert!(
        w.wait_for(&durable),
        "the write after the snapshots was reported"
    );
    release.send(()).unwrap();
    w.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the second was skipped");
    // Once the first is written, the next one is taken again.
    append(&w, 5, 6);
    w.flush();
    w.snapshot(Zxid::new(1, 5), image(5));
    w.flush();
    let snaps = files::list_snapshots(&files::snapshot_dir(dir.path())).unwrap();
    let zxids: Vec<Zxid> = snaps.iter().map(|(z, _)| *z).collect();
    assert_eq!(zxids, [Zxid::new(1, 3), Zxid::new(1, 5)]);
}

/// While the quorum peer reads the disk back after a restart, a snapshot asked for is skipped:
/// no log roll, no snapshot file, no purge; once released, snapshots are taken again.
#[test]
fn a_snapshot_asked_for_while_held_is_skipped_without_touching_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer(dir.path());
    append(&w, 1, 4);
    w.flush();
    let logs = |d: &std::path::Path| files::list_logs(&files::log_dir(d)).unwrap();
    let before = logs(dir.path());
    w.hold_snapshots(true);
    w.snapshot(Zxid::new(1, 3), vec![3; 8]);
    w.flush();
    assert_eq!(logs(dir.path()), before, "no log rolled");
    let snaps = || files::list_snapshots(&files::snapshot_dir(dir.path())).unwrap();
    assert!(snaps().is_empty(), "no snapshot written");
    w.hold_snapshots(false);
    w.snapshot(Zxid::new(1, 3), vec![3; 8]);
    w.flush();
    assert_eq!(snaps().len(), 1, "taken once released");
}

/// The snapshot thread offers its last snapshot as a base while the chain is short and
/// smaller than its budget, and asks for a whole one after a failure and a restart.
#[test]
fn the_chain_offers_a_base_until_its_caps_and_none_after_a_failure() {
    use super::{Chain, MAX_CHAIN};
    let z = |c: u32| Zxid::new(1, c);
    let restarted = Chain::default();
    assert_eq!(restarted.base(), None, "after a restart");
    // Small incremental snapshots: the count caps the chain.
    let mut chain = restarted.after(z(1), None, Some(1_000_000), 0);
    for c in 2..=(MAX_CHAIN as u32 + 1) {
        assert_eq!(chain.base(), Some(z(c - 1)));
        chain = chain.after(z(c), chain.base(), Some(100), 0);
    }
    assert_eq!(
        chain.base(),
        None,
        "a chain of {MAX_CHAIN} calls for a whole one"
    );
    // Big ones: their bytes do, once they reach the budget (here the whole snapshot's bytes).
    let whole = chain.after(z(100), None, Some(1_000), 500);
    assert_eq!(whole.base(), Some(z(100)));
    let one = whole.after(z(101), Some(z(100)), Some(600), 0);
    assert_eq!(one.base(), Some(z(101)));
    assert_eq!(one.after(z(102), Some(z(101)), Some(400), 0).base(), None);
    assert_eq!(
        whole.after(z(101), Some(z(100)), None, 0).base(),
        None,
        "after a failure"
    );
    assert_eq!(whole.after(z(101), None, None, 0).base(), None);
    assert_eq!(
        whole.after(z(101), Some(z(99)), Some(1), 0).base(),
        None,
        "another base"
    );
}

/// A whole snapshot's chain may hold between half and all of its bytes, as drawn: servers
/// that draw differently end their chains at different sizes of a growing tree.
#[test]
fn the_chain_budget_falls_between_half_and_all_of_the_whole_snapshot() {
    use super::Chain;
    let z = |c: u32| Zxid::new(1, c);
    // The fewest bytes of one incremental snapshot onto a whole one of 1,000 bytes that end
    // its chain.
    let budget = |roll: u64| {
        let whole = Chain::default().after(z(1), None, Some(1_000), roll);
        (0..=1_001u64).find(|&len| whole.after(z(2), Some(z(1)), Some(len), 0).base().is_none())
    };
    for roll in [0, 1, 250, 500, 501, 12_345, u64::MAX] {
        let b = budget(roll).unwrap();
        assert!((500..=1_000).contains(&b), "roll {roll}: {b}");
    }
    assert_eq!((budget(0), budget(500)), (Some(500), Some(1_000)));
    assert_ne!(budget(100), budget(400));
}
