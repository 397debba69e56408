//! ACL checks: schemes world, auth, digest and ip.

use super::AclEntry;
use ensemble_messages::zk::err;

/// Whether `acl` grants `needed` to a caller with these identities.
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

/// Replaces `auth` entries with the caller's identities, as ZooKeeper does at create/setACL.
pub fn resolve(acl: &[AclEntry], auth: &[(String, String)]) -> Result<Vec<AclEntry>, i32> {
    if acl.is_empty() {
        return Err(err::INVALID_ACL);
    }
    let mut out = Vec::new();
    for a in acl {
        match a.scheme.as_str() {
            "auth" => {
                let ids: Vec<&(String, String)> = auth.iter().filter(|(s, _)| s != "ip").collect();
                if ids.is_empty() {
                    return Err(err::INVALID_ACL);
                }
                out.extend(ids.into_iter().map(|(s, id)| AclEntry {
                    perms: a.perms,
                    scheme: s.clone(),
                    id: id.clone(),
                }));
            }
            "world" | "digest" | "ip" | "super" => out.push(a.clone()),
            _ => return Err(err::INVALID_ACL),
        }
    }
    Ok(out)
}

/// `pattern` is an address or `address/bits`; `addr` is the client's IPv4 address.
fn ip_matches(pattern: &str, addr: &str) -> bool {
    let (net, bits) = match pattern.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().unwrap_or(32)),
        None => (pattern, 32),
    };
    match (
        net.parse::<std::net::Ipv4Addr>(),
        addr.parse::<std::net::Ipv4Addr>(),
    ) {
        (Ok(n), Ok(a)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        _ => pattern == addr,
    }
}
