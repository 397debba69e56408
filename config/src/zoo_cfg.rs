//! Apache ZooKeeper's `zoo.cfg` plus `dataDir/myid`, read with ZooKeeper 3.8's meaning
//! (QuorumPeerConfig): Java properties syntax, `server.N` lines with or without a client
//! port, `dynamicConfigFile`, standalone mode without `myid`, and keys written as Java
//! system properties with or without their `zookeeper.` prefix.

use crate::apache_files::ZooCfgFiles;
use crate::model::{
    ClientAddress, ClientSettings, ClientSource, ElectionSettings, NodeConfig, PeerAuth,
    ServerEntry, ServerRole, StorageSettings, PEER_SECRET_KEY,
};
use crate::tls::{protocols_for, split_list, ClientAuth, ClientTls, QuorumTls, Store};
use crate::{AdminSettings, ConfigError, MetricsSettings, Sid, PROMETHEUS_PROVIDER};
use std::collections::{BTreeMap, BTreeSet};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

/// Keys ZooKeeper knows that ensemble does not act on yet, each with the value (if any) that
/// matches what ensemble does anyway; a name ending in `.` covers a family of keys. A key
/// present with another value is named in a warning at start.
const NOT_IMPLEMENTED: &[(&str, Option<&str>)] = &[
    ("admin.", None),
    ("audit.enable", Some("false")),
    ("authProvider.", None),
    ("autopurge.purgeInterval", None),
    ("clientPortListenBacklog", None),
    ("connectToLearnerMasterLimit", None),
    ("digest.enabled", None),
    ("extendedTypesEnabled", Some("true")),
    ("jvm.pause.", None),
    ("localSessionsEnabled", Some("false")),
    ("localSessionsUpgradingEnabled", Some("false")),
    ("maxCnxns", None),
    ("metricsProvider.", None),
    ("multiAddress.enabled", Some("false")),
    ("multiAddress.", None),
    ("observerMasterPort", None),
    ("oraclePath", None),
    ("portUnification", Some("false")),
    ("ssl.crl", Some("false")),
    ("ssl.ocsp", Some("false")),
    ("ssl.quorum.crl", Some("false")),
    ("ssl.quorum.ocsp", Some("false")),
    ("preAllocSize", None),
    ("quorum.auth.enableSasl", Some("false")),
    ("quorum.auth.", None),
    ("quorum.cnxn.threads.size", None),
    ("serverCnxnFactory", None),
    ("skipACL", Some("no")),
    ("snapSizeLimitInKb", None),
    ("ssl.", None),
    ("sslQuorumReloadCertFiles", Some("false")),
    ("syncEnabled", Some("true")),
    ("txnLogSizeLimitInKb", None),
];

/// Reads `path`, the files it names (`dataDir/myid`, `dynamicConfigFile`) into a validated
/// config.
pub fn load_zoo_cfg(path: &Path) -> Result<NodeConfig, ConfigError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let text = read(path)?;
    let mut config = parse_zoo_cfg(&text, read)?;
    if config.client.reconfig_enabled {
        let dynamic = java_properties(&text)
            .iter()
            .any(|(k, _)| canonical(k) == "dynamicConfigFile");
        config.zoo_cfg_files = Some(ZooCfgFiles {
            zoo_cfg: path.to_path_buf(),
            servers_in_static: !dynamic && config.servers.len() > 1,
        });
    }
    Ok(config)
}

/// Parses zoo.cfg text; `read` returns the content of a file it names (`<dataDir>/myid`,
/// `dynamicConfigFile`).
pub fn parse_zoo_cfg(
    text: &str,
    read: impl Fn(&Path) -> Result<String, ConfigError>,
) -> Result<NodeConfig, ConfigError> {
    let mut props = Props::parse(text);
    let lines = server_lines(&mut props, &read)?;
    let mut warnings = Vec::new();
    let tick_ms = props.num("tickTime", 3000)?;
    let data_dir = PathBuf::from(
        props
            .take("dataDir")
            .ok_or_else(|| ConfigError::invalid("zoo.cfg: dataDir is required"))?,
    );
    let data_log_dir = props
        .take("dataLogDir")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.clone());
    let static_client = static_client_address(&mut props)?;
    let standalone_enabled = props.boolean("standaloneEnabled", true)?;
    let peer_type = check_election_alg_and_peer_type(&mut props)?;
    let quorum_listen_on_all_ips = props.boolean("quorumListenOnAllIPs", false)?;
    let config_version = lines.version;
    let lines = lines.servers;
    let participants = lines.len();
    if participants == 0 && !standalone_enabled {
        return Err(ConfigError::invalid(
            "zoo.cfg: standaloneEnabled=false needs at least one server.N line",
        ));
    }
    if participants == 1 && !standalone_enabled {
        warnings.push(
            "zoo.cfg: standaloneEnabled=false with one server: it runs alone and reports mode \
             standalone (ZooKeeper reports leader)"
                .to_string(),
        );
    }
    let myid = read_myid(&data_dir, &read, participants > 1)?;
    let (id, mut servers) = match lines.as_slice() {
        [] => {
            let id = myid.unwrap_or(1);
            (id, vec![standalone_entry(id)])
        }
        // ZooKeeper runs a single server line standalone, whatever myid says.
        [only] => (only.id, lines.clone()),
        _ => {
            let id = myid.ok_or_else(|| ConfigError::invalid("zoo.cfg: myid file is missing"))?;
            (id, lines)
        }
    };
    if let Some(me) = servers.iter_mut().find(|s| s.id == id) {
        if me.client.is_none() && static_client.is_some() {
            me.client_source = ClientSource::ClientPort;
        }
        me.client = own_client_address(id, me.client.take(), static_client)?;
        warnings.extend(peer_type_warning(peer_type, me));
    }
    let metrics = metrics_settings(&mut props, &mut warnings)?;
    let client_tls = client_tls(&mut props, &read)?;
    let quorum_tls = quorum_tls(&mut props, &read)?;
    let (admin, admin_default_skipped) = admin_settings(&mut props)?;
    let mut snap_retain_count = props.num("autopurge.snapRetainCount", 3)?;
    if snap_retain_count < 3 {
        warnings.push(format!(
            "zoo.cfg: autopurge.snapRetainCount={snap_retain_count} is below 3; 3 is used"
        ));
        snap_retain_count = 3;
    }
    let config = NodeConfig {
        id,
        servers,
        config_version,
        tick_ms,
        init_limit: props.num("initLimit", 10)?,
        sync_limit: props.num("syncLimit", 5)?,
        client: client_settings(&mut props, tick_ms)?,
        client_tls,
        storage: StorageSettings {
            data_dir,
            data_log_dir,
            snap_count: props.num("snapCount", 100_000)?,
            snap_retain_count,
            fsync: props.take("forceSync").is_none_or(|v| v != "no"),
            fsync_warning_ms: props.num("fsync.warningthresholdms", 1000)?,
            commit_log_count: props.num("commitLogCount", 500)?,
        },
        election: ElectionSettings {
            finalize_wait_ms: 200,
            max_notification_timeout_ms: 60_000,
        },
        quorum_listen_on_all_ips,
        peer_auth: match props.take(PEER_SECRET_KEY) {
            Some(path) => PeerAuth::SecretFile {
                path: path.into(),
                create_if_missing: false,
            },
            None => PeerAuth::Off,
        },
        quorum_tls,
        metrics,
        admin,
        admin_default_skipped,
        zoo_cfg_files: None,
        warnings: Vec::new(),
    };
    let mut config = config.validate()?;
    warnings.extend(props.leftover_warnings());
    warnings.append(&mut config.warnings);
    config.warnings = warnings;
    Ok(config)
}

/// The entry of a config without server lines: this node is the whole ensemble.
/// ZooKeeper's Prometheus provider when metricsProvider.className names it; any other
/// provider is not implemented and named in a warning.
fn metrics_settings(
    props: &mut Props,
    warnings: &mut Vec<String>,
) -> Result<Option<MetricsSettings>, ConfigError> {
    let class = props.take("metricsProvider.className");
    let host = props.take("metricsProvider.httpHost");
    let port = props.take("metricsProvider.httpPort");
    // There is no JVM to describe; the key is accepted for compatibility.
    props.boolean("metricsProvider.exportJvmInfo", true)?;
    match class.as_deref() {
        Some(PROMETHEUS_PROVIDER) => Ok(Some(MetricsSettings {
            host: host.unwrap_or_else(|| "0.0.0.0".into()),
            port: match port {
                Some(p) => parse_port("metricsProvider.httpPort", &p)?,
                None => 7000,
            },
        })),
        Some(other) => {
            warnings.push(format!(
                "zoo.cfg: metricsProvider.className={other} is not implemented (only \
                 {PROMETHEUS_PROVIDER} is); no metrics endpoint is served"
            ));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The AdminServer when admin.enableServer=true or admin.serverPort is set, and whether
/// neither was set (where Apache ZooKeeper would serve on 0.0.0.0:8080 by default).
fn admin_settings(props: &mut Props) -> Result<(Option<AdminSettings>, bool), ConfigError> {
    let enable = match props.take("admin.enableServer") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(ConfigError::Parse(format!(
                "zoo.cfg: admin.enableServer={v} is not true or false"
            )))
        }
    };
    let port = props
        .take("admin.serverPort")
        .map(|p| parse_port("admin.serverPort", &p))
        .transpose()?;
    let address = props.take("admin.serverAddress");
    let command_url = props.take("admin.commandURL");
    let skipped = enable.is_none() && port.is_none();
    if !enable.unwrap_or(port.is_some()) {
        return Ok((None, skipped));
    }
    let admin = AdminSettings {
        address: address.unwrap_or_else(|| "0.0.0.0".into()),
        port: port.unwrap_or(8080),
        command_url: command_url.unwrap_or_else(|| "/commands".into()),
    };
    Ok((Some(admin), false))
}

fn standalone_entry(id: Sid) -> ServerEntry {
    ServerEntry {
        id,
        host: "127.0.0.1".into(),
        peer_port: 0,
        election_port: None,
        role: ServerRole::Participant,
        client: None,
        client_source: ClientSource::ServerLine,
    }
}

/// Client port settings: connection and session limits, four-letter words, and the Java
/// system properties ensemble honours.
fn client_settings(props: &mut Props, tick_ms: u64) -> Result<ClientSettings, ConfigError> {
    let four_letter_words = props
        .take("4lw.commands.whitelist")
        .map(|v| {
            v.split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect()
        })
        .unwrap_or_else(|| vec!["srvr".to_string()]);
    // ZooKeeper reads -1 as "the default".
    let session_timeout = |props: &mut Props, key: &str, default: u64| {
        props
            .num::<i64>(key, -1)
            .map(|v| u64::try_from(v).unwrap_or(default))
    };
    Ok(ClientSettings {
        max_client_cnxns: props.num("maxClientCnxns", 60)?,
        global_outstanding_limit: props.num("globalOutstandingLimit", 1000)?,
        min_session_timeout_ms: session_timeout(props, "minSessionTimeout", 2 * tick_ms)?,
        max_session_timeout_ms: session_timeout(props, "maxSessionTimeout", 20 * tick_ms)?,
        four_letter_words,
        container_check_ms: props.num("znode.container.checkIntervalMs", 60_000)?,
        max_buffer_bytes: props.num("jute.maxbuffer", 0xfffff)?,
        read_only_mode: props.boolean("readonlymode.enabled", false)?,
        super_digest: props.take("DigestAuthenticationProvider.superDigest"),
        // A system property in ZooKeeper; zoo.cfg sets it as enforceQuota or with the prefix.
        enforce_quota: props.boolean("enforceQuota", false)?,
        reconfig_enabled: props.boolean("reconfigEnabled", false)?,
        connection_threads: props.optional_num("nio.numSelectorThreads")?,
    })
}

/// The class ZooKeeper names its x509 authentication provider by (`authProvider.N=`).
const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// `secureClientPort` (with `secureClientPortAddress`, default every interface) and the
/// `ssl.*` keys that configure it; None without `secureClientPort`, leaving `ssl.*` keys to be
/// named as not implemented.
fn client_tls(
    props: &mut Props,
    read: &impl Fn(&Path) -> Result<String, ConfigError>,
) -> Result<Option<ClientTls>, ConfigError> {
    let Some(port) = props.take("secureClientPort") else {
        return Ok(None);
    };
    let port = parse_port("secureClientPort", &port)?;
    let host = props
        .take("secureClientPortAddress")
        .unwrap_or_else(|| "0.0.0.0".into());
    let key_store = store(props, read, "ssl.keyStore")?.ok_or_else(|| {
        ConfigError::invalid("zoo.cfg: secureClientPort is set but ssl.keyStore.location is not")
    })?;
    let trust_store = store(props, read, "ssl.trustStore")?;
    if let Some(p) = props.take("ssl.authProvider").filter(|p| p != "x509") {
        return Err(ConfigError::invalid(format!(
            "zoo.cfg: ssl.authProvider={p}: only x509 is supported"
        )));
    }
    for (key, value) in props.take_prefixed("authProvider.") {
        if value != X509_PROVIDER {
            // Not ours to read: put it back to be named as not implemented.
            props.entries.insert(key.clone(), (key, value));
        }
    }
    let protocol = props
        .take("ssl.protocol")
        .unwrap_or_else(|| "TLSv1.3".into());
    let protocols = props
        .take("ssl.enabledProtocols")
        .map(|v| split_list(&v))
        .unwrap_or_else(|| protocols_for(&protocol));
    let tls = ClientTls {
        bind: ClientAddress { host, port },
        key_store,
        trust_store,
        client_auth: match props.take("ssl.clientAuth") {
            Some(v) => ClientAuth::from_name(&v)?,
            None => ClientAuth::Need,
        },
        protocols,
        cipher_suites: props
            .take("ssl.ciphersuites")
            .map(|v| split_list(&v))
            .unwrap_or_default(),
        super_user: props.take("X509AuthenticationProvider.superUser"),
        handshake_timeout_ms: props.num(
            "ssl.handshakeDetectionTimeoutMillis",
            crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS,
        )?,
    };
    tls.validate()
        .map_err(|e| ConfigError::invalid(format!("zoo.cfg: {e}")))?;
    Ok(Some(tls))
}

/// `sslQuorum=true` and the `ssl.quorum.*` keys: mutual TLS between servers. Without
/// `sslQuorum=true` the `ssl.quorum.*` keys are left to be named as not acted on.
fn quorum_tls(
    props: &mut Props,
    read: &impl Fn(&Path) -> Result<String, ConfigError>,
) -> Result<Option<QuorumTls>, ConfigError> {
    if !props.boolean("sslQuorum", false)? {
        return Ok(None);
    }
    let p = "ssl.quorum";
    let key_store = store(props, read, &format!("{p}.keyStore"))?.ok_or_else(|| {
        ConfigError::invalid("zoo.cfg: sslQuorum=true but ssl.quorum.keyStore.location is not set")
    })?;
    let trust_store = store(props, read, &format!("{p}.trustStore"))?.ok_or_else(|| {
        ConfigError::invalid(
            "zoo.cfg: sslQuorum=true but ssl.quorum.trustStore.location is not set",
        )
    })?;
    if let Some(auth) = props.take(&format!("{p}.clientAuth")) {
        if ClientAuth::from_name(&auth)? != ClientAuth::Need {
            return Err(ConfigError::invalid(format!(
                "zoo.cfg: {p}.clientAuth={auth}: ensemble requires every peer to present a \
                 trusted certificate on the quorum port (need)"
            )));
        }
    }
    let protocol = props
        .take(&format!("{p}.protocol"))
        .unwrap_or_else(|| "TLSv1.3".into());
    let tls = QuorumTls {
        key_store,
        trust_store,
        protocols: props
            .take(&format!("{p}.enabledProtocols"))
            .map(|v| split_list(&v))
            .unwrap_or_else(|| protocols_for(&protocol)),
        cipher_suites: props
            .take(&format!("{p}.ciphersuites"))
            .map(|v| split_list(&v))
            .unwrap_or_default(),
        hostname_verification: props.boolean(&format!("{p}.hostnameVerification"), true)?,
        handshake_timeout_ms: props.num(
            &format!("{p}.handshakeDetectionTimeoutMillis"),
            crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS,
        )?,
    };
    tls.validate()
        .map_err(|e| ConfigError::invalid(format!("zoo.cfg: {e}")))?;
    Ok(Some(tls))
}

/// `PREFIX.location`, `.password` (or `.passwordPath`, a file holding it) and `.type`.
fn store(
    props: &mut Props,
    read: &impl Fn(&Path) -> Result<String, ConfigError>,
    prefix: &str,
) -> Result<Option<Store>, ConfigError> {
    let location = props.take(&format!("{prefix}.location"));
    let password = props.take(&format!("{prefix}.password"));
    let password_path = props.take(&format!("{prefix}.passwordPath"));
    let kind = props.take(&format!("{prefix}.type"));
    let Some(location) = location.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let password = match (password, password_path) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => Some(read(Path::new(&path))?.trim_end().to_string()),
        (None, None) => None,
    };
    Store::new(
        &format!("zoo.cfg: {prefix}.location"),
        &location,
        password,
        kind.as_deref(),
    )
    .map(Some)
}

/// `clientPort` with `clientPortAddress` (default: every interface), as ZooKeeper reads them.
fn static_client_address(props: &mut Props) -> Result<Option<ClientAddress>, ConfigError> {
    let port = props.take("clientPort");
    let host = props.take("clientPortAddress");
    match (port, host) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError::invalid(
            "zoo.cfg: clientPortAddress is set but clientPort is not",
        )),
        (Some(p), host) => Ok(Some(ClientAddress {
            host: host.unwrap_or_else(|| "0.0.0.0".into()),
            port: parse_port("clientPort", &p)?,
        })),
    }
}

/// This node's client address: its server line's, else `clientPort`/`clientPortAddress`. Both
/// given must agree, as in ZooKeeper (a wildcard `clientPortAddress` only needs the port).
fn own_client_address(
    id: Sid,
    line: Option<ClientAddress>,
    static_client: Option<ClientAddress>,
) -> Result<Option<ClientAddress>, ConfigError> {
    match (line, static_client) {
        (Some(l), Some(s)) => {
            let agree = if s.is_wildcard() {
                s.port == l.port
            } else {
                s.port == l.port && same_host(&s.host, &l.host)
            };
            if !agree {
                return Err(ConfigError::invalid(format!(
                    "zoo.cfg: clientPort/clientPortAddress {}:{} differ from server.{id}'s client \
                     address {}:{}",
                    s.host, s.port, l.host, l.port
                )));
            }
            Ok(Some(l))
        }
        (line, static_client) => Ok(line.or(static_client)),
    }
}

/// Whether two host names are spelled alike or resolve to a common address.
fn same_host(a: &str, b: &str) -> bool {
    let resolve = |h: &str| -> BTreeSet<std::net::IpAddr> {
        (h.trim_matches(['[', ']']), 0)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default()
    };
    a == b || !resolve(a).is_disjoint(&resolve(b))
}

/// `electionAlg` (only 3 exists) and `peerType`, the role this server says it has.
fn check_election_alg_and_peer_type(props: &mut Props) -> Result<Option<ServerRole>, ConfigError> {
    if let Some(alg) = props.take("electionAlg") {
        if alg != "3" {
            return Err(ConfigError::invalid(format!(
                "zoo.cfg: electionAlg={alg}: only 3 (fast leader election) exists"
            )));
        }
    }
    match props.take("peerType").map(|v| v.to_lowercase()).as_deref() {
        None => Ok(None),
        Some("participant") => Ok(Some(ServerRole::Participant)),
        Some("observer") => Ok(Some(ServerRole::Observer)),
        Some(other) => Err(ConfigError::invalid(format!(
            "zoo.cfg: peerType={other} is neither participant nor observer"
        ))),
    }
}

/// ZooKeeper's rule when `peerType` and this server's own line disagree: the server line
/// wins, with a warning.
fn peer_type_warning(peer_type: Option<ServerRole>, me: &ServerEntry) -> Option<String> {
    let said = peer_type?;
    (said != me.role).then(|| {
        format!(
            "zoo.cfg: peerType={} does not match server.{}'s role {}; the server line wins",
            role_name(said),
            me.id,
            role_name(me.role)
        )
    })
}

/// The zoo.cfg spelling of a role.
fn role_name(role: ServerRole) -> &'static str {
    match role {
        ServerRole::Participant => "participant",
        ServerRole::Observer => "observer",
    }
}

/// `dataDir/myid`: required by a distributed config; a standalone server may lack it.
fn read_myid(
    data_dir: &Path,
    read: &impl Fn(&Path) -> Result<String, ConfigError>,
    required: bool,
) -> Result<Option<Sid>, ConfigError> {
    let text = match read(&data_dir.join("myid")) {
        Ok(t) => t,
        Err(ConfigError::Read { source, .. })
            if !required && source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let first = text.lines().next().unwrap_or("").trim();
    first.parse().map(Some).map_err(|_| {
        ConfigError::invalid(format!(
            "myid file in {} holds {first:?}, not a server id",
            data_dir.display()
        ))
    })
}

/// The server lines and the dynamic config file's version.
struct ServerLines {
    servers: Vec<ServerEntry>,
    /// The dynamic config file's `version=` (0 without one).
    version: u64,
}

/// The `server.N` lines, from the static file or its `dynamicConfigFile`.
fn server_lines(
    props: &mut Props,
    read: &impl Fn(&Path) -> Result<String, ConfigError>,
) -> Result<ServerLines, ConfigError> {
    refuse_hierarchical(props)?;
    let Some(dynamic) = props.take("dynamicConfigFile") else {
        return parse_server_lines(props.take_prefixed("server."));
    };
    if let Some(key) = props.keys().find(|k| k.starts_with("server.")) {
        return Err(ConfigError::invalid(format!(
            "zoo.cfg: {key} must be in the dynamicConfigFile, not beside it"
        )));
    }
    let mut dynamic_props = Props::parse(&read(Path::new(&dynamic))?);
    refuse_hierarchical(&mut dynamic_props)?;
    let servers = dynamic_props.take_prefixed("server.");
    let version = dynamic_props.take("version");
    if let Some(key) = dynamic_props.keys().next() {
        return Err(ConfigError::invalid(format!(
            "{dynamic}: {key} does not belong in a dynamic config file (server.N and version \
             lines only)"
        )));
    }
    let mut lines = parse_server_lines(servers)?;
    match version {
        Some(v) => {
            lines.version = u64::from_str_radix(v.trim(), 16).map_err(|_| {
                ConfigError::Parse(format!("{dynamic}: version={v} is not a hex number"))
            })?;
        }
        // Apache keeps the version in the file name (`zoo.cfg.dynamic.100000003`) only.
        None => lines.version = version_of_file_name(&dynamic).unwrap_or(0),
    }
    Ok(lines)
}

/// The hex version after the last `.` of a dynamic config file's name, as Apache reads it
/// (`zoo.cfg.dynamic.100000003`; none for `zoo.cfg.dynamic`).
fn version_of_file_name(path: &str) -> Option<u64> {
    let (_, suffix) = path.rsplit_once('.')?;
    u64::from_str_radix(suffix, 16).ok()
}

/// Hierarchical quorums (`group.N`, `weight.N`) change who forms a quorum: refused.
fn refuse_hierarchical(props: &mut Props) -> Result<(), ConfigError> {
    match props
        .keys()
        .find(|k| k.starts_with("group") || k.starts_with("weight"))
    {
        Some(key) => Err(ConfigError::invalid(format!(
            "zoo.cfg: {key}: hierarchical quorums (group.N, weight.N) are not supported yet"
        ))),
        None => Ok(()),
    }
}

fn parse_server_lines(lines: Vec<(String, String)>) -> Result<ServerLines, ConfigError> {
    let servers = lines
        .into_iter()
        .map(|(key, value)| {
            let id = key["server.".len()..]
                .parse()
                .map_err(|_| ConfigError::Parse(format!("zoo.cfg: {key} has a non-numeric id")))?;
            parse_server_line(id, &value)
        })
        .collect::<Result<_, _>>()?;
    Ok(ServerLines {
        servers,
        version: 0,
    })
}

/// `host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`.
pub(crate) fn parse_server_line(id: Sid, value: &str) -> Result<ServerEntry, ConfigError> {
    let bad = |why: &str| ConfigError::Parse(format!("zoo.cfg: server.{id}={value}: {why}"));
    let mut parts: Vec<&str> = value.split(';').collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    if parts.len() > 2 {
        // ZooKeeper 3.8 refuses a third part too: a server line names no secure address.
        return Err(bad(
            "expected host:quorumPort:electionPort[:role][;[clientHost:]clientPort]; a secure \
             client port is set with secureClientPort (and secureClientPortAddress), not on the \
             server line",
        ));
    }
    if parts[0].contains('|') {
        return Err(bad("several addresses per server are not supported yet"));
    }
    let fields = host_and_port(parts[0]);
    if fields.len() < 3 || fields.len() > 4 {
        return Err(bad(
            "expected host:quorumPort:electionPort[:participant|:observer]",
        ));
    }
    let num = |s: &str, what: &str| -> Result<u16, ConfigError> {
        s.trim()
            .parse()
            .map_err(|_| bad(&format!("{what} {s:?} is not a port")))
    };
    let role = match fields.get(3).map(|r| r.trim().to_lowercase()).as_deref() {
        None | Some("participant") => ServerRole::Participant,
        Some("observer") => ServerRole::Observer,
        Some(other) => return Err(bad(&format!("unknown role {other:?}"))),
    };
    let client = match parts.get(1).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match host_and_port(c).as_slice() {
            [port] => Some(ClientAddress {
                host: "0.0.0.0".into(),
                port: num(port, "client port")?,
            }),
            [host, port] => Some(ClientAddress {
                host: host.to_string(),
                port: num(port, "client port")?,
            }),
            _ => return Err(bad("expected [clientHost:]clientPort after ';'")),
        },
    };
    Ok(ServerEntry {
        id,
        host: fields[0].to_string(),
        peer_port: num(&fields[1], "quorum port")?,
        election_port: Some(num(&fields[2], "election port")?),
        role,
        client,
        client_source: ClientSource::ServerLine,
    })
}

/// Splits `host:port:...` on colons, keeping a bracketed IPv6 host (`[::1]:2888`) whole.
fn host_and_port(s: &str) -> Vec<String> {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let mut out = vec![host.to_string()];
            out.extend(
                tail.strip_prefix(':')
                    .unwrap_or(tail)
                    .split(':')
                    .filter(|_| !tail.is_empty())
                    .map(str::to_string),
            );
            return out;
        }
    }
    s.split(':').map(str::to_string).collect()
}

fn parse_port(name: &str, value: &str) -> Result<u16, ConfigError> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ConfigError::invalid(format!("{name}={value} is not a valid port")))
}

/// zoo.cfg keys and values; each read marks its key used, and the keys never read are named
/// in warnings. A key is stored without a leading `zookeeper.`: ZooKeeper turns the keys it
/// does not parse itself into `zookeeper.`-prefixed Java system properties, so both spellings
/// mean one setting.
struct Props {
    /// Canonical key -> (key as written, value).
    entries: BTreeMap<String, (String, String)>,
}

impl Props {
    /// Java properties text (later keys win).
    fn parse(text: &str) -> Self {
        let entries = java_properties(text)
            .into_iter()
            .map(|(k, v)| (canonical(&k).to_string(), (k, v)))
            .collect();
        Props { entries }
    }

    /// Takes `key` (with or without its `zookeeper.` prefix).
    fn take(&mut self, key: &str) -> Option<String> {
        self.entries.remove(canonical(key)).map(|(_, v)| v)
    }

    /// Takes every key starting with `prefix`, with its value.
    fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|(_, v)| (k, v)))
            .collect()
    }

    /// Keys not read yet, as written.
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|(k, _)| k.as_str())
    }

    /// Takes a number, or `default` when absent.
    fn num<T: std::str::FromStr>(&mut self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.optional_num(key)?.unwrap_or(default))
    }

    /// Takes a number, or None when absent.
    fn optional_num<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        self.take(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ConfigError::Parse(format!("zoo.cfg: {key}={v} is not a number")))
            })
            .transpose()
    }

    /// Takes `true`/`false` (any case), or `default` when absent.
    fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.take(key).map(|v| v.to_lowercase()).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ConfigError::Parse(format!(
                "zoo.cfg: {key}={v} is not true or false"
            ))),
        }
    }

    /// Warnings for the keys never read: one line naming the known keys ensemble does not
    /// implement yet (unless set to what ensemble does anyway), one line per unknown key.
    fn leftover_warnings(self) -> Vec<String> {
        let mut unimplemented = Vec::new();
        let mut warnings = Vec::new();
        for (key, (written, value)) in self.entries {
            match not_implemented(&key) {
                Some(Some(harmless)) if value.eq_ignore_ascii_case(harmless) => {}
                Some(_) if key.to_ascii_lowercase().contains("password") => {
                    unimplemented.push(format!("{written}=(not shown)"))
                }
                Some(_) => unimplemented.push(format!("{written}={value}")),
                None => warnings.push(format!("zoo.cfg: unknown key {written} is ignored")),
            }
        }
        if !unimplemented.is_empty() {
            warnings.insert(
                0,
                format!(
                    "zoo.cfg: ensemble does not implement these settings yet and ignores them: {}",
                    unimplemented.join(", ")
                ),
            );
        }
        warnings
    }
}

/// The entry of [`NOT_IMPLEMENTED`] that covers `key`, as its harmless value.
fn not_implemented(key: &str) -> Option<Option<&'static str>> {
    NOT_IMPLEMENTED
        .iter()
        .find(|(name, _)| *name == key || (name.ends_with('.') && key.starts_with(name)))
        .map(|(_, harmless)| *harmless)
}

fn canonical(key: &str) -> &str {
    key.strip_prefix("zookeeper.").unwrap_or(key)
}

/// Java `Properties` text as `(key, value)` pairs in file order: `#` and `!` comments, `=`,
/// `:` or blanks between key and value, `\` line continuations and escapes; values trimmed.
pub(crate) fn java_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut logical = first.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        out.push(split_property(&logical));
    }
    out
}

/// Whether a line ends in an odd number of backslashes (the last one continues the line).
fn ends_in_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut end = 0;
    while end < chars.len() {
        match chars[end] {
            '\\' => end += 2,
            '=' | ':' => break,
            c if c.is_whitespace() => break,
            _ => end += 1,
        }
    }
    let end = end.min(chars.len());
    let mut start = end;
    while start < chars.len() && chars[start].is_whitespace() {
        start += 1;
    }
    if start < chars.len() && matches!(chars[start], '=' | ':') {
        start += 1;
    }
    let key = unescape(&chars[..end]);
    let value = unescape(&chars[start..]);
    (key, value.trim().to_string())
}

/// Java properties escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX`; any other `\x` is `x`.
fn unescape(chars: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let c = chars[i + 1];
        i += 2;
        match c {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars[i..(i + 4).min(chars.len())].iter().collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(u) if hex.len() == 4 => {
                        out.push(u);
                        i += 4;
                    }
                    _ => out.push('u'),
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that knows `files` (path, content); any other path is missing.
    fn files(files: &[(&str, &str)]) -> impl Fn(&Path) -> Result<String, ConfigError> {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |p| {
            files
                .iter()
                .find(|(path, _)| path == p)
                .map(|(_, text)| text.clone())
                .ok_or_else(|| ConfigError::Read {
                    path: p.display().to_string(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })
        }
    }

    /// The warnings other than the one every zoo.cfg without a peer secret gets.
    fn quiet(c: &NodeConfig) -> Vec<&str> {
        c.warnings
            .iter()
            .map(String::as_str)
            .filter(|w| !w.starts_with("PEER AUTHENTICATION IS OFF"))
            .collect()
    }

    fn myid(v: &str) -> impl Fn(&Path) -> Result<String, ConfigError> {
        files(&[("/tmp/zk/myid", v), ("/var/lib/zookeeper/myid", v)])
    }

    fn err(text: &str, read: impl Fn(&Path) -> Result<String, ConfigError>) -> String {
        parse_zoo_cfg(text, read).unwrap_err().to_string()
    }

    /// The server ids whose client address is unknown here.
    fn unknown_clients(c: &NodeConfig) -> Vec<Sid> {
        c.servers
            .iter()
            .filter(|s| s.client.is_none())
            .map(|s| s.id)
            .collect()
    }

    const CFG: &str = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp/zk\nclientPort=2181\n\
        server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888;2182\n\
        server.3=10.0.0.3:2888:3888:participant;10.0.0.9:2183\nfoo.bar=1\n";

    #[test]
    fn parses_servers_limits_and_warns_on_unknown_keys() {
        let c = parse_zoo_cfg(CFG, myid("1\n")).unwrap();
        assert_eq!(c.id, 1);
        assert_eq!((c.tick_ms, c.init_limit, c.sync_limit), (2000, 5, 2));
        assert_eq!(c.client_bind_addr(), "0.0.0.0:2181");
        assert_eq!(c.servers[1].client_bind_addr().unwrap(), "0.0.0.0:2182");
        assert_eq!(c.servers[1].client_addr().unwrap(), "10.0.0.2:2182");
        assert_eq!(c.servers[2].client_addr().unwrap(), "10.0.0.9:2183");
        assert_eq!(c.servers[0].peer_addr(), "10.0.0.1:2888");
        assert_eq!(c.warnings[0], "zoo.cfg: unknown key foo.bar is ignored");
        assert!(c.warnings[1].contains("ensemble.peerSecretFile=PATH"));
        assert_eq!(c.warnings.len(), 2);
        assert_eq!(c.client.max_session_timeout_ms, 40_000);
        assert_eq!(
            c.peer_auth,
            PeerAuth::Off,
            "a plain zoo.cfg starts, with a warning"
        );
        let with_secret = format!("{CFG}ensemble.peerSecretFile=/etc/zk/peer.secret\n");
        let c = parse_zoo_cfg(&with_secret, myid("1")).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(
            c.peer_auth,
            PeerAuth::SecretFile {
                path: "/etc/zk/peer.secret".into(),
                create_if_missing: false
            }
        );
    }

    #[test]
    fn super_digest_is_read_under_both_spellings() {
        for key in [
            "zookeeper.DigestAuthenticationProvider.superDigest",
            "DigestAuthenticationProvider.superDigest",
        ] {
            let text = format!("{CFG}{key}=super:5ZIErkhbrC1ytr/v6D+dXQw7elQ=\n");
            let c = parse_zoo_cfg(&text, myid("1")).unwrap();
            assert!(c.client.super_digest_sha1().is_some());
            assert!(c.warnings.iter().all(|w| !w.contains("superDigest")));
        }
        let bad = format!("{CFG}DigestAuthenticationProvider.superDigest=nocolon\n");
        assert!(parse_zoo_cfg(&bad, myid("1")).is_err());
    }

    #[test]
    fn connection_threads_follow_num_selector_threads() {
        let auto = parse_zoo_cfg(CFG, myid("1")).unwrap();
        assert_eq!(auto.client.connection_threads, None);
        for key in ["zookeeper.nio.numSelectorThreads", "nio.numSelectorThreads"] {
            let c = parse_zoo_cfg(&format!("{CFG}{key}=3\n"), myid("1")).unwrap();
            assert_eq!(c.client.connection_threads, Some(3));
            assert!(
                c.warnings.iter().all(|w| !w.contains("nio.")),
                "{:?}",
                c.warnings
            );
        }
        for bad in ["-1", "many", "257"] {
            let text = format!("{CFG}zookeeper.nio.numSelectorThreads={bad}\n");
            let e = parse_zoo_cfg(&text, myid("1")).unwrap_err().to_string();
            assert!(e.contains("nio.numSelectorThreads"), "{e}");
        }
    }

    #[test]
    fn connection_limits() {
        let c = parse_zoo_cfg(
            &format!("{CFG}maxClientCnxns=0\nglobalOutstandingLimit=50\n"),
            myid("1"),
        )
        .unwrap();
        assert_eq!(c.client.max_client_cnxns, 0);
        assert_eq!(c.client.global_outstanding_limit, 50);
        let defaults = parse_zoo_cfg(CFG, myid("1")).unwrap();
        assert_eq!(defaults.client.max_client_cnxns, 60);
        assert_eq!(defaults.client.global_outstanding_limit, 1000);
    }

    /// zookeeperStarted.md, "Standalone Operation": no server lines, no myid.
    #[test]
    fn guide_standalone_needs_no_myid() {
        let text = "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n";
        let c = parse_zoo_cfg(text, files(&[])).unwrap();
        assert!(c.is_standalone());
        assert_eq!((c.id, c.client_bind_addr()), (1, "0.0.0.0:2181".into()));
        assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        let c = parse_zoo_cfg(text, myid("7")).unwrap();
        assert_eq!(c.id, 7);
        // The defaults are ZooKeeper's: tickTime 3000, sessions 2..20 ticks.
        let c = parse_zoo_cfg("dataDir=/tmp/zk\nclientPort=2181\n", files(&[])).unwrap();
        assert_eq!(c.tick_ms, 3000);
        assert_eq!(c.client.min_session_timeout_ms, 6000);
    }

    /// zookeeperStarted.md, "Running Replicated ZooKeeper" on one host: each server has its
    /// own clientPort and dataDir, and the server lines name no client port.
    #[test]
    fn guide_single_host_layout() {
        for i in 1..=3u64 {
            let text = format!(
                "tickTime=2000\ndataDir=/tmp/zk\nclientPort={}\ninitLimit=5\nsyncLimit=2\n\
                 server.1=localhost:2888:3888\nserver.2=localhost:2889:3889\n\
                 server.3=localhost:2890:3890\n",
                2180 + i
            );
            let c = parse_zoo_cfg(&text, myid(&i.to_string())).unwrap();
            assert_eq!(c.id, i);
            assert_eq!(c.client_bind_addr(), format!("0.0.0.0:{}", 2180 + i));
            assert_eq!(
                c.me().client_addr().unwrap(),
                format!("localhost:{}", 2180 + i)
            );
            let others: Vec<Sid> = (1..=3).filter(|j| *j != i).collect();
            assert_eq!(unknown_clients(&c), others);
            assert_eq!(c.peer_bind_addr(), format!("localhost:{}", 2887 + i));
            assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        }
    }

    /// As ZooKeeper: an own client address from `clientPort` serves clients but is this
    /// server's static setting, which the membership text leaves out; one from the server
    /// line is named there.
    #[test]
    fn a_client_port_address_stays_out_of_the_membership_text() {
        let lines = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888;2182\n";
        let text = format!("dataDir=/tmp/zk\nclientPort=2181\n{lines}");
        let c = parse_zoo_cfg(&text, myid("1")).unwrap();
        assert_eq!(c.me().client_source, ClientSource::ClientPort);
        assert_eq!(c.client_bind_addr(), "0.0.0.0:2181");
        assert_eq!(c.me().listed_client(), None);
        assert_eq!(
            c.membership().render(),
            "server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.2:2888:3888:participant;0.0.0.0:2182\nversion=0"
        );
        let two = parse_zoo_cfg(
            &text.replace("clientPort=2181", "clientPort=2182"),
            myid("2"),
        );
        let two = two.unwrap();
        assert_eq!(two.me().client_source, ClientSource::ServerLine);
        assert!(two.me().listed_client().is_some());
    }

    /// zookeeperStarted.md's multi-host layout (zoo1..zoo3), and the same with the `;2181`
    /// client-port suffix and no clientPort (ZooKeeper 3.5+).
    #[test]
    fn guide_multi_host_layouts() {
        let lines = "server.1=zoo1:2888:3888\nserver.2=zoo2:2888:3888\nserver.3=zoo3:2888:3888\n";
        let base = "tickTime=2000\ndataDir=/var/lib/zookeeper\ninitLimit=5\nsyncLimit=2\n";
        let c = parse_zoo_cfg(&format!("{base}clientPort=2181\n{lines}"), myid("2")).unwrap();
        assert_eq!(c.me().client_addr().unwrap(), "zoo2:2181");
        assert_eq!(unknown_clients(&c), vec![1, 3]);
        let suffixed = lines.replace("3888\n", "3888;2181\n");
        let c = parse_zoo_cfg(&format!("{base}{suffixed}"), myid("2")).unwrap();
        assert_eq!(c.client_bind_addr(), "0.0.0.0:2181");
        let clients: Vec<String> = c.servers.iter().filter_map(|s| s.client_addr()).collect();
        assert_eq!(clients, ["zoo1:2181", "zoo2:2181", "zoo3:2181"]);
        assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        let e = err(base, myid("1"));
        assert_eq!(
            e,
            "server 1 has no client port: set clientPort, or name it on its server line"
        );
    }

    /// The official Docker image's zoo.cfg, with this server's own line on 0.0.0.0.
    #[test]
    fn docker_image_layout_with_own_line_on_all_interfaces() {
        let text = "dataDir=/data\ndataLogDir=/datalog\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
            autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\nmaxClientCnxns=60\n\
            standaloneEnabled=true\nadmin.enableServer=true\n4lw.commands.whitelist=srvr,ruok\n\
            server.1=0.0.0.0:2888:3888;2181\nserver.2=zoo2:2888:3888;2181\n\
            server.3=zoo3:2888:3888;2181\n";
        let c = parse_zoo_cfg(text, files(&[("/data/myid", "1")])).unwrap();
        assert_eq!(c.peer_bind_addr(), "0.0.0.0:2888");
        assert_eq!(c.election_bind_addr().unwrap(), "0.0.0.0:3888");
        assert_eq!(c.client_bind_addr(), "0.0.0.0:2181");
        assert_eq!(c.servers[1].peer_addr(), "zoo2:2888");
        assert_eq!(c.storage.data_log_dir, PathBuf::from("/datalog"));
        assert_eq!(c.client.four_letter_words, ["srvr", "ruok"]);
        assert_eq!(
            quiet(&c),
            [
                "zoo.cfg: ensemble does not implement these settings yet and ignores them: \
              autopurge.purgeInterval=0"
            ]
        );
    }

    /// The Prometheus provider and the AdminServer with ZooKeeper's keys and defaults.
    #[test]
    fn metrics_provider_and_admin_server() {
        let base = "dataDir=/tmp/zk\nclientPort=2181\n";
        let c = parse_zoo_cfg(base, myid("1")).unwrap();
        assert_eq!((c.metrics.clone(), c.admin.clone()), (None, None));
        assert!(c.admin_default_skipped, "Apache would serve on 8080 here");
        let text = format!(
            "{base}metricsProvider.className={PROMETHEUS_PROVIDER}\nadmin.enableServer=true\n\
             metricsProvider.exportJvmInfo=false\n"
        );
        let c = parse_zoo_cfg(&text, myid("1")).unwrap();
        assert_eq!(c.metrics.as_ref().unwrap().bind_addr(), "0.0.0.0:7000");
        let admin = c.admin.clone().unwrap();
        assert_eq!(
            (admin.bind_addr(), admin.command_url.as_str()),
            ("0.0.0.0:8080".to_string(), "/commands")
        );
        assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        let text = format!(
            "{base}metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpHost=127.0.0.1\n\
             metricsProvider.httpPort=7001\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=8081\n\
             admin.commandURL=/cmds\nadmin.idleTimeout=5000\n"
        );
        let c = parse_zoo_cfg(&text, myid("1")).unwrap();
        assert_eq!(c.metrics.clone().unwrap().bind_addr(), "127.0.0.1:7001");
        let admin = c.admin.clone().unwrap();
        assert_eq!(
            (admin.bind_addr(), admin.command_url.as_str()),
            ("127.0.0.1:8081".to_string(), "/cmds")
        );
        assert!(
            quiet(&c)[0].ends_with("admin.idleTimeout=5000"),
            "{:?}",
            quiet(&c)
        );
        let off = format!("{base}admin.enableServer=false\nadmin.serverPort=8081\n");
        let c = parse_zoo_cfg(&off, myid("1")).unwrap();
        assert_eq!((c.admin, c.admin_default_skipped), (None, false));
        let other = format!("{base}metricsProvider.className=com.example.Provider\n");
        let c = parse_zoo_cfg(&other, myid("1")).unwrap();
        assert_eq!(c.metrics, None);
        assert!(
            quiet(&c)[0].contains("com.example.Provider is not implemented"),
            "{:?}",
            quiet(&c)
        );
        let e = err(&format!("{base}admin.serverPort=0\n"), myid("1"));
        assert_eq!(e, "admin.serverPort=0 is not a valid port");
    }

    /// zookeeperReconfig.md: the server lines live in the dynamicConfigFile.
    #[test]
    fn dynamic_config_file_split() {
        let text = "tickTime=2000\ndataDir=/tmp/zk\ninitLimit=5\nsyncLimit=2\n\
            dynamicConfigFile=/conf/zoo.cfg.dynamic.100000000\n";
        let dynamic = "server.1=125.23.63.23:2780:2783:participant;2791\n\
            server.2=125.23.63.24:2781:2784:participant;2792\n\
            server.3=125.23.63.25:2782:2785:participant;2793\n";
        let read = |d: &str| {
            files(&[
                ("/tmp/zk/myid", "3"),
                ("/conf/zoo.cfg.dynamic.100000000", d),
            ])
        };
        let c = parse_zoo_cfg(text, read(dynamic)).unwrap();
        assert_eq!((c.id, c.servers.len()), (3, 3));
        assert_eq!(c.client_bind_addr(), "0.0.0.0:2793");
        assert_eq!(c.servers[0].client_addr().unwrap(), "125.23.63.23:2791");
        assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        let e = err(&format!("{text}server.4=10.0.0.4:1:2\n"), read(dynamic));
        assert_eq!(
            e,
            "zoo.cfg: server.4 must be in the dynamicConfigFile, not beside it"
        );
        // The version line ZooKeeper writes is read; anything else is refused.
        let c = parse_zoo_cfg(text, read(&format!("{dynamic}version=100000000\n"))).unwrap();
        assert_eq!(c.config_version, 0x1_0000_0000);
        let e = err(text, read("version=1\nsyncLimit=3\nserver.3=a:1:2;3\n"));
        assert!(
            e.ends_with("syncLimit does not belong in a dynamic config file (server.N and version lines only)"),
            "{e}"
        );
        let e = err(text, read("version=zz\nserver.3=a:1:2;3\n"));
        assert!(e.ends_with("version=zz is not a hex number"), "{e}");
        let e = err(text, files(&[("/tmp/zk/myid", "3")]));
        assert!(
            e.starts_with("cannot read /conf/zoo.cfg.dynamic.100000000"),
            "{e}"
        );
    }

    /// kazoo/testing/common.py: `server.N=localhost:P:Q:participant` without client ports,
    /// TLS, SASL and admin keys, and the harness's extra entries.
    const KAZOO: &str = "\ntickTime=2000\ndataDir=/tmp/zk\nclientPort=20000\n\
        secureClientPort=20004\nmaxClientCnxns=0\nadmin.serverPort=20003\n\
        serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
        authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
        ssl.keyStore.location=/tmp/keystore.jks\nssl.keyStore.password=apassword\n\
        ssl.trustStore.location=/tmp/truststore.jks\nssl.trustStore.password=apassword\n\
        4lw.commands.whitelist=*\nreconfigEnabled=true\nlocalSessionsEnabled=false\n\
        localSessionsUpgradingEnabled=false\n\ninitLimit=4\nsyncLimit=2\n\
        server.1=localhost:20002:20001:participant\nserver.2=localhost:20012:20011:participant\n\
        server.3=localhost:20022:20021:participant\npeerType=participant\n";

    #[test]
    fn kazoo_harness_layout() {
        let c = parse_zoo_cfg(KAZOO, myid("1")).unwrap();
        assert_eq!(c.client_bind_addr(), "0.0.0.0:20000");
        assert_eq!(unknown_clients(&c), vec![2, 3]);
        assert_eq!(c.servers[2].peer_addr(), "localhost:20022");
        assert_eq!(c.client.max_client_cnxns, 0);
        assert!(c.client.allows_word("mntr"));
        let [line] = quiet(&c)[..] else {
            panic!("one warning line expected: {:?}", c.warnings)
        };
        for key in ["authProvider.1=", "serverCnxnFactory="] {
            assert!(line.contains(key), "{key} missing from {line}");
        }
        assert!(!line.contains("localSessions"), "{line}");
        // The secure port is read (its JKS stores are refused when the node starts).
        let tls = c.client_tls.as_ref().expect("secureClientPort is read");
        assert_eq!((tls.bind.host.as_str(), tls.bind.port), ("0.0.0.0", 20004));
        assert_eq!(tls.key_store.kind, crate::StoreKind::Jks);
        assert_eq!(tls.key_store.password, "apassword");
        assert_eq!(tls.client_auth, crate::ClientAuth::Need);
        assert!(!line.contains("ssl."), "{line}");
        // Other keys harnesses write: standaloneEnabled=false, skipACL, and Java system
        // properties with or without their zookeeper. prefix.
        let more = format!(
            "{KAZOO}standaloneEnabled=false\nskipACL=yes\nzookeeper.extendedTypesEnabled=true\n\
             zookeeper.snapCount=50\njute.maxbuffer=4096\nfsync.warningthresholdms=20\n"
        );
        let c = parse_zoo_cfg(&more, myid("1")).unwrap();
        assert_eq!(c.storage.snap_count, 50);
        assert_eq!(c.storage.fsync_warning_ms, 20);
        assert_eq!(c.client.max_buffer_bytes, 4096);
        assert!(c.warnings[0].contains("skipACL=yes"), "{:?}", c.warnings);
        assert!(!c.warnings[0].contains("extendedTypes"), "{:?}", c.warnings);
    }

    #[test]
    fn secure_client_port_keys() {
        let text = "dataDir=/tmp/zk\nclientPort=2181\nsecureClientPort=2281\n\
            secureClientPortAddress=127.0.0.1\nssl.keyStore.location=/k/server.p12\n\
            ssl.keyStore.passwordPath=/k/pw\nssl.trustStore.location=/k/ca.pem\n\
            ssl.clientAuth=want\nssl.enabledProtocols=TLSv1.2\n\
            zookeeper.X509AuthenticationProvider.superUser=CN=admin\n\
            authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
            ssl.quorum.keyStore.location=/k/q.p12\nssl.crl=true\nssl.ocsp=false\n";
        let c = parse_zoo_cfg(text, files(&[("/k/pw", "secret\n")])).unwrap();
        let tls = c.client_tls.as_ref().unwrap();
        assert_eq!(c.client_tls_bind_addr().as_deref(), Some("127.0.0.1:2281"));
        assert_eq!(tls.key_store.kind, crate::StoreKind::Pkcs12);
        assert_eq!(tls.key_store.password, "secret");
        assert_eq!(
            tls.trust_store.as_ref().unwrap().kind,
            crate::StoreKind::Pem
        );
        assert_eq!(tls.client_auth, crate::ClientAuth::Want);
        assert_eq!(tls.protocols, ["TLSv1.2"]);
        assert_eq!(tls.super_user.as_deref(), Some("CN=admin"));
        let [line] = quiet(&c)[..] else {
            panic!("one warning line expected: {:?}", c.warnings)
        };
        // Without sslQuorum=true the quorum keys are not acted on, and are named.
        for key in ["ssl.quorum.keyStore.location=", "ssl.crl=true"] {
            assert!(line.contains(key), "{key} missing from {line}");
        }
        assert!(
            !line.contains("authProvider") && !line.contains("superUser") && !line.contains("ocsp"),
            "{line}"
        );
        // Without a trust store, clients cannot be asked for certificates.
        let e = err(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.pem\n",
            files(&[]),
        );
        assert!(e.contains("trust store"), "{e}");
        let e = err(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.store\n",
            files(&[]),
        );
        assert!(e.contains("cannot tell its type"), "{e}");
    }

    /// kazoo's harness with ZOOKEEPER_CLUSTER_SIZE=5 and ZOOKEEPER_OBSERVER_START_ID=4:
    /// servers 4 and 5 are `:observer` on every line, and each server's peerType is its role.
    fn kazoo_with_observers(me: Sid) -> String {
        let role = if me >= 4 { "observer" } else { "participant" };
        KAZOO
            .replace(
                "peerType=participant\n",
                "server.4=localhost:20032:20031:observer\n\
                 server.5=localhost:20042:20041:observer\n",
            )
            .replace(
                "clientPort=20000",
                &format!("clientPort={}", 20000 + 10 * (me - 1)),
            )
            + &format!("peerType={role}\n")
    }

    #[test]
    fn ssl_quorum_keys() {
        let three = "dataDir=/d\nclientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\n\
            server.3=c:1:2\n";
        let text = format!(
            "{three}sslQuorum=true\nssl.quorum.keyStore.location=/k/q.pem\n\
             ssl.quorum.keyStore.password=pw\nssl.quorum.trustStore.location=/k/ca.p12\n\
             ssl.quorum.trustStore.passwordPath=/k/tpw\nzookeeper.ssl.quorum.protocol=TLSv1.2\n\
             ssl.quorum.hostnameVerification=false\nssl.quorum.clientAuth=NEED\n\
             ssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256\n\
             ssl.quorum.handshakeDetectionTimeoutMillis=700\nsslQuorumReloadCertFiles=true\n\
             portUnification=false\n"
        );
        let c = parse_zoo_cfg(&text, files(&[("/d/myid", "2"), ("/k/tpw", "tp\n")])).unwrap();
        let q = c.quorum_tls.as_ref().expect("sslQuorum=true is read");
        assert_eq!(q.key_store.kind, crate::StoreKind::Pem);
        assert_eq!(q.key_store.password, "pw");
        assert_eq!(q.trust_store.kind, crate::StoreKind::Pkcs12);
        assert_eq!(q.trust_store.password, "tp");
        assert_eq!(q.protocols, ["TLSv1.2"]);
        assert_eq!(q.cipher_suites, ["TLS_AES_128_GCM_SHA256"]);
        assert!(!q.hostname_verification);
        assert_eq!(q.handshake_timeout_ms, 700);
        // TLS proves membership: no peer-authentication warning; the reload key is named.
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.contains("PEER AUTHENTICATION IS OFF")),
            "{:?}",
            c.warnings
        );
        let [line] = &c.warnings[..] else {
            panic!("one warning expected: {:?}", c.warnings)
        };
        assert!(line.contains("sslQuorumReloadCertFiles=true"), "{line}");
        assert!(!line.contains("portUnification"), "{line}");
        // What the quorum port does not act on is named, each key by itself.
        let unacted = "portUnification=true\nssl.quorum.crl=true\nssl.quorum.ocsp=true\n\
            ssl.quorum.context.supplier.class=x.Y\nsslQuorumReloadCertFiles=false\n";
        let c = parse_zoo_cfg(
            &text
                .replace("portUnification=false\n", "")
                .replace("sslQuorumReloadCertFiles=true\n", unacted),
            files(&[("/d/myid", "2"), ("/k/tpw", "tp\n")]),
        )
        .unwrap();
        let [line] = &c.warnings[..] else {
            panic!("one warning expected: {:?}", c.warnings)
        };
        for key in [
            "portUnification=true",
            "ssl.quorum.crl=true",
            "ssl.quorum.ocsp=true",
            "ssl.quorum.context.supplier.class=x.Y",
        ] {
            assert!(line.contains(key), "{key} missing from {line}");
        }
        assert!(!line.contains("ReloadCertFiles"), "{line}");
        // Mistakes are one line each.
        for (extra, expected) in [
            (
                "sslQuorum=true\n",
                "ssl.quorum.keyStore.location is not set",
            ),
            (
                "sslQuorum=true\nssl.quorum.keyStore.location=/k/q.pem\n",
                "ssl.quorum.trustStore.location is not set",
            ),
            (
                "sslQuorum=true\nssl.quorum.keyStore.location=/k/q.pem\n\
                 ssl.quorum.trustStore.location=/k/ca.pem\nssl.quorum.clientAuth=want\n",
                "ssl.quorum.clientAuth=want",
            ),
            (
                "sslQuorum=true\nssl.quorum.keyStore.location=/k/q.pem\n\
                 ssl.quorum.trustStore.location=/k/ca.pem\nssl.quorum.enabledProtocols=SSLv3\n",
                "protocol SSLv3 is not supported",
            ),
        ] {
            let e = err(&format!("{three}{extra}"), files(&[("/d/myid", "1")]));
            assert!(e.contains(expected), "{e}");
        }
        // Without sslQuorum and a secret the warning names both ways to authenticate peers.
        let c = parse_zoo_cfg(three, files(&[("/d/myid", "1")])).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("sslQuorum=true")));
    }

    #[test]
    fn kazoo_observer_layout() {
        for me in 1..=5 {
            let c = parse_zoo_cfg(&kazoo_with_observers(me), myid(&me.to_string())).unwrap();
            assert_eq!(c.voters(), vec![1, 2, 3]);
            assert_eq!(c.observers(), vec![4, 5]);
            assert_eq!(c.is_observer(), me >= 4, "server {me}");
            assert!(
                !c.warnings.iter().any(|w| w.contains("peerType")),
                "{:?}",
                c.warnings
            );
        }
    }

    /// ZooKeeper's rules: the server line wins over a disagreeing peerType (with a warning);
    /// observers need at least two voters.
    #[test]
    fn observer_rules_follow_zookeeper() {
        let observer_says_participant =
            kazoo_with_observers(4).replace("peerType=observer", "peerType=participant");
        let c = parse_zoo_cfg(&observer_says_participant, myid("4")).unwrap();
        assert!(c.is_observer());
        assert!(
            c.warnings.iter().any(|w| w
                == "zoo.cfg: peerType=participant does not match server.4's role observer; \
                    the server line wins"),
            "{:?}",
            c.warnings
        );
        let voter_says_observer =
            kazoo_with_observers(1).replace("peerType=participant", "peerType=observer");
        let c = parse_zoo_cfg(&voter_says_observer, myid("1")).unwrap();
        assert!(!c.is_observer());
        let only_observers = KAZOO.replace(":participant", ":observer");
        assert_eq!(
            err(&only_observers, myid("1")),
            "Observers w/o participants is an invalid configuration"
        );
        let one_voter = KAZOO
            .replace("20012:20011:participant", "20012:20011:observer")
            .replace("20022:20021:participant", "20022:20021:observer");
        assert_eq!(
            err(&one_voter, myid("1")),
            "Observers w/o quorum is an invalid configuration"
        );
        let e = err(
            &KAZOO.replace("peerType=participant", "peerType=voter"),
            myid("1"),
        );
        assert_eq!(
            e,
            "zoo.cfg: peerType=voter is neither participant nor observer"
        );
    }

    /// Curator's QuorumConfigBuilder (`server.N=host:Q:E;host:C`) and TestingServer (no
    /// server lines, no myid).
    #[test]
    fn curator_layouts() {
        let text = "localSessionsEnabled=false\nlocalSessionsUpgradingEnabled=false\n\
            initLimit=10\nsyncLimit=5\ndataDir=/tmp/zk\nclientPort=40002\ntickTime=3000\n\
            minSessionTimeout=3000\nserver.1=localhost:40000:40001;localhost:40002\n\
            server.2=localhost:40010:40011;localhost:40012\n\
            server.3=localhost:40020:40021;localhost:40022\n";
        let c = parse_zoo_cfg(text, myid("1")).unwrap();
        assert_eq!(c.client_bind_addr(), "localhost:40002");
        assert_eq!(c.servers[2].client_addr().unwrap(), "localhost:40022");
        assert_eq!(c.client.min_session_timeout_ms, 3000);
        assert!(quiet(&c).is_empty(), "{:?}", quiet(&c));
        let single =
            "initLimit=10\nsyncLimit=5\ndataDir=/tmp/zk\nclientPort=40002\ntickTime=3000\n";
        assert!(parse_zoo_cfg(single, files(&[])).unwrap().is_standalone());
    }

    /// clientPort/clientPortAddress and the own line's client address must agree, as in
    /// ZooKeeper; a wildcard clientPortAddress only needs the same port.
    #[test]
    fn own_client_address_sources_must_agree() {
        let lines =
            "server.1=127.0.5.1:2888:3888;127.0.5.1:2181\nserver.2=127.0.5.2:2888:3888;2181\n\
            server.3=127.0.5.3:2888:3888;2181\n";
        let agreed =
            format!("dataDir=/tmp/zk\nclientPort=2181\nclientPortAddress=127.0.5.1\n{lines}");
        let c = parse_zoo_cfg(&agreed, myid("1")).unwrap();
        assert_eq!(c.client_bind_addr(), "127.0.5.1:2181");
        let e = err(
            &agreed.replace("clientPort=2181", "clientPort=2182"),
            myid("1"),
        );
        assert_eq!(
            e,
            "zoo.cfg: clientPort/clientPortAddress 127.0.5.1:2182 differ from server.1's \
             client address 127.0.5.1:2181"
        );
        let e = err(&agreed, myid("2"));
        assert!(
            e.contains("127.0.5.1:2181 differ from server.2's client address 0.0.0.0:2181"),
            "{e}"
        );
        let e = err("dataDir=/tmp/zk\nclientPortAddress=127.0.0.1\n", files(&[]));
        assert_eq!(e, "zoo.cfg: clientPortAddress is set but clientPort is not");
    }

    /// Java properties syntax, IPv6 literals, quorumListenOnAllIPs.
    #[test]
    fn properties_syntax_ipv6_and_listen_on_all_ips() {
        let text = "# comment\n! also a comment\ndataDir : /tmp/zk\nclientPort 2181\n\
            tickTime=\\\n  2500\nquorumListenOnAllIPs=TRUE\n\
            server.1=[::1]:2888:3888\nserver.2=[::1]:2889:3889;[::1]:2182\nserver.3=[::1]:2890:3890\n";
        let c = parse_zoo_cfg(text, myid("1")).unwrap();
        assert_eq!(c.tick_ms, 2500);
        assert_eq!(c.servers[0].peer_addr(), "[::1]:2888");
        assert_eq!(c.servers[1].client_addr().unwrap(), "[::1]:2182");
        assert_eq!(c.peer_bind_addr(), "0.0.0.0:2888");
        assert_eq!(c.election_bind_addr().unwrap(), "0.0.0.0:3888");
        assert_eq!(
            java_properties("a\\ b=c\\u0041\\td\nempty\n"),
            [
                ("a b".into(), "cA\td".into()),
                ("empty".into(), String::new())
            ]
        );
    }

    /// Layouts ZooKeeper refuses, or that ensemble cannot run with the same meaning yet.
    #[test]
    fn clear_refusals() {
        let three =
            "dataDir=/tmp/zk\nclientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n";
        for (extra, expected) in [
            ("group.1=1:2:3\n", "zoo.cfg: group.1: hierarchical quorums (group.N, weight.N) are not supported yet"),
            ("electionAlg=0\n", "zoo.cfg: electionAlg=0: only 3 (fast leader election) exists"),
            ("server.4=d:1:2|e:1:2\n", "zoo.cfg: server.4=d:1:2|e:1:2: several addresses per server are not supported yet"),
            ("server.4=d:1\n", "zoo.cfg: server.4=d:1: expected host:quorumPort:electionPort[:participant|:observer]"),
            ("readonlymode.enabled=yes\n", "zoo.cfg: readonlymode.enabled=yes is not true or false"),
        ] {
            assert_eq!(err(&format!("{three}{extra}"), myid("1")), expected);
        }
        let e = err(
            "dataDir=/tmp/zk\nclientPort=2181\nstandaloneEnabled=false\n",
            files(&[]),
        );
        assert_eq!(
            e,
            "zoo.cfg: standaloneEnabled=false needs at least one server.N line"
        );
        let e = err(three, files(&[]));
        assert!(e.starts_with("cannot read /tmp/zk/myid"), "{e}");
        // electionAlg=3 is what ensemble runs.
        let c = parse_zoo_cfg(&format!("{three}electionAlg=3\n"), myid("1")).unwrap();
        assert_eq!(c.servers.len(), 3);
        // ZooKeeper 3.8 refuses a third part on a server line; so does ensemble, saying where
        // a secure client port is set instead.
        let e = err(&format!("{three}server.4=d:1:2;2181;2281\n"), myid("1"));
        assert!(e.contains("secureClientPort"), "{e}");
    }

    #[test]
    fn single_server_line_runs_standalone() {
        let text = "dataDir=/tmp/zk\nclientPort=2181\nserver.5=localhost:2888:3888\n";
        let c = parse_zoo_cfg(text, files(&[])).unwrap();
        assert!(c.is_standalone());
        assert_eq!(c.id, 5);
        let c = parse_zoo_cfg(&format!("{text}standaloneEnabled=false\n"), files(&[])).unwrap();
        assert!(c.warnings[0].contains("standaloneEnabled=false with one server"));
    }

    #[test]
    fn enforce_quota_is_read_with_or_without_its_prefix() {
        for line in ["zookeeper.enforceQuota=true", "enforceQuota=TRUE"] {
            let c = parse_zoo_cfg(&format!("{CFG}{line}\n"), myid("1")).unwrap();
            assert!(c.client.enforce_quota, "{line}");
            assert!(
                !c.warnings.iter().any(|w| w.contains("nforceQuota")),
                "{:?}",
                c.warnings
            );
        }
        assert!(!parse_zoo_cfg(CFG, myid("1")).unwrap().client.enforce_quota);
    }

    #[test]
    fn maxbuffer_read_only_mode_retain_count_and_id_range() {
        let c = parse_zoo_cfg(
            &format!("{CFG}jute.maxbuffer=4096\nreadonlymode.enabled=true\nautopurge.snapRetainCount=1\n"),
            myid("1"),
        )
        .unwrap();
        assert_eq!(c.client.max_buffer_bytes, 4096);
        assert!(c.client.read_only_mode);
        assert_eq!(c.storage.snap_retain_count, 3);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("snapRetainCount=1 is below 3")));
        let defaults = parse_zoo_cfg(CFG, myid("1")).unwrap();
        assert_eq!(defaults.client.max_buffer_bytes, 0xfffff);
        assert!(!defaults.client.read_only_mode);
        let e = err(&format!("{CFG}jute.maxbuffer=10\n"), myid("1"));
        assert_eq!(e, "jute.maxbuffer=10 is out of range [1024, 268435456]");
        let e = err(&format!("{CFG}server.255=10.0.0.5:2888:3888\n"), myid("1"));
        assert!(e.starts_with("server id 255 is outside 1..=254"), "{e}");
    }

    #[test]
    fn myid_mistakes_are_named() {
        assert_eq!(
            err(CFG, myid("5")),
            "myid 5 matches no server entry (servers: 1, 2, 3)"
        );
        assert_eq!(
            err(CFG, myid("two")),
            "myid file in /tmp/zk holds \"two\", not a server id"
        );
        assert!(err(CFG, files(&[])).starts_with("cannot read /tmp/zk/myid"));
    }

    #[test]
    fn duplicates_and_even_sizes() {
        let dup = format!("{CFG}server.4=10.0.0.1:2888:3999\n");
        assert_eq!(
            err(&dup, myid("1")),
            "address 10.0.0.1:2888 is used twice (server 4)"
        );
        let even = format!("{CFG}server.4=10.0.0.4:2888:3888\n");
        let c = parse_zoo_cfg(&even, myid("1")).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("4 voting servers")));
        let e = err(&CFG.replace("tickTime=2000", "tickTime=0"), myid("1"));
        assert_eq!(e, "tickTime=0 is out of range [10, 60000]");
    }
}
