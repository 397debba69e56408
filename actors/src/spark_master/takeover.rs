//! Fast failover (an ensemble addition), as a pure state machine: a STANDBY master decides
//! whether the ALIVE master's process is provably gone, and if so takes over its ensemble session
//! and closes it, so that the ensemble deletes its latch at once instead of after the session
//! timeout.
//!
//! The ALIVE master publishes its session (id, password, RPC address, epoch) in an ephemeral
//! znode that only the masters' credential reads. A standby probes the RPC address and asks the
//! process there which session it holds:
//! - the connection is refused (the host answered with a reset: nothing listens there): the
//!   process is gone, take over;
//! - a process answers with another session: the port belongs to another process (a master
//!   restarted on the same port), or to the same process after it gave up the published session
//!   (it reported itself deposed before it opened another one): nobody acts under the published
//!   session, take over;
//! - the process answers with the published session: it lives; keep the connection and probe
//!   again as soon as it closes;
//! - anything else (a timeout, an unreachable host, a connection closed without an answer) is no
//!   proof: a slow, stopped or partitioned master keeps its session until it expires, and is
//!   fenced by epoch as before. Probe again after [`RETRY_MS`].
//!
//! A record is believed only when the ensemble says the same session owns both the leading latch
//! and the record's znode, and the session is not this master's own.
//!
//! The actor side (probes, the take-over itself) is in `takeover_io.rs`.

use ensemble_messages::spark::MasterEpoch;
use ensemble_messages::zk::SessionId;
use serde::{Deserialize, Serialize};

/// How long after an inconclusive probe or a failed take-over the next probe starts, ms.
pub const RETRY_MS: u64 = 500;

/// For this long after the held connection closed, an inconclusive probe is retried after
/// [`FAST_RETRY_MS`] instead: a process being killed closes its connections before its
/// listening socket, so the first probe may be accepted and then reset.
pub const FAST_WINDOW_MS: u64 = 1000;

/// See [`FAST_WINDOW_MS`].
pub const FAST_RETRY_MS: u64 = 20;

/// The length of a ZooKeeper session password.
const PASSWORD_LEN: usize = 16;

/// What the ALIVE master publishes: enough to take its session over.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Its ensemble session.
    pub session_id: SessionId,
    /// The session's password.
    pub password: Vec<u8>,
    /// Its RPC address, `host:port`.
    pub rpc: String,
    /// Its leadership epoch.
    pub epoch: MasterEpoch,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("session_id", &format_args!("{}", self.session_id))
            .field("password", &"<hidden>")
            .field("rpc", &self.rpc)
            .field("epoch", &format_args!("0x{:x}", self.epoch))
            .finish()
    }
}

impl SessionRecord {
    /// Checks a record read from the ensemble (its bytes are hostile): a session, a 16-byte
    /// password and a `host:port` address.
    pub fn checked(self) -> Result<SessionRecord, String> {
        if self.session_id == SessionId::NONE {
            return Err("session record names no session".into());
        }
        if self.password.len() != PASSWORD_LEN {
            return Err(format!(
                "session record has a {}-byte password",
                self.password.len()
            ));
        }
        let port = self
            .rpc
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then(|| p.parse::<u16>().ok()).flatten());
        if port.is_none() {
            return Err(format!(
                "session record address {:?} is not host:port",
                self.rpc
            ));
        }
        Ok(self)
    }
}

/// What a probe of the ALIVE master's RPC port found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The connection was refused: the host answered and nothing listens on the port.
    Refused,
    /// A process answered: the session it holds ([`SessionId::NONE`]: none yet).
    Answered(SessionId),
    /// The connection that answered closed (the process may have died).
    Closed,
    /// No proof either way: a timeout, an unreachable host, no answer.
    Inconclusive(String),
}

/// An input to the take-over core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// This STANDBY master looked at the election: the session that owns the leading latch, and
    /// the published record with the session that owns its znode (None: none published yet).
    Leader {
        /// Whether this master's latch comes right after the leader's: only that master takes
        /// the leader's session over (two at once would move it from each other and fail).
        next_in_line: bool,
        /// The leading latch's ephemeral owner.
        latch_owner: SessionId,
        /// The record and its znode's ephemeral owner.
        record: Option<(SessionRecord, SessionId)>,
    },
    /// This master leads, or its session ended: nothing to watch.
    Idle,
    /// A probe for the session `session_id` found `outcome`.
    Probed {
        /// The session the probe was for.
        session_id: SessionId,
        /// What it found.
        outcome: Probe,
    },
    /// The take-over of `session_id` ended (Err: why it failed).
    TakenOver {
        /// The session.
        session_id: SessionId,
        /// Whether it was closed (or already gone).
        result: Result<(), String>,
    },
    /// Time passed.
    Tick,
}

/// What the link must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Probe `rpc` (replacing any probe under way) for the session `session_id`.
    Probe {
        /// The session the probe is for.
        session_id: SessionId,
        /// The address to probe.
        rpc: String,
    },
    /// Stop the probe under way.
    StopProbe,
    /// Take over the record's session and close it.
    TakeOver {
        /// The session to close.
        record: SessionRecord,
        /// Why its process is known to be gone, for the log.
        why: String,
    },
    /// A record was not believed, for the log.
    Ignored(String),
}

/// Where the watch of one published session stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// A probe is under way.
    Probing,
    /// The process answered with the session; its connection is held open.
    Holding,
    /// No proof; the next probe starts at this time.
    Waiting(u64),
    /// The take-over is under way or done.
    Taking,
}

/// A STANDBY master's watch of the ALIVE master's session.
#[derive(Debug)]
pub struct Takeover {
    own_session: SessionId,
    target: Option<(SessionRecord, Phase)>,
    /// Until when inconclusive probes are retried quickly (the held connection just closed).
    fast_until: u64,
}

impl Takeover {
    /// A watch by a master that holds `own_session`.
    pub fn new(own_session: SessionId) -> Self {
        Takeover {
            own_session,
            target: None,
            fast_until: 0,
        }
    }

    /// Feeds one input at `now` (ms) and returns what to do.
    pub fn step(&mut self, input: Input, now: u64) -> Vec<Output> {
        match input {
            Input::Leader {
                next_in_line,
                latch_owner,
                record,
            } => match next_in_line {
                true => self.leader(latch_owner, record),
                false => self.forget(),
            },
            Input::Idle => self.forget(),
            Input::Probed {
                session_id,
                outcome,
            } => self.probed(session_id, outcome, now),
            Input::TakenOver { session_id, result } => {
                let pause = self.pause(now);
                let Some((record, phase)) = self.target.as_mut() else {
                    return Vec::new();
                };
                if record.session_id == session_id && result.is_err() {
                    *phase = Phase::Waiting(now + pause);
                }
                Vec::new()
            }
            Input::Tick => match &mut self.target {
                Some((record, phase)) if matches!(*phase, Phase::Waiting(t) if now >= t) => {
                    *phase = Phase::Probing;
                    vec![probe(record)]
                }
                _ => Vec::new(),
            },
        }
    }

    fn leader(
        &mut self,
        latch_owner: SessionId,
        record: Option<(SessionRecord, SessionId)>,
    ) -> Vec<Output> {
        let Some((record, znode_owner)) = record else {
            return self.forget();
        };
        let doubt = if record.session_id == self.own_session {
            Some("it names this master's own session".to_string())
        } else if znode_owner != record.session_id {
            Some(format!(
                "its znode belongs to session {znode_owner}, not {}",
                record.session_id
            ))
        } else if latch_owner != record.session_id {
            Some(format!(
                "the leading latch belongs to session {latch_owner}, not {}",
                record.session_id
            ))
        } else {
            None
        };
        if let Some(why) = doubt {
            let mut out = self.forget();
            out.push(Output::Ignored(format!("session record ignored: {why}")));
            return out;
        }
        if self
            .target
            .as_ref()
            .is_some_and(|(r, _)| r.session_id == record.session_id)
        {
            return Vec::new();
        }
        let out = probe(&record);
        self.target = Some((record, Phase::Probing));
        vec![out]
    }

    fn forget(&mut self) -> Vec<Output> {
        match self.target.take() {
            Some(_) => vec![Output::StopProbe],
            None => Vec::new(),
        }
    }

    /// How long to wait before probing again after an inconclusive probe or a failed take-over.
    fn pause(&self, now: u64) -> u64 {
        if now < self.fast_until {
            FAST_RETRY_MS
        } else {
            RETRY_MS
        }
    }

    fn probed(&mut self, session_id: SessionId, outcome: Probe, now: u64) -> Vec<Output> {
        let pause = self.pause(now);
        let Some((record, phase)) = self.target.as_mut() else {
            return Vec::new();
        };
        if record.session_id != session_id || *phase == Phase::Taking {
            return Vec::new();
        }
        let why = match outcome {
            Probe::Refused => format!("its RPC port {} refuses connections", record.rpc),
            Probe::Answered(s) if s != session_id => format!(
                "the process on its RPC port {} holds session {s}, not {session_id}",
                record.rpc
            ),
            Probe::Answered(_) => {
                *phase = Phase::Holding;
                return Vec::new();
            }
            Probe::Closed if *phase == Phase::Holding => {
                *phase = Phase::Probing;
                self.fast_until = now + FAST_WINDOW_MS;
                return vec![probe(record)];
            }
            Probe::Closed => return Vec::new(),
            Probe::Inconclusive(_) => {
                *phase = Phase::Waiting(now + pause);
                return Vec::new();
            }
        };
        *phase = Phase::Taking;
        vec![Output::TakeOver {
            record: record.clone(),
            why,
        }]
    }
}

fn probe(record: &SessionRecord) -> Output {
    Output::Probe {
        session_id: record.session_id,
        rpc: record.rpc.clone(),
    }
}

#[cfg(test)]
#[path = "takeover_tests.rs"]
mod tests;
