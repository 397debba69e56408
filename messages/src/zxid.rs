//! Transaction ids: the high 32 bits are the leader epoch, the low 32 bits a counter.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A ZooKeeper transaction id, `epoch << 32 | counter`. Ordered as an integer.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Zxid(pub u64);

impl Zxid {
    /// The zero zxid: nothing ever committed.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from an epoch and a counter.
    pub fn new(epoch: u32, counter: u32) -> Self {
        Zxid((u64::from(epoch) << 32) | u64::from(counter))
    }

    /// The leader epoch that proposed this txn.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The position of this txn within its epoch.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_counter_round_trip() {
        let z = Zxid::new(7, 42);
        assert_eq!(z.epoch(), 7);
        assert_eq!(z.counter(), 42);
        assert_eq!(z.to_string(), "0x70000002a");
        assert!(Zxid::new(2, 0) > Zxid::new(1, u32::MAX));
    }
}
