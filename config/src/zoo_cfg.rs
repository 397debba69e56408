//! Apache ZooKeeper's `zoo.cfg` plus `dataDir/myid`.

use crate::model::{
    ClientSettings, ElectionSettings, NodeConfig, PeerAuth, ServerEntry, ServerRole,
    StorageSettings, PEER_SECRET_KEY,
};
use crate::ConfigError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys ZooKeeper knows that ensemble accepts without acting on them.
const ACCEPTED_KEYS: &[&str] = &[
    "admin.enableServer",
    "admin.serverPort",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "quorumListenOnAllIPs",
    "metricsProvider.className",
    "preAllocSize",
    "electionAlg",
];

/// ZooKeeper's superDigest system property, as zoo.cfg sets it (ZooKeeper prefixes unknown
/// zoo.cfg keys with `zookeeper.`, so both spellings name it).
const SUPER_DIGEST_KEYS: &[&str] = &[
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "DigestAuthenticationProvider.superDigest",
];

/// Reads `path`, then `<dataDir>/myid`, into a validated config.
pub fn load_zoo_cfg(path: &Path) -> Result<NodeConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_zoo_cfg(&text, |data_dir| {
        let myid = data_dir.join("myid");
        std::fs::read_to_string(&myid).map_err(|source| ConfigError::Read {
            path: myid.display().to_string(),
            source,
        })
    })
}

/// Parses zoo.cfg text; `read_myid` returns the content of `<dataDir>/myid`.
pub fn parse_zoo_cfg(
    text: &str,
    read_myid: impl FnOnce(&Path) -> Result<String, ConfigError>,
) -> Result<NodeConfig, ConfigError> {
    let mut keys = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            ConfigError::Parse(format!(
                "zoo.cfg line {}: expected key=value, got {line:?}",
                n + 1
            ))
        })?;
        keys.insert(k.trim().to_string(), v.trim().to_string());
    }
    let mut warnings = Vec::new();
    let get_num =
        |keys: &BTreeMap<String, String>, k: &str, default: u64| -> Result<u64, ConfigError> {
            match keys.get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| ConfigError::Parse(format!("zoo.cfg: {k}={v} is not a number"))),
            }
        };
    let tick_ms = get_num(&keys, "tickTime", 2000)?;
    let data_dir = PathBuf::from(
        keys.get("dataDir")
            .ok_or_else(|| ConfigError::invalid_missing("dataDir"))?,
    );
    let data_log_dir = keys
        .get("dataLogDir")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.clone());
    let client_port = get_num(&keys, "clientPort", 2181)?;
    let client_port = port("clientPort", client_port)?;
    let client_address = keys.get("clientPortAddress").cloned();
    let mut servers = Vec::new();
    for (k, v) in &keys {
        if let Some(id) = k.strip_prefix("server.") {
            let id = id
                .parse()
                .map_err(|_| ConfigError::Parse(format!("zoo.cfg: {k} has a non-numeric id")))?;
            servers.push(parse_server_line(id, v, client_port)?);
        } else if !is_known_key(k) {
            warnings.push(format!("zoo.cfg: unknown key {k} is ignored"));
        }
    }
    let myid_text = read_myid(&data_dir)?;
    let id = myid_text.trim().parse().map_err(|_| {
        ConfigError::invalid(format!(
            "myid file in {} holds {:?}, not a server id",
            data_dir.display(),
            myid_text.trim()
        ))
    })?;
    if servers.is_empty() {
        // Standalone ZooKeeper: no server lines; this node is the whole ensemble.
        servers.push(ServerEntry {
            id,
            host: "127.0.0.1".into(),
            peer_port: 0,
            election_port: None,
            role: ServerRole::Participant,
            client_host: "0.0.0.0".into(),
            client_port,
        });
    }
    // clientPortAddress binds this node's own client port; other servers are reached on
    // their server line's client address, or their host.
    if let (Some(addr), Some(me)) = (client_address, servers.iter_mut().find(|s| s.id == id)) {
        me.client_host = addr;
    }
    let whitelist = keys
        .get("4lw.commands.whitelist")
        .map(|v| {
            v.split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect()
        })
        .unwrap_or_else(|| vec!["srvr".to_string()]);
    let config = NodeConfig {
        id,
        servers,
        tick_ms,
        init_limit: get_num(&keys, "initLimit", 10)? as u32,
        sync_limit: get_num(&keys, "syncLimit", 5)? as u32,
        client: ClientSettings {
            max_client_cnxns: get_num(&keys, "maxClientCnxns", 60)? as u32,
            global_outstanding_limit: get_num(&keys, "globalOutstandingLimit", 1000)? as u32,
            min_session_timeout_ms: get_num(&keys, "minSessionTimeout", 2 * tick_ms)?,
            max_session_timeout_ms: get_num(&keys, "maxSessionTimeout", 20 * tick_ms)?,
            four_letter_words: whitelist,
            container_check_ms: get_num(&keys, "znode.container.checkIntervalMs", 60_000)?,
            max_buffer_bytes: get_num(&keys, "jute.maxbuffer", 0xfffff)?,
            read_only_mode: match keys.get("readonlymode.enabled").map(String::as_str) {
                None | Some("false") => false,
                Some("true") => true,
                Some(v) => {
                    return Err(ConfigError::Parse(format!(
                        "zoo.cfg: readonlymode.enabled={v} is not true or false"
                    )))
                }
            },
            super_digest: SUPER_DIGEST_KEYS.iter().find_map(|k| keys.get(*k).cloned()),
        },
        storage: StorageSettings {
            data_dir,
            data_log_dir,
            snap_count: get_num(&keys, "snapCount", 100_000)?,
            snap_retain_count: get_num(&keys, "autopurge.snapRetainCount", 3)? as usize,
            fsync: keys.get("forceSync").map(|v| v != "no").unwrap_or(true),
            commit_log_count: get_num(&keys, "commitLogCount", 500)? as usize,
        },
        election: ElectionSettings {
            finalize_wait_ms: 200,
            max_notification_timeout_ms: 60_000,
        },
        peer_auth: match keys.get(PEER_SECRET_KEY) {
            Some(path) => PeerAuth::SecretFile {
                path: path.into(),
                create_if_missing: false,
            },
            None => PeerAuth::Off,
        },
        warnings,
    };
    config.validate()
}

fn is_known_key(k: &str) -> bool {
    matches!(
        k,
        "tickTime"
            | "initLimit"
            | "syncLimit"
            | "dataDir"
            | "dataLogDir"
            | "clientPort"
            | "clientPortAddress"
            | "maxClientCnxns"
            | "globalOutstandingLimit"
            | "minSessionTimeout"
            | "maxSessionTimeout"
            | "4lw.commands.whitelist"
            | "snapCount"
            | "autopurge.snapRetainCount"
            | "forceSync"
            | "commitLogCount"
            | "znode.container.checkIntervalMs"
            | "jute.maxbuffer"
            | "readonlymode.enabled"
            | PEER_SECRET_KEY
    ) || ACCEPTED_KEYS.contains(&k)
        || SUPER_DIGEST_KEYS.contains(&k)
}

/// `host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`
fn parse_server_line(
    id: u64,
    value: &str,
    default_client_port: u16,
) -> Result<ServerEntry, ConfigError> {
    let bad = |why: &str| ConfigError::Parse(format!("zoo.cfg: server.{id}={value}: {why}"));
    let (peer_part, client_part) = match value.split_once(';') {
        Some((p, c)) => (p, Some(c)),
        None => (value, None),
    };
    let fields: Vec<&str> = peer_part.split(':').collect();
    if fields.len() < 3 || fields.len() > 4 {
        return Err(bad(
            "expected host:quorumPort:electionPort[:participant|:observer]",
        ));
    }
    let num = |s: &str, what: &str| -> Result<u16, ConfigError> {
        s.parse()
            .map_err(|_| bad(&format!("{what} {s:?} is not a port")))
    };
    let role = match fields.get(3) {
        None | Some(&"participant") => ServerRole::Participant,
        Some(&"observer") => ServerRole::Observer,
        Some(other) => return Err(bad(&format!("unknown role {other:?}"))),
    };
    let (client_host, client_port) = match client_part {
        None => (fields[0].to_string(), default_client_port),
        Some(c) => match c.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), num(p, "client port")?),
            None => (fields[0].to_string(), num(c, "client port")?),
        },
    };
    Ok(ServerEntry {
        id,
        host: fields[0].to_string(),
        peer_port: num(fields[1], "quorum port")?,
        election_port: Some(num(fields[2], "election port")?),
        role,
        client_host,
        client_port,
    })
}

fn port(name: &str, value: u64) -> Result<u16, ConfigError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ConfigError::invalid(format!("{name}={value} is not a valid port")))
}

impl ConfigError {
    fn invalid_missing(key: &str) -> Self {
        ConfigError::invalid(format!("zoo.cfg: {key} is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp/zk\nclientPort=2181\n\
        server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888;2182\n\
        server.3=10.0.0.3:2888:3888:participant;10.0.0.9:2183\nfoo.bar=1\n";

    fn myid(v: &'static str) -> impl FnOnce(&Path) -> Result<String, ConfigError> {
        move |_| Ok(v.to_string())
    }

    #[test]
    fn parses_servers_limits_and_warns_on_unknown_keys() {
        let c = parse_zoo_cfg(CFG, myid("2\n")).unwrap();
        assert_eq!(c.id, 2);
        assert_eq!((c.tick_ms, c.init_limit, c.sync_limit), (2000, 5, 2));
        assert_eq!(c.servers[1].client_port, 2182);
        assert_eq!(c.servers[2].client_addr(), "10.0.0.9:2183");
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
        let c = parse_zoo_cfg(&with_secret, myid("2")).unwrap();
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
        for key in SUPER_DIGEST_KEYS {
            let text = format!("{CFG}{key}=super:5ZIErkhbrC1ytr/v6D+dXQw7elQ=\n");
            let c = parse_zoo_cfg(&text, myid("1")).unwrap();
            assert!(c.client.super_digest_sha1().is_some());
            assert!(c.warnings.iter().all(|w| !w.contains("superDigest")));
        }
        let bad = format!("{CFG}DigestAuthenticationProvider.superDigest=nocolon\n");
        assert!(parse_zoo_cfg(&bad, myid("1")).is_err());
    }

    #[test]
    fn maxbuffer_read_only_mode_and_id_range() {
        let c = parse_zoo_cfg(
            &format!("{CFG}jute.maxbuffer=4096\nreadonlymode.enabled=true\n"),
            myid("1"),
        )
        .unwrap();
        assert_eq!(c.client.max_buffer_bytes, 4096);
        assert!(c.client.read_only_mode);
        assert!(c
            .warnings
            .iter()
            .all(|w| !w.contains("jute") && !w.contains("readonly")));
        let defaults = parse_zoo_cfg(CFG, myid("1")).unwrap();
        assert_eq!(defaults.client.max_buffer_bytes, 0xfffff);
        assert!(!defaults.client.read_only_mode);
        let e = parse_zoo_cfg(&format!("{CFG}readonlymode.enabled=yes\n"), myid("1"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "zoo.cfg: readonlymode.enabled=yes is not true or false");
        let e = parse_zoo_cfg(&format!("{CFG}jute.maxbuffer=10\n"), myid("1"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "jute.maxbuffer=10 is out of range [1024, 268435456]");
        let e = parse_zoo_cfg(&format!("{CFG}server.255=10.0.0.5:2888:3888\n"), myid("1"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server id 255 is outside 1..=254"), "{e}");
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

    #[test]
    fn myid_mistakes_are_named() {
        let e = parse_zoo_cfg(CFG, myid("5")).unwrap_err().to_string();
        assert_eq!(e, "myid 5 matches no server entry (servers: 1, 2, 3)");
        let e = parse_zoo_cfg(CFG, myid("two")).unwrap_err().to_string();
        assert_eq!(e, "myid file in /tmp/zk holds \"two\", not a server id");
        let e = parse_zoo_cfg(CFG, |_| {
            Err(ConfigError::Read {
                path: "/tmp/zk/myid".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("cannot read /tmp/zk/myid"), "{e}");
    }

    #[test]
    fn duplicates_and_even_sizes() {
        let dup = format!("{CFG}server.4=10.0.0.1:2888:3999\n");
        let e = parse_zoo_cfg(&dup, myid("1")).unwrap_err().to_string();
        assert_eq!(e, "address 10.0.0.1:2888 is used twice (server 4)");
        let even = format!("{CFG}server.4=10.0.0.4:2888:3888\n");
        let c = parse_zoo_cfg(&even, myid("1")).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("4 voting servers")));
        let e = parse_zoo_cfg(&CFG.replace("tickTime=2000", "tickTime=0"), myid("1"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "tickTime=0 is out of range [10, 60000]");
    }

    #[test]
    fn no_server_lines_is_standalone() {
        let c = parse_zoo_cfg("dataDir=/tmp/zk\nclientPort=2181\n", myid("1")).unwrap();
        assert!(c.is_standalone());
    }
}
