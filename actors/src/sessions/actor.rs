//! The session tracker actor: drives the [`SessionExpiry`] core on a timer of its own.
//!
//! It learns the server's role, the replicated sessions and its clients' activity from the
//! request pipeline actor, and reports from followers as the pipeline forwards them. A
//! leader's expired sessions go back to the pipeline as a [`ProposeExpiry`]; a
//! follower's client activity goes to the leader over the peer link as a `SessionTouch`.

use super::{ExpiryAction, ExpiryRole, SessionChange, SessionExpiry};
use crate::peer::{PeerRoster, SendPeer};
use actix::prelude::*;
use ensemble_messages::zk::SessionId;
use ensemble_messages::PeerMessage;
use std::time::{Duration, Instant};

/// To the request pipeline: propose closing these sessions, whose deadline passed.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct ProposeExpiry(pub Vec<SessionId>);

/// To the request pipeline: send the tracker the role and the sessions again (a
/// [`SessionsState`]), as after a restart.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ResyncSessions;

/// The server's role and every replicated session with its timeout: replaces what the
/// tracker knew (at start, after a snapshot or a reload, and on [`ResyncSessions`]).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SessionsState {
    /// The server's part in session expiry.
    pub role: ExpiryRole,
    /// The replicated open sessions and their timeouts in ms.
    pub sessions: Vec<(SessionId, i32)>,
}

/// The server's part in session expiry changed.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RoleChanged(pub ExpiryRole);

/// Applied txns opened or closed these sessions, in order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SessionsChanged(pub Vec<SessionChange>);

/// This server's clients were active on these sessions.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ClientActivity(pub Vec<SessionId>);

/// A follower reported its clients' activity on these sessions (a `SessionTouch`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct TouchesReported(pub Vec<SessionId>);

/// Stops the actor so that its supervisor restarts it (fault injection).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FailSessions;

/// Where the tracker's requests to the request pipeline go.
#[derive(Clone)]
pub struct PipelineHandle {
    /// Expiry proposals.
    pub propose: Recipient<ProposeExpiry>,
    /// Requests for the role and the sessions.
    pub resync: Recipient<ResyncSessions>,
}

/// The session tracker (the server side of the 1/3–2/3 scheme), on the node's arbiter.
///
/// Restart policy: a restart loses the in-memory deadlines and what it knew of the role and
/// the sessions, so it asks the request pipeline for both ([`ResyncSessions`]) and checks
/// nothing until they arrive; client activity meanwhile is kept. A leader then gives every
/// session a whole timeout again, as a new leader does: a restart never expires a live
/// session early, and it loses nothing acknowledged (sessions and their closes are txns, which
/// the tracker only proposes).
pub struct SessionsActor {
    tick_ms: u64,
    core: SessionExpiry,
    pipeline: PipelineHandle,
    roster: PeerRoster,
    epoch: Instant,
    /// Whether the role and the sessions arrived since the last (re)start.
    synced: bool,
}

impl SessionsActor {
    /// A tracker checked every half `tick_ms`, asking `pipeline` and reporting over `roster`.
    pub fn new(tick_ms: u64, pipeline: PipelineHandle, roster: PeerRoster) -> Self {
        SessionsActor {
            tick_ms,
            core: SessionExpiry::new(tick_ms),
            pipeline,
            roster,
            epoch: Instant::now(),
            synced: false,
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Runs a check when one is due and carries out what it asks.
    fn check(&mut self) {
        let now = self.now();
        if !self.synced || !self.core.due(now) {
            return;
        }
        match self.core.check(now) {
            Some(ExpiryAction::Expire(ids)) => self.pipeline.propose.do_send(ProposeExpiry(ids)),
            Some(ExpiryAction::Report { leader, sessions }) => {
                if let Some(link) = self.roster.link(leader) {
                    link.do_send(SendPeer(PeerMessage::SessionTouch(sessions)));
                }
            }
            None => {}
        }
    }
}

impl Actor for SessionsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pipeline.resync.do_send(ResyncSessions);
        let every = Duration::from_millis((self.tick_ms / 4).clamp(5, 50));
        ctx.run_interval(every, |act, _| act.check());
    }
}

impl Supervised for SessionsActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("session tracker restarting: every session gets a whole timeout");
        self.core = SessionExpiry::new(self.tick_ms);
        self.synced = false;
    }
}

impl Handler<SessionsState> for SessionsActor {
    type Result = ();

    fn handle(&mut self, state: SessionsState, _: &mut Context<Self>) {
        self.core.reset(state.sessions);
        self.core.set_role(state.role);
        self.synced = true;
    }
}

impl Handler<RoleChanged> for SessionsActor {
    type Result = ();

    fn handle(&mut self, RoleChanged(role): RoleChanged, _: &mut Context<Self>) {
        self.core.set_role(role);
    }
}

impl Handler<SessionsChanged> for SessionsActor {
    type Result = ();

    fn handle(&mut self, SessionsChanged(changes): SessionsChanged, _: &mut Context<Self>) {
        for change in changes {
            self.core.changed(change);
        }
    }
}

impl Handler<ClientActivity> for SessionsActor {
    type Result = ();

    fn handle(&mut self, ClientActivity(ids): ClientActivity, _: &mut Context<Self>) {
        self.core.touched(ids);
    }
}

impl Handler<TouchesReported> for SessionsActor {
    type Result = ();

    fn handle(&mut self, TouchesReported(ids): TouchesReported, _: &mut Context<Self>) {
        let now = self.now();
        self.core.reported(&ids, now);
    }
}

impl Handler<FailSessions> for SessionsActor {
    type Result = ();

    fn handle(&mut self, _: FailSessions, ctx: &mut Context<Self>) {
        tracing::warn!("session tracker failure injected");
        ctx.stop();
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
