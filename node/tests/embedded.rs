//! The embedding example (`node/examples/embedded.rs`) as a user runs it: an actix-web
//! application with an ensemble node, a Spark-style master and a worker inside. Its routes
//! read and write through the node and read the master's registry; a node whose storage fails
//! stops and says so, and the application (and its master) goes on serving. The same failure
//! makes `ensemble node` exit with status 70.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example's binary, built by `cargo test` beside this test's own (a run filtered with
/// `--test` builds no example: that case is refused rather than run on an old binary). It is
/// current when it is not older than the newest build of the library it links; the `ensemble`
/// binary is no yardstick, as cargo may link it a moment after the example.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    let example = deps
        .parent()
        .expect("profile dir")
        .join("examples/embedded");
    let built = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let library = std::fs::read_dir(deps)
        .expect("deps dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libensemble_node-") && n.ends_with(".rlib"))
        })
        .filter_map(|p| built(&p))
        .max();
    assert!(
        built(&example).is_some() && built(&example) >= library,
        "{} is missing or older than the library: run `cargo test -p ensemble-node` (or build \
         the example) without a --test filter",
        example.display()
    );
    example
}

/// Kills the child when the test ends, whichever way.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 request; returns the status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// Polls `f` until it returns Some, or panics with `what` after 20 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A one-server native config that snapshots (and so rolls its log) every 5 txns.
fn write_config(dir: &Path, client_port: u16) -> PathBuf {
    let file = dir.join("node.toml");
    let text = format!(
        "[storage]\ndata_dir = {:?}\nsnap_count = 5\n\n[[servers]]\nid = 1\n\
         host = \"127.0.155.1\"\npeer_port = 2888\nclient_port = {client_port}\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&file, text).expect("config written");
    file
}

/// Replaces the server's storage directory with a file: the next log roll fails. The
/// directory is moved aside in one step, not removed: the running server may create a file in
/// it at any moment (a log roll, a snapshot), which a removal would race with.
fn break_storage(dir: &Path) {
    let storage = dir.join("data/server-1/ensemble-v2");
    wait_for("the storage dir", || {
        storage.join("newest-log").exists().then_some(())
    });
    std::fs::rename(&storage, dir.join("storage-moved-aside")).expect("storage dir moved");
    std::fs::write(&storage, b"not a directory").expect("file in its place");
}

#[test]
fn the_example_serves_the_node_and_outlives_its_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), 2181);
    let mut child = Command::new(example())
        .args(["--http", "127.0.155.1:0", "--config"])
        .arg(&config)
        .args(["--id", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("example starts");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address line");
    let addr = line
        .trim()
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("expected the address, got {line:?}"))
        .to_string();

    let status = wait_for("a serving node", || {
        let (code, body) = http(&addr, "GET", "/status", "").ok()?;
        (code == 200 && body.contains("\"serving\":true")).then_some(body)
    });
    assert!(status.contains("\"mode\":\"standalone\""), "{status}");
    assert_eq!(http(&addr, "PUT", "/znodes/a", "one").unwrap().0, 200);
    assert_eq!(http(&addr, "PUT", "/znodes/a", "two").unwrap().0, 200);
    assert_eq!(
        http(&addr, "GET", "/znodes/a", "").unwrap(),
        (200, "two".into())
    );
    assert_eq!(http(&addr, "GET", "/znodes/missing", "").unwrap().0, 404);
    let master = wait_for(
        "the embedded worker registered with the embedded master",
        || {
            let (code, body) = http(&addr, "GET", "/master", "").ok()?;
            (code == 200 && body.contains("\"state\":\"ALIVE\"")).then_some(body)
        },
    );
    assert!(master.contains("\"status\":\"ALIVE\""), "{master}");
    assert!(
        master.contains("\"url\":\"spark://127.0.155.1:"),
        "{master}"
    );

    break_storage(dir.path());
    for i in 0..10 {
        // Once the node has stopped, writes fail; the application still answers.
        let _ = http(&addr, "PUT", &format!("/znodes/n{i}"), "x");
    }
    let events = wait_for("the failure event", || {
        let (_, body) = http(&addr, "GET", "/events", "").ok()?;
        body.contains("Failed").then_some(body)
    });
    assert!(events.contains("storage failed"), "{events}");
    let (code, _) = http(&addr, "GET", "/status", "").expect("the application still serves");
    assert_eq!(code, 503, "the stopped node answers nothing");
    let (code, body) = http(&addr, "GET", "/master", "").expect("the master still serves");
    assert_eq!(code, 200, "{body}");
    drop(child);
}

#[test]
fn ensemble_node_exits_70_when_its_storage_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), 2182);
    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_ensemble"))
            .args(["node", "--config"])
            .arg(&config)
            .args(["--id", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts"),
    );
    wait_for("the client port", || {
        TcpStream::connect("127.0.155.1:2182").ok()
    });
    break_storage(dir.path());
    let code = wait_for("the node to exit", || {
        // Each connection attempt also creates a session: a write that rolls the log.
        let _ = TcpStream::connect("127.0.155.1:2182").map(|mut s| {
            let _ = s.write_all(&connect_request());
            let _ = s.read(&mut [0; 64]);
        });
        node.0.try_wait().ok().flatten()
    });
    assert_eq!(code.code(), Some(70));
}

/// A ZooKeeper ConnectRequest (protocol 0, no session, 10 s timeout, empty password).
fn connect_request() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes()); // protocol version
    body.extend_from_slice(&0i64.to_be_bytes()); // last zxid seen
    body.extend_from_slice(&10_000i32.to_be_bytes()); // timeout
    body.extend_from_slice(&0i64.to_be_bytes()); // session id
    body.extend_from_slice(&16i32.to_be_bytes()); // password length
    body.extend_from_slice(&[0; 16]);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}
