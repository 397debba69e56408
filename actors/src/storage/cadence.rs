//! When a server takes a background snapshot: as ZooKeeper does with `snapCount`, after half
//! of it plus a random share of the other half of txns, drawn anew after each snapshot. The
//! servers of an ensemble apply the same txns; with a fixed count they would all serialize
//! their trees at the same txn and stall the ensemble together.
//!
//! Unlike ZooKeeper, the count is at least the tree's size over [`TREE_SHARE`]: a snapshot
//! reads every znode, so at a fixed count its cost per txn grows with the tree (at a million
//! znodes and snapCount 100,000, each server spent 60% of its time snapshotting and wrote
//! 177 MB every 3-4 s). With the floor a snapshot costs at most about `2 * TREE_SHARE` znodes
//! per txn whatever the tree's size, and a restart replays at most a `TREE_SHARE`th of the
//! tree's size in txns above its snapshot. Pure: the caller draws the random numbers.

/// A snapshot waits for at least the tree's znode count over this many txns.
pub const TREE_SHARE: u64 = 2;

/// Counts applied txns towards the next snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotCadence {
    snap_count: u64,
    since: u64,
    roll: u64,
}

impl SnapshotCadence {
    /// A cadence for `snap_count` (at least 2), its first threshold drawn from `roll`.
    pub fn new(snap_count: u64, roll: u64) -> Self {
        SnapshotCadence {
            snap_count: snap_count.max(2),
            since: 0,
            roll,
        }
    }

    /// The txns the next snapshot waits for with `znodes` in the tree: half the count plus
    /// the roll folded into the other half.
    fn threshold(&self, znodes: u64) -> u64 {
        let count = self.snap_count.max(znodes / TREE_SHARE);
        let half = count / 2;
        half + self.roll % half
    }

    /// Counts `n` more applied txns into a tree of `znodes`; whether a snapshot is due now.
    /// When it is, the count starts again towards a threshold drawn from `roll`.
    pub fn applied(&mut self, n: u64, znodes: u64, roll: u64) -> bool {
        self.since += n;
        if self.since < self.threshold(znodes) {
            return false;
        }
        self.since = 0;
        self.roll = roll;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_falls_between_half_and_the_whole_snap_count() {
        for roll in [0, 1, 49_999, 50_000, 123_456_789, u64::MAX] {
            let mut c = SnapshotCadence::new(100_000, roll);
            let mut txns = 0;
            while !c.applied(1, 1_000, 7) {
                txns += 1;
            }
            assert!((49_999..100_000).contains(&txns), "roll {roll}: {txns}");
        }
    }

    #[test]
    fn servers_rolling_differently_snapshot_at_different_txns() {
        let mut a = SnapshotCadence::new(1_000, 10);
        let mut b = SnapshotCadence::new(1_000, 400);
        let due = |c: &mut SnapshotCadence| (1..=1_000).find(|_| c.applied(1, 100, 0));
        assert_eq!(due(&mut a), Some(510));
        assert_eq!(due(&mut b), Some(900));
    }

    #[test]
    fn a_batch_counts_whole_and_the_smallest_count_still_works() {
        let mut c = SnapshotCadence::new(1_000, 0);
        assert!(!c.applied(499, 10, 0));
        assert!(c.applied(600, 10, 0));
        let mut tiny = SnapshotCadence::new(0, 5);
        assert!(tiny.applied(1, 0, 5));
        assert!(tiny.applied(1, 0, 5));
    }

    #[test]
    fn a_large_tree_waits_for_a_share_of_its_size_drawn_as_the_count_is() {
        let due = |roll, znodes| {
            let mut c = SnapshotCadence::new(100_000, roll);
            (1..).find(|_| c.applied(1, znodes, 0)).unwrap()
        };
        // A tree of 200,000 znodes or fewer keeps the snap count.
        assert_eq!(due(0, 200_000), 50_000);
        // A million: 250,000 to 500,000 txns, by the roll.
        assert_eq!(due(0, 1_000_000), 250_000);
        assert_eq!(due(249_999, 1_000_000), 499_999);
        assert_ne!(due(10, 1_000_000), due(60_000, 1_000_000));
    }

    #[test]
    fn a_tree_that_grows_past_the_count_pushes_the_due_snapshot_out() {
        let mut c = SnapshotCadence::new(1_000, 0);
        assert!(!c.applied(499, 1_000, 0));
        // 4,000 znodes at the 500th txn: the count is 2,000, due at 1,000 with roll 0.
        assert!(!c.applied(1, 4_000, 0));
        assert!(c.applied(500, 4_000, 0));
    }
}
