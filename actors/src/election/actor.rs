//! The election actor: drives the [`Election`] core. The quorum peer actor asks it for a
//! leader ([`ElectionRequest`]); it ticks the core, feeds it the links' notifications and
//! ups and downs, sends its notifications through the links and tells the quorum peer actor
//! its decision ([`Elected`]).

use super::{Election, ElectionOutput, ElectionRequest, ElectionTiming, ElectionView, Members};
use crate::peer::{PeerEvent, PeerRoster, SendPeer};
use actix::prelude::*;
use ensemble_messages::{Notification, PeerMessage, Sid};
use std::time::{Duration, Instant};

/// A request of the Zab core, for the election actor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Request(pub ElectionRequest);

/// The election decided (for the quorum peer actor, which feeds it to the Zab core).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Elected(pub super::Decision);

/// A notification named this config version: the quorum peer actor adopts it if it can and
/// answers with the members the election must count with.
#[derive(Message, Debug)]
#[rtype(result = "Members")]
pub struct ConfigHeard(pub u64);

/// Asks the quorum peer actor where the server stands (a restarted election resumes from it).
#[derive(Message, Debug)]
#[rtype(result = "ElectionView")]
pub struct GetElectionView;

/// Stops the election actor so that its supervisor restarts it (fault injection).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FailElection;

/// The quorum peer actor, as the election actor reaches it.
#[derive(Clone)]
pub struct QuorumPeerHandle {
    /// Takes the decisions.
    pub elected: Recipient<Elected>,
    /// Adopts a newer config a notification names.
    pub config_heard: Recipient<ConfigHeard>,
    /// Tells where the server stands.
    pub view: Recipient<GetElectionView>,
}

impl QuorumPeerHandle {
    /// The handle of an actor that takes all three messages.
    pub fn of<A>(addr: Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>>
            + Handler<Elected>
            + Handler<ConfigHeard>
            + Handler<GetElectionView>,
    {
        QuorumPeerHandle {
            elected: addr.clone().recipient(),
            config_heard: addr.clone().recipient(),
            view: addr.recipient(),
        }
    }
}

/// Settings of the election actor.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    /// Own sid.
    pub sid: Sid,
    /// Election timing.
    pub timing: ElectionTiming,
    /// How often the core is ticked.
    pub tick_every: Duration,
}

/// The election actor. Supervised; see its restart policy on [`Supervised`].
pub struct ElectionActor {
    settings: ElectionSettings,
    core: Election,
    roster: PeerRoster,
    quorum: QuorumPeerHandle,
    epoch: Instant,
    /// Whether a restart has yet to ask the quorum peer actor where the server stands.
    resume: bool,
}

impl ElectionActor {
    /// An election that waits for the quorum peer actor's first request; it sends through
    /// the links of `roster`.
    pub fn new(settings: ElectionSettings, roster: PeerRoster, quorum: QuorumPeerHandle) -> Self {
        ElectionActor {
            core: Election::new(settings.sid, Vec::new(), settings.timing.clone()),
            settings,
            roster,
            quorum,
            epoch: Instant::now(),
            resume: false,
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn carry_out(&mut self, outs: Vec<ElectionOutput>) {
        for out in outs {
            match out {
                ElectionOutput::Send { to, notification } => {
                    if let Some(link) = self.roster.link(to) {
                        link.do_send(SendPeer(PeerMessage::Election(notification)));
                    }
                }
                ElectionOutput::Decided { vote, state } => {
                    tracing::info!(
                        me = self.settings.sid,
                        leader = vote.leader,
                        ?state,
                        "election decided"
                    );
                    self.quorum
                        .elected
                        .do_send(Elected(self.core.decision(vote)));
                }
            }
        }
    }

    /// A notification from `from`. One naming a newer config is held until the quorum peer
    /// actor adopted it if it could: the election then counts with the members it answers.
    fn on_notification(&mut self, from: Sid, n: Notification, ctx: &mut Context<Self>) {
        if n.config_version <= self.core.config_version() {
            let outs = self.core.on_notification(from, n, self.now());
            self.carry_out(outs);
            return;
        }
        let ask = self.quorum.config_heard.send(ConfigHeard(n.config_version));
        ctx.wait(ask.into_actor(self).map(move |members, act, _| {
            let now = act.now();
            if let Ok(m) = members {
                act.core.request(ElectionRequest::Members(m), now);
            }
            let outs = act.core.on_notification(from, n, now);
            act.carry_out(outs);
        }));
    }

    /// After a restart: asks the quorum peer actor where the server stands and resumes from
    /// it; the mailbox waits meanwhile.
    fn resume(&mut self, ctx: &mut Context<Self>) {
        let ask = self.quorum.view.send(GetElectionView);
        ctx.wait(ask.into_actor(self).map(|view, act, _| match view {
            Ok(view) => {
                act.core = Election::new(act.settings.sid, Vec::new(), act.settings.timing.clone());
                let outs = act.core.resume(view, act.now());
                act.carry_out(outs);
            }
            Err(e) => tracing::warn!("the quorum peer did not say where it stands: {e}"),
        }));
    }
}

impl Actor for ElectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.settings.tick_every, |act, _| {
            let outs = act.core.tick(act.now());
            act.carry_out(outs);
        });
        if std::mem::take(&mut self.resume) {
            self.resume(ctx);
        }
    }
}

/// Restart policy: keeps its settings, links and the quorum peer's address; drops the
/// election core (its round, votes heard, timers) and asks the quorum peer actor where the
/// server stands. A server that serves keeps its place (a follower stays following, the
/// leader keeps leading): the election only answers notifications with its leader. A server
/// that was looking starts a new round for the look it waits for. Nothing acknowledged is
/// lost: the election holds no durable state and never touches the log.
impl Supervised for ElectionActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(sid = self.settings.sid, "election restarting");
        self.resume = true;
    }
}

impl Handler<Request> for ElectionActor {
    type Result = ();

    fn handle(&mut self, Request(request): Request, _: &mut Context<Self>) {
        let outs = self.core.request(request, self.now());
        self.carry_out(outs);
    }
}

impl Handler<PeerEvent> for ElectionActor {
    type Result = ();

    fn handle(&mut self, ev: PeerEvent, ctx: &mut Context<Self>) {
        let outs = match ev {
            PeerEvent::Connected(sid) => self.core.peer_connected(sid),
            PeerEvent::Disconnected(sid) => self.core.peer_disconnected(sid),
            PeerEvent::Message(from, PeerMessage::Election(n)) => {
                return self.on_notification(from, n, ctx)
            }
            PeerEvent::Message(..) => return,
        };
        self.carry_out(outs);
    }
}

impl Handler<FailElection> for ElectionActor {
    type Result = ();

    fn handle(&mut self, _: FailElection, ctx: &mut Context<Self>) {
        tracing::warn!(sid = self.settings.sid, "election failure injected");
        ctx.stop();
    }
}
