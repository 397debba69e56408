//! Deterministic simulation of an ensemble's replication cores.
//!
//! One thread, one seeded RNG, a simulated clock. The network is FIFO per link with random
//! delays, drops and partitions; each disk keeps unsynced writes until a simulated fsync, and a
//! crash keeps only a random prefix of them. After every event the invariants are checked:
//! - at most one established leader per epoch;
//! - no two servers apply different txns at the same position (applied histories are prefixes
//!   of one canonical history, which also makes every committed log a prefix of the leader's);
//! - every write acknowledged to a client is in the canonical history at its zxid, and after
//!   the faults stop every server converges to a history that contains it;
//! - observers never count: when a txn is first applied anywhere, a quorum of the voters
//!   alone holds it (on disk or queued for it);
//! - every observer's applied history is a prefix of the newest established leader's (while
//!   that leader serves).
//!
//! After the fault phase the cluster must elect a leader, commit a new write and converge
//! within a bounded simulated time.
//!
//! Half the seeds also submit a reconfig removing one voter during the faults. Each server
//! keeps the membership it last applied as its file (it survives crashes, as the real
//! membership file); once a reconfig took effect, liveness and convergence are asked of the
//! voters it left, and the servers it removed must stop leading and following before the
//! run counts as recovered.

mod checkers;
mod disk;
mod membership;
mod network;
mod workload;

use disk::Disk;
use ensemble_actors::election::ElectionTiming;
use ensemble_actors::zab::{
    Durable, Input, Output, PeerTiming, PersistToken, QuorumPeer, StorageOp,
};
use ensemble_messages::codec::{decode, encode};
use ensemble_messages::{PeerMessage, Sid, Snapshot, ZabMessage, Zxid};
use membership::{membership_after, membership_of, Membership};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Shape of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of voting servers.
    pub nodes: usize,
    /// Number of observers, besides the voters (ids after theirs).
    pub observers: usize,
    /// Simulated ms of faults and load.
    pub fault_ms: u64,
    /// Simulated ms allowed for recovery once faults stop.
    pub liveness_ms: u64,
    /// Probability that a message is dropped during the fault phase.
    pub drop_rate: f64,
}

impl SimConfig {
    /// A run shape derived from the seed: 3 to 7 voters, 0 to 2 observers, a few simulated
    /// seconds of faults.
    pub fn for_seed(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        SimConfig {
            nodes: [3, 3, 5, 5, 7][rng.random_range(0..5)],
            fault_ms: rng.random_range(3_000..8_000),
            liveness_ms: 30_000,
            drop_rate: [0.0, 0.01, 0.05][rng.random_range(0..3)],
            // Drawn last, so that the other draws of a seed stay what they were.
            observers: [0, 0, 1, 2][rng.random_range(0..4)],
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct SimReport {
    /// Writes acknowledged to clients.
    pub acked: usize,
    /// Length of the canonical committed history.
    pub committed: usize,
    /// Distinct established leaders (epoch, sid).
    pub leaders: usize,
    /// Crashes injected.
    pub crashes: usize,
}

struct Node {
    core: Option<QuorumPeer>,
    incarnation: u64,
    disk: Disk,
    unsynced: Vec<(StorageOp, Option<PersistToken>)>,
    fsync_pending: bool,
    applied: Vec<(Zxid, Vec<u8>)>,
    /// The membership this server last applied.
    membership: Membership,
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: Sid,
        to: Sid,
        incarnation: u64,
        msg: PeerMessage,
    },
    Tick {
        node: Sid,
        incarnation: u64,
    },
    Fsync {
        node: Sid,
        incarnation: u64,
    },
    Crash {
        node: Sid,
    },
    Restart {
        node: Sid,
    },
    Partition,
    Heal,
    Write,
    Reconfig,
}

/// The simulated cluster.
pub struct Sim {
    seed: u64,
    cfg: SimConfig,
    rng: SmallRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Event>>,
    nodes: BTreeMap<Sid, Node>,
    link_clock: BTreeMap<(Sid, Sid), u64>,
    blocked: BTreeSet<(Sid, Sid)>,
    faults: bool,
    next_request: u64,
    canonical: Vec<(Zxid, Vec<u8>)>,
    acked: BTreeMap<Vec<u8>, Zxid>,
    /// Bodies whose submission was refused (a client would retry them).
    refused: BTreeSet<Vec<u8>>,
    leaders: BTreeMap<u32, Sid>,
    crashes: usize,
    trace: Vec<String>,
    bodies: BTreeMap<(Sid, u64), Vec<u8>>,
}

const TICK_EVERY_MS: u64 = 25;

fn timing() -> PeerTiming {
    PeerTiming {
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        election: ElectionTiming {
            finalize_wait_ms: 30,
            initial_timeout_ms: 50,
            max_timeout_ms: 800,
        },
        diff_window: 40,
    }
}

impl Sim {
    /// A cluster for `seed`, all servers started.
    pub fn new(seed: u64, cfg: SimConfig) -> Self {
        let mut sim = Sim {
            seed,
            rng: SmallRng::seed_from_u64(seed),
            cfg,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            nodes: BTreeMap::new(),
            link_clock: BTreeMap::new(),
            blocked: BTreeSet::new(),
            faults: true,
            next_request: 0,
            canonical: Vec::new(),
            acked: BTreeMap::new(),
            refused: BTreeSet::new(),
            leaders: BTreeMap::new(),
            crashes: 0,
            trace: Vec::new(),
            bodies: BTreeMap::new(),
        };
        let configured = sim.configured();
        for id in 1..=(sim.cfg.nodes + sim.cfg.observers) as Sid {
            sim.nodes.insert(
                id,
                Node {
                    core: None,
                    incarnation: 0,
                    disk: Disk::default(),
                    unsynced: Vec::new(),
                    fsync_pending: false,
                    applied: Vec::new(),
                    membership: configured.clone(),
                },
            );
        }
        sim
    }

    /// Runs the fault phase, then the liveness phase; an error names the broken property.
    pub fn run(mut self) -> Result<SimReport, String> {
        let ids: Vec<Sid> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.boot(*id)?;
        }
        self.schedule_faults();
        let fault_end = self.cfg.fault_ms;
        self.run_until(fault_end)?;
        // Liveness: heal, restart everyone, no more drops.
        self.faults = false;
        self.blocked.clear();
        for id in &ids {
            if self.nodes[id].core.is_none() {
                self.boot(*id)?;
            }
        }
        let deadline = fault_end + self.cfg.liveness_ms;
        let mut probe: Option<Vec<u8>> = None;
        let mut attempts = 0;
        while self.now < deadline {
            self.step_one()?;
            if probe.is_none() {
                if let Some(leader) = self.established_leader() {
                    attempts += 1;
                    let body = format!("probe-{}-{attempts}", self.seed).into_bytes();
                    self.submit(leader, body.clone())?;
                    probe = Some(body);
                }
            }
            if let Some(p) = &probe {
                if self.acked.contains_key(p) && self.converged() && self.removed_are_out() {
                    return self.final_checks();
                }
                // A refused probe is submitted again, as a client would; one that may have
                // failed with its leader is too, once a leader is back.
                if self.refused.contains(p)
                    || (self.established_leader().is_none() && !self.acked.contains_key(p))
                {
                    probe = None;
                }
            }
        }
        Err(format!(
            "no liveness: {} ms after faults stopped the cluster has not converged\n{}",
            self.cfg.liveness_ms,
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "  committed history: {} txns, membership {:?}\n",
            self.canonical.len(),
            self.membership()
        );
        for (id, n) in &self.nodes {
            match &n.core {
                Some(c) => s.push_str(&format!(
                    "  node {id}: {:?}, applied {}\n",
                    c.status(),
                    n.applied.len()
                )),
                None => s.push_str(&format!("  node {id}: down\n")),
            }
        }
        s.push_str("  last events:\n");
        for t in self.trace.iter().rev().take(30).rev() {
            s.push_str(&format!("    {t}\n"));
        }
        s
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((at, self.seq, self.events.len() - 1)));
    }

    fn run_until(&mut self, until: u64) -> Result<(), String> {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((t, _, _))| *t <= until)
        {
            self.step_one()?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    fn step_one(&mut self) -> Result<(), String> {
        let Some(Reverse((at, _, idx))) = self.queue.pop() else {
            return Err("event queue ran dry".into());
        };
        self.now = at;
        let Some(ev) = self.events[idx].take() else {
            return Ok(());
        };
        self.handle(ev)?;
        self.check_leaders()?;
        self.check_observers()
    }

    fn handle(&mut self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Deliver {
                from,
                to,
                incarnation,
                msg,
            } => {
                if self.nodes[&to].incarnation == incarnation && self.nodes[&to].core.is_some() {
                    self.feed(to, Input::Message { from, msg })?;
                }
            }
            Event::Tick { node, incarnation } => {
                if self.nodes[&node].incarnation == incarnation && self.nodes[&node].core.is_some()
                {
                    self.feed(node, Input::Tick)?;
                    self.schedule(self.now + TICK_EVERY_MS, Event::Tick { node, incarnation });
                }
            }
            Event::Fsync { node, incarnation } => {
                if self.nodes[&node].incarnation == incarnation {
                    self.fsync(node)?;
                }
            }
            Event::Crash { node } => self.crash(node),
            Event::Restart { node } => {
                if self.nodes[&node].core.is_none() {
                    self.boot(node)?;
                }
            }
            Event::Partition => self.partition(),
            Event::Heal => self.heal(),
            Event::Reconfig => self.reconfig()?,
            Event::Write => self.write()?,
        }
        Ok(())
    }

    fn boot(&mut self, id: Sid) -> Result<(), String> {
        let members: Vec<Sid> = self.nodes.keys().copied().collect();
        let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
        let Membership {
            version,
            voters,
            observers,
        } = node.membership.clone();
        node.incarnation += 1;
        let snap = node.disk.snapshot_zxid();
        let durable = Durable {
            accepted_epoch: node.disk.accepted_epoch,
            current_epoch: node.disk.current_epoch,
            snapshot_zxid: snap,
            log: node
                .disk
                .log
                .iter()
                .filter(|t| t.zxid > snap)
                .cloned()
                .collect(),
        };
        node.applied = node.disk.snapshot.clone();
        let mut core = QuorumPeer::new(id, voters, timing(), durable)
            .with_observers(observers)
            .with_membership(version, std::sync::Arc::new(membership_of));
        let incarnation = node.incarnation;
        let outs = core.start(self.now);
        node.core = Some(core);
        self.trace.push(format!("{} boot {id}", self.now));
        let applied = self.nodes[&id].applied.clone();
        self.check_history(id, &applied, 0)?;
        let jitter = self.rng.random_range(0..TICK_EVERY_MS);
        self.schedule(
            self.now + jitter,
            Event::Tick {
                node: id,
                incarnation,
            },
        );
        self.carry_out(id, outs)?;
        for other in members.into_iter().filter(|o| *o != id) {
            if self.nodes[&other].core.is_some() {
                self.feed(other, Input::PeerConnected(id))?;
                self.feed(id, Input::PeerConnected(other))?;
            }
        }
        Ok(())
    }

    fn feed(&mut self, id: Sid, input: Input) -> Result<(), String> {
        let now = self.now;
        let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) else {
            return Ok(());
        };
        let outs = core.step(input, now);
        self.carry_out(id, outs)
    }

    fn carry_out(&mut self, id: Sid, outs: Vec<Output>) -> Result<(), String> {
        for out in outs {
            match out {
                Output::Send { to, msg } => self.send(id, to, msg),
                Output::Persist { op, token } => {
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    node.unsynced.push((op, token));
                    if !node.fsync_pending {
                        node.fsync_pending = true;
                        let incarnation = node.incarnation;
                        let delay = self.rng.random_range(1..6);
                        self.schedule(
                            self.now + delay,
                            Event::Fsync {
                                node: id,
                                incarnation,
                            },
                        );
                    }
                }
                Output::Apply(txns) => {
                    let from = self.nodes[&id].applied.len();
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    let txns: Vec<(Zxid, Vec<u8>)> =
                        txns.into_iter().map(|t| (t.zxid, t.body)).collect();
                    node.membership = membership_after(node.membership.clone(), &txns);
                    node.applied.extend(txns);
                    let applied = node.applied.clone();
                    self.check_history(id, &applied, from)?;
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    // A background snapshot now and then, as the node's storage takes them.
                    if node.applied.len() % 17 == 0 {
                        node.disk.snapshot = node.applied.clone();
                    }
                }
                Output::InstallSnapshot(s) => {
                    let state: Vec<(Zxid, Vec<u8>)> =
                        decode(&s.state).map_err(|e| e.to_string())?;
                    self.check_history(id, &state, 0)?;
                    let m = membership_after(self.configured(), &state);
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    if let Some(core) = node.core.as_mut() {
                        if core.config_version() != m.version {
                            core.set_membership(m.version, m.voters.clone(), m.observers.clone());
                        }
                    }
                    node.membership = m;
                    node.applied = state;
                }
                Output::SendSnapshotSync { to, epoch, txns } => {
                    let node = &self.nodes[&id];
                    let applied = node
                        .core
                        .as_ref()
                        .map(|c| c.status().applied)
                        .unwrap_or_default();
                    let last = node.applied.last().map_or(Zxid::ZERO, |t| t.0);
                    if last != applied {
                        return Err(format!(
                            "node {id}: state machine at {last} but core applied {applied}"
                        ));
                    }
                    let state = encode(&node.applied).map_err(|e| e.to_string())?;
                    let msg = ZabMessage::NewLeader {
                        epoch,
                        truncate_to: None,
                        snapshot: Some(Snapshot {
                            last_zxid: last,
                            state,
                        }),
                        txns,
                    };
                    self.send(id, to, PeerMessage::Zab(msg));
                }
                Output::Completed { request_id, result } => {
                    let body = self.bodies.remove(&(id, request_id));
                    if let (Err(_), Some(body)) = (&result, &body) {
                        self.refused.insert(body.clone());
                    }
                    if let (Ok(zxid), Some(body)) = (result, body) {
                        let at = self.canonical.iter().find(|(z, _)| *z == zxid);
                        if at.map(|(_, b)| b) != Some(&body) {
                            return Err(format!(
                                "node {id} acknowledged {} at {zxid} but the committed history has {:?} there",
                                String::from_utf8_lossy(&body),
                                at.map(|(_, b)| String::from_utf8_lossy(b).to_string())
                            ));
                        }
                        self.acked.insert(body, zxid);
                    }
                }
            }
        }
        Ok(())
    }
}
