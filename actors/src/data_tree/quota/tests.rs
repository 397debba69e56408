//! Unit tests of quotas: the StatsTrack text, usage kept by apply, and enforcement.

use super::*;
use crate::data_tree::{AclEntry, Applied, CreateMode, TreeTxn};
use ensemble_messages::zk::SessionId;
use ensemble_messages::{Txn, Zxid};

struct Tree {
    tree: DataTree,
    zxid: u32,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            tree: DataTree::default(),
            zxid: 0,
        }
    }

    fn apply_as(&mut self, session_id: i64, op: TreeOp) -> Applied {
        self.zxid += 1;
        let body = TreeTxn {
            session_id: SessionId(session_id),
            time_ms: 1000,
            auth: Vec::new(),
            op,
        }
        .encode();
        self.tree.apply(&Txn {
            zxid: Zxid::new(1, self.zxid),
            origin: 1,
            request_id: 0,
            body,
        })
    }

    fn ok(&mut self, op: TreeOp) {
        let r = self.apply_as(7, op);
        assert_eq!(r.result.outcome(), Ok(()), "{r:?}");
    }

    fn data(&self, path: &str) -> String {
        String::from_utf8(self.tree.get(path).unwrap().data().to_vec()).unwrap()
    }

    /// A quota on `/a` as zkCli sets one: the mirror, the limits, then the stats.
    fn quota_on_a(&mut self, limits: &str) {
        self.quota_on("/a", limits, "count=0,bytes=0");
    }

    /// A quota on `path` whose parent's mirror exists: the mirror, the limits, the stats.
    fn quota_on(&mut self, path: &str, limits: &str, stats: &str) {
        self.ok(create(&format!("{QUOTA_ROOT}{path}"), ""));
        self.ok(create(&limit_path(path), limits));
        self.ok(create(&stat_path(path), stats));
    }
}

fn create(path: &str, data: &str) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        acl: AclEntry::open(),
        mode: CreateMode::Persistent,
    }
}

fn set(path: &str, data: &str) -> TreeOp {
    TreeOp::SetData {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        version: -1,
    }
}

#[test]
fn stats_track_text_is_zookeepers() {
    let mut s = StatsTrack::default();
    assert_eq!(s.text(), "count=-1,bytes=-1");
    s.set(COUNT, 5);
    assert_eq!(s.text(), "count=5,bytes=-1");
    s.set(COUNT_HARD, 3);
    s.set(BYTES_HARD, 100);
    let text = "count=5,bytes=-1=;byteHardLimit=100;countHardLimit=3";
    assert_eq!(s.text(), text);
    let read = StatsTrack::parse(text.as_bytes());
    assert_eq!((read.get(BYTES), read.get(COUNT_HARD)), (-1, 3));
    assert_eq!(read.text(), text);
    let odd = StatsTrack::parse(b"count=,bytes=x;;novalue;countHardLimit=+7,=1");
    assert_eq!(odd.get(COUNT), -1);
    assert_eq!(odd.get(BYTES), -1);
    assert_eq!(odd.get(COUNT_HARD), 7);
    assert_eq!(StatsTrack::parse(&[0xff, b'=', b'1']).get(COUNT), -1);
}

#[test]
fn usage_follows_creates_deletes_rewrites_and_ephemerals() {
    let mut t = Tree::new();
    t.ok(create("/a", "d"));
    t.ok(create("/a/b", "bbb"));
    t.quota_on_a("count=-1,bytes=-1=;countHardLimit=10");
    // The stat node was given count=0: it starts from the subtree instead.
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=4");
    let version = t.tree.get(&stat_path("/a")).unwrap().stat.version;
    t.ok(create("/a/b/c", "12345"));
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=9");
    t.ok(set("/a/b", "b"));
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=7");
    t.ok(TreeOp::Delete {
        path: "/a/b/c".into(),
        version: -1,
    });
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=2");
    // Usage is rewritten in place, as ZooKeeper does: no new version.
    assert_eq!(t.tree.get(&stat_path("/a")).unwrap().stat.version, version);
    // Znodes elsewhere do not count.
    t.ok(create("/ab", "xx"));
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=2");
    // An ephemeral goes with its session, and out of the usage.
    let session = TreeOp::CreateSession {
        timeout_ms: 10_000,
        password: [1; 16],
    };
    assert_eq!(t.apply_as(9, session).result, OpResult::Session);
    let eph = TreeOp::Create {
        path: "/a/e".into(),
        data: b"ee".to_vec(),
        acl: AclEntry::open(),
        mode: CreateMode::Ephemeral,
    };
    assert_eq!(t.apply_as(9, eph).result.outcome(), Ok(()));
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=4");
    t.apply_as(9, TreeOp::CloseSession);
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=2");
    // Other keys in the stat node are kept.
    t.ok(set(&stat_path("/a"), "count=2,bytes=2=;extra=1"));
    t.ok(create("/a/f", ""));
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=2=;extra=1");
}

#[test]
fn the_deepest_quota_counts_and_the_root_never_has_one() {
    let mut t = Tree::new();
    t.ok(create("/a", ""));
    t.ok(create("/a/b", ""));
    t.quota_on_a("count=5,bytes=-1");
    t.quota_on("/a/b", "count=5,bytes=-1", "");
    t.ok(create("/a/b/c", "c"));
    assert_eq!(t.data(&stat_path("/a/b")), "count=2,bytes=1");
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=0");
    // A limits node right under /zookeeper/quota is a quota on nothing.
    t.ok(create(
        &format!("{QUOTA_ROOT}/{LIMIT_NODE}"),
        "count=1,bytes=-1",
    ));
    t.ok(create(
        &format!("{QUOTA_ROOT}/{STAT_NODE}"),
        "count=0,bytes=0",
    ));
    t.ok(create("/top", ""));
    assert_eq!(
        t.data(&format!("{QUOTA_ROOT}/{STAT_NODE}")),
        "count=0,bytes=0"
    );
}

#[test]
fn a_failed_multi_leaves_the_usage_as_it_was() {
    let mut t = Tree::new();
    t.ok(create("/a", ""));
    t.quota_on_a("count=-1,bytes=-1");
    let before = t.data(&stat_path("/a"));
    let multi = TreeOp::Multi(vec![
        create("/a/x", "xxxx"),
        set("/a", "aa"),
        create("/a/x", "again"),
    ]);
    let r = t.apply_as(7, multi);
    assert!(matches!(r.result, OpResult::Multi(_)), "{r:?}");
    assert!(t.tree.get("/a/x").is_none());
    assert_eq!(t.data(&stat_path("/a")), before);
    t.ok(TreeOp::Multi(vec![create("/a/x", "xxxx"), set("/a", "aa")]));
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=6");
}

#[test]
fn usage_survives_snapshots_and_is_recomputed_on_import() {
    let mut t = Tree::new();
    t.ok(create("/a", "abc"));
    t.quota_on_a("count=-1,bytes=-1");
    t.ok(create("/a/b", "de"));
    let copy = DataTree::deserialize(&t.tree.serialize()).unwrap();
    assert_eq!(copy, t.tree);
    // Apache data whose stat node lags behind its subtree.
    let mut nodes: Vec<(String, super::super::Znode)> = Vec::new();
    for p in ["/a", "/a/b", "/zookeeper/quota/a"] {
        nodes.push((p.to_string(), t.tree.get(p).unwrap().clone()));
    }
    nodes.push((
        limit_path("/a"),
        t.tree.get(&limit_path("/a")).unwrap().clone(),
    ));
    let mut stale = t.tree.get(&stat_path("/a")).unwrap().clone();
    stale.set_data(Some(b"count=99,bytes=99".to_vec()));
    nodes.push((stat_path("/a"), stale));
    let imported = DataTree::from_imported(nodes, Default::default(), Zxid::new(1, 50));
    assert_eq!(
        String::from_utf8_lossy(&imported.get(&stat_path("/a")).unwrap().data),
        "count=2,bytes=5"
    );
}

#[test]
fn hard_limits_refuse_and_soft_limits_only_warn() {
    let mut t = Tree::new();
    t.ok(create("/a", ""));
    t.quota_on_a("count=2,bytes=-1=;byteHardLimit=10;countHardLimit=3");
    let auth = [];
    // Usage: /a alone. Count 2 is the soft limit; 3 the hard one.
    t.ok(create("/a/1", ""));
    assert_eq!(t.tree.quota_refusal(&create("/a/2", ""), &auth), None);
    t.ok(create("/a/2", ""));
    assert_eq!(
        t.tree.quota_refusal(&create("/a/3", ""), &auth),
        Some(OpResult::Error(ZkError::QuotaExceeded))
    );
    // A create that fails anyway is left to fail as it would.
    assert_eq!(t.tree.quota_refusal(&create("/a/2", ""), &auth), None);
    assert_eq!(t.tree.quota_refusal(&create("/a/no/x", ""), &auth), None);
    // Bytes: 10 is the hard limit.
    assert_eq!(
        t.tree.quota_refusal(&set("/a/1", "0123456789"), &auth),
        None
    );
    assert_eq!(
        t.tree.quota_refusal(&set("/a/1", "0123456789a"), &auth),
        Some(OpResult::Error(ZkError::QuotaExceeded))
    );
    // Shrinking is always allowed; writes elsewhere are not checked.
    assert_eq!(t.tree.quota_refusal(&set("/a", ""), &auth), None);
    assert_eq!(t.tree.quota_refusal(&create("/b", ""), &auth), None);
    let multi = TreeOp::Multi(vec![set("/a/1", "x"), create("/a/3", ""), create("/b", "")]);
    assert_eq!(
        t.tree.quota_refusal(&multi, &auth),
        Some(OpResult::Multi(vec![
            OpResult::RolledBack,
            OpResult::Error(ZkError::QuotaExceeded),
            OpResult::Error(ZkError::RuntimeInconsistency),
        ]))
    );
    // A quota whose stat node is gone refuses nothing and breaks nothing.
    t.ok(TreeOp::Delete {
        path: stat_path("/a"),
        version: -1,
    });
    assert_eq!(t.tree.quota_refusal(&create("/a/3", ""), &auth), None);
    t.ok(create("/a/3", ""));
}

#[test]
fn a_set_answers_with_the_stat_its_znode_is_left_with() {
    let mut t = Tree::new();
    t.ok(create("/a", "d"));
    t.ok(create("/a/b", "bbb"));
    t.ok(create("/elsewhere", ""));
    t.quota_on_a("count=-1,bytes=-1");
    // A quota on /zookeeper puts its own stat node under the quota it counts for: a set of
    // that node rewrites it twice, and the answer must show the second.
    t.quota_on("/zookeeper", "count=-1,bytes=-1", "");
    for path in [
        "/a/b",
        "/elsewhere",
        &stat_path("/a"),
        &stat_path("/zookeeper"),
    ] {
        let r = t.apply_as(7, set(path, "count=1,bytes=1"));
        let after = t.tree.stat(path);
        assert_eq!(
            r.result,
            OpResult::DataSet {
                stat: after.unwrap()
            },
            "{path}"
        );
    }
    assert_ne!(t.data(&stat_path("/zookeeper")), "count=1,bytes=1");
}
