//! Logging as an operator sets it: `--log-format json` lines, `--log-level` over RUST_LOG,
//! a log file flushed before a clean exit, and the TOML `[log]` section (with an env override)
//! writing rotated files of which only the newest are kept. A standalone server, on an address
//! of 127.0.130.x of each test's own, started and stopped once per case.

use ensemble_node::four_letter;
use ensemble_node::local_cluster::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_ensemble-cli");
/// A one-server TOML config under `dir` for a server on `host`, with `extra` appended.
fn write_config(dir: &Path, host: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[ensemble]\ntick_ms = 200\n\n[storage]\ndata_dir = \"{}\"\nfsync = false\n\n\
         [[servers]]\nid = 1\nhost = \"{host}\"\npeer_port = 23311\nclient_port = 23301\n\n{extra}",
        dir.join("data").display()
    );
    let path = dir.join("one.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `ensemble <args>` with `env` until it serves on `host`, stops it with SIGTERM and
/// returns its stderr once it exited (with code 0).
fn serve_then_stop(host: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(CLI);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let serving = wait_until("the server to serve", Duration::from_secs(20), || {
        four_letter::mode(&format!("{host}:23301"), Duration::from_millis(300)) == "standalone"
    });
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let exited = wait_until("it to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if exited.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    serving.unwrap();
    exited.unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

#[test]
fn json_lines_log_level_and_a_log_file_flushed_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let host = "127.0.130.1";
    let config = write_config(dir.path(), host, "");
    let config = config.to_str().unwrap();
    let node = ["node", "--config", config, "--id", "1"];

    // Given after the subcommand; every line one JSON object with level, target and fields.
    let mut args = node.to_vec();
    args.extend(["--log-format", "json"]);
    let err = serve_then_stop(host, &args, &[]);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 2, "{err}");
    for l in &lines {
        assert!(l["level"].is_string() && l["target"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{err}");

    // Given before the subcommand, and winning over RUST_LOG.
    let mut args = vec!["--log-level", "warn"];
    args.extend(node);
    let err = serve_then_stop(host, &args, &[("RUST_LOG", "debug")]);
    assert!(!err.contains(" INFO ") && !err.contains(" DEBUG "), "{err}");

    // To a file, whose last line (logged just before exit) is flushed.
    let file = dir.path().join("logs").join("node.log");
    let mut args = node.to_vec();
    args.extend([
        "--log-file",
        file.to_str().unwrap(),
        "--log-rotation",
        "never",
    ]);
    let err = serve_then_stop(host, &args, &[]);
    assert!(!err.contains(" INFO "), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("stopped"), "last line {last:?} of\n{text}");
}

#[test]
fn the_toml_log_section_writes_rotated_files_and_keeps_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=5 {
        std::fs::write(logs.join(format!("server-1.2026-01-0{day}.log")), "old\n").unwrap();
    }
    let section = format!(
        "[log]\ndir = \"{}\"\nrotation = \"daily\"\nmax_files = 3\n",
        logs.display()
    );
    let host = "127.0.130.2";
    let config = write_config(dir.path(), host, &section);
    let args = ["node", "--config", config.to_str().unwrap(), "--id", "1"];
    // The env override of the TOML, as for any other key.
    let err = serve_then_stop(host, &args, &[("ENSEMBLE__LOG__FORMAT", "json")]);
    assert!(
        !err.contains("INFO"),
        "logs go to the file, not stderr: {err}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let current: Vec<&String> = names.iter().filter(|n| !n.contains("2026-01-0")).collect();
    assert_eq!(current.len(), 1, "{names:?}");
    assert!(current[0].starts_with("server-1.") && current[0].ends_with(".log"));
    let text = std::fs::read_to_string(logs.join(current[0])).unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(text.contains("\"stopped\""), "{text}");
}

#[test]
fn a_log_file_that_cannot_be_opened_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out = Command::new(CLI)
        .args(["status", "--servers", "127.0.130.9:9", "--log-file"])
        .arg(blocker.join("x.log"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("ensemble: cannot create"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
