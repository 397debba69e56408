//! Tree reads as pure functions of a tree version: the request pipeline and the connection
//! threads (see [`super::direct`]) answer them with the same code.

use super::service::to_stat;
use crate::data_tree::{masked, permits, AclEntry, DataTree, PermissionMemo, Znode};
use crate::sessions::WatchKind;
use ensemble_messages::jute::*;
use ensemble_messages::zk::{perm, OpCode, SessionId, ZkError, OK};

/// The answer to a tree read: its outcome, its body (empty on error) and the watches it
/// asks to set, which the caller registers against the same tree version.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadAnswer {
    /// Success or the read's error.
    pub outcome: Result<(), ZkError>,
    /// The reply record after the header.
    pub body: Vec<u8>,
    /// Watches to register for the calling session.
    pub watches: Vec<(WatchKind, String)>,
}

impl ReadAnswer {
    fn ok(body: Vec<u8>) -> Self {
        ReadAnswer {
            outcome: Ok(()),
            body,
            watches: Vec::new(),
        }
    }

    fn fail(err: ZkError) -> Self {
        ReadAnswer {
            outcome: Err(err),
            body: Vec::new(),
            watches: Vec::new(),
        }
    }

    fn watching(mut self, watch: bool, kind: WatchKind, path: &str) -> Self {
        if watch {
            self.watches.push((kind, path.to_string()));
        }
        self
    }
}

/// Whether `code` is a read [`tree_read`] answers.
pub fn is_tree_read(code: OpCode) -> bool {
    matches!(
        code,
        OpCode::Exists
            | OpCode::GetData
            | OpCode::GetChildren
            | OpCode::GetChildren2
            | OpCode::GetAcl
            | OpCode::GetEphemerals
            | OpCode::GetAllChildrenNumber
            | OpCode::MultiRead
    )
}

/// Answers exists, getData, getChildren(2), getACL, getEphemerals, getAllChildrenNumber and
/// multiRead from `tree` for `session` holding `auth`; None when `code` is none of them.
pub fn tree_read(
    tree: &DataTree,
    session: SessionId,
    auth: &[(String, String)],
    code: OpCode,
    body: &[u8],
) -> Option<ReadAnswer> {
    let answer = match code {
        OpCode::Exists => parsed(PathWatchRequest::from_bytes(body), |r| exists(tree, r)),
        OpCode::GetData => parsed(PathWatchRequest::from_bytes(body), |r| {
            get_data(tree, auth, r)
        }),
        OpCode::GetChildren | OpCode::GetChildren2 => {
            parsed(PathWatchRequest::from_bytes(body), |r| {
                get_children(tree, auth, r, code == OpCode::GetChildren2)
            })
        }
        OpCode::GetAcl => parsed(PathRequest::from_bytes(body), |r| get_acl(tree, auth, r)),
        OpCode::GetEphemerals => parsed(PathRequest::from_bytes(body), |r| {
            let children = tree.ephemerals_with_prefix(session, &r.path);
            ReadAnswer::ok(GetChildrenResponse { children }.to_bytes())
        }),
        OpCode::GetAllChildrenNumber => parsed(PathRequest::from_bytes(body), |r| {
            all_children_number(tree, auth, r)
        }),
        OpCode::MultiRead => multi_read(tree, auth, body),
        _ => return None,
    };
    Some(answer)
}

/// MarshallingError when the request record does not decode.
fn parsed<T, E>(r: Result<T, E>, f: impl FnOnce(T) -> ReadAnswer) -> ReadAnswer {
    r.map_or_else(|_| ReadAnswer::fail(ZkError::MarshallingError), f)
}

/// Whether `auth` may read `path` (a missing znode is for the read itself to report).
fn can_read(tree: &DataTree, auth: &[(String, String)], path: &str) -> bool {
    tree.get(path)
        .is_none_or(|n| permits(&n.acl, perm::READ, auth))
}

fn exists(tree: &DataTree, r: PathWatchRequest) -> ReadAnswer {
    match tree.stat(&r.path) {
        Some(s) => ReadAnswer::ok(StatResponse { stat: to_stat(&s) }.to_bytes()).watching(
            r.watch,
            WatchKind::Data,
            &r.path,
        ),
        None => ReadAnswer::fail(ZkError::NoNode).watching(r.watch, WatchKind::Exist, &r.path),
    }
}

/// A znode's data as a reply carries it: null stays null.
fn wire_data(n: &Znode) -> NullableBuffer {
    NullableBuffer(n.nullable_data().map(<[u8]>::to_vec))
}

fn get_data(tree: &DataTree, auth: &[(String, String)], r: PathWatchRequest) -> ReadAnswer {
    if !can_read(tree, auth, &r.path) {
        return ReadAnswer::fail(ZkError::NoAuth);
    }
    match (tree.get(&r.path), tree.stat(&r.path)) {
        (Some(n), Some(s)) => ReadAnswer::ok(
            GetDataResponse {
                data: wire_data(n),
                stat: to_stat(&s),
            }
            .to_bytes(),
        )
        .watching(r.watch, WatchKind::Data, &r.path),
        _ => ReadAnswer::fail(ZkError::NoNode),
    }
}

fn get_children(
    tree: &DataTree,
    auth: &[(String, String)],
    r: PathWatchRequest,
    with_stat: bool,
) -> ReadAnswer {
    if !can_read(tree, auth, &r.path) {
        return ReadAnswer::fail(ZkError::NoAuth);
    }
    match (tree.children(&r.path), tree.stat(&r.path)) {
        (Some(children), Some(s)) => {
            let body = if with_stat {
                GetChildren2Response {
                    children,
                    stat: to_stat(&s),
                }
                .to_bytes()
            } else {
                GetChildrenResponse { children }.to_bytes()
            };
            ReadAnswer::ok(body).watching(r.watch, WatchKind::Child, &r.path)
        }
        _ => ReadAnswer::fail(ZkError::NoNode),
    }
}

fn get_acl(tree: &DataTree, auth: &[(String, String)], r: PathRequest) -> ReadAnswer {
    match (tree.get(&r.path), tree.stat(&r.path)) {
        (Some(n), Some(s)) => match acl_view(&n.acl, auth) {
            Some(acl) => ReadAnswer::ok(
                GetAclResponse {
                    acl: from_acl(&acl),
                    stat: to_stat(&s),
                }
                .to_bytes(),
            ),
            None => ReadAnswer::fail(ZkError::NoAuth),
        },
        _ => ReadAnswer::fail(ZkError::NoNode),
    }
}

fn all_children_number(tree: &DataTree, auth: &[(String, String)], r: PathRequest) -> ReadAnswer {
    if !can_read(tree, auth, &r.path) {
        return ReadAnswer::fail(ZkError::NoAuth);
    }
    match tree.get(&r.path) {
        None => ReadAnswer::fail(ZkError::NoNode),
        Some(_) => ReadAnswer::ok(
            IntResponse {
                number: i32::try_from(tree.descendant_count(&r.path)).unwrap_or(i32::MAX),
            }
            .to_bytes(),
        ),
    }
}

/// multiRead: getData and getChildren sub-ops, each answered on its own (a failure does not
/// abort the others); MarshallingError when the record does not decode.
fn multi_read(tree: &DataTree, auth: &[(String, String)], body: &[u8]) -> ReadAnswer {
    let mut r = JuteReader::new(body);
    let mut w = JuteWriter::default();
    let mut watches = Vec::new();
    // Thousands of sub-ops may name znodes with one large ACL: it is read once.
    let mut memo = PermissionMemo::default();
    loop {
        let Ok(h) = MultiHeader::read(&mut r, "multiRead header") else {
            return ReadAnswer::fail(ZkError::MarshallingError);
        };
        if h.done {
            break;
        }
        let Ok(req) = PathWatchRequest::read(&mut r, "multiRead op") else {
            return ReadAnswer::fail(ZkError::MarshallingError);
        };
        let readable = tree
            .get(&req.path)
            .map(|n| memo.permits(&n.acl, perm::READ, auth));
        match (OpCode::known(h.op), readable, tree.stat(&req.path)) {
            (_, Some(false), _) => sub_error(&mut w, ZkError::NoAuth),
            (Some(OpCode::GetData), Some(true), Some(s)) => {
                if req.watch {
                    watches.push((WatchKind::Data, req.path.clone()));
                }
                sub_header(&mut w, OpCode::GetData);
                let data = tree.get(&req.path).map(wire_data);
                GetDataResponse {
                    data: data.unwrap_or_default(),
                    stat: to_stat(&s),
                }
                .write(&mut w);
            }
            (Some(OpCode::GetChildren), Some(true), Some(_)) => {
                if req.watch {
                    watches.push((WatchKind::Child, req.path.clone()));
                }
                sub_header(&mut w, OpCode::GetChildren);
                GetChildrenResponse {
                    children: tree.children(&req.path).unwrap_or_default(),
                }
                .write(&mut w);
            }
            (Some(OpCode::GetData | OpCode::GetChildren), _, _) => {
                sub_error(&mut w, ZkError::NoNode)
            }
            _ => return ReadAnswer::fail(ZkError::MarshallingError),
        }
    }
    MultiHeader::END.write(&mut w);
    ReadAnswer {
        outcome: Ok(()),
        body: w.bytes,
        watches,
    }
}

fn sub_header(w: &mut JuteWriter, code: OpCode) {
    MultiHeader {
        op: code.code(),
        done: false,
        err: OK,
    }
    .write(w);
}

fn sub_error(w: &mut JuteWriter, e: ZkError) {
    MultiHeader {
        op: OpCode::Error.code(),
        done: false,
        err: e.code(),
    }
    .write(w);
    ErrorResponse { err: e.code() }.write(w);
}

fn from_acl(acl: &[AclEntry]) -> Vec<Acl> {
    acl.iter()
        .map(|a| Acl {
            perms: a.perms,
            id: Id {
                scheme: a.scheme.clone(),
                id: a.id.clone(),
            },
        })
        .collect()
}

/// What getACL shows a caller: the ACL to a caller with ADMIN, the ACL with digest hashes
/// masked to one with READ only, nothing (NoAuth) to anyone else, as ZooKeeper 3.8 does.
fn acl_view(acl: &[AclEntry], auth: &[(String, String)]) -> Option<Vec<AclEntry>> {
    if permits(acl, perm::ADMIN, auth) {
        Some(acl.to_vec())
    } else if permits(acl, perm::READ, auth) {
        Some(masked(acl))
    } else {
        None
    }
}
