//! Readers and import on real Apache ZooKeeper 3.8 files (see `fixtures/apache-3.8/README.md`).

use super::*;
use crate::data_tree::{CreateMode, DataTree, OpResult, TreeOp, TreeTxn};
use base64::Engine;
use ensemble_messages::{codec, Txn, Zxid};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(super) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apache-3.8/version-2")
}

/// A copy of the fixture as a data dir (`DIR/version-2`), so that tests never change it.
pub(super) fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join(APACHE_DIR);
    std::fs::create_dir(&v2).unwrap();
    for e in std::fs::read_dir(fixture_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), v2.join(e.file_name())).unwrap();
    }
    dir
}

fn checksums(dir: &Path) -> BTreeMap<String, u32> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            (name, adler32(&std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

#[test]
fn every_fixture_file_parses_and_the_logs_are_contiguous() {
    let files = find(&fixture_dir().join(".."), &fixture_dir().join("..")).unwrap();
    assert_eq!(files.snapshots.len(), 4);
    assert_eq!(files.logs.len(), 5);
    for (zxid, path) in &files.snapshots {
        let s = parse_snapshot(&std::fs::read(path).unwrap()).unwrap();
        assert!(
            s.nodes.len() > 10 && s.digest.is_some(),
            "{}",
            path.display()
        );
        assert_eq!(s.nodes[0].path, "/");
        ApacheTree::from_snapshot(&s).unwrap();
        assert!(*zxid > 0);
    }
    let mut prev = None;
    for (first, path) in &files.logs {
        let log = parse_log(&std::fs::read(path).unwrap()).unwrap();
        assert!(matches!(log.end, LogEnd::Clean(_)), "{}", path.display());
        assert_eq!(log.records[0].txn.header.zxid, *first);
        for r in &log.records {
            if let Some(p) = prev {
                assert_eq!(r.txn.header.zxid, p + 1);
            }
            prev = Some(r.txn.header.zxid);
        }
    }
}

fn decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The imported tree holds exactly what kazoo read from Apache before it stopped: paths,
/// data, ACLs and every Stat field (ensemble reports container and TTL markers as stored).
#[test]
fn import_serves_the_tree_kazoo_read_from_apache() {
    let dir = fixture_copy();
    let imported = import(dir.path(), dir.path()).unwrap();
    let text = std::fs::read_to_string(fixture_dir().join("../tree.json")).unwrap();
    let expected: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let tree = &imported.tree;
    assert_eq!(tree.node_count(), expected.len());
    for (path, want) in &expected {
        if path == "/zookeeper/config" {
            continue;
        }
        let node = tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(
            node.data(),
            decode(want["data"].as_str().unwrap()),
            "{path}"
        );
        let acl: Vec<(i64, String, String)> = node
            .acl
            .iter()
            .map(|a| (i64::from(a.perms), a.scheme.clone(), a.id.clone()))
            .collect();
        let want_acl: Vec<(i64, String, String)> =
            serde_json::from_value(want["acl"].clone()).unwrap();
        assert_eq!(acl, want_acl, "{path}");
        let s = tree.stat(path).unwrap();
        let owner = if path == "/cont" || path == "/ttl" {
            0
        } else {
            s.ephemeral_owner
        };
        let got = [
            s.czxid,
            s.mzxid,
            s.ctime,
            s.mtime,
            i64::from(s.version),
            i64::from(s.cversion),
            i64::from(s.aversion),
            owner,
            i64::from(s.data_length),
            i64::from(s.num_children),
            s.pzxid,
        ];
        let want_stat: Vec<i64> = serde_json::from_value(want["stat"].clone()).unwrap();
        assert_eq!(got.to_vec(), want_stat, "{path}");
    }
    assert_eq!(imported.counts.ephemerals, 2);
    assert_eq!(imported.counts.containers, 1);
    assert_eq!(imported.counts.ttls, 1);
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_eq!((imported.accepted_epoch, imported.current_epoch), (1, 1));
}

/// The open session keeps its ephemerals and gets the password Apache gave it, so its client
/// can resume it; a new sequential child continues Apache's numbering above its last zxid.
#[test]
fn sessions_resume_and_sequence_numbers_continue() {
    let dir = fixture_copy();
    let imported = import(dir.path(), dir.path()).unwrap();
    let mut tree = imported.tree;
    let (session, _) = tree
        .sessions()
        .find(|(id, _)| !tree.ephemerals(*id).is_empty())
        .unwrap();
    assert_eq!(tree.ephemerals(session).len(), 2);
    assert_eq!(
        tree.session_password(session),
        Some(&apache_session_password(session.0))
    );
    let last = imported.last_zxid;
    let next = Zxid::new(last.epoch() + 1, 1);
    let body = TreeTxn {
        session_id: session,
        time_ms: 0,
        auth: Vec::new(),
        op: TreeOp::Create {
            path: "/app/seq-".into(),
            data: Vec::new(),
            acl: crate::data_tree::AclEntry::open(),
            mode: CreateMode::PersistentSequential,
        },
    };
    let txn = Txn {
        zxid: next,
        origin: tree.session_owner(session).unwrap(),
        request_id: 0,
        body: codec::encode(&body).unwrap(),
    };
    let applied = tree.apply(&txn);
    assert!(
        matches!(&applied.result, OpResult::Created { path, .. } if path == "/app/seq-0000000011"),
        "{:?}",
        applied.result
    );
}

/// The first start imports and writes ensemble's own storage; Apache's files are unchanged,
/// and later starts ignore them (even damaged).
#[test]
fn recover_or_import_adopts_once_and_leaves_apache_files_alone() {
    let dir = fixture_copy();
    let v2 = dir.path().join(APACHE_DIR);
    let before = checksums(&v2);
    let first = recover_or_import(dir.path(), dir.path(), false).unwrap();
    assert_eq!(checksums(&v2), before);
    let tree = DataTree::from_restore_point(first.snapshot.as_ref().unwrap(), &[]).unwrap();
    assert_eq!(first.last_zxid(), tree.last_applied());
    assert_eq!(first.accepted_epoch, 1);
    std::fs::write(v2.join("log.10000005d"), b"garbage").unwrap();
    let second = recover_or_import(dir.path(), dir.path(), false).unwrap();
    assert_eq!(second.last_zxid(), first.last_zxid());
}

fn refusal(dir: &Path) -> String {
    recover_or_import(dir, dir, false).unwrap_err().to_string()
}

#[test]
fn damaged_apache_data_refuses_with_one_line() {
    // A flipped byte inside a record fails its Adler-32.
    let dir = fixture_copy();
    let log = dir.path().join(APACHE_DIR).join("log.100000052");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&log, bytes).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("Adler-32") && !e.contains('\n'), "{e}");
    assert!(
        !dir.path().join("ensemble-v2").exists(),
        "nothing of ensemble's is written"
    );
    // A missing log between the snapshot and later logs leaves a gap.
    let dir = fixture_copy();
    std::fs::remove_file(dir.path().join(APACHE_DIR).join("log.100000052")).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("txns are missing"), "{e}");
    // No snapshot at all.
    let dir = fixture_copy();
    for e in std::fs::read_dir(dir.path().join(APACHE_DIR)).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("snapshot.")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    assert!(refusal(dir.path()).contains("no snapshot"));
    // A current epoch below the last txn's.
    let dir = fixture_copy();
    std::fs::write(dir.path().join(APACHE_DIR).join("currentEpoch"), "0").unwrap();
    assert!(refusal(dir.path()).contains("disagree"));
}

/// A damaged newest snapshot is skipped, as Apache does, when the logs cover the gap.
#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one() {
    let dir = fixture_copy();
    let good = import(dir.path(), dir.path()).unwrap();
    let snap = dir.path().join(APACHE_DIR).join("snapshot.10000005b");
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&snap, bytes).unwrap();
    let fallback = import(dir.path(), dir.path()).unwrap();
    assert_eq!(fallback.warnings.len(), 1, "{:?}", fallback.warnings);
    assert_eq!(fallback.tree, good.tree);
    assert!(fallback.snapshot.ends_with("snapshot.100000050"));
}

/// A log cut short inside its last record ends there with a warning, as Apache reads it.
#[test]
fn a_torn_last_record_ends_the_log() {
    let dir = fixture_copy();
    let whole = import(dir.path(), dir.path()).unwrap().last_zxid;
    let log = dir.path().join(APACHE_DIR).join("log.10000005d");
    let parsed = parse_log(&std::fs::read(&log).unwrap()).unwrap();
    let last = parsed.records.last().unwrap().offset;
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.truncate(last + 20);
    std::fs::write(&log, bytes).unwrap();
    let imported = import(dir.path(), dir.path()).unwrap();
    assert!(
        imported.warnings[0].contains("torn record"),
        "{:?}",
        imported.warnings
    );
    assert_eq!(imported.last_zxid, Zxid(whole.0 - 1));
}

/// The offset of the first `needle` in `bytes`.
fn position(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not found"))
}

/// Null data, which Apache's jute writes as a buffer of length -1, stays null through the
/// snapshot reader, the log reader, the replay and the import. The snapshot is the fixture's
/// newest with `/empty` (length 0) turned null and its two seals recomputed; the log records
/// are a create and a setData of null, encoded as Apache logs them.
#[test]
fn null_data_in_apache_files_stays_null() {
    let dir = fixture_copy();
    let snap = dir.path().join(APACHE_DIR).join("snapshot.10000005b");
    let mut bytes = std::fs::read(&snap).unwrap();
    let at = position(&bytes, b"\0\0\0\x06/empty\0\0\0\0") + 10;
    bytes[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes());
    // From the end: seal (checksum, "/"), digest (20 bytes), seal after the znodes.
    let len = bytes.len();
    for seal in [len - 13 - 20 - 13, len - 13] {
        let sum = i64::from(adler32(&bytes[..seal]));
        bytes[seal..seal + 8].copy_from_slice(&sum.to_be_bytes());
    }
    let parsed = parse_snapshot(&bytes).unwrap();
    let empty = parsed.nodes.iter().find(|n| n.path == "/empty").unwrap();
    assert_eq!(empty.data, None);
    std::fs::write(&snap, &bytes).unwrap();
    let imported = import(dir.path(), dir.path()).unwrap();
    assert!(imported.snapshot.ends_with("snapshot.10000005b"));
    let node = imported.tree.get("/empty").unwrap();
    assert_eq!(node.nullable_data(), None);
    assert!(imported.tree.get("/bin").unwrap().nullable_data().is_some());

    let mut tree = ApacheTree::from_snapshot(&parsed).unwrap();
    let zxid = imported.last_zxid.0 as i64;
    for (i, body) in [null_create("/nulllog"), null_set("/app")]
        .into_iter()
        .enumerate()
    {
        let mut w = ensemble_messages::jute::JuteWriter::default();
        w.long(0x42);
        w.int(1);
        w.long(zxid + 1 + i as i64);
        w.long(5);
        w.bytes.extend(body);
        let txn = LoggedTxn::parse(&w.bytes).unwrap();
        tree.apply(&txn);
    }
    let dt = tree.into_data_tree(Zxid(zxid as u64 + 2));
    assert_eq!(dt.get("/nulllog").unwrap().nullable_data(), None);
    assert_eq!(dt.get("/app").unwrap().nullable_data(), None);
    assert_eq!(dt.get("/empty").unwrap().nullable_data(), None);
}

/// A CreateTxn of null data (type, then the record), as Apache logs it.
fn null_create(path: &str) -> Vec<u8> {
    let mut w = ensemble_messages::jute::JuteWriter::default();
    w.int(ensemble_messages::zk::OpCode::Create.code());
    w.string(path);
    w.nullable_buffer(None);
    w.int(1);
    w.int(31);
    w.string("world");
    w.string("anyone");
    w.boolean(false);
    w.int(-1);
    w.bytes
}

/// A SetDataTxn of null data (type, then the record), as Apache logs it.
fn null_set(path: &str) -> Vec<u8> {
    let mut w = ensemble_messages::jute::JuteWriter::default();
    w.int(ensemble_messages::zk::OpCode::SetData.code());
    w.string(path);
    w.nullable_buffer(None);
    w.int(7);
    w.bytes
}
