//! When a server takes a background snapshot: as ZooKeeper does with `snapCount`, after half
//! of it plus a random share of the other half of txns, drawn anew after each snapshot. The
//! servers of an ensemble apply the same txns; with a fixed count they would all serialize
//! their trees at the same txn and stall the ensemble together. Pure: the caller draws the
//! random numbers.

/// Counts applied txns towards the next snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotCadence {
    snap_count: u64,
    since: u64,
    due_at: u64,
}

impl SnapshotCadence {
    /// A cadence for `snap_count` (at least 2), its first threshold drawn from `roll`.
    pub fn new(snap_count: u64, roll: u64) -> Self {
        let mut c = SnapshotCadence {
            snap_count: snap_count.max(2),
            since: 0,
            due_at: 0,
        };
        c.due_at = c.threshold(roll);
        c
    }

    /// `snap_count / 2` plus `roll` folded into `[0, snap_count / 2)`.
    fn threshold(&self, roll: u64) -> u64 {
        let half = self.snap_count / 2;
        half + roll % half
    }

    /// Counts `n` more applied txns; whether a snapshot is due now. When it is, the count
    /// starts again towards a threshold drawn from `roll`.
    pub fn applied(&mut self, n: u64, roll: u64) -> bool {
        self.since += n;
        if self.since < self.due_at {
            return false;
        }
        self.since = 0;
        self.due_at = self.threshold(roll);
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
            while !c.applied(1, 7) {
                txns += 1;
            }
            assert!((49_999..100_000).contains(&txns), "roll {roll}: {txns}");
        }
    }

    #[test]
    fn servers_rolling_differently_snapshot_at_different_txns() {
        let mut a = SnapshotCadence::new(1_000, 10);
        let mut b = SnapshotCadence::new(1_000, 400);
        let due = |c: &mut SnapshotCadence| (1..=1_000).find(|_| c.applied(1, 0));
        assert_eq!(due(&mut a), Some(510));
        assert_eq!(due(&mut b), Some(900));
    }

    #[test]
    fn a_batch_counts_whole_and_the_smallest_count_still_works() {
        let mut c = SnapshotCadence::new(1_000, 0);
        assert!(!c.applied(499, 0));
        assert!(c.applied(600, 0));
        let mut tiny = SnapshotCadence::new(0, 5);
        assert!(tiny.applied(1, 5));
        assert!(tiny.applied(1, 5));
    }
}
