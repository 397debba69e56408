//! `ensemble up`: checks every port of a config, then launches its servers, masters and workers
//! as children and supervises them. Its files (generated config, Spark properties, one log per
//! process) live in `<storage.data_dir>/up`.

mod child;
mod ports;
pub(crate) mod state;
mod watch;

use super::logging::LogFormat;
use super::status;
use child::Managed;
use ensemble_config::EnsembleFile;
use ensemble_config::{MasterSection, WorkerSection};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `up` waits for a serving ensemble and an ALIVE master before its banner.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// A master's name in `up`'s output: `master:7077`.
fn master_name(m: &MasterSection) -> String {
    format!("master:{}", m.port)
}

/// A worker's name in `up`'s output: `worker:8091`.
fn worker_name(w: &WorkerSection) -> String {
    format!("worker:{}", w.webui_port)
}

/// Files `up` wrote, removed when dropped.
struct Generated(Vec<PathBuf>);

impl Drop for Generated {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The running children; stopped when dropped, so that no error path leaves one behind.
struct Supervisor {
    exe: PathBuf,
    logs: PathBuf,
    /// Logging flags given to every child.
    log_args: Vec<String>,
    /// Whether child lines are relayed as JSON objects.
    json: bool,
    procs: Vec<Managed>,
}

impl Supervisor {
    fn start(&mut self, name: String, mut args: Vec<String>) -> std::io::Result<()> {
        args.extend(self.log_args.iter().cloned());
        let p = Managed::start(&self.exe, name, args, &self.logs, self.json)?;
        self.procs.push(p);
        Ok(())
    }

    /// Restarts every child that has exited once its backoff (growing with its restarts) has
    /// passed; never waits, so that one crash-looping child delays no other and no stop.
    fn restart_exited(&mut self, start: Instant) -> std::io::Result<()> {
        let now = Instant::now();
        for p in self.procs.iter_mut() {
            match p.restart_due {
                Some(due) if due <= now => p.restart(&self.exe, self.json)?,
                Some(_) => {}
                None => {
                    if let Some(status) = p.exited() {
                        let backoff =
                            Duration::from_millis(200 * u64::from((p.restarts + 1).min(25)));
                        println!(
                            "{} {} exited ({status}); restart {} in {backoff:?}",
                            watch::stamp(start),
                            p.name,
                            p.restarts + 1
                        );
                        p.restart_due = Some(now + backoff);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        child::stop_all(&mut self.procs);
    }
}

/// The text of `up`'s config: the file given, or the embedded default.
pub(super) fn config_text(config: Option<&Path>) -> Result<String, String> {
    match config {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
        None => Ok(ensemble_config::DEFAULT_TOML.to_string()),
    }
}

/// Runs `up`; returns when SIGINT or SIGTERM arrives, after stopping every child. Each child
/// gets `log_args` (the level and format of `up`'s own logging); with `format` json, the
/// lines they print reach `up`'s stderr as JSON objects too.
pub(super) fn run(
    config: Option<&Path>,
    log_args: &[String],
    format: LogFormat,
) -> Result<i32, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let text = config_text(config)?;
    let mut file = ensemble_config::parse_toml(&text)?;
    if file.spark.master_auth.is_empty() {
        file.spark.master_auth = random_master_auth()?;
    }
    let props_text = validate(&file)?;
    ports::check(&ports::of(&file)?)?;
    let dir = file.storage.data_dir.join("up");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let mut generated = Generated(Vec::new());
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => write(&mut generated, dir.join("ensemble.toml"), &text)?,
    };
    let props = write(&mut generated, dir.join("spark.conf"), &props_text)?;
    // It holds the masters' credential.
    set_owner_only(&props)?;
    let _state = state::StateFile::write(&path, &file.storage.data_dir)?;
    let mut sup = Supervisor {
        exe: std::env::current_exe()?,
        logs: logs.clone(),
        log_args: log_args.to_vec(),
        json: format == LogFormat::Json,
        procs: Vec::new(),
    };
    launch(&mut sup, &file, &path, &props)?;
    wait_ready(&file, start);
    banner(&file, &path, &logs);
    watch::spawn(file, start);
    let stop = install_stop_flag();
    while !stop.load(Ordering::Relaxed) {
        sup.restart_exited(start)?;
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("{} stopping", watch::stamp(start));
    Ok(0)
}

/// Validates every server's view and the Spark properties; returns the properties' text.
fn validate(file: &EnsembleFile) -> Result<String, Box<dyn std::error::Error>> {
    for s in &file.servers {
        file.clone().into_node_config(s.id)?;
    }
    let props_text = file.spark.properties(&client_list(file));
    let props = ensemble_config::spark::parse_properties(&props_text)?;
    ensemble_config::spark::MasterConfig::from_properties(&props)?;
    Ok(props_text)
}

fn client_list(file: &EnsembleFile) -> String {
    let clients: Vec<String> = file
        .servers
        .iter()
        .map(|s| format!("{}:{}", s.host, s.client_port))
        .collect();
    clients.join(",")
}

/// The masters' digest credential of one run: `masters:` and 16 random bytes in hex.
fn random_master_auth() -> Result<String, String> {
    use std::io::Read;
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("cannot read /dev/urandom for the masters' credential: {e}"))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("masters:{hex}"))
}

/// Makes `path` readable and writable by its owner only.
fn set_owner_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))
}

fn write(generated: &mut Generated, path: PathBuf, text: &str) -> Result<PathBuf, String> {
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    generated.0.push(path.clone());
    Ok(path)
}

/// Starts every server, master and worker of `file`.
fn launch(
    sup: &mut Supervisor,
    file: &EnsembleFile,
    config: &Path,
    props: &Path,
) -> std::io::Result<()> {
    let props = props.display().to_string();
    for s in &file.servers {
        let args = [
            "node",
            "--config",
            &config.display().to_string(),
            "--id",
            &s.id.to_string(),
        ];
        sup.start(format!("server.{}", s.id), strings(&args))?;
    }
    for m in &file.masters {
        let (port, ui) = (m.port.to_string(), m.webui_port.to_string());
        let args = [
            "master",
            "--host",
            &m.host,
            "--port",
            &port,
            "--webui-port",
            &ui,
        ];
        let mut args = strings(&args);
        args.extend(strings(&["--properties-file", &props]));
        sup.start(master_name(m), args)?;
    }
    let urls: Vec<String> = file
        .masters
        .iter()
        .map(|m| format!("{}:{}", m.host, m.port))
        .collect();
    let url = format!("spark://{}", urls.join(","));
    for w in &file.workers {
        let work = w.work_dir.clone().unwrap_or_else(|| {
            file.storage
                .data_dir
                .join(format!("worker-{}", w.webui_port))
        });
        let (cores, ui) = (w.cores.to_string(), w.webui_port.to_string());
        let args = [
            "worker", &url, "--host", &w.host, "--cores", &cores, "--memory", &w.memory,
        ];
        let mut args = strings(&args);
        let work = work.display().to_string();
        args.extend(strings(&[
            "--webui-port",
            &ui,
            "--work-dir",
            &work,
            "--properties-file",
            &props,
        ]));
        sup.start(worker_name(w), args)?;
    }
    Ok(())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Whether a server serves (leader or standalone) and, with masters, one is ALIVE with every
/// worker registered.
fn ready(file: &EnsembleFile) -> bool {
    let serving = file.servers.iter().any(|s| {
        let mode = crate::four_letter::mode(
            &format!("{}:{}", s.host, s.client_port),
            Duration::from_millis(500),
        );
        mode == "leader" || mode == "standalone"
    });
    let alive = file.masters.is_empty()
        || file.masters.iter().any(|m| {
            status::json(&m.host, m.webui_port)
                .is_some_and(|j| j["status"] == "ALIVE" && j["aliveworkers"] == file.workers.len())
        });
    serving && alive
}

/// Waits for [`ready`], saying every 3 s what it still waits for.
fn wait_ready(file: &EnsembleFile, start: Instant) {
    let began = Instant::now();
    let mut said = Instant::now();
    while began.elapsed() < STARTUP_WAIT && !ready(file) {
        if said.elapsed() >= Duration::from_secs(3) {
            let states = watch::states(file);
            println!(
                "{} {}",
                watch::stamp(start),
                watch::progress(file, &states, began.elapsed())
            );
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn banner(file: &EnsembleFile, config: &Path, logs: &Path) {
    let ok = ready(file);
    println!(
        "ensemble is {} ({} servers, {} masters, {} workers; config {})",
        if ok { "up" } else { "started, not yet ready" },
        file.servers.len(),
        file.masters.len(),
        file.workers.len(),
        config.display()
    );
    status::print(file);
    println!(
        "logs: {}/<process>.log (server.1, master-7077, ...); check it with: ensemble status",
        logs.display()
    );
    println!("press Ctrl-C to stop");
}

fn install_stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
                }
            });
        }
        f.store(true, Ordering::Relaxed);
    });
    flag
}
