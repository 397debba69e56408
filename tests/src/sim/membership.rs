//! Membership in the simulation: reconfig bodies, and the membership a history leads to.

use super::Sim;
use ensemble_actors::zab::membership::ProposedMembership;
use ensemble_messages::{Sid, Txn};

/// A config version, its voters and its observers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) version: u64,
    pub(super) voters: Vec<Sid>,
    pub(super) observers: Vec<Sid>,
}

/// A simulated reconfig body:
/// `reconfig:<expected version>:<voter,voter,...>:<observer,observer,...>`.
pub(super) fn membership_of(body: &[u8]) -> Option<ProposedMembership> {
    let text = std::str::from_utf8(body).ok()?.strip_prefix("reconfig:")?;
    let mut parts = text.splitn(3, ':');
    let expected = parts.next()?.parse().ok()?;
    let ids = |list: &str| -> Option<Vec<Sid>> {
        list.split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().ok())
            .collect()
    };
    Some(ProposedMembership {
        expected_version: expected,
        voters: ids(parts.next()?)?,
        observers: ids(parts.next()?)?,
    })
}

/// `m` after applying `history` with Zab's rule: a reconfig takes effect if it was based on
/// the current version, and its zxid becomes the version.
pub(super) fn membership_after(mut m: Membership, history: &[Txn]) -> Membership {
    for t in history {
        if let Some(p) = membership_of(&t.body) {
            if p.expected_version == m.version {
                m = Membership {
                    version: t.zxid.0,
                    voters: p.voters,
                    observers: p.observers,
                };
            }
        }
    }
    m
}

impl Sim {
    /// The membership the servers are configured with: the first `nodes` ids vote, the
    /// `observers` after them observe.
    pub(super) fn configured(&self) -> Membership {
        let first = self.cfg.nodes as Sid + 1;
        Membership {
            version: 0,
            voters: (1..first).collect(),
            observers: (first..first + self.cfg.observers as Sid).collect(),
        }
    }

    /// The membership of the committed history's last effective reconfig (the configured
    /// one without any).
    pub(super) fn membership(&self) -> Membership {
        membership_after(self.configured(), &self.canonical)
    }

    /// The voters of the committed history's last effective reconfig.
    pub(super) fn voters(&self) -> Vec<Sid> {
        self.membership().voters
    }

    /// The observers of the committed history's last effective reconfig.
    pub(super) fn observers(&self) -> Vec<Sid> {
        self.membership().observers
    }
}
