//! The runtime files through which `ensemble status` finds the running `up`s: one per `up`,
//! `<runtime dir>/ensemble-up/<pid>.json` holding its pid, the config its children read and its
//! data directory. The runtime dir is `$XDG_RUNTIME_DIR`, or else `ensemble-<uid>` under the
//! temp dir, created with mode 0700 and refused unless it is the user's own and private.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory of the state files.
fn dir() -> Result<PathBuf, String> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Ok(PathBuf::from(d).join("ensemble-up")),
        None => {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            let private = std::env::temp_dir().join(format!("ensemble-{uid}"));
            create_private(&private)?;
            let meta = std::fs::symlink_metadata(&private)
                .map_err(|e| format!("{}: {e}", private.display()))?;
            if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{} is not a private directory of this user: remove it or set XDG_RUNTIME_DIR",
                    private.display()
                ));
            }
            Ok(private.join("ensemble-up"))
        }
    }
}

fn create_private(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// One running `up`, as its state file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Running {
    /// Its process id.
    pub(crate) pid: u32,
    /// The TOML config its children read.
    pub(crate) config: PathBuf,
    /// Its `storage.data_dir`.
    pub(crate) data_dir: PathBuf,
}

/// The record of this `up`; removed when dropped.
pub(super) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// Records this process, `config` and `data_dir` (made absolute).
    pub(super) fn write(config: &Path, data_dir: &Path) -> Result<StateFile, String> {
        let dir = dir()?;
        create_private(&dir)?;
        let absolute =
            |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
        let pid = std::process::id();
        let body = serde_json::json!({
            "pid": pid,
            "config": absolute(config)?,
            "data_dir": absolute(data_dir)?,
        });
        // Written aside, then renamed: `status` never reads half a file.
        let path = dir.join(format!("{pid}.json"));
        let partial = dir.join(format!(".{pid}.json.partial"));
        std::fs::write(&partial, body.to_string())
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(StateFile { path })
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one state file; None unless it is a complete record.
fn read(path: &Path) -> Option<Running> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Running {
        pid: u32::try_from(v["pid"].as_u64()?).ok()?,
        config: PathBuf::from(v["config"].as_str()?),
        data_dir: PathBuf::from(v["data_dir"].as_str()?),
    })
}

/// Whether `pid` is a live `ensemble up` (not a process that reused a dead one's pid).
fn is_live_up(pid: u32) -> bool {
    let Ok(id) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(id, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    let is_up = || match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.split(|b| *b == 0).any(|arg| arg == b"up"),
        // Without /proc, existence is all there is to go by.
        Err(_) => true,
    };
    exists && is_up()
}

/// The running `up`s of this user, by pid. The files of `up`s that died without removing
/// theirs (kill -9) are deleted on the way.
pub(crate) fn running() -> Vec<Running> {
    let Ok(dir) = dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let named_pid = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u32>().ok());
        let Some(named_pid) = named_pid else {
            continue;
        };
        match read(&path) {
            Some(r) if r.pid == named_pid && is_live_up(r.pid) => out.push(r),
            _ if !is_live_up(named_pid) => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
    out.sort_by_key(|r| r.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1.json");
        std::fs::write(&p, r#"{"pid":1,"config":"/c.toml","data_dir":"/d"}"#).unwrap();
        assert_eq!(
            read(&p),
            Some(Running {
                pid: 1,
                config: "/c.toml".into(),
                data_dir: "/d".into()
            })
        );
        for bad in [
            r#"{"pid":1,"config":"/c.toml"}"#,
            "{\"pid\":",
            r#"{"pid":-1}"#,
        ] {
            std::fs::write(&p, bad).unwrap();
            assert_eq!(read(&p), None, "{bad}");
        }
    }

    #[test]
    fn only_live_up_processes_count() {
        assert!(!is_live_up(u32::MAX));
        // This test binary is alive but is no `up`.
        assert!(!is_live_up(std::process::id()));
    }
}
