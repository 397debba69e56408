//! Real third-party clients against 3 real server processes started from Apache `zoo.cfg` files
//! (a drop-in migration): kazoo's recipes and session handling, Apache's zkCli.sh and C client,
//! and a differential run against Apache ZooKeeper itself. `./scripts/test` installs kazoo (PyPI)
//! and Debian's zookeeper packages; without them these tests fail and say what is missing.

use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use std::process::Command;
use std::time::Duration;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// A 3-server ensemble started from Apache `zoo.cfg` files, as a drop-in replacement.
fn cluster(block: u8) -> ProcessCluster {
    let mut c = ProcessCluster::with_zoo_cfg(3, block, env!("CARGO_BIN_EXE_ensemble-cli").into());
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    c
}

/// Runs from Apache's `zoo.cfg` + `myid`, as a drop-in replacement would.
#[test]
fn kazoo_recipes_and_session_expiry_work_unmodified() {
    let c = cluster(21);
    let hosts: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/kazoo_recipes.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(hosts.join(","))
        .output()
        .expect("python3 runs (./scripts/test installs kazoo)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named 'kazoo'"),
        "kazoo is not installed: run ./scripts/test, which installs it"
    );
    assert!(out.status.success(), "kazoo recipes failed:\n{text}");
    assert_eq!(
        text.matches("\nok ").count() + usize::from(text.starts_with("ok ")),
        9,
        "{text}"
    );
}

fn zkcli(server: &str, command: &[&str]) -> String {
    assert!(
        std::path::Path::new(ZKCLI).exists(),
        "{ZKCLI} is missing: run ./scripts/test, which installs Debian's zookeeper package"
    );
    let out = Command::new(ZKCLI)
        .arg("-server")
        .arg(server)
        .args(command)
        .output()
        .expect("zkCli.sh runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn apache_zkcli_creates_reads_and_deletes() {
    let c = cluster(22);
    let (a, b) = (c.client_addr(1), c.client_addr(2));
    let check = |server: &str, args: &[&str], expect: &dyn Fn(&str) -> bool| {
        let out = zkcli(server, args);
        assert!(
            expect(&out),
            "zkCli.sh {args:?} against {server} printed:\n{out}"
        );
    };
    check(&a, &["create", "/zkcli", "hello"], &|o| {
        o.contains("Created /zkcli")
    });
    check(&b, &["get", "/zkcli"], &|o| o.lines().any(|l| l == "hello"));
    check(&a, &["set", "/zkcli", "world"], &|_| true);
    check(&b, &["stat", "/zkcli"], &|o| {
        o.contains("dataVersion = 1") && o.contains("dataLength = 5")
    });
    check(&b, &["ls", "/"], &|o| o.contains("[zkcli, zookeeper]"));
    check(&a, &["delete", "/zkcli"], &|_| true);
    check(&b, &["get", "/zkcli"], &|o| {
        o.contains("Node does not exist: /zkcli")
    });
}

/// Apache's C client (`cli_mt`, from Debian's zookeeper-bin) with its strict handshake sizes.
#[test]
fn apache_c_client_creates_lists_and_deletes() {
    const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
    assert!(
        std::path::Path::new(CLI_MT).exists(),
        "{CLI_MT} is missing: run ./scripts/test, which installs Debian's zookeeper-bin package"
    );
    let c = cluster(23);
    let mut child = Command::new(CLI_MT)
        .arg(c.client_addr(3))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cli_mt runs");
    let mut stdin = child.stdin.take().expect("stdin");
    // cli_mt prints results on stderr, which is not buffered.
    let stdout = child.stderr.take().expect("stderr");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    use std::io::Write;
    let mut text = String::new();
    // Each command is answered by a line with its return code (or "Error N for PATH").
    for line in ["create /cnode", "ls /", "delete /cnode", "exists /cnode"] {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        loop {
            let got = lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no answer to {line:?}; output so far:\n{text}"));
            text.push_str(&got);
            text.push('\n');
            if got.contains("rc = ") || got.starts_with("Error ") {
                break;
            }
        }
    }
    writeln!(stdin, "quit").unwrap();
    drop(stdin);
    let _ = child.wait();
    assert!(text.contains("Got a new session id"), "{text}");
    assert!(text.contains("[/cnode]: rc = 0"), "{text}");
    assert!(text.contains("\tcnode\n"), "{text}");
    assert!(
        text.contains("/cnode: rc = 0") && text.contains("Error -101 for /cnode"),
        "exists after delete: {text}"
    );
}

/// A kazoo session survives the death of its server, leader or follower: it moves to another
/// server within its timeout and keeps its ephemeral znode.
#[test]
fn a_session_survives_the_death_of_its_server() {
    let mut c = cluster(24);
    let leader = c.leader().expect("a leader");
    // Each server listens on 127.0.24.N:2181; the client starts on the leader.
    let mut hosts = vec![c.client_addr(leader)];
    hosts.extend((1..=3).filter(|i| *i != leader).map(|i| c.client_addr(i)));
    let mut helper = LineHelper::start("kazoo_session.py", &hosts.join(","));
    let first = helper.next("connect");
    let session = first.split_whitespace().nth(1).unwrap().to_string();
    let server_of = |line: &str| -> String { line.split_whitespace().last().unwrap().to_string() };
    let mut check = || helper.ask("check");
    // The leader dies: the session moves and keeps its ephemeral znode.
    c.kill9(leader);
    let after_leader = check();
    assert_eq!(
        after_leader,
        format!("check {session} True {}", server_of(&after_leader))
    );
    // The server it moved to dies too (after the first one is back, to keep a quorum).
    c.start(leader);
    wait_until("the old leader to rejoin", Duration::from_secs(20), || {
        c.mode(leader) == "follower"
    })
    .unwrap();
    // All servers listen on port 2181 of their own address; find which one the client is on by
    // its connection count.
    let on = (1..=3)
        .find(|i| {
            ensemble_node::four_letter::ask(&c.client_addr(*i), "mntr", Duration::from_secs(2))
                .is_ok_and(|m| m.contains("zk_num_alive_connections\t1\n"))
        })
        .expect("one server holds the kazoo connection");
    c.kill9(on);
    let after_second = check();
    assert!(
        after_second.starts_with(&format!("check {session} True")),
        "{after_second}"
    );
}

/// A Python helper from `tests/interop/` driven line by line over stdin and stdout; killed
/// when dropped.
struct LineHelper {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LineHelper {
    fn start(script: &str, arg: &str) -> Self {
        let path = format!("{}/interop/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(path)
            .arg(arg)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (./scripts/test installs kazoo)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        LineHelper {
            child,
            stdin,
            lines,
        }
    }

    /// The helper's next line, waiting at most 40 s.
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(40))
            .unwrap_or_else(|_| panic!("the helper did not answer {what}"))
    }

    /// Sends a command line and returns the answer.
    fn ask(&mut self, command: &str) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("helper stdin");
        self.stdin.flush().expect("helper stdin");
        self.next(command)
    }
}

impl Drop for LineHelper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `readonlymode.enabled`, a server cut off from the quorum keeps serving reads to a
/// kazoo client that allows read-only mode, refuses its writes, and hands it back to
/// read-write service when the quorum returns.
#[test]
fn read_only_mode_serves_reads_without_a_quorum_and_hands_back() {
    let exe = env!("CARGO_BIN_EXE_ensemble-cli").into();
    let mut c = ProcessCluster::with_zoo_cfg_lines(3, 27, exe, "readonlymode.enabled=true\n");
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let mut helper = LineHelper::start("kazoo_readonly.py", &c.client_addr(3));
    assert_eq!(helper.next("connect"), "ready");
    c.kill9(1);
    c.kill9(2);
    let third = c.client_addr(3);
    let isro = || {
        ensemble_node::four_letter::ask(&third, "isro", Duration::from_secs(2)).unwrap_or_default()
    };
    wait_until(
        "server 3 to serve read-only",
        Duration::from_secs(20),
        || isro() == "ro",
    )
    .unwrap();
    assert_eq!(
        helper.ask("cut"),
        "ro CONNECTED_RO before_the_cut NotReadOnlyCallError"
    );
    c.start(1);
    c.start(2);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    assert_eq!(isro(), "rw");
    assert_eq!(helper.ask("back"), "rw CONNECTED");
}

/// Stops the reference Apache ZooKeeper when the test ends, however it ends.
struct ApacheZk {
    tool: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.tool)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// The same request sequence against Apache ZooKeeper 3.8 and against ensemble: error codes,
/// sequence names, Stat fields, multi results, ACLs and watch events must agree.
#[test]
fn differential_against_apache_zookeeper() {
    let tool =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/apache-zk.sh");
    assert!(
        tool.exists(),
        "{} is missing: CI runs with shared/ beside the clone",
        tool.display()
    );
    let reference = ApacheZk {
        tool: tool.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    // Client port 13281, away from every other test's addresses.
    let status = Command::new("bash")
        .arg(&tool)
        .args(["start", "1"])
        .arg(reference.dir.path())
        .env("APACHE_ZK_BASE_PORT", "13280")
        .status()
        .expect("apache-zk.sh runs");
    assert!(status.success());
    wait_until("Apache ZooKeeper to serve", Duration::from_secs(60), || {
        ensemble_node::four_letter::mode("127.0.0.1:13281", Duration::from_millis(500))
            == "standalone"
    })
    .unwrap();
    let c = cluster(25);
    let ours: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/differential.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("127.0.0.1:13281")
        .arg(ours.join(","))
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ensemble and Apache ZooKeeper disagree:\n{text}"
    );
    assert!(text.contains("0 differences"), "{text}");
}

/// Apache Curator 5 (Debian's packages), as Spark's masters use it: container parents, a
/// LeaderLatch handing leadership over, and a mutex.
#[test]
fn apache_curator_leader_latch_and_persistence() {
    let classes = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/CuratorCheck.java");
    assert!(
        std::path::Path::new("/usr/share/java/curator-recipes.jar").exists(),
        "Curator is missing: run ./scripts/test, which installs Debian's libcurator-recipes-java"
    );
    let built = Command::new("javac")
        .args(["-cp", "/usr/share/java/*", "-d"])
        .arg(classes.path())
        .arg(source)
        .output()
        .expect("javac runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let c = cluster(26);
    let hosts: Vec<String> = (1..=3).map(|i| c.client_addr(i)).collect();
    let classpath = format!("{}:/usr/share/java/*", classes.path().display());
    let out = Command::new("java")
        .args(["-cp", &classpath, "CuratorCheck"])
        .arg(hosts.join(","))
        .output()
        .expect("java runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("curator ok"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
