//! Scripted unit tests of the Zab roles: feed inputs, compare the exact outputs.

use super::*;
use crate::election::ElectionTiming;
use crate::storage::{PersistToken, StorageOp};
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

/// ComposedPeer 1 of {1,2,3} made to follow 3 with the given durable state.
fn follower_of_3(durable: Durable) -> ComposedPeer {
    following_3(QuorumPeer::new(1, vec![1, 2, 3], timing(), durable), &[2])
}

/// `peer` (server 1) made to follow 3, told so by 3 and by the voters in `others`.
fn following_3(peer: QuorumPeer, others: &[Sid]) -> ComposedPeer {
    let mut p = ComposedPeer::of(peer);
    p.start(0);
    let leading = Notification {
        state: ServerState::Leading,
        vote: Vote {
            leader: 3,
            zxid: Zxid::new(1, 5),
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version: 0,
    };
    let following = Notification {
        state: ServerState::Following,
        ..leading
    };
    for &from in others {
        p.step(
            Input::Message {
                from,
                msg: PeerMessage::Election(following),
            },
            0,
        );
    }
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

fn serving_follower() -> ComposedPeer {
    serving(follower_of_3(accepted_2()))
}

/// The durable state [`serving`] expects: epoch 2 accepted, 1 current.
fn accepted_2() -> Durable {
    Durable {
        accepted_epoch: 2,
        current_epoch: 1,
        ..Durable::default()
    }
}

/// `p`, following 3 from [`accepted_2`], synced by an empty NEWLEADER and serving.
fn serving(mut p: ComposedPeer) -> ComposedPeer {
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

fn applied(outs: &[Output]) -> Vec<Zxid> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Apply(txns) => Some(txns.iter().map(|t| t.zxid)),
            _ => None,
        })
        .flatten()
        .collect()
}

fn durable(z: Zxid) -> Input {
    Input::Persisted(PersistToken::Txns(z))
}

/// With three voters the follower and its leader are a quorum: a txn on both disks is
/// committed, whichever of the two reports comes last, and the follower still acks.
#[test]
fn a_follower_of_three_voters_applies_what_it_and_its_leader_hold_on_disk() {
    let mut p = serving_follower();
    let (z1, z2, z3) = (Zxid::new(2, 1), Zxid::new(2, 2), Zxid::new(2, 3));
    p.step(zab(3, ZabMessage::Proposal(txn(2, 1))), 5);
    p.step(zab(3, ZabMessage::Proposal(txn(2, 2))), 5);
    // The leader's disk first: nothing is committed before the follower's own.
    assert!(applied(&p.step(zab(3, ZabMessage::LeaderDurable(z2)), 6)).is_empty());
    let outs = p.step(durable(z1), 7);
    assert_eq!(sends(&outs), vec![(3, ZabMessage::Ack(z1))]);
    assert_eq!(applied(&outs), vec![z1]);
    assert_eq!(applied(&p.step(durable(z2), 8)), vec![z2]);
    // The follower's disk first: applied when the leader's report comes.
    p.step(zab(3, ZabMessage::Proposal(txn(2, 3))), 9);
    let outs = p.step(durable(z3), 10);
    assert_eq!(sends(&outs), vec![(3, ZabMessage::Ack(z3))]);
    assert!(applied(&outs).is_empty());
    assert_eq!(
        applied(&p.step(zab(3, ZabMessage::LeaderDurable(z3)), 11)),
        vec![z3]
    );
    // The COMMITs that follow apply nothing twice.
    assert!(applied(&p.step(zab(3, ZabMessage::Commit(z3)), 12)).is_empty());
    assert!(p.status().serving);
}

/// With five voters the follower and its leader are not a quorum: only the COMMIT applies.
#[test]
fn a_follower_of_five_voters_waits_for_the_commit() {
    let peer = QuorumPeer::new(1, vec![1, 2, 3, 4, 5], timing(), accepted_2());
    let mut p = serving(following_3(peer, &[2, 4]));
    let z1 = Zxid::new(2, 1);
    p.step(zab(3, ZabMessage::Proposal(txn(2, 1))), 5);
    assert!(applied(&p.step(zab(3, ZabMessage::LeaderDurable(z1)), 6)).is_empty());
    assert!(applied(&p.step(durable(z1), 7)).is_empty());
    assert_eq!(
        applied(&p.step(zab(3, ZabMessage::Commit(z1)), 8)),
        vec![z1]
    );
}

/// A reconfig needs the quorums of two configs: the follower commits up to the txn before it
/// and leaves the rest to the leader's COMMIT.
#[test]
fn a_follower_commits_on_its_own_only_up_to_a_reconfig() {
    let of: membership::MembershipOf = std::sync::Arc::new(|body: &[u8]| {
        (body == [2]).then(|| membership::ProposedMembership {
            expected_version: 0,
            voters: vec![1, 2, 3],
            observers: vec![],
        })
    });
    let peer = QuorumPeer::new(1, vec![1, 2, 3], timing(), accepted_2());
    let mut p = serving(following_3(peer.with_membership(0, of), &[2]));
    let z3 = Zxid::new(2, 3);
    for c in 1..=3 {
        p.step(zab(3, ZabMessage::Proposal(txn(2, c))), 5);
    }
    p.step(zab(3, ZabMessage::LeaderDurable(z3)), 6);
    assert_eq!(applied(&p.step(durable(z3), 7)), vec![Zxid::new(2, 1)]);
    let outs = p.step(zab(3, ZabMessage::Commit(z3)), 8);
    assert_eq!(applied(&outs), vec![Zxid::new(2, 2), z3]);
}

/// A leader of three voters says when its disk holds its last proposal, not committed yet;
/// nothing once the txn is committed (the COMMIT tells the follower), nor while later
/// proposals are in flight (their COMMIT soon follows).
#[test]
fn a_leader_of_three_voters_tells_its_disk_only_of_its_last_uncommitted_txn() {
    let mut p = leader_established_with_2();
    let submit = |request_id| Input::Submit {
        request_id,
        body: b"a".to_vec(),
    };
    let (z1, z2, z3, z4) = (
        Zxid::new(2, 1),
        Zxid::new(2, 2),
        Zxid::new(2, 3),
        Zxid::new(2, 4),
    );
    p.step(submit(1), 6);
    let outs = p.step(durable(z1), 7);
    assert_eq!(sends(&outs), vec![(2, ZabMessage::LeaderDurable(z1))]);
    assert_eq!(
        sends(&p.step(zab(2, ZabMessage::Ack(z1)), 8)),
        vec![(2, ZabMessage::Commit(z1))]
    );
    p.step(submit(2), 9);
    p.step(zab(2, ZabMessage::Ack(z2)), 10);
    assert_eq!(
        sends(&p.step(durable(z2), 11)),
        vec![(2, ZabMessage::Commit(z2))]
    );
    p.step(submit(3), 12);
    p.step(submit(4), 12);
    assert!(sends(&p.step(durable(z3), 13)).is_empty());
    assert_eq!(
        sends(&p.step(durable(z4), 14)),
        vec![(2, ZabMessage::LeaderDurable(z4))]
    );
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

/// ComposedPeer 3 of {1,2,3} leading, its log holding `log`, with follower 2 joined and acked.
fn leader_with(log: Vec<Txn>) -> (ComposedPeer, Vec<Output>) {
    let last = log.last().map_or(Zxid::ZERO, |t| t.zxid);
    let durable = Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        snapshot_zxid: Zxid::ZERO,
        log,
    };
    let mut p = ComposedPeer::of(
        QuorumPeer::new(3, vec![1, 2, 3], timing(), durable).with_observers(vec![4, 5]),
    );
    p.start(0);
    let looking = Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: last,
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version: 0,
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
    // ComposedPeer 1 joins late with a txn the leader never had: TRUNC to (1,6).
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
    let mut p = ComposedPeer::of(QuorumPeer::new(3, vec![1, 2, 3], timing(), durable));
    p.start(0);
    let looking = Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: Zxid::ZERO,
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version: 0,
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
    let (mut p, _) = leader_with(vec![]);
    p.body_check = std::sync::Arc::new(|b: &[u8]| {
        if b == b"bad" {
            Err("poison".into())
        } else {
            Ok(())
        }
    });
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

/// A reconfig is admitted only when its new voters hold a quorum of servers synced with the
/// leader (leader 3, follower 2 synced, server 1 never); any other write is proposed as usual.
#[test]
fn a_reconfig_needs_a_synced_quorum_of_its_new_voters() {
    let mut p = leader_established_with_2();
    p.membership_of = std::sync::Arc::new(|body: &[u8]| {
        let voters = match body {
            b"to-1-3" => vec![1, 3],
            b"to-2-3" => vec![2, 3],
            _ => return None,
        };
        Some(membership::ProposedMembership {
            expected_version: 0,
            voters,
            observers: vec![],
        })
    });
    let submit = |request_id, body: &[u8]| Input::Submit {
        request_id,
        body: body.to_vec(),
    };
    let outs = p.step(submit(1, b"to-1-3"), 6);
    assert!(
        matches!(&outs[..], [Output::Completed { request_id: 1, result: Err(SubmitError::Refused(why)) }]
            if why.contains(membership::NO_QUORUM)),
        "{outs:?}"
    );
    let logged = |outs: &[Output]| {
        outs.iter().any(|o| {
            matches!(
                o,
                Output::Persist {
                    op: StorageOp::Append(_),
                    ..
                }
            )
        })
    };
    let outs = p.step(submit(2, b"to-2-3"), 7);
    assert!(logged(&outs), "{outs:?}");
    assert!(logged(&p.step(submit(3, b"write"), 8)));
}

fn leader_established_with_2() -> ComposedPeer {
    let (mut p, _) = leader_with(vec![]);
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    p.step(zab(2, ZabMessage::AckNewLeader { epoch: 2 }), 5);
    assert!(p.status().serving);
    p
}

fn observer_joins(p: &mut ComposedPeer, sid: Sid, now: u64) -> Vec<Output> {
    let info = ZabMessage::FollowerInfo {
        accepted_epoch: 0,
        last_zxid: Zxid::ZERO,
    };
    let mut outs = p.step(zab(sid, info), now);
    let ack = ZabMessage::AckEpoch {
        current_epoch: 0,
        last_zxid: Zxid::ZERO,
    };
    outs.extend(p.step(zab(sid, ack), now));
    outs
}

#[test]
fn observers_never_count_in_election_discovery_or_sync() {
    let durable = Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        ..Durable::default()
    };
    let mut p = ComposedPeer::of(
        QuorumPeer::new(3, vec![1, 2, 3], timing(), durable).with_observers(vec![4, 5]),
    );
    p.start(0);
    let observer = Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: Zxid::ZERO,
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version: 0,
    };
    for o in [4, 5] {
        let outs = p.step(
            Input::Message {
                from: o,
                msg: PeerMessage::Election(observer),
            },
            0,
        );
        assert_eq!(
            p.status().state,
            ServerState::Looking,
            "observers never vote"
        );
        assert!(
            matches!(&outs[..], [Output::Send { to, msg: PeerMessage::Election(n) }] if *to == o && n.vote.leader == 3),
            "a voter answers an observer with its vote: {outs:?}"
        );
    }
    let (mut p, _) = leader_with(vec![]);
    let mut outs = Vec::new();
    for o in [4, 5] {
        outs.extend(observer_joins(&mut p, o, 3));
    }
    assert!(
        !sends(&outs)
            .iter()
            .any(|(_, m)| matches!(m, ZabMessage::NewLeader { .. })),
        "observers are synced only once the leader is established: {outs:?}"
    );
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    assert!(
        !p.status().serving,
        "observers' acks never establish a leader"
    );
}

#[test]
fn leader_informs_observers_of_commits_and_never_counts_their_acks() {
    let (mut p, _) = leader_with(vec![]);
    let outs = observer_joins(&mut p, 4, 3);
    assert!(sends(&outs)
        .iter()
        .all(|(to, m)| *to == 4 && matches!(m, ZabMessage::LeaderInfo { new_epoch: 2 })));
    p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 4);
    let outs = p.step(zab(2, ZabMessage::AckNewLeader { epoch: 2 }), 5);
    assert!(
        sends(&outs).contains(&(
            4,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: None,
                snapshot: None,
                txns: vec![]
            }
        )),
        "the waiting observer is synced once the leader is established: {outs:?}"
    );
    let outs = p.step(zab(4, ZabMessage::AckNewLeader { epoch: 2 }), 6);
    assert_eq!(
        sends(&outs),
        vec![(
            4,
            ZabMessage::UpToDate {
                committed: Zxid::ZERO
            }
        )]
    );
    assert_eq!(
        (p.status().synced_followers, p.status().synced_observers),
        (1, 1)
    );
    let outs = p.step(
        Input::Submit {
            request_id: 1,
            body: b"a".to_vec(),
        },
        7,
    );
    let z1 = Zxid::new(2, 1);
    let proposed: Vec<Sid> = sends(&outs).iter().map(|(to, _)| *to).collect();
    assert_eq!(proposed, vec![2], "observers get no proposals");
    p.step(Input::Persisted(PersistToken::Txns(z1)), 8);
    assert!(
        sends(&p.step(zab(4, ZabMessage::Ack(z1)), 9)).is_empty(),
        "an observer's ack is never counted"
    );
    let outs = p.step(zab(2, ZabMessage::Ack(z1)), 10);
    let committed = Txn {
        zxid: z1,
        origin: 3,
        request_id: 1,
        body: b"a".to_vec(),
    };
    assert_eq!(
        sends(&outs),
        vec![
            (2, ZabMessage::Commit(z1)),
            (4, ZabMessage::Inform(committed))
        ]
    );
}

#[test]
fn losing_observers_never_costs_the_quorum_and_observers_never_keep_it() {
    let mut p = leader_established_with_2();
    observer_joins(&mut p, 4, 6);
    p.step(zab(4, ZabMessage::AckNewLeader { epoch: 2 }), 7);
    assert_eq!(p.status().synced_observers, 1);
    p.step(Input::PeerDisconnected(4), 8);
    p.step(Input::Tick, 9);
    assert!(p.status().serving, "an observer's loss costs nothing");
    observer_joins(&mut p, 4, 10);
    p.step(zab(4, ZabMessage::AckNewLeader { epoch: 2 }), 11);
    p.step(Input::PeerDisconnected(2), 12);
    p.step(Input::Tick, 13);
    assert_eq!(
        p.status().state,
        ServerState::Looking,
        "a leader with only an observer has no quorum"
    );
}

/// ComposedPeer 4, an observer of voters {1,2,3}, synced to leader 3 and serving.
fn serving_observer() -> ComposedPeer {
    let mut p = ComposedPeer::of(
        QuorumPeer::new(4, vec![1, 2, 3], timing(), Durable::default()).with_observers(vec![4]),
    );
    let outs = p.start(0);
    let voted: Vec<Sid> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: PeerMessage::Election(n),
            } => Some((*to, n.vote.leader)),
            _ => None,
        })
        .map(|(to, leader)| {
            assert_eq!(leader, 0, "an observer votes for no one");
            to
        })
        .collect();
    assert_eq!(voted, vec![1, 2, 3], "an observer notifies the voters only");
    let leading = Notification {
        state: ServerState::Leading,
        vote: Vote {
            leader: 3,
            zxid: Zxid::new(1, 5),
            peer_epoch: 1,
        },
        election_epoch: 3,
        config_version: 0,
    };
    let following = Notification {
        state: ServerState::Following,
        ..leading
    };
    for (from, n) in [(2, following), (3, leading)] {
        p.step(
            Input::Message {
                from,
                msg: PeerMessage::Election(n),
            },
            1,
        );
    }
    assert_eq!(p.status().state, ServerState::Observing);
    p.step(zab(3, ZabMessage::LeaderInfo { new_epoch: 2 }), 2);
    p.step(Input::Persisted(PersistToken::AcceptedEpoch(2)), 3);
    let outs = p.step(
        zab(
            3,
            ZabMessage::NewLeader {
                epoch: 2,
                truncate_to: None,
                snapshot: None,
                txns: vec![txn(1, 1)],
            },
        ),
        4,
    );
    assert!(sends(&outs).is_empty());
    p.step(Input::Persisted(PersistToken::Txns(Zxid::new(1, 1))), 5);
    let outs = p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 5);
    assert_eq!(
        sends(&outs),
        vec![(3, ZabMessage::AckNewLeader { epoch: 2 })]
    );
    let outs = p.step(
        zab(
            3,
            ZabMessage::UpToDate {
                committed: Zxid::new(1, 1),
            },
        ),
        6,
    );
    assert_eq!(outs, vec![Output::Apply(vec![txn(1, 1)])]);
    assert!(p.status().serving);
    p
}

#[test]
fn observer_logs_and_applies_informed_txns_without_acking() {
    let mut p = serving_observer();
    let outs = p.step(zab(3, ZabMessage::Inform(txn(2, 1))), 7);
    assert_eq!(
        outs,
        vec![Output::Persist {
            op: StorageOp::Append(vec![txn(2, 1)]),
            token: Some(PersistToken::Txns(Zxid::new(2, 1)))
        }]
    );
    let outs = p.step(Input::Persisted(PersistToken::Txns(Zxid::new(2, 1))), 8);
    assert_eq!(outs, vec![Output::Apply(vec![txn(2, 1)])], "no ack");
    let outs = p.step(
        Input::Submit {
            request_id: 7,
            body: b"w".to_vec(),
        },
        9,
    );
    assert_eq!(
        sends(&outs),
        vec![(
            3,
            ZabMessage::Request {
                request_id: 7,
                body: b"w".to_vec()
            }
        )],
        "an observer forwards writes to its leader"
    );
    p.step(Input::Tick, 9 + 501);
    assert_eq!(
        p.status().state,
        ServerState::Looking,
        "a silent leader is left"
    );
}

#[test]
fn an_observer_takes_a_lower_epoch_than_it_accepted() {
    let mut p = ComposedPeer::of(
        QuorumPeer::new(
            4,
            vec![1, 2, 3],
            timing(),
            Durable {
                accepted_epoch: 5,
                current_epoch: 1,
                ..Durable::default()
            },
        )
        .with_observers(vec![4]),
    );
    p.start(0);
    let leading = Notification {
        state: ServerState::Leading,
        vote: Vote {
            leader: 3,
            zxid: Zxid::ZERO,
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version: 0,
    };
    for (from, state) in [(2, ServerState::Following), (3, ServerState::Leading)] {
        let n = Notification { state, ..leading };
        p.step(
            Input::Message {
                from,
                msg: PeerMessage::Election(n),
            },
            1,
        );
    }
    let outs = p.step(zab(3, ZabMessage::LeaderInfo { new_epoch: 2 }), 2);
    assert_eq!(
        outs,
        vec![Output::Persist {
            op: StorageOp::AcceptedEpoch(2),
            token: Some(PersistToken::AcceptedEpoch(2))
        }],
        "an observer never acks, so its accepted epoch promises nothing"
    );
    assert_eq!(p.status().state, ServerState::Observing);
}

#[test]
fn a_server_adopts_a_newer_config_it_logged_when_a_notification_names_it() {
    let reconfig = Txn {
        zxid: Zxid::new(1, 2),
        origin: 9,
        request_id: 0,
        body: b"reconfig".to_vec(),
    };
    let durable = Durable {
        accepted_epoch: 1,
        current_epoch: 1,
        snapshot_zxid: Zxid::ZERO,
        log: vec![txn(1, 1), reconfig],
    };
    let of: membership::MembershipOf = std::sync::Arc::new(|body: &[u8]| {
        (body == b"reconfig").then(|| membership::ProposedMembership {
            expected_version: 0,
            voters: vec![1, 3],
            observers: vec![2],
        })
    });
    let mut p = ComposedPeer::of(
        QuorumPeer::new(1, vec![1, 2, 3], timing(), durable).with_membership(0, of),
    );
    p.start(0);
    let looking = |config_version| Notification {
        state: ServerState::Looking,
        vote: Vote {
            leader: 3,
            zxid: Zxid::new(1, 1),
            peer_epoch: 1,
        },
        election_epoch: 1,
        config_version,
    };
    let from_3 = |n| Input::Message {
        from: 3,
        msg: PeerMessage::Election(n),
    };
    // A version the log does not lead to changes nothing.
    p.step(from_3(looking(Zxid::new(1, 7).0)), 0);
    assert_eq!(p.config_version(), 0);
    let outs = p.step(from_3(looking(Zxid::new(1, 2).0)), 0);
    assert_eq!(p.config_version(), Zxid::new(1, 2).0);
    assert!(!p.is_observer());
    // Its notifications carry the adopted version.
    let to: Vec<Sid> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: PeerMessage::Election(n),
            } => {
                assert_eq!(n.config_version, Zxid::new(1, 2).0);
                Some(*to)
            }
            _ => None,
        })
        .collect();
    assert!(to.contains(&3), "{outs:?}");
}

/// A leader under write load forwards proposals and commits to a follower as soon as it sent
/// NEWLEADER; the follower must take them while it still writes the synced history, not go
/// looking (which made a restarted follower rejoin over and over while clients wrote).
#[test]
fn commits_arriving_while_the_sync_is_written_are_kept_not_a_reason_to_look() {
    let mut p = follower_of_3(Durable {
        accepted_epoch: 2,
        current_epoch: 1,
        ..Durable::default()
    });
    p.step(zab(3, ZabMessage::LeaderInfo { new_epoch: 2 }), 1);
    let newleader = ZabMessage::NewLeader {
        epoch: 2,
        truncate_to: None,
        snapshot: None,
        txns: vec![txn(1, 1)],
    };
    p.step(zab(3, newleader), 2);
    p.step(zab(3, ZabMessage::Proposal(txn(2, 1))), 3);
    let outs = p.step(zab(3, ZabMessage::Commit(Zxid::new(2, 1))), 4);
    assert!(sends(&outs).is_empty(), "no message yet: {outs:?}");
    assert!(
        matches!(p.role, peer::Role::Following(_)),
        "a commit during the sync write kept the follower following"
    );
    p.step(Input::Persisted(PersistToken::Txns(Zxid::new(1, 1))), 5);
    let outs = p.step(Input::Persisted(PersistToken::CurrentEpoch(2)), 6);
    assert_eq!(
        sends(&outs),
        vec![(3, ZabMessage::AckNewLeader { epoch: 2 })]
    );
    let outs = p.step(Input::Persisted(PersistToken::Txns(Zxid::new(2, 1))), 7);
    assert_eq!(sends(&outs), vec![(3, ZabMessage::Ack(Zxid::new(2, 1)))]);
    p.step(
        zab(
            3,
            ZabMessage::UpToDate {
                committed: Zxid::new(1, 1),
            },
        ),
        8,
    );
    assert!(p.status().serving);
    assert_eq!(
        p.log.committed(),
        Zxid::new(2, 1),
        "the early commit was kept"
    );
}

/// The looks a core asked of the election, in order.
fn looks(outs: &[Output]) -> Vec<crate::election::Look> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Election(crate::election::ElectionRequest::Look(l)) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_core_asks_for_a_leader_and_takes_only_the_decision_for_its_last_look() {
    use crate::election::{Decision, ElectionView, Members};
    let durable = Durable {
        accepted_epoch: 2,
        current_epoch: 2,
        snapshot_zxid: Zxid::ZERO,
        log: vec![txn(2, 1)],
    };
    let mut p = QuorumPeer::new(1, vec![1, 2, 3], timing(), durable).counting_looks_from(6);
    let members = Members {
        version: 0,
        voters: vec![1, 2, 3],
        observers: vec![],
    };
    let look = crate::election::Look {
        ticket: 7,
        epoch: 2,
        last_zxid: Zxid::new(2, 1),
        members: members.clone(),
    };
    assert_eq!(looks(&p.start(0)), vec![look.clone()]);
    assert_eq!(p.election_view(), ElectionView::Looking(look));
    let vote = Vote {
        leader: 3,
        zxid: Zxid::new(2, 1),
        peer_epoch: 2,
    };
    let stale = Decision {
        ticket: 6,
        vote,
        round: 4,
    };
    assert!(p.step(Input::Elected(stale), 1).is_empty());
    assert_eq!(
        p.status().state,
        ServerState::Looking,
        "an old look's answer"
    );
    let outs = p.step(Input::Elected(Decision { ticket: 7, ..stale }), 2);
    assert!(matches!(
        &sends(&outs)[..],
        [(3, ZabMessage::FollowerInfo { .. })]
    ));
    assert_eq!((p.status().leader, p.status().election_epoch), (Some(3), 4));
    assert!(
        p.step(Input::Elected(Decision { ticket: 7, ..stale }), 3)
            .is_empty(),
        "a decided server takes no second decision"
    );
    assert_eq!(
        p.election_view(),
        ElectionView::Decided {
            ticket: 7,
            vote,
            members
        }
    );
}

#[test]
fn an_established_epoch_and_a_membership_change_are_told_to_the_election() {
    let mut p = serving_follower();
    assert_eq!(p.election().vote().peer_epoch, 2, "UPTODATE told the epoch");
    assert!(matches!(
        p.election_view(),
        crate::election::ElectionView::Decided { vote, .. } if vote.peer_epoch == 2
    ));
    p.set_membership(9, vec![1, 2, 3, 4], vec![]);
    p.step(Input::Tick, 5);
    assert_eq!(
        p.election().config_version(),
        9,
        "the election counts with the new members"
    );
}
