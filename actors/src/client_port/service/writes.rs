//! Client write requests: parsing them into tree ops before they are proposed, and encoding
//! the reply of a committed one.

use super::{frame, to_stat};
use crate::data_tree::{AclEntry, CreateMode, OpResult, TreeOp};
use ensemble_messages::jute::*;
use ensemble_messages::zk::{OpCode, ZkError};

/// A parsed write: the tree op, the op codes of a multi's sub-ops, and the path (for sync).
pub(in crate::client_port) struct WriteRequest {
    pub(in crate::client_port) code: OpCode,
    pub(in crate::client_port) op: TreeOp,
    pub(in crate::client_port) sub_ops: Vec<OpCode>,
    pub(in crate::client_port) path: String,
}

/// Parses a write request; `None` when `code` is not a write.
pub(super) fn write_op(
    code: OpCode,
    body: &[u8],
    max_buffer: usize,
) -> Option<Result<WriteRequest, ZkError>> {
    let plain = |op: TreeOp, path: String| WriteRequest {
        code,
        op,
        sub_ops: Vec::new(),
        path,
    };
    let parsed = match code {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
            CreateRequest::from_bytes(body).map(|r| {
                let mode = if code == OpCode::CreateContainer {
                    Ok(CreateMode::Container)
                } else {
                    CreateMode::from_flags(r.flags, -1)
                };
                create_op(r.path.clone(), r.data, &r.acl, mode, max_buffer)
                    .map(|op| plain(op, r.path))
            })
        }
        OpCode::CreateTtl => CreateTtlRequest::from_bytes(body).map(|r| {
            let mode = CreateMode::from_flags(r.flags, r.ttl);
            create_op(r.path.clone(), r.data, &r.acl, mode, max_buffer).map(|op| plain(op, r.path))
        }),
        OpCode::Delete => DeleteRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Delete {
                    path: r.path.clone(),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::SetData => SetDataRequest::from_bytes(body).map(|r| {
            check_size(r.data.as_slice(), max_buffer)?;
            Ok(plain(
                TreeOp::set_data(r.path.clone(), r.data.0, r.version),
                r.path,
            ))
        }),
        OpCode::SetAcl => SetAclRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::SetAcl {
                    path: r.path.clone(),
                    acl: to_acl(&r.acl),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::Check => CheckVersionRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Check {
                    path: r.path.clone(),
                    version: r.version,
                },
                r.path,
            ))
        }),
        OpCode::Multi => Ok(
            parse_multi(body, max_buffer).map(|(op, sub_ops)| WriteRequest {
                code,
                op,
                sub_ops,
                path: String::new(),
            }),
        ),
        OpCode::CloseSession => Ok(Ok(plain(TreeOp::CloseSession, String::new()))),
        // sync: a committed no-op; once it is applied here, so is everything before it.
        OpCode::Sync => PathRequest::from_bytes(body).map(|r| {
            Ok(plain(
                TreeOp::Check {
                    path: "/".into(),
                    version: -1,
                },
                r.path,
            ))
        }),
        _ => return None,
    };
    Some(parsed.unwrap_or(Err(ZkError::MarshallingError)))
}

fn create_op(
    path: String,
    data: NullableBuffer,
    acl: &[Acl],
    mode: Result<CreateMode, ZkError>,
    max_buffer: usize,
) -> Result<TreeOp, ZkError> {
    let mode = mode?;
    let check = if mode.is_sequential() {
        format!("{path}0")
    } else {
        path.clone()
    };
    crate::data_tree::validate_path(&check).map_err(|_| ZkError::BadArguments)?;
    check_size(data.as_slice(), max_buffer)?;
    Ok(TreeOp::create(path, data.0, to_acl(acl), mode))
}

/// Data over jute.maxbuffer is refused with BadArguments, and logged.
fn check_size(data: &[u8], max_buffer: usize) -> Result<(), ZkError> {
    if data.len() > max_buffer {
        tracing::warn!(
            "refusing a write of {} bytes of data: over jute.maxbuffer ({max_buffer} bytes)",
            data.len()
        );
        return Err(ZkError::BadArguments);
    }
    Ok(())
}

fn parse_multi(body: &[u8], max_buffer: usize) -> Result<(TreeOp, Vec<OpCode>), ZkError> {
    let mut r = JuteReader::new(body);
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(&mut r, "multi header").map_err(|_| ZkError::MarshallingError)?;
        if h.done {
            break;
        }
        let code = OpCode::try_from(h.op).map_err(|_| ZkError::Unimplemented)?;
        let op = match code {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                let c = CreateRequest::read(&mut r, "multi create")
                    .map_err(|_| ZkError::MarshallingError)?;
                let mode = if code == OpCode::CreateContainer {
                    Ok(CreateMode::Container)
                } else {
                    CreateMode::from_flags(c.flags, -1)
                };
                create_op(c.path, c.data, &c.acl, mode, max_buffer)?
            }
            OpCode::CreateTtl => {
                let c = CreateTtlRequest::read(&mut r, "multi createTTL")
                    .map_err(|_| ZkError::MarshallingError)?;
                let mode = CreateMode::from_flags(c.flags, c.ttl);
                create_op(c.path, c.data, &c.acl, mode, max_buffer)?
            }
            OpCode::Delete => {
                let d = DeleteRequest::read(&mut r, "multi delete")
                    .map_err(|_| ZkError::MarshallingError)?;
                TreeOp::Delete {
                    path: d.path,
                    version: d.version,
                }
            }
            OpCode::SetData => {
                let s = SetDataRequest::read(&mut r, "multi setData")
                    .map_err(|_| ZkError::MarshallingError)?;
                check_size(s.data.as_slice(), max_buffer)?;
                TreeOp::set_data(s.path, s.data.0, s.version)
            }
            OpCode::Check => {
                let c = CheckVersionRequest::read(&mut r, "multi check")
                    .map_err(|_| ZkError::MarshallingError)?;
                TreeOp::Check {
                    path: c.path,
                    version: c.version,
                }
            }
            _ => return Err(ZkError::Unimplemented),
        };
        ops.push((code, op));
    }
    let codes = ops.iter().map(|(c, _)| *c).collect();
    Ok((
        TreeOp::Multi(ops.into_iter().map(|(_, o)| o).collect()),
        codes,
    ))
}

/// Encodes the reply of a committed write.
pub(super) fn write_reply(
    xid: i32,
    zxid: i64,
    request: &WriteRequest,
    result: &OpResult,
) -> Vec<u8> {
    let code = request.code;
    match result {
        OpResult::Error(e) => frame(xid, zxid, Err(*e), &[]),
        OpResult::Created { path, stat } => {
            if code == OpCode::Create {
                frame(
                    xid,
                    zxid,
                    Ok(()),
                    &CreateResponse { path: path.clone() }.to_bytes(),
                )
            } else {
                frame(
                    xid,
                    zxid,
                    Ok(()),
                    &Create2Response {
                        path: path.clone(),
                        stat: to_stat(stat),
                    }
                    .to_bytes(),
                )
            }
        }
        OpResult::DataSet { stat } | OpResult::AclSet { stat } => frame(
            xid,
            zxid,
            Ok(()),
            &StatResponse {
                stat: to_stat(stat),
            }
            .to_bytes(),
        ),
        OpResult::Checked if code == OpCode::Sync => frame(
            xid,
            zxid,
            Ok(()),
            &PathRequest {
                path: request.path.clone(),
            }
            .to_bytes(),
        ),
        OpResult::Multi(results) => {
            let mut w = JuteWriter::default();
            for (i, r) in results.iter().enumerate() {
                let sub = request.sub_ops.get(i).copied().unwrap_or(OpCode::Create2);
                let (t, e) = match r {
                    OpResult::Created { .. } if sub == OpCode::Create => (OpCode::Create, Ok(())),
                    OpResult::Created { .. } => (OpCode::Create2, Ok(())),
                    OpResult::Deleted => (OpCode::Delete, Ok(())),
                    OpResult::DataSet { .. } => (OpCode::SetData, Ok(())),
                    OpResult::Checked => (OpCode::Check, Ok(())),
                    OpResult::Error(e) => (OpCode::Error, Err(*e)),
                    OpResult::RolledBack => (OpCode::Error, Ok(())),
                    _ => (OpCode::Error, Err(ZkError::RuntimeInconsistency)),
                };
                let err = ZkError::to_wire(e);
                MultiHeader {
                    op: t.code(),
                    done: false,
                    err,
                }
                .write(&mut w);
                match r {
                    OpResult::Created { path, .. } if sub == OpCode::Create => {
                        CreateResponse { path: path.clone() }.write(&mut w)
                    }
                    OpResult::Created { path, stat } => Create2Response {
                        path: path.clone(),
                        stat: to_stat(stat),
                    }
                    .write(&mut w),
                    OpResult::DataSet { stat } => StatResponse {
                        stat: to_stat(stat),
                    }
                    .write(&mut w),
                    OpResult::Error(_) | OpResult::RolledBack => {
                        ErrorResponse { err }.write(&mut w)
                    }
                    _ => {}
                }
            }
            MultiHeader::END.write(&mut w);
            frame(xid, zxid, Ok(()), &w.bytes)
        }
        _ => frame(xid, zxid, Ok(()), &[]),
    }
}

fn to_acl(acl: &[Acl]) -> Vec<AclEntry> {
    acl.iter()
        .map(|a| AclEntry {
            perms: a.perms,
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        })
        .collect()
}
