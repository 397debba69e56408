//! The worker actor: keeps a connection to every master (redialing when one drops), runs
//! executors as child processes, feeds the core their messages, exits and ticks, and carries
//! out its outputs.

use super::core::{Input, MasterIndex, Output, WorkerCore, WorkerSettings};
use actix::prelude::*;
use ensemble_messages::codec::PeerCodec;
use ensemble_messages::spark::{FromMaster, ToMaster};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

/// How often the core is ticked.
const TICK: Duration = Duration::from_millis(100);
/// Pause before redialing a master.
const REDIAL: Duration = Duration::from_millis(300);

/// The worker actor.
pub struct WorkerActor {
    core: WorkerCore,
    /// `host:port` of each master, in the order given.
    masters: Vec<String>,
    links: HashMap<MasterIndex, mpsc::UnboundedSender<ToMaster>>,
    started: Instant,
    dialing: bool,
    /// Where executors run and write their output.
    work_dir: PathBuf,
    /// How to kill each running executor.
    kills: HashMap<(String, u32), oneshot::Sender<()>>,
    /// Its own address, for the tasks that watch executors.
    me: Option<Addr<WorkerActor>>,
    /// Misconfigurations seen: masters that both accepted this worker.
    conflicts: Vec<String>,
}

/// An executor to start.
struct Launch {
    app_id: String,
    exec_id: u32,
    command: Vec<String>,
    cores: u32,
    memory_mb: u64,
}

/// An executor process ended.
#[derive(Message)]
#[rtype(result = "()")]
struct ExecutorEnded {
    app_id: String,
    exec_id: u32,
    exit_code: Option<i32>,
    killed: bool,
}

impl Handler<ExecutorEnded> for WorkerActor {
    type Result = ();

    fn handle(&mut self, e: ExecutorEnded, _: &mut Context<Self>) {
        tracing::info!(app_id = %e.app_id, exec_id = e.exec_id, exit_code = ?e.exit_code, killed = e.killed, "executor ended");
        self.kills.remove(&(e.app_id.clone(), e.exec_id));
        self.step(Input::ExecutorExited {
            app_id: e.app_id,
            exec_id: e.exec_id,
            exit_code: e.exit_code,
            killed: e.killed,
        });
    }
}

impl WorkerActor {
    /// A worker of `masters` (`host:port` each) that runs executors under `work_dir`.
    pub fn new(settings: WorkerSettings, masters: Vec<String>, work_dir: PathBuf) -> Self {
        WorkerActor {
            core: WorkerCore::new(settings),
            masters,
            links: HashMap::new(),
            started: Instant::now(),
            dialing: false,
            work_dir,
            kills: HashMap::new(),
            me: None,
            conflicts: Vec::new(),
        }
    }

    /// Starts an executor process in `<work_dir>/<app>/<exec>`, with its stdout and stderr
    /// there, and reports its start and its end.
    fn launch(&mut self, e: Launch) {
        let dir = self.work_dir.join(&e.app_id).join(e.exec_id.to_string());
        let spawned = std::fs::create_dir_all(&dir).and_then(|()| {
            let out = std::fs::File::create(dir.join("stdout"))?;
            let err = std::fs::File::create(dir.join("stderr"))?;
            let mut cmd = tokio::process::Command::new(&e.command[0]);
            cmd.args(&e.command[1..])
                .current_dir(&dir)
                .env("APP_ID", &e.app_id)
                .env("EXECUTOR_ID", e.exec_id.to_string())
                .env("EXECUTOR_CORES", e.cores.to_string())
                .env("EXECUTOR_MEMORY_MB", e.memory_mb.to_string())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true);
            cmd.spawn()
        });
        let me = self.me.clone();
        let (app_id, exec_id) = (e.app_id, e.exec_id);
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                tracing::warn!(%app_id, exec_id, "executor failed to start: {err}");
                self.step(Input::ExecutorExited {
                    app_id,
                    exec_id,
                    exit_code: None,
                    killed: false,
                });
                return;
            }
        };
        tracing::info!(%app_id, exec_id, dir = %dir.display(), "launched executor");
        let (kill, killed) = oneshot::channel();
        self.kills.insert((app_id.clone(), exec_id), kill);
        self.step(Input::ExecutorStarted {
            app_id: app_id.clone(),
            exec_id,
        });
        actix::spawn(async move {
            let (status, killed) = tokio::select! {
                status = child.wait() => (status, false),
                _ = killed => {
                    let _ = child.kill().await;
                    (child.wait().await, true)
                }
            };
            let exit_code = status.ok().and_then(|s| s.code());
            let Some(me) = me else { return };
            me.do_send(ExecutorEnded {
                app_id,
                exec_id,
                exit_code,
                killed,
            });
        });
    }

    fn step(&mut self, input: Input) {
        let now = self.started.elapsed().as_millis() as u64;
        let before = self.core.active();
        let outs = self.core.step(input, now);
        self.carry_out(outs);
        let after = self.core.active();
        if after != before {
            match after {
                Some(m) => tracing::info!(
                    "Successfully registered with master spark://{}",
                    self.masters[m]
                ),
                None => tracing::warn!("no active master; registering again"),
            }
        }
    }

    fn carry_out(&mut self, outs: Vec<Output>) {
        for out in outs {
            match out {
                Output::Send { master, msg } => {
                    if let Some(link) = self.links.get(&master) {
                        let _ = link.send(msg);
                    }
                }
                Output::Refused(why) => {
                    tracing::error!("registration refused: {why}; stopping");
                    System::current().stop_with_code(1);
                }
                Output::Fenced { epoch } => {
                    tracing::warn!("ignored a message from a deposed master (epoch 0x{epoch:x})")
                }
                Output::Launch {
                    app_id,
                    exec_id,
                    command,
                    cores,
                    memory_mb,
                } => self.launch(Launch {
                    app_id,
                    exec_id,
                    command,
                    cores,
                    memory_mb,
                }),
                Output::Conflict { ours, other } => {
                    let report = format!(
                        "two masters accepted this worker: {} (elects at {}) and {} (elects at \
                         {}); they do not share an ensemble and dir, so both are ALIVE. Staying \
                         with {}",
                        ours.0, ours.1, other.0, other.1, ours.0
                    );
                    tracing::error!("{report}");
                    if !self.conflicts.contains(&report) {
                        self.conflicts.push(report);
                    }
                }
                Output::Kill { app_id, exec_id } => {
                    if let Some(kill) = self.kills.remove(&(app_id, exec_id)) {
                        let _ = kill.send(());
                    }
                }
            }
        }
    }

    /// What the worker's web UI shows.
    fn view(&self) -> WorkerStatus {
        WorkerStatus {
            spec: self.core.spec().clone(),
            executors: self.core.executors().cloned().collect(),
            conflicts: self.conflicts.clone(),
            master: self
                .core
                .active()
                .map(|m| format!("spark://{}", self.masters[m])),
        }
    }
}

impl Actor for WorkerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(ctx.address());
        ctx.run_interval(TICK, |a, _| a.step(Input::Tick));
        // The dialers outlive supervisor restarts (they report to the same address).
        if self.dialing {
            return;
        }
        self.dialing = true;
        for (index, addr) in self.masters.iter().enumerate() {
            let me = ctx.address();
            let addr = addr.clone();
            actix::spawn(async move {
                loop {
                    if let Ok(stream) = TcpStream::connect(&addr).await {
                        let _ = stream.set_nodelay(true);
                        serve(stream, index, &me).await;
                    }
                    if !me.connected() {
                        return;
                    }
                    tokio::time::sleep(REDIAL).await;
                }
            });
        }
    }
}

impl Supervised for WorkerActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("worker actor restarting; its registration carries over");
    }
}

/// Runs one master connection until it ends.
async fn serve(stream: TcpStream, index: MasterIndex, me: &Addr<WorkerActor>) {
    let (read, write) = stream.into_split();
    let (sink, mut outgoing) = mpsc::unbounded_channel::<ToMaster>();
    me.do_send(MasterLink::Up(index, sink));
    let writer = actix::spawn(async move {
        let mut frames = FramedWrite::new(write, PeerCodec::<FromMaster, ToMaster>::default());
        while let Some(msg) = outgoing.recv().await {
            if frames.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut frames = FramedRead::new(read, PeerCodec::<FromMaster, ToMaster>::default());
    while let Some(Ok(msg)) = frames.next().await {
        me.do_send(MasterLink::Message(index, msg));
    }
    me.do_send(MasterLink::Down(index));
    writer.abort();
}

/// A change on a master connection.
#[derive(Message)]
#[rtype(result = "()")]
enum MasterLink {
    Up(MasterIndex, mpsc::UnboundedSender<ToMaster>),
    Message(MasterIndex, FromMaster),
    Down(MasterIndex),
}

impl Handler<MasterLink> for WorkerActor {
    type Result = ();

    fn handle(&mut self, m: MasterLink, _: &mut Context<Self>) {
        match m {
            MasterLink::Up(index, sink) => {
                self.links.insert(index, sink);
                self.step(Input::Connected(index));
            }
            MasterLink::Message(master, msg) => self.step(Input::Message { master, msg }),
            MasterLink::Down(index) => {
                self.links.remove(&index);
                self.step(Input::Disconnected(index));
            }
        }
    }
}

/// The worker as its web UI shows it.
#[derive(Clone, Debug)]
pub struct WorkerStatus {
    /// What it registered with.
    pub spec: ensemble_messages::spark::WorkerSpec,
    /// Its running executors.
    pub executors: Vec<ensemble_messages::spark::ExecutorRef>,
    /// Misconfigurations seen (masters electing in different places).
    pub conflicts: Vec<String>,
    /// The master it is registered with.
    pub master: Option<String>,
}

/// Asks for a [`WorkerStatus`].
#[derive(Message)]
#[rtype(result = "WorkerStatus")]
pub struct GetWorkerStatus;

impl Handler<GetWorkerStatus> for WorkerActor {
    type Result = MessageResult<GetWorkerStatus>;

    fn handle(
        &mut self,
        _: GetWorkerStatus,
        _: &mut Context<Self>,
    ) -> MessageResult<GetWorkerStatus> {
        MessageResult(self.view())
    }
}
