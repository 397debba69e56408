//! TLS on the secure client port (`secureClientPort`), with certificates made at test time: our
//! client and `ensemble shell`, kazoo with `use_ssl`, and Apache's zkCli.sh (Netty, PKCS#12
//! stores) connect; x509 ACLs let a certificate's subject in and keep an anonymous TLS client
//! out; the plain port keeps serving beside it; plaintext on the secure port is refused
//! cleanly; bad key material stops the server at start with one line. One standalone server
//! on 127.0.160.x / 127.0.161.x.

use ensemble_actors::tls::{client_config, ClientConfig, ClientTlsOptions};
use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_config::Store;
use ensemble_messages::jute::{Acl, Id};
use ensemble_messages::zk::CreateMode;
use ensemble_messages::zk::{perm, ZkError};
use ensemble_node::local_cluster::ProcessCluster;
use ensemble_tests::certs::{Issued, TestCa, STORE_PASSWORD};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const KAZOO_DN: &str = "CN=kazoo,O=ensemble-test";
const SHELL_DN: &str = "CN=shell,O=ensemble-test";
const ZKCLI_DN: &str = "CN=zkcli,O=ensemble-test";

/// The certificates of one test, in their own directory.
struct Certs {
    _dir: tempfile::TempDir,
    ca: TestCa,
    server: Issued,
    kazoo: Issued,
    shell: Issued,
    zkcli_p12: PathBuf,
    /// The CA as a Java PKCS#12 trust store.
    trust_p12: PathBuf,
}

impl Certs {
    fn new(server_ip: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new(dir.path());
        let server = ca.server("server", &["localhost", server_ip]);
        let kazoo = ca.client("kazoo", "ensemble-test");
        let shell = ca.client("shell", "ensemble-test");
        let zkcli = ca.client("zkcli", "ensemble-test");
        let zkcli_p12 = ca.pkcs12(&zkcli, "zkcli");
        let trust_p12 = ca.trust_store_p12();
        Certs {
            _dir: dir,
            ca,
            server,
            kazoo,
            shell,
            zkcli_p12,
            trust_p12,
        }
    }

    /// Our client's TLS config, with `identity` as its certificate if given.
    fn client(&self, identity: Option<&Issued>) -> Arc<ClientConfig> {
        let pem = |p: &Path| Store::new("test", &p.display().to_string(), None, Some("PEM"));
        client_config(&ClientTlsOptions {
            trust_store: Some(pem(&self.ca.ca_pem()).unwrap()),
            key_store: identity.map(|i| pem(&i.pem).unwrap()),
            skip_hostname_verification: false,
        })
        .expect("client TLS config")
    }
}

/// A standalone server from zoo.cfg with `extra` lines (its secure port 2281).
fn server(block: u8, extra: &str) -> ProcessCluster {
    let exe = env!("CARGO_BIN_EXE_ensemble-cli").into();
    ProcessCluster::with_zoo_cfg_lines(1, block, exe, extra)
}

/// zoo.cfg lines for the secure port: PKCS#12 server key store and trust store (Java's), x509
/// clients optional (want), the shell's certificate as super user.
fn secure_lines(certs: &Certs, block: u8) -> String {
    let keystore = certs.ca.pkcs12(&certs.server, "server");
    let truststore = &certs.trust_p12;
    format!(
        "secureClientPort=2281\nsecureClientPortAddress=127.0.{block}.1\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
         ssl.keyStore.location={}\nssl.keyStore.password={STORE_PASSWORD}\n\
         ssl.trustStore.location={}\nssl.trustStore.password={STORE_PASSWORD}\n\
         ssl.clientAuth=want\nzookeeper.X509AuthenticationProvider.superUser={SHELL_DN}\n",
        keystore.display(),
        truststore.display()
    )
}

/// Connects over TLS, the session's task on `rt`; the error as text.
fn connect(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    tls: Arc<ClientConfig>,
) -> Result<ZkClient, String> {
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    rt.block_on(ZkClient::connect_with_tls(
        &[addr.to_string()],
        Duration::from_secs(5),
        events,
        Some(tls),
    ))
    .map_err(|e| e.to_string())
}

fn x509_acl(dn: &str, perms: i32) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: "x509".into(),
            id: dn.into(),
        },
    }
}

#[test]
fn clients_speak_tls_and_x509_acls_decide() {
    let block = 160;
    let certs = Certs::new(&format!("127.0.{block}.1"));
    let mut c = server(block, &secure_lines(&certs, block));
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let secure = format!("127.0.{block}.1:2281");
    // Sessions keep pinging while zkCli.sh and the shell run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    // Our client with the shell's certificate (the super user) writes a znode only kazoo's
    // and zkCli's certificates may read.
    let admin = connect(&rt, &secure, certs.client(Some(&certs.shell)))
        .expect("a TLS session with a client certificate");
    let ids = rt.block_on(admin.who_am_i()).unwrap();
    assert!(ids.contains(&("x509".into(), SHELL_DN.into())), "{ids:?}");
    assert!(ids.contains(&("super".into(), SHELL_DN.into())), "{ids:?}");
    let acl = vec![
        x509_acl(KAZOO_DN, perm::READ),
        x509_acl(ZKCLI_DN, perm::READ),
    ];
    rt.block_on(admin.create_with_acl("/secret", b"tls-only", acl, CreateMode::Persistent))
        .expect("create /secret");
    rt.block_on(admin.get_data("/secret"))
        .expect("the super user reads every znode");

    // An anonymous TLS client (no certificate, allowed by clientAuth=want) is not let in.
    let anonymous = connect(&rt, &secure, certs.client(None)).expect("an anonymous TLS session");
    assert_eq!(
        rt.block_on(anonymous.get_data("/secret")).unwrap_err(),
        ClientError::Server(ZkError::NoAuth)
    );
    let ids = rt.block_on(anonymous.who_am_i()).unwrap();
    assert!(ids.iter().all(|(s, _)| s == "ip"), "{ids:?}");

    // The plain port serves beside the secure one; a plaintext client on the secure port is
    // refused without harming the server.
    let (plain_rt, plain) = ensemble_tests::client_session(&c.client_addr(1));
    plain_rt
        .block_on(plain.create("/plain", b"x", CreateMode::Persistent))
        .expect("plain port works");
    let refused = plain_rt.block_on(ZkClient::connect(
        std::slice::from_ref(&secure),
        Duration::from_secs(2),
    ));
    assert!(refused.is_err(), "a plaintext session on the secure port");
    assert_garbage_refused(&secure);
    let silent = {
        let secure = secure.clone();
        std::thread::spawn(move || assert_silence_times_out(&secure))
    };

    kazoo_reads_with_its_certificate(&certs, &secure);
    zkcli_reads_with_pkcs12_stores(&certs, &secure, &c);
    shell_reads_over_tls(&certs, &secure);
    silent
        .join()
        .expect("a silent connection is closed in time");

    // The server is still well, and the TLS session outlived the refusals.
    assert!(c.mode(1).contains("standalone"), "{}", c.mode(1));
    rt.block_on(admin.get_data("/plain"))
        .expect("the TLS session outlived the refusals");
}

/// Raw bytes that are not a TLS ClientHello get the connection closed, quickly.
fn assert_garbage_refused(secure: &str) {
    let mut s = std::net::TcpStream::connect(secure).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x00\x00\x00\x2cruok plaintext here, not a TLS handshake")
        .unwrap();
    let mut buf = [0u8; 64];
    // A TLS alert or a plain close; never a ZooKeeper reply.
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || buf[0] == 0x15, "{:?}", &buf[..n]);
}

/// A connection that never starts its TLS handshake is closed after
/// ssl.handshakeDetectionTimeoutMillis (default 5 s, as Apache's), not held.
fn assert_silence_times_out(secure: &str) {
    let mut s = std::net::TcpStream::connect(secure).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let start = std::time::Instant::now();
    let n = s
        .read(&mut [0u8; 16])
        .expect("closed, not timed out on our side");
    let waited = start.elapsed();
    assert_eq!(n, 0);
    assert!(
        waited >= Duration::from_millis(4900) && waited < Duration::from_secs(9),
        "closed after {waited:?}"
    );
}

/// kazoo with `use_ssl=True` and its client certificate reads the x509-protected znode; a
/// four-letter word is answered over TLS.
fn kazoo_reads_with_its_certificate(certs: &Certs, secure: &str) {
    let script = r#"
import sys
from kazoo.client import KazooClient
hosts, ca, cert, key = sys.argv[1:5]
zk = KazooClient(hosts=hosts, use_ssl=True, ca=ca, certfile=cert, keyfile=key,
                 verify_certs=True, timeout=10)
zk.start(timeout=10)
data, _ = zk.get("/secret")
print("read", data.decode())
zk.stop()
# A four-letter word over TLS, as Apache answers it on its secure port.
import socket, ssl
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
host, port = hosts.rsplit(":", 1)
with ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host) as s:
    s.sendall(b"ruok")
    print("ruok", s.recv(16).decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, secure])
        .arg(certs.ca.ca_pem())
        .arg(&certs.kazoo.cert)
        .arg(&certs.kazoo.key)
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("read tls-only") && text.contains("ruok imok"),
        "kazoo over TLS:\n{text}"
    );
}

/// zkCli.sh with `-Dzookeeper.client.secure=true`, Netty and PKCS#12 key and trust stores.
fn zkcli_reads_with_pkcs12_stores(certs: &Certs, secure: &str, c: &ProcessCluster) {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} is missing: run ./scripts/test, which installs Debian's zookeeper package"
    );
    let trust = &certs.trust_p12;
    // Debian's zookeeper.jar leaves Netty's resolver and codec jars off its class path.
    let flags = format!(
        "-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-resolver.jar:\
         /usr/share/java/netty-codec.jar -Dzookeeper.client.secure=true \
         -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
         -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.password={STORE_PASSWORD} \
         -Dzookeeper.ssl.keyStore.type=PKCS12 \
         -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.password={STORE_PASSWORD} \
         -Dzookeeper.ssl.trustStore.type=PKCS12",
        certs.zkcli_p12.display(),
        trust.display()
    );
    let out = Command::new(ZKCLI)
        .env("CLIENT_JVMFLAGS", flags)
        .args(["-server", secure, "get", "/secret"])
        .output()
        .expect("zkCli.sh runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.lines().any(|l| l == "tls-only"),
        "zkCli.sh over TLS printed:\n{text}\nserver log:\n{}",
        c.log(1)
    );
}

/// `ensemble shell --secure` with the super user's PEM key store.
fn shell_reads_over_tls(certs: &Certs, secure: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(["shell", "-server", secure, "--secure", "--trust-store"])
        .arg(certs.ca.ca_pem())
        .arg("--key-store")
        .arg(&certs.shell.pem)
        .args(["whoami"])
        .output()
        .expect("ensemble shell runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains(SHELL_DN),
        "ensemble shell over TLS printed:\n{text}"
    );
}

/// A key store that cannot be opened stops the server at start with one line naming it.
#[test]
fn bad_key_material_stops_the_server_with_one_line() {
    let block = 161;
    let certs = Certs::new(&format!("127.0.{block}.1"));
    let keystore = certs.ca.pkcs12(&certs.server, "server");
    let cases = [
        (
            format!(
                "ssl.keyStore.location={}\nssl.keyStore.password=wrong\nssl.clientAuth=none\n",
                keystore.display()
            ),
            "wrong password",
        ),
        (
            "ssl.keyStore.location=/nonexistent/server.jks\nssl.clientAuth=none\n".to_string(),
            "keytool -importkeystore",
        ),
        (
            format!(
                "ssl.keyStore.location={}\nssl.trustStore.location={}\n",
                certs.server.pem.display(),
                certs.kazoo.key.display()
            ),
            "trust store",
        ),
    ];
    for (lines, expect) in cases {
        let extra = format!("secureClientPort=2281\n{lines}");
        let mut c = server(block, &extra);
        c.start(1);
        let code = c.wait_exit(1, Duration::from_secs(20));
        assert!(
            matches!(code, Some(c) if c != 0),
            "exit {code:?} for {lines}"
        );
        let log = c.log(1);
        assert!(log.contains(expect), "{expect:?} not in:\n{log}");
    }
}
