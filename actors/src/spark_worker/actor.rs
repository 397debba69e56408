//! The worker actor: keeps a connection to every master (redialing when one drops), runs
//! executors as child processes, feeds the core their messages, exits and ticks, and carries
//! out its outputs.

use super::core::{Input, MasterIndex, Output, WorkerCore, WorkerSettings};
use super::process::{self, TAIL_LINES};
use crate::framed::{framed, FramedConnection};
use crate::not_a_master::{LinkEnd, NotAMaster};
use actix::prelude::*;
use ensemble_messages::spark::{FromMaster, StderrTail, ToMaster};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// How often the core is ticked.
const TICK: Duration = Duration::from_millis(100);
/// Pause before redialing a master.
const REDIAL: Duration = Duration::from_millis(300);

/// How often a worker with no master connection says so.
const UNREACHABLE_NOTICE: Duration = Duration::from_secs(3);

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
    /// How to kill each running executor or driver, and its process group.
    kills: HashMap<Task, (oneshot::Sender<()>, u32)>,
    /// Its own address, for the tasks that watch executors.
    me: Option<Addr<WorkerActor>>,
    /// Misconfigurations seen: masters that both accepted this worker.
    conflicts: Vec<String>,
    /// Where to say that the worker cannot go on (its host stops it); None once said.
    fatal: Option<mpsc::UnboundedSender<String>>,
    /// Whether the master addresses are something else, from how their connections ended.
    not_a_master: NotAMaster,
}

/// A process the worker runs for a master.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Task {
    /// An application's executor.
    Executor(String, u32),
    /// A cluster-mode driver.
    Driver(String),
}

impl Task {
    /// Where it runs and writes its output, under the work dir.
    fn dir(&self, work_dir: &std::path::Path) -> PathBuf {
        match self {
            Task::Executor(app, exec) => work_dir.join(app).join(exec.to_string()),
            Task::Driver(id) => work_dir.join(id),
        }
    }

    /// The core's input for its end.
    fn exited(self, exit_code: Option<i32>, killed: bool, stderr: Option<StderrTail>) -> Input {
        match self {
            Task::Executor(app_id, exec_id) => Input::ExecutorExited {
                app_id,
                exec_id,
                exit_code,
                killed,
                stderr,
            },
            Task::Driver(driver_id) => Input::DriverExited {
                driver_id,
                exit_code,
                killed,
            },
        }
    }
}

/// A process ended.
#[derive(Message)]
#[rtype(result = "()")]
struct TaskEnded {
    task: Task,
    exit_code: Option<i32>,
    killed: bool,
    stderr: Option<StderrTail>,
}

impl Handler<TaskEnded> for WorkerActor {
    type Result = ();

    fn handle(&mut self, e: TaskEnded, _: &mut Context<Self>) {
        tracing::info!(task = ?e.task, exit_code = ?e.exit_code, killed = e.killed, "process ended");
        self.kills.remove(&e.task);
        self.step(e.task.exited(e.exit_code, e.killed, e.stderr));
    }
}

impl WorkerActor {
    /// A worker of `masters` (`host:port` each) that runs executors under `work_dir`.
    /// A worker of `masters` (`host:port`), running its processes under `work_dir`; why it
    /// cannot go on (refused, or no address is a master) goes to `fatal`.
    pub fn new(
        settings: WorkerSettings,
        masters: Vec<String>,
        work_dir: PathBuf,
        fatal: mpsc::UnboundedSender<String>,
    ) -> Self {
        WorkerActor {
            core: WorkerCore::new(settings),
            not_a_master: NotAMaster::new(masters.len()),
            masters,
            links: HashMap::new(),
            started: Instant::now(),
            dialing: false,
            work_dir,
            kills: HashMap::new(),
            me: None,
            conflicts: Vec::new(),
            fatal: Some(fatal),
        }
    }

    /// The worker cannot go on: says why once, and leaves stopping to its host.
    fn give_up(&mut self, why: String) {
        if let Some(fatal) = self.fatal.take() {
            tracing::error!("{why}; stopping");
            let _ = fatal.send(why);
        }
    }

    /// Starts a process in its directory under the work dir, with its stdout and stderr there
    /// and `env` in its environment, in a process group of its own that dies with the worker;
    /// reports its end to the core. Returns whether it started.
    fn launch(&mut self, task: Task, command: &[String], env: &[(&str, String)]) -> bool {
        let dir = task.dir(&self.work_dir);
        let spawned =
            std::fs::create_dir_all(&dir).and_then(|()| process::spawn(command, &dir, env));
        let (mut child, pgid) = match spawned.and_then(|c| {
            let pid = c.id().ok_or_else(|| std::io::Error::other("no pid"))?;
            Ok((c, pid))
        }) {
            Ok(started) => started,
            Err(err) => {
                tracing::warn!(?task, "failed to start: {err}");
                let stderr = StderrTail {
                    path: dir.join("stderr").display().to_string(),
                    tail: format!(
                        "could not start {}: {err}",
                        command.first().map_or("", String::as_str)
                    ),
                };
                self.step(task.exited(None, false, Some(stderr)));
                return false;
            }
        };
        tracing::info!(?task, pid = pgid, dir = %dir.display(), "launched");
        let (kill, killed) = oneshot::channel();
        self.kills.insert(task.clone(), (kill, pgid));
        let me = self.me.clone();
        actix::spawn(async move {
            let (status, killed) = tokio::select! {
                status = child.wait() => (status, false),
                _ = killed => {
                    process::kill_group(pgid);
                    (child.wait().await, true)
                }
            };
            // What it left running in its group ends with it. (Its pid was just reaped; Linux
            // hands out pids in sequence, so the group id is not another's this soon.)
            process::kill_group(pgid);
            let exit_code = status.ok().and_then(|s| s.code());
            let stderr = match (killed, exit_code) {
                (false, Some(0)) | (true, _) => None,
                _ => read_tail(dir.join("stderr")).await,
            };
            if let Some(me) = me {
                me.do_send(TaskEnded {
                    task,
                    exit_code,
                    killed,
                    stderr,
                });
            }
        });
        true
    }

    fn kill(&mut self, task: Task) {
        if let Some((kill, _)) = self.kills.remove(&task) {
            let _ = kill.send(());
        }
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
                Output::Refused(why) => self.give_up(format!("registration refused: {why}")),
                Output::Fenced { epoch } => {
                    tracing::warn!("ignored a message from a deposed master (epoch 0x{epoch:x})")
                }
                Output::Launch {
                    app_id,
                    exec_id,
                    command,
                    cores,
                    memory_mb,
                } => {
                    let env = [
                        ("APP_ID", app_id.clone()),
                        ("EXECUTOR_ID", exec_id.to_string()),
                        ("EXECUTOR_CORES", cores.to_string()),
                        ("EXECUTOR_MEMORY_MB", memory_mb.to_string()),
                    ];
                    let task = Task::Executor(app_id.clone(), exec_id);
                    if self.launch(task, &command, &env) {
                        self.step(Input::ExecutorStarted { app_id, exec_id });
                    }
                }
                Output::Kill { app_id, exec_id } => self.kill(Task::Executor(app_id, exec_id)),
                Output::LaunchDriver { driver_id, desc } => {
                    let env = [
                        ("DRIVER_ID", driver_id.clone()),
                        ("DRIVER_CORES", desc.cores.to_string()),
                        ("DRIVER_MEMORY_MB", desc.memory_mb.to_string()),
                    ];
                    self.launch(Task::Driver(driver_id), &desc.command, &env);
                }
                Output::KillDriver { driver_id } => self.kill(Task::Driver(driver_id)),
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
            }
        }
    }

    /// What the worker's web UI shows.
    fn view(&self) -> WorkerStatus {
        WorkerStatus {
            spec: self.core.spec().clone(),
            executors: self.core.executors().cloned().collect(),
            drivers: self.core.drivers().cloned().collect(),
            conflicts: self.conflicts.clone(),
            master: self
                .core
                .active()
                .map(|m| format!("spark://{}", self.masters[m])),
            decommissioned: self.core.decommissioned(),
        }
    }
}

impl Actor for WorkerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(ctx.address());
        ctx.run_interval(TICK, |a, _| a.step(Input::Tick));
        ctx.run_interval(UNREACHABLE_NOTICE, |a, _| {
            if a.links.is_empty() {
                tracing::warn!(
                    "cannot reach any master at spark://{}; still trying",
                    a.masters.join(",")
                );
            }
        });
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
                        let end = serve(stream, index, &me).await;
                        me.do_send(MasterLink::Ended(index, end));
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

/// The end of a failed process's stderr, read off the actor's thread.
async fn read_tail(path: PathBuf) -> Option<StderrTail> {
    let shown = path.display().to_string();
    let tail = tokio::task::spawn_blocking(move || process::tail(&path, TAIL_LINES))
        .await
        .ok()?
        .unwrap_or_else(|e| format!("(cannot read it: {e})"));
    Some(StderrTail { path: shown, tail })
}

/// Kills every executor and driver process group: the worker shuts down cleanly.
#[derive(Message)]
#[rtype(result = "()")]
pub struct KillAll;

impl Handler<KillAll> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: KillAll, _: &mut Context<Self>) {
        for (task, (_, pgid)) in self.kills.drain() {
            tracing::info!(?task, pgid, "killing its process group: the worker stops");
            process::kill_group(pgid);
        }
    }
}

/// Runs one master connection until it ends; how it ended.
async fn serve(stream: TcpStream, index: MasterIndex, me: &Addr<WorkerActor>) -> LinkEnd {
    let FramedConnection {
        mut incoming,
        outgoing,
        writer,
    } = framed::<FromMaster, ToMaster>(stream);
    me.do_send(MasterLink::Up(index, outgoing));
    let mut answered = false;
    let ended = loop {
        match incoming.next().await {
            Some(Ok(msg)) => {
                answered = true;
                me.do_send(MasterLink::Message(index, msg));
            }
            Some(Err(e)) => break LinkEnd::of_error(e),
            None => break LinkEnd::closed(),
        }
    };
    me.do_send(MasterLink::Down(index));
    writer.abort();
    if answered {
        LinkEnd::Answered
    } else {
        ended
    }
}

/// A change on a master connection.
#[derive(Message)]
#[rtype(result = "()")]
enum MasterLink {
    Up(MasterIndex, mpsc::UnboundedSender<ToMaster>),
    Message(MasterIndex, FromMaster),
    Down(MasterIndex),
    /// How the connection ended, once it did.
    Ended(MasterIndex, LinkEnd),
}

impl Handler<MasterLink> for WorkerActor {
    type Result = ();

    fn handle(&mut self, m: MasterLink, _: &mut Context<Self>) {
        match m {
            MasterLink::Up(index, sink) => {
                self.links.insert(index, sink);
                self.step(Input::Connected(index));
            }
            MasterLink::Message(master, msg) => {
                self.not_a_master.heard();
                self.step(Input::Message { master, msg })
            }
            MasterLink::Ended(index, end) => {
                if let Some(why) = self.not_a_master.ended(index, end) {
                    let url = self.masters.join(",");
                    self.give_up(format!(
                        "nothing at spark://{url} answers as a Spark master ({why})"
                    ));
                }
            }
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
    /// Its running drivers.
    pub drivers: Vec<ensemble_messages::spark::DriverRef>,
    /// Misconfigurations seen (masters electing in different places).
    pub conflicts: Vec<String>,
    /// The master it is registered with.
    pub master: Option<String>,
    /// Whether it is decommissioned.
    pub decommissioned: bool,
}

/// Decommissions the worker (SIGPWR with spark.decommission.enabled).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Decommission;

impl Handler<Decommission> for WorkerActor {
    type Result = ();

    fn handle(&mut self, _: Decommission, _: &mut Context<Self>) {
        if self.core.decommissioned() {
            tracing::warn!("already decommissioning");
            return;
        }
        tracing::info!("decommissioning: no new executors here; running ones go on");
        self.step(Input::Decommission);
    }
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
