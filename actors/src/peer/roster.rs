//! The links a server keeps: one to every other server of the membership it counts with.
//! A reconfig's commit opens links to the servers it adds and retires those to the servers
//! it removes; the peer listener admits only dialers the roster names.

use super::handshake::PeerIdentity;
use super::link::{PeerLink, Retire};
use super::sinks::PeerSinks;
use actix::prelude::*;
use ensemble_messages::Sid;
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Another server of the membership, as its server line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    /// Its server id.
    pub sid: Sid,
    /// Its peer (quorum) address, `host:port`.
    pub addr: String,
    /// Its server line's host (the TLS name its certificate must carry).
    pub host: String,
}

/// One link of the roster and the address it dials.
struct Member {
    addr: String,
    link: Addr<PeerLink>,
}

/// The links of this server, shared by the quorum actor (which sends on them and makes them
/// follow the membership) and the peer listener (which hands them inbound connections).
#[derive(Clone)]
pub struct PeerRoster {
    identity: PeerIdentity,
    sink: PeerSinks,
    members: Arc<RwLock<BTreeMap<Sid, Member>>>,
}

impl PeerRoster {
    /// An empty roster of `identity`'s links; their events go to `sink`.
    pub fn new(identity: PeerIdentity, sink: PeerSinks) -> Self {
        PeerRoster {
            identity,
            sink,
            members: Arc::default(),
        }
    }

    /// Keeps a link to exactly the servers of `peers` (this server itself is skipped): new
    /// ones get a link (started on the calling thread's arbiter), gone ones, and those whose
    /// address changed, have theirs retired. Must run inside an actix system.
    pub fn follow(&self, peers: &[PeerEntry]) {
        let me = self.identity.sid;
        let wanted: BTreeMap<Sid, &PeerEntry> = peers
            .iter()
            .filter(|p| p.sid != me)
            .map(|p| (p.sid, p))
            .collect();
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        members.retain(|sid, m| {
            let keep = wanted.get(sid).is_some_and(|p| p.addr == m.addr);
            if !keep {
                tracing::info!(me, peer = sid, "the membership changed: link retired");
                m.link.do_send(Retire);
            }
            keep
        });
        for (sid, p) in wanted {
            if members.contains_key(&sid) {
                continue;
            }
            if let Some(tls) = &self.identity.tls {
                tls.set_host(sid, p.host.clone());
            }
            let (identity, addr, sink) = (self.identity.clone(), p.addr.clone(), self.sink.clone());
            let link = Supervisor::start(move |_| PeerLink::new(identity, sid, addr, sink));
            tracing::info!(me, peer = sid, "link opened");
            members.insert(
                sid,
                Member {
                    addr: p.addr.clone(),
                    link,
                },
            );
        }
    }

    /// The link to `sid`, if it is a member.
    pub fn link(&self, sid: Sid) -> Option<Addr<PeerLink>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members.get(&sid).map(|m| m.link.clone())
    }

    /// Whether `sid` is a member this server keeps a link to.
    pub fn contains(&self, sid: Sid) -> bool {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members.contains_key(&sid)
    }

    /// Every link, with its server's id.
    pub fn links(&self) -> Vec<(Sid, Addr<PeerLink>)> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        members.iter().map(|(s, m)| (*s, m.link.clone())).collect()
    }

    /// This server's identity on the peer network.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerEvent;

    /// Swallows the links' events.
    struct Sink;

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Handler<PeerEvent> for Sink {
        type Result = ();

        fn handle(&mut self, _: PeerEvent, _: &mut Context<Self>) {}
    }

    fn entry(sid: Sid, port: u16) -> PeerEntry {
        PeerEntry {
            sid,
            addr: format!("127.0.0.1:{port}"),
            host: "127.0.0.1".into(),
        }
    }

    fn sids(roster: &PeerRoster) -> Vec<Sid> {
        roster.links().into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn links_follow_the_membership() {
        System::new().block_on(async {
            let identity = PeerIdentity {
                sid: 2,
                secret: None,
                tls: None,
            };
            let sink = Sink.start();
            let sinks = PeerSinks::new(sink.clone().recipient(), sink.recipient());
            let roster = PeerRoster::new(identity, sinks);
            roster.follow(&[entry(1, 1), entry(2, 2), entry(3, 3)]);
            assert_eq!(sids(&roster), [1, 3]);
            let three = roster.link(3).unwrap();
            // Server 1 leaves, 4 joins, and server 3 moves: its link is a new one.
            roster.follow(&[entry(2, 2), entry(3, 33), entry(4, 4)]);
            assert_eq!(sids(&roster), [3, 4]);
            assert!(!roster.contains(1) && roster.contains(4));
            assert!(roster.link(3).unwrap() != three);
            // The same membership again changes nothing.
            let four = roster.link(4).unwrap();
            roster.follow(&[entry(2, 2), entry(3, 33), entry(4, 4)]);
            assert!(roster.link(4).unwrap() == four);
        });
    }
}
