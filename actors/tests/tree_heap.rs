//! Heap bytes per znode of the data tree, and what a snapshot costs the thread that applies
//! txns, measured with a counting allocator (this test binary's global allocator).
//!
//! `TREE_HEAP_ZNODES=1000000 cargo test --release -p ensemble-actors --test tree_heap -- --nocapture`
//! prints the figures for a million znodes (the default, 200,000, takes about a second).

use ensemble_actors::data_tree::{AclEntry, CreateMode, DataTree, TreeOp, TreeTxn};
use ensemble_actors::storage::SnapshotImage;
use ensemble_messages::zk::SessionId;
use ensemble_messages::{Txn, Zxid};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes it holds.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> isize {
    HELD.load(Ordering::Relaxed)
}

/// Applies one op as txn `counter`.
fn apply(tree: &mut DataTree, counter: u32, op: TreeOp) {
    let body = TreeTxn {
        session_id: SessionId::NONE,
        time_ms: 1_700_000_000_000,
        auth: Vec::new(),
        op,
    }
    .encode();
    tree.apply(&Txn {
        zxid: Zxid::new(1, counter),
        origin: 1,
        request_id: 0,
        body,
    });
}

/// Path of the i-th znode: 100 parents of `n / 100` children each, as a benchmark fill.
fn path(i: u32) -> String {
    format!("/bench/p{:03}/n{:08}", i % 100, i)
}

/// Fills a tree with `n` znodes of 100 bytes (and their 101 parents).
fn filled(n: u32) -> (DataTree, u32) {
    let mut tree = DataTree::default();
    let mut counter = 0;
    let mut create = |tree: &mut DataTree, path: String, data: Vec<u8>| {
        counter += 1;
        let acl = AclEntry::open();
        let mode = CreateMode::Persistent;
        apply(
            tree,
            counter,
            TreeOp::Create {
                path,
                data,
                acl,
                mode,
            },
        );
    };
    create(&mut tree, "/bench".into(), Vec::new());
    for p in 0..100 {
        create(&mut tree, format!("/bench/p{p:03}"), Vec::new());
    }
    for i in 0..n {
        create(&mut tree, path(i), vec![b'x'; 100]);
    }
    (tree, counter)
}

/// Applies `count` sets and returns the p999 of their apply times.
fn timed_sets(tree: &mut DataTree, counter: &mut u32, n: u32, count: u32) -> std::time::Duration {
    let mut times = Vec::with_capacity(count as usize);
    for i in 0..count {
        *counter += 1;
        let op = TreeOp::SetData {
            path: path((i * 7919) % n.max(1)),
            data: vec![b'y'; 100],
            version: -1,
        };
        let began = Instant::now();
        apply(tree, *counter, op);
        times.push(began.elapsed());
    }
    times.sort();
    times[times.len() * 999 / 1000]
}

/// A sink that counts the bytes written to it, as a snapshot file would take them.
#[derive(Default)]
struct Counted(u64);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn znodes() -> u32 {
    std::env::var("TREE_HEAP_ZNODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

#[test]
fn heap_per_znode_and_snapshot_cost() {
    let n = znodes();
    let before = held();
    let began = Instant::now();
    let (mut tree, mut counter) = filled(n);
    let fill_time = began.elapsed();
    let tree_bytes = held() - before;
    println!(
        "applied {counter} create txns in {fill_time:?}: {:.0} txns/s (the speed of log replay)",
        f64::from(counter) / fill_time.as_secs_f64()
    );
    let per_znode = tree_bytes as f64 / f64::from(n);
    println!(
        "{n} znodes of 100 bytes: {:.1} MB of heap, {per_znode:.0} bytes per znode",
        tree_bytes as f64 / 1e6
    );
    let began = Instant::now();
    let copy = tree.clone();
    let clone_time = began.elapsed();
    let clone_bytes = held() - before - tree_bytes;
    println!(
        "snapshot copy on the applying thread: {clone_time:?}, {:.1} MB",
        clone_bytes as f64 / 1e6
    );
    // Writes while the copy is held: what copy-on-write costs.
    let during = held();
    let quiet = timed_sets(&mut tree, &mut counter, n, 10_000);
    println!(
        "10,000 sets while a snapshot is held: {:.1} MB more",
        (held() - during) as f64 / 1e6
    );
    // Writes while another thread serializes a snapshot, as the snapshot thread does.
    let busy = std::thread::scope(|s| {
        let image = tree.clone();
        s.spawn(move || image.serialize().len());
        timed_sets(&mut tree, &mut counter, n, 10_000)
    });
    println!("set apply time p999 without a snapshot {quiet:?}, during one {busy:?}");
    let began = Instant::now();
    let image = copy.serialize();
    println!(
        "snapshot image: {:.1} MB, serialized in {:?}",
        image.len() as f64 / 1e6,
        began.elapsed()
    );
    let began = Instant::now();
    let mut file = Counted::default();
    copy.clone()
        .image()
        .write_to(&mut file)
        .expect("a sink takes every byte");
    println!(
        "snapshot file image (streamed): {:.1} MB in {:?}",
        file.0 as f64 / 1e6,
        began.elapsed()
    );
    let began = Instant::now();
    let back = DataTree::deserialize(&image).expect("the image reads back");
    println!("image read back in {:?}", began.elapsed());
    assert_eq!(
        back, copy,
        "the image reads back as the tree it was taken from"
    );
    assert!(
        per_znode < 2_000.0,
        "{per_znode:.0} heap bytes per znode of 100 bytes"
    );
}
