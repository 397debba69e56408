//! Container and TTL znodes: the leader deletes containers once they had children and have
//! none left, and TTL znodes once they are childless and were not modified for their TTL.

use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::zk::{CreateMode, ZkError};
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use std::time::Duration;

#[test]
fn emptied_containers_and_idle_ttl_znodes_are_reaped_and_the_others_kept() {
    let mut c = ProcessCluster::new(
        3,
        32,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    // Check every 200 ms instead of ZooKeeper's default minute.
    std::env::set_var("ENSEMBLE__CLIENT__CONTAINER_CHECK_MS", "200");
    c.start_all();
    std::env::remove_var("ENSEMBLE__CLIENT__CONTAINER_CHECK_MS");
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt
        .block_on(ZkClient::connect(
            &[c.client_addr(1)],
            Duration::from_secs(10),
        ))
        .unwrap();
    rt.block_on(client.create("/fresh", b"", CreateMode::Container))
        .unwrap();
    rt.block_on(client.create("/c", b"", CreateMode::Container))
        .unwrap();
    rt.block_on(client.create("/c/child", b"", CreateMode::Persistent))
        .unwrap();
    rt.block_on(client.delete("/c/child", -1)).unwrap();
    let ttl = |path: &str, sequential: bool, ttl_ms: i64| {
        let mode = if sequential {
            CreateMode::PersistentSequentialWithTtl { ttl_ms }
        } else {
            CreateMode::PersistentWithTtl { ttl_ms }
        };
        rt.block_on(client.create_with_acl(path, b"", open_acl(), mode))
    };
    let short = ttl("/ttl-short", false, 300).unwrap();
    ttl("/ttl-parent", false, 300).unwrap();
    rt.block_on(client.create("/ttl-parent/child", b"", CreateMode::Persistent))
        .unwrap();
    let long = ttl("/ttl-long-", true, 3_600_000).unwrap();
    assert_eq!(
        long, "/ttl-long-0000000004",
        "sequential TTL names: four creates under / came before"
    );
    // (A TTL with a non-TTL mode cannot be sent with a CreateMode: CreateMode::from_flags,
    // which the server runs, has that case.)
    for (sequential, ttl_ms) in [(false, 0), (false, -1), (true, 1 << 40)] {
        assert!(
            matches!(ttl("/bad", sequential, ttl_ms), Err(ClientError::Server(e)) if e == ZkError::BadArguments),
            "TTL {ttl_ms} must be refused"
        );
    }
    wait_until(
        "the emptied container and the idle TTL znode to be deleted",
        Duration::from_secs(10),
        || {
            rt.block_on(client.exists("/c")).unwrap().is_none()
                && rt.block_on(client.exists(&short)).unwrap().is_none()
        },
    )
    .unwrap();
    for kept in ["/ttl-parent", long.as_str()] {
        let stat = rt.block_on(client.exists(kept)).unwrap();
        assert!(
            stat.is_some_and(|s| s.ephemeral_owner == 0),
            "{kept} (with a child, or a TTL of an hour) stays; as in Apache ZooKeeper, clients \
             see ephemeralOwner 0 for a TTL znode"
        );
    }
    let fresh = rt.block_on(client.exists("/fresh")).unwrap();
    assert!(
        fresh.is_some_and(|s| s.ephemeral_owner == 0),
        "a container that never had children stays (and shows ephemeralOwner 0, as in Apache)"
    );
}
