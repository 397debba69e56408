//! `ensemble status`: each server's mode.

use crate::four_letter;
use std::path::Path;
use std::time::Duration;

/// (name, client address if known) of each server to ask.
type Targets = Vec<(String, Option<String>)>;

pub(super) fn run(
    config: Option<&Path>,
    zoo_cfg: Option<&Path>,
    servers: Option<&str>,
) -> Result<i32, Box<dyn std::error::Error>> {
    let targets: Targets = match (config, zoo_cfg, servers) {
        (Some(path), None, None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            servers_of(&text)?
        }
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
    let mut serving = 0;
    for (name, addr) in &targets {
        let Some(addr) = addr else {
            // zoo.cfg names only this server's client port unless a line carries `;port`.
            println!(
                "{name:<24} {:<22} Mode: unknown (its server line names no client port)",
                "-"
            );
            continue;
        };
        let mode = four_letter::mode(addr, Duration::from_secs(2));
        if matches!(mode.as_str(), "leader" | "follower" | "standalone") {
            serving += 1;
        }
        println!("{name:<24} {addr:<22} Mode: {mode}");
    }
    Ok(if serving > 0 { 0 } else { 1 })
}

/// (name, client address) of every server in a TOML config.
fn servers_of(text: &str) -> Result<Targets, Box<dyn std::error::Error>> {
    Ok(ensemble_config::parse_toml(text)?
        .servers
        .iter()
        .map(|s| {
            (
                format!("server.{}", s.id),
                Some(format!("{}:{}", s.host, s.client_port)),
            )
        })
        .collect())
}
