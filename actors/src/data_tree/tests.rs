//! Unit tests of the data tree.

use super::*;

pub(super) struct Fixture {
    pub(super) tree: DataTree,
    counter: u32,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Fixture {
            tree: DataTree::default(),
            counter: 0,
        }
    }

    fn apply_as(&mut self, session_id: i64, auth: &[(&str, &str)], op: TreeOp) -> Applied {
        let time_ms = 1000 + i64::from(self.counter + 1);
        self.apply_full(1, time_ms, session_id, auth, op)
    }

    /// Applies a txn proposed through server `origin` at wall-clock `time_ms`.
    fn apply_full(
        &mut self,
        origin: Sid,
        time_ms: i64,
        session_id: i64,
        auth: &[(&str, &str)],
        op: TreeOp,
    ) -> Applied {
        self.counter += 1;
        let body = TreeTxn {
            session_id: SessionId(session_id),
            time_ms,
            auth: auth
                .iter()
                .map(|(s, i)| (s.to_string(), i.to_string()))
                .collect(),
            op,
        }
        .encode();
        self.tree.apply(&Txn {
            zxid: Zxid::new(1, self.counter),
            origin,
            request_id: 0,
            body,
        })
    }

    pub(super) fn apply(&mut self, op: TreeOp) -> OpResult {
        self.apply_as(7, &[], op).result
    }

    /// Applies `op` as issued by the session `session_id`.
    pub(super) fn apply_as_session(&mut self, session_id: i64, op: TreeOp) -> OpResult {
        self.apply_as(session_id, &[], op).result
    }
}

fn create(path: &str, mode: CreateMode) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: b"d".to_vec(),
        acl: AclEntry::open(),
        mode,
    }
}

#[test]
fn fresh_tree_has_the_zookeeper_nodes() {
    let t = DataTree::default();
    assert_eq!(t.node_count(), 4);
    assert_eq!(t.children("/zookeeper").unwrap(), vec!["config", "quota"]);
}

#[test]
fn create_sets_stat_and_parent_versions_and_fires_watches() {
    let mut f = Fixture::new();
    let a = f.apply_as(7, &[], create("/a", CreateMode::Persistent));
    let OpResult::Created { path, stat } = a.result else {
        panic!("{a:?}")
    };
    assert_eq!(path, "/a");
    assert_eq!(
        (stat.czxid, stat.mzxid, stat.pzxid),
        (
            Zxid::new(1, 1).0 as i64,
            Zxid::new(1, 1).0 as i64,
            Zxid::new(1, 1).0 as i64
        )
    );
    assert_eq!(
        (stat.ctime, stat.data_length, stat.ephemeral_owner),
        (1001, 1, 0)
    );
    assert_eq!(
        a.triggers,
        vec![
            Trigger {
                path: "/a".into(),
                event: EventType::NodeCreated,
                acl: AclEntry::open().into()
            },
            Trigger {
                path: "/".into(),
                event: EventType::NodeChildrenChanged,
                acl: AclEntry::open().into()
            },
        ]
    );
    assert_eq!(
        f.apply(create("/a", CreateMode::Persistent)),
        OpResult::Error(ZkError::NodeExists)
    );
    assert_eq!(
        f.apply(create("/x/y", CreateMode::Persistent)),
        OpResult::Error(ZkError::NoNode)
    );
    assert_eq!(
        f.apply(create("/a/", CreateMode::Persistent)),
        OpResult::Error(ZkError::BadArguments)
    );
    f.apply(create("/a/b", CreateMode::Persistent));
    let s = f.tree.stat("/a").unwrap();
    assert_eq!((s.cversion, s.num_children), (1, 1));
}

#[test]
fn sequential_names_come_from_the_parent_cversion() {
    let mut f = Fixture::new();
    f.apply(create("/q", CreateMode::Persistent));
    let r1 = f.apply(create("/q/item-", CreateMode::PersistentSequential));
    f.apply(TreeOp::Delete {
        path: "/q/item-0000000000".into(),
        version: -1,
    });
    let r2 = f.apply(create("/q/item-", CreateMode::PersistentSequential));
    assert!(
        matches!(r1, OpResult::Created { ref path, .. } if path == "/q/item-0000000000"),
        "{r1:?}"
    );
    assert!(
        matches!(r2, OpResult::Created { ref path, .. } if path == "/q/item-0000000001"),
        "deletes do not advance sequence names: {r2:?}"
    );
    assert_eq!(
        f.tree.stat("/q").unwrap().cversion,
        3,
        "the reported cversion counts creates and deletes"
    );
}

#[test]
fn versions_and_emptiness_are_checked() {
    let mut f = Fixture::new();
    f.apply(create("/a", CreateMode::Persistent));
    f.apply(create("/a/b", CreateMode::Persistent));
    let set = |v| TreeOp::SetData {
        path: "/a".into(),
        data: b"new".to_vec(),
        version: v,
    };
    assert_eq!(f.apply(set(3)), OpResult::Error(ZkError::BadVersion));
    assert!(
        matches!(f.apply(set(0)), OpResult::DataSet { stat } if stat.version == 1 && stat.data_length == 3)
    );
    assert_eq!(
        f.apply(TreeOp::Delete {
            path: "/a".into(),
            version: -1
        }),
        OpResult::Error(ZkError::NotEmpty)
    );
    assert_eq!(
        f.apply(TreeOp::Delete {
            path: "/a/b".into(),
            version: 5
        }),
        OpResult::Error(ZkError::BadVersion)
    );
    assert_eq!(
        f.apply(TreeOp::Delete {
            path: "/a/b".into(),
            version: 0
        }),
        OpResult::Deleted
    );
    assert_eq!(
        f.apply(TreeOp::Delete {
            path: "/a/b".into(),
            version: -1
        }),
        OpResult::Error(ZkError::NoNode)
    );
}

#[test]
fn ephemerals_belong_to_their_session_and_go_with_it() {
    let mut f = Fixture::new();
    assert_eq!(
        f.apply(create("/e", CreateMode::Ephemeral)),
        OpResult::Error(ZkError::SessionExpired)
    );
    f.apply(TreeOp::CreateSession {
        timeout_ms: 4000,
        password: [1; 16],
    });
    assert!(
        matches!(f.apply(create("/e", CreateMode::Ephemeral)), OpResult::Created { stat, .. } if stat.ephemeral_owner == 7)
    );
    assert_eq!(
        f.apply(create("/e/child", CreateMode::Persistent)),
        OpResult::Error(ZkError::NoChildrenForEphemerals)
    );
    f.apply(create("/e2-", CreateMode::EphemeralSequential));
    assert_eq!(f.tree.ephemeral_count(), 2);
    let closed = f.apply_as(7, &[], TreeOp::CloseSession);
    assert_eq!(closed.result, OpResult::Session);
    assert!(closed.triggers.contains(&Trigger {
        path: "/e".into(),
        event: EventType::NodeDeleted,
        acl: AclEntry::open().into()
    }));
    assert!(f.tree.get("/e").is_none());
    assert!(!f.tree.has_session(SessionId(7)));
    assert_eq!(f.tree.ephemeral_count(), 0);
}

#[test]
fn a_create_that_finds_its_znode_there_changes_nothing() {
    let mut f = Fixture::new();
    f.apply(create("/p", CreateMode::Persistent));
    f.apply(create("/p/c", CreateMode::Persistent));
    let before = f.tree.clone();
    let same_tree = |f: &Fixture| {
        let mut expected = before.clone();
        expected.last_applied = f.tree.last_applied;
        assert_eq!(f.tree, expected);
    };
    assert_eq!(
        f.apply(create("/p/c", CreateMode::Persistent)),
        OpResult::Error(ZkError::NodeExists)
    );
    same_tree(&f);
    // Session 8 is not open: the existing znode is still what the create hears of first.
    let ephemeral = f.apply_as(8, &[], create("/p/c", CreateMode::Ephemeral));
    assert_eq!(ephemeral.result, OpResult::Error(ZkError::NodeExists));
    same_tree(&f);
    // Rolling back a multi must keep the znode its failed create found, and undo the rest.
    let multi = f.apply(TreeOp::Multi(vec![
        create("/p/d", CreateMode::Persistent),
        create("/p/c", CreateMode::Persistent),
    ]));
    assert_eq!(
        multi,
        OpResult::Multi(vec![
            OpResult::RolledBack,
            OpResult::Error(ZkError::NodeExists)
        ])
    );
    same_tree(&f);
    let s = f.tree.stat("/p").unwrap();
    assert_eq!((s.num_children, s.cversion), (1, 1));
}

#[test]
fn a_failed_multi_changes_nothing_and_reports_per_op_errors() {
    let mut f = Fixture::new();
    f.apply(create("/m", CreateMode::Persistent));
    let before = f.tree.clone();
    let multi = TreeOp::Multi(vec![
        create("/m/1", CreateMode::Persistent),
        TreeOp::SetData {
            path: "/m".into(),
            data: vec![],
            version: 0,
        },
        TreeOp::Check {
            path: "/m".into(),
            version: 0,
        },
        create("/m/2", CreateMode::Persistent),
    ]);
    let a = f.apply_as(7, &[], multi);
    assert_eq!(
        a.result,
        OpResult::Multi(vec![
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::Error(ZkError::BadVersion),
            OpResult::Error(ZkError::RuntimeInconsistency),
        ])
    );
    assert!(a.triggers.is_empty());
    let mut expected = before;
    expected.last_applied = f.tree.last_applied;
    assert_eq!(f.tree, expected, "everything rolled back");
    let ok = f.apply(TreeOp::Multi(vec![
        create("/m/1", CreateMode::Persistent),
        TreeOp::Check {
            path: "/m".into(),
            version: 0,
        },
    ]));
    assert!(
        matches!(ok, OpResult::Multi(ref r) if r.len() == 2 && r[1] == OpResult::Checked),
        "{ok:?}"
    );
}

#[test]
fn acls_guard_writes() {
    let mut f = Fixture::new();
    let alice = [("digest", "alice:hash")];
    let guarded = TreeOp::Create {
        path: "/secret".into(),
        data: vec![],
        acl: vec![AclEntry {
            perms: perm::ALL,
            scheme: "auth".into(),
            id: String::new(),
        }],
        mode: CreateMode::Persistent,
    };
    assert_eq!(
        f.apply(guarded.clone()),
        OpResult::Error(ZkError::InvalidAcl),
        "auth scheme without identity"
    );
    assert!(matches!(
        f.apply_as(7, &alice, guarded).result,
        OpResult::Created { .. }
    ));
    assert_eq!(f.tree.get("/secret").unwrap().acl[0].id, "alice:hash");
    let set = TreeOp::SetData {
        path: "/secret".into(),
        data: vec![1],
        version: -1,
    };
    assert_eq!(f.apply(set.clone()), OpResult::Error(ZkError::NoAuth));
    assert!(matches!(
        f.apply_as(7, &alice, set).result,
        OpResult::DataSet { .. }
    ));
    let ip_acl = vec![AclEntry {
        perms: perm::READ,
        scheme: "ip".into(),
        id: "10.0.0.0/8".into(),
    }];
    assert!(permits(
        &ip_acl,
        perm::READ,
        &[("ip".into(), "10.1.2.3".into())]
    ));
    assert!(!permits(
        &ip_acl,
        perm::READ,
        &[("ip".into(), "11.1.2.3".into())]
    ));
}

#[test]
fn replay_is_idempotent_and_snapshots_round_trip() {
    let mut f = Fixture::new();
    f.apply(TreeOp::CreateSession {
        timeout_ms: 4000,
        password: [1; 16],
    });
    f.apply(create("/e", CreateMode::Ephemeral));
    let before = f.tree.clone();
    let replayed = f.tree.apply(&Txn {
        zxid: Zxid::new(1, 2),
        origin: 1,
        request_id: 0,
        body: TreeTxn {
            session_id: SessionId(7),
            time_ms: 0,
            auth: vec![],
            op: create("/e", CreateMode::Ephemeral),
        }
        .encode(),
    });
    assert_eq!(
        replayed.result,
        OpResult::Error(ZkError::RuntimeInconsistency)
    );
    assert_eq!(f.tree, before);
    assert_eq!(DataTree::deserialize(&f.tree.serialize()).unwrap(), f.tree);
}

#[test]
fn a_failed_multi_restores_deleted_nodes_and_session_ephemerals() {
    let mut f = Fixture::new();
    f.apply(TreeOp::CreateSession {
        timeout_ms: 4000,
        password: [1; 16],
    });
    f.apply(create("/m", CreateMode::Persistent));
    f.apply(create("/m/x", CreateMode::Persistent));
    let before = f.tree.clone();
    let r = f.apply(TreeOp::Multi(vec![
        create("/m/e", CreateMode::Ephemeral),
        TreeOp::Delete {
            path: "/m/x".into(),
            version: 0,
        },
        TreeOp::SetData {
            path: "/m".into(),
            data: b"z".to_vec(),
            version: -1,
        },
        TreeOp::Check {
            path: "/m/x".into(),
            version: 0,
        },
    ]));
    assert!(
        matches!(r, OpResult::Multi(ref v) if v[3] == OpResult::Error(ZkError::NoNode)),
        "{r:?}"
    );
    let mut expected = before;
    expected.last_applied = f.tree.last_applied;
    assert_eq!(
        f.tree, expected,
        "create, delete, setData and the ephemeral all undone"
    );
}

#[test]
fn containers_are_reapable_once_emptied() {
    let mut f = Fixture::new();
    f.apply(create("/c", CreateMode::Container));
    f.apply(create("/fresh", CreateMode::Container));
    assert!(
        f.tree.due_for_reaping(i64::MAX).is_empty(),
        "never had children: kept"
    );
    f.apply(create("/c/x", CreateMode::Persistent));
    assert!(f.tree.due_for_reaping(i64::MAX).is_empty());
    f.apply(TreeOp::Delete {
        path: "/c/x".into(),
        version: -1,
    });
    assert_eq!(f.tree.due_for_reaping(0), vec!["/c".to_string()]);
    let reap = |f: &mut Fixture| {
        f.apply_as(0, &[], TreeOp::Reap { path: "/c".into() })
            .result
    };
    assert_eq!(reap(&mut f), OpResult::Deleted);
    assert_eq!(reap(&mut f), OpResult::Error(ZkError::NoNode));
    f.apply(create("/c", CreateMode::Persistent));
    assert_eq!(
        reap(&mut f),
        OpResult::Error(ZkError::BadVersion),
        "a plain znode recreated at a reaped path is never reaped"
    );
}

#[test]
fn ttl_znodes_carry_their_ttl_and_are_reaped_once_idle_and_childless() {
    let mut f = Fixture::new();
    let ttl = |ttl_ms| CreateMode::PersistentWithTtl { ttl_ms };
    let r = f
        .apply_full(1, 10_000, 7, &[], create("/t", ttl(500)))
        .result;
    let OpResult::Created { stat, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.ephemeral_owner as u64, 0xff00_0000_0000_01f4);
    assert_eq!(ttl_of_owner(stat.ephemeral_owner), Some(500));
    assert!(
        f.tree.due_for_reaping(10_500).is_empty(),
        "not idle for longer than the TTL"
    );
    assert_eq!(f.tree.due_for_reaping(10_501), vec!["/t".to_string()]);
    // A TTL znode may have children (it is no ephemeral), and is kept while it has.
    f.apply(create("/t/child", CreateMode::Persistent));
    assert!(f.tree.due_for_reaping(99_999).is_empty());
    f.apply(TreeOp::Delete {
        path: "/t/child".into(),
        version: -1,
    });
    // A write refreshes it; the reap re-checks at its own time.
    f.apply_full(
        1,
        20_000,
        7,
        &[],
        TreeOp::SetData {
            path: "/t".into(),
            data: Vec::new(),
            version: -1,
        },
    );
    let reap = TreeOp::Reap { path: "/t".into() };
    let early = f.apply_full(1, 20_400, 0, &[], reap.clone()).result;
    assert_eq!(early, OpResult::Error(ZkError::BadVersion));
    assert_eq!(
        f.apply_full(1, 20_501, 0, &[], reap).result,
        OpResult::Deleted
    );
    let seq = f.apply(create(
        "/s-",
        CreateMode::PersistentSequentialWithTtl { ttl_ms: 1 },
    ));
    let OpResult::Created { path, stat } = seq else {
        panic!("{seq:?}")
    };
    assert_eq!(path, "/s-0000000001", "one create under / came before");
    assert_eq!(ttl_of_owner(stat.ephemeral_owner), Some(1));
}

#[test]
fn a_session_moved_to_another_server_refuses_writes_through_the_old_one() {
    let mut f = Fixture::new();
    let session = 0x0100_0000_0000_0042;
    let at = |f: &mut Fixture, origin: Sid, op: TreeOp| f.apply_full(origin, 5, session, &[], op);
    let opened = at(
        &mut f,
        1,
        TreeOp::CreateSession {
            timeout_ms: 4000,
            password: [1; 16],
        },
    );
    assert_eq!(opened.opened_session, Some((SessionId(session), 4000)));
    assert_eq!(f.tree.session_owner(SessionId(session)), Some(1));
    assert_eq!(
        at(&mut f, 1, create("/a", CreateMode::Ephemeral))
            .result
            .outcome(),
        Ok(())
    );
    assert_eq!(at(&mut f, 2, TreeOp::MoveSession).result, OpResult::Session);
    assert_eq!(f.tree.session_owner(SessionId(session)), Some(2));
    let stale = at(&mut f, 1, create("/b", CreateMode::Persistent));
    assert_eq!(stale.result, OpResult::Error(ZkError::SessionMoved));
    assert!(f.tree.get("/b").is_none());
    let close = at(&mut f, 1, TreeOp::CloseSession);
    assert_eq!(close.result, OpResult::Error(ZkError::SessionMoved));
    assert_eq!(
        close.closed_session, None,
        "the old server cannot close it either"
    );
    assert_eq!(
        at(&mut f, 2, create("/b", CreateMode::Persistent))
            .result
            .outcome(),
        Ok(())
    );
    // The leader expires a session whichever server holds it.
    let expired = at(&mut f, 3, TreeOp::ExpireSession);
    assert_eq!(expired.closed_session, Some(SessionId(session)));
    assert!(f.tree.get("/a").is_none(), "its ephemeral went with it");
    assert_eq!(
        at(&mut f, 1, TreeOp::MoveSession).result,
        OpResult::Error(ZkError::SessionExpired)
    );
}

fn acl(scheme: &str, id: &str) -> Vec<AclEntry> {
    vec![AclEntry {
        perms: perm::ALL,
        scheme: scheme.into(),
        id: id.into(),
    }]
}

fn create_with(path: &str, acl: Vec<AclEntry>) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: vec![],
        acl,
        mode: CreateMode::Persistent,
    }
}

#[test]
fn only_the_acls_zookeeper_knows_are_valid() {
    let mut f = Fixture::new();
    let ip_only = [("ip", "127.0.0.1")];
    for (scheme, id) in [
        ("super", ""),
        ("ip", "1.2.3.4/99"),
        ("ip", "not-an-ip"),
        ("ip", "10.0.0.0/x"),
        ("ip", "::1/129"),
        ("digest", "nocolon"),
        ("digest", "user:"),
        ("digest", "a:b:c"),
        ("world", "someone"),
        ("x509", ""),
        ("sasl", "me"),
        ("auth", ""),
    ] {
        assert_eq!(
            f.apply_as(7, &ip_only, create_with("/bad", acl(scheme, id)))
                .result,
            OpResult::Error(ZkError::InvalidAcl),
            "{scheme}:{id}"
        );
    }
    for (i, (scheme, id)) in [
        ("world", "anyone"),
        ("digest", "user:hash"),
        ("ip", "10.0.0.0/8"),
        ("ip", "1.2.3.4"),
        ("ip", "::1"),
        ("ip", "fe80::/10"),
        ("x509", "CN=me,O=org"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/ok{i}");
        assert_eq!(
            f.apply(create_with(&path, acl(scheme, id))).outcome(),
            Ok(()),
            "{scheme}:{id}"
        );
    }
    let twice = [acl("world", "anyone"), acl("world", "anyone")].concat();
    f.apply(create_with("/twice", twice));
    assert_eq!(f.tree.get("/twice").unwrap().acl[..], AclEntry::open());
    let set = TreeOp::SetAcl {
        path: "/twice".into(),
        acl: acl("super", ""),
        version: -1,
    };
    assert_eq!(f.apply(set), OpResult::Error(ZkError::InvalidAcl));
}

#[test]
fn ip_acls_match_v4_and_v6_prefixes_and_super_passes_everything() {
    let ip = |id: &str| ("ip".to_string(), id.to_string());
    let v6 = acl("ip", "fe80::/10");
    assert!(permits(&v6, perm::READ, &[ip("fe80::1")]));
    assert!(!permits(&v6, perm::READ, &[ip("fec0::1")]));
    assert!(!permits(&v6, perm::READ, &[ip("10.0.0.1")]));
    let v4 = acl("ip", "10.1.2.0/23");
    assert!(permits(&v4, perm::READ, &[ip("10.1.3.255")]));
    assert!(!permits(&v4, perm::READ, &[ip("10.1.4.0")]));
    assert!(permits(
        &acl("ip", "0.0.0.0/0"),
        perm::READ,
        &[ip("9.9.9.9")]
    ));
    let nobody = acl("digest", "alice:hash");
    assert!(!permits(&nobody, perm::READ, &[ip("10.1.3.1")]));
    assert!(permits(
        &nobody,
        perm::ADMIN,
        &[("super".to_string(), String::new())]
    ));
}

#[test]
fn masked_acls_hide_digest_hashes_only() {
    let mixed = [acl("digest", "alice:secrethash"), acl("ip", "10.0.0.1")].concat();
    let shown = masked(&mixed);
    assert_eq!(shown[0].id, "alice:x");
    assert_eq!(shown[1], mixed[1]);
}

#[test]
fn the_config_znode_is_read_only() {
    let mut f = Fixture::new();
    let set = TreeOp::SetData {
        path: "/zookeeper/config".into(),
        data: b"server.1=evil".to_vec(),
        version: -1,
    };
    assert_eq!(f.apply(set), OpResult::Error(ZkError::NoAuth));
    assert_eq!(
        f.apply(create("/zookeeper/config/x", CreateMode::Persistent)),
        OpResult::Error(ZkError::NoAuth)
    );
    let config = f.tree.get("/zookeeper/config").unwrap();
    assert!(permits(&config.acl, perm::READ, &[]));
}

#[test]
fn paths_with_characters_zookeeper_refuses_are_invalid() {
    for bad in [
        "/a\0b",
        "/a\u{1}",
        "/a\u{1f}",
        "/a\u{7f}",
        "/a\u{9f}",
        "/a\u{e000}",
        "/a\u{f8ff}",
        "/a\u{fff0}",
        "/a\u{ffff}",
        "/a\u{1f600}",
        "/a//b",
        "/a/",
        "/a/./b",
        "/a/..",
        "a",
    ] {
        assert!(validate_path(bad).is_err(), "{bad:?}");
    }
    for good in [
        "/",
        "/a",
        "/a\u{a0}b",
        "/\u{e9}t\u{e9}",
        "/a\u{ffef}",
        "/a.b/..c",
    ] {
        assert!(validate_path(good).is_ok(), "{good:?}");
    }
}

#[test]
fn a_deleted_node_fires_with_the_acl_it_had() {
    let mut f = Fixture::new();
    f.apply(create_with("/s", acl("digest", "alice:hash")));
    let alice = [("digest", "alice:hash")];
    let gone = f.apply_as(
        7,
        &alice,
        TreeOp::Delete {
            path: "/s".into(),
            version: -1,
        },
    );
    assert_eq!(gone.triggers[0].event, EventType::NodeDeleted);
    assert_eq!(gone.triggers[0].acl[..], acl("digest", "alice:hash"));
}

#[test]
fn session_passwords_are_replicated_and_kept_in_snapshots() {
    let mut f = Fixture::new();
    f.apply(TreeOp::CreateSession {
        timeout_ms: 4000,
        password: [9; 16],
    });
    assert_eq!(f.tree.session_password(SessionId(7)), Some(&[9; 16]));
    let restored = DataTree::deserialize(&f.tree.serialize()).unwrap();
    assert_eq!(restored.session_password(SessionId(7)), Some(&[9; 16]));
    assert_eq!(restored.session_password(SessionId(8)), None);
}

/// Runs `f` on a thread with a small stack: a walk that recursed once per level of a deep
/// chain would overflow it (and abort the test process).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn walks_of_a_deep_chain_do_not_recurse() {
    // Keys are whole paths, so memory grows with the square of the depth (as in ZooKeeper);
    // 4000 levels on a 256 KiB stack is far past what one frame per level would fit.
    const DEPTH: usize = 4000;
    on_small_stack(|| {
        let mut f = Fixture::new();
        f.apply(TreeOp::CreateSession {
            timeout_ms: 4000,
            password: [1; 16],
        });
        let mut path = String::new();
        for _ in 0..DEPTH {
            path.push_str("/d");
            assert_eq!(
                f.apply(create(&path, CreateMode::Persistent)).outcome(),
                Ok(())
            );
        }
        let leaf = format!("{path}/e");
        assert_eq!(
            f.apply(create(&leaf, CreateMode::Ephemeral)).outcome(),
            Ok(())
        );
        assert_eq!(f.tree.descendant_count("/d"), DEPTH);
        assert_eq!(f.tree.descendant_count("/"), DEPTH + 4);
        assert_eq!(f.tree.descendant_count(&path), 1);
        let restored = DataTree::deserialize(&f.tree.serialize()).unwrap();
        assert_eq!(restored, f.tree);
        let closed = f.apply_as(7, &[], TreeOp::CloseSession);
        assert_eq!(closed.triggers[0].path, leaf);
        assert!(f.tree.get(&leaf).is_none());
    });
}

#[test]
fn bodies_are_checked_before_they_are_proposed() {
    let txn = |op: TreeOp| {
        TreeTxn {
            session_id: SessionId(1),
            time_ms: 0,
            auth: Vec::new(),
            op,
        }
        .encode()
    };
    let create = |path: &str, data: usize, mode| TreeOp::Create {
        path: path.into(),
        data: vec![0; data],
        acl: AclEntry::open(),
        mode,
    };
    let check = |body: &[u8]| TreeTxn::check_body(body, 100);
    assert!(check(&txn(create("/a", 100, CreateMode::Persistent))).is_ok());
    assert!(check(&txn(create("/a/", 1, CreateMode::PersistentSequential))).is_ok());
    assert!(check(&txn(create("/a/", 1, CreateMode::Persistent))).is_err());
    assert!(check(&txn(create("/a", 101, CreateMode::Persistent))).is_err());
    assert!(check(&txn(create("/a\u{0}b", 1, CreateMode::Persistent))).is_err());
    assert!(check(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10]).is_err());
    let in_multi = |op| {
        txn(TreeOp::Multi(vec![
            create("/m", 1, CreateMode::Persistent),
            op,
        ]))
    };
    assert!(check(&in_multi(TreeOp::Check {
        path: "/m".into(),
        version: -1
    }))
    .is_ok());
    assert!(check(&in_multi(TreeOp::CloseSession)).is_err());
    // A multi inside a multi does not even decode, however deep the bytes nest it.
    let nested = txn(TreeOp::Multi(vec![TreeOp::Multi(vec![])]));
    assert!(check(&nested)
        .unwrap_err()
        .contains("a multi inside a multi"));
    let mut deep = TreeOp::Multi(vec![]);
    for _ in 0..100_000 {
        deep = TreeOp::Multi(vec![deep]);
    }
    let bytes = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || {
            let b = txn(deep);
            (b, ())
        })
        .unwrap()
        .join()
        .unwrap()
        .0;
    assert!(check(&bytes).is_err());
}

#[test]
fn a_huge_acl_with_duplicates_resolves_to_its_unique_entries_in_order() {
    // 30,000 distinct ip entries, each given twice: as many as a 1 MiB request can carry.
    let entry = |i: u32| AclEntry {
        perms: perm::READ,
        scheme: "ip".into(),
        id: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff),
    };
    let acl: Vec<AclEntry> = (0..30_000).chain(0..30_000).map(entry).collect();
    let resolved = acl::resolve(&acl, &[]).unwrap();
    assert_eq!(resolved, (0..30_000).map(entry).collect::<Vec<_>>());
}

/// An ACL of `n` ip entries granting everything to addresses the callers here never have,
/// then `world:anyone`: every check of it reads it to the end.
fn huge_acl(n: u32) -> Vec<AclEntry> {
    let mut acl: Vec<AclEntry> = (0..n)
        .map(|i| AclEntry {
            perms: perm::ALL,
            scheme: "ip".into(),
            id: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff),
        })
        .collect();
    acl.extend(AclEntry::open());
    acl
}

#[test]
fn a_multi_under_a_parent_with_a_huge_acl_reads_that_acl_once() {
    // A 30,001-entry ACL (0.8 MiB) on /p, then one multi (0.9 MiB) of 15,000 creates under
    // it: each create checks CREATE on /p and fires /p's child event with /p's ACL. Before,
    // that was 15,000 full reads and copies of the ACL on every replica's apply thread.
    let mut f = Fixture::new();
    let ip = [("ip", "127.0.0.1")];
    let p = f.apply_as(
        7,
        &ip,
        TreeOp::Create {
            path: "/p".into(),
            data: Vec::new(),
            acl: huge_acl(30_000),
            mode: CreateMode::Persistent,
        },
    );
    assert!(
        matches!(p.result, OpResult::Created { .. }),
        "{:?}",
        p.result
    );
    let ops = (0..15_000)
        .map(|i| create(&format!("/p/c{i}"), CreateMode::Persistent))
        .collect();
    let started = std::time::Instant::now();
    let a = f.apply_as(7, &ip, TreeOp::Multi(ops));
    println!(
        "multi of 15,000 creates under a 30,001-entry ACL: {:?}",
        started.elapsed()
    );
    let OpResult::Multi(results) = &a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(results.len(), 15_000);
    assert!(results
        .iter()
        .all(|r| matches!(r, OpResult::Created { .. })));
    assert_eq!(f.tree.stat("/p").unwrap().num_children, 15_000);
    let parent_events: Vec<&Trigger> = a.triggers.iter().filter(|t| t.path == "/p").collect();
    assert_eq!(parent_events.len(), 15_000);
    assert!(parent_events.iter().all(|t| t.acl.len() == 30_001));
}

#[test]
fn a_multi_checks_a_recreated_znode_against_its_new_acl() {
    let mut f = Fixture::new();
    let ip = [("ip", "127.0.0.1")];
    let acl = |perms: i32, scheme: &str, id: &str| {
        vec![AclEntry {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }]
    };
    let q = |acl: Vec<AclEntry>| TreeOp::Create {
        path: "/q".into(),
        data: Vec::new(),
        acl,
        mode: CreateMode::Persistent,
    };
    let delete = |path: &str| TreeOp::Delete {
        path: path.into(),
        version: -1,
    };
    let open_to_create = acl(perm::CREATE | perm::DELETE, "world", "anyone");
    assert!(matches!(
        f.apply_as(7, &ip, q(open_to_create)).result,
        OpResult::Created { .. }
    ));
    let ops = vec![
        create("/q/a", CreateMode::Persistent),
        delete("/q/a"),
        delete("/q"),
        q(acl(perm::ALL, "ip", "10.0.0.1")),
        create("/q/b", CreateMode::Persistent),
    ];
    let a = f.apply_as(7, &ip, TreeOp::Multi(ops));
    let OpResult::Multi(results) = a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(results[4], OpResult::Error(ZkError::NoAuth), "{results:?}");
    assert_eq!(f.tree.get("/q").unwrap().acl.len(), 1);
    assert!(f.tree.get("/q/a").is_none());
}

#[test]
fn get_ephemerals_reads_only_the_paths_under_its_prefix() {
    // A session owning 100,000 ephemerals asks 1,000 times for those under a prefix that
    // matches two of them: before, each request copied and filtered all 100,000.
    let mut f = Fixture::new();
    f.apply_as(
        7,
        &[],
        TreeOp::CreateSession {
            timeout_ms: 4000,
            password: [0; 16],
        },
    );
    let ops = (0..100_000)
        .map(|i| create(&format!("/e{i:06}"), CreateMode::Ephemeral))
        .collect();
    f.apply_as(7, &[], TreeOp::Multi(ops));
    assert_eq!(f.tree.ephemerals(SessionId(7)).len(), 100_000);
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        assert_eq!(
            f.tree.ephemerals_with_prefix(SessionId(7), "/e01234"),
            [
                "/e012340", "/e012341", "/e012342", "/e012343", "/e012344", "/e012345", "/e012346",
                "/e012347", "/e012348", "/e012349"
            ]
        );
    }
    println!("1,000 getEphemerals among 100,000: {:?}", started.elapsed());
    assert_eq!(
        f.tree.ephemerals_with_prefix(SessionId(7), "/").len(),
        100_000
    );
    assert!(f.tree.ephemerals_with_prefix(SessionId(8), "/").is_empty());
}

#[test]
fn duplicate_acl_entries_are_dropped_before_the_acl_is_stored_as_zookeeper_3_8_does() {
    // ZooKeeper's fixupACL: exact duplicates (same perms, scheme and id) go, the first of each
    // stays in place; entries that differ in their perms both stay; `auth` is expanded after
    // the duplicates are dropped, so its expansion may repeat an explicit entry.
    let mut f = Fixture::new();
    let entry = |perms: i32, scheme: &str, id: &str| AclEntry {
        perms,
        scheme: scheme.into(),
        id: id.into(),
    };
    let alice = "alice:hash";
    let given = vec![
        entry(perm::READ, "world", "anyone"),
        entry(perm::ALL, "digest", alice),
        entry(perm::READ, "world", "anyone"),
        entry(perm::READ | perm::WRITE, "world", "anyone"),
        entry(perm::ALL, "auth", ""),
        entry(perm::ALL, "digest", alice),
        entry(perm::ALL, "auth", ""),
    ];
    let r = f.apply_as(
        7,
        &[("digest", alice)],
        TreeOp::Create {
            path: "/d".into(),
            data: Vec::new(),
            acl: given.clone(),
            mode: CreateMode::Persistent,
        },
    );
    assert_eq!(r.result.outcome(), Ok(()), "{r:?}");
    let stored = vec![
        entry(perm::READ, "world", "anyone"),
        entry(perm::ALL, "digest", alice),
        entry(perm::READ | perm::WRITE, "world", "anyone"),
        entry(perm::ALL, "digest", alice),
    ];
    assert_eq!(&*f.tree.get("/d").unwrap().acl, stored.as_slice());
    // setACL drops them the same way.
    let twice = vec![entry(perm::ALL, "ip", "10.0.0.1"); 2];
    let r = f.apply_as(
        7,
        &[("digest", alice)],
        TreeOp::SetAcl {
            path: "/d".into(),
            acl: twice,
            version: -1,
        },
    );
    assert_eq!(r.result.outcome(), Ok(()), "{r:?}");
    let one = [entry(perm::ALL, "ip", "10.0.0.1")];
    assert_eq!(&*f.tree.get("/d").unwrap().acl, one.as_slice());
}
