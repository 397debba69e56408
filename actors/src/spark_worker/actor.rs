//! The worker actor: keeps a connection to every master (redialing when one drops), feeds the
//! core their messages and ticks, and carries out its outputs.

use super::core::{Input, MasterIndex, Output, WorkerCore, WorkerSettings};
use actix::prelude::*;
use ensemble_messages::codec::PeerCodec;
use ensemble_messages::spark::{ToMaster, ToWorker};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
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
}

impl WorkerActor {
    /// A worker of `masters` (`host:port` each).
    pub fn new(settings: WorkerSettings, masters: Vec<String>) -> Self {
        WorkerActor {
            core: WorkerCore::new(settings),
            masters,
            links: HashMap::new(),
            started: Instant::now(),
            dialing: false,
        }
    }

    fn step(&mut self, input: Input) {
        let now = self.started.elapsed().as_millis() as u64;
        let before = self.core.active();
        for out in self.core.step(input, now) {
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
            }
        }
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

    /// What the worker's web UI shows.
    fn view(&self) -> WorkerStatus {
        WorkerStatus {
            spec: self.core.spec().clone(),
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
        let mut frames = FramedWrite::new(write, PeerCodec::<ToWorker, ToMaster>::default());
        while let Some(msg) = outgoing.recv().await {
            if frames.send(msg).await.is_err() {
                break;
            }
        }
    });
    let mut frames = FramedRead::new(read, PeerCodec::<ToWorker, ToMaster>::default());
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
    Message(MasterIndex, ToWorker),
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
