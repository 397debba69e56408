//! `ensemble up`: launches every process of a config (servers, masters, workers) as a child and
//! supervises them.

use crate::four_letter;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long `up` waits for a leader and an ALIVE master before printing the table anyway.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// A child process `up` keeps running: a server, a master or a worker.
struct Managed {
    name: String,
    args: Vec<String>,
    child: Child,
    restarts: u32,
}

impl Managed {
    fn start(exe: &Path, name: String, args: Vec<String>) -> std::io::Result<Managed> {
        let child = Command::new(exe).args(&args).spawn()?;
        Ok(Managed {
            name,
            args,
            child,
            restarts: 0,
        })
    }
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
    // Validate every server's view, and the Spark properties, before launching anything.
    for s in &file.servers {
        file.clone().into_node_config(s.id)?;
    }
    let clients: Vec<String> = file
        .servers
        .iter()
        .map(|s| format!("{}:{}", s.host, s.client_port))
        .collect();
    let props_text = file.spark.properties(&clients.join(","));
    let props = ensemble_config::spark::parse_properties(&props_text)?;
    ensemble_config::spark::MasterConfig::from_properties(&props)?;
    let props_path = path.with_extension("spark.conf");
    std::fs::write(&props_path, &props_text)
        .map_err(|e| format!("cannot write {}: {e}", props_path.display()))?;
    let props_arg = props_path.display().to_string();
    let exe = std::env::current_exe()?;
    let mut procs = Vec::new();
    for s in &file.servers {
        let args = vec![
            "node".into(),
            "--config".into(),
            path.display().to_string(),
            "--id".into(),
            s.id.to_string(),
        ];
        procs.push(Managed::start(&exe, format!("server.{}", s.id), args)?);
    }
    let master_urls: Vec<String> = file
        .masters
        .iter()
        .map(|m| format!("{}:{}", m.host, m.port))
        .collect();
    for m in &file.masters {
        let args = vec![
            "master".into(),
            "--host".into(),
            m.host.clone(),
            "--port".into(),
            m.port.to_string(),
            "--webui-port".into(),
            m.webui_port.to_string(),
            "--properties-file".into(),
            props_arg.clone(),
        ];
        procs.push(Managed::start(
            &exe,
            format!("master {}:{}", m.host, m.port),
            args,
        )?);
    }
    for w in &file.workers {
        let work = w.work_dir.clone().unwrap_or_else(|| {
            file.storage
                .data_dir
                .join(format!("worker-{}", w.webui_port))
        });
        let args = vec![
            "worker".into(),
            format!("spark://{}", master_urls.join(",")),
            "--host".into(),
            w.host.clone(),
            "--cores".into(),
            w.cores.to_string(),
            "--memory".into(),
            w.memory.clone(),
            "--webui-port".into(),
            w.webui_port.to_string(),
            "--work-dir".into(),
            work.display().to_string(),
            "--properties-file".into(),
            props_arg.clone(),
        ];
        let name = format!("worker {}:{}", w.host, w.webui_port);
        procs.push(Managed::start(&exe, name, args)?);
    }
    let deadline = Instant::now() + STARTUP_WAIT;
    let ready = || {
        let leader = clients
            .iter()
            .any(|c| four_letter::mode(c, Duration::from_millis(500)) == "leader");
        let alive = file.masters.is_empty()
            || file.masters.iter().any(|m| {
                master_json(&m.host, m.webui_port).is_some_and(|j| {
                    j["status"] == "ALIVE" && j["aliveworkers"] == file.workers.len()
                })
            });
        leader && alive
    };
    while Instant::now() < deadline && !ready() {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "ensemble is up ({} servers, {} masters, {} workers; config {})",
        file.servers.len(),
        file.masters.len(),
        file.workers.len(),
        path.display()
    );
    for (s, client) in file.servers.iter().zip(&clients) {
        println!(
            "  server.{:<3} client {:<22} Mode: {}",
            s.id,
            client,
            four_letter::mode(client, Duration::from_secs(1))
        );
    }
    for m in &file.masters {
        let status = master_json(&m.host, m.webui_port)
            .and_then(|j| j["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "not answering".into());
        println!(
            "  master    spark://{}:{:<8} {:<12} UI http://{}:{}",
            m.host, m.port, status, m.host, m.webui_port
        );
    }
    for w in &file.workers {
        println!(
            "  worker    {} cores, {:<6}              UI http://{}:{}",
            w.cores, w.memory, w.host, w.webui_port
        );
    }
    println!("check it with: ensemble status --config {}", path.display());
    println!("press Ctrl-C to stop");
    let stop = install_stop_flag();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                p.restarts += 1;
                let backoff = Duration::from_millis(200 * u64::from(p.restarts.min(25)));
                eprintln!("{} exited ({status}); restarting in {backoff:?}", p.name);
                std::thread::sleep(backoff);
                p.child = Command::new(&exe).args(&p.args).spawn()?;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in procs.iter_mut() {
        terminate(&mut p.child);
    }
    Ok(0)
}

/// A master's `/json`, or None while it does not answer.
fn master_json(host: &str, port: u16) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET /json HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
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
