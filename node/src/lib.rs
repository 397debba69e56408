//! Builds an ensemble node from its config and runs its actors under supervisors.
//!
//! Embedding: inside a running actix `System` (or an actix-web app), [`Node::start`] starts a
//! node's actors on an `Arbiter` of its own and returns a [`Node`] handle to write, read, query
//! status, inject failures and stop it. Several nodes may run in one process; nothing is a
//! global singleton. [`spark`] embeds Spark-style masters and workers the same way.
//!
//! Supervised actors, and which arbiter runs them: the quorum peer (Zab), the request pipeline
//! (the data tree and the client service), the election, the session tracker, the peer links,
//! the peer listener and the client ports on the node's arbiter (client connections too on a
//! machine of two cores or fewer, else on the client ports' own threads); the
//! storage writer on an arbiter of its own and its snapshot writer on a `SyncArbiter` thread.
//! Their restart policies are stated on each actor and in the README.

pub mod cli;
pub mod control;
pub mod four_letter;
pub mod local_cluster;
pub mod spark;

use actix::prelude::*;
use ensemble_actors::apache::recover_or_import;
use ensemble_actors::client_port::{ClientPort, SecurePort, ServiceSettings};
use ensemble_actors::data_tree::{OpResult, TreeTxn};
use ensemble_actors::election::{
    ElectionActor, ElectionSettings, ElectionTiming, FailElection, QuorumPeerHandle,
};
use ensemble_actors::metrics::http::Observed;
use ensemble_actors::metrics::ServerMetrics;
use ensemble_actors::peer::{
    Fail, PeerEntry, PeerIdentity, PeerListener, PeerRoster, PeerSecret, PeerSinks, PeerTls,
};
use ensemble_actors::pipeline::{
    FailPipeline, PipelineActor, PipelineSettings, ReadData, ServerAddrs, Submit, ZabHandle,
};
use ensemble_actors::sessions::{FailSessions, PipelineHandle, SessionsActor};
use ensemble_actors::storage::Recovered;
use ensemble_actors::storage::{
    FailStorage, ReportTo, StorageActor, StorageError, StorageHandle, WriterSettings,
};
pub use ensemble_actors::zab::NodeEvent;
use ensemble_actors::zab::{
    FailQuorumPeer, GetStatus, NodeEvents, NodeStatus, PeerTiming, QuorumPeerActor, QuorumSettings,
    SubmitError,
};
use ensemble_config::{NodeConfig, PeerAuth};
use ensemble_messages::zk::ConnectionId;
use ensemble_messages::{Sid, Zxid};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Why a node could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A port could not be bound.
    #[error("{what} {addr} is not available: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// Storage could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The write did not commit.
    #[error("{0}")]
    Write(#[from] SubmitError),
    /// The peer secret could not be read.
    #[error("{0}")]
    PeerSecret(String),
    /// The secure client port's or the quorum port's key material or settings are unusable.
    #[error("{0}")]
    Tls(String),
    /// The membership a reconfig left in dataDir is unreadable, or Apache's config files
    /// beside zoo.cfg cannot be written.
    #[error("{0}")]
    Membership(String),
    /// The node's actors are gone.
    #[error("the node is stopped")]
    Stopped,
}

/// Where the secure client port's connection ids start, far above the plain port's.
const SECURE_CONN_IDS: ConnectionId = ConnectionId(1 << 48);

/// The secure client port's socket and TLS setup, when configured.
fn secure_client_port(
    config: &NodeConfig,
) -> Result<Option<(std::net::TcpListener, SecurePort)>, NodeError> {
    let (Some(tls), Some(addr)) = (&config.client_tls, config.client_tls_bind_addr()) else {
        return Ok(None);
    };
    let port = SecurePort::new(tls).map_err(NodeError::Tls)?;
    let listener = bind("secure client port", &addr)?;
    tracing::info!("secure client port (TLS) on {addr}");
    Ok(Some((listener, port)))
}

/// Reads (or, for an all-loopback ensemble, creates) the peer secret the config names.
fn peer_secret(config: &NodeConfig) -> Result<Option<Arc<PeerSecret>>, NodeError> {
    match &config.peer_auth {
        PeerAuth::Off => Ok(None),
        _ if config.is_standalone() => Ok(None),
        PeerAuth::SecretFile {
            path,
            create_if_missing,
        } => PeerSecret::load(path, *create_if_missing)
            .map(|k| Some(Arc::new(k)))
            .map_err(NodeError::PeerSecret),
    }
}

/// A node's supervised actors, as fault injection names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeActor {
    /// The quorum peer actor: Zab lives in it.
    QuorumPeer,
    /// The request pipeline: the data tree and the client service.
    Pipeline,
    /// The election actor.
    Election,
    /// The session tracker.
    Sessions,
    /// The storage writer.
    Storage,
    /// The client ports (plain and secure).
    ClientPort,
    /// The peer port's acceptor.
    PeerListener,
    /// The link to this peer.
    Link(Sid),
}

/// Mutual TLS on the peer links, when the config asks for it (sslQuorum).
fn peer_tls(config: &NodeConfig) -> Result<Option<Arc<PeerTls>>, NodeError> {
    let Some(tls) = config
        .quorum_tls
        .as_ref()
        .filter(|_| !config.is_standalone())
    else {
        return Ok(None);
    };
    let hosts = config
        .servers
        .iter()
        .map(|s| (s.id, s.host.clone()))
        .collect();
    let tls = PeerTls::new(tls, hosts).map_err(NodeError::Tls)?;
    tracing::info!("quorum port runs mutual TLS");
    Ok(Some(Arc::new(tls)))
}

/// A running node.
pub struct Node {
    quorum: Addr<QuorumPeerActor>,
    pipeline: Addr<PipelineActor>,
    election: Addr<ElectionActor>,
    sessions: Addr<SessionsActor>,
    roster: PeerRoster,
    peer_listener: Option<Addr<PeerListener>>,
    client_ports: Vec<Addr<ClientPort>>,
    storage: StorageHandle,
    arbiter: Arbiter,
    client_addr: SocketAddr,
    events: NodeEvents,
}

fn bind(what: &'static str, addr: &str) -> Result<std::net::TcpListener, NodeError> {
    let err = |source| NodeError::Bind {
        what,
        addr: addr.to_string(),
        source,
    };
    let resolved = addr.to_socket_addrs().map_err(err)?.next().ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))
    })?;
    let l = std::net::TcpListener::bind(resolved).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

/// The bound sockets of a server's HTTP endpoints: bound at start, so that a port in use
/// is one clear error before anything runs.
struct HttpListeners {
    metrics: Option<std::net::TcpListener>,
    admin: Option<(std::net::TcpListener, String)>,
}

impl HttpListeners {
    fn bind(config: &NodeConfig) -> Result<Self, NodeError> {
        if config.admin_default_skipped {
            tracing::warn!(
                "zoo.cfg sets neither admin.enableServer nor admin.serverPort: Apache ZooKeeper \
                 would serve its AdminServer on 0.0.0.0:8080, ensemble leaves it off (set \
                 admin.enableServer=true to serve it)"
            );
        }
        let metrics = match &config.metrics {
            Some(m) => Some(bind("metrics port", &m.bind_addr())?),
            None => None,
        };
        let admin = match &config.admin {
            Some(a) => Some((
                bind("admin server port", &a.bind_addr())?,
                a.command_url.clone(),
            )),
            None => None,
        };
        Ok(HttpListeners { metrics, admin })
    }

    /// Starts the endpoints on the current arbiter; they stop with it.
    fn serve(self, observed: Observed) {
        use ensemble_actors::{admin, metrics};
        let servers = [
            self.metrics
                .map(|l| ("metrics", metrics::http::serve(l, observed.clone()))),
            self.admin
                .map(|(l, url)| ("admin server", admin::http::serve(l, observed, &url))),
        ];
        for (what, server) in servers.into_iter().flatten() {
            match server {
                Ok(server) => {
                    actix::spawn(async move {
                        if let Err(e) = server.await {
                            tracing::error!("{what} endpoint stopped: {e}");
                        }
                    });
                }
                Err(e) => tracing::error!("{what} endpoint cannot start: {e}"),
            }
        }
    }
}

/// Core timing derived from the config.
pub fn peer_timing(config: &NodeConfig) -> PeerTiming {
    PeerTiming {
        tick_ms: config.tick_ms,
        init_limit: config.init_limit,
        sync_limit: config.sync_limit,
        election: ElectionTiming {
            finalize_wait_ms: if config.is_standalone() {
                0
            } else {
                config.election.finalize_wait_ms
            },
            initial_timeout_ms: 200,
            max_timeout_ms: config.election.max_notification_timeout_ms,
        },
        diff_window: config.storage.commit_log_count,
    }
}

/// The sockets a node binds before anything runs, so that a port in use is one clear error.
struct Sockets {
    peer: Option<std::net::TcpListener>,
    client: std::net::TcpListener,
    client_addr: SocketAddr,
    secure: Option<(std::net::TcpListener, SecurePort)>,
    http: HttpListeners,
}

impl Sockets {
    fn bind(config: &NodeConfig) -> Result<Self, NodeError> {
        let peer = if config.is_standalone() {
            None
        } else {
            Some(bind("peer port", &config.peer_bind_addr())?)
        };
        if let Some(addr) = config.election_bind_addr() {
            // ensemble does not use the election port, but a clash there is a config mistake.
            bind("election port", &addr)?;
        }
        let client_bind = config.client_bind_addr();
        let client = bind("client port", &client_bind)?;
        let client_addr = client.local_addr().map_err(|source| NodeError::Bind {
            what: "client port",
            addr: client_bind,
            source,
        })?;
        let secure = secure_client_port(config)?;
        let http = HttpListeners::bind(config)?;
        Ok(Sockets {
            peer,
            client,
            client_addr,
            secure,
            http,
        })
    }
}

/// The storage writer's settings from the config.
fn writer_settings(config: &NodeConfig) -> WriterSettings {
    WriterSettings {
        data_dir: config.storage.data_dir.clone(),
        data_log_dir: config.storage.data_log_dir.clone(),
        fsync: config.storage.fsync,
        fsync_warning: std::time::Duration::from_millis(config.storage.fsync_warning_ms),
        snap_retain_count: config.storage.snap_retain_count,
    }
}

/// Recovers (or imports) the node's storage and makes it ready for the writer. Blocking:
/// reads every snapshot and log file.
fn recover_storage(config: &NodeConfig) -> Result<Recovered, NodeError> {
    let s = writer_settings(config);
    let recovered = recover_or_import(&s.data_dir, &s.data_log_dir, s.fsync)?;
    ensemble_actors::storage::prepare(&s)?;
    Ok(recovered)
}

/// Builds the quorum actor from recovered storage, writing through `storage`. Blocking:
/// rebuilds the tree.
fn build_actor(
    config: &NodeConfig,
    recovered: Recovered,
    storage: Addr<StorageActor>,
    metrics: Arc<ServerMetrics>,
    events: NodeEvents,
) -> Result<Built, NodeError> {
    let secret = peer_secret(config)?;
    let tls = peer_tls(config)?;
    let settings = QuorumSettings {
        sid: config.id,
        voters: config.voters(),
        membership: config.membership(),
        zoo_cfg_files: config.zoo_cfg_files.clone(),
        timing: peer_timing(config),
        storage: writer_settings(config),
        max_txn_bytes: config.client.max_buffer_bytes as usize,
        metrics: metrics.clone(),
        events,
    };
    let pipeline = PipelineSettings {
        sid: config.id,
        service: service_settings(config),
        snap_count: config.storage.snap_count,
        container_check_ms: config.client.container_check_ms,
        tick_ms: config.tick_ms,
        metrics,
    };
    let actor = QuorumPeerActor::new(settings, storage.clone(), recovered)?;
    let identity = PeerIdentity {
        sid: config.id,
        secret,
        tls,
    };
    Ok(Built {
        storage,
        actor,
        pipeline,
        identity,
    })
}

/// A node's quorum actor, recovered and not yet started, its pipeline's settings and its
/// storage writer.
struct Built {
    storage: Addr<StorageActor>,
    actor: QuorumPeerActor,
    pipeline: PipelineSettings,
    identity: PeerIdentity,
}

fn service_settings(config: &NodeConfig) -> ServiceSettings {
    ServiceSettings {
        min_ms: config.client.min_session_timeout_ms.min(i32::MAX as u64) as i32,
        max_ms: config.client.max_session_timeout_ms.min(i32::MAX as u64) as i32,
        max_buffer: config.client.max_buffer_bytes as usize,
        read_only_mode: config.client.read_only_mode,
        super_digest: config.client.super_digest_sha1(),
        enforce_quota: config.client.enforce_quota,
        reconfig_enabled: config.client.reconfig_enabled,
    }
}

/// The quorum actor, the request pipeline, the election actor, the session tracker, the peer
/// links and the peer listener, running.
struct Quorum {
    quorum: Addr<QuorumPeerActor>,
    pipeline: Addr<PipelineActor>,
    election: Addr<ElectionActor>,
    sessions: Addr<SessionsActor>,
    roster: PeerRoster,
    peer_listener: Option<Addr<PeerListener>>,
}

/// Starts the election actor and the peer links, whose events go to it and to `quorum`, on
/// the current arbiter, under supervisors.
fn start_election(
    settings: ElectionSettings,
    identity: PeerIdentity,
    peers: Vec<PeerEntry>,
    quorum: Addr<QuorumPeerActor>,
) -> (Addr<ElectionActor>, PeerRoster) {
    let made = std::rc::Rc::new(std::cell::Cell::new(None));
    let roster_out = made.clone();
    let election = Supervisor::start(move |ctx: &mut Context<ElectionActor>| {
        let sinks = PeerSinks::new(quorum.clone().recipient(), ctx.address().recipient());
        let roster = PeerRoster::new(identity, sinks);
        roster.follow(&peers);
        roster_out.set(Some(roster.clone()));
        ElectionActor::new(settings, roster, QuorumPeerHandle::of(quorum))
    });
    let roster = made
        .take()
        .expect("Supervisor::start builds its actor before it returns");
    (election, roster)
}

/// Starts the request pipeline and the session tracker it feeds (and whose expiries it
/// proposes) on the current arbiter, under supervisors.
fn start_pipeline(
    settings: PipelineSettings,
    quorum: Addr<QuorumPeerActor>,
    storage: Addr<StorageActor>,
    roster: PeerRoster,
) -> (Addr<PipelineActor>, Addr<SessionsActor>) {
    let tick_ms = settings.tick_ms;
    let made = std::rc::Rc::new(std::cell::Cell::new(None));
    let sessions_out = made.clone();
    let pipeline = Supervisor::start(move |ctx: &mut Context<PipelineActor>| {
        let addr = ctx.address();
        let handle = PipelineHandle {
            propose: addr.clone().recipient(),
            resync: addr.recipient(),
        };
        let sessions = Supervisor::start(move |_| SessionsActor::new(tick_ms, handle, roster));
        sessions_out.set(Some(sessions.clone()));
        PipelineActor::new(settings, ZabHandle::of(quorum), storage.recipient())
            .with_sessions(sessions)
    });
    let sessions = made
        .take()
        .expect("Supervisor::start builds its actor before it returns");
    (pipeline, sessions)
}

/// How often the quorum peer and election actors tick their cores.
fn tick_every(tick_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis((tick_ms / 4).clamp(5, 50))
}

/// Starts the quorum actor, the election actor, the session tracker, the peer links and the
/// peer listener on
/// `arbiter`, under supervisors; resolves with their addresses once they run.
async fn start_quorum(
    config: &NodeConfig,
    arbiter: &Arbiter,
    built: Built,
    peer_listener: Option<std::net::TcpListener>,
) -> Result<Quorum, NodeError> {
    let Built {
        actor,
        storage,
        pipeline,
        identity,
    } = built;
    let peers: Vec<PeerEntry> = config
        .servers
        .iter()
        .map(|s| PeerEntry {
            sid: s.id,
            addr: s.peer_addr(),
            host: s.host.clone(),
        })
        .collect();
    let settings = ElectionSettings {
        sid: config.id,
        timing: peer_timing(config).election,
        tick_every: tick_every(config.tick_ms),
    };
    let (ready_tx, ready_rx) = oneshot::channel();
    let quorum = Supervisor::start_in_arbiter(&arbiter.handle(), move |ctx| {
        let addr = ctx.address();
        // Before the actor persists anything: the writer's mailbox keeps the order.
        storage.do_send(ReportTo(addr.clone().recipient()));
        let (election, roster) = start_election(settings, identity, peers, addr.clone());
        let listener = peer_listener.map(|l| {
            let roster = roster.clone();
            Supervisor::start(move |_| PeerListener::new(roster, l))
        });
        let (pipeline, sessions) = start_pipeline(pipeline, addr, storage, roster.clone());
        let ready = (
            roster.clone(),
            listener,
            election.clone(),
            sessions,
            pipeline.clone(),
        );
        let _ = ready_tx.send(ready);
        actor
            .with_roster(roster)
            .with_election(election.recipient())
            .with_pipeline(pipeline)
    });
    // The arbiter builds the links; wait for it before handing out the node.
    let (roster, peer_listener, election, sessions, pipeline) =
        ready_rx.await.map_err(|_| NodeError::Stopped)?;
    Ok(Quorum {
        quorum,
        pipeline,
        election,
        sessions,
        roster,
        peer_listener,
    })
}

/// Starts the client ports (plain and, when configured, TLS) under supervisors and the HTTP
/// endpoints on `arbiter`; resolves with the ports' addresses once they run.
async fn start_client_ports(
    arbiter: &Arbiter,
    observed: Observed,
    sockets: Sockets,
) -> Result<Vec<Addr<ClientPort>>, NodeError> {
    let Sockets {
        client,
        secure,
        http,
        ..
    } = sockets;
    let (started_tx, started_rx) = oneshot::channel();
    arbiter.spawn_fn(move || {
        let o = observed.clone();
        let port =
            move |l| ClientPort::new(o.config.clone(), o.server.clone(), l, o.metrics.clone());
        let mut ports = vec![Supervisor::start({
            let port = port.clone();
            move |_| port(client)
        })];
        if let Some((listener, tls)) = secure {
            ports.push(Supervisor::start(move |_| {
                port(listener).secure(tls, SECURE_CONN_IDS)
            }));
        }
        let _ = started_tx.send(ports);
        http.serve(observed);
    });
    started_rx.await.map_err(|_| NodeError::Stopped)
}

impl Node {
    /// Binds the node's ports, recovers its storage (on a blocking thread: a large tree takes
    /// a while, and the caller's thread keeps serving) and starts its actors on an `Arbiter` of
    /// their own. Must be awaited inside a running actix `System`. Errors are returned, never
    /// acted on: nothing here or later stops the host's `System` (see [`Node::subscribe`]).
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let config = config
            .with_persisted_membership()
            .map_err(|e| NodeError::Membership(e.to_string()))?;
        if let Some(files) = &config.zoo_cfg_files {
            files.back_up_static().map_err(|e| {
                NodeError::Membership(format!(
                    "cannot write {}: {e}",
                    files.backup_path().display()
                ))
            })?;
        }
        let config = Arc::new(config);
        let mut sockets = Sockets::bind(&config)?;
        let metrics = Arc::new(ServerMetrics::new(config.client.global_outstanding_limit));
        let events = NodeEvents::default();
        let recovered = {
            let config = config.clone();
            actix_rt::task::spawn_blocking(move || recover_storage(&config))
                .await
                .map_err(|_| NodeError::Stopped)??
        };
        let storage = StorageActor::start(writer_settings(&config), metrics.clone());
        let built = {
            let (config, metrics, events) = (config.clone(), metrics.clone(), events.clone());
            let writer = storage.addr.clone();
            actix_rt::task::spawn_blocking(move || {
                build_actor(&config, recovered, writer, metrics, events)
            })
            .await
            .map_err(|_| NodeError::Stopped)?
        };
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                storage.stop().await;
                return Err(e);
            }
        };
        let arbiter = Arbiter::new();
        let Quorum {
            quorum,
            pipeline,
            election,
            sessions,
            roster,
            peer_listener,
        } = start_quorum(&config, &arbiter, built, sockets.peer.take()).await?;
        let observed = Observed {
            config: config.clone(),
            server: ServerAddrs {
                quorum: quorum.clone(),
                pipeline: pipeline.clone(),
            },
            metrics,
        };
        let client_addr = sockets.client_addr;
        let client_ports = start_client_ports(&arbiter, observed, sockets).await?;
        tracing::info!(
            sid = config.id,
            client = %client_addr,
            servers = config.servers.len(),
            "node started"
        );
        Ok(Node {
            quorum,
            pipeline,
            election,
            sessions,
            roster,
            peer_listener,
            client_ports,
            storage,
            arbiter,
            client_addr,
            events,
        })
    }

    /// Role changes and fatal failures of this node, from now on. After a
    /// [`NodeEvent::Failed`] the node has stopped serving; the host decides what to do (the
    /// `ensemble` binary exits), and [`Node::stop`] releases the storage writer's threads.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The address the client port listens on.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Replicates a tree write; resolves once it committed and was applied on this node.
    pub async fn write(&self, txn: TreeTxn) -> Result<(Zxid, OpResult), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.pipeline
            .send(Submit { txn, reply })
            .await
            .map_err(|_| NodeError::Stopped)?;
        Ok(rx.await.map_err(|_| NodeError::Stopped)??)
    }

    /// The node's status.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.quorum
            .send(GetStatus)
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// A znode's data as this node has applied it.
    pub async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, NodeError> {
        self.pipeline
            .send(ReadData(path.to_string()))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Makes one of the node's supervised actors fail, as a crash would; its supervisor
    /// restarts it under its restart policy. Says why not when the node has no such actor.
    pub fn inject_failure(&self, actor: NodeActor) -> Result<(), String> {
        match actor {
            NodeActor::QuorumPeer => self.quorum.do_send(FailQuorumPeer),
            NodeActor::Pipeline => self.pipeline.do_send(FailPipeline),
            NodeActor::Election => self.election.do_send(FailElection),
            NodeActor::Sessions => self.sessions.do_send(FailSessions),
            NodeActor::Storage => self.storage.addr.do_send(FailStorage),
            NodeActor::ClientPort => self.client_ports.iter().for_each(|p| p.do_send(Fail)),
            NodeActor::PeerListener => match &self.peer_listener {
                Some(l) => l.do_send(Fail),
                None => return Err("a standalone server has no peer listener".into()),
            },
            NodeActor::Link(sid) => match self.roster.link(sid) {
                Some(l) => l.do_send(Fail),
                None => return Err(format!("server {sid} is not a peer of this one")),
            },
        }
        Ok(())
    }

    /// Stops the node: its actors stop, then queued writes reach the disk and the storage
    /// writer stops.
    pub async fn stop(self) {
        self.arbiter.stop();
        self.storage.stop().await;
    }
}
