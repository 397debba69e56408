//! Seeded mutation fuzzing of the Apache readers on real files: snapshots, logs, single log
//! records (past their checksum) and the replay of random txns. No input may panic.
//! `ROBUSTNESS_CASES=N` runs more.

use super::tests::fixture_dir;
use super::*;
use crate::data_tree::AclEntry;
use ensemble_messages::mutation::{self, mutate, Rng};

fn cases() -> u64 {
    mutation::cases("ROBUSTNESS_CASES", 20_000)
}

fn fixture_files(prefix: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

/// Snapshot parsing and tree building: the structure is parsed before the seal is checked, so
/// mutated structure reaches every reader.
#[test]
fn mutated_snapshots_never_panic() {
    let files = fixture_files("snapshot.");
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..cases() {
        let pick = rng.below(files.len());
        let input = mutate(&mut rng, &files[pick]);
        if let Ok(s) = parse_snapshot(&input) {
            let _ = ApacheTree::from_snapshot(&s).map(|t| t.into_data_tree(Default::default()));
        }
    }
}

#[test]
fn mutated_logs_never_panic() {
    let files = fixture_files("log.");
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..cases() {
        let pick = rng.below(files.len());
        let _ = parse_log(&mutate(&mut rng, &files[pick]));
    }
}

/// Record bodies past their Adler-32: what a checksum collision or a bug in Apache would hand
/// the txn decoder.
#[test]
fn mutated_log_records_never_panic() {
    let mut bodies = Vec::new();
    for f in fixture_files("log.") {
        let log = parse_log(&f).unwrap();
        let offsets: Vec<usize> = log.records.iter().map(|r| r.offset).collect();
        for o in offsets {
            let len = i32::from_be_bytes([f[o + 8], f[o + 9], f[o + 10], f[o + 11]]) as usize;
            bodies.push(f[o + 12..o + 12 + len].to_vec());
        }
    }
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..cases() * 4 {
        let pick = rng.below(bodies.len());
        let _ = LoggedTxn::parse(&mutate(&mut rng, &bodies[pick]));
    }
}

/// Random txns on a few overlapping paths replayed on the fixture's tree: no panic, and the
/// resulting tree never holds a znode without its parent.
#[test]
fn random_replays_keep_the_tree_whole() {
    let snap = fixture_files("snapshot.").pop().unwrap();
    let base = ApacheTree::from_snapshot(&parse_snapshot(&snap).unwrap()).unwrap();
    let paths = [
        "/", "/app", "/app/x", "/app/x/y", "/cont", "/app/eph", "", "/a//b", "/many",
    ];
    let mut rng = Rng(0x5eed_0004);
    for case in 0..cases() / 10 {
        let mut tree = base.clone();
        for i in 0..50 {
            let path = paths[rng.below(paths.len())].to_string();
            let body = match rng.below(6) {
                0 => TxnBody::Create(CreateTxn {
                    path,
                    data: (i % 3 != 0).then(|| vec![1]),
                    acl: AclEntry::open(),
                    owner: [
                        CreateOwner::None,
                        CreateOwner::Session,
                        CreateOwner::Container,
                    ][rng.below(3)],
                    parent_cversion: rng.below(4) as i32 - 1,
                }),
                1 => TxnBody::Delete { path },
                2 => TxnBody::CloseSession { paths: None },
                3 => TxnBody::SetData {
                    path,
                    data: (i % 2 == 0).then(|| vec![2]),
                    version: 1,
                },
                4 => TxnBody::CreateSession { timeout_ms: 10 },
                _ => TxnBody::Multi(vec![(2, TxnBody::Delete { path })]),
            };
            let header = TxnHeader {
                client_id: rng.below(3) as i64,
                cxid: i,
                zxid: 1 << 40 | i64::from(i),
                time: 0,
                kind: 1,
            };
            tree.apply(&LoggedTxn {
                header,
                body,
                digest: None,
            });
        }
        let dt = tree.into_data_tree(Default::default());
        for p in paths.iter().filter(|p| dt.get(p).is_some() && **p != "/") {
            let parent = &p[..p.rfind('/').unwrap().max(1)];
            assert!(dt.get(parent).is_some(), "case {case}: {p} without parent");
        }
    }
}
