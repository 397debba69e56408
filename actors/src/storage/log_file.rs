//! The log file being appended to, kept ahead of its records by zeros.
//!
//! An fdatasync of a file that grew must also write the file's new size and the allocation of
//! its new blocks; one that only overwrote blocks already written writes the data alone. So the
//! writer extends the log by [`CHUNK`] bytes of zeros at a time, synced with the records that
//! first need them, and writes records over those zeros: one fsync in a few thousand pays for
//! the file's growth instead of every one. (PostgreSQL recycles its WAL segments for the same
//! reason.) A run of zeros to the end of the newest file is therefore its unused end: recovery
//! cuts it off quietly (no record starts with zeros: its length's checksum would fail), and the
//! writer cuts it off itself whenever it leaves a file.

use super::files;
use super::StorageError;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Zeros written ahead of the records at a time.
pub const CHUNK: u64 = 1 << 20;

/// Zeros are written from a buffer of this size.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// An open log file: records up to `written`, zeros from there to `zeroed`.
pub struct LogFile {
    file: File,
    path: PathBuf,
    written: u64,
    zeroed: u64,
}

impl LogFile {
    /// Opens the log file at `path`, creating it with its header; records go after what it
    /// holds, which must end with its last record (recovery and truncation leave it so).
    pub fn open(path: &Path) -> Result<LogFile, StorageError> {
        let ctx = || format!("opening {}", path.display());
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(StorageError::io(ctx()))?;
        let mut len = file.metadata().map_err(StorageError::io(ctx()))?.len();
        if len == 0 {
            let header = files::log_header();
            file.write_all_at(&header, 0)
                .map_err(StorageError::io(ctx()))?;
            len = header.len() as u64;
        }
        Ok(LogFile {
            file,
            path: path.to_path_buf(),
            written: len,
            zeroed: len,
        })
    }

    /// Writes `records` after the last record, first extending the zeros if they do not
    /// reach far enough.
    pub fn append(&mut self, records: &[u8]) -> Result<(), StorageError> {
        let end = self
            .written
            .checked_add(records.len() as u64)
            .ok_or_else(|| StorageError::Corrupt("log file offset overflows".into()))?;
        if end > self.zeroed {
            self.zero_up_to(end.div_ceil(CHUNK) * CHUNK)?;
        }
        self.file
            .write_all_at(records, self.written)
            .map_err(self.error("writing"))?;
        self.written = end;
        Ok(())
    }

    /// Extends the zeros to `to` bytes.
    fn zero_up_to(&mut self, to: u64) -> Result<(), StorageError> {
        while self.zeroed < to {
            let n = (to - self.zeroed).min(ZEROS.len() as u64) as usize;
            self.file
                .write_all_at(&ZEROS[..n], self.zeroed)
                .map_err(self.error("extending"))?;
            self.zeroed += n as u64;
        }
        Ok(())
    }

    /// Makes the records durable (fdatasync).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(self.error("fsyncing"))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error of a failed `what` on this file; its message is built only on failure, since
    /// appends and fsyncs are on every write's path.
    fn error<'a>(&'a self, what: &'a str) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
        move |source| StorageError::io(format!("{what} {}", self.path.display()))(source)
    }

    /// Leaves the file as long as its records: cuts the unused zeros off, durably if `fsync`.
    pub fn finish(self, fsync: bool) -> Result<(), StorageError> {
        if self.zeroed == self.written {
            return Ok(());
        }
        let ctx = || format!("cutting the unused end of {}", self.path.display());
        self.file
            .set_len(self.written)
            .map_err(StorageError::io(ctx()))?;
        if fsync {
            self.file.sync_all().map_err(StorageError::io(ctx()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn records_go_over_zeros_written_a_chunk_ahead_and_finish_cuts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.1");
        let mut log = LogFile::open(&path).unwrap();
        log.append(b"abc").unwrap();
        log.sync().unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, CHUNK);
        assert_eq!(&bytes[..8], &files::log_header());
        assert_eq!(&bytes[8..11], b"abc");
        assert!(bytes[11..].iter().all(|b| *b == 0));
        // A batch that crosses the chunk's end extends the zeros by whole chunks.
        let big = vec![7u8; CHUNK as usize];
        log.append(&big).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * CHUNK);
        log.finish(true).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, 11 + CHUNK);
        assert!(bytes[11..].iter().all(|b| *b == 7));
    }

    #[test]
    fn a_reopened_file_takes_records_after_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.1");
        let mut log = LogFile::open(&path).unwrap();
        log.append(b"one").unwrap();
        log.finish(true).unwrap();
        let mut log = LogFile::open(&path).unwrap();
        log.append(b"two").unwrap();
        log.finish(false).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[8..], b"onetwo");
    }
}
