//! Mutual TLS on the quorum port (`sslQuorum=true`, `ssl.quorum.*`), with certificates made at
//! test time: three servers whose key stores are an encrypted PKCS#8 PEM, a PKCS#12 file and a
//! plain PEM form a quorum and serve; a wrong key store password stops a server at start with
//! one line; a server with an untrusted certificate, or with a trusted one that names another
//! host, is kept out; a plain-TCP stranger on the quorum port gets no handshake frame. Three
//! servers on 127.0.180.x. About 15 s.

use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::certs::{TestCa, STORE_PASSWORD};
use ensemble_tests::client_session;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BLOCK: u8 = 180;
const DEADLINE: Duration = Duration::from_secs(30);
const KEY_PASSWORD: &str = "quorum key password";

/// The `ssl.quorum.*` lines of one server.
struct Stores {
    key_store: PathBuf,
    key_password: Option<String>,
    trust_store: PathBuf,
}

impl Stores {
    fn lines(&self) -> String {
        let password = self
            .key_password
            .as_ref()
            .map(|p| format!("ssl.quorum.keyStore.password={p}\n"))
            .unwrap_or_default();
        format!(
            "sslQuorum=true\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.quorum.keyStore.location={}\n{password}ssl.quorum.trustStore.location={}\n\
             ssl.quorum.hostnameVerification=true\n",
            self.key_store.display(),
            self.trust_store.display()
        )
    }
}

/// Server `i`'s zoo.cfg with `stores`.
fn zoo_cfg(i: u64, data: &Path, stores: &Stores) -> String {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\n\
         clientPortAddress=127.0.{BLOCK}.{i}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
        data.display()
    );
    for j in 1..=3 {
        cfg.push_str(&format!(
            "server.{j}=127.0.{BLOCK}.{j}:2888:3888;127.0.{BLOCK}.{j}:2181\n"
        ));
    }
    cfg + &stores.lines()
}

/// Rewrites server `i`'s zoo.cfg with `stores`; its dataDir (`zk-<i>` beside the zoo.cfg, as
/// `ProcessCluster::with_zoo_cfg_text` lays them out) stays.
fn rewrite(cluster: &ProcessCluster, i: u64, stores: &Stores) {
    let path = cluster.zoo_cfg_path(i).expect("zoo.cfg cluster");
    let data = path
        .parent()
        .expect("zoo.cfg in a directory")
        .join(format!("zk-{i}"));
    std::fs::write(path, zoo_cfg(i, &data, stores)).expect("rewrite");
}

#[test]
fn quorum_over_mutual_tls_keeps_strangers_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path());
    let host = |i: u64| format!("127.0.{BLOCK}.{i}");
    let issued: Vec<_> = (1..=3)
        .map(|i| ca.peer(&format!("zk{i}"), &[&host(i)]))
        .collect();
    let trust = ca.ca_pem();
    let good = |i: u64| {
        let me = &issued[i as usize - 1];
        match i {
            1 => Stores {
                key_store: ca.encrypted_pem(me, "zk1", KEY_PASSWORD),
                key_password: Some(KEY_PASSWORD.into()),
                trust_store: trust.clone(),
            },
            2 => Stores {
                key_store: ca.pkcs12(me, "zk2"),
                key_password: Some(STORE_PASSWORD.into()),
                trust_store: trust.clone(),
            },
            _ => Stores {
                key_store: me.pem.clone(),
                key_password: None,
                trust_store: trust.clone(),
            },
        }
    };
    let stores: Vec<Stores> = (1..=3).map(good).collect();
    let exe = env!("CARGO_BIN_EXE_ensemble-cli").into();
    let mut cluster = ProcessCluster::with_zoo_cfg_text(
        3,
        BLOCK,
        exe,
        |i, data| zoo_cfg(i, data, &stores[i as usize - 1]),
        |i| format!("127.0.{BLOCK}.{i}:2181"),
    );

    // A wrong password for the encrypted key: one line at start, and the process exits.
    let wrong = Stores {
        key_password: Some("not the password".into()),
        ..good(1)
    };
    rewrite(&cluster, 1, &wrong);
    cluster.start(1);
    assert!(cluster.wait_exit(1, DEADLINE).is_some_and(|c| c != 0));
    let log = cluster.log(1);
    assert!(
        log.contains("cannot decrypt the private key: wrong key store password"),
        "{log}"
    );
    rewrite(&cluster, 1, &good(1));

    cluster.start_all();
    cluster.wait_serving(DEADLINE).expect("a quorum over TLS");
    for i in 1..=3 {
        assert!(
            !cluster.log(i).contains("PEER AUTHENTICATION IS OFF"),
            "server {i} warns although TLS authenticates its peers"
        );
    }
    let (rt, c1) = client_session(&cluster.client_addr(1));
    rt.block_on(c1.create("/tls", b"over mutual TLS", CreateMode::Persistent))
        .expect("create");
    drop((c1, rt));
    let (rt3, c3) = client_session(&cluster.client_addr(3));
    rt3.block_on(c3.sync("/tls")).expect("sync");
    let (data, _) = rt3.block_on(c3.get_data("/tls")).expect("read on 3");
    assert_eq!(data, b"over mutual TLS");
    drop((c3, rt3));

    plain_stranger_gets_no_handshake_frame(&format!("{}:2888", host(1)));

    // Server 3 with a certificate of another CA: servers 1 and 2 refuse it and keep serving.
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).expect("create dir");
    let other = TestCa::new(&other_dir);
    let stranger = other.peer("zk3", &[&host(3)]);
    cluster.kill9(3);
    rewrite(
        &cluster,
        3,
        &Stores {
            key_store: stranger.pem.clone(),
            key_password: None,
            trust_store: trust.clone(),
        },
    );
    let since = log_ends(&cluster);
    cluster.start(3);
    refused(&cluster, since, "failed the quorum TLS handshake");
    assert!(!matches!(cluster.mode(3).as_str(), "leader" | "follower"));
    wait_until("1 and 2 to serve", DEADLINE, || {
        let mut modes = [cluster.mode(1), cluster.mode(2)];
        modes.sort();
        modes == ["follower", "leader"]
    })
    .expect("1 and 2 keep a quorum");
    let (rt, c1) = client_session(&cluster.client_addr(1));
    rt.block_on(c1.set_data("/tls", b"still serving", -1))
        .expect("1 and 2 serve writes");

    // Server 3 with a trusted certificate for another host: hostname verification refuses it.
    let elsewhere = ca.peer("zk3-elsewhere", &[&host(9)]);
    cluster.kill9(3);
    rewrite(
        &cluster,
        3,
        &Stores {
            key_store: elsewhere.pem.clone(),
            key_password: None,
            trust_store: trust.clone(),
        },
    );
    let since = log_ends(&cluster);
    cluster.start(3);
    refused(&cluster, since, "does not fit server 3's host");
    assert!(!matches!(cluster.mode(3).as_str(), "leader" | "follower"));

    // With its own certificate back, server 3 rejoins and catches up.
    cluster.kill9(3);
    rewrite(&cluster, 3, &good(3));
    cluster.start(3);
    cluster.wait_serving(DEADLINE).expect("3 rejoins");
    let (rt3, c3) = client_session(&cluster.client_addr(3));
    rt3.block_on(c3.sync("/tls")).expect("sync");
    let (data, _) = rt3.block_on(c3.get_data("/tls")).expect("read on 3");
    assert_eq!(data, b"still serving");
}

/// How far the logs of servers 1 and 2 go now.
fn log_ends(cluster: &ProcessCluster) -> [usize; 2] {
    [cluster.log(1).len(), cluster.log(2).len()]
}

/// Waits until server 1 or 2 logs, past `since`, a refusal containing `why`.
fn refused(cluster: &ProcessCluster, since: [usize; 2], why: &str) {
    wait_until(why, DEADLINE, || {
        (1..=2).any(|i| {
            let log = cluster.log(i);
            log.get(since[i as usize - 1]..)
                .is_some_and(|new| new.contains(why))
        })
    })
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.log(1), cluster.log(3)));
}

/// A peer handshake Hello in plain TCP is answered with nothing but, at most, a TLS alert, and
/// the connection is closed.
fn plain_stranger_gets_no_handshake_frame(addr: &str) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    // A length prefix and a made-up Hello: what a plain peer would send first.
    let mut hello = 40u32.to_be_bytes().to_vec();
    hello.extend_from_slice(&[0u8; 40]);
    s.write_all(&hello).expect("write");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        reply.is_empty() || reply[0] == 0x15,
        "a plain stranger got {reply:?}"
    );
}
