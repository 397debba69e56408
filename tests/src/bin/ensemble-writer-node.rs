//! One ensemble server embedded through the node API, driven by line commands on stdin, so
//! that process tests can write before the client protocol exists. Usage:
//! `ensemble-writer-node CONFIG.toml ID`. Commands (one per line, answered asynchronously):
//! - `create PATH DATA` -> `ok PATH ZXID RESULT` or `err PATH MESSAGE`
//! - `get PATH` -> `data PATH DATA` (or `data PATH -` when missing)
//! - `status` -> `status STATE SERVING LEADER APPLIED RESTARTS`
//! - `fail-quorum`, `fail-link SID` -> fault injection, answered `injected`

use ensemble_actors::data_tree::TreeOp;
use ensemble_node::Node;
use std::io::{BufRead, Write};
use std::rc::Rc;

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(id)) = (args.get(1), args.get(2).and_then(|a| a.parse().ok())) else {
        eprintln!("usage: ensemble-writer-node CONFIG.toml ID");
        std::process::exit(2);
    };
    let config = match ensemble_config::load_toml(std::path::Path::new(path), id) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ensemble: {e}");
            std::process::exit(1);
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    actix::System::new().block_on(async move {
        let node = match Node::start(config) {
            Ok(n) => Rc::new(n),
            Err(e) => {
                eprintln!("ensemble: {e}");
                std::process::exit(1);
            }
        };
        say("started".into());
        while let Some(line) = rx.recv().await {
            let node = node.clone();
            actix::spawn(async move { say(handle(&node, &line).await) });
        }
    });
}

async fn handle(node: &Node, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["create", path, data] => match node
            .write(TreeOp::Create {
                path: path.to_string(),
                data: data.as_bytes().to_vec(),
            })
            .await
        {
            Ok((zxid, result)) => format!("ok {path} {} {result:?}", zxid.0),
            Err(e) => format!("err {path} {e}"),
        },
        ["get", path] => match node.read(path).await {
            Ok(Some(d)) => format!("data {path} {}", String::from_utf8_lossy(&d)),
            Ok(None) => format!("data {path} -"),
            Err(e) => format!("err {path} {e}"),
        },
        ["status"] => match node.status().await {
            Ok(s) => format!(
                "status {:?} {} {} {} {}",
                s.peer.state,
                s.peer.serving,
                s.peer.leader.unwrap_or(0),
                s.peer.applied.0,
                s.restarts
            ),
            Err(e) => format!("err status {e}"),
        },
        ["fail-quorum"] => {
            node.inject_quorum_failure();
            "injected".into()
        }
        ["fail-link", sid] => {
            node.inject_link_failure(sid.parse().unwrap_or(0));
            "injected".into()
        }
        _ => format!("err unknown command {line:?}"),
    }
}
