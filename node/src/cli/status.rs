//! `ensemble status`: each server's mode and, for a TOML config or a running `up`, each
//! master's status and each worker's.

use super::up::state::running;
use crate::four_letter;
use ensemble_config::EnsembleFile;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::Duration;

/// (name, client address if known) of each server to ask.
type Targets = Vec<(String, Option<String>)>;

pub(super) fn run(
    config: Option<&Path>,
    zoo_cfg: Option<&Path>,
    servers: Option<&str>,
    up: Option<u32>,
) -> Result<i32, Box<dyn std::error::Error>> {
    let targets: Targets = match (config, zoo_cfg, servers) {
        (Some(path), None, None) => return Ok(print(&read_toml(path)?)),
        (None, None, None) => return running_up(up),
        (None, Some(path), None) => ensemble_config::load_zoo_cfg(path)?
            .servers
            .iter()
            .map(|s| (format!("server.{}", s.id), s.client_addr()))
            .collect(),
        (None, None, Some(list)) => list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), Some(s.to_string())))
            .collect(),
        _ => return Err("give --config FILE, --zoo-cfg FILE or --servers host:port,...".into()),
    };
    Ok(exit_code(print_servers(&targets)))
}

/// The status of the running `up` with pid `pid`, or of the only one; a list when several run.
fn running_up(pid: Option<u32>) -> Result<i32, Box<dyn std::error::Error>> {
    let ups = running();
    let chosen = match pid {
        Some(pid) => ups
            .iter()
            .find(|r| r.pid == pid)
            .ok_or(format!("no running `ensemble up` has pid {pid}"))?,
        None => match ups.as_slice() {
            [] => return Err("no `ensemble up` is running: give --config FILE, --zoo-cfg FILE or --servers host:port,...".into()),
            [only] => only,
            several => {
                println!("{} `ensemble up`s are running; pick one with --up PID:", several.len());
                for r in several {
                    println!(
                        "pid {:<8} config {}  data dir {}",
                        r.pid,
                        r.config.display(),
                        r.data_dir.display()
                    );
                }
                return Ok(0);
            }
        },
    };
    Ok(print(&read_toml(&chosen.config)?))
}

fn read_toml(path: &Path) -> Result<EnsembleFile, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(ensemble_config::parse_toml(&text)?)
}

/// 0 when some server serves, else 1.
fn exit_code(serving: usize) -> i32 {
    if serving > 0 {
        0
    } else {
        1
    }
}

/// Prints the servers, masters and workers of `file`; returns the exit code.
pub(super) fn print(file: &EnsembleFile) -> i32 {
    let targets: Targets = file
        .servers
        .iter()
        .map(|s| {
            (
                format!("server.{}", s.id),
                Some(format!("{}:{}", s.host, s.client_port)),
            )
        })
        .collect();
    let serving = print_servers(&targets);
    for m in &file.masters {
        let url = format!("spark://{}:{}", m.host, m.port);
        let state = match json(&m.host, m.webui_port) {
            Some(j) => format!(
                "{:<8} workers {}, applications {}",
                j["status"].as_str().unwrap_or("?"),
                j["aliveworkers"],
                j["activeapps"].as_array().map_or(0, Vec::len)
            ),
            None => "not answering".into(),
        };
        let name = format!("master:{}", m.port);
        println!(
            "{name:<24} {url:<26} {state}  UI http://{}:{}",
            m.host, m.webui_port
        );
    }
    for w in &file.workers {
        let addr = format!("{}:{}", w.host, w.webui_port);
        let state = match json(&w.host, w.webui_port) {
            Some(j) => format!(
                "master {}, cores {}/{} used, executors {}",
                j["masterurl"]
                    .as_str()
                    .filter(|u| !u.is_empty())
                    .unwrap_or("none"),
                j["coresused"],
                j["cores"],
                j["executors"].as_array().map_or(0, Vec::len)
            ),
            None => "not answering".into(),
        };
        let name = format!("worker:{}", w.webui_port);
        println!("{name:<24} {addr:<26} {state}  UI http://{addr}");
    }
    exit_code(serving)
}

/// Prints each server's mode; returns how many serve.
fn print_servers(targets: &Targets) -> usize {
    let mut serving = 0;
    for (name, addr) in targets {
        let Some(addr) = addr else {
            // zoo.cfg names only this server's client port unless a line carries `;port`.
            println!(
                "{name:<24} {:<26} Mode: unknown (its server line names no client port)",
                "-"
            );
            continue;
        };
        let mode = four_letter::mode(addr, Duration::from_secs(2));
        if matches!(
            mode.as_str(),
            "leader" | "follower" | "observer" | "standalone"
        ) {
            serving += 1;
        }
        println!("{name:<24} {addr:<26} Mode: {mode}");
    }
    serving
}

/// A master's or worker's `/json`, or None while it does not answer.
pub(super) fn json(host: &str, port: u16) -> Option<serde_json::Value> {
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
