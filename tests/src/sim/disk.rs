//! The simulated disks: durable state, writes that wait for an fsync, and crashes that keep
//! a random prefix of them.

use super::Sim;
use ensemble_actors::storage::StorageOp;
use ensemble_actors::zab::Input;
use ensemble_messages::codec::decode;
use ensemble_messages::{Sid, Txn, Zxid};
use rand::Rng;

#[derive(Clone, Debug, Default)]
pub(super) struct Disk {
    pub(super) accepted_epoch: u32,
    pub(super) current_epoch: u32,
    pub(super) snapshot: Vec<Txn>,
    pub(super) log: Vec<Txn>,
}

impl Disk {
    pub(super) fn snapshot_zxid(&self) -> Zxid {
        self.snapshot.last().map_or(Zxid::ZERO, |t| t.zxid)
    }

    /// Whether the txn `zxid` is on this disk, in the log or the snapshot.
    pub(super) fn holds(&self, zxid: Zxid) -> bool {
        let has = |txns: &[Txn]| txns.binary_search_by_key(&zxid, |t| t.zxid).is_ok();
        has(&self.log) || has(&self.snapshot)
    }

    pub(super) fn apply(&mut self, op: &StorageOp) -> Result<(), String> {
        match op {
            StorageOp::Append(txns) => {
                for t in txns {
                    let last = self.log.last().map_or(self.snapshot_zxid(), |l| l.zxid);
                    if t.zxid <= last {
                        return Err(format!("log append out of order: {} after {last}", t.zxid));
                    }
                    self.log.push(t.clone());
                }
            }
            StorageOp::Truncate(z) => self.log.retain(|t| t.zxid <= *z),
            StorageOp::InstallSnapshot(s) => {
                self.snapshot = decode(&s.state).map_err(|e| e.to_string())?;
                self.log.clear();
            }
            StorageOp::AcceptedEpoch(e) => self.accepted_epoch = *e,
            StorageOp::CurrentEpoch(e) => self.current_epoch = *e,
        }
        Ok(())
    }
}

impl Sim {
    pub(super) fn crash(&mut self, id: Sid) {
        let keep_fraction: f64 = self.rng.random();
        let node = self.nodes.get_mut(&id).expect("known node");
        node.front = None;
        node.election = None;
        if node.core.take().is_none() {
            return;
        }
        self.crashes += 1;
        node.incarnation += 1;
        node.fsync_pending = false;
        // Unsynced writes may or may not have reached the disk: keep a random prefix.
        let keep = (node.unsynced.len() as f64 * keep_fraction) as usize;
        let kept: Vec<_> = node.unsynced.drain(..).take(keep).collect();
        for (op, _) in &kept {
            // Ignore errors here: a torn prefix is what the disk model keeps.
            let _ = node.disk.apply(op);
        }
        self.trace.push(format!(
            "{} crash {id} (kept {keep} unsynced ops)",
            self.now
        ));
        let others: Vec<Sid> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for other in others {
            if self.nodes[&other].core.is_some() {
                let _ = self.link_changed(other, id, false);
            }
        }
    }

    pub(super) fn fsync(&mut self, id: Sid) -> Result<(), String> {
        let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
        node.fsync_pending = false;
        let ops: Vec<_> = node.unsynced.drain(..).collect();
        let mut tokens = Vec::new();
        for (op, token) in ops {
            node.disk
                .apply(&op)
                .map_err(|e| format!("node {id}: {e}"))?;
            tokens.extend(token);
        }
        for t in tokens {
            if self.nodes[&id].core.is_none() {
                break;
            }
            self.feed(id, Input::Persisted(t))?;
        }
        Ok(())
    }
}
