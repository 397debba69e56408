//! `ensemble submit`: in client deploy mode, registers an application with the ALIVE master
//! (this process is the driver) and follows it until it ends; connections to every master are
//! kept and redialed, so the application follows a master failover. In cluster deploy mode,
//! hands the command to the ALIVE master as a driver that a worker runs, and returns.

use crate::spark::parse_masters;
use ensemble_actors::framed::{framed, FramedConnection};
use ensemble_actors::not_a_master::{LinkEnd, NotAMaster};
use ensemble_config::spark::parse_memory_mb;
use ensemble_messages::spark::{AppDesc, DriverDesc, FromMaster, StderrTail, ToMaster};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long to look for an ALIVE master before giving up.
const REGISTER_DEADLINE: Duration = Duration::from_secs(30);
/// How long to wait for any master to accept a connection.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// Pause before redialing a master.
const REDIAL: Duration = Duration::from_millis(300);

/// Arguments of `ensemble submit`.
#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// Masters, `spark://host1:port1,host2:port2,...` (with --status or --kill, their REST
    /// gateways: `spark://host:6066,...` or `http://host:6066`).
    #[arg(long)]
    master: String,
    /// Prints the status of a cluster-mode driver, from the masters' REST gateways.
    #[arg(long, value_name = "ID", conflicts_with = "kill")]
    status: Option<String>,
    /// Kills a cluster-mode driver, through the masters' REST gateways.
    #[arg(long, value_name = "ID")]
    kill: Option<String>,
    /// client: this process is the driver; cluster: a worker runs COMMAND as the driver.
    #[arg(long, default_value = "client")]
    deploy_mode: String,
    /// Relaunch the driver when it fails or its worker is lost (cluster mode).
    #[arg(long)]
    supervise: bool,
    /// Cores of the driver (cluster mode).
    #[arg(long, default_value_t = 1)]
    driver_cores: u32,
    /// Memory of the driver, e.g. 512m (cluster mode).
    #[arg(long, default_value = "512m")]
    driver_memory: String,
    /// spark.cores.max: cores for all executors; default every core alive now.
    #[arg(long)]
    total_executor_cores: Option<u32>,
    /// Cores per executor.
    #[arg(long, default_value_t = 1)]
    executor_cores: u32,
    /// Memory per executor, e.g. 512m.
    #[arg(long, default_value = "512m")]
    executor_memory: String,
    /// Application name.
    #[arg(long, default_value = "ensemble-app")]
    name: String,
    /// The executor command and its arguments, after `--`.
    #[arg(last = true, required_unless_present_any = ["status", "kill"])]
    command: Vec<String>,
}

/// What to submit.
enum Submission {
    /// Client deploy mode.
    App(AppDesc),
    /// Cluster deploy mode.
    Driver(DriverDesc),
}

/// Checks the arguments into what to submit.
fn describe(args: &SubmitArgs) -> Result<Submission, String> {
    match args.deploy_mode.as_str() {
        "client" if args.supervise => {
            return Err("--supervise needs --deploy-mode cluster".into());
        }
        "client" => {}
        "cluster" => {
            if args.driver_cores == 0 {
                return Err("--driver-cores must be at least 1".into());
            }
            let memory_mb = parse_memory_mb(&args.driver_memory).map_err(|e| e.to_string())?;
            if memory_mb == 0 {
                return Err("--driver-memory must be at least 1m".into());
            }
            return Ok(Submission::Driver(DriverDesc {
                command: args.command.clone(),
                cores: args.driver_cores,
                memory_mb,
                supervise: args.supervise,
            }));
        }
        other => return Err(format!("--deploy-mode {other} is not client or cluster")),
    }
    if args.executor_cores == 0 {
        return Err("--executor-cores must be at least 1".into());
    }
    if args.total_executor_cores == Some(0) {
        return Err("--total-executor-cores must be at least 1".into());
    }
    let executor_memory_mb = parse_memory_mb(&args.executor_memory).map_err(|e| e.to_string())?;
    if executor_memory_mb == 0 {
        return Err("--executor-memory must be at least 1m".into());
    }
    Ok(Submission::App(AppDesc {
        name: args.name.clone(),
        command: args.command.clone(),
        max_cores: args.total_executor_cores,
        executor_cores: args.executor_cores,
        executor_memory_mb,
        user: submitting_user(),
    }))
}

/// Who submits, as Spark names them: SPARK_USER, else the login name (USER), else `unknown`.
fn submitting_user() -> String {
    ["SPARK_USER", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The open master connections, and which masters were asked and have not answered yet: a
/// request goes to each master at most once at a time, so the ALIVE master never receives it
/// twice (which would register the application or driver twice).
struct Links {
    links: HashMap<usize, mpsc::UnboundedSender<ToMaster>>,
    asked: std::collections::HashSet<usize>,
    /// Whether the master addresses are something else, from how their connections ended.
    not_a_master: NotAMaster,
}

impl Links {
    /// Links to `masters` addresses, none open yet.
    fn new(masters: usize) -> Self {
        Links {
            links: HashMap::new(),
            asked: std::collections::HashSet::new(),
            not_a_master: NotAMaster::new(masters),
        }
    }

    /// The connection to `index` ended as `end`: an error once no master ever answered and
    /// every address is judged not a master.
    fn ended(&mut self, index: usize, end: LinkEnd, url: &str) -> Result<(), String> {
        match self.not_a_master.ended(index, end) {
            Some(why) => Err(format!(
                "nothing at {url} answers as a Spark master ({why})"
            )),
            None => Ok(()),
        }
    }

    fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// A connection opened: ask it.
    fn up(&mut self, index: usize, link: mpsc::UnboundedSender<ToMaster>, request: &ToMaster) {
        let _ = link.send(request.clone());
        self.asked.insert(index);
        self.links.insert(index, link);
    }

    fn down(&mut self, index: usize) {
        self.links.remove(&index);
        self.asked.remove(&index);
    }

    /// A master answered that it is not the one to ask.
    fn answered(&mut self, index: usize) {
        self.asked.remove(&index);
    }

    /// Asks every connected master not waiting on an answer.
    fn ask_unasked(&mut self, request: &ToMaster) {
        for (index, link) in &self.links {
            if self.asked.insert(*index) {
                let _ = link.send(request.clone());
            }
        }
    }

    /// Sends to every connected master.
    fn tell_all(&self, msg: &ToMaster) {
        for link in self.links.values() {
            let _ = link.send(msg.clone());
        }
    }
}

enum Event {
    Up(usize, mpsc::UnboundedSender<ToMaster>),
    /// How the connection ended, once it did.
    Ended(usize, LinkEnd),
    Message(usize, FromMaster),
    Down(usize),
}

/// Runs the driver side of an application; the exit code is 0 once it FINISHED.
pub fn run(args: SubmitArgs) -> Result<i32, Box<dyn std::error::Error>> {
    if let Some(id) = &args.status {
        return super::rest_client::status(&args.master, id);
    }
    if let Some(id) = &args.kill {
        return super::rest_client::kill(&args.master, id);
    }
    let submission = describe(&args)?;
    let masters = parse_masters(&args.master)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let events = dial_all(&masters);
        let target = Target {
            url: args.master,
            masters: masters.len(),
        };
        match submission {
            Submission::App(desc) => follow(desc, events, target).await,
            Submission::Driver(desc) => submit_driver(desc, events, target).await,
        }
    })
}

/// The masters a submission goes to.
struct Target {
    /// `spark://host1:port1,...`, for messages.
    url: String,
    /// How many addresses it lists.
    masters: usize,
}

/// Dials every master, and redials each whose connection ends.
fn dial_all(masters: &[String]) -> mpsc::UnboundedReceiver<Event> {
    let (events_tx, events) = mpsc::unbounded_channel();
    for (index, addr) in masters.iter().enumerate() {
        let tx = events_tx.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                if let Ok(stream) = TcpStream::connect(&addr).await {
                    if let Some(end) = dial(stream, index, &tx).await {
                        let _ = tx.send(Event::Ended(index, end));
                    }
                }
                tokio::time::sleep(REDIAL).await;
            }
        });
    }
    events
}

/// Hands a driver to the ALIVE master; returns once it was accepted or refused.
async fn submit_driver(
    desc: DriverDesc,
    mut events: mpsc::UnboundedReceiver<Event>,
    target: Target,
) -> Result<i32, Box<dyn std::error::Error>> {
    let url = target.url.clone();
    let mut links = Links::new(target.masters);
    let request = ToMaster::RequestSubmitDriver(desc);
    let started = tokio::time::Instant::now();
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = retry.tick() => {
                if links.is_empty() && started.elapsed() > CONNECT_DEADLINE {
                    return Err(format!("cannot reach any master at {url}").into());
                }
                if started.elapsed() > REGISTER_DEADLINE {
                    return Err(format!("no ALIVE master at {url} accepted the driver").into());
                }
                links.ask_unasked(&request);
                continue;
            }
        };
        match event {
            None => return Err("every master connection ended".into()),
            Some(Event::Up(index, link)) => links.up(index, link, &request),
            Some(Event::Ended(index, end)) => links.ended(index, end, &url)?,
            Some(Event::Down(index)) => links.down(index),
            Some(Event::Message(index, FromMaster::MasterInStandby { .. })) => {
                links.not_a_master.heard();
                links.answered(index)
            }
            Some(Event::Message(_, FromMaster::SubmitDriverResponse { driver_id, message })) => {
                return match driver_id {
                    Some(_) => {
                        println!("{message}");
                        Ok(0)
                    }
                    None => {
                        eprintln!("ensemble submit: the master refused the driver: {message}");
                        Ok(1)
                    }
                };
            }
            Some(Event::Message(..)) => links.not_a_master.heard(),
        }
    }
}

async fn follow(
    desc: AppDesc,
    mut events: mpsc::UnboundedReceiver<Event>,
    target: Target,
) -> Result<i32, Box<dyn std::error::Error>> {
    let url = target.url.clone();
    let mut links = Links::new(target.masters);
    let mut app_id: Option<String> = None;
    let mut reached = false;
    // The stderr of the last executor that failed, shown if the application FAILS.
    let mut last_failure: Option<(u32, StderrTail)> = None;
    let started = tokio::time::Instant::now();
    let deadline = started + REGISTER_DEADLINE;
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    let register = |app_id: &Option<String>| ToMaster::RegisterApplication {
        desc: desc.clone(),
        app_id: app_id.clone(),
    };
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = retry.tick() => {
                if app_id.is_none() {
                    if !reached && started.elapsed() > CONNECT_DEADLINE {
                        return Err(format!("cannot reach any master at {url}").into());
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(format!("no ALIVE master at {url} accepted the application").into());
                    }
                    links.ask_unasked(&register(&app_id));
                }
                continue;
            }
            _ = tokio::signal::ctrl_c() => {
                if let Some(id) = &app_id {
                    links.tell_all(&ToMaster::UnregisterApplication { app_id: id.clone() });
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                return Ok(130);
            }
        };
        let Some(event) = event else {
            return Err("every master connection ended".into());
        };
        if matches!(event, Event::Message(..)) {
            links.not_a_master.heard();
        }
        match event {
            Event::Up(index, link) => {
                reached = true;
                links.up(index, link, &register(&app_id));
            }
            Event::Ended(index, end) => links.ended(index, end, &url)?,
            Event::Down(index) => links.down(index),
            Event::Message(index, msg) => match msg {
                FromMaster::RegisteredApplication {
                    app_id: id,
                    master_url,
                    ..
                } if app_id.is_none() => {
                    println!("Registered application {id} with master {master_url}");
                    app_id = Some(id);
                    // The standby masters learn which application this connection is, so a
                    // new leader can tell it MasterChanged (this re-registration is idempotent).
                    links.tell_all(&register(&app_id));
                }
                FromMaster::MasterInStandby { .. } => links.answered(index),
                FromMaster::RegisterApplicationFailed { message } => {
                    eprintln!("ensemble submit: the master refused the application: {message}");
                    return Ok(1);
                }
                FromMaster::MasterChanged { master_url, .. } => {
                    if let (Some(id), Some(link)) = (&app_id, links.links.get(&index)) {
                        println!("Master changed to {master_url}");
                        let _ =
                            link.send(ToMaster::MasterChangeAcknowledged { app_id: id.clone() });
                    }
                }
                FromMaster::ExecutorUpdated {
                    exec_id,
                    worker_id,
                    state,
                    exit_code,
                    stderr,
                } => {
                    let code = exit_code
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default();
                    println!("Executor {exec_id} on {worker_id}: {}{code}", state.name());
                    if let Some(tail) = stderr {
                        last_failure = Some((exec_id, tail));
                    }
                }
                FromMaster::ApplicationRemoved { state } => {
                    let id = app_id.unwrap_or_default();
                    println!("Application {id} {state}");
                    if state == "FAILED" {
                        if let Some((exec_id, tail)) = &last_failure {
                            eprintln!("{}", failure_report(*exec_id, tail));
                        }
                    }
                    return Ok(if state == "FINISHED" { 0 } else { 1 });
                }
                // Replies meant for workers, and standby answers: nothing to do.
                _ => {}
            },
        }
    }
}

/// What a FAILED application's submitter shows of its last failed executor.
fn failure_report(exec_id: u32, stderr: &StderrTail) -> String {
    format!(
        "ensemble submit: executor {exec_id} failed; its stderr is {} on its worker, ending:\n{}",
        stderr.path, stderr.tail
    )
}

/// Runs one master connection until it ends, reporting it through `tx`; how it ended, unless
/// the submission is over.
async fn dial(
    stream: TcpStream,
    index: usize,
    tx: &mpsc::UnboundedSender<Event>,
) -> Option<LinkEnd> {
    let FramedConnection {
        mut incoming,
        outgoing,
        writer,
    } = framed::<FromMaster, ToMaster>(stream);
    if tx.send(Event::Up(index, outgoing)).is_err() {
        return None;
    }
    let mut answered = false;
    let ended = loop {
        match incoming.next().await {
            Some(Ok(msg)) => {
                answered = true;
                if tx.send(Event::Message(index, msg)).is_err() {
                    break None;
                }
            }
            Some(Err(e)) => break Some(LinkEnd::of_error(e)),
            None => break Some(LinkEnd::closed()),
        }
    };
    let _ = tx.send(Event::Down(index));
    writer.abort();
    if answered {
        ended.map(|_| LinkEnd::Answered)
    } else {
        ended
    }
}
