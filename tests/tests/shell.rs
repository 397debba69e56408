//! `ensemble shell` against a running ensemble: one command per invocation, and a script on stdin.

use ensemble_node::local_cluster::{ProcessCluster, Program};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn shell(servers: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(["shell", "--server", servers])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
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
