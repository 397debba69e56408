//! Null data (jute length -1) kept apart from empty data: through create, setData, a failed
//! multi's undo, the snapshot image, and the txn encoding, whose earlier bodies still decode.

use super::tests::Fixture;
use super::*;

fn create_with(path: &str, data: Option<&[u8]>) -> TreeOp {
    TreeOp::create(
        path.into(),
        data.map(<[u8]>::to_vec),
        AclEntry::open(),
        CreateMode::Persistent,
    )
}

fn set(path: &str, data: Option<&[u8]>) -> TreeOp {
    TreeOp::set_data(path.into(), data.map(<[u8]>::to_vec), -1)
}

fn data_of(tree: &DataTree, path: &str) -> Option<Vec<u8>> {
    let node = tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
    node.nullable_data().map(<[u8]>::to_vec)
}

#[test]
fn null_and_empty_data_stay_apart_through_create_set_and_the_image() {
    let mut f = Fixture::new();
    for (path, data) in [
        ("/n", None),
        ("/e", Some(&b""[..])),
        ("/b", Some(&b"x"[..])),
    ] {
        assert!(matches!(
            f.apply(create_with(path, data)),
            OpResult::Created { .. }
        ));
    }
    assert_eq!(data_of(&f.tree, "/n"), None);
    assert_eq!(data_of(&f.tree, "/e"), Some(Vec::new()));
    assert_eq!(f.tree.stat("/n").unwrap().data_length, 0);

    let OpResult::DataSet { stat } = f.apply(set("/b", None)) else {
        panic!("setData to null failed")
    };
    assert_eq!((stat.version, stat.data_length), (1, 0));
    f.apply(set("/n", Some(b"back")));
    f.apply(set("/e", None));
    assert_eq!(data_of(&f.tree, "/b"), None);
    assert_eq!(data_of(&f.tree, "/n"), Some(b"back".to_vec()));
    assert_eq!(data_of(&f.tree, "/e"), None);
    f.apply(set("/e", Some(b"")));
    assert_eq!(data_of(&f.tree, "/e"), Some(Vec::new()));

    let back = DataTree::deserialize(&f.tree.serialize()).unwrap();
    for path in ["/n", "/e", "/b"] {
        assert_eq!(data_of(&back, path), data_of(&f.tree, path), "{path}");
    }
}

#[test]
fn a_failed_multi_leaves_null_data_null_and_a_passing_one_writes_null() {
    let mut f = Fixture::new();
    f.apply(create_with("/n", None));
    f.apply(create_with("/d", Some(b"d")));
    let failed = f.apply(TreeOp::Multi(vec![
        set("/n", Some(b"x")),
        set("/d", None),
        TreeOp::Check {
            path: "/n".into(),
            version: 7,
        },
    ]));
    assert_eq!(
        failed,
        OpResult::Multi(vec![
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::Error(ZkError::BadVersion),
        ])
    );
    assert_eq!(data_of(&f.tree, "/n"), None);
    assert_eq!(data_of(&f.tree, "/d"), Some(b"d".to_vec()));

    let passed = f.apply(TreeOp::Multi(vec![
        create_with("/m", None),
        set("/d", None),
    ]));
    assert!(
        matches!(passed, OpResult::Multi(ref r) if r.iter().all(|r| r.outcome().is_ok())),
        "{passed:?}"
    );
    assert_eq!(data_of(&f.tree, "/m"), None);
    assert_eq!(data_of(&f.tree, "/d"), None);
}

/// A create txn as every earlier version encoded it (bincode: session 1, time 2, no auth,
/// variant 4 = Create, path "/a", data [7], no ACL, Persistent): it must still decode as the
/// same op, so that logs and peers of earlier versions stay readable.
#[test]
fn txn_bodies_of_earlier_versions_still_decode() {
    let old: &[u8] = &[2, 4, 0, 4, 2, b'/', b'a', 1, 7, 0, 0];
    let txn = TreeTxn {
        session_id: SessionId(1),
        time_ms: 2,
        auth: Vec::new(),
        op: TreeOp::Create {
            path: "/a".into(),
            data: vec![7],
            acl: Vec::new(),
            mode: CreateMode::Persistent,
        },
    };
    assert_eq!(codec::decode::<TreeTxn>(old).unwrap(), txn);
    assert_eq!(txn.encode(), old);
}

#[test]
fn null_ops_round_trip_and_pass_the_body_check_in_a_multi() {
    let op = TreeOp::Multi(vec![create_with("/m", None), set("/m", None)]);
    let txn = TreeTxn {
        session_id: SessionId(1),
        time_ms: 2,
        auth: Vec::new(),
        op,
    };
    let body = txn.encode();
    assert_eq!(codec::decode::<TreeTxn>(&body).unwrap(), txn);
    TreeTxn::check_body(&body, 10).unwrap();
    let bad = TreeTxn {
        op: create_with("no-slash", None),
        ..txn
    };
    assert!(TreeTxn::check_body(&bad.encode(), 10).is_err());
}
