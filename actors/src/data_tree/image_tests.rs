//! Tests of the tree's storage: snapshots taken while writes go on, shared ACLs, the image
//! format of a SNAP (format 3) and format 2, and images that must be refused. Format 4, the
//! streamed one, is tested in `stream_tests`.

use super::*;

/// Txn `counter` applying `op` for session 7.
fn txn(counter: u32, op: TreeOp) -> Txn {
    let body = TreeTxn {
        session_id: SessionId(7),
        time_ms: 1_000 + i64::from(counter),
        auth: Vec::new(),
        op,
    }
    .encode();
    Txn {
        zxid: Zxid::new(1, counter),
        origin: 1,
        request_id: 0,
        body,
    }
}

fn create(path: &str, data: &[u8], mode: CreateMode) -> TreeOp {
    TreeOp::Create {
        path: path.into(),
        data: data.to_vec(),
        acl: AclEntry::open(),
        mode,
    }
}

/// A workload touching everything a snapshot holds: sessions, ephemerals, sequential and
/// container znodes, data, ACLs, deletes and multis (one of which fails).
fn workload() -> Vec<Txn> {
    let mut ops = vec![
        TreeOp::CreateSession {
            timeout_ms: 5_000,
            password: [3; 16],
        },
        create("/app", b"root", CreateMode::Container),
    ];
    for i in 0..300 {
        ops.push(create(
            &format!("/app/n{i:03}"),
            b"v0",
            CreateMode::Persistent,
        ));
        if i % 7 == 0 {
            ops.push(create("/app/seq-", b"", CreateMode::PersistentSequential));
            ops.push(create(&format!("/e{i}"), b"eph", CreateMode::Ephemeral));
        }
    }
    for i in 0..300 {
        ops.push(TreeOp::SetData {
            path: format!("/app/n{i:03}"),
            data: vec![b'x'; i % 50],
            version: -1,
        });
        if i % 5 == 0 {
            ops.push(TreeOp::Delete {
                path: format!("/app/n{i:03}"),
                version: -1,
            });
        }
        if i % 11 == 0 {
            ops.push(TreeOp::SetAcl {
                path: format!("/app/n{:03}", i + 1),
                acl: vec![AclEntry {
                    perms: perm::ALL,
                    scheme: "digest".into(),
                    id: format!("u{}:hash", i % 3),
                }],
                version: -1,
            });
            ops.push(TreeOp::Multi(vec![
                create(&format!("/app/m{i}"), b"m", CreateMode::Persistent),
                TreeOp::Delete {
                    path: "/app/missing".into(),
                    version: -1,
                },
            ]));
            ops.push(TreeOp::Multi(vec![
                create(&format!("/app/k{i}"), b"k", CreateMode::Persistent),
                TreeOp::SetData {
                    path: "/app".into(),
                    data: b"changed".to_vec(),
                    version: -1,
                },
            ]));
        }
    }
    ops.push(TreeOp::CloseSession);
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| txn(i as u32 + 1, op))
        .collect()
}

fn applied(txns: &[Txn]) -> DataTree {
    let mut tree = DataTree::default();
    for t in txns {
        tree.apply(t);
    }
    tree
}

#[test]
fn a_snapshot_taken_while_writes_go_on_recovers_the_uninterrupted_tree() {
    let txns = workload();
    for cut in [1, txns.len() / 3, txns.len() / 2, txns.len() - 1] {
        let mut tree = applied(&txns[..cut]);
        let snapshot = tree.clone();
        // Writes go on while the snapshot thread still holds the clone.
        for t in &txns[cut..] {
            tree.apply(t);
        }
        assert_eq!(
            snapshot,
            applied(&txns[..cut]),
            "the clone kept the tree as of txn {cut}"
        );
        let image = snapshot.serialize();
        let mut recovered = DataTree::deserialize(&image).unwrap();
        assert_eq!(recovered.last_applied(), txns[cut - 1].zxid);
        for t in &txns {
            // Replay from the start, as a log that overlaps the snapshot: idempotent.
            recovered.apply(t);
        }
        assert_eq!(recovered, tree, "snapshot at txn {cut} + log = the tree");
        assert_eq!(recovered.stat("/app"), tree.stat("/app"));
        assert_eq!(recovered.children("/app"), tree.children("/app"));
    }
}

#[test]
fn znodes_with_the_same_acl_share_one_copy_also_after_a_snapshot() {
    let txns = workload();
    let tree = applied(&txns);
    let shared = |t: &DataTree| {
        let a = t.get("/app/n002").unwrap().acl.clone();
        let b = t.get("/app/n003").unwrap().acl.clone();
        Arc::ptr_eq(&a, &b)
    };
    assert!(shared(&tree), "one allocation for world:anyone");
    let back = DataTree::deserialize(&tree.serialize()).unwrap();
    assert!(shared(&back), "and after reading an image back");
    // world:anyone, the config node's read-only ACL and three digest ACLs.
    assert_eq!(back.distinct_acls(), 5);
    assert!(tree.distinct_acls() <= 5 + 64);
}

#[test]
fn the_acl_cache_drops_acls_no_znode_holds_any_more() {
    let mut tree = DataTree::default();
    let mut counter = 0;
    let mut apply = |tree: &mut DataTree, op| {
        counter += 1;
        tree.apply(&txn(counter, op));
    };
    apply(&mut tree, create("/n", b"", CreateMode::Persistent));
    for i in 0..10_000 {
        let acl = vec![AclEntry {
            perms: perm::ALL,
            scheme: "digest".into(),
            id: format!("user{i}:hash"),
        }];
        let path = "/n".to_string();
        apply(
            &mut tree,
            TreeOp::SetAcl {
                path,
                acl,
                version: -1,
            },
        );
    }
    assert!(
        tree.distinct_acls() < 200,
        "{} ACLs held",
        tree.distinct_acls()
    );
}

#[test]
fn child_listing_counts_and_lookups_follow_parent_and_name_order() {
    let mut tree = DataTree::default();
    let paths = [
        "/a", "/a/b", "/a/b/c", "/a-", "/a/b-", "/a/a", "/b", "/a/b/d",
    ];
    for (i, p) in paths.iter().enumerate() {
        tree.apply(&txn(i as u32 + 1, create(p, b"", CreateMode::Persistent)));
    }
    assert_eq!(tree.children("/").unwrap(), ["a", "a-", "b", "zookeeper"]);
    assert_eq!(tree.children("/a").unwrap(), ["a", "b", "b-"]);
    assert_eq!(tree.children("/a/b").unwrap(), ["c", "d"]);
    assert_eq!(tree.children("/a/b/c").unwrap(), Vec::<String>::new());
    assert_eq!(tree.children("/nope"), None);
    assert_eq!(tree.stat("/a").unwrap().num_children, 3);
    assert_eq!(tree.descendant_count("/a"), 5);
    assert_eq!(tree.descendant_count("/"), paths.len() + 3);
    for bad in ["", "a", "/a/", "\0a", "/a\0b", "//a"] {
        assert!(tree.get(bad).is_none(), "{bad:?}");
    }
    let long = format!("/{}", "x".repeat(600));
    tree.apply(&txn(100, create(&long, b"long", CreateMode::Persistent)));
    assert_eq!(tree.get(&long).unwrap().data(), b"long");
}

#[test]
fn null_data_reads_back_null_from_an_image_and_empty_data_empty() {
    let null = Znode::new(Vec::new(), AclEntry::open().into(), NodeStat::default());
    let znodes = [
        ("/null".to_string(), null.clone().with_null_data(true)),
        ("/empty".to_string(), null),
    ];
    let tree = DataTree::from_imported(znodes, BTreeMap::new(), Zxid::new(1, 1));
    let back = DataTree::deserialize(&tree.serialize()).unwrap();
    assert!(back.get("/null").unwrap().is_null_data());
    assert!(!back.get("/empty").unwrap().is_null_data());
    assert_eq!(back, tree);
}

/// The serde form of the tree in format 2, as that build wrote it.
#[derive(Serialize)]
struct FormatTwo {
    nodes: BTreeMap<String, FormatTwoZnode>,
    sessions: BTreeMap<i64, SessionEntry>,
    last_applied: Zxid,
}

#[derive(Serialize)]
struct FormatTwoZnode {
    data: Vec<u8>,
    acl: Arc<[AclEntry]>,
    stat: NodeStat,
    children: BTreeSet<String>,
}

#[test]
fn an_image_of_format_two_still_reads() {
    let tree = applied(&workload());
    let mut nodes = BTreeMap::new();
    for (key, n) in tree.nodes.iter() {
        let path = store::path_of(key);
        let children = tree.children(&path).unwrap().into_iter().collect();
        let stat = NodeStat {
            num_children: 0,
            data_length: 0,
            ..n.stat
        };
        let (data, acl) = (n.data().to_vec(), n.acl.clone());
        nodes.insert(
            path,
            FormatTwoZnode {
                data,
                acl,
                stat,
                children,
            },
        );
    }
    let sessions = tree
        .sessions
        .iter()
        .map(|(id, s)| (id.0, s.as_ref().clone()))
        .collect();
    let old = FormatTwo {
        nodes,
        sessions,
        last_applied: tree.last_applied(),
    };
    let back = DataTree::deserialize(&codec::encode(&old).unwrap()).unwrap();
    assert_eq!(back, tree);
}

#[test]
fn images_that_break_the_tree_are_refused() {
    let tree = applied(&workload()[..20]);
    let image = tree.serialize();
    // The same image with one znode's path replaced by an orphan's, of equal length.
    let find = b"/app/n000";
    let at = image.windows(find.len()).position(|w| w == find).unwrap();
    let mut orphan = image.clone();
    orphan[at..at + find.len()].copy_from_slice(b"/zzz/n000");
    let e = DataTree::deserialize(&orphan).unwrap_err();
    assert!(e.contains("parent is missing"), "{e}");
    let mut invalid = image.clone();
    invalid[at..at + find.len()].copy_from_slice(b"/app/n00/");
    assert!(DataTree::deserialize(&invalid).is_err());
    assert!(DataTree::deserialize(&image[..image.len() - 3]).is_err());
    assert!(DataTree::deserialize(b"ENT3").is_err());
}

/// A znode as serde writes it: the image's hand-written encoder must give the same bytes.
#[derive(Serialize)]
struct SerdeZnode<'a> {
    path: String,
    #[serde(serialize_with = "ensemble_messages::byte_vec::serialize")]
    data: Vec<u8>,
    null_data: bool,
    acl: u32,
    stat: &'a NodeStat,
}

#[test]
fn the_image_is_bincode_of_its_parts_as_serde_writes_them() {
    let mut txns = workload();
    let at = txns.len() as u32 + 1;
    txns.push(txn(
        at,
        TreeOp::SetAcl {
            path: "/app/n001".into(),
            acl: vec![AclEntry {
                perms: 1,
                scheme: "digest".into(),
                id: "u:x".into(),
            }],
            version: -1,
        },
    ));
    let tree = applied(&txns);
    let mut acls: Vec<&[AclEntry]> = Vec::new();
    let mut nodes = Vec::new();
    for (key, n) in tree.nodes.iter() {
        let acl = match acls.iter().position(|a| **a == *n.acl) {
            Some(i) => i,
            None => {
                acls.push(&n.acl);
                acls.len() - 1
            }
        };
        nodes.push(SerdeZnode {
            path: store::path_of(key),
            data: n.data().to_vec(),
            null_data: n.is_null_data(),
            acl: acl as u32,
            stat: &n.stat,
        });
    }
    assert!(acls.len() >= 2, "the tree holds distinct ACLs");
    let sessions: Vec<_> = tree
        .sessions
        .iter()
        .map(|(id, s)| (id, s.as_ref()))
        .collect();
    let mut expected = codec::encode(&(*b"ENT3", tree.last_applied(), &acls)).unwrap();
    expected.extend(codec::encode(&nodes).unwrap());
    expected.extend(codec::encode(&sessions).unwrap());
    let image = tree.serialize();
    assert_eq!(image, expected);
    assert_eq!(
        image.capacity(),
        image.len(),
        "the image is measured exactly"
    );
}

#[test]
fn a_tree_streamed_into_a_snapshot_file_reads_back_whole() {
    let tree = applied(&workload());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot");
    let zxid = tree.last_applied();
    crate::storage::files::write_snapshot(&path, zxid, &tree.clone().image(), false).unwrap();
    let snapshot = crate::storage::files::decode_snapshot(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(snapshot.last_zxid, zxid);
    assert!(snapshot.state.starts_with(b"ENT5"));
    assert_eq!(DataTree::deserialize(&snapshot.state).unwrap(), tree);
}

#[test]
fn a_snap_image_streamed_in_chunks_is_the_image_in_memory() {
    // Enough znodes of 4 KiB that the stream cuts several chunks.
    let mut txns = workload();
    let big = vec![5u8; 4096];
    for i in 0..200 {
        let op = create(&format!("/app/big{i:03}"), &big, CreateMode::Persistent);
        txns.push(txn(1000 + i, op));
    }
    let tree = applied(&txns);
    let mut writes = Vec::new();
    let mut streamed = Vec::new();
    tree.write_snap_image(&mut Recording(&mut streamed, &mut writes))
        .unwrap();
    assert_eq!(streamed, tree.serialize());
    assert!(writes.len() > 2, "{writes:?}");
    assert!(writes.iter().all(|&w| w < 2 * super::image_out::CHUNK));
}

/// Keeps what is written and the size of each write.
struct Recording<'a>(&'a mut Vec<u8>, &'a mut Vec<usize>);

impl std::io::Write for Recording<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(data);
        self.1.push(data.len());
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
