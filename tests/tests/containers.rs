//! Container znodes: the leader deletes them once they had children and have none left.

use ensemble_actors::zk_client::ZkClient;
use ensemble_node::local_cluster::{wait_until, ProcessCluster, Program};
use std::time::Duration;

#[test]
fn an_emptied_container_is_reaped_and_a_fresh_one_is_kept() {
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
    const CONTAINER: i32 = 4;
    rt.block_on(client.create("/fresh", b"", CONTAINER))
        .unwrap();
    rt.block_on(client.create("/c", b"", CONTAINER)).unwrap();
    rt.block_on(client.create("/c/child", b"", 0)).unwrap();
    rt.block_on(client.delete("/c/child", -1)).unwrap();
    wait_until(
        "the emptied container to be deleted",
        Duration::from_secs(10),
        || rt.block_on(client.exists("/c")).unwrap().is_none(),
    )
    .unwrap();
    let fresh = rt.block_on(client.exists("/fresh")).unwrap();
    assert!(
        fresh.is_some_and(|s| s.ephemeral_owner == i64::MIN),
        "a container that never had children stays"
    );
}
