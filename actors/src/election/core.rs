//! The Fast Leader Election state machine.
//!
//! A LOOKING server votes for itself, broadcasts, adopts any better vote it hears (peer epoch,
//! then zxid, then sid) and re-broadcasts. Once a quorum holds its vote it waits `finalize_wait`
//! for a better one, then decides. A server that hears a quorum of FOLLOWING/LEADING servers
//! agree on a leader that itself says LEADING joins it. Decided servers answer LOOKING ones with
//! their vote, which is how late starters find the established leader.
//!
//! Observers never vote and are never counted. An observer votes for no one, adopts the best
//! vote it hears from voters and decides once a quorum of voters agrees, as a voter would; it
//! then observes that leader. Voters answer an observer's notifications with their own vote
//! and count nothing from it.

use super::requests::{Decision, ElectionRequest, ElectionView, Look, Members};
use crate::quorum::is_quorum;
use ensemble_messages::{Notification, ServerState, Sid, Vote, Zxid};
use std::collections::{BTreeMap, BTreeSet};

/// Election timing, in ms.
#[derive(Clone, Debug)]
pub struct ElectionTiming {
    /// Wait for a better vote once a quorum agrees.
    pub finalize_wait_ms: u64,
    /// First notification timeout; it doubles on every silent timeout.
    pub initial_timeout_ms: u64,
    /// Cap of the notification timeout.
    pub max_timeout_ms: u64,
}

/// What the election asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionOutput {
    /// Send a notification to one peer.
    Send { to: Sid, notification: Notification },
    /// The election is over: `vote.leader` leads. `state` is this server's new role.
    Decided { vote: Vote, state: ServerState },
}

/// The candidate an observer votes for: no server (ids start at 1), so any voter's vote beats
/// it.
const NO_CANDIDATE: Sid = 0;

/// The Fast Leader Election core of one server.
#[derive(Clone, Debug)]
pub struct Election {
    me: Sid,
    voters: Vec<Sid>,
    observers: Vec<Sid>,
    /// The config version stamped on this server's notifications.
    config_version: u64,
    timing: ElectionTiming,
    state: ServerState,
    logical_clock: u64,
    own_vote: Vote,
    vote: Vote,
    received: BTreeMap<Sid, Notification>,
    out_of_election: BTreeMap<Sid, Notification>,
    /// Peers whose link was up and went down: their vote is not awaited.
    lost: BTreeSet<Sid>,
    timeout_ms: u64,
    resend_at: u64,
    finalize_at: Option<u64>,
    /// The ticket of the [`Look`] the current round answers.
    ticket: u64,
}

impl Election {
    /// A server that has not started looking yet.
    pub fn new(me: Sid, voters: Vec<Sid>, timing: ElectionTiming) -> Self {
        let own = Vote {
            leader: me,
            zxid: Zxid::ZERO,
            peer_epoch: 0,
        };
        Election {
            me,
            voters,
            observers: Vec::new(),
            config_version: 0,
            timeout_ms: timing.initial_timeout_ms,
            timing,
            state: ServerState::Looking,
            logical_clock: 0,
            own_vote: own,
            vote: own,
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            lost: BTreeSet::new(),
            resend_at: 0,
            finalize_at: None,
            ticket: 0,
        }
    }

    /// Carries out one request of the Zab core.
    pub fn request(&mut self, request: ElectionRequest, now: u64) -> Vec<ElectionOutput> {
        match request {
            ElectionRequest::Look(look) => self.look(look, now),
            ElectionRequest::Members(m) => {
                self.count_with(m);
                Vec::new()
            }
            ElectionRequest::Established(epoch) => {
                self.established(epoch);
                Vec::new()
            }
        }
    }

    /// Resumes from the Zab core's view after this election lost its state: a looking server
    /// starts a new round; a decided one takes the vote it serves by and answers with it.
    /// Outputs no decision for a decided view: the Zab core already holds it.
    pub fn resume(&mut self, view: ElectionView, now: u64) -> Vec<ElectionOutput> {
        match view {
            ElectionView::Looking(look) => self.look(look, now),
            ElectionView::Decided {
                ticket,
                vote,
                members,
            } => {
                self.ticket = ticket;
                self.count_with(members);
                self.vote = vote;
                self.state = self.role_of(vote);
                self.finalize_at = None;
                self.received.clear();
                self.out_of_election.clear();
                Vec::new()
            }
        }
    }

    /// The decision to hand the Zab core once `vote` is decided.
    pub fn decision(&self, vote: Vote) -> Decision {
        Decision {
            ticket: self.ticket,
            vote,
            round: self.logical_clock,
        }
    }

    /// The config version this election counts with.
    pub fn config_version(&self) -> u64 {
        self.config_version
    }

    /// Starts a round for `look`, unless it is one this election already answered or works
    /// on (tickets only grow; a restarted election may find an old request in its mailbox).
    fn look(&mut self, look: Look, now: u64) -> Vec<ElectionOutput> {
        if look.ticket <= self.ticket {
            return Vec::new();
        }
        self.ticket = look.ticket;
        self.count_with(look.members);
        self.start_round(look.last_zxid, look.epoch, now)
    }

    fn count_with(&mut self, m: Members) {
        self.set_members(m.version, m.voters, m.observers);
    }

    /// The same election, knowing these servers as observers (this one may be among them).
    pub fn with_observers(mut self, observers: Vec<Sid>) -> Self {
        self.observers = observers;
        self
    }

    /// Counts with `voters` and answers `observers` from now on, as config `version` (a
    /// committed reconfig changed them). A server among neither (a reconfig removed it) votes
    /// for no one, as an observer does, so that servers that have not applied the reconfig yet
    /// never elect it.
    pub fn set_members(&mut self, version: u64, voters: Vec<Sid>, observers: Vec<Sid>) {
        self.config_version = version;
        self.received
            .retain(|s, _| voters.contains(s) || *s == self.me);
        self.out_of_election.retain(|s, _| voters.contains(s));
        self.lost.retain(|s| voters.contains(s));
        self.voters = voters;
        self.observers = observers;
    }

    /// Whether this server votes.
    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.me)
    }

    /// This server's state as the election knows it.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The current vote (the decided one once not LOOKING).
    pub fn vote(&self) -> Vote {
        self.vote
    }

    /// The logical clock of election rounds.
    pub fn logical_clock(&self) -> u64 {
        self.logical_clock
    }

    /// The notification this server would send now.
    pub fn notification(&self) -> Notification {
        Notification {
            state: self.state,
            vote: self.vote,
            election_epoch: self.logical_clock,
            config_version: self.config_version,
        }
    }

    /// Starts a new round: vote for ourselves with our last logged zxid and current epoch.
    pub fn start_round(&mut self, zxid: Zxid, peer_epoch: u32, now: u64) -> Vec<ElectionOutput> {
        self.logical_clock = self.logical_clock.saturating_add(1);
        self.state = ServerState::Looking;
        self.own_vote = if self.is_voter() {
            Vote {
                leader: self.me,
                zxid,
                peer_epoch,
            }
        } else {
            Vote {
                leader: NO_CANDIDATE,
                zxid: Zxid::ZERO,
                peer_epoch: 0,
            }
        };
        self.vote = self.own_vote;
        self.received.clear();
        self.out_of_election.clear();
        self.received.insert(self.me, self.notification());
        self.timeout_ms = self.timing.initial_timeout_ms;
        self.resend_at = now + self.timeout_ms;
        self.finalize_at = None;
        let mut out = self.broadcast();
        self.check_own_quorum(now, &mut out);
        out
    }

    /// A peer link came up: a LOOKING server tells it its vote at once.
    pub fn peer_connected(&mut self, peer: Sid) -> Vec<ElectionOutput> {
        if peer == self.me || !self.voters.contains(&peer) {
            return Vec::new();
        }
        self.lost.remove(&peer);
        if self.state == ServerState::Looking {
            vec![self.send_to(peer)]
        } else {
            Vec::new()
        }
    }

    /// A peer link went down: its vote is no longer awaited before deciding.
    pub fn peer_disconnected(&mut self, peer: Sid) -> Vec<ElectionOutput> {
        if peer == self.me || !self.voters.contains(&peer) {
            return Vec::new();
        }
        self.lost.insert(peer);
        let mut out = Vec::new();
        if self.state == ServerState::Looking
            && self.finalize_at.is_some()
            && self.no_vote_pending()
        {
            out.push(self.decide(self.vote));
        }
        out
    }

    /// Handles a notification from `from`.
    pub fn on_notification(&mut self, from: Sid, n: Notification, now: u64) -> Vec<ElectionOutput> {
        let mut out = Vec::new();
        if from != self.me && self.observers.contains(&from) {
            return self.on_observer_notification(from, n);
        }
        if from == self.me || !self.voters.contains(&from) {
            return out;
        }
        if self.state != ServerState::Looking {
            if n.state == ServerState::Looking {
                out.push(self.send_to(from));
            }
            return out;
        }
        if n.state == ServerState::Looking {
            if n.election_epoch > self.logical_clock {
                self.logical_clock = n.election_epoch;
                self.received.clear();
                self.vote = if n.vote.beats(&self.own_vote) {
                    n.vote
                } else {
                    self.own_vote
                };
                self.finalize_at = None;
                out.extend(self.broadcast());
            } else if n.election_epoch < self.logical_clock {
                // An observer sends only when its own vote changes, so that voters' answers
                // to it cannot bounce back and forth.
                if self.is_voter() {
                    out.push(self.send_to(from));
                }
                return out;
            } else if n.vote.beats(&self.vote) {
                self.vote = n.vote;
                self.finalize_at = None;
                out.extend(self.broadcast());
            } else if self.is_voter() && self.vote.beats(&n.vote) {
                // The sender may have broadcast before we were looking and missed our better
                // vote: tell it now rather than at its next timeout.
                out.push(self.send_to(from));
            }
            self.received.insert(from, n);
            self.received.insert(self.me, self.notification());
            self.check_own_quorum(now, &mut out);
        } else {
            if n.election_epoch == self.logical_clock {
                self.received.insert(from, n);
                if self.agreed(&self.received, &n) && self.leader_confirmed(&self.received, &n) {
                    out.push(self.decide(n.vote));
                    return out;
                }
            }
            self.out_of_election.insert(from, n);
            if self.agreed(&self.out_of_election, &n)
                && self.leader_confirmed(&self.out_of_election, &n)
            {
                self.logical_clock = n.election_epoch;
                out.push(self.decide(n.vote));
            }
        }
        out
    }

    /// A voter answers a LOOKING observer with its vote, whatever its own state, and counts
    /// nothing from it; an observer ignores other observers.
    fn on_observer_notification(&self, from: Sid, n: Notification) -> Vec<ElectionOutput> {
        if self.is_voter() && n.state == ServerState::Looking {
            vec![self.send_to(from)]
        } else {
            Vec::new()
        }
    }

    /// Advances time: finalizes a pending decision or re-sends after a silent timeout.
    pub fn tick(&mut self, now: u64) -> Vec<ElectionOutput> {
        if self.state != ServerState::Looking {
            return Vec::new();
        }
        if let Some(at) = self.finalize_at {
            if now >= at {
                return vec![self.decide(self.vote)];
            }
        }
        if now >= self.resend_at {
            self.timeout_ms = (self.timeout_ms * 2).min(self.timing.max_timeout_ms);
            self.resend_at = now + self.timeout_ms;
            return self.broadcast();
        }
        Vec::new()
    }

    fn check_own_quorum(&mut self, now: u64, out: &mut Vec<ElectionOutput>) {
        if !self.agreed(&self.received, &self.notification()) {
            return;
        }
        // No better vote can come once every other server voted like us or is known down.
        if self.timing.finalize_wait_ms == 0 || self.no_vote_pending() {
            out.push(self.decide(self.vote));
        } else if self.finalize_at.is_none() {
            self.finalize_at = Some(now + self.timing.finalize_wait_ms);
        }
    }

    /// Whether every other voter has voted like us in this round or was lost. A server never
    /// heard from (one still starting) may yet bring a better vote: that is what the finalize
    /// wait is for.
    fn no_vote_pending(&self) -> bool {
        self.voters.iter().filter(|p| **p != self.me).all(|p| {
            self.lost.contains(p)
                || self
                    .received
                    .get(p)
                    .is_some_and(|n| n.state == ServerState::Looking && n.vote == self.vote)
        })
    }

    /// Whether a quorum of `set` holds the same vote as `target`. Between servers that are
    /// both past the election only the leader and its epoch must match: they may have decided
    /// in different rounds, with different zxids in their votes.
    fn agreed(&self, set: &BTreeMap<Sid, Notification>, target: &Notification) -> bool {
        let same = |n: &Notification| {
            if n.state == ServerState::Looking || target.state == ServerState::Looking {
                n.vote == target.vote
            } else {
                (n.vote.leader, n.vote.peer_epoch) == (target.vote.leader, target.vote.peer_epoch)
            }
        };
        let count = set
            .iter()
            .filter(|(sid, n)| self.voters.contains(sid) && same(n))
            .count();
        is_quorum(count, self.voters.len())
    }

    /// The decided leader established `epoch`; later notifications carry it as peer epoch.
    pub fn established(&mut self, epoch: u32) {
        if self.state != ServerState::Looking {
            self.vote.peer_epoch = epoch;
        }
    }

    /// A leader other than us must itself have said it leads; if it is us, the round must match.
    fn leader_confirmed(&self, set: &BTreeMap<Sid, Notification>, n: &Notification) -> bool {
        if n.vote.leader == self.me {
            n.election_epoch == self.logical_clock
        } else {
            set.get(&n.vote.leader)
                .is_some_and(|l| l.state == ServerState::Leading)
        }
    }

    /// This server's role once `vote` is decided.
    fn role_of(&self, vote: Vote) -> ServerState {
        if vote.leader == self.me {
            ServerState::Leading
        } else if self.is_voter() {
            ServerState::Following
        } else {
            ServerState::Observing
        }
    }

    fn decide(&mut self, vote: Vote) -> ElectionOutput {
        self.vote = vote;
        self.state = self.role_of(vote);
        self.finalize_at = None;
        self.received.clear();
        self.out_of_election.clear();
        ElectionOutput::Decided {
            vote,
            state: self.state,
        }
    }

    fn send_to(&self, to: Sid) -> ElectionOutput {
        ElectionOutput::Send {
            to,
            notification: self.notification(),
        }
    }

    fn broadcast(&self) -> Vec<ElectionOutput> {
        self.voters
            .iter()
            .filter(|&&s| s != self.me)
            .map(|&s| self.send_to(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> ElectionTiming {
        ElectionTiming {
            finalize_wait_ms: 200,
            initial_timeout_ms: 200,
            max_timeout_ms: 1600,
        }
    }

    fn vote(leader: Sid, epoch: u32, counter: u32) -> Vote {
        Vote {
            leader,
            zxid: Zxid::new(epoch, counter),
            peer_epoch: epoch,
        }
    }

    fn looking(v: Vote, round: u64) -> Notification {
        Notification {
            state: ServerState::Looking,
            vote: v,
            election_epoch: round,
            config_version: 0,
        }
    }

    /// An election of `me` among `voters`, with links up to every other voter.
    fn connected(me: Sid, voters: Vec<Sid>) -> Election {
        let mut e = Election::new(me, voters.clone(), timing());
        for p in voters {
            e.peer_connected(p);
        }
        e
    }

    #[test]
    fn adopts_better_vote_then_decides_after_finalize_wait() {
        let mut e = connected(1, vec![1, 2, 3]);
        let out = e.start_round(Zxid::new(1, 5), 1, 0);
        assert_eq!(out.len(), 2, "broadcast to both peers");
        // Peer 3 has the same log and a higher sid: adopt and re-broadcast.
        let out = e.on_notification(3, looking(vote(3, 1, 5), 1), 10);
        assert_eq!(out.len(), 2);
        assert_eq!(e.vote().leader, 3);
        // 1 and 3 now agree: a quorum of 3, but the decision waits for finalize_wait.
        assert!(e.tick(100).is_empty());
        let out = e.tick(210);
        assert_eq!(
            out,
            vec![ElectionOutput::Decided {
                vote: vote(3, 1, 5),
                state: ServerState::Following
            }]
        );
    }

    #[test]
    fn decides_at_once_when_every_server_agrees_or_is_lost() {
        let mut e = connected(1, vec![1, 2, 3, 4, 5]);
        e.peer_disconnected(5);
        e.start_round(Zxid::new(1, 5), 1, 0);
        e.on_notification(4, looking(vote(4, 1, 5), 1), 1);
        e.on_notification(3, looking(vote(4, 1, 5), 1), 1);
        assert_eq!(
            e.state(),
            ServerState::Looking,
            "a quorum, but server 2 has not voted yet"
        );
        assert!(e.tick(100).is_empty());
        let out = e.on_notification(2, looking(vote(4, 1, 5), 1), 2);
        assert_eq!(
            out,
            vec![ElectionOutput::Decided {
                vote: vote(4, 1, 5),
                state: ServerState::Following
            }]
        );
    }

    #[test]
    fn a_server_never_heard_from_gets_the_finalize_wait() {
        let mut e = Election::new(1, vec![1, 2, 3], timing());
        e.peer_connected(2);
        e.start_round(Zxid::ZERO, 0, 0);
        e.on_notification(2, looking(vote(2, 0, 0), 1), 1);
        assert_eq!(
            e.state(),
            ServerState::Looking,
            "server 3 may still be starting"
        );
        assert!(matches!(e.tick(250)[..], [ElectionOutput::Decided { .. }]));
    }

    #[test]
    fn higher_zxid_beats_higher_sid() {
        let mut e = connected(3, vec![1, 2, 3]);
        e.start_round(Zxid::new(1, 5), 1, 0);
        e.on_notification(1, looking(vote(1, 1, 9), 1), 0);
        assert_eq!(e.vote(), vote(1, 1, 9));
        // A higher peer epoch beats any zxid of a lower epoch.
        e.on_notification(2, looking(vote(2, 2, 0), 1), 0);
        assert_eq!(e.vote().leader, 2);
    }

    #[test]
    fn lagging_round_gets_our_vote_back_and_newer_round_resets() {
        let mut e = Election::new(1, vec![1, 2, 3], timing());
        e.start_round(Zxid::ZERO, 0, 0);
        e.start_round(Zxid::ZERO, 0, 0);
        let out = e.on_notification(2, looking(vote(2, 0, 0), 1), 0);
        assert!(matches!(out[..], [ElectionOutput::Send { to: 2, .. }]));
        assert_eq!(e.vote().leader, 1, "a stale round's vote is not adopted");
        e.on_notification(2, looking(vote(2, 0, 0), 7), 0);
        assert_eq!(e.logical_clock(), 7);
        assert_eq!(e.vote().leader, 2);
    }

    #[test]
    fn late_starter_joins_the_established_leader() {
        let mut e = Election::new(1, vec![1, 2, 3, 4, 5], timing());
        e.start_round(Zxid::ZERO, 0, 0);
        let leading = Notification {
            state: ServerState::Leading,
            vote: vote(5, 1, 3),
            election_epoch: 4,
            config_version: 0,
        };
        let following = Notification {
            state: ServerState::Following,
            ..leading
        };
        assert!(e.on_notification(4, following, 0).is_empty());
        assert!(
            e.on_notification(3, following, 0).is_empty(),
            "leader itself not heard yet"
        );
        let out = e.on_notification(5, leading, 0);
        assert_eq!(
            out,
            vec![ElectionOutput::Decided {
                vote: vote(5, 1, 3),
                state: ServerState::Following
            }]
        );
        // Decided servers answer LOOKING ones with their vote.
        let out = e.on_notification(2, looking(vote(2, 0, 0), 1), 0);
        assert!(
            matches!(out[..], [ElectionOutput::Send { to: 2, notification }] if notification.state == ServerState::Following)
        );
    }

    #[test]
    fn a_worse_vote_in_the_same_round_gets_our_better_vote_back() {
        let mut e = Election::new(4, vec![1, 2, 3, 4, 5], timing());
        e.start_round(Zxid::new(1, 0), 1, 0);
        let out = e.on_notification(3, looking(vote(3, 1, 0), 1), 5);
        assert_eq!(
            out,
            vec![ElectionOutput::Send {
                to: 3,
                notification: looking(vote(4, 1, 0), 1)
            }]
        );
    }

    #[test]
    fn silent_timeouts_back_off_up_to_the_cap() {
        let mut e = Election::new(1, vec![1, 2, 3], timing());
        e.start_round(Zxid::ZERO, 0, 0);
        let mut resends = Vec::new();
        let mut t = 0;
        while t < 10_000 {
            t += 50;
            if !e.tick(t).is_empty() {
                resends.push(t);
            }
        }
        let gaps: Vec<u64> = resends.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(&gaps[..4], &[400, 800, 1600, 1600]);
    }

    #[test]
    fn an_observer_adopts_the_voters_choice_never_answers_and_observes() {
        let mut e = Election::new(4, vec![1, 2, 3], timing()).with_observers(vec![4]);
        for p in [1, 2, 3] {
            e.peer_connected(p);
        }
        let out = e.start_round(Zxid::new(1, 9), 1, 0);
        assert_eq!(out.len(), 3, "to the voters only");
        let out = e.on_notification(1, looking(vote(3, 1, 5), 1), 1);
        assert_eq!(out.len(), 3, "a better vote is adopted and sent on");
        assert!(
            e.on_notification(2, looking(vote(2, 1, 5), 1), 2)
                .is_empty(),
            "an observer never answers a worse vote, so voters' answers cannot bounce"
        );
        assert_eq!(e.state(), ServerState::Looking, "one voter is no quorum");
        let out = e.on_notification(3, looking(vote(3, 1, 5), 1), 3);
        assert!(out.is_empty(), "two voters agree: the finalize wait starts");
        assert_eq!(
            e.tick(250),
            vec![ElectionOutput::Decided {
                vote: vote(3, 1, 5),
                state: ServerState::Observing
            }]
        );
    }

    #[test]
    fn single_voter_decides_alone() {
        let mut e = Election::new(
            1,
            vec![1],
            ElectionTiming {
                finalize_wait_ms: 0,
                ..timing()
            },
        );
        let out = e.start_round(Zxid::ZERO, 0, 0);
        assert!(matches!(
            out[..],
            [ElectionOutput::Decided {
                state: ServerState::Leading,
                ..
            }]
        ));
    }

    fn look(ticket: u64) -> Look {
        Look {
            ticket,
            epoch: 1,
            last_zxid: Zxid::new(1, 5),
            members: Members {
                version: 0,
                voters: vec![1, 2, 3],
                observers: vec![],
            },
        }
    }

    #[test]
    fn a_look_starts_a_round_once_and_its_decision_carries_the_ticket() {
        let mut e = Election::new(1, Vec::new(), timing());
        let out = e.request(ElectionRequest::Look(look(4)), 0);
        assert_eq!(out.len(), 2, "the look's members are notified");
        assert_eq!(e.logical_clock(), 1);
        assert!(
            e.request(ElectionRequest::Look(look(4)), 1).is_empty(),
            "the same look again (found in a restarted election's mailbox) is no new round"
        );
        assert_eq!(e.logical_clock(), 1);
        e.on_notification(3, looking(vote(3, 1, 5), 1), 2);
        let decided = e.tick(300);
        assert!(matches!(decided[..], [ElectionOutput::Decided { vote: v, .. }] if v.leader == 3));
        assert_eq!(
            e.decision(vote(3, 1, 5)),
            Decision {
                ticket: 4,
                vote: vote(3, 1, 5),
                round: 1
            }
        );
        e.request(ElectionRequest::Established(2), 301);
        assert_eq!(e.vote().peer_epoch, 2);
    }

    #[test]
    fn a_resumed_election_answers_with_the_served_leader_without_deciding_again() {
        let mut e = Election::new(1, Vec::new(), timing());
        let view = ElectionView::Decided {
            ticket: 4,
            vote: vote(3, 2, 5),
            members: look(4).members,
        };
        assert!(
            e.resume(view, 0).is_empty(),
            "the Zab core holds the decision"
        );
        assert_eq!(e.state(), ServerState::Following);
        let out = e.on_notification(2, looking(vote(2, 1, 0), 7), 1);
        assert!(matches!(
            out[..],
            [ElectionOutput::Send { to: 2, notification }]
                if notification.state == ServerState::Following && notification.vote.leader == 3
        ));
        assert!(
            e.request(ElectionRequest::Look(look(4)), 2).is_empty(),
            "a look it decided already is not looked again"
        );
        let mut e = Election::new(1, Vec::new(), timing());
        let out = e.resume(ElectionView::Looking(look(5)), 0);
        assert_eq!((out.len(), e.state()), (2, ServerState::Looking));
    }
}
