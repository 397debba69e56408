//! What happens to the cluster: client writes, crashes, restarts, partitions, a reconfig.

use super::{Event, Membership, Sim};
use ensemble_actors::data_tree::{TreeOp, TreeTxn};
use ensemble_messages::Sid;
use rand::Rng;

impl Sim {
    pub(super) fn schedule_faults(&mut self) {
        let end = self.cfg.fault_ms;
        let mut t = 0;
        while t < end {
            t += self.rng.random_range(5..40);
            self.schedule(t, Event::Write);
        }
        let crashes = self.rng.random_range(0..6);
        for _ in 0..crashes {
            let at = self.rng.random_range(200..end);
            let node = self.rng.random_range(1..=self.nodes.len() as Sid);
            self.schedule(at, Event::Crash { node });
            let back = at + self.rng.random_range(50..2_000);
            if back < end {
                self.schedule(back, Event::Restart { node });
            }
        }
        if self.rng.random_bool(0.5) {
            let at = self.rng.random_range(100..end);
            self.schedule(at, Event::Reconfig);
        }
        let partitions = self.rng.random_range(0..3);
        for _ in 0..partitions {
            let at = self.rng.random_range(200..end);
            self.schedule(at, Event::Partition);
            let heal = at + self.rng.random_range(100..3_000);
            if heal < end {
                self.schedule(heal, Event::Heal);
            }
        }
    }

    /// Submits, through a random live server, a reconfig removing one of the voters it knows.
    pub(super) fn reconfig(&mut self) -> Result<(), String> {
        let live: Vec<Sid> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.core.is_some())
            .map(|(id, _)| *id)
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let via = live[self.rng.random_range(0..live.len())];
        let Membership {
            version,
            mut voters,
            observers,
        } = self.nodes[&via].membership.clone();
        if voters.len() < 3 {
            return Ok(());
        }
        let gone = voters.remove(self.rng.random_range(0..voters.len()));
        let list = |ids: &[Sid]| ids.iter().map(Sid::to_string).collect::<Vec<_>>().join(",");
        self.trace
            .push(format!("{} reconfig via {via} removing {gone}", self.now));
        let body = format!("reconfig:{version}:{}:{}", list(&voters), list(&observers));
        self.submit(via, body.into_bytes())
    }

    pub(super) fn submit(&mut self, node: Sid, body: Vec<u8>) -> Result<(), String> {
        let request_id = self.request_id(node);
        self.bodies.insert((node, request_id), body.clone());
        self.propose_later(node, request_id, body);
        Ok(())
    }

    /// A client write through a random live server.
    pub(super) fn write(&mut self) -> Result<(), String> {
        let live: Vec<Sid> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.core.is_some())
            .map(|(id, _)| *id)
            .collect();
        if !live.is_empty() {
            let node = live[self.rng.random_range(0..live.len())];
            self.next_request += 1;
            // A change of the root's data, unique to this write.
            let body = TreeTxn {
                session_id: ensemble_messages::zk::SessionId::NONE,
                time_ms: self.now as i64,
                auth: Vec::new(),
                op: TreeOp::SetData {
                    path: "/".into(),
                    data: format!("w{}", self.next_request).into_bytes(),
                    version: -1,
                },
            }
            .encode();
            self.submit(node, body)?;
        }
        Ok(())
    }
}
