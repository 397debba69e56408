//! Drop-in migration from Apache ZooKeeper 3.8: a 3-server Apache ensemble is filled through
//! kazoo and stopped, then ensemble starts on the very same zoo.cfg files and must serve the
//! same tree (paths, data, ACLs, every Stat field), resume the session kazoo kept open, continue
//! sequence numbers and zxids above Apache's, and leave Apache's files untouched. Then the
//! offline tools `ensemble data check` / `data dump` read those dirs, and a damaged Apache dir
//! refuses to start. Then three Apache servers of which one stopped 30 writes early are
//! restarted as ensemble: the lagging one is synced by the leader. Needs Java with Debian's
//! zookeeper package and kazoo, which `./scripts/test` installs, and
//! `/work/shared/tools/apache-zk.sh`. About 25 s.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const APACHE_ZK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/tools/apache-zk.sh"
);
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/apache_data.py");
const EXE: &str = env!("CARGO_BIN_EXE_ensemble-cli");
/// Client ports 14181..14183 (quorum and election ports base+10+i, base+20+i).
const BASE_PORT: u16 = 14180;
const HOSTS: &str = "127.0.0.1:14181,127.0.0.1:14182,127.0.0.1:14183";

/// Apache's servers under `dir`; stopped (and waited for) on drop, even when the test fails.
struct Apache {
    dir: PathBuf,
}

impl Apache {
    fn start(dir: &Path) -> Apache {
        Self::start_at(dir, BASE_PORT)
    }

    /// Three servers with client ports `base + i` (quorum and election ports base+10+i,
    /// base+20+i).
    fn start_at(dir: &Path, base: u16) -> Apache {
        assert!(Path::new(APACHE_ZK).exists(), "{APACHE_ZK} is missing");
        let out = Command::new("bash")
            .args([APACHE_ZK, "start", "3"])
            .arg(dir)
            .env("APACHE_ZK_BASE_PORT", base.to_string())
            .output()
            .expect("apache-zk.sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Apache {
            dir: dir.to_path_buf(),
        }
    }

    fn pids(&self) -> Vec<String> {
        (1..=3)
            .filter_map(|i| std::fs::read_to_string(self.dir.join(format!("n{i}/pid"))).ok())
            .map(|p| p.trim().to_string())
            .collect()
    }

    /// Stops server `i` alone and waits until its JVM is gone.
    fn stop_one(&self, i: u64) {
        let pid_file = self.dir.join(format!("n{i}/pid"));
        let pid = std::fs::read_to_string(&pid_file).expect("pid file");
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        let _ = std::fs::remove_file(&pid_file);
        let gone = || !Path::new(&format!("/proc/{pid}")).exists();
        wait_until("Apache's JVM to exit", Duration::from_secs(30), gone).unwrap();
    }

    /// Stops every server and waits until the JVMs are gone (their ports are free then).
    fn stop(&self) {
        let pids = self.pids();
        let _ = Command::new("bash")
            .args([APACHE_ZK, "stop"])
            .arg(&self.dir)
            .status();
        let gone = || {
            pids.iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        };
        wait_until("Apache's JVMs to exit", Duration::from_secs(30), gone).unwrap();
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}

fn python(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn dump() -> BTreeMap<String, Value> {
    dump_from(HOSTS)
}

/// Every znode `hosts` serves, read through kazoo.
fn dump_from(hosts: &str) -> BTreeMap<String, Value> {
    serde_json::from_str(&python(&["dump", hosts])).expect("dump is JSON")
}

/// The kazoo process that filled the tree; it keeps one session (with ephemerals) open.
struct Filler {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Filler {
    fn start() -> (Filler, Value) {
        let mut child = Command::new("python3")
            .args([SCRIPT, "fill", HOSTS, "300000", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("fill output");
        let info = serde_json::from_str(&line).unwrap_or_else(|_| panic!("fill said {line:?}"));
        (
            Filler {
                child,
                stdin,
                stdout,
            },
            info,
        )
    }

    /// Whether the session kazoo kept open is connected again, with its ephemeral.
    fn resumed(&mut self) -> String {
        let _ = writeln!(self.stdin);
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        line.trim().to_string()
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file of Apache's `version-2` dirs: path to content.
fn apache_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for i in 1..=3 {
        let v2 = dir.join(format!("n{i}/data/version-2"));
        for e in std::fs::read_dir(&v2).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}

fn max_zxid(tree: &BTreeMap<String, Value>) -> i64 {
    tree.values()
        .flat_map(|n| {
            let s = &n["stat"];
            [s[0].as_i64(), s[1].as_i64(), s[10].as_i64()]
        })
        .flatten()
        .max()
        .unwrap_or(0)
}

/// The znodes (but ensemble's own /zookeeper/config) that differ, briefly.
fn differences(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> String {
    let brief = |v: Option<&Value>| {
        v.map_or("missing".to_string(), |v| {
            let mut v = v.clone();
            if let Some(d) = v
                .get_mut("data")
                .filter(|d| d.as_str().map_or(0, str::len) > 40)
            {
                *d = Value::from("(long)");
            }
            v.to_string()
        })
    };
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|p| *p != "/zookeeper/config" && before.get(*p) != after.get(*p))
        .map(|p| {
            format!(
                "{p}: apache {} ensemble {}",
                brief(before.get(p)),
                brief(after.get(p))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ensemble(args: &[&str]) -> (i32, String) {
    let out = Command::new(EXE)
        .args(args)
        .output()
        .expect("ensemble runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn ensemble_serves_a_stopped_apache_ensembles_data() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let apache = Apache::start(dir.path());
    let (mut filler, info) = Filler::start();
    let before = dump();
    let apache_last = info["last_zxid"].as_i64().unwrap().max(max_zxid(&before));
    apache.stop();
    let files_before = apache_files(dir.path());

    let cfgs: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("n{i}/zoo.cfg")))
        .collect();
    let mut c = ProcessCluster::with_zoo_cfg_files(95, EXE.into(), &cfgs, |i| {
        format!("127.0.0.1:{}", BASE_PORT + i as u16)
    });
    c.start_all();
    c.wait_serving(Duration::from_secs(30)).unwrap();
    for i in 1..=3 {
        assert!(
            c.log(i).contains("imported Apache ZooKeeper data"),
            "server {i}: {}",
            c.log(i)
        );
    }
    assert_eq!(filler.resumed(), "resumed", "kazoo's open session resumes");

    let after = dump();
    let differences = differences(&before, &after);
    assert!(
        differences.is_empty(),
        "the whole tree is Apache's:\n{differences}"
    );
    assert!(before.len() > 40 && before.contains_key("/app/eph"));
    for null in ["/null", "/nulled"] {
        assert_eq!(
            before[null]["data"],
            Value::Null,
            "Apache serves {null} null"
        );
    }
    assert_eq!(before["/empty"]["data"], Value::from(""));

    let app = &before["/app"]["stat"];
    let next_seq = (app[5].as_i64().unwrap() + app[9].as_i64().unwrap()) / 2;
    let created: Value = serde_json::from_str(&python(&["next", HOSTS])).unwrap();
    assert_eq!(
        created["path"].as_str().unwrap(),
        format!("/app/seq-{next_seq:010}"),
        "sequence numbers continue"
    );
    let czxid = created["czxid"].as_i64().unwrap();
    assert!(
        czxid > apache_last && czxid >> 32 > apache_last >> 32,
        "new zxid {czxid:#x} in a later epoch than Apache's last {apache_last:#x}"
    );
    drop(c);
    assert!(
        apache_files(dir.path()) == files_before,
        "Apache's files are untouched"
    );

    offline_tools(&dir.path().join("n1/data"));
    damaged_dir_refuses(dir.path());
    eprintln!("apache_import took {:?}", started.elapsed());
}

/// `data check` passes on a migrated dir (Apache's and ensemble's files) and `data dump`
/// reads both kinds.
fn offline_tools(data: &Path) {
    let data = data.to_str().unwrap();
    let (code, out) = ensemble(&["data", "check", data]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Apache data imports") && out.contains("0 errors"),
        "{out}"
    );
    let (code, out) = ensemble(&["data", "dump", data, "--json"]);
    assert_eq!(code, 0, "{out}");
    let docs: Vec<Value> = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in ["apache snapshot", "apache log", "ensemble snapshot"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let (code, out) = ensemble(&["data", "dump", data]);
    assert_eq!(code, 0);
    assert!(out.contains("type=\"createSession\""), "{out}");
}

/// A copy of Apache's files with one flipped byte in a log record: `data check` says what is
/// wrong and exits 1, and a server started on it refuses with one line instead of an empty tree.
fn damaged_dir_refuses(root: &Path) {
    let dir = root.join("damaged");
    let v2 = dir.join("version-2");
    std::fs::create_dir_all(&v2).unwrap();
    let mut logs = Vec::new();
    for e in std::fs::read_dir(root.join("n1/data/version-2")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        std::fs::copy(&p, v2.join(&name)).unwrap();
        if name.to_string_lossy().starts_with("log.") {
            logs.push(v2.join(&name));
        }
    }
    // The newest log (Apache's names are unpadded hex): the import always reads it.
    logs.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    let log = logs.last().unwrap();
    let mut bytes = std::fs::read(log).unwrap();
    bytes[60] ^= 0x01;
    std::fs::write(log, bytes).unwrap();
    let (code, out) = ensemble(&["data", "check", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Adler-32"), "{out}");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=2181\nclientPortAddress=127.0.95.9\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(EXE)
        .args(["node", "--zoo-cfg", cfg.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a server on a damaged Apache dir kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(!status.success());
    let line = err
        .lines()
        .find(|l| l.contains("cannot import Apache ZooKeeper data"))
        .unwrap_or_else(|| panic!("no refusal line in {err}"));
    assert!(line.contains("Adler-32"), "{line}");
    assert!(
        !dir.join("ensemble-v2").exists(),
        "nothing of ensemble's was written"
    );
}

/// Three Apache servers whose data dirs differ: server 3 stopped 30 writes before the others,
/// as happens in a real migration. Restarted as ensemble on the same files, every server
/// imports its own dir, the leader (never the lagging server) brings server 3 up to date by
/// DIFF or SNAP, and each server alone then serves Apache's final tree. Ports 15081..15083.
#[test]
fn a_lagging_apache_server_is_brought_up_to_date() {
    const BASE: u16 = 15080;
    let addr = |i: u16| format!("127.0.0.1:{}", BASE + i);
    let dir = tempfile::tempdir().unwrap();
    let apache = Apache::start_at(dir.path(), BASE);
    let rt = ensemble_tests::runtime();
    let both = [addr(1), addr(2), addr(3)];
    let zk = connect_when_serving(&rt, &both);
    for i in 0..20 {
        rt.block_on(zk.create(
            &format!("/early-{i:02}"),
            b"before the lag",
            CreateMode::Persistent,
        ))
        .expect("create on Apache");
    }
    rt.block_on(zk.sync("/")).expect("sync");
    wait_until(
        "Apache server 3 to hold the early writes",
        Duration::from_secs(30),
        || {
            let zk3 = rt.block_on(ZkClient::connect(&[addr(3)], Duration::from_secs(5)));
            zk3.is_ok_and(|c| {
                rt.block_on(c.exists("/early-19"))
                    .is_ok_and(|s| s.is_some())
            })
        },
    )
    .unwrap();
    // Server 3 is likely Apache's leader (highest sid): 1 and 2 elect anew, and the writes go
    // through a fresh session to them.
    drop(zk);
    apache.stop_one(3);
    let zk = connect_when_serving(&rt, &[addr(1), addr(2)]);
    for i in 0..30 {
        rt.block_on(zk.create(
            &format!("/late-{i:02}"),
            b"after server 3 stopped",
            CreateMode::Persistent,
        ))
        .expect("create on Apache 1 and 2");
    }
    rt.block_on(zk.set_data("/early-00", b"changed late", -1))
        .expect("set on Apache 1 and 2");
    rt.block_on(zk.delete("/early-01", -1)).expect("delete");
    drop(zk);
    let hosts12 = format!("{},{}", addr(1), addr(2));
    let before = dump_from(&hosts12);
    apache.stop();

    let cfgs: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("n{i}/zoo.cfg")))
        .collect();
    let mut c = ProcessCluster::with_zoo_cfg_files(181, EXE.into(), &cfgs, |i| addr(i as u16));
    c.start_all();
    c.wait_serving(Duration::from_secs(30)).unwrap();
    for i in 1..=3 {
        assert!(
            c.log(i).contains("imported Apache ZooKeeper data"),
            "server {i}: {}",
            c.log(i)
        );
    }
    assert_ne!(c.leader(), Some(3), "the lagging server cannot lead");
    let synced = (1..=2).any(|i| {
        c.log(i).lines().any(|l| {
            l.contains("syncing follower by") && l.contains("follower=3") && !l.contains("TRUNC")
        })
    });
    assert!(
        synced,
        "the leader syncs server 3: {}",
        c.log(1) + &c.log(2)
    );
    for i in 1..=3u16 {
        let after = dump_from(&addr(i));
        let differences = differences(&before, &after);
        assert!(
            differences.is_empty(),
            "server {i} serves Apache's final tree:\n{differences}"
        );
    }
    assert!(before.contains_key("/late-29") && !before.contains_key("/early-01"));
}

/// A session on `hosts` once Apache serves (it takes a few seconds to elect).
fn connect_when_serving(rt: &tokio::runtime::Runtime, hosts: &[String]) -> ZkClient {
    let mut client = None;
    wait_until("Apache to serve", Duration::from_secs(60), || {
        client = rt
            .block_on(ZkClient::connect(hosts, Duration::from_secs(5)))
            .ok();
        client.is_some()
    })
    .unwrap();
    client.expect("connected")
}
