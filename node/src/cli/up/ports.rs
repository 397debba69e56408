//! `up`'s pre-check: every port of every process must be free before anything starts.

use ensemble_config::EnsembleFile;
use std::net::{TcpListener, ToSocketAddrs};

/// A port one of `up`'s processes will listen on, and what for.
pub(super) struct Port {
    addr: String,
    owner: String,
}

/// `host:port`, with an IPv6 literal in brackets.
fn join(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Every port the config's servers, masters and workers listen on.
pub(super) fn of(file: &EnsembleFile) -> Result<Vec<Port>, Box<dyn std::error::Error>> {
    let mut ports = Vec::new();
    let mut add = |addr: String, owner: String| ports.push(Port { addr, owner });
    for s in &file.servers {
        let cfg = file.clone().into_node_config(s.id)?;
        let name = format!("server.{}", s.id);
        add(join(&s.host, s.peer_port), format!("peer port of {name}"));
        add(
            join(&s.host, s.client_port),
            format!("client port of {name}"),
        );
        if let Some(m) = &cfg.metrics {
            add(join(&m.host, m.port), format!("metrics port of {name}"));
        }
        if let Some(a) = &cfg.admin {
            add(
                join(&a.address, a.port),
                format!("AdminServer port of {name}"),
            );
        }
    }
    for m in &file.masters {
        let name = super::master_name(m);
        add(join(&m.host, m.port), format!("port of {name}"));
        add(
            join(&m.host, m.webui_port),
            format!("web UI port of {name}"),
        );
    }
    for w in &file.workers {
        let name = super::worker_name(w);
        add(
            join(&w.host, w.webui_port),
            format!("web UI port of {name}"),
        );
    }
    Ok(ports)
}

/// One line naming the first port that two processes share or that something else holds.
pub(super) fn check(ports: &[Port]) -> Result<(), String> {
    for (i, p) in ports.iter().enumerate() {
        if let Some(q) = ports[..i].iter().find(|q| q.addr == p.addr) {
            return Err(format!(
                "port {} is both the {} and the {}; nothing started",
                p.addr, q.owner, p.owner
            ));
        }
        if let Err(e) = bind(&p.addr) {
            return Err(format!(
                "port {} ({}) is taken: {e}; nothing started (is another `ensemble up` running? `ensemble status` shows it)",
                p.addr, p.owner
            ));
        }
    }
    Ok(())
}

/// Binds every address `addr` resolves to, and lets go at once.
fn bind(addr: &str) -> std::io::Result<()> {
    for a in addr.to_socket_addrs()? {
        TcpListener::bind(a)?;
    }
    Ok(())
}
