//! `ensemble up`: launches every server of a config as a child process and supervises them.

use crate::four_letter;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long `up` waits for the ensemble to elect before printing the table anyway.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

struct Server {
    id: u64,
    client: String,
    child: Child,
    restarts: u32,
}

pub(super) fn run(config: Option<&Path>) -> Result<i32, Box<dyn std::error::Error>> {
    let (path, text) = match config {
        Some(p) => (
            p.to_path_buf(),
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        ),
        None => {
            let p =
                std::env::temp_dir().join(format!("ensemble-default-{}.toml", std::process::id()));
            std::fs::write(&p, ensemble_config::DEFAULT_TOML)?;
            (p, ensemble_config::DEFAULT_TOML.to_string())
        }
    };
    let file = ensemble_config::parse_toml(&text)?;
    // Validate every server's view before launching anything.
    for s in &file.servers {
        file.clone().into_node_config(s.id)?;
    }
    let exe = std::env::current_exe()?;
    let mut servers = Vec::new();
    for s in &file.servers {
        servers.push(Server {
            id: s.id,
            client: format!("{}:{}", s.host, s.client_port),
            child: spawn(&exe, &path, s.id)?,
            restarts: 0,
        });
    }
    let deadline = Instant::now() + STARTUP_WAIT;
    while Instant::now() < deadline
        && !servers
            .iter()
            .any(|s| four_letter::mode(&s.client, Duration::from_millis(500)) == "leader")
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "ensemble is up ({} servers, config {})",
        servers.len(),
        path.display()
    );
    for s in &servers {
        println!(
            "  server.{:<3} client {:<22} Mode: {}",
            s.id,
            s.client,
            four_letter::mode(&s.client, Duration::from_secs(1))
        );
    }
    println!("check it with: ensemble status --config {}", path.display());
    println!("press Ctrl-C to stop");
    let stop = install_stop_flag();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for s in servers.iter_mut() {
            if let Ok(Some(status)) = s.child.try_wait() {
                s.restarts += 1;
                let backoff = Duration::from_millis(200 * u64::from(s.restarts.min(25)));
                eprintln!(
                    "server.{} exited ({status}); restarting in {backoff:?}",
                    s.id
                );
                std::thread::sleep(backoff);
                s.child = spawn(&exe, &path, s.id)?;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in servers.iter_mut() {
        terminate(&mut s.child);
    }
    Ok(0)
}

fn spawn(exe: &PathBuf, config: &Path, id: u64) -> std::io::Result<Child> {
    Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(config)
        .arg("--id")
        .arg(id.to_string())
        .spawn()
}

/// SIGTERM, then SIGKILL if the server does not stop within 5 s.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn install_stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
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
        f.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    flag
}
