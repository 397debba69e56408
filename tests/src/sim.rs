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

use ensemble_actors::election::ElectionTiming;
use ensemble_actors::zab::membership::ProposedMembership;
use ensemble_actors::zab::{
    Durable, Input, Output, PeerTiming, PersistToken, QuorumPeer, StorageOp,
};
use ensemble_messages::codec::{decode, encode};
use ensemble_messages::{PeerMessage, ServerState, Sid, Snapshot, Txn, ZabMessage, Zxid};
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

#[derive(Clone, Debug, Default)]
struct Disk {
    accepted_epoch: u32,
    current_epoch: u32,
    snapshot: Vec<(Zxid, Vec<u8>)>,
    log: Vec<Txn>,
}

impl Disk {
    fn snapshot_zxid(&self) -> Zxid {
        self.snapshot.last().map_or(Zxid::ZERO, |t| t.0)
    }

    fn apply(&mut self, op: &StorageOp) -> Result<(), String> {
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

/// A config version, its voters and its observers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Membership {
    version: u64,
    voters: Vec<Sid>,
    observers: Vec<Sid>,
}

/// A simulated reconfig body:
/// `reconfig:<expected version>:<voter,voter,...>:<observer,observer,...>`.
fn membership_of(body: &[u8]) -> Option<ProposedMembership> {
    let text = std::str::from_utf8(body).ok()?.strip_prefix("reconfig:")?;
    let mut parts = text.splitn(3, ':');
    let expected = parts.next()?.parse().ok()?;
    let ids = |list: &str| -> Option<Vec<Sid>> {
        list.split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().ok())
            .collect()
    };
    Some(ProposedMembership {
        expected_version: expected,
        voters: ids(parts.next()?)?,
        observers: ids(parts.next()?)?,
    })
}

/// `m` after applying `history` with Zab's rule: a reconfig takes effect if it was based on
/// the current version, and its zxid becomes the version.
fn membership_after(mut m: Membership, history: &[(Zxid, Vec<u8>)]) -> Membership {
    for (zxid, body) in history {
        if let Some(p) = membership_of(body) {
            if p.expected_version == m.version {
                m = Membership {
                    version: zxid.0,
                    voters: p.voters,
                    observers: p.observers,
                };
            }
        }
    }
    m
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

    /// The membership the servers are configured with: the first `nodes` ids vote, the
    /// `observers` after them observe.
    fn configured(&self) -> Membership {
        let first = self.cfg.nodes as Sid + 1;
        Membership {
            version: 0,
            voters: (1..first).collect(),
            observers: (first..first + self.cfg.observers as Sid).collect(),
        }
    }

    /// The membership of the committed history's last effective reconfig (the configured
    /// one without any).
    fn membership(&self) -> Membership {
        membership_after(self.configured(), &self.canonical)
    }

    /// The voters of the committed history's last effective reconfig.
    fn voters(&self) -> Vec<Sid> {
        self.membership().voters
    }

    /// The observers of the committed history's last effective reconfig.
    fn observers(&self) -> Vec<Sid> {
        self.membership().observers
    }

    fn established_leader(&self) -> Option<Sid> {
        let voters = self.voters();
        let members = || {
            self.nodes
                .iter()
                .filter(|(id, _)| voters.contains(id))
                .map(|(_, n)| n)
        };
        let mut leaders = self.nodes.iter().filter_map(|(id, n)| {
            let s = n.core.as_ref()?.status();
            (s.state == ServerState::Leading && s.serving).then_some(*id)
        });
        let l = leaders.next()?;
        let followers = members()
            .filter(|n| n.core.as_ref().is_some_and(|c| c.status().serving))
            .count();
        (followers == voters.len()).then_some(l)
    }

    fn converged(&self) -> bool {
        let voters = self.voters();
        let mut histories = self
            .nodes
            .iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, n)| &n.applied);
        let first = histories.next();
        first.is_some_and(|f| histories.all(|h| h == f) && f.len() == self.canonical.len())
    }

    /// Whether the servers a reconfig removed stopped leading, following and observing (one
    /// that missed the commit stops once its leader's silence passes syncLimit).
    fn removed_are_out(&self) -> bool {
        let Membership {
            voters, observers, ..
        } = self.membership();
        self.nodes.iter().all(|(id, n)| {
            voters.contains(id)
                || observers.contains(id)
                || !n.core.as_ref().is_some_and(|c| c.status().serving)
        })
    }

    fn final_checks(self) -> Result<SimReport, String> {
        for (body, zxid) in &self.acked {
            let found = self.canonical.iter().find(|(z, _)| z == zxid);
            if found.map(|(_, b)| b) != Some(body) {
                return Err(format!(
                    "acknowledged write {} at {zxid} is missing from the final history",
                    String::from_utf8_lossy(body)
                ));
            }
        }
        Ok(SimReport {
            acked: self.acked.len(),
            committed: self.canonical.len(),
            leaders: self.leaders.len(),
            crashes: self.crashes,
        })
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

    fn schedule_faults(&mut self) {
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

    /// How many voters hold `zxid` on disk or queued for it.
    fn voters_holding(&self, zxid: Zxid) -> usize {
        let holds = |n: &Node| {
            n.disk.snapshot.iter().any(|(z, _)| *z == zxid)
                || n.disk.log.iter().any(|t| t.zxid == zxid)
                || n.unsynced.iter().any(
                    |(op, _)| matches!(op, StorageOp::Append(ts) if ts.iter().any(|t| t.zxid == zxid)),
                )
        };
        self.voters()
            .iter()
            .filter(|v| self.nodes.get(v).is_some_and(holds))
            .count()
    }

    /// Every observer's applied history is a prefix of the newest established leader's
    /// (histories are already prefixes of one canonical history, so lengths tell).
    fn check_observers(&self) -> Result<(), String> {
        let newest = self
            .nodes
            .iter()
            .filter_map(|(id, n)| {
                let s = n.core.as_ref()?.status();
                (s.state == ServerState::Leading && s.serving).then_some((s.current_epoch, *id))
            })
            .max();
        // A leader that has not noticed yet that a newer one replaced it is no reference.
        let newest_ever = self.leaders.keys().next_back().copied();
        let Some((_, leader)) = newest.filter(|(epoch, _)| Some(*epoch) == newest_ever) else {
            return Ok(());
        };
        let led = self.nodes[&leader].applied.len();
        for o in self.observers() {
            let n = &self.nodes[&o];
            if n.core.is_some() && n.applied.len() > led {
                return Err(format!(
                    "observer {o} applied {} txns, beyond leader {leader}'s {led}\n{}",
                    n.applied.len(),
                    self.describe()
                ));
            }
        }
        Ok(())
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
            Event::Partition => {
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
            Event::Heal => {
                self.trace.push(format!("{} heal", self.now));
                self.blocked.clear();
            }
            Event::Reconfig => self.reconfig()?,
            Event::Write => {
                let live: Vec<Sid> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.core.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                if !live.is_empty() {
                    let node = live[self.rng.random_range(0..live.len())];
                    self.next_request += 1;
                    let body = format!("w{}", self.next_request).into_bytes();
                    self.submit(node, body)?;
                }
            }
        }
        Ok(())
    }

    /// Submits, through a random live server, a reconfig removing one of the voters it knows.
    fn reconfig(&mut self) -> Result<(), String> {
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

    fn submit(&mut self, node: Sid, body: Vec<u8>) -> Result<(), String> {
        self.next_request += 1;
        let request_id = self.next_request;
        self.bodies.insert((node, request_id), body.clone());
        self.feed(node, Input::Submit { request_id, body })
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

    fn crash(&mut self, id: Sid) {
        let keep_fraction: f64 = self.rng.random();
        let node = self.nodes.get_mut(&id).expect("known node");
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
                let _ = self.feed(other, Input::PeerDisconnected(id));
            }
        }
    }

    fn fsync(&mut self, id: Sid) -> Result<(), String> {
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

    fn send(&mut self, from: Sid, to: Sid, msg: PeerMessage) {
        if self.blocked.contains(&(from, to))
            || (self.faults && self.rng.random_bool(self.cfg.drop_rate))
        {
            return;
        }
        let Some(target) = self.nodes.get(&to) else {
            return;
        };
        let incarnation = target.incarnation;
        let delay = if self.faults && self.rng.random_bool(0.05) {
            self.rng.random_range(20..300)
        } else {
            self.rng.random_range(1..10)
        };
        // TCP keeps order on a link: never deliver before an earlier message.
        let clock = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*clock);
        *clock = at;
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

    /// Checks `history[from..]` against the canonical history, extending it.
    fn check_history(
        &mut self,
        id: Sid,
        history: &[(Zxid, Vec<u8>)],
        from: usize,
    ) -> Result<(), String> {
        for (i, entry) in history.iter().enumerate().skip(from) {
            match self.canonical.get(i) {
                Some(c) if c == entry => {}
                Some(c) => {
                    return Err(format!(
                        "node {id} applied {} ({}) at position {i} where another server applied {} ({})",
                        entry.0,
                        String::from_utf8_lossy(&entry.1),
                        c.0,
                        String::from_utf8_lossy(&c.1)
                    ))
                }
                None => {
                    let holding = self.voters_holding(entry.0);
                    if holding <= self.cfg.nodes / 2 {
                        return Err(format!(
                            "node {id} applied {} first, but only {holding} of {} voters hold it\n{}",
                            entry.0,
                            self.cfg.nodes,
                            self.describe()
                        ));
                    }
                    self.canonical.push(entry.clone())
                }
            }
        }
        Ok(())
    }

    fn check_leaders(&mut self) -> Result<(), String> {
        for (id, n) in &self.nodes {
            let Some(core) = &n.core else { continue };
            let s = core.status();
            if s.state == ServerState::Leading && s.serving {
                let prev = *self.leaders.entry(s.current_epoch).or_insert(*id);
                if prev != *id {
                    return Err(format!(
                        "two leaders established in epoch {}: {prev} and {id}",
                        s.current_epoch
                    ));
                }
            }
        }
        Ok(())
    }
}
