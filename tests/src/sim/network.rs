//! The simulated network: FIFO links with random delays, drops and partitions.

use super::{Event, Sim};
use ensemble_messages::{PeerMessage, Sid};
use rand::Rng;
use std::collections::BTreeSet;

impl Sim {
    pub(super) fn send(&mut self, from: Sid, to: Sid, msg: PeerMessage) {
        if self.blocked.contains(&(from, to))
            || (self.faults && self.rng.random_bool(self.cfg.drop_rate))
        {
            self.last_disturbance = self.now;
            return;
        }
        let Some(target) = self.nodes.get(&to) else {
            return;
        };
        let incarnation = target.incarnation;
        let slow = self.faults && self.rng.random_bool(0.05);
        let delay = if slow {
            self.rng.random_range(20..300)
        } else {
            self.rng.random_range(1..10)
        };
        // TCP keeps order on a link: never deliver before an earlier message.
        let clock = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*clock);
        *clock = at;
        if slow {
            // Late as if lost for a while: timing guarantees wait until it arrives.
            self.last_disturbance = self.last_disturbance.max(at);
        }
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                incarnation,
                msg,
            },
        );
    }

    /// Cuts the servers in two random sides.
    pub(super) fn partition(&mut self) {
        let ids: Vec<Sid> = self.nodes.keys().copied().collect();
        let side: BTreeSet<Sid> = ids
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.5))
            .collect();
        self.trace
            .push(format!("{} partition {:?}", self.now, side));
        for a in &ids {
            for b in &ids {
                if side.contains(a) != side.contains(b) {
                    self.blocked.insert((*a, *b));
                }
            }
        }
    }

    /// Ends every partition.
    pub(super) fn heal(&mut self) {
        self.trace.push(format!("{} heal", self.now));
        self.blocked.clear();
    }
}
