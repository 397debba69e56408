//! Spark-style masters and workers as embeddable services.
//!
//! Inside a running actix `System` (or an actix-web app), [`Master::start`] and
//! [`Worker::start`] bind their ports, start their actor under a supervisor on an `Arbiter` of
//! its own, start their web UI and return a handle. A fatal error (an unusable port, a worker
//! every master refuses) stops only that arbiter and reaches the host through
//! [`Master::failed`] / [`Worker::failed`]; the `ensemble master` and `ensemble worker`
//! commands exit 1 on it. Nothing here stops the host's `System`.

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use ensemble_actors::spark_master::decommission::AllowMode;
use ensemble_actors::spark_master::{
    self, EnsembleSettings, GetView, MasterActor, MasterSettings, MasterView, Recovery,
};
use ensemble_actors::spark_worker::{
    self, Decommission, GetWorkerStatus, KillAll, WorkerActor, WorkerSettings, WorkerStatus,
};
use ensemble_config::spark::{MasterConfig, RecoveryMode};
use ensemble_config::ConfigError;
use ensemble_messages::spark::WorkerSpec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::{mpsc, watch};

/// Why a master or worker could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum SparkError {
    /// The options or properties are unusable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A port could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// The web UI could not start.
    #[error("the web UI cannot start: {0}")]
    WebUi(std::io::Error),
    /// It has stopped (after a fatal error, or by its host).
    #[error("stopped")]
    Stopped,
}

/// A non-blocking listener on `host:port` (port 0: any free port).
fn bind(what: &'static str, host: &str, port: u16) -> Result<std::net::TcpListener, SparkError> {
    let err = |source| SparkError::Bind {
        what,
        addr: format!("{host}:{port}"),
        source,
    };
    let l = std::net::TcpListener::bind((host, port)).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

fn local_port(l: &std::net::TcpListener) -> Result<u16, SparkError> {
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| SparkError::Bind {
            what: "a port",
            addr: "?".into(),
            source,
        })
}

/// An address that workers and browsers can reach (never the wildcard).
fn check_host(host: &str) -> Result<(), ConfigError> {
    if host == "0.0.0.0" || host == "::" {
        return Err(ConfigError::Invalid(format!(
            "host {host} cannot be advertised to workers; give a reachable address"
        )));
    }
    Ok(())
}

/// The first fatal error of a service, kept for every host task that asks.
#[derive(Clone)]
struct Failure(watch::Receiver<Option<String>>);

impl Failure {
    /// Resolves with why the service failed (or `stopped` once it is gone without a reason).
    async fn wait(&self) -> String {
        let mut rx = self.0.clone();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "stopped".into(),
        };
        why
    }
}

/// On the current arbiter: waits for the actor's first fatal report, runs `cleanup`, stops the
/// arbiter (never the host's `System`) and publishes the report.
fn watch_fatal<F>(
    mut fatal: mpsc::UnboundedReceiver<String>,
    cleanup: impl FnOnce() -> F + 'static,
) -> (impl std::future::Future<Output = ()>, Failure)
where
    F: std::future::Future<Output = ()>,
{
    let (tx, rx) = watch::channel(None);
    let task = async move {
        if let Some(why) = fatal.recv().await {
            cleanup().await;
            Arbiter::current().stop();
            let _ = tx.send(Some(why));
        }
    };
    (task, Failure(rx))
}

/// Stops HTTP servers, waiting for them.
async fn stop_servers(servers: Vec<ServerHandle>) {
    for s in servers {
        s.stop(false).await;
    }
}

/// Starts an HTTP server's future on `arbiter`; returns its handle.
fn serve_on(arbiter: &Arbiter, what: &'static str, server: actix_web::dev::Server) -> ServerHandle {
    let handle = server.handle();
    arbiter.spawn(async move {
        if let Err(e) = server.await {
            tracing::error!("{what} stopped: {e}");
        }
    });
    handle
}

/// What a master is started with.
#[derive(Clone, Debug)]
pub struct MasterOptions {
    /// Address to bind and advertise.
    pub host: String,
    /// Port workers connect to (0: any free port).
    pub port: u16,
    /// Port of the web UI (0: any free port).
    pub webui_port: u16,
    /// Spark properties (spark.deploy.recoveryMode, spark.deploy.zookeeper.url, ...).
    pub properties: BTreeMap<String, String>,
}

/// The master's ports, bound before anything runs.
struct MasterSockets {
    rpc: std::net::TcpListener,
    ui: std::net::TcpListener,
    rest: Option<std::net::TcpListener>,
    port: u16,
    webui_port: u16,
}

impl MasterSockets {
    fn bind(opts: &MasterOptions, config: &MasterConfig) -> Result<Self, SparkError> {
        let rpc = bind("the master port", &opts.host, opts.port)?;
        let ui = bind("the web UI", &opts.host, opts.webui_port)?;
        let rest = match config.rest_port {
            Some(port) => Some(bind("the REST gateway", &opts.host, port)?),
            None => None,
        };
        Ok(MasterSockets {
            port: local_port(&rpc)?,
            webui_port: local_port(&ui)?,
            rpc,
            ui,
            rest,
        })
    }
}

/// The master's settings and recovery mode, advertising `host` and the bound ports.
fn master_settings(
    host: &str,
    sockets: &MasterSockets,
    config: MasterConfig,
) -> (MasterSettings, Recovery) {
    let url = format!("spark://{host}:{}", sockets.port);
    let webui = format!("http://{host}:{}", sockets.webui_port);
    let election = match &config.recovery {
        RecoveryMode::None => "none (recovery mode NONE)".to_string(),
        RecoveryMode::FileSystem { dir } => format!("directory {}", dir.display()),
        RecoveryMode::ZooKeeper { servers, dir, .. } => format!("{}{dir}", servers.join(",")),
    };
    let recovery = match config.recovery {
        RecoveryMode::None => Recovery::None,
        RecoveryMode::FileSystem { dir } => Recovery::Directory(dir),
        RecoveryMode::ZooKeeper {
            servers,
            dir,
            session_timeout,
            master_auth,
        } => Recovery::Ensemble(EnsembleSettings {
            servers,
            dir,
            session_timeout,
            identity: format!("{url}\n{webui}"),
            rpc: format!("{host}:{}", sockets.port),
            master_auth,
        }),
    };
    let settings = MasterSettings {
        election,
        url,
        webui,
        worker_timeout_ms: config.timing.worker_timeout.as_millis() as u64,
        recovery_timeout_ms: config.timing.recovery_timeout.as_millis() as u64,
        dead_worker_persistence: config.timing.dead_worker_persistence,
        spread_out: config.spread_out,
        default_cores: config.default_cores,
        max_executor_retries: config.max_executor_retries,
        retained_apps: config.retained_apps,
        retained_drivers: config.retained_drivers,
        // The actor sets it as it starts its clock.
        wall_origin_ms: 0,
    };
    (settings, recovery)
}

/// A running Spark-style master.
pub struct Master {
    actor: Addr<MasterActor>,
    arbiter: Arbiter,
    servers: Vec<ServerHandle>,
    url: String,
    webui: SocketAddr,
    failure: Failure,
}

impl Master {
    /// Binds the master's ports (workers', web UI's and, when configured, the REST
    /// gateway's), then starts the supervised master actor and its HTTP servers on an
    /// `Arbiter` of their own. Must be awaited inside a running actix `System`.
    pub async fn start(opts: MasterOptions) -> Result<Master, SparkError> {
        check_host(&opts.host)?;
        let config = MasterConfig::from_properties(&opts.properties)?;
        let allow = AllowMode::parse(&config.decommission_allow_mode).unwrap_or(AllowMode::Local);
        let sockets = MasterSockets::bind(&opts, &config)?;
        let webui = SocketAddr::new(
            sockets.ui.local_addr().map_err(SparkError::WebUi)?.ip(),
            sockets.webui_port,
        );
        let (settings, recovery) = master_settings(&opts.host, &sockets, config);
        let url = settings.url.clone();
        let MasterSockets { rpc, ui, rest, .. } = sockets;
        let arbiter = Arbiter::new();
        let (fatal_tx, fatal_rx) = mpsc::unbounded_channel();
        let actor = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            MasterActor::new(settings, recovery, rpc, fatal_tx)
        });
        let mut servers = Vec::new();
        if let Some(l) = rest {
            let at = l.local_addr().map_err(SparkError::WebUi)?;
            let rest = spark_master::rest::serve(actor.clone(), l).map_err(SparkError::WebUi)?;
            tracing::info!("Started REST server for submitting applications on {at}");
            servers.push(serve_on(&arbiter, "the REST gateway", rest));
        }
        let ui = spark_master::web::serve(actor.clone(), ui, allow).map_err(SparkError::WebUi)?;
        servers.push(serve_on(&arbiter, "the web UI", ui));
        let stop = servers.clone();
        let (task, failure) = watch_fatal(fatal_rx, move || stop_servers(stop));
        arbiter.spawn(task);
        tracing::info!("Starting Spark-style master at {url}, web UI on {webui}");
        Ok(Master {
            actor,
            arbiter,
            servers,
            url,
            webui,
            failure,
        })
    }

    /// `spark://host:port`, what workers are given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the web UI listens.
    pub fn webui_addr(&self) -> SocketAddr {
        self.webui
    }

    /// The master's registry and recovery state (ALIVE, STANDBY, ...), as its web UI shows.
    pub async fn view(&self) -> Result<MasterView, SparkError> {
        self.actor
            .send(GetView)
            .await
            .map_err(|_| SparkError::Stopped)
    }

    /// The master actor, for messages of the host's own.
    pub fn actor(&self) -> &Addr<MasterActor> {
        &self.actor
    }

    /// Resolves with why the master stopped, once a fatal error stopped it.
    pub async fn failed(&self) -> String {
        self.failure.wait().await
    }

    /// Stops its HTTP servers, then its actor.
    pub async fn stop(self) {
        stop_servers(self.servers).await;
        self.arbiter.stop();
    }
}

/// What a worker is started with.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Masters, `spark://host1:port1,host2:port2,...`.
    pub masters: String,
    /// Address to bind the web UI to and advertise.
    pub host: String,
    /// Cores to offer.
    pub cores: u32,
    /// Memory to offer, MiB.
    pub memory_mb: u64,
    /// Port of the web UI (0: any free port).
    pub webui_port: u16,
    /// Directory for the work of executors and drivers (created if missing).
    pub work_dir: PathBuf,
    /// Spark properties (spark.worker.timeout, ...).
    pub properties: BTreeMap<String, String>,
}

/// A running Spark-style worker.
pub struct Worker {
    actor: Addr<WorkerActor>,
    arbiter: Arbiter,
    server: ServerHandle,
    webui: SocketAddr,
    failure: Failure,
}

/// The worker's settings once its web UI port is bound.
fn worker_settings(opts: &WorkerOptions, webui_port: u16) -> Result<WorkerSettings, SparkError> {
    let timing = ensemble_config::spark::timing(&opts.properties)?;
    let spec = WorkerSpec {
        id: format!("worker-{}-{}-{webui_port}", chrono_stamp(), opts.host),
        host: opts.host.clone(),
        port: webui_port,
        cores: opts.cores,
        memory_mb: opts.memory_mb,
        webui: format!("http://{}:{webui_port}", opts.host),
    };
    Ok(WorkerSettings {
        spec,
        heartbeat_ms: (timing.worker_timeout.as_millis() / 4) as u64,
        register_retry_ms: 1000,
        seed: u64::from(std::process::id()) ^ timing.worker_timeout.as_nanos() as u64,
    })
}

impl Worker {
    /// Binds the web UI's port, then starts the supervised worker actor (which dials every
    /// master) and its web UI on an `Arbiter` of their own. Must be awaited inside a running
    /// actix `System`.
    pub async fn start(opts: WorkerOptions) -> Result<Worker, SparkError> {
        check_host(&opts.host)?;
        if opts.cores == 0 || opts.memory_mb == 0 {
            return Err(ConfigError::Invalid(
                "a worker needs at least 1 core and 1 MiB of memory".into(),
            )
            .into());
        }
        let masters = parse_masters(&opts.masters)?;
        std::fs::create_dir_all(&opts.work_dir).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot create the work dir {}: {e}",
                opts.work_dir.display()
            ))
        })?;
        let ui = bind("the web UI", &opts.host, opts.webui_port)?;
        let webui = ui.local_addr().map_err(SparkError::WebUi)?;
        let settings = worker_settings(&opts, webui.port())?;
        let arbiter = Arbiter::new();
        let (fatal_tx, fatal_rx) = mpsc::unbounded_channel();
        let work_dir = opts.work_dir.clone();
        let actor = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            WorkerActor::new(settings, masters, work_dir, fatal_tx)
        });
        let server = spark_worker::web::serve(actor.clone(), opts.work_dir, ui)
            .map_err(SparkError::WebUi)?;
        let server = serve_on(&arbiter, "the web UI", server);
        let (me, stop) = (actor.clone(), server.clone());
        let (task, failure) = watch_fatal(fatal_rx, move || async move {
            // Its executors and drivers end with it.
            let _ = me.send(KillAll).await;
            stop.stop(false).await;
        });
        arbiter.spawn(task);
        Ok(Worker {
            actor,
            arbiter,
            server,
            webui,
            failure,
        })
    }

    /// Where the web UI listens.
    pub fn webui_addr(&self) -> SocketAddr {
        self.webui
    }

    /// What the worker runs and which master it is registered with.
    pub async fn status(&self) -> Result<WorkerStatus, SparkError> {
        self.actor
            .send(GetWorkerStatus)
            .await
            .map_err(|_| SparkError::Stopped)
    }

    /// Decommissions it: no new executors; running ones go on.
    pub fn decommission(&self) {
        self.actor.do_send(Decommission);
    }

    /// Resolves with why the worker stopped, once a fatal error stopped it.
    pub async fn failed(&self) -> String {
        self.failure.wait().await
    }

    /// Kills its executors and drivers, stops its web UI, then its actor.
    pub async fn stop(self) {
        let _ = self.actor.send(KillAll).await;
        self.server.stop(false).await;
        self.arbiter.stop();
    }
}

/// `spark://h1:p1,h2:p2` (or `spark://h1:p1,spark://h2:p2`) into `host:port` entries.
pub fn parse_masters(url: &str) -> Result<Vec<String>, ConfigError> {
    let rest = url.strip_prefix("spark://").ok_or_else(|| {
        ConfigError::Invalid(format!("master URL {url} must start with spark://"))
    })?;
    let masters: Vec<String> = rest
        .split(',')
        .map(|m| m.trim().trim_start_matches("spark://").to_string())
        .collect();
    for m in &masters {
        let port = m
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then_some(p.parse::<u16>().ok()).flatten());
        if port.is_none() {
            return Err(ConfigError::Invalid(format!(
                "master {m:?} in {url} is not host:port"
            )));
        }
    }
    Ok(masters)
}

/// `yyyyMMddHHmmss` in UTC, as Spark's worker ids carry.
fn chrono_stamp() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_urls_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_masters("spark://a:7077,b:7078").unwrap(),
            vec!["a:7077", "b:7078"]
        );
        assert_eq!(
            parse_masters("spark://a:1,spark://b:2").unwrap(),
            vec!["a:1", "b:2"]
        );
        assert!(parse_masters("a:7077").is_err());
        assert!(parse_masters("spark://a").is_err());
        assert!(parse_masters("spark://:7077").is_err());
    }

    #[test]
    fn worker_ids_carry_a_utc_timestamp() {
        let s = chrono_stamp();
        assert_eq!(s.len(), 14);
        assert!(s.starts_with("20"), "{s}");
    }

    #[actix_rt::test]
    async fn a_master_and_a_worker_start_inside_a_host_system_and_stop_without_it() {
        let master = Master::start(MasterOptions {
            host: "127.0.190.1".into(),
            port: 0,
            webui_port: 0,
            properties: BTreeMap::new(),
        })
        .await
        .expect("master starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = Worker::start(WorkerOptions {
            masters: master.url().to_string(),
            host: "127.0.190.1".into(),
            cores: 2,
            memory_mb: 512,
            webui_port: 0,
            work_dir: dir.path().join("work"),
            properties: BTreeMap::new(),
        })
        .await
        .expect("worker starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let view = master.view().await.expect("the master answers");
            if view.workers.len() == 1 && worker.status().await.is_ok_and(|s| s.master.is_some()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no registration");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        worker.stop().await;
        master.stop().await;
    }

    #[actix_rt::test]
    async fn a_worker_no_master_answers_fails_as_a_result_not_a_stop() {
        // A listener that closes every connection at once: nothing there is a master.
        let mute = std::net::TcpListener::bind("127.0.190.1:0").expect("bind");
        let addr = mute.local_addr().expect("addr");
        std::thread::spawn(move || {
            for c in mute.incoming() {
                drop(c);
            }
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = Worker::start(WorkerOptions {
            masters: format!("spark://{addr}"),
            host: "127.0.190.1".into(),
            cores: 1,
            memory_mb: 64,
            webui_port: 0,
            work_dir: dir.path().to_path_buf(),
            properties: BTreeMap::new(),
        })
        .await
        .expect("worker starts");
        let why = tokio::time::timeout(std::time::Duration::from_secs(20), worker.failed())
            .await
            .expect("the worker gives up");
        assert!(why.contains("answers as a Spark master"), "{why}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while worker.status().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "its arbiter stopped");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
