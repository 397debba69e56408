//! The Rust client against real servers: it moves its session to another server when its own
//! dies, reports Disconnected then SyncConnected, and its watches survive the move.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use ensemble_messages::zk::{EventType, KeeperState};
use ensemble_node::local_cluster::{ProcessCluster, Program};
use std::time::Duration;

#[test]
fn the_session_and_its_watches_move_when_the_server_dies() {
    let mut c = ProcessCluster::new(
        3,
        34,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = rt
        .block_on(ZkClient::connect_with_events(
            &servers,
            Duration::from_secs(4),
            tx,
        ))
        .unwrap();
    rt.block_on(client.create("/moved", b"v1", CreateMode::Ephemeral))
        .unwrap();
    rt.block_on(client.get_data_watch("/moved", true)).unwrap();
    // The client is on server 1, the first it tried.
    c.kill9(1);
    let mut seen = Vec::new();
    rt.block_on(async {
        while !seen.contains(&(EventType::None, KeeperState::SyncConnected)) {
            let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("state events within 10 s")
                .expect("event channel open");
            seen.push((e.event_type, e.state));
        }
    });
    assert_eq!(
        seen,
        vec![
            (EventType::None, KeeperState::Disconnected),
            (EventType::None, KeeperState::SyncConnected)
        ]
    );
    // Same session: its ephemeral znode is still there, and its data watch fires.
    let (data, stat) = rt.block_on(client.get_data("/moved")).unwrap();
    assert_eq!(
        (data.as_slice(), stat.ephemeral_owner),
        (&b"v1"[..], client.session_id.0)
    );
    let other = rt
        .block_on(ZkClient::connect(
            &[servers[2].clone()],
            Duration::from_secs(4),
        ))
        .unwrap();
    rt.block_on(other.set_data("/moved", b"v2", -1)).unwrap();
    let fired =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), events.recv()).await });
    let e = fired
        .expect("the re-registered watch fires")
        .expect("event channel open");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/moved")
    );
}
