//! Native TOML configuration, loaded through the `config` crate with env overrides.

use crate::model::{
    is_loopback, AdminSettings, ClientAddress, ClientSettings, ClientSource, ElectionSettings,
    MetricsSettings, NodeConfig, PeerAuth, ServerEntry, ServerRole, StorageSettings,
};
use crate::{ConfigError, PeerTlsSection, Sid, TlsSection};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded default: 3 servers on loopback, used by `ensemble up` without `--config`.
pub const DEFAULT_TOML: &str = include_str!("../examples/local-3.toml");

/// The TOML file as written, before validation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleFile {
    /// Timing of the quorum.
    #[serde(default)]
    pub ensemble: EnsembleSection,
    /// Client port settings.
    #[serde(default)]
    pub client: ClientSection,
    /// Storage settings.
    #[serde(default)]
    pub storage: StorageSection,
    /// Election settings.
    #[serde(default)]
    pub election: ElectionSection,
    /// Peer authentication.
    #[serde(default)]
    pub peer: PeerSection,
    /// ZooKeeper's Prometheus endpoint (zoo.cfg metricsProvider.*).
    #[serde(default)]
    pub metrics: MetricsSection,
    /// ZooKeeper's AdminServer (zoo.cfg admin.*).
    #[serde(default)]
    pub admin: AdminSection,
    /// Logging of the processes that read this file (`ensemble node`, `ensemble up`).
    #[serde(default)]
    pub log: LogSection,
    /// The members.
    #[serde(default)]
    pub servers: Vec<ServerSection>,
    /// Settings of the Spark-style masters and workers below.
    #[serde(default)]
    pub spark: SparkSection,
    /// Spark-style masters that `ensemble up` launches beside the servers.
    #[serde(default)]
    pub masters: Vec<MasterSection>,
    /// Spark-style workers that `ensemble up` launches.
    #[serde(default)]
    pub workers: Vec<WorkerSection>,
}

/// `[spark]`: Spark properties of the masters and workers `ensemble up` launches.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparkSection {
    /// spark.worker.timeout, e.g. `10s`.
    pub worker_timeout: String,
    /// spark.deploy.recoveryTimeout; empty means the worker timeout.
    pub recovery_timeout: String,
    /// spark.deploy.zookeeper.dir.
    pub zookeeper_dir: String,
    /// spark.deploy.zookeeper.sessionTimeout (an ensemble addition).
    pub session_timeout: String,
    /// spark.deploy.zookeeper.masterAuth (an ensemble addition): the masters' digest
    /// credential `user:password`; empty: `ensemble up` makes a random one for each run.
    pub master_auth: String,
}

impl Default for SparkSection {
    fn default() -> Self {
        SparkSection {
            worker_timeout: "10s".into(),
            recovery_timeout: String::new(),
            zookeeper_dir: "/spark".into(),
            session_timeout: "3s".into(),
            master_auth: String::new(),
        }
    }
}

impl SparkSection {
    /// The Spark properties file of masters and workers that elect through `servers`
    /// (`host:port,...`).
    pub fn properties(&self, servers: &str) -> String {
        let mut out = format!(
            "spark.deploy.recoveryMode ZOOKEEPER\nspark.deploy.zookeeper.url {servers}\n\
             spark.deploy.zookeeper.dir {}\nspark.deploy.zookeeper.sessionTimeout {}\n\
             spark.worker.timeout {}\n",
            self.zookeeper_dir, self.session_timeout, self.worker_timeout
        );
        if !self.recovery_timeout.is_empty() {
            out.push_str(&format!(
                "spark.deploy.recoveryTimeout {}\n",
                self.recovery_timeout
            ));
        }
        if !self.master_auth.is_empty() {
            out.push_str(&format!(
                "spark.deploy.zookeeper.masterAuth {}\n",
                self.master_auth
            ));
        }
        out
    }
}

/// `[log]`: what `ensemble node` and `ensemble up` log and where (zoo.cfg has no equivalent:
/// Apache ZooKeeper configures logging in logback.xml). Command-line flags win over it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Filter, as `RUST_LOG` (e.g. `info,ensemble_actors::zab=debug`); empty means unset.
    pub level: String,
    /// `text` or `json`; empty means text.
    pub format: String,
    /// Directory of rotated log files (`server-<id>.log`, `up.log`); unset means stderr.
    pub dir: Option<PathBuf>,
    /// `daily`, `hourly` or `never`; empty means daily.
    pub rotation: String,
    /// Rotated files kept, the current one included; 0 means the default.
    pub max_files: usize,
}

/// One `[[masters]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSection {
    /// Address it binds and advertises.
    pub host: String,
    /// Port workers connect to.
    pub port: u16,
    /// Web UI port.
    pub webui_port: u16,
}

/// One `[[workers]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Address its web UI binds to and it advertises.
    pub host: String,
    /// Cores it offers.
    pub cores: u32,
    /// Memory it offers, e.g. `512m`.
    pub memory: String,
    /// Web UI port.
    pub webui_port: u16,
    /// Work directory; default `<storage.data_dir>/worker-<webui_port>`.
    pub work_dir: Option<PathBuf>,
}

/// `[ensemble]`: tick length and limits, as zoo.cfg's tickTime, initLimit, syncLimit.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleSection {
    /// Tick length in ms.
    pub tick_ms: u64,
    /// initLimit in ticks.
    pub init_limit: u32,
    /// syncLimit in ticks.
    pub sync_limit: u32,
}

impl Default for EnsembleSection {
    fn default() -> Self {
        EnsembleSection {
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
        }
    }
}

/// `[client]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSection {
    /// Connections per client IP, 0 = unlimited.
    pub max_client_cnxns: u32,
    /// Requests in flight server-wide before reading from clients pauses, 0 = unlimited.
    pub global_outstanding_limit: u32,
    /// Smallest session timeout in ms; 0 means 2 ticks.
    pub min_session_timeout_ms: u64,
    /// Largest session timeout in ms; 0 means 20 ticks.
    pub max_session_timeout_ms: u64,
    /// Whitelisted four-letter words; `*` for all.
    pub four_letter_words: Vec<String>,
    /// How often the leader deletes emptied containers and expired TTL znodes, in ms.
    pub container_check_ms: u64,
    /// Largest znode data and request payload in bytes (jute.maxbuffer).
    pub max_buffer_bytes: u64,
    /// Serve reads to read-only clients while cut off from the quorum.
    pub read_only_mode: bool,
    /// ZooKeeper's superDigest, `user:base64(sha1(user:password))`.
    pub super_digest: Option<String>,
    /// Refuse writes past a quota's hard limit (zookeeper.enforceQuota).
    pub enforce_quota: bool,
    /// Serve the reconfig op (ZooKeeper's reconfigEnabled); the membership a reconfig
    /// commits is kept in `ensemble.dynamic` in the server's data dir and wins over
    /// `[[servers]]` at start.
    pub reconfig_enabled: bool,
    /// Threads serving client connections (zookeeper.nio.numSelectorThreads); 0 serves them
    /// on the node's own thread; unset picks by the machine's cores.
    pub connection_threads: Option<u16>,
    /// `[client.tls]`: the secure client port.
    pub tls: TlsSection,
}

impl Default for ClientSection {
    fn default() -> Self {
        ClientSection {
            max_client_cnxns: 60,
            global_outstanding_limit: 1000,
            min_session_timeout_ms: 0,
            max_session_timeout_ms: 0,
            four_letter_words: vec!["srvr".into()],
            container_check_ms: 60_000,
            max_buffer_bytes: 0xfffff,
            read_only_mode: false,
            super_digest: None,
            enforce_quota: false,
            reconfig_enabled: false,
            connection_threads: None,
            tls: TlsSection::default(),
        }
    }
}

/// `[storage]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Parent of each server's `server-<id>` directory.
    pub data_dir: PathBuf,
    /// Txns between snapshots: each snapshot follows half to all of this many, drawn at random
    /// per server (as ZooKeeper's snapCount), or of a quarter of the tree's znodes when more.
    pub snap_count: u64,
    /// Snapshots kept by the purge.
    pub snap_retain_count: usize,
    /// fsync before acknowledging.
    pub fsync: bool,
    /// A log fsync slower than this many ms is logged as a warning and counted.
    pub fsync_warning_threshold_ms: u64,
    /// Committed txns kept in memory for DIFF sync.
    pub commit_log_count: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("ensemble-data"),
            snap_count: 100_000,
            snap_retain_count: 3,
            fsync: true,
            fsync_warning_threshold_ms: 1000,
            commit_log_count: 500,
        }
    }
}

/// `[election]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElectionSection {
    /// finalizeWait in ms.
    pub finalize_wait_ms: u64,
    /// Notification timeout cap in ms.
    pub max_notification_timeout_ms: u64,
}

impl Default for ElectionSection {
    fn default() -> Self {
        ElectionSection {
            finalize_wait_ms: 200,
            max_notification_timeout_ms: 60_000,
        }
    }
}

/// `[peer]`: how servers prove to each other that they belong to the ensemble.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerSection {
    /// Peer authentication; on unless set to false.
    pub authenticate: bool,
    /// The shared secret file; default `<storage.data_dir>/peer.secret`, created when missing
    /// if every server is on loopback.
    pub secret_file: Option<PathBuf>,
    /// `[peer.tls]`: mutual TLS between servers.
    pub tls: PeerTlsSection,
}

impl Default for PeerSection {
    fn default() -> Self {
        PeerSection {
            authenticate: true,
            secret_file: None,
            tls: PeerTlsSection::default(),
        }
    }
}

/// `[metrics]`: `/metrics` in Prometheus format on every server, off unless enabled.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Address to bind; empty means each server's own host.
    pub host: String,
    /// Port, unless a server's `metrics_port` says otherwise.
    pub port: u16,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: false,
            host: String::new(),
            port: 7000,
        }
    }
}

/// `[admin]`: the AdminServer's HTTP commands on every server, off unless enabled.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Serve the commands.
    pub enabled: bool,
    /// Address to bind; empty means each server's own host.
    pub address: String,
    /// Port, unless a server's `admin_port` says otherwise.
    pub port: u16,
    /// Path of the command list; each command is under it.
    pub command_url: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            enabled: false,
            address: String::new(),
            port: 8080,
            command_url: "/commands".into(),
        }
    }
}

/// One `[[servers]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Server id.
    pub id: Sid,
    /// Host of its peer and client ports.
    pub host: String,
    /// Peer link port.
    pub peer_port: u16,
    /// Client port.
    pub client_port: u16,
    /// Own data directory; default `<storage.data_dir>/server-<id>`.
    pub data_dir: Option<PathBuf>,
    /// Own `/metrics` port (servers sharing a host need their own); default `[metrics] port`.
    pub metrics_port: Option<u16>,
    /// Own AdminServer port; default `[admin] port`.
    pub admin_port: Option<u16>,
    /// `participant` (the default) or `observer`.
    #[serde(default)]
    pub role: NativeRole,
}

/// A server's role in native TOML.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NativeRole {
    /// Votes and counts in quorums.
    #[default]
    Participant,
    /// Learns every commit and serves clients without voting.
    Observer,
}

impl From<NativeRole> for ServerRole {
    fn from(role: NativeRole) -> Self {
        match role {
            NativeRole::Participant => ServerRole::Participant,
            NativeRole::Observer => ServerRole::Observer,
        }
    }
}

/// Loads `path`, applies `ENSEMBLE__SECTION__KEY` overrides, and validates for node `id`.
pub fn load_toml(path: &Path, id: Sid) -> Result<NodeConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_toml_str(&text, id)
}

/// Like [`load_toml`], from TOML text.
pub fn load_toml_str(text: &str, id: Sid) -> Result<NodeConfig, ConfigError> {
    parse_toml(text)?.into_node_config(id)
}

/// Parses TOML text with `ENSEMBLE__SECTION__KEY` overrides, before choosing a server.
pub fn parse_toml(text: &str) -> Result<EnsembleFile, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("ENSEMBLE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Parse(format!("config: {e}")))
}

impl EnsembleFile {
    /// Resolves the file into node `id`'s validated config.
    pub fn into_node_config(self, id: Sid) -> Result<NodeConfig, ConfigError> {
        let tick = self.ensemble.tick_ms;
        let servers = self
            .servers
            .iter()
            .map(|s| ServerEntry {
                id: s.id,
                host: s.host.clone(),
                peer_port: s.peer_port,
                election_port: None,
                role: s.role.into(),
                client: Some(ClientAddress {
                    host: s.host.clone(),
                    port: s.client_port,
                }),
                client_source: ClientSource::ServerLine,
            })
            .collect();
        let data_dir = self
            .servers
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.data_dir.clone())
            .unwrap_or_else(|| self.storage.data_dir.join(format!("server-{id}")));
        let peer_auth = self.peer_auth();
        let (metrics, admin) = self.http_endpoints(id);
        let own_host = self
            .servers
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.host.clone());
        let client_tls = self
            .client
            .tls
            .resolve(own_host.as_deref().unwrap_or_default())?;
        let quorum_tls = self.peer.tls.resolve()?;
        NodeConfig {
            id,
            servers,
            config_version: 0,
            tick_ms: tick,
            init_limit: self.ensemble.init_limit,
            sync_limit: self.ensemble.sync_limit,
            client: ClientSettings {
                max_client_cnxns: self.client.max_client_cnxns,
                global_outstanding_limit: self.client.global_outstanding_limit,
                min_session_timeout_ms: nonzero_or(self.client.min_session_timeout_ms, 2 * tick),
                max_session_timeout_ms: nonzero_or(self.client.max_session_timeout_ms, 20 * tick),
                four_letter_words: self.client.four_letter_words,
                container_check_ms: self.client.container_check_ms,
                max_buffer_bytes: self.client.max_buffer_bytes,
                read_only_mode: self.client.read_only_mode,
                enforce_quota: self.client.enforce_quota,
                super_digest: self.client.super_digest,
                reconfig_enabled: self.client.reconfig_enabled,
                connection_threads: self.client.connection_threads,
            },
            client_tls,
            storage: StorageSettings {
                data_log_dir: data_dir.clone(),
                data_dir,
                snap_count: self.storage.snap_count,
                snap_retain_count: self.storage.snap_retain_count,
                fsync: self.storage.fsync,
                fsync_warning_ms: self.storage.fsync_warning_threshold_ms,
                commit_log_count: self.storage.commit_log_count,
            },
            election: ElectionSettings {
                finalize_wait_ms: self.election.finalize_wait_ms,
                max_notification_timeout_ms: self.election.max_notification_timeout_ms,
            },
            peer_auth,
            quorum_tls,
            quorum_listen_on_all_ips: false,
            metrics,
            admin,
            admin_default_skipped: false,
            zoo_cfg_files: None,
            warnings: Vec::new(),
        }
        .validate()
    }

    /// Server `id`'s metrics and AdminServer endpoints, when enabled.
    fn http_endpoints(&self, id: Sid) -> (Option<MetricsSettings>, Option<AdminSettings>) {
        let Some(me) = self.servers.iter().find(|s| s.id == id) else {
            return (None, None);
        };
        let or_host = |h: &str| {
            if h.is_empty() {
                me.host.clone()
            } else {
                h.to_string()
            }
        };
        let metrics = self.metrics.enabled.then(|| MetricsSettings {
            host: or_host(&self.metrics.host),
            port: me.metrics_port.unwrap_or(self.metrics.port),
        });
        let admin = self.admin.enabled.then(|| AdminSettings {
            address: or_host(&self.admin.address),
            port: me.admin_port.unwrap_or(self.admin.port),
            command_url: self.admin.command_url.clone(),
        });
        (metrics, admin)
    }

    fn peer_auth(&self) -> PeerAuth {
        if !self.peer.authenticate {
            return PeerAuth::Off;
        }
        let path = self
            .peer
            .secret_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("peer.secret"));
        PeerAuth::SecretFile {
            path,
            create_if_missing: self.servers.iter().all(|s| is_loopback(&s.host)),
        }
    }
}

fn nonzero_or(value: u64, default: u64) -> u64 {
    if value == 0 {
        default
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_loads_for_each_server() {
        for id in 1..=3 {
            let c = load_toml_str(DEFAULT_TOML, id).unwrap();
            assert_eq!(c.id, id);
            assert_eq!(c.servers.len(), 3);
            assert_eq!(
                c.storage.data_dir,
                PathBuf::from(format!("ensemble-data/server-{id}"))
            );
            assert_eq!(c.client.min_session_timeout_ms, 1000);
            assert!(c.warnings.is_empty());
            assert_eq!(
                c.peer_auth,
                PeerAuth::SecretFile {
                    path: PathBuf::from("ensemble-data/peer.secret"),
                    create_if_missing: true
                },
                "peer authentication is on by default"
            );
        }
        let file = parse_toml(DEFAULT_TOML).unwrap();
        assert_eq!(
            (file.masters.len(), file.workers.len()),
            (3, 2),
            "the seed topology"
        );
        let props = file.spark.properties("127.0.0.1:2181");
        let props = crate::spark::parse_properties(&props).unwrap();
        let master = crate::spark::MasterConfig::from_properties(&props).unwrap();
        assert_eq!(
            master.timing.worker_timeout,
            std::time::Duration::from_secs(10)
        );
    }

    #[test]
    fn servers_may_be_observers() {
        let observers = format!(
            "{DEFAULT_TOML}\n[[servers]]\nid = 4\nhost = \"127.0.0.1\"\npeer_port = 2891\n\
             client_port = 2184\nrole = \"observer\"\n"
        );
        let c = load_toml_str(&observers, 4).unwrap();
        assert!(c.is_observer());
        assert_eq!((c.voters(), c.observers()), (vec![1, 2, 3], vec![4]));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let bad = observers.replace("\"observer\"", "\"spectator\"");
        let e = load_toml_str(&bad, 1).unwrap_err().to_string();
        assert!(e.contains("spectator"), "{e}");
    }

    #[test]
    fn unknown_id_and_unknown_key_are_clear_errors() {
        let e = load_toml_str(DEFAULT_TOML, 9).unwrap_err().to_string();
        assert_eq!(e, "myid 9 matches no server entry (servers: 1, 2, 3)");
        let e = load_toml_str("[ensemble]\ntick = 5\n", 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tick`"), "{e}");
    }

    #[test]
    fn peer_authentication_is_on_by_default_and_off_only_when_asked() {
        let remote = DEFAULT_TOML.replace("127.0.0.1", "10.0.0.1");
        let c = load_toml_str(&remote, 1).unwrap();
        assert!(matches!(
            c.peer_auth,
            PeerAuth::SecretFile {
                create_if_missing: false,
                ..
            }
        ));
        let off = format!("{DEFAULT_TOML}\n[peer]\nauthenticate = false\n");
        let c = load_toml_str(&off, 1).unwrap();
        assert_eq!(c.peer_auth, PeerAuth::Off);
        assert!(
            c.warnings[0].contains("[peer] secret_file"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn peer_tls_section() {
        let text = format!(
            "{DEFAULT_TOML}\n[peer.tls]\nkey_store = \"/k/q.pem\"\n\
             key_store_password = \"pw\"\ntrust_store = \"/k/ca.pem\"\n\
             hostname_verification = false\n"
        );
        let c = load_toml_str(&text, 2).unwrap();
        let q = c.quorum_tls.as_ref().unwrap();
        assert_eq!(q.key_store.password, "pw");
        assert_eq!(q.trust_store.kind, crate::StoreKind::Pem);
        assert_eq!(q.protocols, ["TLSv1.3", "TLSv1.2"]);
        assert!(!q.hostname_verification);
        assert_eq!(load_toml_str(DEFAULT_TOML, 1).unwrap().quorum_tls, None);
        let e = load_toml_str(&text.replace("trust_store = \"/k/ca.pem\"\n", ""), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("trust_store is not"), "{e}");
    }

    #[test]
    fn client_tls_section() {
        let text = format!(
            "{DEFAULT_TOML}\n[client.tls]\nport = 2281\nkey_store = \"/k/s.p12\"\n\
             key_store_password = \"pw\"\nclient_auth = \"none\"\nsuper_user = \"CN=a\"\n"
        );
        let c = load_toml_str(&text, 2).unwrap();
        let tls = c.client_tls.as_ref().unwrap();
        assert_eq!(
            c.client_tls_bind_addr(),
            Some(format!("{}:2281", c.me().host))
        );
        assert_eq!(tls.key_store.kind, crate::StoreKind::Pkcs12);
        assert_eq!(tls.client_auth, crate::ClientAuth::None);
        assert_eq!(tls.super_user.as_deref(), Some("CN=a"));
        assert_eq!(load_toml_str(DEFAULT_TOML, 1).unwrap().client_tls, None);
        let bad = text.replace("\"none\"", "\"maybe\"");
        assert!(load_toml_str(&bad, 1).is_err());
    }

    #[test]
    fn super_digest_is_read_and_checked() {
        let with = |d: &str| {
            DEFAULT_TOML.replace("[client]\n", &format!("[client]\nsuper_digest = \"{d}\"\n"))
        };
        let c = load_toml_str(&with("super:5ZIErkhbrC1ytr/v6D+dXQw7elQ="), 1).unwrap();
        assert_eq!(c.client.super_digest_sha1().map(|h| h[0]), Some(0xe5));
        let e = load_toml_str(&with("super:short"), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not user:base64(sha1(user:password))"), "{e}");
        assert_eq!(
            load_toml_str(DEFAULT_TOML, 1).unwrap().client.super_digest,
            None
        );
    }

    #[test]
    fn metrics_and_admin_are_off_by_default_and_per_server_when_on() {
        let c = load_toml_str(DEFAULT_TOML, 1).unwrap();
        assert_eq!((c.metrics, c.admin), (None, None));
        let on = DEFAULT_TOML.replace(
            "client_port = 2182\n",
            "client_port = 2182\nmetrics_port = 7002\nadmin_port = 8182\n",
        )
            + "\n[metrics]\nenabled = true\n[admin]\nenabled = true\ncommand_url = \"/cmd\"\n";
        let one = load_toml_str(&on, 1).unwrap();
        assert_eq!(one.metrics.unwrap().bind_addr(), "127.0.0.1:7000");
        assert_eq!(one.admin.unwrap().bind_addr(), "127.0.0.1:8080");
        let two = load_toml_str(&on, 2).unwrap();
        assert_eq!(two.metrics.unwrap().bind_addr(), "127.0.0.1:7002");
        let admin = two.admin.unwrap();
        assert_eq!((admin.port, admin.command_url.as_str()), (8182, "/cmd"));
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        assert!(DEFAULT_TOML.contains("sync_limit = 5"));
        let text = DEFAULT_TOML.replace("sync_limit = 5", "sync_limit = 0");
        let e = load_toml_str(&text, 1).unwrap_err().to_string();
        assert_eq!(e, "syncLimit=0 is out of range [1, 1000]");
        let c = load_toml_str(DEFAULT_TOML, 1).unwrap();
        assert_eq!(c.storage.fsync_warning_ms, 1000);
        let text = DEFAULT_TOML.replace(
            "fsync_warning_threshold_ms = 1000",
            "fsync_warning_threshold_ms = 0",
        );
        let e = load_toml_str(&text, 1).unwrap_err().to_string();
        assert_eq!(e, "fsync.warningthresholdms=0 is out of range [1, 3600000]");
    }

    #[test]
    fn connection_threads_are_picked_by_cores_unless_set() {
        let auto = load_toml_str(DEFAULT_TOML, 1).unwrap().client;
        assert_eq!(auto.connection_threads, None);
        let picked: Vec<usize> = [1, 2, 3, 8]
            .into_iter()
            .map(|cores| auto.connection_threads_for(cores))
            .collect();
        assert_eq!(picked, [0, 0, 1, 6]);
        let set = |n: &str| {
            let text = DEFAULT_TOML.replace(
                "[client]\n",
                &format!("[client]\nconnection_threads = {n}\n"),
            );
            load_toml_str(&text, 1)
        };
        let four = set("4").unwrap().client;
        assert_eq!(
            (
                four.connection_threads_for(2),
                four.connection_threads_for(64)
            ),
            (4, 4)
        );
        assert_eq!(set("0").unwrap().client.connection_threads_for(8), 0);
        let e = set("300").unwrap_err().to_string();
        assert_eq!(e, "nio.numSelectorThreads=300 is out of range [0, 256]");
    }
}
