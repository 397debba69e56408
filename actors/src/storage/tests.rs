//! The storage corruption matrix: each kind of damage to a server's files either recovers
//! every txn or refuses to start, never starts with less.

use super::files::{self, read_record, RecordRead};
use super::recovery::follows;
use super::test_writer::TestWriter;
use super::{recover, Recovered, SnapshotRef, WriterSettings};
use crate::storage::StorageOp;
use ensemble_messages::{Snapshot, Txn, Zxid};
use std::fs;
use std::path::{Path, PathBuf};

fn txn(zxid: Zxid) -> Txn {
    Txn {
        zxid,
        origin: 1,
        request_id: zxid.0,
        body: vec![zxid.counter() as u8; 20],
    }
}

/// A snapshot image: the zxids applied so far.
fn image(zxids: &[Zxid]) -> Vec<u8> {
    zxids.iter().flat_map(|z| z.0.to_be_bytes()).collect()
}

/// What a recovered server holds: the snapshot's zxids, then the logged ones.
fn content(r: &Recovered) -> Vec<Zxid> {
    let mut out: Vec<Zxid> = r.snapshot.as_ref().map_or(Vec::new(), |s| {
        s.image()
            .chunks(8)
            .map(|c| Zxid(u64::from_be_bytes(c.try_into().unwrap())))
            .collect()
    });
    out.extend(r.log.iter().map(|t| t.zxid));
    out
}

fn writer(dir: &Path) -> TestWriter {
    let settings = WriterSettings {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        fsync: false,
        fsync_warning: std::time::Duration::from_secs(1),
        snap_retain_count: 3,
    };
    TestWriter::start(settings).unwrap()
}

/// A server's files after 40 txns in epoch 1, none in epoch 2 and 25 in epoch 3, with a
/// snapshot every 10 txns (the newest three kept, older logs purged).
struct Fixture {
    dir: tempfile::TempDir,
    all: Vec<Zxid>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let mut all = Vec::new();
        for (epoch, count) in [(1, 40), (3, 25)] {
            w.submit(StorageOp::AcceptedEpoch(epoch), None);
            w.submit(StorageOp::CurrentEpoch(epoch), None);
            for c in 1..=count {
                let z = Zxid::new(epoch, c);
                all.push(z);
                w.submit(StorageOp::Append(vec![txn(z)]), None);
                if all.len() % 10 == 0 {
                    w.flush();
                    let state = image(&all);
                    w.snapshot(z, state);
                    w.flush();
                }
            }
        }
        w.flush();
        Fixture { dir, all }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn recover(&self) -> Result<Recovered, String> {
        recover(self.path(), self.path()).map_err(|e| e.to_string())
    }

    fn logs(&self) -> Vec<(Zxid, PathBuf)> {
        files::list_logs(&files::log_dir(self.path())).unwrap()
    }

    fn log(&self, first: Zxid) -> PathBuf {
        files::log_path(&files::log_dir(self.path()), first)
    }

    fn snapshot(&self, last: Zxid) -> PathBuf {
        files::snapshot_path(&files::snapshot_dir(self.path()), last)
    }

    fn refusal(&self) -> String {
        let e = self.recover().expect_err("recovery must refuse");
        assert!(
            e.contains("refusing to start: delete this server's dataDir and dataLogDir"),
            "{e}"
        );
        e
    }
}

/// Offsets of the records of a log file.
fn record_offsets(path: &Path) -> Vec<usize> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut offset = files::LOG_HEADER_LEN;
    while let RecordRead::Record(_, next) = read_record(&bytes, offset) {
        out.push(offset);
        offset = next;
    }
    out
}

/// The bytes of a log file up to the end of its last record, without the zeros the writer
/// keeps ahead of them.
fn log_records(path: &Path) -> Vec<u8> {
    let mut bytes = fs::read(path).unwrap();
    let mut offset = files::LOG_HEADER_LEN;
    while let RecordRead::Record(_, next) = read_record(&bytes, offset) {
        offset = next;
    }
    bytes.truncate(offset);
    bytes
}

#[test]
fn logs_out_of_order_are_refused_below_the_restore_point_too() {
    let f = Fixture::new();
    let logs = f.logs();
    let restore_point = f.recover().unwrap().snapshot_zxid();
    assert!(logs.len() >= 3 && logs[2].0 <= restore_point, "{logs:?}");
    // Recovery keeps only the txns above the restore point, but checks the order of all:
    // the two oldest files, both below it, now hold the same txns.
    let second = log_records(&logs[1].1);
    fs::write(&logs[0].1, second).unwrap();
    let e = f.refusal();
    assert!(e.contains("does not follow"), "{e}");
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn cut(path: &Path, len: usize) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..len]).unwrap();
}

#[test]
fn the_fixture_has_several_snapshots_and_log_files_and_recovers_whole() {
    let f = Fixture::new();
    let logs: Vec<Zxid> = f.logs().into_iter().map(|l| l.0).collect();
    assert_eq!(
        logs,
        vec![
            Zxid::new(1, 31),
            Zxid::new(3, 1),
            Zxid::new(3, 11),
            Zxid::new(3, 21)
        ]
    );
    let r = f.recover().unwrap();
    assert_eq!(r.snapshot_zxid(), Zxid::new(3, 20));
    assert_eq!(content(&r), f.all);
    assert_eq!((r.accepted_epoch, r.current_epoch), (3, 3));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_flipped_byte_in_a_record_refuses() {
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 1));
    flip(&path, record_offsets(&path)[2] + 14);
    assert!(f
        .refusal()
        .contains("fails its checksum, with more data after it"));
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 21));
    flip(&path, record_offsets(&path)[0] + 14);
    assert!(f.refusal().contains("fails its checksum"));
}

#[test]
fn a_corrupted_length_field_refuses_even_in_the_last_record() {
    for (first, index) in [
        (Zxid::new(3, 1), 4),
        (Zxid::new(3, 21), 1),
        (Zxid::new(3, 21), 4),
    ] {
        let f = Fixture::new();
        let path = f.log(first);
        flip(&path, record_offsets(&path)[index] + 3);
        let e = f.refusal();
        assert!(e.contains("length field fails its checksum"), "{e}");
    }
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_recovers() {
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 21));
    let last = *record_offsets(&path).last().unwrap();
    let whole = log_records(&path);
    for keep in [whole.len() - 3, last + 5, last + 1] {
        fs::write(&path, &whole[..keep]).unwrap();
        let r = f.recover().unwrap();
        assert_eq!(content(&r), f.all[..f.all.len() - 1]);
        // Zeros alone (here the high byte of a length) are cut as the unused end, quietly.
        let quiet = whole[last..keep].iter().all(|b| *b == 0);
        assert_eq!(r.warnings.is_empty(), quiet, "{:?}", r.warnings);
        assert!(
            quiet || r.warnings[0].contains("torn record"),
            "{:?}",
            r.warnings
        );
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, last);
    }
}

#[test]
fn the_zeros_written_ahead_are_cut_off_quietly_and_a_header_less_new_file_is_a_torn_tail() {
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 21));
    let whole = log_records(&path);
    let mut bytes = whole.clone();
    bytes.extend([0; 100]);
    fs::write(&path, bytes).unwrap();
    let r = f.recover().unwrap();
    assert_eq!(content(&r), f.all);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(fs::read(&path).unwrap(), whole);
    let fresh = f.log(Zxid::new(3, 26));
    fs::write(&fresh, &files::log_header()[..3]).unwrap();
    let r = f.recover().unwrap();
    assert_eq!(content(&r), f.all);
    assert!(!fresh.exists());
}

/// A crash while records were written over the zeros ahead of them leaves a record whose body
/// is partly zeros, then zeros: a torn tail, cut with a warning. Anything but zeros after the
/// damaged record still refuses.
#[test]
fn a_torn_record_over_the_zeros_written_ahead_is_a_torn_tail() {
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 21));
    let last = *record_offsets(&path).last().unwrap();
    let whole = log_records(&path);
    let mut torn = whole[..last + 14].to_vec();
    torn.resize(whole.len() + 4096, 0);
    fs::write(&path, &torn).unwrap();
    let r = f.recover().unwrap();
    assert_eq!(content(&r), f.all[..f.all.len() - 1]);
    assert!(r.warnings[0].contains("torn record"), "{:?}", r.warnings);
    assert_eq!(fs::metadata(&path).unwrap().len() as usize, last);
    let mut then_more = whole[..last + 14].to_vec();
    then_more.resize(whole.len() + 4096, 0);
    then_more.push(1);
    fs::write(&path, &then_more).unwrap();
    let e = f.refusal();
    assert!(
        e.contains("fails its checksum, with more data after it"),
        "{e}"
    );
}

#[test]
fn truncation_inside_an_older_log_file_refuses() {
    let f = Fixture::new();
    let path = f.log(Zxid::new(3, 1));
    cut(&path, record_offsets(&path)[5] + 7);
    assert!(f.refusal().contains("ends inside a record"));
    let f = Fixture::new();
    fs::remove_file(f.snapshot(Zxid::new(3, 20))).unwrap();
    fs::remove_file(f.snapshot(Zxid::new(3, 10))).unwrap();
    let path = f.log(Zxid::new(3, 1));
    cut(&path, record_offsets(&path)[8]);
    assert!(f
        .refusal()
        .contains("the log does not continue from logged txn 0x300000008 (next logged txn 0x30000000b); txns are missing"));
}

#[test]
fn a_deleted_or_damaged_newest_snapshot_falls_back_to_an_older_one() {
    let f = Fixture::new();
    fs::remove_file(f.snapshot(Zxid::new(3, 20))).unwrap();
    let r = f.recover().unwrap();
    assert_eq!(r.snapshot_zxid(), Zxid::new(3, 10));
    assert_eq!(content(&r), f.all);
    flip(&f.snapshot(Zxid::new(3, 10)), 30);
    let r = f.recover().unwrap();
    assert_eq!(r.snapshot_zxid(), Zxid::new(1, 40));
    assert_eq!(content(&r), f.all);
    assert!(r.warnings[0].contains("falling back"), "{:?}", r.warnings);
}

/// The whole snapshot of a restore point stays on disk, checked: recovery holds its path, not
/// its image, and reading it to build the tree checks it again.
#[test]
fn the_whole_snapshot_stays_on_disk_and_is_checked_again_when_read() {
    let f = Fixture::new();
    let r = f.recover().unwrap();
    let newest = f.snapshot(Zxid::new(3, 20));
    match &r.snapshot {
        Some(SnapshotRef::File { path, zxids }) => {
            assert_eq!((path, zxids.last), (&newest, Zxid::new(3, 20)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(content(&r), f.all);
    let read = |r: &Recovered| {
        let image = |i: &mut dyn std::io::Read, len| {
            std::io::copy(&mut std::io::Read::take(i, len), &mut std::io::sink())
                .map_err(|e| e.to_string())
        };
        r.snapshot.as_ref().unwrap().read(image)
    };
    assert!(read(&r).is_ok());
    flip(&newest, 40);
    assert!(read(&r).unwrap_err().contains("checksum"));
    fs::copy(f.snapshot(Zxid::new(3, 10)), &newest).unwrap();
    let e = read(&r).unwrap_err();
    assert!(e.contains("now holds 0x30000000a, not 0x300000014"), "{e}");
}

#[test]
fn an_older_snapshot_whose_gap_the_log_does_not_cover_refuses() {
    let f = Fixture::new();
    fs::remove_file(f.snapshot(Zxid::new(3, 20))).unwrap();
    fs::remove_file(f.snapshot(Zxid::new(3, 10))).unwrap();
    fs::remove_file(f.log(Zxid::new(3, 1))).unwrap();
    assert!(f.refusal().contains(
        "the log does not continue from snapshot 0x100000028 (next logged txn 0x30000000b)"
    ));
}

#[test]
fn deleted_snapshots_beside_a_purged_log_refuse() {
    let f = Fixture::new();
    for z in [10, 20] {
        fs::remove_file(f.snapshot(Zxid::new(3, z))).unwrap();
    }
    fs::remove_file(f.snapshot(Zxid::new(1, 40))).unwrap();
    assert!(f.refusal().contains(
        "the log does not continue from zxid 0 (no snapshot) (next logged txn 0x10000001f); txns are missing"
    ));
}

#[test]
fn a_deleted_log_file_is_harmless_below_the_snapshot_and_refuses_above_it() {
    let f = Fixture::new();
    fs::remove_file(f.log(Zxid::new(3, 11))).unwrap();
    assert_eq!(content(&f.recover().unwrap()), f.all);
    fs::remove_file(f.snapshot(Zxid::new(3, 20))).unwrap();
    assert!(f
        .refusal()
        .contains("does not continue from snapshot 0x30000000a (next logged txn 0x300000015)"));
}

#[test]
fn a_removal_a_crash_interrupted_is_never_read_and_is_finished_at_the_next_start() {
    let f = Fixture::new();
    // The oldest log file, below the newest snapshot, was being removed and is half cut.
    let oldest = f.log(Zxid::new(1, 31));
    let name = oldest.file_name().unwrap().to_string_lossy();
    let purging = oldest.with_file_name(format!("purging.{name}"));
    let half = record_offsets(&oldest)[5] + 3;
    fs::rename(&oldest, &purging).unwrap();
    cut(&purging, half);
    let r = f.recover().unwrap();
    assert_eq!(content(&r), f.all);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let settings = WriterSettings {
        data_dir: f.path().to_path_buf(),
        data_log_dir: f.path().to_path_buf(),
        fsync: true,
        fsync_warning: std::time::Duration::from_secs(1),
        snap_retain_count: 3,
    };
    super::prepare(&settings).unwrap();
    assert!(!purging.exists());
    assert_eq!(content(&f.recover().unwrap()), f.all);
}

#[test]
fn a_deleted_newest_log_file_refuses() {
    let f = Fixture::new();
    let (newest, path) = f.logs().pop().unwrap();
    assert_eq!(newest, Zxid::new(3, 21));
    assert_eq!(files::read_newest_log(f.path()).unwrap(), Some(newest));
    fs::remove_file(path).unwrap();
    let e = f.refusal();
    assert!(
        e.contains("the newest log file, log.0000000300000015, is missing"),
        "{e}"
    );
    // Every log file gone, snapshots kept: the same.
    for (_, path) in f.logs() {
        fs::remove_file(path).unwrap();
    }
    assert!(f.refusal().contains("is missing"));
}

#[test]
fn the_newest_log_marker_follows_rolls_truncations_and_installs() {
    let f = Fixture::new();
    let w = writer(f.path());
    w.submit(StorageOp::Truncate(Zxid::new(3, 15)), None);
    w.flush();
    assert_eq!(
        files::read_newest_log(f.path()).unwrap(),
        Some(Zxid::new(3, 11)),
        "the truncation removed log.(3,21) and marked the newest kept one first"
    );
    assert!(f.recover().is_ok());
    w.submit(
        StorageOp::InstallSnapshot(Snapshot {
            last_zxid: Zxid::new(4, 2),
            state: image(&f.all).into(),
        }),
        None,
    );
    w.flush();
    assert_eq!(files::read_newest_log(f.path()).unwrap(), Some(Zxid::ZERO));
    assert!(f.logs().is_empty());
    w.submit(StorageOp::Append(vec![txn(Zxid::new(4, 3))]), None);
    w.flush();
    assert_eq!(
        files::read_newest_log(f.path()).unwrap(),
        Some(Zxid::new(4, 3))
    );
}

#[test]
fn a_data_dir_without_the_marker_recovers_and_gets_one() {
    let f = Fixture::new();
    fs::remove_file(files::snapshot_dir(f.path()).join(files::NEWEST_LOG)).unwrap();
    assert_eq!(content(&f.recover().unwrap()), f.all);
    let _w = writer(f.path());
    assert_eq!(
        files::read_newest_log(f.path()).unwrap(),
        Some(Zxid::new(3, 21))
    );
}

#[test]
fn missing_or_rolled_back_epoch_files_beside_data_refuse() {
    for (name, content) in [
        ("acceptedEpoch", None),
        ("currentEpoch", None),
        ("acceptedEpoch", Some("2")),
    ] {
        let f = Fixture::new();
        let path = f.path().join(name);
        match content {
            None => fs::remove_file(&path).unwrap(),
            Some(c) => fs::write(&path, c).unwrap(),
        }
        let e = f.refusal();
        assert!(e.contains(name), "{e}");
    }
    let empty = tempfile::tempdir().unwrap();
    let r = recover(empty.path(), empty.path()).unwrap();
    assert_eq!((r.accepted_epoch, r.current_epoch), (0, 0));
}

#[test]
fn files_of_the_older_format_refuse() {
    let f = Fixture::new();
    let old = f.path().join(files::OLD_VERSION_DIR);
    fs::create_dir(&old).unwrap();
    fs::write(old.join("log.100000001"), b"old").unwrap();
    assert!(f.refusal().contains("older storage format"));
    let f = Fixture::new();
    let path = f.log(Zxid::new(1, 31));
    flip(&path, 7);
    assert!(f.refusal().contains("log format version"));
}

#[test]
fn truncation_new_epochs_and_snapshot_installs_keep_the_log_continuous() {
    let f = Fixture::new();
    let w = writer(f.path());
    w.submit(StorageOp::Truncate(Zxid::new(3, 23)), None);
    w.submit(StorageOp::AcceptedEpoch(5), None);
    let fresh = [Zxid::new(5, 1), Zxid::new(5, 2)];
    w.submit(
        StorageOp::Append(fresh.iter().map(|z| txn(*z)).collect()),
        None,
    );
    w.flush();
    let mut expected: Vec<Zxid> = f.all[..63].to_vec();
    expected.extend(fresh);
    let r = f.recover().unwrap();
    assert_eq!(content(&r), expected);
    // A leader's snapshot replaces everything; the log goes on from it.
    let installed = Zxid::new(6, 3);
    expected.extend([Zxid::new(6, 1), Zxid::new(6, 2), installed]);
    w.submit(StorageOp::AcceptedEpoch(6), None);
    w.submit(
        StorageOp::InstallSnapshot(Snapshot {
            last_zxid: installed,
            state: image(&expected).into(),
        }),
        None,
    );
    w.submit(StorageOp::Append(vec![txn(Zxid::new(6, 4))]), None);
    w.flush();
    expected.push(Zxid::new(6, 4));
    assert_eq!(content(&f.recover().unwrap()), expected);
    // Without that snapshot the older ones do not reach the log, which starts above it.
    fs::remove_file(f.snapshot(installed)).unwrap();
    assert!(f.refusal().contains("next logged txn 0x600000004"));
}

#[test]
fn a_txn_follows_the_next_counter_or_the_first_of_a_later_epoch() {
    let z = Zxid::new;
    assert!(follows(Zxid::ZERO, z(1, 1)));
    assert!(follows(z(1, 7), z(1, 8)));
    assert!(follows(z(1, 7), z(4, 1)));
    assert!(!follows(Zxid::ZERO, z(1, 2)));
    assert!(!follows(z(1, 7), z(1, 9)));
    assert!(!follows(z(1, 7), z(2, 2)));
    assert!(!follows(z(1, u32::MAX), z(2, 0)));
}

/// Reads every record of a log file's content the way recovery does, until one fails.
fn read_all(bytes: &[u8]) -> usize {
    if !matches!(files::check_log_header(bytes), files::LogHeader::Valid) {
        return 0;
    }
    let mut offset = files::LOG_HEADER_LEN;
    let mut count = 0;
    while let RecordRead::Record(_, next) = read_record(bytes, offset) {
        assert!(next > offset && next <= bytes.len());
        offset = next;
        count += 1;
    }
    count
}

/// Random bytes, and random flips, overwrites, cuts and splices of a valid log file and
/// snapshot, never make the reader panic; lengths are only used to slice bytes already read.
#[test]
fn random_damage_never_panics_the_reader() {
    use rand::{Rng, SeedableRng};
    let f = Fixture::new();
    let log = fs::read(f.log(Zxid::new(3, 1))).unwrap();
    let snapshot = fs::read(f.snapshot(Zxid::new(3, 20))).unwrap();
    assert_eq!(read_all(&log), 10);
    assert!(files::decode_snapshot(&snapshot).is_ok());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mutate = |valid: &[u8], rng: &mut rand::rngs::SmallRng| -> Vec<u8> {
        let mut b = valid.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..b.len().max(1));
            match rng.random_range(0..5) {
                0 if !b.is_empty() => b[at] ^= 1 << rng.random_range(0..8),
                1 if !b.is_empty() => b[at] = rng.random(),
                2 => b.truncate(at),
                3 => b
                    .splice(
                        at..at,
                        (0..rng.random_range(1..16)).map(|_| rng.random::<u8>()),
                    )
                    .for_each(drop),
                _ => b = (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
            }
        }
        b
    };
    for _ in 0..5000 {
        let damaged_log = mutate(&log, &mut rng);
        assert!(read_all(&damaged_log) <= 10 + damaged_log.len() / 12);
        let _ = files::decode_snapshot(&mutate(&snapshot, &mut rng));
    }
    // The whole recovery path on a few hundred damaged copies: recovers or refuses.
    // Only a torn tail of the newest file may be cut, so what starts is a prefix of it all.
    let newest = f.log(Zxid::new(3, 21));
    let valid = fs::read(&newest).unwrap();
    for _ in 0..300 {
        fs::write(&newest, mutate(&valid, &mut rng)).unwrap();
        if let Ok(r) = f.recover() {
            let got = content(&r);
            assert!(got.len() >= f.all.len() - 5 && got == f.all[..got.len()]);
        }
    }
}
