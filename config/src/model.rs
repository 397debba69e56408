//! The typed node configuration and its validation.

pub use crate::http::{AdminSettings, MetricsSettings};
use crate::{ConfigError, Sid};
use std::collections::HashSet;
use std::path::PathBuf;

/// Whether a server votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRole {
    /// Votes in elections and counts in quorums.
    Participant,
    /// Learns every commit and serves clients, but never votes nor counts in a quorum.
    Observer,
}

/// Where a server serves clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddress {
    /// Host as written; `0.0.0.0` (or `::`) means every interface.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl ClientAddress {
    /// Whether the host is the wildcard address (every interface).
    pub fn is_wildcard(&self) -> bool {
        is_wildcard(&self.host)
    }
}

/// Whether `host` is the unspecified address `0.0.0.0` or `::`.
fn is_wildcard(host: &str) -> bool {
    host.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// Where a server entry's client address came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientSource {
    /// The server line names it (`;[host:]port`), so the membership text carries it.
    #[default]
    ServerLine,
    /// zoo.cfg's `clientPort`/`clientPortAddress`: a setting of this server alone, which (as
    /// in ZooKeeper) the membership text leaves out and zoo.cfg keeps across reconfigs.
    ClientPort,
}

/// Ids of the servers in `servers` that have `role`, in list order.
pub(crate) fn ids_with_role(servers: &[ServerEntry], role: ServerRole) -> Vec<Sid> {
    servers
        .iter()
        .filter(|s| s.role == role)
        .map(|s| s.id)
        .collect()
}

/// `host:port`, with an IPv6 literal in brackets.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One member of the ensemble, as every node's server list names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    /// Server id.
    pub id: Sid,
    /// Host the peer port listens on (`0.0.0.0` on a server's own line binds every interface).
    pub host: String,
    /// Port of the peer link (zoo.cfg's quorum port): election and Zab share it.
    pub peer_port: u16,
    /// zoo.cfg's election port. ensemble multiplexes election on the peer port, so this
    /// port is only checked for clashes.
    pub election_port: Option<u16>,
    /// Voting role.
    pub role: ServerRole,
    /// Where the server serves clients. Always known for this node's own entry; `None` for a
    /// peer whose zoo.cfg line names no client port (only that server knows it).
    pub client: Option<ClientAddress>,
    /// Where `client` came from; it decides whether the membership text names it.
    pub client_source: ClientSource,
}

impl ServerEntry {
    /// `host:peer_port`.
    pub fn peer_addr(&self) -> String {
        join_host_port(&self.host, self.peer_port)
    }

    /// The client address the membership text names (`/zookeeper/config`, the dynamic file,
    /// reconfig results): `client`, unless it came from `clientPort`.
    pub fn listed_client(&self) -> Option<&ClientAddress> {
        match self.client_source {
            ClientSource::ServerLine => self.client.as_ref(),
            ClientSource::ClientPort => None,
        }
    }

    /// The client address as configured (the host may be a wildcard to bind), if known.
    pub fn client_bind_addr(&self) -> Option<String> {
        self.client
            .as_ref()
            .map(|c| join_host_port(&c.host, c.port))
    }

    /// The client address to connect to, if known: a wildcard client host means the server's
    /// own host.
    pub fn client_addr(&self) -> Option<String> {
        self.client.as_ref().map(|c| {
            let host = if c.is_wildcard() { &self.host } else { &c.host };
            join_host_port(host, c.port)
        })
    }
}

/// Client port settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// Most connections one client IP may hold (0 = unlimited).
    pub max_client_cnxns: u32,
    /// Most requests in flight on the whole server before reading from clients pauses
    /// (ZooKeeper's globalOutstandingLimit; 0 = unlimited).
    pub global_outstanding_limit: u32,
    /// Smallest session timeout granted, in ms.
    pub min_session_timeout_ms: u64,
    /// Largest session timeout granted, in ms.
    pub max_session_timeout_ms: u64,
    /// Four-letter words answered; `*` allows all.
    pub four_letter_words: Vec<String>,
    /// How often the leader deletes emptied containers and expired TTL znodes, in ms.
    pub container_check_ms: u64,
    /// Largest znode data and request payload, in bytes (ZooKeeper's jute.maxbuffer).
    pub max_buffer_bytes: u64,
    /// Whether a server cut off from the quorum keeps serving reads to read-only clients
    /// (ZooKeeper's readonlymode.enabled).
    pub read_only_mode: bool,
    /// ZooKeeper's superDigest, `user:base64(sha1(user:password))`: a client that
    /// authenticates with those digest credentials passes every ACL check.
    pub super_digest: Option<String>,
    /// Refuse writes past a quota's hard limit with QuotaExceeded (ZooKeeper's
    /// zookeeper.enforceQuota); soft limits are then logged when passed.
    pub enforce_quota: bool,
    /// Whether the reconfig op is served (ZooKeeper's reconfigEnabled, default false).
    pub reconfig_enabled: bool,
    /// Threads of each client port that serve connections (ZooKeeper's
    /// zookeeper.nio.numSelectorThreads); 0 serves them on the node's own thread, None picks
    /// by the machine's cores ([`ClientSettings::connection_threads_for`]).
    pub connection_threads: Option<u16>,
}

impl ClientSettings {
    /// The SHA-1 the superDigest names (None when unset or malformed; `validate` refuses a
    /// malformed one).
    pub fn super_digest_sha1(&self) -> Option<[u8; 20]> {
        use base64::Engine;
        let (_, hash) = self.super_digest.as_deref()?.split_once(':')?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(hash)
            .ok()?;
        bytes.try_into().ok()
    }

    /// The connection threads on a machine of `cores` cores: as configured, else the cores
    /// left once the node's own thread and its storage writer have one each. On two cores or
    /// fewer, connections share the node's thread: threads beyond the cores only add the
    /// wake-ups of a request's hop between them (measured in docs/benchmarks.md).
    pub fn connection_threads_for(&self, cores: usize) -> usize {
        self.connection_threads
            .map_or(cores.saturating_sub(2), usize::from)
    }

    /// Whether a four-letter word is whitelisted.
    pub fn allows_word(&self, word: &str) -> bool {
        self.four_letter_words.iter().any(|w| w == "*" || w == word)
    }
}

/// Storage settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageSettings {
    /// Where snapshots and the epoch files live.
    pub data_dir: PathBuf,
    /// Where the transaction log lives.
    pub data_log_dir: PathBuf,
    /// Txns between two snapshots: half to all of this many (or of a quarter of the tree's
    /// znodes, when more), drawn at random per server.
    pub snap_count: u64,
    /// Snapshots (with the logs they need) kept by the purge; at least 3.
    pub snap_retain_count: usize,
    /// fsync the log before acknowledging (zoo.cfg forceSync).
    pub fsync: bool,
    /// A log fsync slower than this many ms is logged as a warning and counted
    /// (`fsync_threshold_exceed_count`); zoo.cfg `fsync.warningthresholdms`, 1000 by default.
    pub fsync_warning_ms: u64,
    /// Committed txns the leader keeps in memory to sync followers by DIFF; a follower
    /// further behind gets SNAP (ZooKeeper's commitLogCount).
    pub commit_log_count: usize,
}

/// How servers prove to each other that they belong to the ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAuth {
    /// Every peer connection proves knowledge of the secret in this file, the same file
    /// content on every server.
    SecretFile {
        /// The secret file.
        path: PathBuf,
        /// Create the file with a fresh secret when it is missing: only when every server is
        /// on a loopback address (one machine, so one file serves them all).
        create_if_missing: bool,
    },
    /// No proof: any process that reaches a quorum port is taken for the server it claims
    /// to be (Apache ZooKeeper's default).
    Off,
}

/// The zoo.cfg key that names the peer secret file.
pub const PEER_SECRET_KEY: &str = "ensemble.peerSecretFile";

/// Whether `host` names this machine's loopback interface.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Leader election timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionSettings {
    /// Wait for a better vote after a quorum agrees, in ms.
    pub finalize_wait_ms: u64,
    /// Cap of the doubling notification timeout, in ms.
    pub max_notification_timeout_ms: u64,
}

/// Everything one node needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's id.
    pub id: Sid,
    /// Every member, sorted by id.
    pub servers: Vec<ServerEntry>,
    /// Version of that membership: the zxid of the reconfig that chose it (0: as configured).
    pub config_version: u64,
    /// Length of a tick, in ms.
    pub tick_ms: u64,
    /// Ticks a follower may take to connect and sync to a leader.
    pub init_limit: u32,
    /// Ticks a follower may lag or stay silent before it is dropped.
    pub sync_limit: u32,
    /// Client port settings.
    pub client: ClientSettings,
    /// The secure client port, when configured.
    pub client_tls: Option<crate::ClientTls>,
    /// Storage settings.
    pub storage: StorageSettings,
    /// Election settings.
    pub election: ElectionSettings,
    /// Peer authentication by a shared secret.
    pub peer_auth: PeerAuth,
    /// Mutual TLS on the quorum port, when configured: a trusted certificate also proves
    /// membership.
    pub quorum_tls: Option<crate::QuorumTls>,
    /// Bind this node's peer and election ports on every interface (zoo.cfg
    /// quorumListenOnAllIPs), whatever its own server line says.
    pub quorum_listen_on_all_ips: bool,
    /// ZooKeeper's Prometheus endpoint, when configured.
    pub metrics: Option<MetricsSettings>,
    /// ZooKeeper's AdminServer, when enabled.
    pub admin: Option<AdminSettings>,
    /// A zoo.cfg that leaves admin.enableServer and admin.serverPort unset: Apache ZooKeeper
    /// would serve its AdminServer on 0.0.0.0:8080; ensemble does not, and says so at start.
    pub admin_default_skipped: bool,
    /// Warnings found while loading (unknown keys, even ensemble size).
    pub warnings: Vec<String>,
    /// The zoo.cfg whose dynamic config files follow each committed reconfig, as Apache's
    /// (a node started from a zoo.cfg with reconfigEnabled).
    pub zoo_cfg_files: Option<crate::apache_files::ZooCfgFiles>,
}

impl NodeConfig {
    /// This node's own server entry.
    pub fn me(&self) -> &ServerEntry {
        self.servers
            .iter()
            .find(|s| s.id == self.id)
            .expect("validated config names this node")
    }

    /// Address this node's peer port binds.
    pub fn peer_bind_addr(&self) -> String {
        self.bind_addr(self.me().peer_port)
    }

    /// Address this node's election port binds, if it has one apart from the peer port.
    pub fn election_bind_addr(&self) -> Option<String> {
        let me = self.me();
        me.election_port
            .filter(|p| *p != me.peer_port)
            .map(|p| self.bind_addr(p))
    }

    /// Address this node's client port binds.
    pub fn client_bind_addr(&self) -> String {
        self.me()
            .client_bind_addr()
            .expect("validated config knows this node's client address")
    }

    /// The address the secure client port binds, when TLS is configured.
    pub fn client_tls_bind_addr(&self) -> Option<String> {
        self.client_tls
            .as_ref()
            .map(|t| join_host_port(&t.bind.host, t.bind.port))
    }

    fn bind_addr(&self, port: u16) -> String {
        if self.quorum_listen_on_all_ips {
            join_host_port("0.0.0.0", port)
        } else {
            join_host_port(&self.me().host, port)
        }
    }

    /// Whether this node runs alone (a single-server ensemble).
    pub fn is_standalone(&self) -> bool {
        self.servers.len() == 1
    }

    /// Ids of the voting members.
    pub fn voters(&self) -> Vec<Sid> {
        ids_with_role(&self.servers, ServerRole::Participant)
    }

    /// Ids of the observers.
    pub fn observers(&self) -> Vec<Sid> {
        ids_with_role(&self.servers, ServerRole::Observer)
    }

    /// Whether this node is an observer.
    pub fn is_observer(&self) -> bool {
        self.me().role == ServerRole::Observer
    }

    /// ZooKeeper's rules: observers need voters to follow, and more than one (a single voter
    /// with observers is refused rather than run standalone).
    fn check_observers_have_a_quorum(&self) -> Result<(), ConfigError> {
        if self.observers().is_empty() {
            return Ok(());
        }
        match self.voters().len() {
            0 => Err(ConfigError::invalid(
                "Observers w/o participants is an invalid configuration",
            )),
            1 => Err(ConfigError::invalid(
                "Observers w/o quorum is an invalid configuration",
            )),
            _ => Ok(()),
        }
    }

    /// Checks ranges and consistency; the error names the first problem.
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::invalid("no servers are configured"));
        }
        self.servers.sort_by_key(|s| s.id);
        let mut ids = HashSet::new();
        let mut addrs = HashSet::new();
        for s in &self.servers {
            if !(1..=254).contains(&s.id) {
                return Err(ConfigError::invalid(format!(
                    "server id {} is outside 1..=254 (session ids carry the id in one byte, \
                     and 255 marks TTL znodes)",
                    s.id
                )));
            }
            if !ids.insert(s.id) {
                return Err(ConfigError::invalid(format!(
                    "server id {} is listed twice",
                    s.id
                )));
            }
            let mut own: Vec<String> = vec![s.peer_addr()];
            own.extend(s.election_port.map(|e| join_host_port(&s.host, e)));
            own.extend(s.client_addr());
            for a in own {
                if !addrs.insert(a.clone()) {
                    return Err(ConfigError::invalid(format!(
                        "address {a} is used twice (server {})",
                        s.id
                    )));
                }
            }
        }
        self.check_observers_have_a_quorum()?;
        if !ids.contains(&self.id) {
            let known: Vec<String> = self.servers.iter().map(|s| s.id.to_string()).collect();
            return Err(ConfigError::invalid(format!(
                "myid {} matches no server entry (servers: {})",
                self.id,
                known.join(", ")
            )));
        }
        if let (Some(d), None) = (&self.client.super_digest, self.client.super_digest_sha1()) {
            return Err(ConfigError::invalid(format!(
                "superDigest {d:?} is not user:base64(sha1(user:password))"
            )));
        }
        if self.me().client.is_none() {
            return Err(ConfigError::invalid(format!(
                "server {} has no client port: set clientPort, or name it on its server line",
                self.id
            )));
        }
        range("tickTime", self.tick_ms, 10, 60_000)?;
        range(
            "jute.maxbuffer",
            self.client.max_buffer_bytes,
            1024,
            256 * 1024 * 1024,
        )?;
        range("initLimit", u64::from(self.init_limit), 1, 1_000)?;
        range("syncLimit", u64::from(self.sync_limit), 1, 1_000)?;
        range("snapCount", self.storage.snap_count, 2, 100_000_000)?;
        range(
            "fsync.warningthresholdms",
            self.storage.fsync_warning_ms,
            1,
            3_600_000,
        )?;
        range(
            "snapRetainCount",
            self.storage.snap_retain_count as u64,
            3,
            10_000,
        )?;
        range(
            "commitLogCount",
            self.storage.commit_log_count as u64,
            1,
            10_000_000,
        )?;
        range(
            "finalize_wait_ms",
            self.election.finalize_wait_ms,
            0,
            60_000,
        )?;
        range(
            "max_notification_timeout_ms",
            self.election.max_notification_timeout_ms,
            200,
            600_000,
        )?;
        if let Some(n) = self.client.connection_threads {
            range(
                "nio.numSelectorThreads",
                u64::from(n),
                0,
                MAX_CONNECTION_THREADS,
            )?;
        }
        let c = &self.client;
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            return Err(ConfigError::invalid(format!(
                "minSessionTimeout {} is above maxSessionTimeout {}",
                c.min_session_timeout_ms, c.max_session_timeout_ms
            )));
        }
        if self.peer_auth == PeerAuth::Off && self.quorum_tls.is_none() && self.servers.len() > 1 {
            self.warnings.push(format!(
                "PEER AUTHENTICATION IS OFF: any process that can reach a quorum port can join \
                 this ensemble and write anything, whatever the ACLs say. Put the same secret \
                 (at least 16 bytes) in a file on every server and name it with \
                 {PEER_SECRET_KEY}=PATH in zoo.cfg ([peer] secret_file in native TOML), or run \
                 the quorum over mutual TLS with sslQuorum=true and ssl.quorum.keyStore.location/\
                 ssl.quorum.trustStore.location ([peer.tls] in native TOML)"
            ));
        }
        let voters = self.voters().len();
        if voters > 1 && voters.is_multiple_of(2) {
            self.warnings.push(format!(
                "{voters} voting servers tolerate no more failures than {}: use an odd size",
                voters - 1
            ));
        }
        Ok(self)
    }
}

/// Most connection threads a client port may be given.
const MAX_CONNECTION_THREADS: u64 = 256;

fn range(name: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(format!(
            "{name}={value} is out of range [{min}, {max}]"
        )));
    }
    Ok(())
}
