//! The in-memory view of the transaction log that Zab reasons about.

use ensemble_messages::{Txn, Zxid};
use std::collections::VecDeque;

/// Logged txns above `base`, with the commit and apply points.
///
/// Everything at or below `base` is in the applied state machine. Entries above `applied`
/// are logged but not applied; entries at or below it are kept (up to the DIFF window) so
/// that lagging followers can be synced by DIFF instead of SNAP.
#[derive(Clone, Debug, Default)]
pub struct TxnLog {
    entries: VecDeque<Txn>,
    base: Zxid,
    committed: Zxid,
    applied: Zxid,
}

impl TxnLog {
    /// A log recovered from a snapshot at `base` and the logged txns after it.
    pub fn recovered(base: Zxid, txns: Vec<Txn>) -> Self {
        TxnLog {
            entries: txns.into_iter().filter(|t| t.zxid > base).collect(),
            base,
            committed: base,
            applied: base,
        }
    }

    /// Last logged zxid.
    pub fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |t| t.zxid)
    }

    /// Highest zxid known committed.
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// Highest zxid applied to the state machine.
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// Oldest zxid a follower may have and still get a DIFF.
    pub fn base(&self) -> Zxid {
        self.base
    }

    /// Appends a txn; the caller checks the order.
    pub fn push(&mut self, txn: Txn) {
        debug_assert!(txn.zxid > self.last());
        self.entries.push_back(txn);
    }

    /// The largest logged zxid (or the base) that is at most `zxid`; `None` below the base.
    pub fn floor(&self, zxid: Zxid) -> Option<Zxid> {
        if zxid < self.base {
            return None;
        }
        match self.position(zxid) {
            Ok(i) => Some(self.entries[i].zxid),
            Err(0) => Some(self.base),
            Err(i) => Some(self.entries[i - 1].zxid),
        }
    }

    /// Txns above `zxid`, in order.
    pub fn after(&self, zxid: Zxid) -> Vec<Txn> {
        self.entries
            .range(self.first_after(zxid)..)
            .cloned()
            .collect()
    }

    /// Txns above `zxid`, in order, without copying them.
    pub fn iter_after(&self, zxid: Zxid) -> impl Iterator<Item = &Txn> {
        self.entries.range(self.first_after(zxid)..)
    }

    /// Txns above `from` and at most `to`, in order.
    pub fn between(&self, from: Zxid, to: Zxid) -> Vec<Txn> {
        self.entries
            .range(self.first_after(from)..)
            .take_while(|t| t.zxid <= to)
            .cloned()
            .collect()
    }

    /// Index of the first entry above `zxid`.
    fn first_after(&self, zxid: Zxid) -> usize {
        match self.position(zxid) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Drops logged entries above `zxid`. Entries at or below the applied point are never
    /// dropped: the protocol only truncates uncommitted history.
    pub fn truncate(&mut self, zxid: Zxid) {
        let keep = zxid.max(self.applied);
        while self.entries.back().is_some_and(|t| t.zxid > keep) {
            self.entries.pop_back();
        }
        self.committed = self.committed.min(self.last());
    }

    /// Replaces everything with a snapshot at `zxid`.
    pub fn reset(&mut self, zxid: Zxid) {
        *self = TxnLog::recovered(zxid, Vec::new());
    }

    /// Raises the commit point (never above the last logged zxid).
    pub fn commit(&mut self, zxid: Zxid) {
        self.committed = self.committed.max(zxid.min(self.last()));
    }

    /// Marks committed txns up to `limit` applied and returns them, then trims the window.
    pub fn take_applicable(&mut self, limit: Zxid, window: usize) -> Vec<Txn> {
        let upto = self.committed.min(limit);
        let start = self.first_after(self.applied);
        // Only the txns applied now are copied, not the whole uncommitted tail behind them
        // (which holds every write in flight).
        let out: Vec<Txn> = self
            .entries
            .range(start..)
            .take_while(|t| t.zxid <= upto)
            .cloned()
            .collect();
        if let Some(last) = out.last() {
            self.applied = last.zxid;
        }
        while self.entries.len() > window
            && self.entries.front().is_some_and(|t| t.zxid <= self.applied)
        {
            if let Some(t) = self.entries.pop_front() {
                self.base = t.zxid;
            }
        }
        out
    }

    fn position(&self, zxid: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&zxid, |t| t.zxid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(e: u32, c: u32) -> Txn {
        Txn {
            zxid: Zxid::new(e, c),
            origin: 1,
            request_id: 0,
            body: vec![],
        }
    }

    #[test]
    fn floor_after_and_window_trimming() {
        let mut log = TxnLog::recovered(
            Zxid::new(1, 1),
            vec![txn(1, 1), txn(1, 2), txn(1, 3), txn(2, 1)],
        );
        assert_eq!(log.last(), Zxid::new(2, 1));
        assert_eq!(log.floor(Zxid::new(1, 9)), Some(Zxid::new(1, 3)));
        assert_eq!(log.floor(Zxid::new(1, 1)), Some(Zxid::new(1, 1)));
        assert_eq!(log.floor(Zxid::new(0, 9)), None);
        assert_eq!(log.after(Zxid::new(1, 2)).len(), 2);
        log.commit(Zxid::new(1, 3));
        let applied = log.take_applicable(Zxid::new(9, 9), 1);
        assert_eq!(applied.len(), 2);
        assert_eq!(log.applied(), Zxid::new(1, 3));
        assert_eq!(
            log.base(),
            Zxid::new(1, 3),
            "applied entries beyond the window are trimmed"
        );
        assert_eq!(
            log.floor(Zxid::new(1, 2)),
            None,
            "a follower that far behind needs SNAP"
        );
        log.truncate(Zxid::new(1, 1));
        assert_eq!(
            log.last(),
            Zxid::new(1, 3),
            "applied txns are never truncated"
        );
    }

    #[test]
    fn applying_stops_at_the_commit_point_and_the_limit() {
        let mut log = TxnLog::recovered(Zxid::ZERO, (1..=5).map(|c| txn(1, c)).collect());
        log.commit(Zxid::new(1, 3));
        let zxids = |v: Vec<Txn>| v.into_iter().map(|t| t.zxid).collect::<Vec<_>>();
        assert_eq!(
            zxids(log.take_applicable(Zxid::new(1, 2), 9)),
            [Zxid::new(1, 1), Zxid::new(1, 2)]
        );
        assert_eq!(
            zxids(log.take_applicable(Zxid::new(9, 9), 9)),
            [Zxid::new(1, 3)],
            "the uncommitted tail stays unapplied"
        );
        assert!(log.take_applicable(Zxid::new(9, 9), 9).is_empty());
        assert_eq!(log.last(), Zxid::new(1, 5));
    }
}
