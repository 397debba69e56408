//! `ensemble node`: runs one server until SIGINT or SIGTERM.

use super::{load, NodeArgs};
use crate::{control, Node, NodeEvent};
use std::rc::Rc;
use tokio::sync::broadcast::error::RecvError;

pub(super) fn run(args: &NodeArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let config = load(args)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let control_stdin = args.control_stdin;
    let system = actix::System::new();
    let code = system.block_on(async move {
        let node = match Node::start(config).await {
            Ok(n) => Rc::new(n),
            Err(e) => {
                eprintln!("ensemble: {e}");
                return 1;
            }
        };
        if control_stdin {
            actix::spawn(control::serve_stdin(node.clone()));
        }
        let mut events = node.subscribe();
        let failed = async move {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Failed(_)) | Err(RecvError::Closed) => return,
                    Ok(NodeEvent::Role { .. }) | Err(RecvError::Lagged(_)) => {}
                }
            }
        };
        tokio::select! {
            // The node logged why; 70 is sysexits' EX_SOFTWARE, as before.
            _ = failed => return 70,
            _ = wait_for_shutdown() => {}
        }
        tracing::info!("shutting down");
        if let Ok(node) = Rc::try_unwrap(node) {
            node.stop().await;
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
