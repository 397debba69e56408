//! Format 5, the image a snapshot file holds: format 4's content (the znodes parents first,
//! each ACL numbered where a znode first holds it, then the sessions) with each znode written
//! against the one before it, as a walk in path order meets them. Siblings follow each other
//! and were often created together, so most of a path and of a Stat repeats: at a million
//! znodes of 100 bytes the image is about a third smaller than format 4's 177 MB, and a
//! snapshot has that much less to copy, checksum and send to the disk.
//!
//! Integers are bincode's varints (zigzag for the signed ones); `Δ` is a wrapping difference.
//!
//! ```text
//! image:  `ENT5`, last applied zxid, znode count, znodes, sessions (bincode)
//! znode:  flags, bytes shared with the previous path, the rest of the path (length, bytes),
//!         data (length, bytes), [ACL], czxid Δ previous czxid, mzxid Δ czxid,
//!         ctime Δ previous ctime, mtime Δ ctime, version, cversion, aversion,
//!         ephemeral owner, pzxid Δ czxid
//! flags:  1 = the data is null, 2 = the previous znode's ACL (no ACL field follows)
//! ACL:    0, number (an ACL met before) | 1, the ACL in bincode (it takes the next number)
//! ```
//!
//! The data length and the child count are left out: the tree derives both. Reading checks
//! every length against the bytes left before it allocates, and builds the tree as format 4's
//! reader does (see [`super::image`]).

use super::bincode_out::{put_bytes, put_i32, put_i64, put_u64};
use super::image::{AclRef, Acls, NodesIn, ACL_KNOWN, ACL_NEW};
use super::image_out::address;
use super::image_reader::Reader;
use super::node_key::NodeKey;
use super::store;
use super::{AclEntry, DataTree, NodeStat, SessionEntry, Znode};
use ensemble_messages::codec;
use ensemble_messages::zk::SessionId;
use ensemble_messages::Zxid;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

/// First bytes of an image of format 5.
pub(super) const TAG_5: [u8; 4] = *b"ENT5";
/// Flag: the znode's data is null.
const NULL_DATA: u8 = 1;
/// Flag: the znode holds the previous znode's ACL, and no ACL field follows.
const SAME_ACL: u8 = 2;

/// Appends the start of an image of format 5, before its `count` znodes.
pub(super) fn put_head(buf: &mut Vec<u8>, last_applied: Zxid, count: usize) {
    buf.extend_from_slice(&TAG_5);
    put_u64(buf, last_applied.0);
    put_u64(buf, count as u64);
}

/// Writes znodes one after the other, each against the one before it.
#[derive(Default)]
pub(super) struct ZnodesOut {
    /// The previous znode's path (the next one's is built in `path`, then swapped in).
    previous: Vec<u8>,
    path: Vec<u8>,
    czxid: i64,
    ctime: i64,
    /// The address of the previous znode's shared ACL.
    acl: Option<usize>,
    /// Numbers of the ACLs written, by the address of their shared copy (the tree being
    /// written keeps it alive).
    numbers: HashMap<usize, u32>,
}

impl ZnodesOut {
    /// Appends the znode `n`, whose key is `key`.
    pub(super) fn put(&mut self, key: &NodeKey, n: &Znode, buf: &mut Vec<u8>) {
        store::path_into(key, &mut self.path);
        let acl = address(&n.acl);
        let same_acl = self.acl == Some(acl);
        buf.push(u8::from(n.is_null_data()) * NULL_DATA + u8::from(same_acl) * SAME_ACL);
        let shared = shared_len(&self.previous, &self.path);
        put_u64(buf, shared as u64);
        put_bytes(buf, &self.path[shared..]);
        put_bytes(buf, n.data());
        if !same_acl {
            self.put_acl(acl, &n.acl, buf);
        }
        put_stat(buf, &n.stat, self.czxid, self.ctime);
        std::mem::swap(&mut self.previous, &mut self.path);
        (self.czxid, self.ctime, self.acl) = (n.stat.czxid, n.stat.ctime, Some(acl));
    }

    /// Appends the ACL at address `at`: its number if written before, else the ACL.
    fn put_acl(&mut self, at: usize, acl: &[AclEntry], buf: &mut Vec<u8>) {
        let next = self.numbers.len() as u32;
        match self.numbers.entry(at) {
            Entry::Occupied(e) => {
                put_u64(buf, ACL_KNOWN);
                put_u64(buf, u64::from(*e.get()));
            }
            Entry::Vacant(e) => {
                e.insert(next);
                put_u64(buf, ACL_NEW);
                put_acl_entries(buf, acl);
            }
        }
    }
}

/// Appends `acl` as bincode writes a `Vec<AclEntry>`.
fn put_acl_entries(buf: &mut Vec<u8>, acl: &[AclEntry]) {
    put_u64(buf, acl.len() as u64);
    for e in acl {
        put_i32(buf, e.perms);
        put_bytes(buf, e.scheme.as_bytes());
        put_bytes(buf, e.id.as_bytes());
    }
}

/// Appends the Stat `s`, against the previous znode's czxid and ctime.
fn put_stat(buf: &mut Vec<u8>, s: &NodeStat, czxid: i64, ctime: i64) {
    put_i64(buf, s.czxid.wrapping_sub(czxid));
    put_i64(buf, s.mzxid.wrapping_sub(s.czxid));
    put_i64(buf, s.ctime.wrapping_sub(ctime));
    put_i64(buf, s.mtime.wrapping_sub(s.ctime));
    put_i32(buf, s.version);
    put_i32(buf, s.cversion);
    put_i32(buf, s.aversion);
    put_i64(buf, s.ephemeral_owner);
    put_i64(buf, s.pzxid.wrapping_sub(s.czxid));
}

/// How many bytes `a` and `b` start with in common.
fn shared_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Rebuilds a tree from an image of format 5, the `len` bytes `source` streams.
pub(super) fn read(source: &mut dyn Read, len: u64) -> Result<DataTree, String> {
    let mut r = Reader::new(source, len);
    if r.take(TAG_5.len())? != TAG_5 {
        return Err("not a data tree image of format 5".into());
    }
    let last_applied = Zxid(r.u64()?);
    let count = r.u64()?;
    let mut nodes = NodesIn::default();
    let mut znodes = ZnodesIn::default();
    for _ in 0..count {
        let flags = r.u8()?;
        let (path, node) = znodes.read(flags, &mut r)?;
        nodes
            .add(path, node)
            .map_err(|e| format!("znode {path:?}: {e}"))?;
    }
    let nodes = nodes.finish()?;
    let sessions: Vec<(SessionId, SessionEntry)> =
        codec::decode(r.rest()?).map_err(|e| format!("its sessions: {e}"))?;
    Ok(DataTree::assemble(
        nodes,
        znodes.acls,
        sessions,
        last_applied,
    ))
}

/// Reads znodes one after the other, each against the one before it.
#[derive(Default)]
pub(super) struct ZnodesIn {
    pub(super) acls: Acls,
    path: Vec<u8>,
    czxid: i64,
    ctime: i64,
    acl: Option<Arc<[AclEntry]>>,
}

impl ZnodesIn {
    /// A reader numbering ACLs through `acls`.
    pub(super) fn with_acls(acls: Acls) -> Self {
        ZnodesIn {
            acls,
            ..ZnodesIn::default()
        }
    }

    /// Reads the znode whose `flags` were just read from `r`: its path and the znode.
    pub(super) fn read(&mut self, flags: u8, r: &mut Reader) -> Result<(&str, Znode), String> {
        if flags & !(NULL_DATA | SAME_ACL) != 0 {
            return Err(format!("a znode's flags hold unknown bits ({flags:#x})"));
        }
        let shared = r.u64()?;
        if shared > self.path.len() as u64 {
            return Err(format!(
                "a znode shares {shared} bytes of a path of {}",
                self.path.len()
            ));
        }
        self.path.truncate(shared as usize);
        let rest = r.bytes()?;
        self.path.extend_from_slice(rest);
        let path = std::str::from_utf8(&self.path).map_err(|_| "a path is not UTF-8")?;
        let fail = |why: &str| format!("znode {path:?}: {why}");
        let data = r.bytes()?.to_vec();
        let acl = if flags & SAME_ACL != 0 {
            self.acl.clone()
        } else {
            let acl = read_acl(r)?;
            self.acls.resolve(acl)
        };
        let acl = acl.ok_or_else(|| fail("no such ACL"))?;
        let stat = read_stat(r, self.czxid, self.ctime)?;
        let node = Znode::new(data, Arc::clone(&acl), stat).with_null_data(flags & NULL_DATA != 0);
        (self.czxid, self.ctime, self.acl) = (stat.czxid, stat.ctime, Some(acl));
        Ok((path, node))
    }
}

/// Reads a znode's ACL field.
fn read_acl(r: &mut Reader) -> Result<AclRef, String> {
    match r.u64()? {
        ACL_KNOWN => Ok(AclRef::Known(r.u32()?)),
        ACL_NEW => {
            let count = r.u64()?;
            let mut acl = Vec::new();
            for _ in 0..count {
                let perms = r.i32()?;
                let scheme = r.string()?;
                let id = r.string()?;
                acl.push(AclEntry { perms, scheme, id });
            }
            Ok(AclRef::New(acl))
        }
        other => Err(format!("an ACL field of unknown kind {other}")),
    }
}

/// Reads a Stat written against the previous znode's czxid and ctime.
fn read_stat(r: &mut Reader, czxid: i64, ctime: i64) -> Result<NodeStat, String> {
    let czxid = czxid.wrapping_add(r.i64()?);
    let mzxid = czxid.wrapping_add(r.i64()?);
    let ctime = ctime.wrapping_add(r.i64()?);
    let mtime = ctime.wrapping_add(r.i64()?);
    Ok(NodeStat {
        czxid,
        mzxid,
        ctime,
        mtime,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        pzxid: czxid.wrapping_add(r.i64()?),
        ..NodeStat::default()
    })
}
