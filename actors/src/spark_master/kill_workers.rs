//! The master web UI's kill-workers endpoint (Spark's `POST /workers/kill/?host=H&host=...`):
//! decommissions the workers on those hosts when spark.master.ui.decommission.allow.mode lets
//! the caller (LOCAL: this host only), 405 when it does not; 200 when some were, 404 when
//! none.

use super::actor::{DecommissionHosts, MasterActor};
use super::decommission::AllowMode;
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};

/// Whether `peer` is this host: a loopback or unspecified address, or the server's own.
fn is_local(peer: std::net::IpAddr, server: std::net::IpAddr) -> bool {
    peer.is_loopback() || peer.is_unspecified() || peer == server
}

/// Handles `POST /workers/kill/`.
pub async fn kill_workers(
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
    master: web::Data<Addr<MasterActor>>,
    allow: web::Data<AllowMode>,
) -> HttpResponse {
    let local = req
        .peer_addr()
        .is_some_and(|p| is_local(p.ip(), req.app_config().local_addr().ip()));
    if !allow.allows(local) {
        return HttpResponse::MethodNotAllowed().body(
            "decommissioning is not allowed from here (spark.master.ui.decommission.allow.mode)",
        );
    }
    let hosts: Vec<String> = query
        .into_inner()
        .into_iter()
        .filter(|(k, _)| k == "host")
        .map(|(_, v)| v)
        .collect();
    match master.send(DecommissionHosts(hosts)).await {
        Ok(0) => HttpResponse::NotFound().body("no live worker on those hosts"),
        Ok(n) => HttpResponse::Ok().body(format!("decommissioned {n} workers")),
        Err(_) => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_means_loopback_or_the_servers_own_address() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(is_local(ip("127.0.0.1"), ip("10.0.0.5")));
        assert!(is_local(ip("10.0.0.5"), ip("10.0.0.5")));
        assert!(!is_local(ip("10.0.0.6"), ip("10.0.0.5")));
        assert!(AllowMode::Local.allows(true) && !AllowMode::Local.allows(false));
        assert!(AllowMode::Allow.allows(false) && !AllowMode::Deny.allows(true));
        assert_eq!(AllowMode::parse("allow"), Some(AllowMode::Allow));
        assert_eq!(AllowMode::parse("sometimes"), None);
    }
}
