//! Tests of format 5 ([`super::compact_image`]): its bytes are what the module's layout says,
//! written here through bincode field by field, and images that are cut short, that break
//! the tree or that claim more than they hold are refused with a clear error.

use super::stream_tests::{mixed_tree, streamed};
use super::*;

/// The bincode of `value`.
fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).unwrap()
}

/// The format-5 image of `tree`, built from the layout in the module's documentation, each
/// field through bincode.
fn by_the_layout(tree: &DataTree) -> Vec<u8> {
    let mut out = b"ENT5".to_vec();
    out.extend(enc(&tree.last_applied().0));
    out.extend(enc(&(tree.nodes.len() as u64)));
    let (mut path, mut czxid, mut ctime) = (String::new(), 0i64, 0i64);
    let mut acls: Vec<&Arc<[AclEntry]>> = Vec::new();
    let mut previous_acl: Option<&Arc<[AclEntry]>> = None;
    for (key, n) in tree.nodes.iter() {
        let this = store::path_of(key);
        let shared = path.bytes().zip(this.bytes()).take_while(|(a, b)| a == b);
        let shared = shared.count();
        let same_acl = previous_acl.is_some_and(|a| Arc::ptr_eq(a, &n.acl));
        out.push(u8::from(n.is_null_data()) | (u8::from(same_acl) << 1));
        out.extend(enc(&(shared as u64)));
        out.extend(enc(&&this[shared..]));
        out.extend(enc(&(n.data().len() as u64)));
        out.extend(n.data());
        if !same_acl {
            match acls.iter().position(|a| Arc::ptr_eq(a, &n.acl)) {
                Some(i) => out.extend(enc(&(0u64, i as u64))),
                None => {
                    acls.push(&n.acl);
                    out.extend(enc(&(1u64, n.acl.to_vec())));
                }
            }
        }
        let s = &n.stat;
        out.extend(enc(&(
            s.czxid - czxid,
            s.mzxid - s.czxid,
            s.ctime - ctime,
            s.mtime - s.ctime,
        )));
        out.extend(enc(&(s.version, s.cversion, s.aversion, s.ephemeral_owner)));
        out.extend(enc(&(s.pzxid - s.czxid)));
        (path, czxid, ctime, previous_acl) = (this, s.czxid, s.ctime, Some(&n.acl));
    }
    let sessions: Vec<_> = tree.sessions.iter().map(|(i, s)| (i, s.as_ref())).collect();
    out.extend(enc(&sessions));
    out
}

#[test]
fn the_streamed_image_is_the_documented_layout() {
    let tree = mixed_tree();
    assert_eq!(streamed(&tree), by_the_layout(&tree));
}

/// A tree of `/bench` and `n` children of 100 bytes, created one after the other.
fn bench_tree(n: i64) -> DataTree {
    let stat = |czxid, ctime| NodeStat {
        czxid,
        mzxid: czxid,
        ctime,
        mtime: ctime,
        pzxid: czxid,
        ..NodeStat::default()
    };
    let parent = Znode::new(Vec::new(), AclEntry::open().into(), stat(8, 1_699_999));
    let children = (0..n).map(|i| {
        let node = Znode::new(
            vec![7; 100],
            AclEntry::open().into(),
            stat(i + 9, i + 1_700_000),
        );
        (format!("/bench/c{i:04}"), node)
    });
    let znodes = std::iter::once(("/bench".to_string(), parent)).chain(children);
    DataTree::from_imported(znodes, BTreeMap::new(), Zxid::new(1, 3_000))
}

#[test]
fn a_znode_is_written_against_the_one_before_it() {
    let (small, large) = (bench_tree(1_000), bench_tree(2_000));
    let grown = streamed(&large).len() - streamed(&small).len();
    // Each of the 1,000 more: flags, the length shared, the rest of the path (its length,
    // then 1 to 4 bytes: 1,111 in all), the data (101), and the Stat's nine fields, one byte
    // each (deltas of 0 or 1, zeros): 113 bytes and its share of the paths.
    assert_eq!(grown, 113 * 1_000 + 1_111);
    assert_eq!(DataTree::deserialize(&streamed(&large)).unwrap(), large);
}

#[test]
fn every_image_cut_short_is_refused() {
    let whole = streamed(&mixed_tree());
    for len in (0..whole.len())
        .step_by(7)
        .chain(whole.len() - 64..whole.len())
    {
        let e = DataTree::deserialize(&whole[..len]).unwrap_err();
        assert!(
            e.starts_with("snapshot does not decode"),
            "cut at {len}: {e}"
        );
    }
    assert!(DataTree::deserialize(&whole).is_ok());
    let mut longer = whole.clone();
    longer.push(0);
    let e = DataTree::deserialize(&longer).unwrap_err();
    assert!(e.contains("trailing"), "{e}");
}

/// An image of `znodes`, raw records, and no sessions.
fn image_of(count: u64, znodes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"ENT5".to_vec();
    out.extend(enc(&Zxid::new(1, 1).0));
    out.extend(enc(&count));
    for z in znodes {
        out.extend(z);
    }
    out.extend(enc(&Vec::<(SessionId, SessionEntry)>::new()));
    out
}

/// A znode's record: `flags`, `shared` bytes of the previous path then `rest`, one data
/// byte, the raw ACL field `acl`, and a Stat of zeros.
fn record(flags: u8, shared: u64, rest: &str, acl: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend(enc(&shared));
    out.extend(enc(&rest));
    out.extend(enc(&(1u64, 7u8)));
    out.extend(acl);
    out.extend([0; 9]);
    out
}

/// The error reading `image` gives.
fn refusal(image: &[u8]) -> String {
    DataTree::deserialize(image).unwrap_err()
}

#[test]
fn images_of_format_5_that_break_the_tree_are_refused() {
    let new_acl = enc(&(1u64, AclEntry::open()));
    let same = 2;
    let root = record(0, 0, "/", &new_acl);
    let child = |flags, shared, rest: &str| record(flags, shared, rest, &[]);
    assert!(DataTree::deserialize(&image_of(1, std::slice::from_ref(&root))).is_ok());
    let cases: [(u64, Vec<Vec<u8>>, &str); 9] = [
        (0, vec![], "no root"),
        (2, vec![root.clone()], "ends in the middle"),
        (
            1,
            vec![record(0, 0, "/", &enc(&(0u64, 0u64)))],
            "no such ACL",
        ),
        (1, vec![child(same, 0, "/")], "no such ACL"),
        (
            2,
            vec![root.clone(), child(same, 1, "x/y")],
            "parent is missing",
        ),
        (
            2,
            vec![root.clone(), child(same, 2, "x")],
            "shares 2 bytes of a path of 1",
        ),
        (2, vec![root.clone(), child(same, 0, "/")], "listed twice"),
        (1, vec![record(8, 0, "/", &new_acl)], "unknown bits"),
        (
            1,
            vec![record(0, 0, "/", &enc(&(2u64, 0u64)))],
            "unknown kind 2",
        ),
    ];
    for (count, znodes, why) in cases {
        let e = refusal(&image_of(count, &znodes));
        assert!(e.contains(why), "expected {why:?}: {e}");
    }
}

#[test]
fn a_length_beyond_the_image_is_refused_before_anything_is_allocated() {
    let mut huge = vec![0];
    huge.extend(enc(&0u64));
    huge.extend(enc(&u64::MAX));
    let e = refusal(&image_of(1, &[huge]));
    assert!(e.contains(&format!("a length of {}", u64::MAX)), "{e}");
    let mut acl = enc(&1u64);
    acl.extend(enc(&u64::MAX));
    let e = refusal(&image_of(1, &[record(0, 0, "/", &acl)]));
    assert!(e.contains("ends in the middle"), "{e}");
    let e = refusal(&image_of(u64::MAX, &[]));
    assert!(e.contains("ends in the middle"), "{e}");
    let mut bad_marker = b"ENT5".to_vec();
    bad_marker.push(254);
    assert!(refusal(&bad_marker).contains("unknown marker 254"));
}

#[test]
fn znodes_out_of_key_order_still_read_and_their_children_are_counted() {
    let new_acl = enc(&(1u64, AclEntry::open()));
    let same = |rest: &str| record(2, 1, rest, &[]);
    let root = record(0, 0, "/", &new_acl);
    let znodes = [
        root.clone(),
        same("a"),
        same("b"),
        same("a/x"),
        same("b/y"),
        same("a/z"),
    ];
    let tree = DataTree::deserialize(&image_of(6, &znodes)).unwrap();
    let children = |path| tree.get(path).unwrap().stat.num_children;
    assert_eq!((children("/"), children("/a"), children("/b")), (2, 2, 1));
    assert_eq!(children("/a/z"), 0);
    for twice in [
        vec![root.clone(), same("a"), same("a")],
        vec![root.clone(), same("b"), same("a"), same("b")],
    ] {
        let e = refusal(&image_of(twice.len() as u64, &twice));
        assert!(e.contains("listed twice"), "{e}");
    }
}
