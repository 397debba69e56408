//! Tests of the streamed image (format 5) and of the snapshot file that holds it: a tree with
//! many distinct and shared ACLs, sessions, ephemerals and null data round-trips through the
//! file and through `serialize` (format 3, the SNAP's), and files of versions 3 and 4 still
//! load.

use super::image_reader::Trickle;
use super::*;
use crate::storage::{files, SnapshotImage};

/// The zxid of [`mixed_tree`].
const MIXED_ZXID: Zxid = Zxid((5 << 32) | 77);

/// A digest ACL of one user, with `perms`.
fn digest(user: usize, perms: i32) -> Vec<AclEntry> {
    vec![AclEntry {
        perms,
        scheme: "digest".into(),
        id: format!("user{user}:hash{user}"),
    }]
}

/// The ACL of znode `i` of [`mixed_tree`]: runs of the open ACL, a few digest ACLs shared by
/// znodes far apart, one of two entries, and some used by one znode only.
fn acl_of(i: usize) -> Vec<AclEntry> {
    match i % 9 {
        0..=2 => AclEntry::open(),
        3 | 4 => digest(i % 7, perm::ALL),
        5 => {
            let mut both = digest(i % 3, perm::READ);
            both.extend(AclEntry::open());
            both
        }
        6 => digest(1_000 + i, perm::READ | perm::WRITE),
        _ => digest(i % 5, perm::READ),
    }
}

/// Data of znode `i`: null, empty, short or longer than a one-byte length.
fn data_of(i: usize) -> (Vec<u8>, bool) {
    match i % 6 {
        0 => (Vec::new(), true),
        1 => (Vec::new(), false),
        2 => (vec![b'x'; 300 + i % 17], false),
        _ => (format!("value {i}").into_bytes(), false),
    }
}

/// A deterministic tree: 300 znodes two levels deep, many distinct and shared ACLs, null and
/// empty data, and three sessions of which two own ephemerals. (`fixtures/snapshot-v3` and
/// `fixtures/snapshot-v4` hold files of it: change it and those files no longer match.)
pub(super) fn mixed_tree() -> DataTree {
    let mut znodes = Vec::new();
    let mut sessions = BTreeMap::new();
    for s in 1..=3i64 {
        let entry = SessionEntry {
            timeout_ms: 4_000 + s as i32,
            ephemerals: BTreeSet::new(),
            owner: s as Sid,
            password: [s as u8; 16],
        };
        sessions.insert(SessionId(0x100 + s), entry);
    }
    for i in 0..300usize {
        let path = match i % 10 {
            0 => format!("/p{}", i / 10),
            _ => format!("/p{}/c{i}", i / 10),
        };
        let owner = match i % 10 {
            4 => 0x101,
            8 => 0x102,
            _ => 0,
        };
        if owner != 0 {
            if let Some(s) = sessions.get_mut(&SessionId(owner)) {
                s.ephemerals.insert(path.clone());
            }
        }
        let stat = NodeStat {
            czxid: i as i64,
            mzxid: (i * 3) as i64,
            ctime: 1_700_000_000_000 + i as i64,
            mtime: 1_700_000_000_000 + 2 * i as i64,
            version: (i % 4) as i32,
            cversion: -((i % 3) as i32),
            aversion: 1,
            ephemeral_owner: owner,
            pzxid: i64::MAX - i as i64,
            ..NodeStat::default()
        };
        let (data, null) = data_of(i);
        let node = Znode::new(data, acl_of(i).into(), stat).with_null_data(null);
        znodes.push((path, node));
    }
    DataTree::from_imported(znodes, sessions, MIXED_ZXID)
}

/// The version-3 snapshot file of [`mixed_tree`], written by the build before format 4.
const MIXED_V3_FILE: &[u8] = include_bytes!("../../fixtures/snapshot-v3/snapshot.000000050000004d");

/// The version-4 snapshot file of [`mixed_tree`] (a format-4 image), written by the build
/// before format 5.
pub(super) const MIXED_V4_FILE: &[u8] =
    include_bytes!("../../fixtures/snapshot-v4/snapshot.000000050000004d");

/// The format-5 image of `tree`, as a snapshot file streams it.
pub(super) fn streamed(tree: &DataTree) -> Vec<u8> {
    let mut out = Vec::new();
    tree.clone().image().write_to(&mut out).unwrap();
    out
}

/// Whether the znodes at `a` and `b` hold one shared copy of their ACL.
fn share_acl(tree: &DataTree, a: &str, b: &str) -> bool {
    Arc::ptr_eq(&tree.get(a).unwrap().acl, &tree.get(b).unwrap().acl)
}

/// What [`mixed_tree`] holds, checked on `tree`.
fn assert_mixed(tree: &DataTree) {
    assert_eq!(*tree, mixed_tree());
    assert_eq!(tree.last_applied(), MIXED_ZXID);
    assert!(tree.get("/p0").unwrap().is_null_data());
    assert!(!tree.get("/p0/c1").unwrap().is_null_data());
    assert_eq!(tree.get("/p0/c2").unwrap().data().len(), 302);
    assert!(
        share_acl(tree, "/p0/c3", "/p6/c66"),
        "a digest ACL met again"
    );
    assert!(share_acl(tree, "/p0", "/p29"), "the open ACL");
    assert!(!share_acl(tree, "/p0/c3", "/p0/c4"));
    assert_eq!(tree.distinct_acls(), mixed_tree().distinct_acls());
    let ephemerals = &tree.sessions.get(&SessionId(0x101)).unwrap().ephemerals;
    assert!(ephemerals.contains("/p0/c4") && ephemerals.len() == 30);
    assert_eq!(tree.sessions.len(), 3);
}

#[test]
fn the_mixed_tree_holds_what_the_tests_need() {
    let tree = mixed_tree();
    assert!(tree.distinct_acls() > 40, "{}", tree.distinct_acls());
    assert_eq!(tree.get("/p0/c4").unwrap().stat.ephemeral_owner, 0x101);
    assert_mixed(&tree);
}

#[test]
fn a_mixed_tree_round_trips_through_a_snapshot_file_and_through_serialize() {
    let tree = mixed_tree();
    let dir = tempfile::tempdir().unwrap();
    let path = files::snapshot_path(dir.path(), MIXED_ZXID);
    files::write_snapshot(&path, MIXED_ZXID, &tree.clone().image(), false).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[4..8], files::SNAPSHOT_FORMAT_VERSION.to_be_bytes());
    let snapshot = files::decode_snapshot(&bytes).unwrap();
    assert_eq!(snapshot.last_zxid, MIXED_ZXID);
    assert!(snapshot.state.starts_with(b"ENT5"));
    assert_eq!(snapshot.state, streamed(&tree));
    assert_mixed(&DataTree::deserialize(&snapshot.state).unwrap());
    let snap = tree.serialize();
    assert!(
        snap.starts_with(b"ENT3"),
        "a SNAP keeps the format of the previous build"
    );
    assert_mixed(&DataTree::deserialize(&snap).unwrap());
}

/// A SNAP's image (format 3) as the storage installs it, read back as it streams from the
/// file; a snapshot file's (format 5) too; a damaged or cut file is refused.
#[test]
fn an_installed_snap_reads_back_from_its_file_as_it_streams() {
    let tree = mixed_tree();
    let dir = tempfile::tempdir().unwrap();
    let path = files::snapshot_path(dir.path(), MIXED_ZXID);
    let snap = tree.serialize();
    files::write_snapshot_through(&path, files::INSTALL_TMP, MIXED_ZXID, &snap, false).unwrap();
    let (zxid, read) = files::read_whole_snapshot(&path, DataTree::read_image).unwrap();
    assert_eq!(zxid, MIXED_ZXID);
    assert_mixed(&read);
    files::write_snapshot(&path, MIXED_ZXID, &tree.clone().image(), false).unwrap();
    let (_, whole) = files::read_whole_snapshot(&path, DataTree::read_image).unwrap();
    assert_mixed(&whole);

    files::write_snapshot(&path, MIXED_ZXID, &snap, false).unwrap();
    let good = std::fs::read(&path).unwrap();
    let refused = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        files::read_whole_snapshot(&path, DataTree::read_image).unwrap_err()
    };
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let e = refused(&flipped);
    assert!(e.contains("checksum") || e.contains("decode"), "{e}");
    let e = refused(&good[..good.len() - 100]);
    assert!(e.contains("the file holds"), "{e}");
    let mut longer = good.clone();
    longer.extend_from_slice(b"more");
    assert!(refused(&longer).contains("the file holds"));
    // An image that ends before its file: the length and checksum say more bytes follow.
    let mut padded = good[..20].to_vec();
    let mut body = good[20..].to_vec();
    body.extend_from_slice(&[0; 16]);
    padded[8..16].copy_from_slice(&(body.len() as u64).to_be_bytes());
    padded[16..20].copy_from_slice(&crc32fast::hash(&body).to_be_bytes());
    padded.extend_from_slice(&body);
    assert!(refused(&padded).contains("ends before"));
}

#[test]
fn a_version_3_file_still_loads() {
    assert_eq!(MIXED_V3_FILE[4..8], 3u32.to_be_bytes());
    let snapshot = files::decode_snapshot(MIXED_V3_FILE).unwrap();
    assert_eq!(snapshot.last_zxid, MIXED_ZXID);
    assert_eq!(
        snapshot.state,
        mixed_tree().serialize(),
        "format 3, as written then"
    );
    assert_mixed(&DataTree::deserialize(&snapshot.state).unwrap());
}

#[test]
fn a_version_4_file_still_loads() {
    assert_eq!(MIXED_V4_FILE[4..8], 4u32.to_be_bytes());
    let snapshot = files::decode_snapshot(MIXED_V4_FILE).unwrap();
    assert_eq!(snapshot.last_zxid, MIXED_ZXID);
    assert!(snapshot.state.starts_with(b"ENT4"));
    assert_mixed(&DataTree::deserialize(&snapshot.state).unwrap());
}

#[test]
fn a_tree_larger_than_a_chunk_streams_whole_in_several_writes() {
    let znodes = (0..5_000).map(|i| {
        let acl = digest(i % 3, perm::ALL).into();
        let node = Znode::new(vec![b'x'; 100], acl, NodeStat::default());
        (format!("/n{i:05}"), node)
    });
    let tree = DataTree::from_imported(znodes, BTreeMap::new(), Zxid::new(2, 9));
    /// Counts the writes it is given.
    struct Counting(Vec<u8>, usize);
    impl std::io::Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1 += 1;
            self.0.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Counting(Vec::new(), 0);
    tree.clone().image().write_to(&mut out).unwrap();
    assert!(
        out.0.len() > 2 * 256 * 1024 && out.1 >= 2,
        "{} writes",
        out.1
    );
    assert_eq!(DataTree::deserialize(&out.0).unwrap(), tree);
    // Read as it streams, from a source that gives a few bytes at a time, as a socket may.
    let read = DataTree::read_image(&mut Trickle(&out.0, 1_000), out.0.len() as u64).unwrap();
    assert_eq!(read, tree);
    let cut = &out.0[..out.0.len() - 10];
    let e = DataTree::read_image(&mut Trickle(cut, 1_000), out.0.len() as u64).unwrap_err();
    assert!(
        e.contains("ends in the middle") || e.contains("sessions"),
        "{e}"
    );
}

/// A znode's ACL as format 4 wrote it, through serde.
#[derive(Serialize)]
enum SerdeAcl<'a> {
    Known(u32),
    New(&'a [AclEntry]),
}

/// A znode of format 4, as serde writes it.
#[derive(Serialize)]
struct SerdeZnode<'a> {
    path: String,
    #[serde(serialize_with = "ensemble_messages::byte_vec::serialize")]
    data: Vec<u8>,
    null_data: bool,
    acl: SerdeAcl<'a>,
    stat: &'a NodeStat,
}

#[test]
fn images_of_format_4_that_break_the_tree_are_refused() {
    let stat = NodeStat::default();
    let root = |acl| SerdeZnode {
        path: "/".into(),
        data: Vec::new(),
        null_data: false,
        acl,
        stat: &stat,
    };
    let no_sessions: Vec<(SessionId, SessionEntry)> = Vec::new();
    let image = |nodes: Vec<SerdeZnode>| {
        let mut out = codec::encode(&(*b"ENT4", Zxid::new(1, 1))).unwrap();
        out.extend(codec::encode(&nodes).unwrap());
        out.extend(codec::encode(&no_sessions).unwrap());
        out
    };
    let open = AclEntry::open();
    assert!(DataTree::deserialize(&image(vec![root(SerdeAcl::New(&open))])).is_ok());
    let e = DataTree::deserialize(&image(vec![root(SerdeAcl::Known(0))])).unwrap_err();
    assert!(e.contains("no such ACL"), "{e}");
    let whole = files::decode_snapshot(MIXED_V4_FILE).unwrap().state;
    let e = DataTree::deserialize(&whole[..whole.len() / 2]).unwrap_err();
    assert!(e.contains("does not decode"), "{e}");
    // The same image with one znode's path replaced by an orphan's, of equal length.
    let find = b"/p3/c31";
    let at = whole.windows(find.len()).position(|w| w == find).unwrap();
    let mut orphan = whole.to_vec();
    orphan[at..at + find.len()].copy_from_slice(b"/q3/c31");
    let e = DataTree::deserialize(&orphan).unwrap_err();
    assert!(e.contains("parent is missing"), "{e}");
    assert!(DataTree::deserialize(b"ENT4").is_err());
}
