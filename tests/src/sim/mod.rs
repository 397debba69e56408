//! Deterministic simulation of an ensemble's replication cores and of its clients' sessions.
//!
//! One thread, seeded RNGs, a simulated clock. The network is FIFO per link with random
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
//!
//! The state machine is the real data tree on every server, with the real client service
//! (sessions, FIFO replies, watches) and session expiry policy beside it, driven as the quorum
//! peer actor drives them ([`server`]). Simulated clients ([`clients`]) open sessions, create
//! ephemerals, set watches, ping after a third of their timeout without sending, move to
//! another server after two thirds of it without hearing, close, or crash. The checkers add:
//! - every server's tree at a zxid is the committed tree at that zxid;
//! - a server's tree holds exactly the sessions its history leaves open (created, not yet
//!   closed by their owner or expired), and every ephemeral belongs to one of them;
//! - replies reach a client FIFO, with zxids that never go back (while no peer message is
//!   lost: Zab's links are TCP, which loses a message only with its connection);
//! - a watch event matches one registration of the client's, which it consumes (at most once),
//!   and events reach a client in the order of the txns that fired them;
//! - a client told its session expired has a committed txn that closed it;
//! - no session expires while its client, connected to a follower of the expiring leader,
//!   heard from servers serving under that leader at least every half timeout over the last
//!   timeout in which no peer message was lost or late;
//! - after the faults, the established leader expires every session of a client that is gone
//!   within its timeout (counted from the leader's start, at the earliest) and a bound.

mod checkers;
mod clients;
mod disk;
mod election;
mod membership;
mod network;
mod server;
mod workload;

use clients::Client;
use disk::Disk;
use ensemble_actors::client_port::ToClient;
use ensemble_actors::election::{Election, ElectionTiming};
use ensemble_actors::storage::{PersistToken, StorageOp};
use ensemble_actors::zab::{Durable, Input, Output, PeerTiming, QuorumPeer};
use ensemble_messages::codec::{decode, encode};
use ensemble_messages::jute::ConnectRequest;
use ensemble_messages::zk::{OpCode, SessionId};
use ensemble_messages::{PeerMessage, Sid, Snapshot, Txn, ZabMessage, Zxid};
use membership::{membership_after, membership_of, Membership};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use server::Frontend;
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
    /// Number of simulated clients with sessions (their draws come from a stream of their own).
    pub clients: usize,
}

impl SimConfig {
    /// A run shape derived from the seed: 3 to 7 voters, 0 to 2 observers, 0 to 5 clients, a
    /// few simulated seconds of faults.
    pub fn for_seed(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        SimConfig {
            nodes: [3, 3, 5, 5, 7][rng.random_range(0..5)],
            fault_ms: rng.random_range(3_000..8_000),
            liveness_ms: 30_000,
            drop_rate: [0.0, 0.01, 0.05][rng.random_range(0..3)],
            // Drawn last, so that the other draws of a seed stay what they were.
            observers: [0, 0, 1, 2][rng.random_range(0..4)],
            clients: [0, 2, 3, 5][rng.random_range(0..4)],
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
    /// The election core beside it (none while down).
    election: Option<Election>,
    incarnation: u64,
    disk: Disk,
    unsynced: Vec<(StorageOp, Option<PersistToken>)>,
    fsync_pending: bool,
    applied: Vec<Txn>,
    /// The tree, client service and expiry policy (none while down).
    front: Option<Frontend>,
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
    ClientTick {
        client: usize,
    },
    ToServer {
        client: usize,
        server: Sid,
        incarnation: u64,
        conn: u64,
        msg: ClientMsg,
    },
    ToClient {
        client: usize,
        conn: u64,
        frame: ToClient,
        zxid: Zxid,
    },
    /// A txn the request pipeline asked Zab to propose reaches Zab's mailbox.
    Propose {
        node: Sid,
        incarnation: u64,
        request_id: u64,
        body: Vec<u8>,
    },
}

/// What a client sends a server.
#[derive(Debug)]
enum ClientMsg {
    Connect(ConnectRequest),
    Packet { xid: i32, op: OpCode, body: Vec<u8> },
    Gone,
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
    canonical: Vec<Txn>,
    /// Draws of the clients (their own stream, so that runs without clients are unchanged).
    crng: SmallRng,
    clients: Vec<Client>,
    next_conn: u64,
    /// Per client connection direction: no delivery before an earlier frame.
    client_clock: BTreeMap<u64, u64>,
    /// Delays of the hop from a server's request pipeline to its Zab actor (their own stream).
    hop_rng: SmallRng,
    /// Per server: no proposal reaches Zab before an earlier one.
    propose_clock: BTreeMap<Sid, u64>,
    /// The canonical tree after each committed zxid.
    trees: BTreeMap<Zxid, ensemble_actors::data_tree::DataTree>,
    /// Paths clients created ephemeral znodes at.
    ephemeral_paths: BTreeSet<String>,
    /// When a peer message was last lost (dropped or partitioned).
    last_disturbance: u64,
    /// Sessions a committed txn closed or expired.
    sessions_closed: BTreeSet<SessionId>,
    /// When each session's createSession was first applied.
    session_born: BTreeMap<SessionId, u64>,
    /// When each server last started serving.
    serving_since: BTreeMap<Sid, u64>,
    /// Per server: the sessions live in its applied history, with their owners.
    lives: BTreeMap<Sid, BTreeMap<SessionId, Sid>>,
    fault_end: u64,
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
            crng: SmallRng::seed_from_u64(seed ^ 0xc11e),
            clients: Vec::new(),
            next_conn: 0,
            client_clock: BTreeMap::new(),
            hop_rng: SmallRng::seed_from_u64(seed ^ 0x40b),
            propose_clock: BTreeMap::new(),
            trees: BTreeMap::new(),
            ephemeral_paths: BTreeSet::new(),
            last_disturbance: 0,
            sessions_closed: BTreeSet::new(),
            session_born: BTreeMap::new(),
            serving_since: BTreeMap::new(),
            lives: BTreeMap::new(),
            fault_end: 0,
        };
        for _ in 0..sim.cfg.clients {
            let requested = sim.crng.random_range(300..3_000);
            sim.clients.push(Client::new(requested));
        }
        let configured = sim.configured();
        for id in 1..=(sim.cfg.nodes + sim.cfg.observers) as Sid {
            sim.nodes.insert(
                id,
                Node {
                    core: None,
                    election: None,
                    incarnation: 0,
                    disk: Disk::default(),
                    unsynced: Vec::new(),
                    fsync_pending: false,
                    applied: Vec::new(),
                    front: None,
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
        self.start_clients();
        let fault_end = self.cfg.fault_ms;
        self.fault_end = fault_end;
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
            let settled = self.sessions_settled()?;
            if let Some(p) = &probe {
                if settled
                    && self.acked.contains_key(p)
                    && self.converged()
                    && self.removed_are_out()
                {
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
                    match msg {
                        PeerMessage::SessionTouch(ids) => self.touches_reported(to, &ids),
                        PeerMessage::Election(n) => self.notification(to, from, n)?,
                        msg => self.feed(to, Input::Message { from, msg })?,
                    }
                }
            }
            Event::Tick { node, incarnation } => {
                if self.nodes[&node].incarnation == incarnation && self.nodes[&node].core.is_some()
                {
                    self.feed(node, Input::Tick)?;
                    self.election_tick(node)?;
                    self.check_sessions(node)?;
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
            Event::ClientTick { client } => self.client_tick(client)?,
            Event::ToServer {
                client,
                server,
                incarnation,
                conn,
                msg,
            } => {
                if self.nodes[&server].incarnation == incarnation {
                    self.client_message(server, client, conn, msg)?;
                }
            }
            Event::ToClient {
                client,
                conn,
                frame,
                zxid,
            } => self.client_receives(client, conn, frame, zxid)?,
            Event::Propose {
                node,
                incarnation,
                request_id,
                body,
            } => {
                if self.nodes[&node].incarnation == incarnation {
                    self.feed(node, Input::Submit { request_id, body })?;
                }
            }
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
        node.election = Some(Self::new_election(id));
        node.front = Some(Frontend::new(id, &node.applied, self.now, timing().tick_ms));
        let applied = node.applied.clone();
        self.reset_lives(id, &applied);
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
                self.link_changed(other, id, true)?;
                self.link_changed(id, other, true)?;
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
        self.carry_out(id, outs)?;
        self.serving_changed(id);
        Ok(())
    }

    fn carry_out(&mut self, id: Sid, outs: Vec<Output>) -> Result<(), String> {
        let mut requests = Vec::new();
        for out in outs {
            match out {
                Output::Send { to, msg } => self.send(id, to, msg),
                Output::Election(request) => requests.push(request),
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
                    self.check_quorum_durable(id, &txns)?;
                    let from = self.nodes[&id].applied.len();
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    node.membership = membership_after(node.membership.clone(), &txns);
                    node.applied.extend(txns.iter().cloned());
                    // Lent out for the check, which may read other servers.
                    let applied = std::mem::take(&mut node.applied);
                    let checked = self.check_history(id, &applied, from);
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    node.applied = applied;
                    checked?;
                    self.apply_to_tree(id, &txns)?;
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    // A background snapshot now and then, as the node's storage takes them.
                    if node.applied.len() % 17 == 0 {
                        node.disk.snapshot = node.applied.clone();
                    }
                }
                Output::InstallSnapshot(s) => {
                    let state: Vec<Txn> = decode(&s.state).map_err(|e| e.to_string())?;
                    self.check_history(id, &state, 0)?;
                    let m = membership_after(self.configured(), &state);
                    let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
                    if let Some(core) = node.core.as_mut() {
                        if core.config_version() != m.version {
                            core.set_membership(m.version, m.voters.clone(), m.observers.clone());
                        }
                    }
                    node.membership = m;
                    node.applied = state.clone();
                    self.reset_lives(id, &state);
                    self.install_tree(id, &state)?;
                }
                Output::SendSnapshotSync { to, epoch, txns } => {
                    let node = &self.nodes[&id];
                    let applied = node
                        .core
                        .as_ref()
                        .map(|c| c.status().applied)
                        .unwrap_or_default();
                    let last = node.applied.last().map_or(Zxid::ZERO, |t| t.zxid);
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
                            state: state.into(),
                        }),
                        txns,
                    };
                    self.send(id, to, PeerMessage::Zab(msg));
                }
                Output::Completed { request_id, result } => {
                    let Some(body) = self.bodies.remove(&(id, request_id)) else {
                        self.client_completed(id, request_id, result)?;
                        continue;
                    };
                    if result.is_err() {
                        self.refused.insert(body.clone());
                    }
                    if let Ok(zxid) = result {
                        let at = self.canonical.iter().find(|t| t.zxid == zxid);
                        if at.map(|t| &t.body) != Some(&body) {
                            return Err(format!(
                                "node {id} acknowledged {} at {zxid} but the committed history has {:?} there",
                                String::from_utf8_lossy(&body),
                                at.map(|t| String::from_utf8_lossy(&t.body).to_string())
                            ));
                        }
                        self.acked.insert(body, zxid);
                    }
                }
            }
        }
        self.propose_submitted(id);
        self.carry_requests(id, requests)
    }
}
