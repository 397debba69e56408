//! Every fuzz target on stable, without libFuzzer: over the files of `seeds/<target>/` (the
//! seeds and every input a fuzzing run found worth keeping, crashes included), over the seeds
//! [`ensemble_fuzz::seeds`] builds, and over seeded mutations of those. `FUZZ_REPLAY_CASES=N`
//! runs N mutations per target (default 20,000). `FUZZ_WRITE_SEEDS=1` (re)writes the built
//! seeds into `seeds/<target>/` for cargo-fuzz to start from.

use ensemble_fuzz::seeds::{self, TARGETS};
use ensemble_messages::mutation::{self, mutate, Rng};
use ensemble_messages::zk::ZkError;
use ensemble_messages::{ServerState, Zxid};
use std::path::{Path, PathBuf};

fn run(target: &str, data: &[u8]) {
    match target {
        "peer_stream" => ensemble_fuzz::peer_stream(data),
        "client_session" => ensemble_fuzz::client_session(data),
        "txn_apply" => ensemble_fuzz::txn_apply(data),
        "storage_log" => ensemble_fuzz::storage_log(data),
        "storage_snapshot" => ensemble_fuzz::storage_snapshot(data),
        "spark_record" => ensemble_fuzz::spark_record(data),
        "config_text" => ensemble_fuzz::config_text(data),
        "zab_peer" => ensemble_fuzz::zab_peer(data),
        "apache_files" => ensemble_fuzz::apache_files(data),
        "rest_request" => ensemble_fuzz::rest_request(data),
        "key_store" => ensemble_fuzz::key_store(data),
        other => panic!("no target {other}"),
    }
}

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}

fn kept_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(seed_dir(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read a kept input");
            (p, bytes)
        })
        .collect()
}

fn cases() -> u64 {
    mutation::cases("FUZZ_REPLAY_CASES", 20_000)
}

#[test]
fn built_seeds_are_written_when_asked() {
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for target in TARGETS {
        let dir = seed_dir(target);
        std::fs::create_dir_all(&dir).expect("seed directory");
        for (i, seed) in seeds::of(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("write a seed");
        }
    }
}

#[test]
fn every_target_has_seeds() {
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_some() {
        return;
    }
    for target in TARGETS {
        assert!(!seeds::of(target).is_empty(), "{target} has no built seeds");
        assert!(!kept_inputs(target).is_empty(), "seeds/{target}/ is empty");
    }
}

/// The session seed that carries every request gets them answered, each as a server should
/// (exists on a missing node, getACL without READ, deleting a parent), so that fuzzing starts
/// from inputs that reach deep into the server.
#[test]
fn the_whole_session_seed_is_served() {
    let whole = seeds::of("client_session")
        .pop()
        .expect("the whole session");
    let replies = ensemble_fuzz::session_replies(&whole);
    let xids: Vec<i32> = replies.iter().map(|r| r.0).collect();
    assert!(
        xids.contains(&16),
        "every request answered, up to the close: {replies:?}"
    );
    let failed: Vec<(i32, i32)> = replies.into_iter().filter(|r| r.1 != 0).collect();
    assert_eq!(
        failed,
        [
            (5, ZkError::NoNode.code()),
            (7, ZkError::NoAuth.code()),
            (15, ZkError::NotEmpty.code())
        ]
    );
}

/// The quorum scripts take server 1 to a serving leader with committed writes, and to a
/// serving follower that applied the leader's commit.
#[test]
fn the_quorum_scripts_reach_serving_roles() {
    let scripts = seeds::of("zab_peer");
    let leading = ensemble_fuzz::zab_peer_status(&scripts[0]);
    assert_eq!(
        (leading.state, leading.serving),
        (ServerState::Leading, true),
        "{leading:?}"
    );
    assert_eq!(leading.committed, Zxid::new(1, 2), "{leading:?}");
    let following = ensemble_fuzz::zab_peer_status(&scripts[1]);
    assert_eq!(following.state, ServerState::Following, "{following:?}");
    assert_eq!(
        (following.serving, following.leader),
        (true, Some(3)),
        "{following:?}"
    );
    assert_eq!(following.committed, Zxid::new(1, 1), "{following:?}");
}

#[test]
fn kept_inputs_replay_cleanly() {
    for target in TARGETS {
        for (path, bytes) in kept_inputs(target) {
            eprintln!("{target}: {}", path.display());
            run(target, &bytes);
        }
    }
}

#[test]
fn mutated_seeds_never_panic() {
    for (t, target) in TARGETS.iter().enumerate() {
        let inputs = seeds::of(target);
        let mut rng = Rng(0x5eed_f022 + t as u64);
        for case in 0..cases() {
            let pick = rng.below(inputs.len());
            let input = mutate(&mut rng, &inputs[pick]);
            let result = std::panic::catch_unwind(|| run(target, &input));
            assert!(result.is_ok(), "{target}: mutation case {case} panicked");
        }
    }
}

/// The incremental-image seed is a valid one: onto the empty tree, it rebuilds the populated
/// tree (every kind of znode, ACL scheme and a session), so mutations start from the real thing.
#[test]
fn the_incremental_snapshot_seed_rebuilds_the_populated_tree() {
    let delta = seeds::of("storage_snapshot").pop().expect("a seed");
    let mut tree = ensemble_actors::data_tree::DataTree::default();
    tree.apply_delta(&delta).expect("the seed applies");
    assert_eq!(tree, seeds::populated_tree());
}
