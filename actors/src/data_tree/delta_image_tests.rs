//! Tests of incremental snapshot images ([`super::delta_image`]): the base's image with the
//! delta applied rebuilds the later tree exactly, and damaged deltas are refused.

use super::image_reader::Trickle;
use super::tests::Fixture;
use super::*;
use crate::storage::SnapshotImage;

/// A random op on a small set of paths, sessions and ACLs, from `r`.
fn random_op(r: &mut u64) -> (i64, TreeOp) {
    let mut next = |n: u64| {
        *r ^= *r << 13;
        *r ^= *r >> 7;
        *r ^= *r << 17;
        *r % n
    };
    let parent = ["/a", "/b", "/a/x"][next(3) as usize];
    let name = format!("{parent}/n{}", next(6));
    let path = if next(4) == 0 {
        parent.to_string()
    } else {
        name
    };
    let session = 0x10 + next(3) as i64;
    let acl = if next(2) == 0 {
        AclEntry::open()
    } else {
        vec![AclEntry {
            perms: 31,
            scheme: "world".into(),
            id: "anyone".into(),
        }]
    };
    let op = match next(8) {
        0 => TreeOp::CreateSession {
            timeout_ms: 4000,
            password: [session as u8; 16],
        },
        1 => TreeOp::CloseSession,
        2 => TreeOp::Delete { path, version: -1 },
        3 => TreeOp::SetAcl {
            path,
            acl,
            version: -1,
        },
        4 | 5 => TreeOp::SetData {
            path,
            data: vec![next(255) as u8; next(40) as usize],
            version: -1,
        },
        mode => TreeOp::Create {
            path,
            data: b"d".to_vec(),
            acl,
            mode: if mode == 6 {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            },
        },
    };
    (session, op)
}

/// The bytes `image` writes.
fn bytes_of(image: &dyn SnapshotImage) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut out).unwrap();
    out
}

#[test]
fn a_base_and_its_deltas_rebuild_the_tree_exactly() {
    for seed in 1..=200u64 {
        let mut r = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut f = Fixture::new();
        for p in ["/a", "/b", "/a/x"] {
            f.apply(TreeOp::Create {
                path: p.into(),
                data: vec![],
                acl: AclEntry::open(),
                mode: CreateMode::Persistent,
            });
        }
        let mut rebuilt = DataTree::deserialize(&f.tree.serialize()).unwrap();
        assert_eq!(f.tree.take_changes(), None, "the first call starts noting");
        for _ in 0..4 {
            let base = f.tree.last_applied();
            for _ in 0..30 {
                let (session, op) = random_op(&mut r);
                f.apply_as_session(session, op);
            }
            let changed = f.tree.take_changes().expect("tracked");
            let delta = bytes_of(&f.tree.clone().delta_image(base, changed));
            rebuilt.apply_delta(&delta).unwrap();
            assert_eq!(rebuilt, f.tree, "seed {seed}");
            assert_eq!(rebuilt.serialize(), f.tree.serialize(), "seed {seed}");
        }
    }
}

#[test]
fn a_delta_on_another_base_or_cut_short_is_refused_never_a_panic() {
    let mut f = Fixture::new();
    f.apply(TreeOp::Create {
        path: "/a".into(),
        data: vec![],
        acl: AclEntry::open(),
        mode: CreateMode::Persistent,
    });
    let base_tree = f.tree.clone();
    let base = f.tree.last_applied();
    assert_eq!(f.tree.take_changes(), None, "the first call starts noting");
    let mut r = 7u64;
    for _ in 0..20 {
        let (session, op) = random_op(&mut r);
        f.apply_as_session(session, op);
    }
    let delta = bytes_of(
        &f.tree
            .clone()
            .delta_image(base, f.tree.take_changes().unwrap()),
    );
    let mut later = f.tree.clone();
    let e = later.apply_delta(&delta).unwrap_err();
    assert!(e.contains("does not apply"), "{e}");
    for cut in 0..delta.len() {
        let mut t = base_tree.clone();
        assert!(t.apply_delta(&delta[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_clone_or_a_read_tree_notes_nothing() {
    let mut f = Fixture::new();
    assert_eq!(f.tree.take_changes(), None, "the first call starts noting");
    let mut clone = f.tree.clone();
    assert_eq!(clone.take_changes(), None);
    let mut read = DataTree::deserialize(&f.tree.serialize()).unwrap();
    assert_eq!(read.take_changes(), None);
}

#[test]
fn noting_stops_past_its_cap_and_starts_over_when_taken() {
    let mut f = Fixture::new();
    for p in ["/a", "/b", "/c"] {
        f.apply(TreeOp::Create {
            path: p.into(),
            data: vec![],
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        });
    }
    assert_eq!(f.tree.take_changes(), None, "the first call starts noting");
    let set = |path: &str| TreeOp::SetData {
        path: path.into(),
        data: vec![1],
        version: -1,
    };
    // A write to a znode still in the cache of recent notes is not noted again: writes in a
    // row to one or two znodes, and the creates of one parent's children (child, parent,
    // child, parent).
    for i in 0..2000 {
        f.apply(set(["/a", "/b"][i % 2]));
    }
    for i in 0..900 {
        f.apply(TreeOp::Create {
            path: format!("/c/n{i}"),
            data: vec![],
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        });
    }
    assert!(
        f.tree.take_changes().is_some(),
        "under the floor of 1024 notes"
    );
    for i in 0..1100 {
        f.apply(TreeOp::Create {
            path: format!("/b/n{i}"),
            data: vec![],
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        });
    }
    assert_eq!(f.tree.take_changes(), None, "past the floor of 1024 notes");
    f.apply(set("/b"));
    let changed = f.tree.take_changes().expect("noting started over");
    let base = f.tree.last_applied();
    let image = bytes_of(&f.tree.clone().delta_image(base, changed));
    let read = DeltaContent::read(&image).unwrap();
    let paths: Vec<&str> = read.changed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/b"]);
}

#[test]
fn a_delta_bigger_than_a_chunk_streams_in_pieces_and_rebuilds_the_tree() {
    let mut f = Fixture::new();
    for i in 0..4000 {
        f.apply(TreeOp::Create {
            path: format!("/n{i:05}"),
            data: vec![],
            acl: AclEntry::open(),
            mode: CreateMode::Persistent,
        });
    }
    let mut rebuilt = DataTree::deserialize(&f.tree.serialize()).unwrap();
    let mut streamed = rebuilt.clone();
    let base = f.tree.last_applied();
    assert_eq!(f.tree.take_changes(), None, "the first call starts noting");
    for i in 0..1200 {
        f.apply(TreeOp::SetData {
            path: format!("/n{:05}", i * 3),
            data: vec![7; 700],
            version: -1,
        });
    }
    for i in 0..300 {
        f.apply(TreeOp::Delete {
            path: format!("/n{:05}", i * 3 + 1),
            version: -1,
        });
    }
    let image = f
        .tree
        .clone()
        .delta_image(base, f.tree.take_changes().unwrap());
    let mut writes = Writes::default();
    image.write_to(&mut writes).unwrap();
    assert!(writes.count > 2, "{} writes", writes.count);
    rebuilt.apply_delta(&writes.bytes).unwrap();
    assert_eq!(rebuilt.serialize(), f.tree.serialize());
    // As it streams from a file, a few bytes per read.
    let len = writes.bytes.len() as u64;
    streamed
        .apply_delta_from(&mut Trickle(&writes.bytes, 100), len)
        .unwrap();
    assert_eq!(streamed.serialize(), f.tree.serialize());
}

/// A sink that counts the writes it gets.
#[derive(Default)]
struct Writes {
    bytes: Vec<u8>,
    count: usize,
}

impl std::io::Write for Writes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count += 1;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
