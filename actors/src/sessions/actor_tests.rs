//! The session tracker actor against a stand-in request pipeline.

use super::*;
use crate::peer::{PeerEvent, PeerIdentity, PeerSinks};
use std::sync::{Arc, Mutex};

const S1: SessionId = SessionId(1);
const S2: SessionId = SessionId(2);
const TICK_MS: u64 = 20;
/// Twenty times the 50 ms pacing of client activity below: a busy machine that stalls the
/// test for a while still does not let an active session fall silent.
const TIMEOUT_MS: i32 = 1_000;

/// What the tracker asked of the request pipeline.
#[derive(Default)]
struct Asked {
    expiries: Vec<(Instant, SessionId)>,
    resyncs: usize,
}

/// Records what it is asked.
struct Quorum(Arc<Mutex<Asked>>);

impl Actor for Quorum {
    type Context = Context<Self>;
}

impl Handler<ProposeExpiry> for Quorum {
    type Result = ();

    fn handle(&mut self, ProposeExpiry(ids): ProposeExpiry, _: &mut Context<Self>) {
        let now = Instant::now();
        let mut asked = self.0.lock().unwrap();
        asked.expiries.extend(ids.into_iter().map(|id| (now, id)));
    }
}

impl Handler<ResyncSessions> for Quorum {
    type Result = ();

    fn handle(&mut self, _: ResyncSessions, _: &mut Context<Self>) {
        self.0.lock().unwrap().resyncs += 1;
    }
}

impl Handler<PeerEvent> for Quorum {
    type Result = ();

    fn handle(&mut self, _: PeerEvent, _: &mut Context<Self>) {}
}

/// A tracker wired to a recording quorum actor, and what that records.
fn start() -> (Addr<SessionsActor>, Arc<Mutex<Asked>>) {
    let asked = Arc::new(Mutex::new(Asked::default()));
    let quorum = Quorum(asked.clone()).start();
    let identity = PeerIdentity {
        sid: 1,
        secret: None,
        tls: None,
    };
    let sinks = PeerSinks::new(quorum.clone().recipient(), quorum.clone().recipient());
    let roster = PeerRoster::new(identity, sinks);
    let handle = PipelineHandle {
        propose: quorum.clone().recipient(),
        resync: quorum.recipient(),
    };
    let tracker = Supervisor::start(move |_| SessionsActor::new(TICK_MS, handle, roster));
    (tracker, asked)
}

/// Waits (at most 5 s) until `done` holds of what the quorum actor was asked.
async fn wait_for(asked: &Mutex<Asked>, done: impl Fn(&Asked) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(&asked.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out");
        actix::clock::sleep(Duration::from_millis(5)).await;
    }
}

/// A deadline at least a whole timeout after `since` (less the clock's millisecond rounding).
fn assert_whole_timeout(at: Instant, since: Instant) {
    assert!(at - since >= Duration::from_millis(TIMEOUT_MS as u64 - 1));
}

fn leader_of(sessions: &[SessionId]) -> SessionsState {
    SessionsState {
        role: ExpiryRole::Leader,
        sessions: sessions.iter().map(|id| (*id, TIMEOUT_MS)).collect(),
    }
}

#[test]
fn a_leader_proposes_expiring_only_silent_sessions() {
    System::new().block_on(async {
        let (tracker, asked) = start();
        wait_for(&asked, |a| a.resyncs == 1).await;
        let since = Instant::now();
        tracker.do_send(leader_of(&[S1, S2]));
        // Session 2's client is active every 50 ms; session 1's is silent.
        while asked.lock().unwrap().expiries.is_empty() {
            tracker.do_send(ClientActivity(vec![S2]));
            actix::clock::sleep(Duration::from_millis(50)).await;
        }
        let asked = asked.lock().unwrap();
        let (at, id) = asked.expiries[0];
        assert_eq!(id, S1);
        assert_whole_timeout(at, since);
    });
}

#[test]
fn sessions_closed_by_txns_are_not_expired_and_followers_reports_keep_them() {
    System::new().block_on(async {
        let (tracker, asked) = start();
        tracker.do_send(leader_of(&[]));
        tracker.do_send(SessionsChanged(vec![
            SessionChange::Opened(S1, TIMEOUT_MS),
            SessionChange::Opened(S2, TIMEOUT_MS),
            SessionChange::Closed(S1),
        ]));
        // Reported for twice its timeout.
        for _ in 0..(2 * TIMEOUT_MS / 50) {
            tracker.do_send(TouchesReported(vec![S2]));
            actix::clock::sleep(Duration::from_millis(50)).await;
        }
        assert!(asked.lock().unwrap().expiries.is_empty());
        tracker.do_send(RoleChanged(ExpiryRole::Idle));
        actix::clock::sleep(Duration::from_millis(3 * TIMEOUT_MS as u64)).await;
        assert!(asked.lock().unwrap().expiries.is_empty(), "only a leader");
    });
}

#[test]
fn a_restart_asks_again_and_gives_every_session_a_whole_timeout() {
    System::new().block_on(async {
        let (tracker, asked) = start();
        tracker.do_send(leader_of(&[S1]));
        actix::clock::sleep(Duration::from_millis(TIMEOUT_MS as u64 / 2)).await;
        tracker.do_send(FailSessions);
        wait_for(&asked, |a| a.resyncs == 2).await;
        // Until the quorum actor answers, nothing is checked.
        actix::clock::sleep(Duration::from_millis(2 * TIMEOUT_MS as u64)).await;
        assert!(asked.lock().unwrap().expiries.is_empty());
        let resynced = Instant::now();
        tracker.do_send(leader_of(&[S1]));
        wait_for(&asked, |a| !a.expiries.is_empty()).await;
        let (at, id) = asked.lock().unwrap().expiries[0];
        assert_eq!(id, S1);
        assert_whole_timeout(at, resynced);
    });
}
