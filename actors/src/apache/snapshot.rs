//! Apache's snapshot file (`version-2/snapshot.<zxid>`): a file header, the open sessions, the
//! ACL cache, every znode in pre-order (the root under the path `""`, the end marked by `"/"`),
//! an Adler-32 seal, and (3.6 and later) the tree digest with a second seal.

use super::checksum::adler32;
use super::records::{jute, read_acl, FileHeader, StatPersisted};
use crate::data_tree::AclEntry;
use ensemble_messages::jute::JuteReader;
use std::collections::BTreeMap;

/// The ACL-cache key Apache reserves for `world:anyone` with every permission.
pub const OPEN_ACL_KEY: i64 = -1;

/// One znode as the snapshot stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapNode {
    /// Absolute path (`/` for the root).
    pub path: String,
    /// Content (`None`: null).
    pub data: Option<Vec<u8>>,
    /// Key of its ACL in the ACL cache.
    pub acl_key: i64,
    /// Metadata.
    pub stat: StatPersisted,
}

/// The digest Apache records after the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapDigest {
    /// Zxid the digest was computed at (0: none).
    pub zxid: i64,
    /// Digest algorithm version.
    pub version: i32,
    /// Digest value.
    pub value: i64,
}

/// A parsed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApacheSnapshot {
    /// Its file header.
    pub header: FileHeader,
    /// Open sessions: id and timeout (ms).
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache: key to ACL.
    pub acls: BTreeMap<i64, Vec<AclEntry>>,
    /// Every znode, parents before children.
    pub nodes: Vec<SnapNode>,
    /// The tree digest, when the file has one.
    pub digest: Option<SnapDigest>,
}

impl ApacheSnapshot {
    /// The ACL a node refers to, or why it cannot be found.
    pub fn acl_of(&self, node: &SnapNode) -> Result<Vec<AclEntry>, String> {
        if node.acl_key == OPEN_ACL_KEY {
            return Ok(AclEntry::open());
        }
        self.acls.get(&node.acl_key).cloned().ok_or_else(|| {
            format!(
                "znode {} refers to ACL {} that is not in the ACL cache",
                node.path, node.acl_key
            )
        })
    }
}

/// Parses a whole snapshot file, checking its seals.
pub fn parse_snapshot(bytes: &[u8]) -> Result<ApacheSnapshot, String> {
    let mut r = JuteReader::new(bytes);
    let header = FileHeader::read(&mut r, *b"ZKSN")?;
    let sessions = read_sessions(&mut r)?;
    let acls = read_acl_cache(&mut r)?;
    let nodes = read_nodes(&mut r)?;
    check_seal(bytes, &mut r)?;
    let digest = if r.remaining() == 0 {
        None
    } else {
        let d = read_digest(&mut r)?;
        check_seal(bytes, &mut r)?;
        Some(d)
    };
    if r.remaining() != 0 {
        return Err(format!("{} unexpected bytes after the end", r.remaining()));
    }
    Ok(ApacheSnapshot {
        header,
        sessions,
        acls,
        nodes,
        digest,
    })
}

fn read_sessions(r: &mut JuteReader) -> Result<Vec<(i64, i32)>, String> {
    let n = r.count("sessions").map_err(jute)?;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        out.push((
            r.long("session id").map_err(jute)?,
            r.int("session timeout").map_err(jute)?,
        ));
    }
    Ok(out)
}

fn read_acl_cache(r: &mut JuteReader) -> Result<BTreeMap<i64, Vec<AclEntry>>, String> {
    let n = r.count("acl cache").map_err(jute)?;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let key = r.long("acl key").map_err(jute)?;
        let acl = read_acl(r).map_err(jute)?;
        if out.insert(key, acl).is_some() {
            return Err(format!("ACL cache holds key {key} twice"));
        }
    }
    Ok(out)
}

fn read_nodes(r: &mut JuteReader) -> Result<Vec<SnapNode>, String> {
    let mut out = Vec::new();
    loop {
        let path = r.string("path").map_err(jute)?;
        if path == "/" {
            return Ok(out);
        }
        let data = r.nullable_buffer("data").map_err(jute)?;
        let acl_key = r.long("acl").map_err(jute)?;
        let stat = StatPersisted::read(r).map_err(jute)?;
        let path = if path.is_empty() { "/".into() } else { path };
        out.push(SnapNode {
            path,
            data,
            acl_key,
            stat,
        });
    }
}

fn read_digest(r: &mut JuteReader) -> Result<SnapDigest, String> {
    let zxid = r.long("digest zxid").map_err(jute)?;
    let version = r.int("digest version").map_err(jute)?;
    let value = if version < 2 {
        let hex = r.string("digest").map_err(jute)?;
        i64::from_str_radix(&hex, 16).unwrap_or(0)
    } else {
        r.long("digest").map_err(jute)?
    };
    Ok(SnapDigest {
        zxid,
        version,
        value,
    })
}

/// A seal: the Adler-32 of every byte before it, then the string `/`.
fn check_seal(bytes: &[u8], r: &mut JuteReader) -> Result<(), String> {
    let offset = bytes.len() - r.remaining();
    let expected = adler32(&bytes[..offset]);
    let stored = r.long("checksum").map_err(jute)?;
    let slash = r.string("seal").map_err(jute)?;
    if slash != "/" {
        return Err(format!("seal at offset {offset} is not followed by \"/\""));
    }
    if stored != i64::from(expected) {
        return Err(format!(
            "Adler-32 mismatch at offset {offset}: stored {stored:#x}, computed {expected:#x}"
        ));
    }
    Ok(())
}
