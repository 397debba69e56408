//! Command-line interface of the `ensemble` binary.

mod bench;
mod data;
mod logging;
mod node;
mod rest_client;
mod shell;
mod spark;
mod status;
mod submit;
mod tls;
mod up;

use clap::{Parser, Subcommand};
use ensemble_config::{ConfigError, NodeConfig};
use std::path::PathBuf;

/// ensemble: a ZooKeeper-compatible coordination service, and Spark-style standalone masters
/// and workers that stay highly available through it.
#[derive(Parser, Debug)]
#[command(name = "ensemble", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one server of an ensemble.
    Node(NodeArgs),
    /// Prints each server's mode, as `zkServer.sh status` does, and with a TOML config (or,
    /// given no arguments, the running `ensemble up`'s; several are listed) each master's and
    /// worker's state.
    Status(StatusArgs),
    /// Checks every port, then launches and supervises every server, master and worker of a
    /// config (default: the 3 servers, 3 masters and 2 workers of `local-3.toml` on loopback).
    Up(UpArgs),
    /// Measures servers through the ZooKeeper protocol, or a local ensemble it starts.
    Bench(bench::BenchArgs),
    /// A zkCli-style shell: interactive, or one command given after the options.
    Shell(ShellArgs),
    /// Runs a Spark-style standalone master.
    Master(spark::MasterArgs),
    /// Runs a Spark-style standalone worker.
    Worker(spark::WorkerArgs),
    /// Submits an application to Spark-style masters and follows it until it ends.
    Submit(submit::SubmitArgs),
    /// Offline tools for data directories (Apache ZooKeeper's and ensemble's files).
    #[command(subcommand)]
    Data(data::DataCommand),
}

/// Where a server's config comes from.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Native TOML config (needs --id).
    #[arg(long, conflicts_with = "zoo_cfg", requires = "id")]
    config: Option<PathBuf>,
    /// This server's id in the TOML config.
    #[arg(long)]
    id: Option<u64>,
    /// Apache ZooKeeper zoo.cfg; the id comes from dataDir/myid.
    #[arg(long)]
    zoo_cfg: Option<PathBuf>,
    /// Take line commands on stdin (create/get/status), for tests and benchmarks.
    #[arg(long)]
    control_stdin: bool,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// TOML config listing the servers.
    #[arg(long, conflicts_with_all = ["servers", "zoo_cfg"])]
    config: Option<PathBuf>,
    /// Apache zoo.cfg (with dataDir/myid); peers whose line names no client port show as unknown.
    #[arg(long, conflicts_with = "servers")]
    zoo_cfg: Option<PathBuf>,
    /// Client addresses, host:port,host:port,...
    #[arg(long)]
    servers: Option<String>,
    /// The running `ensemble up` with this pid (needed when several run).
    #[arg(long, value_name = "PID", conflicts_with_all = ["config", "zoo_cfg", "servers"])]
    up: Option<u32>,
}

#[derive(clap::Args, Debug)]
struct ShellArgs {
    /// Servers, host:port,host:port,...
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    #[command(flatten)]
    tls: tls::TlsArgs,
    /// A command to run instead of the interactive shell, e.g. `create /a data`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// TOML config; the embedded default runs 3 servers on 127.0.0.1:2181-2183.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Loads the config named by `args`.
fn load(args: &NodeArgs) -> Result<NodeConfig, ConfigError> {
    match (&args.config, args.id, &args.zoo_cfg) {
        (Some(path), Some(id), None) => ensemble_config::load_toml(path, id),
        (None, None, Some(path)) => ensemble_config::load_zoo_cfg(path),
        _ => Err(ConfigError::Invalid(
            "give either --config FILE --id N or --zoo-cfg PATH".into(),
        )),
    }
}

/// Entry point of the `ensemble` binary: parses arguments, installs logging, runs, exits.
pub fn main() -> ! {
    let args = Cli::parse_from(shell::zkcli_spelling(std::env::args_os()));
    let settings = log_settings(&args);
    let code = match settings.and_then(|s| logging::install(&s).map(|guard| (s, guard))) {
        Ok((settings, guard)) => {
            let code = match run(args, &settings) {
                Ok(code) => code,
                Err(e) => {
                    // Into the log file too, when there is one.
                    if settings.file.is_some() {
                        tracing::error!("{e}");
                    }
                    eprintln!("ensemble: {e}");
                    2
                }
            };
            // Flushes the log file's last lines before the process ends.
            drop(guard);
            code
        }
        Err(e) => {
            eprintln!("ensemble: {e}");
            2
        }
    };
    std::process::exit(code)
}

/// The logging settings of this command line: its flags, `RUST_LOG`, and the `[log]` section
/// of the TOML that `node --config` or `up` reads (a TOML that does not parse is left to the
/// command to report).
fn log_settings(cli: &Cli) -> Result<logging::LogSettings, String> {
    let toml = match &cli.command {
        Command::Node(NodeArgs {
            config: Some(path),
            id: Some(id),
            ..
        }) => std::fs::read_to_string(path)
            .ok()
            .and_then(|text| ensemble_config::parse_toml(&text).ok())
            .map(|f| (f.log, format!("server-{id}"))),
        Command::Up(up) => up::config_text(up.config.as_deref())
            .ok()
            .and_then(|text| ensemble_config::parse_toml(&text).ok())
            .map(|f| (f.log, "up".to_string())),
        _ => None,
    };
    let toml = toml.as_ref().map(|(section, name)| logging::TomlLog {
        section,
        name: name.clone(),
    });
    let rust_log = std::env::var("RUST_LOG").ok();
    logging::LogSettings::resolve(&cli.log, rust_log.as_deref(), toml.as_ref())
}

/// Runs the command with logging set up as `log` says; returns the process exit code.
fn run(cli: Cli, log: &logging::LogSettings) -> Result<i32, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Node(args) => node::run(&args),
        Command::Status(args) => status::run(
            args.config.as_deref(),
            args.zoo_cfg.as_deref(),
            args.servers.as_deref(),
            args.up,
        ),
        Command::Up(args) => up::run(
            args.config.as_deref(),
            &log.child_args(&cli.log),
            log.format,
        ),
        Command::Bench(b) => bench::run(b),
        Command::Shell(s) => s
            .tls
            .config()
            .map_err(Into::into)
            .and_then(|tls| shell::run(&s.server, tls, s.command)),
        Command::Master(m) => spark::run_master(m),
        Command::Worker(w) => spark::run_worker(w),
        Command::Submit(s) => submit::run(s),
        Command::Data(d) => data::run(d),
    }
}
