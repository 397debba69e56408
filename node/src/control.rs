//! A line-command control channel on stdin (`ensemble node --control-stdin`), for tests and
//! `ensemble bench` until the ZooKeeper client protocol serves writes. Each line is answered
//! on stdout when it completes, so many commands may be in flight:
//! - `create PATH DATA` -> `ok PATH ZXID RESULT` or `err PATH MESSAGE`
//! - `get PATH` -> `data PATH DATA` (`data PATH -` when missing)
//! - `status` -> `status STATE SERVING LEADER APPLIED RESTARTS`
//! - `fail ACTOR` -> fault injection, answered `injected`: ACTOR is `election` (the election
//!   actor), `zab` (the quorum peer actor), `sessions` (the session tracker),
//!   `client-port`, `peer-listener`, `storage` or `link SID`

use crate::{Node, NodeActor};
use ensemble_actors::data_tree::{AclEntry, CreateMode, OpResult, TreeOp, TreeTxn};
use ensemble_messages::zk::SessionId;
use std::io::{BufRead, Write};
use std::rc::Rc;

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Serves control commands from stdin until it closes.
pub async fn serve_stdin(node: Rc<Node>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    say("started".into());
    while let Some(line) = rx.recv().await {
        let node = node.clone();
        actix::spawn(async move { say(answer(&node, &line).await) });
    }
}

/// The answer to one command line.
pub async fn answer(node: &Node, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["create", path, data] => {
            let txn = TreeTxn {
                session_id: SessionId::NONE,
                time_ms: now_ms(),
                auth: Vec::new(),
                op: TreeOp::Create {
                    path: path.to_string(),
                    data: data.as_bytes().to_vec(),
                    acl: AclEntry::open(),
                    mode: CreateMode::Persistent,
                },
            };
            match node.write(txn).await {
                Ok((zxid, OpResult::Created { .. })) => format!("ok {path} {} Ok", zxid.0),
                Ok((zxid, other)) => format!("ok {path} {} {other:?}", zxid.0),
                Err(e) => format!("err {path} {e}"),
            }
        }
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
        ["fail", actor @ ..] => inject(node, actor),
        _ => format!("err unknown command {line:?}"),
    }
}

/// The actor a `fail` command names.
fn target(words: &[&str]) -> Result<NodeActor, String> {
    Ok(match words {
        ["election"] => NodeActor::Election,
        ["zab"] => NodeActor::QuorumPeer,
        ["pipeline"] => NodeActor::Pipeline,
        ["sessions"] => NodeActor::Sessions,
        ["client-port"] => NodeActor::ClientPort,
        ["peer-listener"] => NodeActor::PeerListener,
        ["storage"] => NodeActor::Storage,
        ["link", sid] => NodeActor::Link(
            sid.parse()
                .map_err(|_| format!("{sid:?} is not a server id"))?,
        ),
        _ => return Err(format!("no actor {:?}", words.join(" "))),
    })
}

fn inject(node: &Node, words: &[&str]) -> String {
    match target(words).and_then(|t| node.inject_failure(t)) {
        Ok(()) => "injected".into(),
        Err(e) => format!("err fail {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_names_each_supervised_actor() {
        for (words, actor) in [
            (&["election"][..], NodeActor::Election),
            (&["zab"], NodeActor::QuorumPeer),
            (&["pipeline"], NodeActor::Pipeline),
            (&["sessions"], NodeActor::Sessions),
            (&["client-port"], NodeActor::ClientPort),
            (&["peer-listener"], NodeActor::PeerListener),
            (&["storage"], NodeActor::Storage),
            (&["link", "3"], NodeActor::Link(3)),
        ] {
            assert_eq!(target(words), Ok(actor), "{words:?}");
        }
        assert!(target(&["link", "x"])
            .unwrap_err()
            .contains("not a server id"));
        assert!(target(&["tree"]).unwrap_err().contains("no actor"));
        assert!(target(&[]).is_err());
    }
}
