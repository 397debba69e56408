use super::*;

const OWN: SessionId = SessionId(0x100);
const LEADER: SessionId = SessionId(0x200);
const OTHER: SessionId = SessionId(0x300);

fn record(session_id: SessionId) -> SessionRecord {
    SessionRecord {
        session_id,
        password: vec![7; 16],
        rpc: "127.0.0.11:7077".into(),
        epoch: 0x1_0000_0004,
    }
}

/// A standby that read a sound record of the leader's session.
fn watching() -> (Takeover, Vec<Output>) {
    let mut t = Takeover::new(OWN);
    let out = t.step(
        Input::Leader {
            next_in_line: true,
            latch_owner: LEADER,
            record: Some((record(LEADER), LEADER)),
        },
        0,
    );
    (t, out)
}

fn probed(t: &mut Takeover, outcome: Probe, now: u64) -> Vec<Output> {
    t.step(
        Input::Probed {
            session_id: LEADER,
            outcome,
        },
        now,
    )
}

fn takes_over(out: &[Output]) -> bool {
    matches!(out, [Output::TakeOver { record, .. }] if record.session_id == LEADER)
}

fn probes(out: &[Output]) -> bool {
    matches!(out, [Output::Probe { session_id: LEADER, rpc }] if rpc == "127.0.0.11:7077")
}

#[test]
fn a_sound_record_is_probed_once() {
    let (mut t, out) = watching();
    assert!(probes(&out), "{out:?}");
    let again = t.step(
        Input::Leader {
            next_in_line: true,
            latch_owner: LEADER,
            record: Some((record(LEADER), LEADER)),
        },
        10,
    );
    assert_eq!(
        again,
        vec![],
        "the same record again starts no second probe"
    );
}

/// Two standbys taking the session over at once move it from each other and both fail: only
/// the one right behind the leader watches it.
#[test]
fn only_the_master_next_in_line_watches_the_leader() {
    let mut t = Takeover::new(OWN);
    let further = |next_in_line| Input::Leader {
        next_in_line,
        latch_owner: LEADER,
        record: Some((record(LEADER), LEADER)),
    };
    assert_eq!(t.step(further(false), 0), vec![]);
    assert!(probes(&t.step(further(true), 1)));
    assert_eq!(t.step(further(false), 2), vec![Output::StopProbe]);
    assert_eq!(probed(&mut t, Probe::Refused, 3), vec![]);
}

#[test]
fn a_refused_connection_is_proof_and_the_session_is_taken_over_once() {
    let (mut t, _) = watching();
    let out = probed(&mut t, Probe::Refused, 5);
    assert!(takes_over(&out), "{out:?}");
    let Output::TakeOver { why, .. } = &out[0] else {
        unreachable!()
    };
    assert!(why.contains("refuses connections"), "{why}");
    assert_eq!(
        probed(&mut t, Probe::Refused, 6),
        vec![],
        "no second take-over"
    );
    assert_eq!(t.step(Input::Tick, 10_000), vec![]);
}

#[test]
fn a_timeout_is_no_proof_the_standby_waits_and_probes_again() {
    let (mut t, _) = watching();
    let out = probed(&mut t, Probe::Inconclusive("timed out".into()), 100);
    assert_eq!(out, vec![], "no take-over on a timeout");
    assert_eq!(t.step(Input::Tick, 100 + RETRY_MS - 1), vec![]);
    let out = t.step(Input::Tick, 100 + RETRY_MS);
    assert!(probes(&out), "{out:?}");
    assert_eq!(t.step(Input::Tick, 100 + RETRY_MS + 1), vec![]);
}

#[test]
fn the_live_master_answering_with_its_session_is_held_and_probed_again_when_it_closes() {
    let (mut t, _) = watching();
    assert_eq!(probed(&mut t, Probe::Answered(LEADER), 5), vec![]);
    assert_eq!(
        t.step(Input::Tick, 100_000),
        vec![],
        "held: no periodic probe"
    );
    let out = probed(&mut t, Probe::Closed, 200_000);
    assert!(
        probes(&out),
        "a closed connection is probed again at once: {out:?}"
    );
    assert!(takes_over(&probed(&mut t, Probe::Refused, 200_001)));
}

/// A killed process's connections close before its listening socket: the probe right after
/// may be accepted and reset. Such probes are retried quickly for a while, then at the usual
/// pace; a reset is never taken for proof.
#[test]
fn after_the_held_connection_closes_inconclusive_probes_are_retried_quickly_for_a_while() {
    let (mut t, _) = watching();
    assert_eq!(probed(&mut t, Probe::Answered(LEADER), 5), vec![]);
    assert!(probes(&probed(&mut t, Probe::Closed, 1000)));
    let reset = || Probe::Inconclusive("connection reset".into());
    assert_eq!(probed(&mut t, reset(), 1001), vec![], "a reset is no proof");
    assert_eq!(t.step(Input::Tick, 1001 + FAST_RETRY_MS - 1), vec![]);
    assert!(probes(&t.step(Input::Tick, 1001 + FAST_RETRY_MS)));
    let late = 1000 + FAST_WINDOW_MS;
    assert_eq!(probed(&mut t, reset(), late), vec![]);
    assert_eq!(
        t.step(Input::Tick, late + FAST_RETRY_MS),
        vec![],
        "the window is over"
    );
    assert!(probes(&t.step(Input::Tick, late + RETRY_MS)));
    assert!(takes_over(&probed(
        &mut t,
        Probe::Refused,
        late + RETRY_MS + 1
    )));
}

#[test]
fn a_closed_connection_alone_is_no_proof() {
    let (mut t, _) = watching();
    assert_eq!(
        probed(&mut t, Probe::Closed, 5),
        vec![],
        "not holding: ignored"
    );
    let out = probed(&mut t, Probe::Inconclusive("closed unanswered".into()), 6);
    assert_eq!(out, vec![]);
}

/// A master restarted on the same port holds a new session: the published one has no process.
#[test]
fn another_session_on_the_port_is_proof() {
    for other in [SessionId::NONE, OTHER, OWN] {
        let (mut t, _) = watching();
        let out = probed(&mut t, Probe::Answered(other), 5);
        assert!(takes_over(&out), "{other}: {out:?}");
    }
}

#[test]
fn records_of_other_sessions_or_of_our_own_are_ignored() {
    let cases = [
        (OWN, record(OWN), OWN, "own session"),
        (
            LEADER,
            record(LEADER),
            OTHER,
            "znode belongs to session 0x300",
        ),
        (
            OTHER,
            record(LEADER),
            LEADER,
            "leading latch belongs to session 0x300",
        ),
    ];
    for (latch_owner, r, znode_owner, why) in cases {
        let mut t = Takeover::new(OWN);
        let out = t.step(
            Input::Leader {
                next_in_line: true,
                latch_owner,
                record: Some((r, znode_owner)),
            },
            0,
        );
        assert!(
            matches!(&out[..], [Output::Ignored(w)] if w.contains(why)),
            "{why}: {out:?}"
        );
        assert_eq!(
            t.step(
                Input::Probed {
                    session_id: LEADER,
                    outcome: Probe::Refused
                },
                1
            ),
            vec![],
            "nothing is taken over on an ignored record"
        );
    }
}

#[test]
fn a_new_leader_or_none_replaces_the_target_and_stale_probes_are_ignored() {
    let (mut t, _) = watching();
    let out = t.step(
        Input::Leader {
            next_in_line: true,
            latch_owner: OTHER,
            record: None,
        },
        5,
    );
    assert_eq!(out, vec![Output::StopProbe]);
    assert_eq!(probed(&mut t, Probe::Refused, 6), vec![], "no target");
    let (mut t, _) = watching();
    let out = t.step(
        Input::Leader {
            next_in_line: true,
            latch_owner: OTHER,
            record: Some((record(OTHER), OTHER)),
        },
        5,
    );
    assert!(matches!(
        &out[..],
        [Output::Probe {
            session_id: OTHER,
            ..
        }]
    ));
    assert_eq!(
        probed(&mut t, Probe::Refused, 6),
        vec![],
        "a probe for the old one"
    );
    assert_eq!(t.step(Input::Idle, 7), vec![Output::StopProbe]);
    assert_eq!(t.step(Input::Idle, 8), vec![]);
}

#[test]
fn a_failed_take_over_is_retried_through_a_new_probe() {
    let (mut t, _) = watching();
    assert!(takes_over(&probed(&mut t, Probe::Refused, 5)));
    let failed = Input::TakenOver {
        session_id: LEADER,
        result: Err("connection loss".into()),
    };
    assert_eq!(t.step(failed, 10), vec![]);
    assert_eq!(t.step(Input::Tick, 10 + RETRY_MS - 1), vec![]);
    assert!(probes(&t.step(Input::Tick, 10 + RETRY_MS)));
    assert!(takes_over(&probed(&mut t, Probe::Refused, 600)));
    let done = Input::TakenOver {
        session_id: LEADER,
        result: Ok(()),
    };
    assert_eq!(t.step(done, 700), vec![]);
    assert_eq!(t.step(Input::Tick, 100_000), vec![]);
}

#[test]
fn hostile_records_are_refused_and_the_password_is_never_shown() {
    assert!(record(LEADER).checked().is_ok());
    let mut r = record(LEADER);
    r.session_id = SessionId::NONE;
    assert!(r.checked().is_err());
    let mut r = record(LEADER);
    r.password = vec![1; 3];
    assert!(r.checked().unwrap_err().contains("3-byte password"));
    for rpc in ["", "host", ":7077", "h:99999", "h:x"] {
        let mut r = record(LEADER);
        r.rpc = rpc.into();
        assert!(r.checked().is_err(), "{rpc}");
    }
    let shown = format!("{:?}", record(LEADER));
    assert!(
        shown.contains("<hidden>") && !shown.contains("[7, 7"),
        "{shown}"
    );
}
