//! Executor and driver processes: each runs in a process group of its own under a guard with
//! a parent-death signal, so that it and its children die with their worker, even a `kill -9`ed
//! one; and the end of a failed process's stderr, for its failure report.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Lines of a failed process's stderr that are reported.
pub const TAIL_LINES: usize = 20;
/// At most this many bytes are read from the end of a stderr file.
const TAIL_BYTES: u64 = 8 * 1024;

/// The leader of each process group: it runs the command as its child and, on SIGTERM (its
/// parent-death signal), SIGKILLs its whole group, so that what the command started dies too.
const GUARD: &str = "trap 'kill -KILL 0' TERM; \"$@\" & wait $!";

/// Starts `command` in `dir` with `env`, stdout and stderr into files there, under a `sh` guard
/// that leads a new process group and kills it when the worker dies (parent-death SIGTERM).
/// The exit status is the command's (128 + the signal if a signal ended it).
///
/// The parent-death signal fires when the thread that forked ends: the worker forks from its
/// actix system thread, which lives as long as the worker process.
pub fn spawn(command: &[String], dir: &Path, env: &[(&str, String)]) -> std::io::Result<Child> {
    if command.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an empty command",
        ));
    }
    let out = std::fs::File::create(dir.join("stdout"))?;
    let err = std::fs::File::create(dir.join("stderr"))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", GUARD, "ensemble-guard"])
        .args(command)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: the hook makes only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(crate::child::parent_death_signal(libc::SIGTERM));
    }
    cmd.spawn()
}

/// SIGKILLs every process in the group `pgid` (none left is not an error).
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// The last `lines` lines of the file at `path`, from at most its last 8 KiB.
pub fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line read is likely cut.
        all.remove(0);
    }
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines_of_at_most_the_last_8_kib() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stderr");
        let text: String = (0..5000).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let t = tail(&path, 3).unwrap();
        assert_eq!(t, "line 4997\nline 4998\nline 4999");
        let all = tail(&path, 100_000).unwrap();
        assert!(all.len() <= TAIL_BYTES as usize, "{}", all.len());
        assert!(all.lines().all(|l| l.starts_with("line ")), "no cut line");
        std::fs::write(&path, "only\n").unwrap();
        assert_eq!(tail(&path, 20).unwrap(), "only");
        assert!(tail(&dir.path().join("missing"), 20).is_err());
    }

    /// Waits up to 10 s for `done`.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether process `pid` is gone (or a zombie waiting for its reaper).
    fn gone(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    }

    #[tokio::test]
    async fn the_guard_passes_the_exit_status_on() {
        let dir = tempfile::tempdir().unwrap();
        let command = ["sh".to_string(), "-c".into(), "exit 3".into()];
        let status = spawn(&command, dir.path(), &[])
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(spawn(&[], dir.path(), &[]).is_err());
    }

    /// The command and what it starts share the guard's group; SIGTERM to the guard (its
    /// parent-death signal) kills them all.
    #[tokio::test]
    async fn the_guard_kills_its_group_when_its_parent_dies() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!("sleep 600 & echo $$ $! > {}; wait", pids.display());
        let command = ["sh".to_string(), "-c".into(), script];
        let mut child = spawn(&command, dir.path(), &[]).unwrap();
        let leader = child.id().unwrap();
        let mut text = String::new();
        let written = eventually(|| {
            text = std::fs::read_to_string(&pids).unwrap_or_default();
            text.ends_with('\n')
        })
        .await;
        assert!(written, "the command ran");
        let ids: Vec<u32> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(ids.len(), 2, "{text:?}");
        for id in &ids {
            // SAFETY: getpgid reads the group of a process.
            let group = unsafe { libc::getpgid(*id as libc::pid_t) };
            assert_eq!(group as u32, leader, "{id} is in the guard's group");
        }
        // SAFETY: kill(2) signals the guard; it touches no memory.
        unsafe { libc::kill(leader as libc::pid_t, libc::SIGTERM) };
        let status = child.wait().await.unwrap();
        assert_eq!(
            status.code(),
            None,
            "the guard killed itself with its group"
        );
        assert!(eventually(|| ids.iter().all(|id| gone(*id))).await);
    }

    #[tokio::test]
    async fn a_killed_group_takes_every_process_along() {
        let dir = tempfile::tempdir().unwrap();
        let command = ["sleep".to_string(), "600".into()];
        let mut child = spawn(&command, dir.path(), &[]).unwrap();
        kill_group(child.id().unwrap());
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), None, "killed by a signal");
    }
}
