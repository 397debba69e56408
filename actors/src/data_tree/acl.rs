//! ACL checks and validation: schemes world, auth, digest, ip and x509, and the super identity.

use super::AclEntry;
use ensemble_messages::zk::ZkError;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Whether `acl` grants `needed` to a caller with these identities. The `super` identity
/// (see the superDigest setting) passes every check.
pub fn permits(acl: &[AclEntry], needed: i32, auth: &[(String, String)]) -> bool {
    if auth.iter().any(|(s, _)| s == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & needed == needed
            && match a.scheme.as_str() {
                "world" => a.id == "anyone",
                "ip" => auth
                    .iter()
                    .any(|(s, id)| s == "ip" && ip_matches(&a.id, id)),
                scheme => auth.iter().any(|(s, id)| s == scheme && *id == a.id),
            }
    })
}

/// Permission checks already made for one caller, by ACL and permission. A multi checks the
/// same ACLs over and over (15,000 creates under one parent check its ACL 15,000 times), and a
/// change checks the ACL for each watcher's session; with this each distinct ACL is read once.
/// ACLs are shared lists, so one is known by its address; the memo holds the list, so the
/// address cannot be reused by another while it is remembered.
#[derive(Default)]
pub struct PermissionMemo {
    seen: HashMap<(usize, i32), Remembered>,
}

/// An ACL kept alive while remembered, and whether it granted the permission.
type Remembered = (Arc<[AclEntry]>, bool);

impl PermissionMemo {
    /// [`permits`], remembered. Every call to one memo must give the same identities.
    pub fn permits(
        &mut self,
        acl: &Arc<[AclEntry]>,
        needed: i32,
        auth: &[(String, String)],
    ) -> bool {
        let key = (Arc::as_ptr(acl).cast::<AclEntry>() as usize, needed);
        match self.seen.get(&key) {
            Some((held, ok)) if Arc::ptr_eq(held, acl) => *ok,
            _ => {
                let ok = permits(acl, needed, auth);
                self.seen.insert(key, (Arc::clone(acl), ok));
                ok
            }
        }
    }
}

/// The ACL as a caller without ADMIN sees it from getACL: digest ids keep their user name and
/// lose their password hash (`user:x`), as ZooKeeper answers since CVE-2019-0201.
pub fn masked(acl: &[AclEntry]) -> Vec<AclEntry> {
    acl.iter()
        .map(|a| match a.scheme.as_str() {
            "digest" => AclEntry {
                id: format!("{}:x", a.id.split(':').next().unwrap_or_default()),
                ..a.clone()
            },
            _ => a.clone(),
        })
        .collect()
}

/// Checks an ACL given at create or setACL and replaces `auth` entries with the caller's
/// identities, as ZooKeeper does: duplicates are dropped; only `world:anyone`, `auth` (with at
/// least one authenticated identity), `digest:user:hash`, `ip:address[/bits]` and
/// `x509:subject-DN` are valid.
pub fn resolve(acl: &[AclEntry], auth: &[(String, String)]) -> Result<Vec<AclEntry>, ZkError> {
    // A hash set, not a scan per entry: a request may carry tens of thousands of entries.
    let mut seen = HashSet::with_capacity(acl.len());
    let unique: Vec<&AclEntry> = acl.iter().filter(|a| seen.insert(*a)).collect();
    if unique.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    let mut out = Vec::new();
    for a in unique {
        match a.scheme.as_str() {
            "auth" => {
                // Only schemes a client authenticates with count: not ip, not super.
                let ids: Vec<&(String, String)> = auth
                    .iter()
                    .filter(|(s, _)| s == "digest" || s == "x509")
                    .collect();
                if ids.is_empty() {
                    return Err(ZkError::InvalidAcl);
                }
                out.extend(ids.into_iter().map(|(s, id)| AclEntry {
                    perms: a.perms,
                    scheme: s.clone(),
                    id: id.clone(),
                }));
            }
            "world" if a.id == "anyone" => out.push(a.clone()),
            "digest" if is_digest_id(&a.id) => out.push(a.clone()),
            "ip" if is_ip_pattern(&a.id) => out.push(a.clone()),
            // A certificate subject DN, as the x509 provider compares it: by string.
            "x509" if !a.id.is_empty() => out.push(a.clone()),
            _ => return Err(ZkError::InvalidAcl),
        }
    }
    Ok(out)
}

/// `user:hash`: exactly two colon-separated parts, ignoring trailing empty ones (ZooKeeper
/// splits the id as Java's `String.split` does).
fn is_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// An IPv4 or IPv6 address, optionally with `/bits` no wider than the address.
fn is_ip_pattern(id: &str) -> bool {
    parse_pattern(id).is_some()
}

/// The address and prefix length of `address[/bits]`.
fn parse_pattern(id: &str) -> Option<(IpAddr, u32)> {
    let (net, bits) = match id.split_once('/') {
        Some((n, b)) => (n, Some(b)),
        None => (id, None),
    };
    let net: IpAddr = net.parse().ok()?;
    let width = if net.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= width)?,
        None => width,
    };
    Some((net, bits))
}

/// The bytes of an address.
fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `pattern` is an address or `address/bits`; `addr` is the client's address. Addresses of
/// different families never match.
fn ip_matches(pattern: &str, addr: &str) -> bool {
    let (Some((net, bits)), Ok(addr)) = (parse_pattern(pattern), addr.parse::<IpAddr>()) else {
        return false;
    };
    let (net, addr) = (octets(net), octets(addr));
    if net.len() != addr.len() {
        return false;
    }
    net.iter().zip(&addr).enumerate().all(|(i, (n, a))| {
        let covered = bits.saturating_sub(8 * i as u32).min(8);
        let mask = if covered == 0 {
            0
        } else {
            0xffu8 << (8 - covered)
        };
        n & mask == a & mask
    })
}

/// One shared copy of each distinct ACL, as ZooKeeper's reference-counted ACL cache: every
/// znode with the same ACL holds the same allocation. The counts are the `Arc`s' own; copies
/// no znode holds any more are dropped from time to time (when the cache has doubled since it
/// was last swept), so the cache stays within twice the number of ACLs in use.
#[derive(Clone, Debug, Default)]
pub struct AclCache {
    shared: HashSet<Arc<[AclEntry]>>,
    after_sweep: usize,
}

/// Entries the cache may hold before its first sweep.
const SWEEP_FLOOR: usize = 64;

impl AclCache {
    /// The shared copy of `acl`.
    pub fn intern(&mut self, acl: &[AclEntry]) -> Arc<[AclEntry]> {
        if let Some(shared) = self.shared.get(acl) {
            return Arc::clone(shared);
        }
        if self.shared.len() >= 2 * self.after_sweep + SWEEP_FLOOR {
            self.shared.retain(|a| Arc::strong_count(a) > 1);
            self.shared.shrink_to_fit();
            self.after_sweep = self.shared.len();
        }
        let shared: Arc<[AclEntry]> = Arc::from(acl);
        self.shared.insert(Arc::clone(&shared));
        shared
    }

    /// Number of distinct ACLs held (some perhaps no longer in use).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no ACL is held.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::zk::perm;

    fn entry(scheme: &str, id: &str) -> AclEntry {
        AclEntry {
            perms: perm::READ,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn ids(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(s, i)| (s.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn x509_ids_match_by_subject_dn() {
        let acl = [entry("x509", "CN=kazoo,O=test")];
        let kazoo = ids(&[("ip", "127.0.0.1"), ("x509", "CN=kazoo,O=test")]);
        let other = ids(&[("ip", "127.0.0.1"), ("x509", "CN=other,O=test")]);
        let anonymous = ids(&[("ip", "127.0.0.1")]);
        assert!(permits(&acl, perm::READ, &kazoo));
        assert!(!permits(&acl, perm::READ, &other));
        assert!(!permits(&acl, perm::READ, &anonymous));
        let admin = ids(&[("super", "CN=admin"), ("x509", "CN=admin")]);
        assert!(permits(&acl, perm::READ, &admin));
    }

    #[test]
    fn x509_acls_are_valid_and_auth_expands_to_the_certificate() {
        let given = [entry("x509", "CN=kazoo,O=test")];
        assert_eq!(resolve(&given, &[]), Ok(given.to_vec()));
        assert_eq!(resolve(&[entry("x509", "")], &[]), Err(ZkError::InvalidAcl));
        let kazoo = ids(&[("ip", "127.0.0.1"), ("x509", "CN=kazoo,O=test")]);
        assert_eq!(resolve(&[entry("auth", "")], &kazoo), Ok(given.to_vec()));
    }
}
