//! The master's link to the ensemble: leader election with an ephemeral-sequential latch and
//! the persisted worker records, over one session of the client library.
//!
//! Layout under `spark.deploy.zookeeper.dir` (default `/spark`), as Spark's:
//! - `leader_election/latch-<seq>`: one ephemeral-sequential znode per master, holding its URL
//!   (and, on a second line, its web UI, which STANDBY masters link to);
//!   the lowest sequence leads, and every other master watches its predecessor only.
//! - `master_status/worker_<id>`: one persistent znode per registered worker.
//! - `leader_session` (an ensemble addition, with `spark.deploy.zookeeper.masterAuth`): the
//!   ALIVE master's session, ephemeral and readable by the masters only, for the take-over of a
//!   dead master's session (`takeover.rs`, `takeover_io.rs`).
//!
//! The elected master's epoch is the zxid that created its latch znode, so a later leader always
//! has a larger epoch. Errors are handled as Curator's session-based policy does: a lost
//! connection (the client moves the session to another server) suspends the master, and the
//! calls in flight are retried once the session is back, since every call here is idempotent;
//! only the session's expiry deposes it, and it contends again with a new session. Record
//! changes carry the epoch they were issued under and are applied only while this link leads at
//! that epoch (the session that holds the latch writes them), so a stale master's changes never
//! land. A master started before the ensemble keeps trying until it is up.

use super::apps::StoredApp;
use super::drivers::StoredDriver;
use super::takeover::{Input as Seen, SessionRecord};
use super::takeover_io::{self, Watcher};
use crate::zk_client::{ClientError, WatchedEvent, ZkClient};
use ensemble_messages::spark::{MasterEpoch, WorkerSpec};
use ensemble_messages::zk::{CreateMode, EventType, KeeperState, SessionId, ZkError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and how to reach the ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnsembleSettings {
    /// spark.deploy.zookeeper.url, as `host:port` entries.
    pub servers: Vec<String>,
    /// spark.deploy.zookeeper.dir.
    pub dir: String,
    /// Session timeout asked for.
    pub session_timeout: Duration,
    /// What the latch znode holds: the master's URL, and on a second line its web UI.
    pub identity: String,
    /// The master's RPC address, `host:port`, published for the take-over of its session.
    pub rpc: String,
    /// spark.deploy.zookeeper.masterAuth: the masters' digest credential; without it the
    /// session is not published and failover waits for session expiry.
    pub master_auth: Option<String>,
}

/// What the link tells the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// This master leads at `epoch`; the persisted records it read.
    Elected {
        /// The latch znode's czxid.
        epoch: MasterEpoch,
        /// Readable worker records.
        stored: Vec<WorkerSpec>,
        /// Readable application records.
        apps: Vec<StoredApp>,
        /// Readable driver records.
        drivers: Vec<StoredDriver>,
    },
    /// The session was lost: no longer the leader.
    Deposed,
    /// The connection to the ensemble was lost; the session may live on another server.
    Suspended,
    /// Connected again with the same session.
    Resumed,
    /// The link holds this ensemble session now (it answers other masters' Identify).
    Session(SessionId),
    /// Another master leads: what its latch znode holds (its URL, and on a second line its
    /// web UI), for the STANDBY page.
    LeaderIs(String),
    /// Record changes `1..=seq` issued under `epoch` are stored.
    Stored {
        /// The epoch they were issued under.
        epoch: MasterEpoch,
        /// The number of the last one stored.
        seq: u64,
    },
}

/// A record change, stamped with the epoch of the master that issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// The issuing master's epoch.
    pub epoch: MasterEpoch,
    /// The change.
    pub op: StoreOp,
}

/// Counts the record changes a link applies under the epoch it leads at, and fences off
/// changes issued under any other epoch.
#[derive(Debug, Default)]
pub struct Fence {
    leading: Option<MasterEpoch>,
    applied: u64,
}

impl Fence {
    /// Leading from now on at `epoch`, nothing applied yet.
    pub fn lead(&mut self, epoch: MasterEpoch) {
        *self = Fence {
            leading: Some(epoch),
            applied: 0,
        };
    }

    /// Whether a change issued under `epoch` may be applied.
    pub fn admits(&self, epoch: MasterEpoch) -> bool {
        self.leading == Some(epoch)
    }

    /// One admitted change was applied: the event that says so.
    pub fn applied(&mut self) -> Option<LinkEvent> {
        let epoch = self.leading?;
        self.applied += 1;
        Some(LinkEvent::Stored {
            epoch,
            seq: self.applied,
        })
    }
}

/// A change to the persisted records, applied in order while this master leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Create or replace a worker's record.
    PutWorker(WorkerSpec),
    /// Delete a worker's record.
    ForgetWorker(String),
    /// Create or replace an application's record.
    PutApp(StoredApp),
    /// Delete an application's record.
    ForgetApp(String),
    /// Create or replace a driver's record.
    PutDriver(StoredDriver),
    /// Delete a driver's record.
    ForgetDriver(String),
}

/// The records one master keeps, as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Workers.
    pub workers: Vec<WorkerSpec>,
    /// Applications.
    pub apps: Vec<StoredApp>,
    /// Drivers.
    pub drivers: Vec<StoredDriver>,
}

impl Records {
    /// Adds the record stored under `name`, if it is one; says why it cannot be read.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), String> {
        if name.starts_with("worker_") {
            decode_record(data).map(|w| self.workers.push(w))
        } else if name.starts_with("app_") {
            decode_record(data).map(|a| self.apps.push(a))
        } else if name.starts_with("driver_") {
            decode_record(data).map(|d| self.drivers.push(d))
        } else {
            Err("not a worker, application or driver record".into())
        }
    }

    /// The election event that hands these records to the master.
    pub fn elected(self, epoch: MasterEpoch) -> LinkEvent {
        LinkEvent::Elected {
            epoch,
            stored: self.workers,
            apps: self.apps,
            drivers: self.drivers,
        }
    }

    /// `N worker, N application and N driver records`, for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} worker, {} application and {} driver records",
            self.workers.len(),
            self.apps.len(),
            self.drivers.len()
        )
    }
}

/// Applies a record change to a store keyed by record name: `put(name, bytes)` or
/// `forget(name)`.
pub fn record_change(op: StoreOp) -> (String, Option<Vec<u8>>) {
    match op {
        StoreOp::PutWorker(w) => (format!("worker_{}", w.id), Some(encode_record(&w))),
        StoreOp::ForgetWorker(id) => (format!("worker_{id}"), None),
        StoreOp::PutApp(a) => (format!("app_{}", a.id), Some(encode_record(&a))),
        StoreOp::ForgetApp(id) => (format!("app_{id}"), None),
        StoreOp::PutDriver(d) => (format!("driver_{}", d.id), Some(encode_record(&d))),
        StoreOp::ForgetDriver(id) => (format!("driver_{id}"), None),
    }
}

/// Record format version written before the JSON body.
const RECORD_VERSION: u8 = 1;

/// Encodes a record: a version byte, then JSON.
pub fn encode_record<T: serde::Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    out.extend(serde_json::to_vec(record).expect("records always encode"));
    out
}

/// Encodes a worker record.
pub fn encode_worker(spec: &WorkerSpec) -> Vec<u8> {
    encode_record(spec)
}

/// Decodes a record, or says why it cannot.
pub fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| format!("bad record: {e}"))
        }
        Some((v, _)) => Err(format!("unknown record version {v}")),
        None => Err("empty record".into()),
    }
}

/// Runs the link until `ops` closes, reporting through `report`.
pub async fn run(
    settings: EnsembleSettings,
    mut ops: mpsc::UnboundedReceiver<Stamped>,
    report: impl Fn(LinkEvent),
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let (tx, events) = mpsc::unbounded_channel();
        let client =
            match ZkClient::connect_with_events(&settings.servers, settings.session_timeout, tx)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("cannot reach the ensemble ({e}); retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
        backoff = Duration::from_millis(100);
        report(LinkEvent::Session(client.session_id));
        let watch = settings.master_auth.as_ref().map(|_| {
            Watcher::new(
                client.session_id,
                settings.servers.clone(),
                settings.session_timeout,
            )
        });
        let mut session = Session {
            client: &client,
            events,
            report: &report,
            fence: Fence::default(),
            connected: true,
            suspended: false,
            watch,
        };
        let outcome = session.contend(&settings, &mut ops).await;
        let _ = client.close().await;
        match outcome {
            Ended::OpsClosed => return,
            Ended::SessionLost(why) => {
                tracing::warn!("ensemble session ended ({why}); contending again");
            }
        }
    }
}

enum Ended {
    OpsClosed,
    SessionLost(String),
}

/// Whether a call failed only because the connection did (its outcome is unknown): ZooKeeper's
/// ConnectionLoss, from the client or from a server that lost its quorum.
fn transient(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::ConnectionLoss(_) | ClientError::Server(ZkError::ConnectionLoss)
    )
}

/// How long to wait for a state event before retrying a call that failed transiently while
/// the connection seems up (a server that lost its quorum answers ConnectionLoss and may keep
/// the connection).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One session of the link, from its connection to its end.
struct Session<'a, R: Fn(LinkEvent)> {
    client: &'a ZkClient,
    events: mpsc::UnboundedReceiver<WatchedEvent>,
    report: &'a R,
    fence: Fence,
    /// Whether the client is connected to a server.
    connected: bool,
    /// Whether the master was told to stop acting.
    suspended: bool,
    /// The watch of the ALIVE master's session, with a masters' credential.
    watch: Option<Watcher>,
}

impl<R: Fn(LinkEvent)> Session<'_, R> {
    fn leading(&self) -> bool {
        self.fence.leading.is_some()
    }

    /// Handles a session state event; Err once the session is gone.
    fn on_state(&mut self, e: &WatchedEvent) -> Result<(), Ended> {
        match e.state {
            KeeperState::Expired => return Err(self.lost("session expired")),
            KeeperState::Disconnected => {
                self.connected = false;
                self.suspend("lost the ensemble connection");
            }
            KeeperState::SyncConnected => {
                self.connected = true;
                self.resume();
            }
            _ => {}
        }
        Ok(())
    }

    /// The ensemble cannot be used for now, the session may live: the master stops acting.
    fn suspend(&mut self, why: &str) {
        if !self.suspended {
            self.suspended = true;
            tracing::warn!("{why}; riding through on the session");
            if self.leading() {
                (self.report)(LinkEvent::Suspended);
            }
        }
    }

    /// The ensemble answers again within the same session: the master acts again.
    fn resume(&mut self) {
        if self.suspended {
            self.suspended = false;
            tracing::info!("the ensemble answers again within the same session");
            if self.leading() {
                (self.report)(LinkEvent::Resumed);
            }
        }
    }

    fn lost(&self, why: &str) -> Ended {
        if self.leading() {
            (self.report)(LinkEvent::Deposed);
        }
        Ended::SessionLost(why.to_string())
    }

    /// Waits until a call that failed transiently may be retried: the client is connected
    /// again, or, while it seems connected (a server that lost its quorum answers ConnectionLoss
    /// and may keep the connection), a short pause passed. Watch events seen meanwhile are
    /// dropped (the election looks at the latches again after every retry). Err once the
    /// session is gone.
    async fn pause(&mut self) -> Result<(), Ended> {
        let until = tokio::time::Instant::now() + RETRY_PAUSE;
        loop {
            let ev = if self.connected {
                match tokio::time::timeout_at(until, self.events.recv()).await {
                    Err(_) => return Ok(()),
                    Ok(ev) => ev,
                }
            } else {
                self.events.recv().await
            };
            let Some(ev) = ev else {
                return Err(self.lost("client stopped"));
            };
            if ev.event_type == EventType::None {
                self.on_state(&ev)?;
                if ev.state == KeeperState::SyncConnected {
                    return Ok(());
                }
            }
        }
    }

    /// Runs an idempotent call until it succeeds or fails for a reason other than a lost
    /// connection. Err once the session is gone.
    async fn retry<T, F, Fut>(&mut self, call: F) -> Result<T, Ended>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        loop {
            match call().await {
                Ok(v) => {
                    if self.connected {
                        self.resume();
                    }
                    return Ok(v);
                }
                Err(e) if transient(&e) => {
                    self.suspend(&format!("an ensemble call failed ({e})"));
                    self.pause().await?;
                }
                Err(e) => return Err(self.lost(&e.to_string())),
            }
        }
    }

    async fn contend(
        &mut self,
        settings: &EnsembleSettings,
        ops: &mut mpsc::UnboundedReceiver<Stamped>,
    ) -> Ended {
        let client = self.client;
        let latch_dir = format!("{}/leader_election", settings.dir);
        let status_dir = format!("{}/master_status", settings.dir);
        // Not retried: a latch created twice would make this master its own predecessor.
        let setup = async {
            if let Some(credential) = &settings.master_auth {
                client.add_auth("digest", credential.as_bytes()).await?;
            }
            ensure_path(client, &latch_dir).await?;
            ensure_path(client, &status_dir).await?;
            let prefix = format!("{latch_dir}/latch-");
            let own = client
                .create(
                    &prefix,
                    settings.identity.as_bytes(),
                    CreateMode::EphemeralSequential,
                )
                .await?;
            let stat = client
                .exists(&own)
                .await?
                .ok_or(ClientError::Server(ZkError::NoNode))?;
            Ok::<_, ClientError>((own, stat.czxid))
        };
        let (own, epoch) = match setup.await {
            Ok(v) => v,
            Err(e) => return Ended::SessionLost(e.to_string()),
        };
        let own_name = own.rsplit('/').next().unwrap_or_default().to_string();
        loop {
            if !self.leading() {
                if let Err(ended) = self.elect(settings, &own_name, epoch).await {
                    return ended;
                }
            }
            tokio::select! {
                seen = next_seen(&mut self.watch) => {
                    if let Some(w) = &mut self.watch {
                        w.feed(seen);
                    }
                }
                ev = self.events.recv() => match ev {
                    None => return self.lost("client stopped"),
                    Some(e) if e.event_type == EventType::None => {
                        if let Err(ended) = self.on_state(&e) {
                            return ended;
                        }
                    }
                    // A predecessor went away (or changed): look again.
                    Some(_) => {}
                },
                op = ops.recv() => match op {
                    None => return Ended::OpsClosed,
                    Some(s) if self.fence.admits(s.epoch) => {
                        if let Err(ended) = self.apply(&status_dir, s.op).await {
                            return ended;
                        }
                    }
                    Some(s) => tracing::debug!(
                        epoch = s.epoch, op = ?s.op, "record change of another epoch dropped"
                    ),
                },
            }
        }
    }

    /// Applies an admitted record change, retrying through connection losses, and reports it
    /// stored.
    async fn apply(&mut self, status_dir: &str, op: StoreOp) -> Result<(), Ended> {
        let client = self.client;
        let (name, data) = record_change(op);
        let path = format!("{status_dir}/{name}");
        match &data {
            Some(data) => self.retry(|| put(client, &path, data)).await?,
            None => self.retry(|| forget(client, &path)).await?,
        }
        if let Some(stored) = self.fence.applied() {
            (self.report)(stored);
        }
        Ok(())
    }

    /// Leads if this latch is the lowest (publishing its session, reading the records and
    /// reporting them), else watches its predecessor and the leader's session.
    async fn elect(
        &mut self,
        settings: &EnsembleSettings,
        own_name: &str,
        epoch: MasterEpoch,
    ) -> Result<(), Ended> {
        let client = self.client;
        let latch_dir = format!("{}/leader_election", settings.dir);
        let status_dir = format!("{}/master_status", settings.dir);
        let latch_dir = latch_dir.as_str();
        let status_dir = status_dir.as_str();
        loop {
            let (pred, leader) = self
                .retry(|| predecessor(client, latch_dir, own_name))
                .await?;
            let Some(pred) = pred else {
                self.publish(settings, epoch).await?;
                let reading = std::time::Instant::now();
                let records = self.retry(|| read_records(client, status_dir)).await?;
                tracing::info!(
                    epoch = format!("0x{epoch:x}"),
                    "elected leader; read {} in {} ms",
                    records.summary(),
                    reading.elapsed().as_millis()
                );
                self.fence.lead(epoch);
                (self.report)(records.elected(epoch));
                return Ok(());
            };
            // The leader is read (for the STANDBY page) and watched, also from further down
            // the line, so that a new leader is learnt of.
            if !self.watch_leader(&leader).await? {
                continue;
            }
            self.look_at_session(settings, &leader, pred == leader)
                .await?;
            if pred == leader {
                return Ok(());
            }
            // Gone between the listing and the watch: look again.
            if self
                .retry(|| client.exists_watch(&pred, true))
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }
}

impl<R: Fn(LinkEvent)> Session<'_, R> {
    /// Publishes this leader's session for the masters (with a credential): failures other
    /// than a lost connection are logged, and failover then waits for session expiry.
    async fn publish(
        &mut self,
        settings: &EnsembleSettings,
        epoch: MasterEpoch,
    ) -> Result<(), Ended> {
        let Some(credential) = &settings.master_auth else {
            return Ok(());
        };
        if let Some(w) = &mut self.watch {
            w.feed(Seen::Idle);
        }
        let client = self.client;
        let path = format!("{}/{}", settings.dir, takeover_io::RECORD_NAME);
        let acl = takeover_io::masters_acl(credential);
        let record = SessionRecord {
            session_id: client.session_id,
            password: client.password.clone(),
            rpc: settings.rpc.clone(),
            epoch,
        };
        loop {
            match takeover_io::publish(client, &path, &record, &acl).await {
                Ok(()) => return Ok(()),
                Err(e) if transient(&e) => {
                    self.suspend(&format!("publishing the session failed ({e})"));
                    self.pause().await?;
                }
                Err(e) => {
                    tracing::warn!("cannot publish the session at {path} ({e}); a failover will wait for its expiry");
                    return Ok(());
                }
            }
        }
    }

    /// Feeds the take-over watch what the leader's latch `leader` and the published session
    /// say (with a credential); only the master `next_in_line` reads the session.
    async fn look_at_session(
        &mut self,
        settings: &EnsembleSettings,
        leader: &str,
        next_in_line: bool,
    ) -> Result<(), Ended> {
        if self.watch.is_none() {
            return Ok(());
        }
        let client = self.client;
        let path = format!("{}/{}", settings.dir, takeover_io::RECORD_NAME);
        let seen = self
            .retry(|| takeover_io::read(client, leader, &path, next_in_line))
            .await?;
        if let (Some(seen), Some(w)) = (seen, &mut self.watch) {
            w.feed(seen);
        }
        Ok(())
    }

    /// Reports what the leader's latch znode `leader` holds and watches it; false if it is
    /// gone.
    async fn watch_leader(&mut self, leader: &str) -> Result<bool, Ended> {
        let client = self.client;
        let exists = self.retry(|| client.exists_watch(leader, true)).await?;
        if exists.is_none() {
            return Ok(false);
        }
        match client.get_data(leader).await {
            Ok((data, _)) => (self.report)(LinkEvent::LeaderIs(
                String::from_utf8_lossy(&data).into_owned(),
            )),
            // Gone since: its watch fires and the election is looked at again.
            Err(e) => tracing::debug!("the leader's latch went away: {e}"),
        }
        Ok(true)
    }
}

/// The next input of the take-over watch; never, without one.
async fn next_seen(watch: &mut Option<Watcher>) -> Seen {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// Creates `path` and its missing ancestors as persistent znodes.
async fn ensure_path(client: &ZkClient, path: &str) -> Result<(), ClientError> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client.create(&at, b"", CreateMode::Persistent).await {
            Ok(_) | Err(ClientError::Server(ZkError::NodeExists)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The latch znode just before `own` in sequence order (None when `own` is the lowest), and
/// the lowest, the leader's.
async fn predecessor(
    client: &ZkClient,
    latch_dir: &str,
    own: &str,
) -> Result<(Option<String>, String), ClientError> {
    let (mut children, _) = client.get_children(latch_dir, false).await?;
    let seq = |name: &str| name.rsplit('-').next().unwrap_or_default().to_string();
    children.sort_by_key(|c| seq(c));
    let at = children.iter().position(|c| c == own);
    let pred = match at {
        Some(0) => None,
        Some(i) => Some(format!("{latch_dir}/{}", children[i - 1])),
        // Our latch is gone (deleted by hand): treat the session as lost.
        None => return Err(ClientError::Server(ZkError::NoNode)),
    };
    let leader = format!(
        "{latch_dir}/{}",
        children.first().map_or("", String::as_str)
    );
    Ok((pred, leader))
}

/// Reads every record; unreadable ones are reported and left in place.
async fn read_records(client: &ZkClient, status_dir: &str) -> Result<Records, ClientError> {
    let (children, _) = client.get_children(status_dir, false).await?;
    let mut records = Records::default();
    for name in children {
        let path = format!("{status_dir}/{name}");
        let data = match client.get_data(&path).await {
            Ok((data, _)) => data,
            Err(ClientError::Server(ZkError::NoNode)) => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = records.add(&name, &data) {
            tracing::error!(%path, "unreadable record left in place: {e}");
        }
    }
    Ok(records)
}

/// Creates or replaces a record.
async fn put(client: &ZkClient, path: &str, data: &[u8]) -> Result<(), ClientError> {
    match client.create(path, data, CreateMode::Persistent).await {
        Err(ClientError::Server(ZkError::NodeExists)) => {
            client.set_data(path, data, -1).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Deletes a record if it exists.
async fn forget(client: &ZkClient, path: &str) -> Result<(), ClientError> {
    match client.delete(path, -1).await {
        Ok(()) | Err(ClientError::Server(ZkError::NoNode)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_named() {
        let spec = WorkerSpec {
            id: "worker-1".into(),
            host: "h".into(),
            port: 7,
            cores: 2,
            memory_mb: 1024,
            webui: "http://h:8081".into(),
        };
        let bytes = encode_worker(&spec);
        assert_eq!(bytes[0], 1);
        let decode = decode_record::<WorkerSpec>;
        assert_eq!(decode(&bytes), Ok(spec));
        assert_eq!(decode(&[]), Err("empty record".into()));
        assert_eq!(decode(&[9, 1]), Err("unknown record version 9".into()));
        assert!(decode(&[1, b'{']).unwrap_err().starts_with("bad record"));
    }

    /// A link applies only the changes of the epoch it leads at, and numbers them from 1 anew
    /// at each election; before it leads it applies none.
    #[test]
    fn the_fence_admits_only_the_leading_epoch_and_counts_from_each_election() {
        let mut fence = Fence::default();
        assert!(!fence.admits(0));
        assert_eq!(fence.applied(), None);
        fence.lead(7);
        assert!(fence.admits(7) && !fence.admits(6) && !fence.admits(8));
        assert_eq!(
            fence.applied(),
            Some(LinkEvent::Stored { epoch: 7, seq: 1 })
        );
        assert_eq!(
            fence.applied(),
            Some(LinkEvent::Stored { epoch: 7, seq: 2 })
        );
        fence.lead(9);
        assert!(!fence.admits(7));
        assert_eq!(
            fence.applied(),
            Some(LinkEvent::Stored { epoch: 9, seq: 1 })
        );
        assert!(transient(&ClientError::Server(ZkError::ConnectionLoss)));
        assert!(transient(&ClientError::ConnectionLoss("reset".into())));
        assert!(!transient(&ClientError::Server(ZkError::SessionExpired)));
    }

    /// Seeded mutation fuzzing of the record reader: stored records come from the ensemble and
    /// are hostile; none may panic, and nesting deeper than JSON's limit is an error.
    #[test]
    fn mutated_records_never_panic() {
        let spec = WorkerSpec {
            id: "worker-1".into(),
            host: "h".into(),
            port: 7,
            cores: 2,
            memory_mb: 1024,
            webui: "http://h:8081".into(),
        };
        let valid = encode_worker(&spec);
        let mut state = 0x5eed_0003_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut records = Records::default();
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[i] = next() as u8,
                    1 => bytes.truncate(i.max(1)),
                    _ => bytes.insert(i, b"{}[]\",0-9e"[(next() % 9) as usize]),
                }
            }
            for name in ["worker_x", "app_x", "driver_x"] {
                let _ = records.add(name, &bytes);
            }
        }
        let mut deep = vec![1u8];
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(records.add("app_deep", &deep).is_err());
    }
}
