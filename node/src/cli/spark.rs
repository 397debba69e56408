//! `ensemble master` and `ensemble worker`: Spark-style standalone masters and workers.

use actix::{Supervisor, System};
use ensemble_actors::spark_master::decommission::AllowMode;
use ensemble_actors::spark_master::{
    self, EnsembleSettings, MasterActor, MasterSettings, Recovery,
};
use ensemble_actors::spark_worker::{self, Decommission, KillAll, WorkerActor, WorkerSettings};
use ensemble_config::spark::{parse_memory_mb, parse_properties, MasterConfig, RecoveryMode};
use ensemble_config::ConfigError;
use ensemble_messages::spark::WorkerSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `ensemble master`.
#[derive(clap::Args, Debug)]
pub struct MasterArgs {
    /// Address to bind and advertise (never 0.0.0.0: workers need a reachable one).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port workers connect to.
    #[arg(long, default_value_t = 7077)]
    port: u16,
    /// Port of the web UI.
    #[arg(long, default_value_t = 8080)]
    webui_port: u16,
    /// Spark properties (spark.deploy.recoveryMode, spark.deploy.zookeeper.url, ...).
    #[arg(long)]
    properties_file: Option<PathBuf>,
}

/// Arguments of `ensemble worker`.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Masters, `spark://host1:port1,host2:port2,...`.
    master: String,
    /// Address to bind the web UI to and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Cores to offer.
    #[arg(long, default_value_t = 1)]
    cores: u32,
    /// Memory to offer, e.g. 512m or 2g.
    #[arg(long, default_value = "1g")]
    memory: String,
    /// Port of the web UI.
    #[arg(long, default_value_t = 8081)]
    webui_port: u16,
    /// Directory for the work of executors and drivers.
    #[arg(long, default_value = "work")]
    work_dir: PathBuf,
    /// Spark properties (spark.worker.timeout, ...).
    #[arg(long)]
    properties_file: Option<PathBuf>,
}

fn properties(file: Option<&Path>) -> Result<BTreeMap<String, String>, ConfigError> {
    match file {
        None => Ok(BTreeMap::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            parse_properties(&text)
        }
    }
}

fn check_host(host: &str) -> Result<(), ConfigError> {
    if host == "0.0.0.0" || host == "::" {
        return Err(ConfigError::Invalid(format!(
            "--host {host} cannot be advertised to workers; give a reachable address"
        )));
    }
    Ok(())
}

/// Runs a master until interrupted.
pub fn run_master(args: MasterArgs) -> Result<i32, Box<dyn std::error::Error>> {
    check_host(&args.host)?;
    let config = MasterConfig::from_properties(&properties(args.properties_file.as_deref())?)?;
    let url = format!("spark://{}:{}", args.host, args.port);
    let election = match &config.recovery {
        RecoveryMode::None => "none (recovery mode NONE)".to_string(),
        RecoveryMode::FileSystem { dir } => format!("directory {}", dir.display()),
        RecoveryMode::ZooKeeper { servers, dir, .. } => format!("{}{dir}", servers.join(",")),
    };
    let settings = MasterSettings {
        election,
        url: url.clone(),
        webui: format!("http://{}:{}", args.host, args.webui_port),
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
            identity: format!("{url}\nhttp://{}:{}", args.host, args.webui_port),
            rpc: format!("{}:{}", args.host, args.port),
            master_auth,
        }),
    };
    let listener = std::net::TcpListener::bind((args.host.as_str(), args.port))
        .map_err(|e| format!("cannot bind {}:{}: {e}", args.host, args.port))?;
    listener.set_nonblocking(true)?;
    let ui_listener = bind_webui(&args.host, args.webui_port)?;
    let rest_port = config.rest_port.unwrap_or_default();
    let allow = AllowMode::parse(&config.decommission_allow_mode).unwrap_or(AllowMode::Local);
    let rest_listener = match config.rest_port {
        Some(port) => Some(
            std::net::TcpListener::bind((args.host.as_str(), port)).map_err(|e| {
                format!("cannot bind the REST gateway on {}:{port}: {e}", args.host)
            })?,
        ),
        None => None,
    };
    System::new().block_on(async move {
        let master = Supervisor::start(move |_| MasterActor::new(settings, recovery, listener));
        if let Some(l) = rest_listener {
            let rest = spark_master::rest::serve(master.clone(), l)?;
            tracing::info!(
                "Started REST server for submitting applications on {}:{}",
                args.host,
                rest_port
            );
            actix::spawn(async move {
                if let Err(e) = rest.await {
                    tracing::error!("the REST gateway stopped: {e}");
                }
            });
        }
        let ui = spark_master::web::serve(master, ui_listener, allow)?;
        tracing::info!(
            "Starting Spark-style master at {url}, web UI on port {}",
            args.webui_port
        );
        tokio::select! {
            r = ui => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<_, Box<dyn std::error::Error>>(0)
    })
}

/// Binds the web UI's port before any actor starts: an actor started and then dropped with its
/// system, as a failed bind inside the system would, panics outside the runtime.
fn bind_webui(host: &str, port: u16) -> Result<std::net::TcpListener, String> {
    std::net::TcpListener::bind((host, port))
        .map_err(|e| format!("cannot bind the web UI on {host}:{port}: {e}"))
}

/// Runs a worker until interrupted.
pub fn run_worker(args: WorkerArgs) -> Result<i32, Box<dyn std::error::Error>> {
    check_host(&args.host)?;
    let props = properties(args.properties_file.as_deref())?;
    let timing = ensemble_config::spark::timing(&props)?;
    let decommission = ensemble_config::spark::flag(&props, "spark.decommission.enabled", false)?;
    let memory_mb = parse_memory_mb(&args.memory)?;
    if args.cores == 0 || memory_mb == 0 {
        return Err("a worker needs at least 1 core and 1 MiB of memory".into());
    }
    let masters = parse_masters(&args.master)?;
    std::fs::create_dir_all(&args.work_dir).map_err(|e| {
        format!(
            "cannot create the work dir {}: {e}",
            args.work_dir.display()
        )
    })?;
    let stamp = chrono_stamp();
    let spec = WorkerSpec {
        id: format!("worker-{stamp}-{}-{}", args.host, args.webui_port),
        host: args.host.clone(),
        port: args.webui_port,
        cores: args.cores,
        memory_mb,
        webui: format!("http://{}:{}", args.host, args.webui_port),
    };
    let settings = WorkerSettings {
        spec,
        heartbeat_ms: (timing.worker_timeout.as_millis() / 4) as u64,
        register_retry_ms: 1000,
        seed: std::process::id() as u64 ^ timing.worker_timeout.as_nanos() as u64,
    };
    let ui_listener = bind_webui(&args.host, args.webui_port)?;
    System::new().block_on(async move {
        let work_dir = args.work_dir.clone();
        let (fatal, mut gave_up) = tokio::sync::mpsc::unbounded_channel();
        let worker = Supervisor::start(move |_| {
            WorkerActor::new(
                settings.clone(),
                masters.clone(),
                work_dir.clone(),
                fatal.clone(),
            )
        });
        let ui = spark_worker::web::serve(worker.clone(), args.work_dir.clone(), ui_listener)?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        if decommission {
            // Spark's spark.worker.decommission.signal (PWR); without decommissioning enabled,
            // SIGPWR keeps its default action, as in Spark.
            let mut pwr = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
                libc::SIGPWR,
            ))?;
            let to = worker.clone();
            actix::spawn(async move {
                while pwr.recv().await.is_some() {
                    to.do_send(Decommission);
                }
            });
        }
        let code = tokio::select! {
            r = ui => r.map(|_| 0)?,
            _ = tokio::signal::ctrl_c() => 0,
            _ = term.recv() => 0,
            // The actor logged why.
            Some(_) = gave_up.recv() => 1,
        };
        // A clean stop takes its executors and drivers along (a killed worker's die by their
        // parent-death signal).
        let _ = worker.send(KillAll).await;
        Ok::<_, Box<dyn std::error::Error>>(code)
    })
}

/// `spark://h1:p1,h2:p2` (or `spark://h1:p1,spark://h2:p2`) into `host:port` entries.
pub(super) fn parse_masters(url: &str) -> Result<Vec<String>, ConfigError> {
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
}
