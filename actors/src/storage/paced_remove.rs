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
    let len = fs::metadata(path).map_or(0, |m| m.len());
    if !goes_paced(len, fsync) {
        return remove_file(path);
    }
    match set_aside(path)? {
        Some(purging) => {
            shrink(&purging, &mut |_| {})?;
            remove_file(&purging)
        }
        None => Ok(()),
    }
}

/// Whether a file of `len` bytes is removed a step at a time: over one step, and committed.
fn goes_paced(len: u64, fsync: bool) -> bool {
    fsync && len > STEP
}

/// Renames the file at `path` to its `purging.*` name for good (the directory fsynced), so
/// that it can be cut without recovery ever reading it cut; the new path, or `None` when the
/// file is already gone.
fn set_aside(path: &Path) -> Result<Option<PathBuf>, StorageError> {
    let Some(name) = path.file_name() else {
        remove_file(path)?;
        return Ok(None);
    };
    let mut purging = PURGING_PREFIX.to_owned();
    purging.push_str(&name.to_string_lossy());
    let purging = path.with_file_name(purging);
    match fs::rename(path, &purging) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("renaming {}", path.display()))(e)),
        Ok(()) => {}
    }
    files::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(purging))
}

/// Removes, a step at a time, the files in `dir` whose removal a crash or an error stopped.
pub fn finish_purges(dir: &Path, fsync: bool) -> Result<(), StorageError> {
    for path in purging_files(dir)? {
        tracing::info!("finishing the removal of {}", path.display());
        if fsync {
            shrink(&path, &mut |_| {})?;
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

/// Cuts the file at `path` down to at most [`STEP`] bytes, committing each step; `committed`
/// hears the length after each.
fn shrink(path: &Path, committed: &mut dyn FnMut(u64)) -> Result<(), StorageError> {
    let file = match OpenOptions::new().write(true).open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        opened => opened,
    };
    // The length is read anew at each step: the other storage thread may be cutting the same
    // file (its purge finishes removals an error stopped), and a cut must never lengthen it.
    let shrink_all = |file: fs::File| -> std::io::Result<()> {
        loop {
            let len = file.metadata()?.len();
            if len <= STEP {
                return Ok(());
            }
            file.set_len(len - STEP)?;
            file.sync_all()?;
            committed(len - STEP);
        }
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
    fn a_file_is_renamed_for_good_before_it_is_cut_a_step_at_a_time() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("log.0000000100000001");
        file_of(&path, 3 * STEP + 17);
        let purging = set_aside(&path).expect("set aside").expect("it was there");
        assert_eq!(names(dir.path()), ["purging.log.0000000100000001"]);
        assert_eq!(
            fs::metadata(&purging).expect("its size").len(),
            3 * STEP + 17
        );
        let mut lengths = Vec::new();
        shrink(&purging, &mut |len| {
            assert!(
                !path.exists(),
                "the file is cut only under its purging name"
            );
            let on_disk = fs::metadata(&purging).expect("its size").len();
            assert_eq!(on_disk, len);
            lengths.push(len);
        })
        .expect("cut");
        assert_eq!(lengths, [2 * STEP + 17, STEP + 17, 17]);
        assert_eq!(set_aside(&path).expect("nothing to do"), None);
    }

    #[test]
    fn only_a_file_over_one_step_goes_a_step_at_a_time_and_only_with_fsync() {
        assert!(goes_paced(STEP + 1, true));
        assert!(!goes_paced(STEP, true));
        assert!(!goes_paced(0, true));
        assert!(!goes_paced(STEP + 1, false));
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
