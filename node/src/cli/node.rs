//! `ensemble node`: runs one server until SIGINT or SIGTERM.

use super::{load, NodeArgs};
use crate::{control, Node, NodeEvent};
use std::rc::Rc;
use tokio::sync::broadcast::error::RecvError;

pub(super) fn run(args: &NodeArgs) -> Result<i32, Box<dyn std::error::Error>> {
    let config = load(args)?;
    start_trimming();
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

/// How often freed memory goes back to the system.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// glibc's malloc keeps what a server frees in its arenas: after a fill of 200,000 znodes was
/// deleted, each server still held 99 MiB although the tree had given back every byte (see
/// `actors/tests/tree_heap.rs`). A thread of its own hands free pages back every 10 s.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_trimming() {
    let spawned = std::thread::Builder::new()
        .name("ensemble-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim only returns the allocator's own free pages to the system.
            unsafe { libc::malloc_trim(0) };
        });
    if let Err(e) = spawned {
        tracing::warn!("not trimming freed memory: {e}");
    }
}

/// Other allocators return freed memory themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn start_trimming() {}
