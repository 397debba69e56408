//! ZooKeeper 3.8's quotas on 3 real servers started from zoo.cfg with `enforceQuota=true`:
//! the shell's setquota/listquota/delquota in zkCli's wording, the usage kept in
//! zookeeper_stats on every replica (a follower that missed writes catches up by sync, a
//! restarted one reads it back), hard limits refused with QuotaExceeded (a kazoo transaction
//! too) and soft ones logged. Loopback block 127.0.131.x.

use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::zk::CreateMode;
use ensemble_messages::zk::ZkError;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::runtime;
use std::process::Command;
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_ensemble-cli");

/// `ensemble shell --server addr <words>`: (exit code, stdout, stderr).
fn shell(addr: &str, words: &str) -> (i32, String, String) {
    let out = Command::new(CLI)
        .args(["shell", "--server", addr])
        .args(words.split_whitespace())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Result<(), ZkError> {
    match r {
        Ok(_) => Ok(()),
        Err(ClientError::Server(c)) => Err(c),
        Err(e) => panic!("{e}"),
    }
}

/// The zookeeper_stats of /q as server `addr` holds it, once it has caught up (sync).
fn usage_on(addr: &str) -> String {
    let rt = runtime();
    rt.block_on(async {
        let c = ZkClient::connect(&[addr.to_string()], Duration::from_secs(10))
            .await
            .unwrap();
        c.sync("/").await.unwrap();
        let (data, _) = c
            .get_data("/zookeeper/quota/q/zookeeper_stats")
            .await
            .unwrap();
        let _ = c.close().await;
        String::from_utf8(data).unwrap()
    })
}

#[test]
fn quotas_as_zookeeper_3_8_with_enforce_quota() {
    let exe = CLI.into();
    let mut c = ProcessCluster::with_zoo_cfg_lines(3, 131, exe, "enforceQuota=true\n");
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let rt = runtime();
    let client = rt
        .block_on(ZkClient::connect(
            std::slice::from_ref(&addr),
            Duration::from_secs(10),
        ))
        .unwrap();
    rt.block_on(async {
        client
            .create("/q", b"d", CreateMode::Persistent)
            .await
            .unwrap();
        client
            .create("/q/a", b"aaa", CreateMode::Persistent)
            .await
            .unwrap();
    });

    // zkCli's checks and wording.
    let (rc, _, e) = shell(&addr, "setquota -n 5 -b 10 /q");
    assert_eq!(rc, 1);
    assert_eq!(e.trim(), "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but an option from this group has already been selected: 'n'");
    let (rc, _, e) = shell(&addr, "setquota /q");
    assert_eq!(rc, 1);
    assert!(e.contains("MissingOptionException: Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]"), "{e}");
    assert_eq!(
        shell(&addr, "setquota -n 0 /q").2.trim(),
        "the num quota must be greater than zero"
    );
    assert_eq!(
        shell(&addr, "setquota -b -1 /q").2.trim(),
        "the bytes quota must be greater than or equal to zero"
    );
    assert_eq!(
        shell(&addr, "setquota -n x /q").2.trim(),
        "NumberFormatException happens when parsing the option value"
    );
    assert_eq!(
        shell(&addr, "setquota -n 5 /nope"),
        (1, String::new(), "/nope does not exist.\n".into())
    );
    assert_eq!(
        shell(&addr, "setquota -n 5 /zookeeper/quota/x").2.trim(),
        "cannot set a quota under the path: /zookeeper/quota"
    );

    // A hard count limit of 3 on /q, which holds 2 znodes and 4 bytes.
    assert_eq!(
        shell(&addr, "setquota -N 3 /q"),
        (0, String::new(), String::new())
    );
    let (rc, out, e) = shell(&addr, "listquota /q");
    assert_eq!(rc, 0);
    assert_eq!(e, "absolute path is /zookeeper/quota/q/zookeeper_limits\n");
    assert_eq!(
        out,
        "Output quota for /q count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3\n\
         Output stat for /q count=2,bytes=4\n"
    );
    assert_eq!(
        shell(&addr, "setquota -n 1 /q/a").2.trim(),
        "/q/a has a parent /q which has a quota"
    );
    rt.block_on(async {
        client
            .create("/q/b", b"bb", CreateMode::Persistent)
            .await
            .unwrap();
        let r = client.create("/q/c", b"", CreateMode::Persistent).await;
        assert_eq!(code(r), Err(ZkError::QuotaExceeded));
    });
    let (rc, _, e) = shell(&addr, "create /q/c");
    assert_eq!((rc, e.trim()), (1, "Quota has exceeded : /q/c"));
    // A soft limit passed is logged (by the server the client is connected to).
    assert_eq!(shell(&addr, "setquota -b 5 /q").0, 0);
    rt.block_on(client.set_data("/q/b", b"bbbbbb", -1)).unwrap();
    assert!(
        c.log(1)
            .contains("Quota exceeded: /q [current bytes=10, softByteLimit=5]"),
        "{}",
        c.log(1)
    );
    // A transaction with a create past the limit fails whole.
    let hosts = (1..=3)
        .map(|i| c.client_addr(i))
        .collect::<Vec<_>>()
        .join(",");
    let script = "import sys\nfrom kazoo.client import KazooClient\n\
        zk = KazooClient(hosts=sys.argv[1]); zk.start()\n\
        t = zk.transaction(); t.set_data('/q/a', b'x'); t.create('/q/t', b'')\n\
        print([type(r).__name__ for r in t.commit()]); print(zk.exists('/q/t')); zk.stop()\n";
    let out = Command::new("python3")
        .args(["-c", script, &hosts])
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "['RolledBackError', 'QuotaExceededError']\nNone\n");

    // Every replica holds the same usage, a follower that missed writes included.
    assert_eq!(usage_on(&addr), "count=3,bytes=10");
    let follower = (1..=3).find(|i| Some(*i) != c.leader() && *i != 1).unwrap();
    c.kill9(follower);
    rt.block_on(async {
        client.delete("/q/b", -1).await.unwrap();
        client
            .create("/q/b", b"b", CreateMode::Persistent)
            .await
            .unwrap();
    });
    let usage = "count=3,bytes=5";
    c.start(follower);
    wait_until("the follower to serve", Duration::from_secs(20), || {
        matches!(c.mode(follower).as_str(), "follower" | "leader")
    })
    .unwrap();
    for i in 1..=3 {
        assert_eq!(usage_on(&c.client_addr(i)), usage, "server {i}");
    }
    // Deleting the limit lets the write through; deleting the quota removes its znodes.
    assert_eq!(shell(&addr, "delquota -N /q").0, 0);
    rt.block_on(client.create("/q/c", b"", CreateMode::Persistent))
        .unwrap();
    assert_eq!(usage_on(&addr), "count=4,bytes=5");
    assert_eq!(
        shell(&addr, "delquota /q"),
        (0, String::new(), String::new())
    );
    assert_eq!(
        shell(&addr, "delquota /q").1,
        "Quota does not exist for /q\n"
    );
    let (_, out, e) = shell(&addr, "listquota /q");
    assert_eq!(
        (out.as_str(), e.lines().last()),
        ("", Some("quota for /q does not exist."))
    );
    let (children, _) = rt
        .block_on(client.get_children("/zookeeper/quota", false))
        .unwrap();
    assert!(children.is_empty(), "{children:?}");
    rt.block_on(client.close()).unwrap();
}
