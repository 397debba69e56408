//! The runtime file through which `ensemble status` finds a running `up`: `up`'s pid and the
//! config its children read, in `$XDG_RUNTIME_DIR` (or a private directory under the temp dir).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Where `up` records itself.
fn path() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        // SAFETY: getuid has no preconditions.
        None => std::env::temp_dir().join(format!("ensemble-{}", unsafe { libc::getuid() })),
    };
    dir.join("ensemble-up.json")
}

/// The record of this `up`; removed when dropped, unless another `up` has replaced it.
pub(super) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// Records this process and `config` (made absolute).
    pub(super) fn write(config: &Path) -> std::io::Result<StateFile> {
        let path = path();
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let config = std::fs::canonicalize(config)?;
        let body = serde_json::json!({ "pid": std::process::id(), "config": config });
        std::fs::write(&path, body.to_string())?;
        Ok(StateFile { path })
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if read(&self.path).is_some_and(|(pid, _)| pid == std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read(path: &Path) -> Option<(u32, PathBuf)> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
    Some((pid, PathBuf::from(v["config"].as_str()?)))
}

/// The config of the `up` that is running, if one is.
pub(crate) fn running_config() -> Option<PathBuf> {
    let (pid, config) = read(&path())?;
    let pid = i32::try_from(pid).ok()?;
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(config)
}
