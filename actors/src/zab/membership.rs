//! Dynamic membership: what a reconfig request asks for, and how Zab switches to it.
//!
//! A reconfig is a txn like any other, with two rules of its own (as ZooKeeper 3.5+):
//! it commits only once a quorum of the old voters AND a quorum of the new ones hold it
//! (and so does every txn proposed after it while it is pending), and once it is applied
//! every server counts with the new voters. A reconfig takes effect only if the config
//! version it was based on is still the current one, a rule the state machine applies too,
//! so the tree's `/zookeeper/config` and the core's voters never disagree.

use super::peer::{QuorumPeer, Role};
use super::Output;
use crate::election::ElectionRequest;
use crate::quorum::is_quorum;
use ensemble_config::dynamic::{parse_specs, Membership};
use ensemble_config::{ServerEntry, Sid};
use ensemble_messages::zk::ZkError;
use ensemble_messages::Zxid;
use std::collections::BTreeSet;

/// A reconfig txn as the core sees it: the config version it was based on and the voters
/// and observers it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedMembership {
    /// The config version the change was computed from; it applies only if still current.
    pub expected_version: u64,
    /// The voters of the new config.
    pub voters: Vec<Sid>,
    /// The observers of the new config.
    pub observers: Vec<Sid>,
}

/// Tells reconfig txns apart from other writes: a pure function of the body.
pub type MembershipOf = std::sync::Arc<dyn Fn(&[u8]) -> Option<ProposedMembership> + Send + Sync>;

/// Why the leader refused a reconfig, as the text of its refusal (the client port maps it to
/// ZooKeeper's error code with [`refusal_code`]).
pub const IN_PROGRESS: &str = "ReconfigInProgress";
/// The new config's voters do not include a quorum of servers synced with the leader.
pub const NO_QUORUM: &str = "NewConfigNoQuorum";

/// ZooKeeper's error code for a leader's refusal text, if it is a reconfig refusal.
pub fn refusal_code(reason: &str) -> Option<ZkError> {
    if reason.contains(IN_PROGRESS) {
        Some(ZkError::ReconfigInProgress)
    } else if reason.contains(NO_QUORUM) {
        Some(ZkError::NewConfigNoQuorum)
    } else {
        None
    }
}

/// The members a reconfig request asks for, from the current ones: incremental (`joining`
/// specs `server.N=...` and `leaving` ids, comma separated) or the whole `new_members` list.
/// Errors are ZooKeeper's BadArguments: a bad spec or id, an id outside 1..=254, or fewer
/// than two voters left. As ZooKeeper 3.8, asking for nothing keeps the members (a new config version), and an
/// id both leaving and joining takes its joining spec. Unlike it, mixing both forms and an id
/// named twice are BadArguments too: ZooKeeper silently ignores `joining`/`leaving` beside
/// `new_members`, and keeps the last of two specs of one id.
pub fn next_servers(
    current: &[ServerEntry],
    joining: &str,
    leaving: &str,
    new_members: &str,
) -> Result<Vec<ServerEntry>, ZkError> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (joining, leaving, members) = (list(joining), list(leaving), list(new_members));
    let bad = |_| ZkError::BadArguments;
    let servers = match (joining.is_empty() && leaving.is_empty(), members.is_empty()) {
        (false, false) => return Err(ZkError::BadArguments),
        (true, false) => parse_specs(members.iter().map(String::as_str)).map_err(bad)?,
        (_, true) => incremental(current, &joining, &leaving)?,
    };
    let ids_ok = servers
        .iter()
        .all(|s| (1..=254).contains(&s.id) && plain_host(&s.host));
    let voters = servers
        .iter()
        .filter(|s| s.role == ensemble_config::ServerRole::Participant)
        .count();
    // As ZooKeeper with standaloneEnabled (its default, and ensemble's only way): a config of
    // fewer than two voters is refused.
    if !ids_ok || voters < 2 {
        return Err(ZkError::BadArguments);
    }
    Ok(servers)
}

/// Whether `host` is a host name or address that the config text carries back unchanged.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | ';' | ',' | '#'))
}

fn incremental(
    current: &[ServerEntry],
    joining: &[String],
    leaving: &[String],
) -> Result<Vec<ServerEntry>, ZkError> {
    let leaving: BTreeSet<Sid> = leaving
        .iter()
        .map(|id| id.parse().map_err(|_| ZkError::BadArguments))
        .collect::<Result<_, _>>()?;
    let joining =
        parse_specs(joining.iter().map(String::as_str)).map_err(|_| ZkError::BadArguments)?;
    let mut out: Vec<ServerEntry> = current
        .iter()
        .filter(|s| !leaving.contains(&s.id) && !joining.iter().any(|j| j.id == s.id))
        .cloned()
        .collect();
    out.extend(joining);
    out.sort_by_key(|s| s.id);
    Ok(out)
}

/// The `server.N` lines of `servers` (each newline-terminated), as a reconfig txn carries
/// them; the applying server appends the version line.
pub fn server_lines(servers: &[ServerEntry]) -> String {
    let m = Membership {
        version: 0,
        servers: servers.to_vec(),
    };
    let text = m.render();
    let end = text.rfind("version=").unwrap_or(text.len());
    text[..end].to_string()
}

/// The voters a reconfig txn's server lines name (None if they do not parse).
pub fn voters_of_lines(lines: &str) -> Option<Vec<Sid>> {
    members_of_lines(lines).map(|(voters, _)| voters)
}

/// The voters and the observers a reconfig txn's server lines name (None if they do not
/// parse).
pub fn members_of_lines(lines: &str) -> Option<(Vec<Sid>, Vec<Sid>)> {
    let servers = parse_specs(lines.lines().filter(|l| !l.trim().is_empty())).ok()?;
    let (voters, observers): (Vec<&ServerEntry>, Vec<&ServerEntry>) = servers
        .iter()
        .partition(|s| s.role == ensemble_config::ServerRole::Participant);
    let ids = |v: Vec<&ServerEntry>| v.iter().map(|s| s.id).collect();
    Some((ids(voters), ids(observers)))
}

/// Whether `acks` hold a quorum of `voters` (acks from others do not count).
pub fn quorum_of(acks: &BTreeSet<Sid>, voters: &[Sid]) -> bool {
    let count = voters.iter().filter(|v| acks.contains(v)).count();
    is_quorum(count, voters.len())
}

impl QuorumPeer {
    /// Whether a proposal acked by `acks` may commit: a quorum of the voters, and of the new
    /// voters of a reconfig pending at or before it.
    pub(super) fn commit_quorum(&self, zxid: Zxid, acks: &BTreeSet<Sid>) -> bool {
        let pending_ok = match &self.pending_reconfig {
            Some((at, voters)) if *at <= zxid => quorum_of(acks, voters),
            _ => true,
        };
        quorum_of(acks, &self.voters) && pending_ok
    }

    /// Whether `acked` (servers synced with a new leader) also hold a quorum of the voters of
    /// each reconfig in the history it is about to commit: committing a reconfig needs both
    /// configs, also when a new leader commits it.
    pub(super) fn tail_reconfigs_acked(&self, acked: &BTreeSet<Sid>) -> bool {
        let mut version = self.config_version;
        for t in self.log.iter_after(self.log.committed()) {
            let Some(p) = (self.membership_of)(&t.body) else {
                continue;
            };
            if p.expected_version == version {
                if !quorum_of(acked, &p.voters) {
                    return false;
                }
                version = t.zxid.0;
            }
        }
        true
    }

    /// Checks a write the leader is about to propose: `Ok(Some(voters))` for a reconfig that
    /// will take effect, `Ok(None)` for anything else, `Err` with the refusal text when a
    /// reconfig is in flight or the new voters lack a synced quorum (`synced` gives the
    /// followers synced with the leader; only a reconfig asks for them).
    pub(super) fn admit_reconfig(
        &self,
        body: &[u8],
        synced: impl FnOnce() -> BTreeSet<Sid>,
    ) -> Result<Option<Vec<Sid>>, String> {
        let Some(p) = (self.membership_of)(body) else {
            return Ok(None);
        };
        if self.pending_reconfig.is_some() {
            return Err(format!(
                "{IN_PROGRESS}: another reconfig is not committed yet"
            ));
        }
        if p.expected_version != self.config_version {
            // It will fail its version check when applied: an ordinary txn.
            return Ok(None);
        }
        let mut up = synced();
        up.insert(self.me);
        if !quorum_of(&up, &p.voters) {
            return Err(format!(
                "{NO_QUORUM}: the new voters {:?} lack a quorum synced with the leader",
                p.voters
            ));
        }
        Ok(Some(p.voters))
    }

    /// Switches to the membership of every reconfig among `txns` (just committed, in order)
    /// that takes effect; a server no longer a voter steps down.
    pub(super) fn adopt_reconfigs(&mut self, txns: &[ensemble_messages::Txn]) {
        for t in txns {
            let Some(p) = (self.membership_of)(&t.body) else {
                continue;
            };
            if p.expected_version == self.config_version {
                self.set_membership(t.zxid.0, p.voters, p.observers);
            }
            if self
                .pending_reconfig
                .as_ref()
                .is_some_and(|(z, _)| *z <= t.zxid)
            {
                self.pending_reconfig = None;
            }
        }
    }

    /// Counts with `voters` and serves `observers` from now on, as config `version`.
    pub fn set_membership(&mut self, version: u64, mut voters: Vec<Sid>, mut observers: Vec<Sid>) {
        voters.sort_unstable();
        observers.sort_unstable();
        tracing::info!(
            me = self.me,
            version = format!("{version:x}"),
            ?voters,
            ?observers,
            "membership changed"
        );
        let was_voter = self.voters.contains(&self.me);
        let leader_gone = matches!(&self.role, Role::Following(f) if !voters.contains(&f.leader));
        self.config_version = version;
        self.voters = voters;
        self.observers = observers;
        self.emit(Output::Election(ElectionRequest::Members(self.members())));
        let is_voter = self.voters.contains(&self.me);
        let removed = !is_voter && !self.observers.contains(&self.me);
        // A server removed, or made an observer or a voter, joins again as what it now is (a
        // server that was among neither and follows as an observer already is one); a
        // follower whose leader was removed elects a new one at once rather than waiting for
        // the leader's silence to pass syncLimit.
        self.step_down = was_voter != is_voter || removed || leader_gone;
        let (voters, observers) = (self.voters.clone(), self.observers.clone());
        if let Role::Leading(l) = &mut self.role {
            l.retain_followers(&voters, &observers);
        }
    }

    /// A peer counts with config `version`, newer than ours: if our log holds the reconfigs
    /// that lead from our config to it, adopt it now (it was committed, or no server would
    /// count with it), as ZooKeeper adopts a newer config heard in a notification. Without
    /// this, servers that missed a reconfig's commit can keep electing a removed server that
    /// the up-to-date ones ignore.
    pub(super) fn adopt_newer_config(&mut self, version: u64) {
        if version <= self.config_version {
            return;
        }
        let mut current = self.config_version;
        let logged = self.log.iter_after(self.log.committed()).find_map(|t| {
            let p = (self.membership_of)(&t.body)?;
            if p.expected_version != current {
                return None;
            }
            current = t.zxid.0;
            (current == version).then_some(p)
        });
        if let Some(p) = logged {
            tracing::info!(
                me = self.me,
                version = format!("{version:x}"),
                "a peer counts with a newer config, which this server logged; adopting it"
            );
            self.set_membership(version, p.voters, p.observers);
        }
    }

    /// The config version this server counts with.
    pub fn config_version(&self) -> u64 {
        self.config_version
    }

    /// Once a reconfig removed this server, it stops leading or following (a removed leader
    /// hands over to whoever the remaining voters elect; every write it acknowledged is held
    /// by a quorum of them). Not a voter, it never wins an election; should a later reconfig
    /// add it back, the voters answer its notifications and it follows their leader again.
    pub(super) fn step_down_if_removed(&mut self) {
        if std::mem::take(&mut self.step_down) && !matches!(self.role, Role::Looking) {
            tracing::warn!(
                me = self.me,
                "a reconfig removed this server or its leader; looking"
            );
            self.look();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<ServerEntry> {
        parse_specs([
            "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001",
            "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002",
            "server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003",
        ])
        .unwrap()
    }

    fn ids(s: &[ServerEntry]) -> Vec<Sid> {
        s.iter().map(|s| s.id).collect()
    }

    #[test]
    fn incremental_joins_and_leaves() {
        let four = "server.4=127.0.0.1:2004:3004:participant;4004";
        assert_eq!(
            ids(&next_servers(&three(), four, "", "").unwrap()),
            [1, 2, 3, 4]
        );
        assert_eq!(ids(&next_servers(&three(), "", " 3", "").unwrap()), [1, 2]);
        // Joining an id already present replaces its entry (how a role changes).
        let obs = "server.3=127.0.0.1:2003:3003:observer;4003";
        let s = next_servers(&three(), obs, "", "").unwrap();
        assert_eq!(s[2].role, ensemble_config::ServerRole::Observer);
        // Leaving an id that is not a member, or asking for nothing, changes nothing.
        for leaving in ["9", "", ","] {
            assert_eq!(next_servers(&three(), "", leaving, ""), Ok(three()));
        }
        // An id leaving and joining takes its joining spec (as ZooKeeper 3.8).
        let s = next_servers(&three(), obs, "3", "").unwrap();
        assert_eq!(s[2].role, ensemble_config::ServerRole::Observer);
    }

    #[test]
    fn non_incremental_replaces_everything() {
        let m = "server.1=h:1:2;3,server.5=h:5:6;7";
        assert_eq!(ids(&next_servers(&three(), "", "", m).unwrap()), [1, 5]);
    }

    #[test]
    fn bad_arguments_as_zookeeper() {
        let cases = [
            ("some thing", "", ""),
            ("", "x", ""),
            ("server.4=h:1:2", "", "server.1=h:1:2"),
            ("", "1", "server.1=h:1:2"),
            ("", "1,2,3", ""),
            ("", "2,3", ""),
            ("server.4=h:1:2,server.4=h:3:4", "", ""),
            ("", "", "server.1=h:1:2,server.1=h:3:4"),
            ("server.300=h:1:2", "", ""),
            ("", "", "server.1=h:1:2:observer"),
            ("server.4=a\nb:1:2", "", ""),
            ("server.4=a=b:1:2", "", ""),
        ];
        for (j, l, m) in cases {
            assert_eq!(
                next_servers(&three(), j, l, m),
                Err(ZkError::BadArguments),
                "{j}|{l}|{m}"
            );
        }
    }

    #[test]
    fn server_lines_name_their_voters() {
        let lines = server_lines(&three());
        assert!(lines.ends_with(";127.0.0.1:4003\n"), "{lines}");
        assert_eq!(voters_of_lines(&lines), Some(vec![1, 2, 3]));
        assert_eq!(voters_of_lines("junk"), None);
    }

    #[test]
    fn quorums_count_only_voters() {
        let acks: BTreeSet<Sid> = [1, 2, 9].into();
        assert!(quorum_of(&acks, &[1, 2, 3]));
        assert!(!quorum_of(&acks, &[2, 3, 4, 5]));
        assert!(!quorum_of(&[9, 8].into(), &[1, 2, 3]));
        assert_eq!(
            refusal_code("x NewConfigNoQuorum"),
            Some(ZkError::NewConfigNoQuorum)
        );
        assert_eq!(
            refusal_code("ReconfigInProgress"),
            Some(ZkError::ReconfigInProgress)
        );
        assert_eq!(refusal_code("other"), None);
    }
}
