//! Apache ZooKeeper's persisted jute records: file header, znode metadata and txns.

use crate::data_tree::AclEntry;
use ensemble_messages::jute::{JuteError, JuteReader};
use ensemble_messages::zk::OpCode;

/// Header of every snapshot and log file: magic, format version, database id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// `ZKSN` or `ZKLG` as a big-endian int.
    pub magic: i32,
    /// Format version (2).
    pub version: i32,
    /// Database id (unused by Apache, 0 or -1).
    pub dbid: i64,
}

impl FileHeader {
    /// Reads the header and checks its magic and version.
    pub fn read(r: &mut JuteReader, magic: [u8; 4]) -> Result<FileHeader, String> {
        let h = FileHeader {
            magic: r.int("magic").map_err(jute)?,
            version: r.int("version").map_err(jute)?,
            dbid: r.long("dbid").map_err(jute)?,
        };
        if h.magic != i32::from_be_bytes(magic) {
            return Err(format!(
                "bad magic {:#010x}, expected {:?}",
                h.magic,
                String::from_utf8_lossy(&magic)
            ));
        }
        if h.version != 2 {
            return Err(format!("format version {}, expected 2", h.version));
        }
        Ok(h)
    }
}

/// Renders a jute error as a one-line message.
pub fn jute(e: JuteError) -> String {
    e.to_string()
}

/// A znode's metadata as Apache stores it (cversion counts child creates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatPersisted {
    /// Zxid of the create.
    pub czxid: i64,
    /// Zxid of the last data change.
    pub mzxid: i64,
    /// Create time, ms.
    pub ctime: i64,
    /// Last data change time, ms.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child creates.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Session, container or TTL marker, or 0.
    pub ephemeral_owner: i64,
    /// Zxid of the last change of the children.
    pub pzxid: i64,
}

impl StatPersisted {
    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> Result<StatPersisted, JuteError> {
        Ok(StatPersisted {
            czxid: r.long("czxid")?,
            mzxid: r.long("mzxid")?,
            ctime: r.long("ctime")?,
            mtime: r.long("mtime")?,
            version: r.int("version")?,
            cversion: r.int("cversion")?,
            aversion: r.int("aversion")?,
            ephemeral_owner: r.long("ephemeralOwner")?,
            pzxid: r.long("pzxid")?,
        })
    }
}

/// An ACL vector.
pub fn read_acl(r: &mut JuteReader) -> Result<Vec<AclEntry>, JuteError> {
    let n = r.count("acl")?;
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        out.push(AclEntry {
            perms: r.int("perms")?,
            scheme: r.string("scheme")?,
            id: r.string("id")?,
        });
    }
    Ok(out)
}

/// The header of a logged txn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnHeader {
    /// Session that sent the request.
    pub client_id: i64,
    /// The request's xid.
    pub cxid: i32,
    /// Position in the total order.
    pub zxid: i64,
    /// Leader's clock when proposed, ms.
    pub time: i64,
    /// Op code.
    pub kind: i32,
}

/// A create of any kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTxn {
    /// Path (sequence suffix included).
    pub path: String,
    /// Content (`None`: null).
    pub data: Option<Vec<u8>>,
    /// ACL.
    pub acl: Vec<AclEntry>,
    /// ephemeralOwner marker: 0, the session's id (filled in from the header), container, TTL.
    pub owner: CreateOwner,
    /// The parent's cversion after the create (-1: increment).
    pub parent_cversion: i32,
}

/// Who owns a created znode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOwner {
    /// A persistent znode.
    None,
    /// An ephemeral of the txn's session.
    Session,
    /// A container.
    Container,
    /// A TTL znode.
    Ttl(i64),
}

/// The body of a logged txn (or of one op of a multi).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnBody {
    /// A session opens.
    CreateSession { timeout_ms: i32 },
    /// A session closes; the paths to delete when the server logged them.
    CloseSession { paths: Option<Vec<String>> },
    /// A znode is created.
    Create(CreateTxn),
    /// A znode is deleted.
    Delete { path: String },
    /// Data (or, for reconfig, the config node) is set; `version` is the new version.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// An ACL is set; `version` is the new aversion.
    SetAcl {
        path: String,
        acl: Vec<AclEntry>,
        version: i32,
    },
    /// A version check inside a multi.
    Check { path: String, version: i32 },
    /// A failed request.
    Error { err: i32 },
    /// A multi's ops.
    Multi(Vec<(i32, TxnBody)>),
}

/// One logged txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedTxn {
    /// Its header.
    pub header: TxnHeader,
    /// Its body.
    pub body: TxnBody,
    /// The tree digest logged after it (version, value), when present.
    pub digest: Option<(i32, i64)>,
}

impl LoggedTxn {
    /// Parses the bytes of one log record.
    pub fn parse(bytes: &[u8]) -> Result<LoggedTxn, String> {
        let mut r = JuteReader::new(bytes);
        let header = TxnHeader {
            client_id: r.long("clientId").map_err(jute)?,
            cxid: r.int("cxid").map_err(jute)?,
            zxid: r.long("zxid").map_err(jute)?,
            time: r.long("time").map_err(jute)?,
            kind: r.int("type").map_err(jute)?,
        };
        let body = if header.kind == OpCode::CloseSession.code() && r.remaining() == 0 {
            TxnBody::CloseSession { paths: None }
        } else {
            read_body(&mut r, header.kind, true)?
        };
        let digest = if r.remaining() >= 12 {
            Some((
                r.int("digest").map_err(jute)?,
                r.long("digest").map_err(jute)?,
            ))
        } else {
            None
        };
        if r.remaining() != 0 {
            return Err(format!(
                "txn {:#x}: {} unexpected bytes after the record",
                header.zxid,
                r.remaining()
            ));
        }
        Ok(LoggedTxn {
            header,
            body,
            digest,
        })
    }
}

/// Reads the body of a txn of type `kind`; a multi's ops cannot be multis themselves.
fn read_body(r: &mut JuteReader, kind: i32, top: bool) -> Result<TxnBody, String> {
    let body = match OpCode::known(kind) {
        Some(OpCode::CreateSession) if top => TxnBody::CreateSession {
            timeout_ms: r.int("timeOut").map_err(jute)?,
        },
        Some(OpCode::CloseSession) if top => TxnBody::CloseSession {
            paths: Some(read_strings(r).map_err(jute)?),
        },
        Some(OpCode::Create | OpCode::Create2) => {
            read_create(r, CreateOwner::None).map_err(jute)?
        }
        Some(OpCode::CreateContainer) => read_create(r, CreateOwner::Container).map_err(jute)?,
        Some(OpCode::CreateTtl) => read_create(r, CreateOwner::Ttl(0)).map_err(jute)?,
        Some(OpCode::Delete | OpCode::DeleteContainer) => TxnBody::Delete {
            path: r.string("path").map_err(jute)?,
        },
        Some(OpCode::SetData | OpCode::Reconfig) => TxnBody::SetData {
            path: r.string("path").map_err(jute)?,
            data: r.nullable_buffer("data").map_err(jute)?,
            version: r.int("version").map_err(jute)?,
        },
        Some(OpCode::SetAcl) if top => TxnBody::SetAcl {
            path: r.string("path").map_err(jute)?,
            acl: read_acl(r).map_err(jute)?,
            version: r.int("version").map_err(jute)?,
        },
        Some(OpCode::Check) => TxnBody::Check {
            path: r.string("path").map_err(jute)?,
            version: r.int("version").map_err(jute)?,
        },
        Some(OpCode::Error) => TxnBody::Error {
            err: r.int("err").map_err(jute)?,
        },
        Some(OpCode::Multi) if top => read_multi(r)?,
        _ => return Err(format!("unknown txn type {kind}")),
    };
    Ok(body)
}

fn read_multi(r: &mut JuteReader) -> Result<TxnBody, String> {
    let n = r.count("txns").map_err(jute)?;
    let mut ops = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let kind = r.int("type").map_err(jute)?;
        let data = r.buffer("data").map_err(jute)?;
        let mut sub = JuteReader::new(&data);
        let body = read_body(&mut sub, kind, false)?;
        ops.push((kind, body));
    }
    Ok(TxnBody::Multi(ops))
}

/// CreateTxn (with `ephemeral`), CreateContainerTxn or CreateTTLTxn (with `ttl`).
fn read_create(r: &mut JuteReader, owner: CreateOwner) -> Result<TxnBody, JuteError> {
    let path = r.string("path")?;
    let data = r.nullable_buffer("data")?;
    let acl = read_acl(r)?;
    let owner = match owner {
        CreateOwner::None if r.boolean("ephemeral")? => CreateOwner::Session,
        other => other,
    };
    let parent_cversion = r.int("parentCVersion")?;
    let owner = match owner {
        CreateOwner::Ttl(_) => CreateOwner::Ttl(r.long("ttl")?),
        other => other,
    };
    Ok(TxnBody::Create(CreateTxn {
        path,
        data,
        acl,
        owner,
        parent_cversion,
    }))
}

fn read_strings(r: &mut JuteReader) -> Result<Vec<String>, JuteError> {
    let n = r.count("paths2Delete")?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(r.string("path")?);
    }
    Ok(out)
}
