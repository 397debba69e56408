//! Many fake workers and application clients in one process, speaking the real protocol to real
//! masters (for the recovery benchmark of 1,000 workers and 1,000 applications). A fake worker
//! registers with every master, heartbeats the one that accepted it, "runs" the executors it
//! is told to launch (it reports them RUNNING and lists them when a new master asks), and
//! follows MasterChanged; a fake application client registers, tells the standbys its id, and
//! acknowledges MasterChanged. Nothing is executed.

use ensemble_actors::framed::{framed, FramedConnection};
use ensemble_messages::spark::{
    AppDesc, ExecutorRef, ExecutorState, FromMaster, ToMaster, WorkerSpec,
};
use futures::StreamExt;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Fake workers and applications running on their own runtime until dropped.
pub struct Load {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Load {
    /// Starts `workers` fake workers (1 core, 1 GiB each, ids `fake-worker-<i>` on `host`,
    /// ports from 20000) and `apps` fake applications (1 executor core each) against
    /// `masters` (`host:port`), heartbeating every `heartbeat`.
    pub fn start(
        masters: &[String],
        host: &str,
        workers: usize,
        apps: usize,
        heartbeat: Duration,
    ) -> Load {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        for i in 0..workers {
            let port = 20_000 + u16::try_from(i).expect("fewer than 40,000 workers");
            let spec = WorkerSpec {
                id: format!("fake-worker-{i:04}"),
                host: host.to_string(),
                port,
                cores: 1,
                memory_mb: 1024,
                webui: format!("http://{host}:{port}"),
            };
            runtime.spawn(worker(masters.to_vec(), spec, heartbeat));
        }
        for i in 0..apps {
            let desc = AppDesc {
                name: format!("fake-app-{i:04}"),
                command: vec!["sleep".into(), "600".into()],
                max_cores: Some(1),
                executor_cores: 1,
                executor_memory_mb: 256,
                user: "bench".into(),
            };
            runtime.spawn(app(masters.to_vec(), desc));
        }
        Load {
            runtime: Some(runtime),
        }
    }
}

/// Messages from any of the masters: (master index, message, or None once its connection
/// closed).
type Inbox = mpsc::UnboundedReceiver<(usize, Option<FromMaster>)>;

/// Connects to every master (retrying until each answers); a sender per master and one inbox.
async fn connect_all(masters: &[String]) -> (Vec<mpsc::UnboundedSender<ToMaster>>, Inbox) {
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let mut outs = Vec::new();
    for (index, addr) in masters.iter().enumerate() {
        let stream = loop {
            match TcpStream::connect(addr).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let _ = stream.set_nodelay(true);
        let FramedConnection {
            mut incoming,
            outgoing,
            ..
        } = framed::<FromMaster, ToMaster>(stream);
        let inbox_tx = inbox_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = incoming.next().await {
                let _ = inbox_tx.send((index, Some(msg)));
            }
            let _ = inbox_tx.send((index, None));
        });
        outs.push(outgoing);
    }
    (outs, inbox)
}

async fn worker(masters: Vec<String>, spec: WorkerSpec, heartbeat: Duration) {
    let (outs, mut inbox) = connect_all(&masters).await;
    let send = |i: usize, msg: ToMaster| {
        let _ = outs[i].send(msg);
    };
    for i in 0..outs.len() {
        send(i, ToMaster::RegisterWorker(spec.clone()));
    }
    let mut active: Option<usize> = None;
    let mut executors: Vec<ExecutorRef> = Vec::new();
    let mut beat = tokio::time::interval(heartbeat);
    let worker_id = spec.id.clone();
    loop {
        tokio::select! {
            got = inbox.recv() => {
                let Some((i, msg)) = got else { return };
                match msg {
                    Some(FromMaster::RegisteredWorker { .. }) => active = Some(i),
                    Some(FromMaster::MasterChanged { .. }) => {
                        active = Some(i);
                        let executors = executors.clone();
                        let worker_id = worker_id.clone();
                        send(i, ToMaster::WorkerSchedulerStateResponse { worker_id, executors, drivers: Vec::new() });
                    }
                    Some(FromMaster::ReconnectWorker { .. }) => send(i, ToMaster::RegisterWorker(spec.clone())),
                    Some(FromMaster::LaunchExecutor { app_id, exec_id, cores, memory_mb, .. }) => {
                        executors.push(ExecutorRef { app_id: app_id.clone(), exec_id, cores, memory_mb });
                        send(i, ToMaster::ExecutorStateChanged { app_id, exec_id, state: ExecutorState::Running, exit_code: None, stderr: None });
                    }
                    Some(FromMaster::KillExecutor { app_id, exec_id, .. }) => {
                        executors.retain(|e| !(e.app_id == app_id && e.exec_id == exec_id));
                        send(i, ToMaster::ExecutorStateChanged { app_id, exec_id, state: ExecutorState::Killed, exit_code: None, stderr: None });
                    }
                    Some(_) => {}
                    None if active == Some(i) => active = None,
                    None => {}
                }
            }
            _ = beat.tick() => {
                if let Some(a) = active {
                    send(a, ToMaster::Heartbeat { worker_id: worker_id.clone() });
                }
            }
        }
    }
}

async fn app(masters: Vec<String>, desc: AppDesc) {
    let (outs, mut inbox) = connect_all(&masters).await;
    let register = |app_id: Option<String>| ToMaster::RegisterApplication {
        desc: desc.clone(),
        app_id,
    };
    for out in &outs {
        let _ = out.send(register(None));
    }
    let mut id: Option<String> = None;
    while let Some((i, msg)) = inbox.recv().await {
        match msg {
            Some(FromMaster::RegisteredApplication { app_id, .. }) if id.is_none() => {
                // The standbys learn which application this connection is.
                for out in &outs {
                    let _ = out.send(register(Some(app_id.clone())));
                }
                id = Some(app_id);
            }
            Some(FromMaster::MasterChanged { .. }) => {
                if let Some(app_id) = id.clone() {
                    let _ = outs[i].send(ToMaster::MasterChangeAcknowledged { app_id });
                }
            }
            _ => {}
        }
    }
}
