//! `ensemble node`: runs one server until SIGINT or SIGTERM.

use super::{load, NodeArgs};
use crate::{control, Node};
use std::rc::Rc;

pub(super) fn run(args: &NodeArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let config = load(args)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let control_stdin = args.control_stdin;
    let system = actix::System::new();
    let code = system.block_on(async move {
        let node = match Node::start(config) {
            Ok(n) => Rc::new(n),
            Err(e) => {
                eprintln!("ensemble: {e}");
                return 1;
            }
        };
        if control_stdin {
            actix::spawn(control::serve_stdin(node.clone()));
        }
        wait_for_shutdown().await;
        tracing::info!("shutting down");
        if let Ok(node) = Rc::try_unwrap(node) {
            node.stop();
        }
        tracing::info!("stopped");
        0
    });
    Ok(code)
}

async fn wait_for_shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
