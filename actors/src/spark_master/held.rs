//! Persist before you reply (as Spark's master does): a reply that answers a registration or
//! submission waits until every record change issued before it is stored, and later messages to
//! the same connection queue behind it, so that they keep their order. Record changes are
//! numbered per leadership epoch; the link reports how many of them are stored.

use super::core::ConnId;
use ensemble_messages::spark::FromMaster;
use std::collections::VecDeque;

/// Record changes issued and stored under the current epoch, and the replies waiting for them.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Record changes issued under this epoch.
    issued: u64,
    /// How many of them are stored.
    stored: u64,
    /// Replies in sending order, each with the number of changes it waits for.
    queue: VecDeque<(u64, ConnId, FromMaster)>,
}

impl Held {
    /// Forgets everything: a new epoch, or none.
    pub(super) fn reset(&mut self) {
        *self = Held::default();
    }

    /// Counts one more record change; returns its number.
    pub(super) fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// How many record changes were issued under this epoch.
    pub(super) fn issued(&self) -> u64 {
        self.issued
    }

    /// Whether some issued change is not stored yet.
    pub(super) fn pending(&self) -> bool {
        self.stored < self.issued
    }

    /// `msg` once every change issued so far is stored: returned to send now, or held.
    pub(super) fn after_stored(&mut self, conn: ConnId, msg: FromMaster) -> Option<FromMaster> {
        if !self.pending() && !self.holds(conn) {
            return Some(msg);
        }
        let wait = self.issued.max(self.waits_of(conn));
        self.queue.push_back((wait, conn, msg));
        None
    }

    /// `msg` in order behind the replies held for `conn`: returned to send now, or held.
    pub(super) fn in_order(&mut self, conn: ConnId, msg: FromMaster) -> Option<FromMaster> {
        if !self.holds(conn) {
            return Some(msg);
        }
        let wait = self.waits_of(conn);
        self.queue.push_back((wait, conn, msg));
        None
    }

    /// Changes through number `upto` are stored: the replies that may go now, in order.
    pub(super) fn stored_through(&mut self, upto: u64) -> Vec<(ConnId, FromMaster)> {
        self.stored = self.stored.max(upto.min(self.issued));
        let stored = self.stored;
        let (ready, waiting): (VecDeque<_>, VecDeque<_>) =
            self.queue.drain(..).partition(|(w, _, _)| *w <= stored);
        self.queue = waiting;
        ready.into_iter().map(|(_, c, m)| (c, m)).collect()
    }

    /// Drops what was held for a closed connection.
    pub(super) fn drop_conn(&mut self, conn: ConnId) {
        self.queue.retain(|(_, c, _)| *c != conn);
    }

    fn holds(&self, conn: ConnId) -> bool {
        self.queue.iter().any(|(_, c, _)| *c == conn)
    }

    /// The number the last reply held for `conn` waits for (0: none held).
    fn waits_of(&self, conn: ConnId) -> u64 {
        self.queue
            .iter()
            .rev()
            .find(|(_, c, _)| *c == conn)
            .map_or(0, |(w, _, _)| *w)
    }
}
