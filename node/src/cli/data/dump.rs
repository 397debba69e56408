//! `ensemble data dump`: every record of a snapshot or log file as text or JSON.

use base64::Engine;
use ensemble_actors::apache::{self, LoggedTxn, StatPersisted, TxnBody};
use ensemble_actors::data_tree::{DataTree, DeltaContent, NodeStat, TreeTxn, Znode};
use ensemble_actors::storage::inspect;
use ensemble_messages::codec;
use serde_json::{json, Map, Value};
use std::path::Path;

pub(super) fn run(path: &Path, as_json: bool) -> Result<i32, Box<dyn std::error::Error>> {
    let files = super::data_files(path)?;
    if files.is_empty() {
        return Err(format!("{}: no snapshot or log files", path.display()).into());
    }
    let mut docs = Vec::new();
    let mut failed = false;
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| format!("reading {}: {e}", f.display()))?;
        let (kind, entries, problem) = dump_bytes(&bytes);
        failed |= problem.is_some();
        if as_json {
            docs.push(json!({"file": f.display().to_string(), "kind": kind,
                "entries": entries, "problem": problem}));
        } else {
            println!("# {} ({kind})", f.display());
            for e in &entries {
                println!("{}", one_line(e));
            }
            if let Some(p) = problem {
                println!("! {p}");
            }
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
    }
    Ok(i32::from(failed))
}

/// The kind of file, its entries, and what stopped the reading (if anything).
fn dump_bytes(bytes: &[u8]) -> (&'static str, Vec<Value>, Option<String>) {
    match bytes.get(..4) {
        Some(b"ZKSN") => match apache::parse_snapshot(bytes) {
            Ok(s) => ("apache snapshot", apache_snapshot(&s), None),
            Err(e) => ("apache snapshot", Vec::new(), Some(e)),
        },
        Some(b"ZKLG") => match apache::parse_log(bytes) {
            Ok(log) => {
                let entries = log.records.iter().map(|r| apache_txn(&r.txn)).collect();
                let problem = match log.end {
                    apache::LogEnd::Clean(_) => None,
                    apache::LogEnd::Torn(offset, why) => {
                        Some(format!("torn record at offset {offset}: {why}"))
                    }
                };
                ("apache log", entries, problem)
            }
            Err(e) => ("apache log", Vec::new(), Some(e)),
        },
        _ => match inspect::kind_of(bytes) {
            Some(true) => match inspect::read_snapshot(bytes) {
                Ok((s, None)) => ("ensemble snapshot", ensemble_snapshot(&s), None),
                Ok((s, Some(_))) => match DeltaContent::read(&s.state) {
                    Ok(d) => ("ensemble incremental snapshot", ensemble_delta(&d), None),
                    Err(e) => ("ensemble incremental snapshot", Vec::new(), Some(e)),
                },
                Err(e) => ("ensemble snapshot", Vec::new(), Some(e)),
            },
            Some(false) => {
                let log = inspect::read_log(bytes);
                let entries = log.txns.iter().map(|(_, t)| ensemble_txn(t)).collect();
                ("ensemble log", entries, log.problem)
            }
            None => (
                "unknown",
                Vec::new(),
                Some("not a snapshot or log file".into()),
            ),
        },
    }
}

/// Keys printed first, in this order, when present.
const FIRST: [&str; 6] = ["zxid", "type", "session", "path", "last_zxid", "base"];

/// An object as `key=value` pairs on one line (nested values as compact JSON).
fn one_line(v: &Value) -> String {
    match v {
        Value::Object(m) => FIRST
            .iter()
            .filter_map(|k| m.get_key_value(*k))
            .chain(m.iter().filter(|(k, _)| !FIRST.contains(&k.as_str())))
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s:?}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn hex(v: i64) -> String {
    format!("{v:#x}")
}

/// Data as UTF-8 text when it is, as base64 otherwise.
/// Puts the data under `data` (JSON null when the data is null), or, when it is not UTF-8,
/// under `data_base64`.
fn data(m: &mut Map<String, Value>, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else {
        m.insert("data".into(), Value::Null);
        return;
    };
    match std::str::from_utf8(bytes) {
        Ok(s) => m.insert("data".into(), s.into()),
        Err(_) => m.insert(
            "data_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        ),
    };
}

fn stat(s: &StatPersisted) -> Value {
    json!({"czxid": hex(s.czxid), "mzxid": hex(s.mzxid), "pzxid": hex(s.pzxid),
        "ctime": s.ctime, "mtime": s.mtime, "version": s.version, "cversion": s.cversion,
        "aversion": s.aversion, "ephemeralOwner": hex(s.ephemeral_owner)})
}

fn apache_snapshot(s: &apache::ApacheSnapshot) -> Vec<Value> {
    let mut out = vec![json!({"dbid": s.header.dbid, "sessions": s.sessions.len(),
        "acls": s.acls.len(), "znodes": s.nodes.len(),
        "digest": s.digest.map(|d| json!({"zxid": hex(d.zxid), "version": d.version,
            "value": d.value}))})];
    out.extend(
        s.sessions
            .iter()
            .map(|(id, t)| json!({"session": hex(*id), "timeout": t})),
    );
    out.extend(
        s.acls
            .iter()
            .map(|(k, acl)| json!({"acl_key": k, "acl": acl})),
    );
    for n in &s.nodes {
        let mut m = Map::new();
        m.insert("path".into(), n.path.clone().into());
        data(&mut m, n.data.as_deref());
        m.insert("acl_key".into(), n.acl_key.into());
        m.insert("stat".into(), stat(&n.stat));
        out.push(Value::Object(m));
    }
    out
}

fn apache_txn(t: &LoggedTxn) -> Value {
    let h = &t.header;
    let mut m = Map::new();
    m.insert("zxid".into(), hex(h.zxid).into());
    m.insert("time".into(), h.time.into());
    m.insert("session".into(), hex(h.client_id).into());
    m.insert("cxid".into(), h.cxid.into());
    body(&mut m, h.kind, &t.body);
    if let Some((version, digest)) = t.digest {
        m.insert("digest".into(), json!([version, digest]));
    }
    Value::Object(m)
}

fn op_name(kind: i32) -> String {
    let name = match kind {
        -10 => "createSession",
        -11 => "closeSession",
        -1 => "error",
        1 => "create",
        2 => "delete",
        5 => "setData",
        7 => "setACL",
        13 => "check",
        14 => "multi",
        15 => "create2",
        16 => "reconfig",
        19 => "createContainer",
        20 => "deleteContainer",
        21 => "createTTL",
        other => return format!("type{other}"),
    };
    name.into()
}

fn body(m: &mut Map<String, Value>, kind: i32, b: &TxnBody) {
    m.insert("type".into(), op_name(kind).into());
    match b {
        TxnBody::CreateSession { timeout_ms } => {
            m.insert("timeout".into(), (*timeout_ms).into());
        }
        TxnBody::CloseSession { paths } => {
            m.insert("paths".into(), json!(paths));
        }
        TxnBody::Create(c) => {
            m.insert("path".into(), c.path.clone().into());
            data(m, c.data.as_deref());
            m.insert("acl".into(), json!(c.acl));
            m.insert("owner".into(), format!("{:?}", c.owner).into());
            m.insert("parentCVersion".into(), c.parent_cversion.into());
        }
        TxnBody::Delete { path } => {
            m.insert("path".into(), path.clone().into());
        }
        TxnBody::SetData {
            path,
            data: d,
            version,
        } => {
            m.insert("path".into(), path.clone().into());
            data(m, d.as_deref());
            m.insert("version".into(), (*version).into());
        }
        TxnBody::SetAcl { path, acl, version } => {
            m.insert("path".into(), path.clone().into());
            m.insert("acl".into(), json!(acl));
            m.insert("version".into(), (*version).into());
        }
        TxnBody::Check { path, version } => {
            m.insert("path".into(), path.clone().into());
            m.insert("version".into(), (*version).into());
        }
        TxnBody::Error { err } => {
            m.insert("err".into(), (*err).into());
        }
        TxnBody::Multi(ops) => {
            let ops: Vec<Value> = ops
                .iter()
                .map(|(k, b)| {
                    let mut sub = Map::new();
                    body(&mut sub, *k, b);
                    Value::Object(sub)
                })
                .collect();
            m.insert("ops".into(), ops.into());
        }
    }
}

fn ensemble_txn(t: &ensemble_messages::Txn) -> Value {
    let op = match codec::decode::<TreeTxn>(&t.body) {
        Ok(tt) => serde_json::to_value(&tt).unwrap_or(Value::Null),
        Err(e) => format!("undecodable: {e}").into(),
    };
    json!({"zxid": format!("{:#x}", t.zxid.0), "origin": t.origin,
        "request_id": t.request_id, "txn": op})
}

/// An incremental snapshot: its zxids and counts, its sessions, the znodes written since its
/// base (child counts are not in it: applying recounts them), then the removed paths.
fn ensemble_delta(d: &DeltaContent) -> Vec<Value> {
    let mut out = vec![json!({"last_zxid": format!("{:#x}", d.last_applied.0),
        "base": format!("{:#x}", d.base.0), "changed": d.changed.len(),
        "removed": d.removed.len(), "sessions": d.sessions.len()})];
    out.extend(
        d.sessions
            .iter()
            .map(|(id, s)| json!({"session": id.to_string(), "timeout": s.timeout_ms})),
    );
    out.extend(
        d.changed
            .iter()
            .map(|(path, node)| znode(path, node, node.stat)),
    );
    out.extend(d.removed.iter().map(|p| json!({"removed": p})));
    out
}

/// A znode of an ensemble snapshot: its path, data, ACL and `stat`.
fn znode(path: &str, node: &Znode, stat: NodeStat) -> Value {
    let mut m = Map::new();
    m.insert("path".into(), path.into());
    data(&mut m, node.nullable_data());
    m.insert("acl".into(), json!(node.acl));
    m.insert(
        "stat".into(),
        serde_json::to_value(stat).unwrap_or(Value::Null),
    );
    Value::Object(m)
}

fn ensemble_snapshot(s: &ensemble_messages::Snapshot) -> Vec<Value> {
    let tree = match DataTree::deserialize(&s.state) {
        Ok(t) => t,
        Err(e) => return vec![json!({"last_zxid": format!("{:#x}", s.last_zxid.0), "error": e})],
    };
    let mut out = vec![json!({"last_zxid": format!("{:#x}", s.last_zxid.0),
        "znodes": tree.node_count(), "sessions": tree.sessions().count()})];
    out.extend(
        tree.sessions()
            .map(|(id, t)| json!({"session": id.to_string(), "timeout": t})),
    );
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (Some(node), Some(st)) = (tree.get(&path), tree.stat(&path)) else {
            continue;
        };
        out.push(znode(&path, node, st));
        for c in tree.children(&path).unwrap_or_default().into_iter().rev() {
            todo.push(if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            });
        }
    }
    out
}
