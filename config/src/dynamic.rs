//! The dynamic configuration: the membership and its version, in ZooKeeper's text.
//!
//! ZooKeeper 3.5+ keeps the `server.N` lines and a `version=HEX` line (the zxid of the
//! reconfig that made them, 0 for a membership never reconfigured) in the dynamic config
//! file, in `/zookeeper/config`, and in the `zoo.cfg.dynamic.<version>` files a reconfig
//! writes. [`Membership`] reads and renders that text.

use crate::model::{ids_with_role, ServerEntry, ServerRole};
use crate::zoo_cfg::parse_server_line;
use crate::{ConfigError, Sid};
use std::io::Write;
use std::path::Path;

/// The name of the file in dataDir where a node keeps the membership its last committed
/// reconfig chose (it overrides the configured servers at start).
pub const MEMBERSHIP_FILE: &str = "ensemble.dynamic";

/// Largest dynamic config text read (far above any real membership of 254 servers).
pub const MAX_DYNAMIC_TEXT: usize = 256 * 1024;

/// Who the members are and which config version named them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The zxid of the reconfig that chose this membership (0: never reconfigured).
    pub version: u64,
    /// Every member, sorted by id.
    pub servers: Vec<ServerEntry>,
}

impl Membership {
    /// Reads `server.N=...` and `version=HEX` lines (blank lines and `#` comments skipped);
    /// duplicate ids, unknown keys and malformed lines are errors.
    pub fn parse(text: &str) -> Result<Membership, ConfigError> {
        if text.len() > MAX_DYNAMIC_TEXT {
            return Err(ConfigError::Parse(format!(
                "dynamic config of {} bytes: over {MAX_DYNAMIC_TEXT}",
                text.len()
            )));
        }
        let mut version = 0;
        let mut specs = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                ConfigError::Parse(format!("dynamic config: {line:?} is not key=value"))
            })?;
            if key.trim() == "version" {
                version = u64::from_str_radix(value.trim(), 16).map_err(|_| {
                    ConfigError::Parse(format!("dynamic config: version={value} is not hex"))
                })?;
            } else {
                specs.push(line);
            }
        }
        Ok(Membership {
            version,
            servers: parse_specs(specs)?,
        })
    }

    /// ZooKeeper's text: one `server.N=host:quorum:election:role;clientHost:clientPort` line
    /// per member, then `version=HEX` (no newline after it, as ZooKeeper's config node).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.servers {
            out.push_str(&render_server(s));
            out.push('\n');
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    /// Ids of the voting members.
    pub fn voters(&self) -> Vec<Sid> {
        ids_with_role(&self.servers, ServerRole::Participant)
    }

    /// Ids of the observers.
    pub fn observers(&self) -> Vec<Sid> {
        ids_with_role(&self.servers, ServerRole::Observer)
    }

    /// The member with this id.
    pub fn server(&self, id: Sid) -> Option<&ServerEntry> {
        self.servers.iter().find(|s| s.id == id)
    }
}

/// Parses `server.N=...` specs (as reconfig's joining list or new members carry them):
/// sorted by id, a repeated id or a line that is not `server.N=...` is an error.
pub fn parse_specs<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<ServerEntry>, ConfigError> {
    let mut servers: Vec<ServerEntry> = Vec::new();
    for spec in specs {
        let s = parse_spec(spec)?;
        if servers.iter().any(|o| o.id == s.id) {
            return Err(ConfigError::Parse(format!(
                "server.{} is named twice",
                s.id
            )));
        }
        servers.push(s);
    }
    servers.sort_by_key(|s| s.id);
    Ok(servers)
}

/// One `server.N=host:quorum:election[:role][;[clientHost:]clientPort]` spec.
pub fn parse_spec(spec: &str) -> Result<ServerEntry, ConfigError> {
    let bad = || ConfigError::Parse(format!("{spec:?} is not server.N=host:port:port..."));
    let (key, value) = spec.trim().split_once('=').ok_or_else(bad)?;
    let id: Sid = key
        .trim()
        .strip_prefix("server.")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    parse_server_line(id, value.trim())
}

/// One member in ZooKeeper's form.
pub fn render_server(s: &ServerEntry) -> String {
    let role = match s.role {
        ServerRole::Participant => "participant",
        ServerRole::Observer => "observer",
    };
    let election = s.election_port.unwrap_or(s.peer_port);
    let mut line = format!("server.{}={}:{election}:{role}", s.id, s.peer_addr());
    if let Some(c) = s.listed_client() {
        line.push_str(&format!(
            ";{}",
            crate::model::join_host_port(&c.host, c.port)
        ));
    }
    line
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsynced, renamed over it,
/// and the directory fsynced.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads the membership file in `data_dir`, if there is one.
pub fn read_membership_file(data_dir: &Path) -> Result<Option<Membership>, ConfigError> {
    let path = data_dir.join(MEMBERSHIP_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    Membership::parse(&text)
        .map(Some)
        .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))
}

impl crate::NodeConfig {
    /// The configured members and their config version.
    pub fn membership(&self) -> Membership {
        Membership {
            version: self.config_version,
            servers: self.servers.clone(),
        }
    }

    /// This config with the membership the last committed reconfig left in dataDir, when it
    /// is newer than the configured one and names this server (whose own client address, the
    /// one it binds, is kept).
    pub fn with_persisted_membership(mut self) -> Result<Self, ConfigError> {
        let Some(m) = read_membership_file(&self.storage.data_dir)? else {
            return Ok(self);
        };
        if m.version <= self.config_version {
            return Ok(self);
        }
        let (own_client, own_source) = (self.me().client.clone(), self.me().client_source);
        let mut servers = m.servers;
        match servers.iter_mut().find(|s| s.id == self.id) {
            Some(me) => {
                me.client = own_client;
                me.client_source = own_source;
            }
            None => {
                self.warnings.push(format!(
                    "{MEMBERSHIP_FILE}: a reconfig removed server {} at version {:x}; it \
                     starts with the configured servers and will not be let back in",
                    self.id, m.version
                ));
                return Ok(self);
            }
        }
        self.servers = servers;
        self.config_version = m.version;
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                        server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                        server.3=127.0.0.1:2890:3890:observer;2183\n\
                        version=100000003";

    #[test]
    fn zookeeper_text_reads_and_renders_back() {
        let m = Membership::parse(TEXT).unwrap();
        assert_eq!(m.version, 0x1_0000_0003);
        assert_eq!(m.voters(), vec![1, 2]);
        assert_eq!(m.server(3).unwrap().role, ServerRole::Observer);
        // A bare client port means every interface, as ZooKeeper prints it.
        assert_eq!(m.render(), TEXT.replace(";2183", ";0.0.0.0:2183"));
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "server.x=a:1:2",
            "srv.1=a:1:2",
            "server.1=a:1",
            "server.1=a:1:2:leader",
            "server.1=a:b:2",
            "some junk",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        assert!(parse_specs(["server.1=a:1:2", "server.1=b:1:2"]).is_err());
        assert!(Membership::parse("version=zz").is_err());
        assert!(Membership::parse("a=b").is_err());
        assert!(Membership::parse(&"#".repeat(MAX_DYNAMIC_TEXT + 1)).is_err());
    }

    #[test]
    fn the_membership_file_is_written_whole_and_read_back() {
        let dir = std::env::temp_dir().join(format!("ensemble-dyn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_membership_file(&dir).unwrap(), None);
        write_atomically(&dir.join(MEMBERSHIP_FILE), TEXT).unwrap();
        let m = read_membership_file(&dir).unwrap().unwrap();
        assert_eq!(m.version, 0x1_0000_0003);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
