//! Scripted unit tests of the Zab roles: feed inputs, compare the exact outputs.

use super::*;
use crate::election::ElectionTiming;
use ensemble_messages::{Notification, PeerMessage, ServerState, Sid, Txn, Vote, ZabMessage, Zxid};

fn timing() -> PeerTiming {
    PeerTiming {
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        election: ElectionTiming {
            finalize_wait_ms: 0,
            initial_timeout_ms: 50,
            max_timeout_ms: 800,
        },
        diff_window: 3,
    }
}

fn txn(e: u32, c: u32) -> Txn {
    Txn {
        zxid: Zxid::new(e, c),
        origin: 9,
        request_id: 0,
        body: vec![c as u8],
    }
}

fn zab(from: Sid, msg: ZabMessage) -> Input {
    Input::Message {
        from,
        msg: PeerMessage::Zab(msg),
    }
}

fn sends(outs: &[Output]) -> Vec<(Sid, ZabMessage)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: PeerMessage::Zab(m),
            } => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

/// Server 1 of {1,2,3} made to follow 3 with the given durable state.
fn follower_of_3(durable: Durable) -> QuorumPeer {
    let mut p = QuorumPeer::new(1, vec![1, 2, 3], timing(), durable);
    p.start(0);
    let leading = Notification {
        state: ServerState::Leading,
        vote: Vote {
            leader: 3,
            zxid: Zxid::new(1, 5),
            peer_epoch: 1,
        },
        election_epoch: 1,
    };
    let following = Notification {
        state: ServerState::Following,
        ..leading
    };
    p.step(
        Input::Message {
            from: 2,
            msg: PeerMessage::Election(following),
        },
        0,
    );
    let outs = p.step(
        Input::Message {
            from: 3,
            msg: PeerMessage::Election(leading),
        },
        0,
    );
    assert!(matches!(
        &sends(&outs)[..],
        [(3, ZabMessage::FollowerInfo { .. })]
    ));
    p
}

#[test]
fn follower_acks_newleader_only_after_txns_then_current_epoch_are_durable() {
    let mut p = follower_of_3(Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        ..Durable::default()
    });
    let outs = p.step(zab(3, ZabMessage::LeaderInfo { new_epoch: 2 }), 1);
    assert_eq!(
        outs,
        vec![Output::Persist {
            op: StorageOp::AcceptedEpoch(2),
            token: Some(PersistToken::AcceptedEpoch(2))
        }],
        "the accepted epoch is written before ACKEPOCH"
    );
    let outs = p.step(Input::Persisted(PersistToken::AcceptedEpoch(2)), 2);
    assert_eq!(
        sends(&outs),
        vec![(
            3,
            ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: Zxid::ZERO
            }
        )]
    );
    let outs = p.step(
        zab(
            3,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: None,
                snapshot: None,
                txns: vec![txn(1, 1), txn(1, 2)],
            },
        ),
        3,
    );
    assert_eq!(
        outs,
        vec![
            Output::Persist {
                op: StorageOp::Append(vec![txn(1, 1), txn(1, 2)]),
                token: Some(PersistToken::Txns(Zxid::new(1, 2)))
            },
            Output::Persist {
                op: StorageOp::CurrentEpoch(2),
                token: Some(PersistToken::CurrentEpoch(2))
            },
        ]
    );
    assert!(sends(&p.step(Input::Persisted(PersistToken::Txns(Zxid::new(1, 2))), 4)).is_empty());
    let outs = p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 5);
    assert_eq!(
        sends(&outs),
        vec![(3, ZabMessage::AckNewLeader { epoch: 2 })]
    );
    let outs = p.step(
        zab(
            3,
            ZabMessage::UpToDate {
                committed: Zxid::new(1, 2),
            },
        ),
        6,
    );
    assert_eq!(outs, vec![Output::Apply(vec![txn(1, 1), txn(1, 2)])]);
    assert!(p.status().serving);
}

fn serving_follower() -> QuorumPeer {
    let mut p = follower_of_3(Durable {
        accepted_epoch: 2,
        current_epoch: 1,
        ..Durable::default()
    });
    p.step(zab(3, ZabMessage::LeaderInfo { new_epoch: 2 }), 1);
    p.step(
        zab(
            3,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: None,
                snapshot: None,
                txns: vec![],
            },
        ),
        2,
    );
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 3);
    p.step(
        zab(
            3,
            ZabMessage::UpToDate {
                committed: Zxid::ZERO,
            },
        ),
        4,
    );
    assert!(p.status().serving);
    p
}

#[test]
fn follower_logs_in_order_acks_after_disk_and_applies_on_commit() {
    let mut p = serving_follower();
    let outs = p.step(zab(3, ZabMessage::Proposal(txn(2, 1))), 5);
    assert_eq!(
        outs,
        vec![Output::Persist {
            op: StorageOp::Append(vec![txn(2, 1)]),
            token: Some(PersistToken::Txns(Zxid::new(2, 1)))
        }]
    );
    let outs = p.step(Input::Persisted(PersistToken::Txns(Zxid::new(2, 1))), 6);
    assert_eq!(sends(&outs), vec![(3, ZabMessage::Ack(Zxid::new(2, 1)))]);
    let outs = p.step(zab(3, ZabMessage::Commit(Zxid::new(2, 1))), 7);
    assert_eq!(outs, vec![Output::Apply(vec![txn(2, 1)])]);
    // A stale epoch's proposal and a duplicate are ignored.
    assert!(p
        .step(zab(3, ZabMessage::Proposal(txn(1, 9))), 8)
        .is_empty());
    assert!(p
        .step(zab(3, ZabMessage::Proposal(txn(2, 1))), 9)
        .is_empty());
    assert!(p.status().serving);
}

#[test]
fn follower_rejects_a_gap_in_proposals_by_looking_again() {
    let mut p = serving_follower();
    p.step(zab(3, ZabMessage::Proposal(txn(2, 2))), 5);
    assert_eq!(p.status().state, ServerState::Looking);
}

#[test]
fn follower_that_hears_nothing_for_sync_limit_goes_looking() {
    let mut p = serving_follower();
    p.step(Input::Tick, 400);
    assert_eq!(p.status().state, ServerState::Following);
    p.step(Input::Tick, 4 + 501);
    assert_eq!(p.status().state, ServerState::Looking);
}

/// Server 3 of {1,2,3} leading, its log holding `log`, with follower 2 joined and acked.
fn leader_with(log: Vec<Txn>) -> (QuorumPeer, Vec<Output>) {
    let last = log.last().map_or(Zxid::ZERO, |t| t.zxid);
    let durable = Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        snapshot_zxid: Zxid::ZERO,
        log,
    };
    let mut p = QuorumPeer::new(3, vec![1, 2, 3], timing(), durable);
    p.start(0);
    let looking = Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: last,
            peer_epoch: 1,
        },
        election_epoch: 1,
    };
    p.step(
        Input::Message {
            from: 2,
            msg: PeerMessage::Election(looking),
        },
        0,
    );
    assert_eq!(p.status().state, ServerState::Leading);
    p.step(
        zab(
            2,
            ZabMessage::FollowerInfo {
                accepted_epoch: 1,
                last_zxid: Zxid::ZERO,
            },
        ),
        1,
    );
    p.step(Input::Persisted(PersistToken::AcceptedEpoch(2)), 2);
    let outs = p.step(
        zab(
            2,
            ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: Zxid::ZERO,
            },
        ),
        3,
    );
    (p, outs)
}

#[test]
fn leader_picks_diff_trunc_or_snap_from_the_follower_history() {
    let log: Vec<Txn> = (1..=6).map(|c| txn(1, c)).collect();
    let (mut p, outs) = leader_with(log.clone());
    assert!(outs.contains(&Output::Persist {
        op: StorageOp::CurrentEpoch(2),
        token: Some(PersistToken::CurrentEpoch(2))
    }));
    assert_eq!(
        sends(&outs),
        vec![(
            2,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: None,
                snapshot: None,
                txns: log.clone()
            }
        )],
        "a follower with an empty log gets a DIFF of everything"
    );
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    let outs = p.step(zab(2, ZabMessage::AckNewLeader { epoch: 2 }), 5);
    assert_eq!(
        outs[0],
        Output::Apply(log.clone()),
        "the initial history commits"
    );
    assert_eq!(
        sends(&outs),
        vec![(
            2,
            ZabMessage::UpToDate {
                committed: Zxid::new(1, 6)
            }
        )]
    );
    // Server 1 joins late with a txn the leader never had: TRUNC to (1,6).
    p.step(
        zab(
            1,
            ZabMessage::FollowerInfo {
                accepted_epoch: 1,
                last_zxid: Zxid::new(1, 7),
            },
        ),
        6,
    );
    let outs = p.step(
        zab(
            1,
            ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: Zxid::new(1, 7),
            },
        ),
        7,
    );
    assert_eq!(
        sends(&outs),
        vec![(
            1,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: Some(Zxid::new(1, 6)),
                snapshot: None,
                txns: vec![]
            }
        )]
    );
    // The leader keeps only 3 txns in memory; a follower behind that gets SNAP.
    p.step(
        zab(
            1,
            ZabMessage::FollowerInfo {
                accepted_epoch: 1,
                last_zxid: Zxid::new(1, 1),
            },
        ),
        8,
    );
    let outs = p.step(
        zab(
            1,
            ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: Zxid::new(1, 1),
            },
        ),
        9,
    );
    assert_eq!(
        outs,
        vec![Output::SendSnapshotSync {
            to: 1,
            epoch: 2,
            txns: vec![]
        }]
    );
}

#[test]
fn leader_commits_on_a_quorum_including_itself_in_zxid_order() {
    let (mut p, _) = leader_with(vec![]);
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    p.step(zab(2, ZabMessage::AckNewLeader { epoch: 2 }), 5);
    let outs = p.step(
        Input::Submit {
            request_id: 1,
            body: b"a".to_vec(),
        },
        6,
    );
    let z1 = Zxid::new(2, 1);
    assert!(sends(&outs)
        .iter()
        .any(|(to, m)| *to == 2 && matches!(m, ZabMessage::Proposal(t) if t.zxid == z1)));
    p.step(
        Input::Submit {
            request_id: 2,
            body: b"b".to_vec(),
        },
        6,
    );
    // The follower's ack alone is not enough: the leader must have it on disk too.
    assert!(p
        .step(zab(2, ZabMessage::Ack(Zxid::new(2, 2))), 7)
        .is_empty());
    let outs = p.step(Input::Persisted(PersistToken::Txns(Zxid::new(2, 2))), 8);
    assert_eq!(sends(&outs), vec![(2, ZabMessage::Commit(Zxid::new(2, 2)))]);
    let completed: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Completed { request_id, result } => Some((*request_id, result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(completed, vec![(1, Ok(z1)), (2, Ok(Zxid::new(2, 2)))]);
}

#[test]
fn a_follower_ahead_of_the_leader_makes_it_abandon() {
    let durable = Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        ..Durable::default()
    };
    let mut p = QuorumPeer::new(3, vec![1, 2, 3], timing(), durable);
    p.start(0);
    let looking = Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: Zxid::ZERO,
            peer_epoch: 1,
        },
        election_epoch: 1,
    };
    p.step(
        Input::Message {
            from: 2,
            msg: PeerMessage::Election(looking),
        },
        0,
    );
    p.step(
        zab(
            2,
            ZabMessage::FollowerInfo {
                accepted_epoch: 1,
                last_zxid: Zxid::new(1, 4),
            },
        ),
        1,
    );
    p.step(
        zab(
            2,
            ZabMessage::AckEpoch {
                current_epoch: 1,
                last_zxid: Zxid::new(1, 4),
            },
        ),
        2,
    );
    assert_eq!(p.status().state, ServerState::Looking);
}

#[test]
fn a_body_that_fails_the_check_is_refused_before_it_is_logged() {
    let (p, _) = leader_with(vec![]);
    let mut p = p.with_body_check(std::sync::Arc::new(|b: &[u8]| {
        if b == b"bad" {
            Err("poison".into())
        } else {
            Ok(())
        }
    }));
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    p.step(zab(2, ZabMessage::AckNewLeader { epoch: 2 }), 5);
    let outs = p.step(
        Input::Submit {
            request_id: 1,
            body: b"bad".to_vec(),
        },
        6,
    );
    assert_eq!(
        outs,
        vec![Output::Completed {
            request_id: 1,
            result: Err(SubmitError::Refused("poison".into()))
        }]
    );
    // A follower's forwarded poison gets RequestFailed, and nothing is logged either way.
    let outs = p.step(
        zab(
            2,
            ZabMessage::Request {
                request_id: 9,
                body: b"bad".to_vec(),
            },
        ),
        7,
    );
    assert!(outs.iter().all(|o| !matches!(o, Output::Persist { .. })));
    let outs = p.step(
        Input::Submit {
            request_id: 2,
            body: b"good".to_vec(),
        },
        8,
    );
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Persist { op: StorageOp::Append(t), .. } if t[0].zxid == Zxid::new(2, 1))));
}
