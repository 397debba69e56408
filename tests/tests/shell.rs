//! `ensemble shell` against a running ensemble: one command per invocation, a script on stdin,
//! and the line editor through a pseudo-terminal.

use ensemble_node::local_cluster::{ProcessCluster, Program};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn shell(servers: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let (code, out) = shell_as(&["shell", "--server", servers], args, stdin);
    (code == Some(0), out)
}

/// Runs `ensemble-cli <head> <args>` with `stdin` piped in; its exit code, and what it wrote on
/// stdout and stderr (one pipe, so in the order written).
fn shell_as(head: &[&str], args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
    let (mut output, out_end) = std::io::pipe().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(head)
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(out_end.try_clone().unwrap())
        .stderr(out_end)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let mut text = String::new();
    output.read_to_string(&mut text).unwrap();
    (child.wait().unwrap().code(), text)
}

#[test]
fn shell_commands_print_like_zkcli() {
    let mut c = ProcessCluster::new(
        3,
        33,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let servers = format!("{},{}", c.client_addr(1), c.client_addr(2));
    assert_eq!(
        shell(&servers, &["create", "/s", "hello"], None),
        (true, "Created /s\n".into())
    );
    assert_eq!(
        shell(&servers, &["create", "/s", "x"], None),
        (false, "Node already exists: /s\n".into())
    );
    let (ok, out) = shell(&servers, &["get", "-s", "/s"], None);
    assert!(
        ok && out.starts_with("hello\ncZxid = 0x") && out.contains("\ndataLength = 5\n"),
        "{out}"
    );
    assert_eq!(
        shell(&servers, &["set", "-v", "9", "/s", "x"], None).1,
        "version No is not valid : /s\n"
    );
    assert_eq!(shell(&servers, &["ls", "/"], None).1, "[s, zookeeper]\n");
    assert_eq!(
        shell(&servers, &["getAcl", "/s"], None).1,
        "'world,'anyone\n: cdrwa\n"
    );
    let script = "create -s /s/q- a\ncreate -e /s/e\ncreate /s/e/x\nls -R /s\ngetEphemerals /s\nsync /s\ndelete /s\ndeleteall /s\nstat /s\n";
    let (_, out) = shell(&servers, &[], Some(script));
    let expected = "Created /s/q-0000000000\nCreated /s/e\nEphemerals cannot have children: /s/e/x\n\
        /s\n/s/e\n/s/q-0000000000\n[/s/e]\nSync is OK\nNode not empty: /s\nNode does not exist: /s\n";
    assert_eq!(out, expected);
    let script = "create -t 600000 /ttl d\ncreate -t 5 -e /ttl-e\ncreate -t soon /ttl-x\n";
    let (_, out) = shell(&servers, &[], Some(script));
    assert_eq!(
        out,
        "Created /ttl\nTTLs cannot be used with Ephemeral znodes\n-t argument must be a long value\n"
    );
    let (_, stat) = shell(&servers, &["stat", "/ttl"], None);
    assert!(
        stat.contains("\nephemeralOwner = 0x0\n"),
        "as in Apache ZooKeeper, a TTL znode shows ephemeralOwner 0: {stat}"
    );
}

fn cluster(size: u64) -> ProcessCluster {
    let mut c = ProcessCluster::new(
        size,
        115,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    c
}

#[test]
fn shell_help_usage_auth_history_as_zkcli() {
    let c = cluster(1);
    let server = c.client_addr(1);
    let zkcli = |args: &[&str]| shell_as(&["shell", "-server", &server], args, None);
    let (code, out) = zkcli(&["help"]);
    assert!(
        code == Some(0) && out.starts_with("ZooKeeper -server host:port cmd args\n\taddWatch "),
        "{out}"
    );
    assert!(out.contains("\n\tgetAllChildrenNumber path\n"), "{out}");
    let (code, out) = zkcli(&["frobnicate", "/"]);
    assert_eq!(code, Some(127));
    assert!(
        out.ends_with("\nCommand not found: Command not found frobnicate\n"),
        "{out}"
    );
    assert_eq!(
        zkcli(&["create", "/p", "v"]),
        (Some(0), "Created /p\n".into())
    );
    assert_eq!(zkcli(&["create", "/p/c"]).0, Some(0));
    assert_eq!(
        zkcli(&["set", "/p"]),
        (Some(1), "set [-s] [-v version] path data\n".into())
    );
    assert_eq!(
        zkcli(&["get", "/p"]).1,
        "v\n",
        "set without data left /p as it was"
    );
    assert_eq!(
        zkcli(&["ls", "-x", "/"]),
        (
            Some(1),
            "Unrecognized option: -x\nls [-s] [-w] [-R] path\n".into()
        )
    );
    let split = Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(["shell", "-server", &server, "get", "/nope"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(
        (split.status.code(), &split.stdout[..], &split.stderr[..]),
        (Some(1), &b""[..], &b"Node does not exist: /nope\n"[..]),
        "as in zkCli, errors go to stderr"
    );

    let script = "create /p/a x\ncreate /p/a/b\ngetAllChildrenNumber /p\n\
        addauth digest bob:pw\nsetAcl /p/a auth:bob:cdrwa\ngetAcl /p/a\nwhoami\n\
        printwatches\nprintwatches off\nprintwatches\nhistory\nredo 2\nredo 99\n\
        ls -R /p\nclose\nls /\nconnect\nget /p/a\nversion\n";
    let (code, out) = shell_as(&["shell", "--server", &server], &[], Some(script));
    assert_eq!(code, Some(0));
    let expected_start = "Created /p/a\nCreated /p/a/b\n3\n\
        'digest,'bob:ikIaKsbtGweaHnb/jKn7OHqbunM=\n: cdrwa\nAuth scheme: User\n";
    assert!(out.starts_with(expected_start), "{out}");
    assert!(
        out.contains("\ndigest: bob\n"),
        "whoami shows the added identity: {out}"
    );
    let expected_end = "printwatches is on\nprintwatches is off\n\
        0 - create /p/a x\n1 - create /p/a/b\n2 - getAllChildrenNumber /p\n\
        3 - addauth digest bob:pw\n4 - setAcl /p/a auth:bob:cdrwa\n5 - getAcl /p/a\n\
        6 - whoami\n7 - printwatches\n8 - printwatches off\n9 - printwatches\n10 - history\n\
        3\nCommand index out of range\n/p\n/p/a\n/p/c\n/p/a/b\nNot connected\nInsufficient permission : /p/a\n\
        ZooKeeper CLI version: ensemble ";
    assert!(out.contains(expected_end), "{out}");
}

/// Drives a program through a pseudo-terminal: `expect TEXT` waits (5 s at most) for TEXT in
/// what the program wrote since the last match, `send TEXT` types it (`\r`, `\t`, `\x1b` as in
/// Python strings); then the program must exit. Prints the transcript; exits 1 on a timeout.
const PTY_DRIVER: &str = r#"
import os, select, subprocess, sys, time
steps, argv = sys.argv[1], sys.argv[2:]
master, slave = os.openpty()
env = dict(os.environ, TERM="xterm")
proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, env=env)
os.close(slave)
seen, at = b"", 0
def read(deadline):
    global seen
    r, _, _ = select.select([master], [], [], max(0, deadline - time.time()))
    if r:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            chunk = b""
        if b"\x1b[6n" in chunk:
            os.write(master, b"\x1b[1;1R")
        seen += chunk
        return bool(chunk)
    return False
for line in steps.split("\n"):
    verb, _, text = line.partition(" ")
    text = text.encode().decode("unicode_escape").encode()
    if verb == "send":
        os.write(master, text)
    elif verb == "expect":
        deadline = time.time() + 5
        while seen.find(text, at) < 0 and time.time() < deadline:
            read(deadline)
        found = seen.find(text, at)
        if found < 0:
            print(repr(seen))
            print("timed out waiting for", repr(text))
            proc.kill()
            sys.exit(1)
        at = found + len(text)
deadline = time.time() + 5
while proc.poll() is None and time.time() < deadline:
    read(min(deadline, time.time() + 0.1))
print(repr(seen))
sys.exit(0 if proc.poll() == 0 else 2)
"#;

#[test]
fn interactive_shell_edits_recalls_and_completes() {
    let c = cluster(1);
    let server = c.client_addr(1);
    let steps = [
        "expect (CONNECTED) 0] ",
        "send create /pty hello\\r",
        "expect Created /pty",
        "expect (CONNECTED) 1] ",
        "send get /pty\\r",
        "expect hello",
        "expect (CONNECTED) 2] ",
        // The up arrow recalls `get /pty`.
        "send \\x1b[A",
        "expect get /pty",
        "send \\r",
        "expect hello",
        "expect (CONNECTED) 3] ",
        // Tab completes a command, then a znode path by listing its parent.
        "send getAllCh\\t",
        "expect getAllChildrenNumber ",
        "send /pt\\t",
        "expect /pty",
        "send \\r",
        "expect \\r\\n0\\r\\n",
        "expect (CONNECTED) 4] ",
        // A watch set from the shell fires in it and is printed as zkCli does.
        "send get -w /pty\\r",
        "expect hello",
        "expect (CONNECTED) 5] ",
        "send set /pty bye\\r",
        "expect WatchedEvent state:SyncConnected type:NodeDataChanged path:/pty",
        // After `close` the prompt says so; the shell stays.
        "send close\\r",
        "expect (CLOSED) 7] ",
        "send quit\\r",
    ]
    .join("\n");
    let out = Command::new("python3")
        .args(["-c", PTY_DRIVER, &steps])
        .args([
            env!("CARGO_BIN_EXE_ensemble-cli"),
            "shell",
            "--server",
            &server,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
