//! The I/O of fast failover (decisions are in `takeover.rs`): the ALIVE master publishes its
//! session record, a STANDBY master reads the leader's, probes its RPC port and takes its
//! session over.
//!
//! The record is the ephemeral znode `<dir>/leader_session`, owned by the ALIVE master's
//! session (so it goes with the session) and readable only by the masters' digest credential
//! (`spark.deploy.zookeeper.masterAuth`): its ACL grants every permission to that identity and
//! none to anyone else, so the session's password never leaves the masters.

use super::ensemble_link::{decode_record, encode_record};
use super::takeover::{Input, Output, Probe, SessionRecord, Takeover};
use crate::client_port::digest_id;
use crate::zk_client::{ClientError, ZkClient};
use ensemble_messages::codec::PeerCodec;
use ensemble_messages::jute::{Acl, Id};
use ensemble_messages::spark::{FromMaster, ToMaster};
use ensemble_messages::zk::{perm, CreateMode, SessionId, ZkError};
use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// The record's znode name under `spark.deploy.zookeeper.dir`.
pub const RECORD_NAME: &str = "leader_session";

/// How long a probe waits for a connection and then for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the core is ticked while a watch runs (its quick retries wait 20 ms).
const TICK: Duration = Duration::from_millis(10);

/// The ACL of the record: every permission to the masters' credential, none to anyone else.
pub fn masters_acl(credential: &str) -> Vec<Acl> {
    vec![Acl {
        perms: perm::ALL,
        id: Id {
            scheme: "digest".into(),
            id: digest_id(credential),
        },
    }]
}

/// Publishes `record` at `path` as an ephemeral znode of this session (replacing one another
/// session left there).
pub async fn publish(
    client: &ZkClient,
    path: &str,
    record: &SessionRecord,
    acl: &[Acl],
) -> Result<(), ClientError> {
    let data = encode_record(record);
    for _ in 0..2 {
        match client
            .create_with_acl(path, &data, acl.to_vec(), CreateMode::Ephemeral)
            .await
        {
            Ok(_) => return Ok(()),
            Err(ClientError::Server(ZkError::NodeExists)) => {}
            Err(e) => return Err(e),
        }
        match client.exists(path).await? {
            // Created by an earlier try whose answer was lost.
            Some(stat) if SessionId(stat.ephemeral_owner) == client.session_id => return Ok(()),
            Some(_) => match client.delete(path, -1).await {
                Ok(()) | Err(ClientError::Server(ZkError::NoNode)) => {}
                Err(e) => return Err(e),
            },
            None => {}
        }
    }
    Err(ClientError::Server(ZkError::NodeExists))
}

/// What a STANDBY master sees of the leader: the session that owns the leading latch and the
/// published record with its znode's owner (read only by the master `next_in_line`). Leaves a
/// watch on the record, so that its creation is seen. None when the latch is gone (its watch
/// fires).
pub async fn read(
    client: &ZkClient,
    latch: &str,
    path: &str,
    next_in_line: bool,
) -> Result<Option<Input>, ClientError> {
    let Some(latch) = client.exists(latch).await? else {
        return Ok(None);
    };
    let leader = |record| {
        Some(Input::Leader {
            next_in_line,
            latch_owner: SessionId(latch.ephemeral_owner),
            record,
        })
    };
    if !next_in_line {
        return Ok(leader(None));
    }
    if client.exists_watch(path, true).await?.is_none() {
        return Ok(leader(None));
    }
    let (data, stat) = match client.get_data(path).await {
        Ok(v) => v,
        Err(ClientError::Server(ZkError::NoNode)) => return Ok(leader(None)),
        Err(ClientError::Server(ZkError::NoAuth)) => {
            tracing::warn!(
                "cannot read {path}: the masters' credentials differ \
                 (spark.deploy.zookeeper.masterAuth); failover waits for session expiry"
            );
            return Ok(leader(None));
        }
        Err(e) => return Err(e),
    };
    match decode_record::<SessionRecord>(&data).and_then(SessionRecord::checked) {
        Ok(record) => Ok(leader(Some((record, SessionId(stat.ephemeral_owner))))),
        Err(e) => {
            tracing::warn!("unreadable session record at {path}: {e}");
            Ok(leader(None))
        }
    }
}

/// Asks the process on `rpc` which session it holds; after an answer, keeps the connection
/// and reports when it closes.
async fn probe(rpc: &str, report: impl Fn(Probe)) {
    let stream = match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(rpc)).await {
        Err(_) => return report(Probe::Inconclusive("connect timed out".into())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return report(Probe::Refused)
        }
        Ok(Err(e)) => return report(Probe::Inconclusive(e.to_string())),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let mut frames = Framed::new(stream, PeerCodec::<FromMaster, ToMaster>::default());
    if let Err(e) = frames.send(ToMaster::Identify).await {
        return report(Probe::Inconclusive(e.to_string()));
    }
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        while let Some(Ok(msg)) = frames.next().await {
            if let FromMaster::Identity { session_id, .. } = msg {
                return Some(session_id);
            }
        }
        None
    })
    .await;
    match answer {
        Ok(Some(session)) => report(Probe::Answered(session)),
        Ok(None) => return report(Probe::Inconclusive("closed without answering".into())),
        Err(_) => return report(Probe::Inconclusive("no answer".into())),
    }
    while let Some(Ok(_)) = frames.next().await {}
    report(Probe::Closed);
}

/// Takes the session of `record` over and closes it; a session already gone counts as closed.
async fn take_over(
    servers: &[String],
    timeout: Duration,
    record: &SessionRecord,
) -> Result<(), String> {
    let id = record.session_id;
    let client = match ZkClient::attach(servers, timeout, id, record.password.clone()).await {
        Ok(c) => c,
        Err(ClientError::Server(ZkError::SessionExpired)) => return Ok(()),
        Err(e) => return Err(format!("cannot attach to session {id}: {e}")),
    };
    client
        .close()
        .await
        .map_err(|e| format!("cannot close session {id}: {e}"))
}

/// A STANDBY master's watch of the ALIVE master's session: runs the take-over core and carries
/// out its outputs.
pub struct Watcher {
    core: Takeover,
    started: Instant,
    servers: Vec<String>,
    timeout: Duration,
    tx: mpsc::UnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
    probe: Option<JoinHandle<()>>,
}

impl Watcher {
    /// A watch by the master holding `own_session`, which takes sessions over on `servers`.
    pub fn new(own_session: SessionId, servers: Vec<String>, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Watcher {
            core: Takeover::new(own_session),
            started: Instant::now(),
            servers,
            timeout,
            tx,
            rx,
            probe: None,
        }
    }

    /// The next result of a probe or take-over, or a tick.
    pub async fn next(&mut self) -> Input {
        tokio::select! {
            Some(input) = self.rx.recv() => input,
            _ = tokio::time::sleep(TICK) => Input::Tick,
        }
    }

    /// Feeds the core and carries out what it decides.
    pub fn feed(&mut self, input: Input) {
        match &input {
            Input::TakenOver { session_id, result } => match result {
                Ok(()) => tracing::info!("closed the dead master's session {session_id}"),
                Err(e) => tracing::warn!("take-over failed ({e}); probing again"),
            },
            Input::Probed {
                session_id,
                outcome: Probe::Answered(s),
            } if s == session_id => tracing::info!(
                "the ALIVE master's process answers with its session {s}; watching it"
            ),
            Input::Probed {
                outcome: Probe::Inconclusive(why),
                ..
            } => tracing::info!("probe of the ALIVE master inconclusive ({why}); waiting"),
            _ => {}
        }
        let now = self.started.elapsed().as_millis() as u64;
        for out in self.core.step(input, now) {
            self.carry_out(out);
        }
    }

    fn carry_out(&mut self, out: Output) {
        match out {
            Output::Probe { session_id, rpc } => {
                self.stop_probe();
                let tx = self.tx.clone();
                self.probe = Some(tokio::spawn(async move {
                    probe(&rpc, |outcome| {
                        let _ = tx.send(Input::Probed {
                            session_id,
                            outcome,
                        });
                    })
                    .await
                }));
            }
            Output::StopProbe => self.stop_probe(),
            Output::TakeOver { record, why } => {
                self.stop_probe();
                tracing::warn!(
                    "the ALIVE master's process is gone ({why}): taking over its session {} \
                     and closing it, so that the next master leads now",
                    record.session_id
                );
                let (tx, servers, timeout) = (self.tx.clone(), self.servers.clone(), self.timeout);
                tokio::spawn(async move {
                    let result = take_over(&servers, timeout, &record).await;
                    let session_id = record.session_id;
                    let _ = tx.send(Input::TakenOver { session_id, result });
                });
            }
            Output::Ignored(why) => tracing::warn!("{why}"),
        }
    }

    fn stop_probe(&mut self) {
        if let Some(p) = self.probe.take() {
            p.abort();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_probe();
    }
}
