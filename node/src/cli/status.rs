//! `ensemble status`: each server's mode.

use crate::four_letter;
use std::path::Path;
use std::time::Duration;

pub(super) fn run(
    config: Option<&Path>,
    servers: Option<&str>,
) -> Result<i32, Box<dyn std::error::Error>> {
    let targets: Vec<(String, String)> = match (config, servers) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            servers_of(&text)?
        }
        (None, Some(list)) => list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), s.to_string()))
            .collect(),
        _ => return Err("give --config FILE or --servers host:port,...".into()),
    };
    let mut serving = 0;
    for (name, addr) in &targets {
        let mode = four_letter::mode(addr, Duration::from_secs(2));
        if matches!(mode.as_str(), "leader" | "follower" | "standalone") {
            serving += 1;
        }
        println!("{name:<24} {addr:<22} Mode: {mode}");
    }
    Ok(if serving > 0 { 0 } else { 1 })
}

/// (name, client address) of every server in a TOML config.
fn servers_of(text: &str) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    Ok(ensemble_config::parse_toml(text)?
        .servers
        .iter()
        .map(|s| {
            (
                format!("server.{}", s.id),
                format!("{}:{}", s.host, s.client_port),
            )
        })
        .collect())
}
