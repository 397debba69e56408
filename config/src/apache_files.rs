//! The files Apache ZooKeeper 3.5+ keeps beside `zoo.cfg` when reconfig is enabled, written
//! the same way for a node started from a zoo.cfg, so Apache can start on them again.
//!
//! What Apache 3.8 does (QuorumPeerConfig, QuorumPeer.setQuorumVerifier), and ensemble too:
//! - at start, while the `server.N` lines are still in zoo.cfg (no `dynamicConfigFile`) of a
//!   multi-server ensemble, a byte copy of zoo.cfg is kept as `zoo.cfg.bak`;
//! - on every committed config, `zoo.cfg.dynamic.<version in hex>` gets the `server.N` lines
//!   (sorted as whole `server.N=...` strings, so `server.10` before `server.1`; no `version=`
//!   line: the version is the file name's suffix; no newline after the last line), and zoo.cfg
//!   is rewritten without the keys starting `server.`, `group`, `weight`, `peerType` and
//!   `dynamicConfigFile` (and `clientPort`, which takes `clientPortAddress` and
//!   `clientPortListenBacklog` along, when this server's line carries its client address: one
//!   from `clientPort` stays, and no membership text names it),
//!   comments dropped, ending with `dynamicConfigFile=<absolute path of the new file>`.
//!
//! Older `zoo.cfg.dynamic.*` files stay, as with Apache. Every write is atomic (temporary file,
//! fsync, rename, directory fsync).

use crate::dynamic::{render_server, write_atomically, Membership};
use crate::zoo_cfg::java_properties;
use crate::Sid;
use std::path::{Path, PathBuf};

/// Where a zoo.cfg node keeps Apache's files: its zoo.cfg, and whether the server lines are
/// still in it (no `dynamicConfigFile` yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZooCfgFiles {
    /// The zoo.cfg the node was started from.
    pub zoo_cfg: PathBuf,
    /// The `server.N` lines are in zoo.cfg itself, not in a `dynamicConfigFile`.
    pub servers_in_static: bool,
}

/// Keys Apache never writes back into the static file.
const QUORUM_KEYS: [&str; 5] = [
    "server.",
    "group",
    "weight",
    "dynamicConfigFile",
    "peerType",
];
/// The key prefix it drops too when this server's line carries the client address (Apache
/// matches a prefix, so `clientPortAddress` and `clientPortListenBacklog` go as well).
const CLIENT_KEY: &str = "clientPort";

impl ZooCfgFiles {
    /// `zoo.cfg.bak`, a copy of zoo.cfg Apache leaves at start while the server lines are in
    /// it (a multi-server ensemble with reconfig enabled).
    pub fn backup_path(&self) -> PathBuf {
        suffixed(&self.zoo_cfg, ".bak")
    }

    /// `zoo.cfg.dynamic.<version in hex>`.
    pub fn dynamic_path(&self, version: u64) -> PathBuf {
        suffixed(&self.zoo_cfg, &format!(".dynamic.{version:x}"))
    }

    /// Copies zoo.cfg to `zoo.cfg.bak` when its server lines are in it, as Apache does at
    /// every start of a reconfig-enabled ensemble.
    pub fn back_up_static(&self) -> std::io::Result<()> {
        if !self.servers_in_static {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.zoo_cfg)?;
        write_atomically(&self.backup_path(), &text)
    }

    /// Writes the committed membership `m` as Apache: its dynamic file, then zoo.cfg pointing
    /// at it. `me` decides whether the client port keys leave zoo.cfg.
    pub fn write_committed(&self, m: &Membership, me: Sid) -> std::io::Result<()> {
        let dynamic = self.dynamic_path(m.version);
        write_atomically(&dynamic, &dynamic_file_text(m))?;
        let dynamic = std::fs::canonicalize(&dynamic)?;
        let erase_client = m.server(me).is_some_and(|s| s.listed_client().is_some());
        let current = std::fs::read_to_string(&self.zoo_cfg)?;
        let text = edit_static(&current, &dynamic, erase_client);
        write_atomically(&self.zoo_cfg, &text)
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The dynamic file's text: each member's line, sorted as whole strings as Apache sorts them
/// (`server.10=` before `server.1=`, `0` being below `=`), joined by newlines, no version line.
pub fn dynamic_file_text(m: &Membership) -> String {
    let mut lines: Vec<String> = m.servers.iter().map(render_server).collect();
    lines.sort();
    lines.join("\n")
}

/// zoo.cfg's text without its quorum keys (and `clientPort*` keys when `erase_client`), one
/// `key=value` line each in file order, then `dynamicConfigFile=<dynamic>`.
pub fn edit_static(text: &str, dynamic: &Path, erase_client: bool) -> String {
    let mut out = String::new();
    for (key, value) in java_properties(text) {
        let quorum = QUORUM_KEYS.iter().any(|k| key.starts_with(k));
        let client = erase_client && key.starts_with(CLIENT_KEY);
        if !quorum && !client {
            out.push_str(&format!("{key}={value}\n"));
        }
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_zoo_cfg;

    const STATIC: &str = "# a comment\ntickTime=2000\ndataDir=DATA\nclientPort=2181\n\
                          clientPortAddress=127.0.0.1\nclientPortListenBacklog=10\n\
                          reconfigEnabled=true\n\
                          server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
                          server.2=127.0.0.2:2888:3888;127.0.0.2:2181\n\
                          server.10=127.0.0.10:2888:3888;127.0.0.10:2181\n";

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ensemble-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_dynamic_file_is_sorted_as_strings_without_version() {
        let m = Membership::parse(&STATIC.lines().skip(7).collect::<Vec<_>>().join("\n")).unwrap();
        assert_eq!(
            dynamic_file_text(&m),
            "server.10=127.0.0.10:2888:3888:participant;127.0.0.10:2181\n\
             server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181"
        );
    }

    #[test]
    fn the_static_file_loses_quorum_keys_and_points_at_the_dynamic_one() {
        let edited = edit_static(STATIC, Path::new("/c/zoo.cfg.dynamic.1"), true);
        assert_eq!(
            edited,
            "tickTime=2000\ndataDir=DATA\nreconfigEnabled=true\n\
             dynamicConfigFile=/c/zoo.cfg.dynamic.1\n"
        );
        let kept = edit_static(&edited, Path::new("/c/zoo.cfg.dynamic.2"), false);
        assert!(kept.ends_with("reconfigEnabled=true\ndynamicConfigFile=/c/zoo.cfg.dynamic.2\n"));
        let with_client = edit_static(STATIC, Path::new("/d"), false);
        assert!(with_client.contains("clientPort=2181\nclientPortAddress=127.0.0.1\n"));
        assert!(with_client.contains("clientPortListenBacklog=10\n"));
    }

    /// As ZooKeeper: when this server's client address comes from `clientPort`, a committed
    /// reconfig keeps `clientPort*` in zoo.cfg and leaves the address out of the dynamic file.
    #[test]
    fn a_client_port_address_stays_in_zoo_cfg_after_a_reconfig() {
        let dir = temp_dir("apache-files-static-client");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), "1\n").unwrap();
        let zoo_cfg = dir.join("zoo.cfg");
        let text = STATIC
            .replace("DATA", &data.display().to_string())
            .replace(";127.0.0.1:2181", "");
        std::fs::write(&zoo_cfg, &text).unwrap();
        let files = ZooCfgFiles {
            zoo_cfg: zoo_cfg.clone(),
            servers_in_static: true,
        };
        let mut m = load_zoo_cfg(&zoo_cfg).unwrap().membership();
        m.servers.retain(|s| s.id != 10);
        m.version = 0x1_0000_0003;
        files.write_committed(&m, 1).unwrap();
        let dynamic = std::fs::read_to_string(files.dynamic_path(m.version)).unwrap();
        assert_eq!(
            dynamic,
            "server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181"
        );
        let edited = std::fs::read_to_string(&zoo_cfg).unwrap();
        assert!(edited.contains("clientPort=2181\nclientPortAddress=127.0.0.1\n"));
        let back = load_zoo_cfg(&zoo_cfg).unwrap();
        assert_eq!(back.config_version, 0x1_0000_0003);
        assert_eq!(back.client_bind_addr(), "127.0.0.1:2181");
        assert_eq!(back.me().client_source, crate::ClientSource::ClientPort);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_committed_config_is_read_back_with_its_version_and_members() {
        let dir = temp_dir("apache-files");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), "1\n").unwrap();
        let zoo_cfg = dir.join("zoo.cfg");
        let text = STATIC.replace("DATA", &data.display().to_string());
        std::fs::write(&zoo_cfg, &text).unwrap();
        let files = ZooCfgFiles {
            zoo_cfg: zoo_cfg.clone(),
            servers_in_static: true,
        };
        files.back_up_static().unwrap();
        assert_eq!(std::fs::read_to_string(files.backup_path()).unwrap(), text);
        let mut m = load_zoo_cfg(&zoo_cfg).unwrap().membership();
        m.servers.retain(|s| s.id != 10);
        m.version = 0x1_0000_0003;
        files.write_committed(&m, 1).unwrap();
        let back = load_zoo_cfg(&zoo_cfg).unwrap();
        assert_eq!(back.config_version, 0x1_0000_0003);
        assert_eq!(back.voters(), vec![1, 2]);
        assert_eq!(back.me().client, m.server(1).unwrap().client);
        let dynamic = std::fs::read_to_string(files.dynamic_path(m.version)).unwrap();
        assert!(!dynamic.contains("version") && !dynamic.ends_with('\n'));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
