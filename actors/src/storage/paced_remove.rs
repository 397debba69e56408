//! Removing a big file without stalling the log's fsyncs.
//!
//! On a file system mounted with `discard` (ext4 on many cloud disks), removing a file frees
//! all its blocks in one journal commit and sends them to the device as one discard, and every
//! fsync of the log waits for both. Each background snapshot purges a log file of tens of MB:
//! removing 80 MB at once made about one log fsync per removal take 10-50 ms instead of 0.2 ms
//! (docs/benchmarks.md, "Removing a file a step at a time"). So a purged file is first renamed out of the names recovery reads,
//! then cut down [`STEP`] bytes at a time, each step committed on its own, and removed once
//! small. A crash on the way leaves a file named `purging.*`, which recovery never reads and
//! [`finish_purges`] removes at the next start.

use super::files;
use super::StorageError;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Bytes cut off a file being removed per committed step.
pub const STEP: u64 = 2 << 20;

/// Prefix of a file being removed; no name recovery reads starts with it.
const PURGING_PREFIX: &str = "purging.";

/// Removes the file at `path` a step at a time (see the module). A file already gone (removed
/// by the other storage thread) is fine. Without `fsync` nothing is committed, and a file of
/// at most one step is simply removed.
pub fn remove_paced(path: &Path, fsync: bool) -> Result<(), StorageError> {
    let small = fs::metadata(path).is_ok_and(|m| m.len() <= STEP);
    if !fsync || small {
        return remove_file(path);
    }
    let Some(name) = path.file_name() else {
        return remove_file(path);
    };
    let mut purging = PURGING_PREFIX.to_owned();
    purging.push_str(&name.to_string_lossy());
    let purging = path.with_file_name(purging);
    match fs::rename(path, &purging) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io(format!("renaming {}", path.display()))(e)),
        Ok(()) => {}
    }
    // Once renamed for good, the file can be cut without recovery ever reading it cut.
    files::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    shrink(&purging)?;
    remove_file(&purging)
}

/// Removes, a step at a time, the files in `dir` whose removal a crash interrupted.
pub fn finish_purges(dir: &Path, fsync: bool) -> Result<(), StorageError> {
    for path in purging_files(dir)? {
        tracing::info!("finishing the removal of {}", path.display());
        if fsync {
            shrink(&path)?;
        }
        remove_file(&path)?;
    }
    Ok(())
}

/// The files of `dir` left being removed.
fn purging_files(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(format!("listing {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StorageError::io(format!("listing {}", dir.display())))?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PURGING_PREFIX)
        {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Cuts the file at `path` down to at most [`STEP`] bytes, committing each step.
fn shrink(path: &Path) -> Result<(), StorageError> {
    let file = match OpenOptions::new().write(true).open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        opened => opened,
    };
    let shrink_all = |file: fs::File| -> std::io::Result<()> {
        let mut len = file.metadata()?.len();
        while len > STEP {
            len -= STEP;
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok(())
    };
    file.and_then(shrink_all).map_err(StorageError::io(format!(
        "shrinking {} before removing it",
        path.display()
    )))
}

/// Removes a file; one already gone is fine.
fn remove_file(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(StorageError::io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(path: &Path, len: u64) {
        let f = fs::File::create(path).expect("a new file");
        f.set_len(len).expect("its length");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .expect("listing")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_file_many_steps_long_is_removed_and_nothing_is_left() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("log.0000000100000001");
        file_of(&path, 5 * STEP + 17);
        file_of(&dir.path().join("log.0000000100000009"), 10);
        remove_paced(&path, true).expect("removed");
        assert_eq!(names(dir.path()), ["log.0000000100000009"]);
    }

    #[test]
    fn a_file_already_gone_is_fine() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        remove_paced(&dir.path().join("log.0000000100000001"), true).expect("nothing to do");
        remove_paced(&dir.path().join("log.0000000100000001"), false).expect("nothing to do");
    }

    #[test]
    fn a_file_of_one_step_is_simply_removed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("log.0000000100000001");
        file_of(&path, STEP);
        remove_paced(&path, true).expect("removed");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn without_fsync_the_file_is_simply_removed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("snapshot.0000000100000001");
        file_of(&path, 3 * STEP);
        remove_paced(&path, false).expect("removed");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn the_purges_a_crash_interrupted_are_finished_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        file_of(
            &dir.path().join("purging.log.0000000100000001"),
            3 * STEP + 1,
        );
        file_of(&dir.path().join("purging.snapshot.0000000100000001"), 0);
        file_of(&dir.path().join("log.0000000100000002"), 10);
        file_of(&dir.path().join("spare-snapshot"), 10);
        finish_purges(dir.path(), true).expect("finished");
        assert_eq!(
            names(dir.path()),
            ["log.0000000100000002", "spare-snapshot"]
        );
        finish_purges(&dir.path().join("missing"), true).expect("no directory, nothing to do");
    }
}
