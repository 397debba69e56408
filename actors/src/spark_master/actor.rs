//! The master actor: accepts worker connections, feeds the core their messages, election
//! changes and ticks, and carries out its outputs (send, persist, log).

use super::apps::{AppInfo, AppState};
use super::core::{ConnId, Input, MasterCore, MasterSettings, Output, RecoveryState, WorkerState};
use super::ensemble_link::{self, EnsembleSettings, LinkEvent, Stamped, StoreOp};
use super::file_link;
use crate::accept::{accepted, Accepted};
use crate::framed::{framed, FramedConnection};
use actix::prelude::*;
use ensemble_messages::spark::{DriverState, ExecutorState};
use ensemble_messages::spark::{FromMaster, ToMaster};
use ensemble_messages::zk::SessionId;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[path = "rest_handlers.rs"]
mod rest_handlers;
pub use rest_handlers::{
    not_alive, DecommissionHosts, RestDone, RestKill, RestStatus, RestSubmit, SubmitPending,
};

/// How often the core is ticked.
const TICK: Duration = Duration::from_millis(100);

/// How a master recovers its state (spark.deploy.recoveryMode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// NONE: it leads alone and keeps nothing.
    None,
    /// ZOOKEEPER: it elects and keeps its records through an ensemble.
    Ensemble(EnsembleSettings),
    /// FILESYSTEM: it leads alone and keeps its records in this directory.
    Directory(std::path::PathBuf),
}

/// The master actor.
pub struct MasterActor {
    core: MasterCore,
    recovery: Recovery,
    listener: std::net::TcpListener,
    link_started: bool,
    conns: HashMap<ConnId, mpsc::UnboundedSender<FromMaster>>,
    store: Option<mpsc::UnboundedSender<Stamped>>,
    next_conn: ConnId,
    started: Instant,
    /// What the latch of the master that leads holds while this one is STANDBY: its URL, and
    /// on a second line its web UI.
    leader: Option<String>,
    /// The ensemble session the link holds (none yet at first), told to masters that ask.
    session: SessionId,
    /// Where to say that the master cannot go on (its host stops it); None once said.
    fatal: Option<mpsc::UnboundedSender<String>>,
}

impl MasterActor {
    /// A STANDBY master that serves workers on `listener` (non-blocking) and leads as
    /// `recovery` says; why it cannot go on goes to `fatal`, and its host stops it.
    pub fn new(
        settings: MasterSettings,
        recovery: Recovery,
        listener: std::net::TcpListener,
        fatal: mpsc::UnboundedSender<String>,
    ) -> Self {
        let started = Instant::now();
        let settings = MasterSettings {
            wall_origin_ms: u64::try_from(wall_clock_ms()).unwrap_or(0),
            ..settings
        };
        MasterActor {
            core: MasterCore::new(settings),
            recovery,
            listener,
            link_started: false,
            conns: HashMap::new(),
            store: None,
            next_conn: 0,
            started,
            leader: None,
            session: SessionId::NONE,
            fatal: Some(fatal),
        }
    }

    /// The master cannot go on: says why once, and leaves stopping to its host.
    fn give_up(&mut self, why: String) {
        if let Some(fatal) = self.fatal.take() {
            tracing::error!("{why}; stopping");
            let _ = fatal.send(why);
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn step(&mut self, input: Input) {
        let before = self.core.state();
        let now = self.now();
        for out in self.core.step(input, now) {
            match out {
                Output::Send { conn, msg } => {
                    if let Some(c) = self.conns.get(&conn) {
                        let _ = c.send(msg);
                    }
                }
                Output::PersistWorker(spec) => self.persist(StoreOp::PutWorker(spec)),
                Output::ForgetWorker(id) => {
                    tracing::info!(worker = %id, "removing worker");
                    self.persist(StoreOp::ForgetWorker(id));
                }
                Output::PersistApp(app) => self.persist(StoreOp::PutApp(app)),
                Output::ForgetApp(id) => self.persist(StoreOp::ForgetApp(id)),
                Output::PersistDriver(d) => self.persist(StoreOp::PutDriver(d)),
                Output::ForgetDriver(id) => self.persist(StoreOp::ForgetDriver(id)),
                Output::RecoveryComplete { took_ms } => {
                    tracing::info!("Recovery complete in {took_ms} ms")
                }
            }
        }
        let after = self.core.state();
        if after != before {
            tracing::info!("master state {} -> {}", before.name(), after.name());
        }
        if self.store.is_none() {
            // Recovery mode NONE keeps nothing: every change is as stored as it gets.
            if let Some(seq) = self.core.unstored() {
                let epoch = self.core.epoch();
                self.step(Input::Stored { epoch, seq });
            }
        }
    }

    fn persist(&self, op: StoreOp) {
        if let Some(store) = &self.store {
            let epoch = self.core.epoch();
            let _ = store.send(Stamped { epoch, op });
        }
    }

    /// A snapshot of the registry for the web UI.
    fn view(&self) -> MasterView {
        let now = self.now();
        let wall = wall_clock_ms();
        MasterView {
            url: self.core.settings().url.clone(),
            webui: self.core.settings().webui.clone(),
            leader: self.leader.clone(),
            status: self.core.state(),
            epoch: self.core.epoch(),
            suspended: self.core.suspended(),
            workers: self
                .core
                .workers()
                .map(|w| WorkerView {
                    used: self.core.used(&w.spec.id),
                    id: w.spec.id.clone(),
                    host: w.spec.host.clone(),
                    port: w.spec.port,
                    webui: w.spec.webui.clone(),
                    cores: w.spec.cores,
                    memory_mb: w.spec.memory_mb,
                    state: w.state,
                    last_heartbeat_ms: wall - now.saturating_sub(w.last_heartbeat) as i64,
                })
                .collect(),
            apps: self.core.apps().map(|a| self.app_view(a)).collect(),
            drivers: self
                .core
                .drivers()
                .map(|d| DriverView {
                    id: d.id.clone(),
                    state: d.state,
                    worker: d.worker.clone(),
                    cores: d.desc.cores,
                    memory_mb: d.desc.memory_mb,
                })
                .collect(),
        }
    }
}

impl MasterActor {
    /// One application for the web UI.
    fn app_view(&self, a: &AppInfo) -> AppView {
        let now = self.core.settings().wall_origin_ms + self.now();
        let end = a.ended_ms.unwrap_or(now);
        let webui = |worker: &str| {
            self.core
                .workers()
                .find(|w| w.spec.id == worker)
                .map(|w| w.spec.webui.clone())
                .unwrap_or_default()
        };
        AppView {
            id: a.id.clone(),
            name: a.desc.name.clone(),
            state: a.state,
            cores: a.shown_cores(),
            executor_memory_mb: a.desc.executor_memory_mb,
            user: a.desc.user.clone(),
            submitted_ms: a.submitted_ms,
            duration_ms: end.saturating_sub(a.submitted_ms),
            executors: a
                .executors
                .iter()
                .map(|(n, e)| ExecView {
                    id: *n,
                    worker: e.worker.clone(),
                    worker_webui: webui(&e.worker),
                    state: e.state,
                    cores: e.cores,
                    memory_mb: e.memory_mb,
                })
                .collect(),
        }
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Actor for MasterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match self
            .listener
            .try_clone()
            .and_then(tokio::net::TcpListener::from_std)
        {
            Ok(l) => {
                ctx.add_stream(accepted(l, "master"));
            }
            Err(e) => self.give_up(format!("the master port is unusable: {e}")),
        }
        ctx.run_interval(TICK, |a, _| a.step(Input::Tick));
        // The link outlives supervisor restarts (it reports to the same address).
        if self.link_started {
            return;
        }
        self.link_started = true;
        let (tx, rx) = mpsc::unbounded_channel();
        let me = ctx.address();
        let report = move |ev| me.do_send(Link(ev));
        match self.recovery.clone() {
            Recovery::None => self.step(Input::Elected {
                epoch: 1,
                stored: Vec::new(),
                apps: Vec::new(),
                drivers: Vec::new(),
            }),
            Recovery::Ensemble(settings) => {
                self.store = Some(tx);
                actix::spawn(ensemble_link::run(settings, rx, report));
            }
            Recovery::Directory(dir) => {
                self.store = Some(tx);
                actix::spawn(file_link::run(dir, rx, report));
            }
        }
    }
}

impl Supervised for MasterActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("master actor restarting; its registry and election carry over");
    }
}

/// An election change from the ensemble link.
#[derive(Message)]
#[rtype(result = "()")]
struct Link(LinkEvent);

impl Handler<Link> for MasterActor {
    type Result = ();

    fn handle(&mut self, Link(ev): Link, _: &mut Context<Self>) {
        match ev {
            LinkEvent::Elected {
                epoch,
                stored,
                apps,
                drivers,
            } => {
                self.leader = None;
                tracing::info!(
                    "I have been elected leader! epoch 0x{epoch:x}, {} persisted workers, {} \
                     applications, {} drivers",
                    stored.len(),
                    apps.len(),
                    drivers.len()
                );
                self.step(Input::Elected {
                    epoch,
                    stored,
                    apps,
                    drivers,
                });
            }
            LinkEvent::Deposed => {
                self.leader = None;
                tracing::warn!("lost leadership; back to STANDBY and contending again");
                self.step(Input::Deposed);
            }
            LinkEvent::Suspended => {
                tracing::warn!(
                    "suspended: staying {} without acting",
                    self.core.state().name()
                );
                self.step(Input::Suspended);
            }
            LinkEvent::Resumed => {
                tracing::info!("resumed: acting again as {}", self.core.state().name());
                self.step(Input::Resumed);
            }
            LinkEvent::Stored { epoch, seq } => self.step(Input::Stored { epoch, seq }),
            LinkEvent::LeaderIs(url) => self.leader = Some(url),
            LinkEvent::Session(id) => self.session = id,
        }
    }
}

/// A message from a worker connection.
#[derive(Message)]
#[rtype(result = "()")]
struct FromWorker {
    conn: ConnId,
    msg: Option<ToMaster>,
}

impl Handler<FromWorker> for MasterActor {
    type Result = ();

    fn handle(&mut self, m: FromWorker, _: &mut Context<Self>) {
        match m.msg {
            // Another master probing whether this process still holds its published session.
            Some(ToMaster::Identify) => {
                if let Some(c) = self.conns.get(&m.conn) {
                    let _ = c.send(FromMaster::Identity {
                        session_id: self.session,
                        epoch: self.core.epoch(),
                    });
                }
            }
            Some(msg) => self.step(Input::Message { conn: m.conn, msg }),
            None => {
                self.conns.remove(&m.conn);
                self.step(Input::Disconnected(m.conn));
            }
        }
    }
}

impl StreamHandler<Accepted> for MasterActor {
    fn handle(&mut self, Accepted(stream): Accepted, ctx: &mut Context<Self>) {
        let _ = stream.set_nodelay(true);
        self.next_conn += 1;
        let conn = self.next_conn;
        let FramedConnection {
            mut incoming,
            outgoing,
            ..
        } = framed::<ToMaster, FromMaster>(stream);
        self.conns.insert(conn, outgoing);
        let me = ctx.address();
        actix::spawn(async move {
            while let Some(frame) = incoming.next().await {
                match frame {
                    Ok(msg) => me.do_send(FromWorker {
                        conn,
                        msg: Some(msg),
                    }),
                    Err(e) => {
                        tracing::warn!(conn, "closing a worker connection: {e}");
                        break;
                    }
                }
            }
            me.do_send(FromWorker { conn, msg: None });
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// One worker as the web UI shows it.
#[derive(Clone, Debug)]
pub struct WorkerView {
    /// Worker id.
    pub id: String,
    /// Host.
    pub host: String,
    /// RPC port.
    pub port: u16,
    /// Web UI address.
    pub webui: String,
    /// Cores offered.
    pub cores: u32,
    /// Memory offered, MiB.
    pub memory_mb: u64,
    /// State.
    pub state: WorkerState,
    /// Last heartbeat, wall-clock ms.
    pub last_heartbeat_ms: i64,
    /// Cores and memory (MiB) its live executors hold.
    pub used: (u32, u64),
}

/// One driver as the web UI shows it.
#[derive(Clone, Debug)]
pub struct DriverView {
    /// Driver id.
    pub id: String,
    /// Its state.
    pub state: DriverState,
    /// The worker it runs on.
    pub worker: Option<String>,
    /// Cores it asked for.
    pub cores: u32,
    /// Memory it asked for, MiB.
    pub memory_mb: u64,
}

/// One application as the web UI shows it.
#[derive(Clone, Debug)]
pub struct AppView {
    /// Application id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: AppState,
    /// Cores its live executors hold; once it ended, the most they held at once.
    pub cores: u32,
    /// Memory per executor, MiB.
    pub executor_memory_mb: u64,
    /// Who submitted it.
    pub user: String,
    /// When it was submitted, ms since the Unix epoch.
    pub submitted_ms: u64,
    /// How long it has run (until it ended), ms.
    pub duration_ms: u64,
    /// Its executors.
    pub executors: Vec<ExecView>,
}

/// One executor of an application as the web UI shows it.
#[derive(Clone, Debug)]
pub struct ExecView {
    /// Its number.
    pub id: u32,
    /// The worker it runs on.
    pub worker: String,
    /// That worker's web UI, where its logs are (empty if the worker is not known).
    pub worker_webui: String,
    /// Its state.
    pub state: ExecutorState,
    /// Cores it holds.
    pub cores: u32,
    /// Memory it holds, MiB.
    pub memory_mb: u64,
}

/// The master as the web UI shows it.
#[derive(Clone, Debug)]
pub struct MasterView {
    /// `spark://host:port`.
    pub url: String,
    /// Its own web UI, `http://host:port`.
    pub webui: String,
    /// While STANDBY, what the latch of the master that leads holds, if known: its URL, and on
    /// a second line its web UI.
    pub leader: Option<String>,
    /// Recovery state.
    pub status: RecoveryState,
    /// Leadership epoch (0 in STANDBY).
    pub epoch: i64,
    /// Whether it rides through a lost ensemble connection, not acting.
    pub suspended: bool,
    /// Known workers.
    pub workers: Vec<WorkerView>,
    /// Applications, in submission order.
    pub apps: Vec<AppView>,
    /// Drivers, by id.
    pub drivers: Vec<DriverView>,
}

/// Kills an application (the web UI's kill action); answers whether this master is ALIVE
/// and knew it as running.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KillApp(pub String);

impl Handler<KillApp> for MasterActor {
    type Result = bool;

    fn handle(&mut self, KillApp(id): KillApp, _: &mut Context<Self>) -> bool {
        let active = self.core.apps().any(|a| a.id == id && a.is_active());
        if active && self.core.acting() {
            tracing::info!(app = %id, "killing application on request");
            self.step(Input::KillApp(id));
            return true;
        }
        false
    }
}

/// Kills a driver (the web UI's kill action); answers whether this master is ALIVE and knew
/// it as running.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KillDriver(pub String);

impl Handler<KillDriver> for MasterActor {
    type Result = bool;

    fn handle(&mut self, KillDriver(id): KillDriver, _: &mut Context<Self>) -> bool {
        let running = self
            .core
            .drivers()
            .any(|d| d.id == id && !d.state.is_finished());
        if running && self.core.acting() {
            tracing::info!(driver = %id, "killing driver on request");
            self.step(Input::KillDriver(id));
            return true;
        }
        false
    }
}

/// Asks for a [`MasterView`].
#[derive(Message)]
#[rtype(result = "MasterView")]
pub struct GetView;

impl Handler<GetView> for MasterActor {
    type Result = MessageResult<GetView>;

    fn handle(&mut self, _: GetView, _: &mut Context<Self>) -> MessageResult<GetView> {
        MessageResult(self.view())
    }
}
