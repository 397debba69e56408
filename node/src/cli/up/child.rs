//! `up`'s children: each in a process group of its own, killed by the kernel when `up` dies,
//! its output prefixed by its name on `up`'s stderr and kept in a log file of its own.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process `up` keeps running: a server, a master or a worker.
pub(super) struct Managed {
    /// `server.1`, `master:7077`, `worker:8091`.
    pub(super) name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Child,
    /// How often it has been restarted.
    pub(super) restarts: u32,
    /// When an exited child is due to start again (its backoff runs while the others are
    /// watched).
    pub(super) restart_due: Option<std::time::Instant>,
}

impl Managed {
    /// Starts `exe args`, logging to `<logs>/<name>.log` (`:` spelled `-`). Must run on a thread that lives as
    /// long as `up`: the parent-death signal fires when the spawning thread exits.
    pub(super) fn start(
        exe: &Path,
        name: String,
        args: Vec<String>,
        logs: &Path,
        json: bool,
    ) -> std::io::Result<Managed> {
        let log = logs.join(format!("{}.log", name.replace(':', "-")));
        let child = spawn(exe, &args, &name, &log, json)?;
        Ok(Managed {
            name,
            args,
            log,
            child,
            restarts: 0,
            restart_due: None,
        })
    }

    /// Its exit status, once it has exited.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Starts it again.
    pub(super) fn restart(&mut self, exe: &Path, json: bool) -> std::io::Result<()> {
        self.restarts += 1;
        self.restart_due = None;
        self.child = spawn(exe, &self.args, &self.name, &self.log, json)?;
        Ok(())
    }

    /// Sends `signal` to its process group.
    pub(super) fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(-pid, signal) };
        }
    }
}

/// SIGTERM to every child, SIGKILL to those still running after 5 s; reaps them all.
pub(super) fn stop_all(procs: &mut [Managed]) {
    for p in procs.iter() {
        p.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && procs.iter_mut().any(|p| p.exited().is_none()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs.iter_mut() {
        if p.exited().is_none() {
            p.signal(libc::SIGKILL);
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

fn spawn(
    exe: &Path,
    args: &[String],
    name: &str,
    log: &Path,
    json: bool,
) -> std::io::Result<Child> {
    let file = OpenOptions::new().create(true).append(true).open(log)?;
    let file = Arc::new(Mutex::new(file));
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the hook makes only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(ensemble_actors::child::parent_death_signal(libc::SIGKILL));
    }
    let mut child = cmd.spawn()?;
    if let Some(out) = child.stdout.take() {
        pump(out, name.to_string(), file.clone(), json);
    }
    if let Some(err) = child.stderr.take() {
        pump(err, name.to_string(), file, json);
    }
    Ok(child)
}

/// Copies each line of `stream` to the log file and, marked with `name`, to `up`'s stderr:
/// prefixed in text, or as a `process` field of each JSON object (a line that is not one, such
/// as a panic message, becomes the message of one).
fn pump(stream: impl Read + Send + 'static, name: String, log: Arc<Mutex<File>>, json: bool) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{text}");
            }
            let relayed = if json {
                json_line(&name, text)
            } else {
                format!("{name:<12} | {text}")
            };
            let _ = writeln!(std::io::stderr().lock(), "{relayed}");
            line.clear();
        }
    });
}

/// A child's line as one JSON object with its process name.
fn json_line(name: &str, text: &str) -> String {
    let mut object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => {
            let mut o = serde_json::Map::new();
            o.insert("level".into(), "INFO".into());
            o.insert("fields".into(), serde_json::json!({ "message": text }));
            o.insert("target".into(), "ensemble::up::output".into());
            o
        }
    };
    object.insert("process".into(), name.into());
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::json_line;

    #[test]
    fn child_json_lines_get_a_process_field_and_other_lines_are_wrapped() {
        let line = r#"{"level":"WARN","fields":{"message":"m"},"target":"t"}"#;
        let v: serde_json::Value = serde_json::from_str(&json_line("server.1", line)).unwrap();
        assert_eq!(v["process"], "server.1");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["fields"]["message"], "m");
        let v: serde_json::Value =
            serde_json::from_str(&json_line("master:7077", "thread 'main' panicked")).unwrap();
        assert_eq!(v["process"], "master:7077");
        assert_eq!(v["fields"]["message"], "thread 'main' panicked");
        let v: serde_json::Value = serde_json::from_str(&json_line("w", "[1,2]")).unwrap();
        assert_eq!(v["fields"]["message"], "[1,2]");
    }
}
