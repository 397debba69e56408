//! `ensemble master` and `ensemble worker`: Spark-style standalone masters and workers.

use crate::spark::{Master, MasterOptions, Worker, WorkerOptions};
use actix::System;
use ensemble_config::spark::{parse_memory_mb, parse_properties};
use ensemble_config::ConfigError;
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

/// Runs a master until interrupted; exits 1 when a fatal error stops it.
pub fn run_master(args: MasterArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let opts = MasterOptions {
        host: args.host,
        port: args.port,
        webui_port: args.webui_port,
        properties: properties(args.properties_file.as_deref())?,
    };
    System::new().block_on(async move {
        let master = Master::start(opts).await?;
        let code = tokio::select! {
            _ = tokio::signal::ctrl_c() => 0,
            // The master logged why.
            _ = master.failed() => 1,
        };
        master.stop().await;
        Ok::<_, Box<dyn std::error::Error>>(code)
    })
}

/// Runs a worker until interrupted; exits 1 when a fatal error stops it.
pub fn run_worker(args: WorkerArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let props = properties(args.properties_file.as_deref())?;
    let decommission = ensemble_config::spark::flag(&props, "spark.decommission.enabled", false)?;
    let opts = WorkerOptions {
        masters: args.master,
        host: args.host,
        cores: args.cores,
        memory_mb: parse_memory_mb(&args.memory)?,
        webui_port: args.webui_port,
        work_dir: args.work_dir,
        properties: props,
    };
    System::new().block_on(async move {
        let worker = Worker::start(opts).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Spark's spark.worker.decommission.signal (PWR); without decommissioning enabled,
        // SIGPWR keeps its default action, as in Spark.
        let mut pwr = match decommission {
            true => Some(tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::from_raw(libc::SIGPWR),
            )?),
            false => None,
        };
        let code = loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break 0,
                _ = term.recv() => break 0,
                // The worker logged why.
                _ = worker.failed() => break 1,
                Some(_) = async { pwr.as_mut()?.recv().await } => worker.decommission(),
            }
        };
        // A clean stop takes its executors and drivers along (a killed worker's die by their
        // parent-death signal).
        worker.stop().await;
        Ok::<_, Box<dyn std::error::Error>>(code)
    })
}
