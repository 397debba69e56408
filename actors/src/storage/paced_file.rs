//! A snapshot file written back to the disk as it is written, not all at its final fsync.
//!
//! At a million znodes a snapshot is 177 MB. Written into the page cache at full speed and
//! fsynced at the end, it reaches the disk as one burst that the log's fdatasyncs queue
//! behind: the writes acknowledged during a snapshot waited several times longer than the
//! others (docs/benchmarks.md, "Writes during a snapshot"). Here every [`WRITE_BACK_EVERY`]
//! bytes the kernel is asked to start writing the range just written, and the writer waits
//! for the range before it: at most two ranges are on their way to the disk at any time, and
//! the snapshot thread goes no faster than the disk takes them.
//!
//! A range that reached the disk also leaves the page cache: nothing reads a snapshot soon
//! (a restart, a check, a SNAP's read-back reads it once), and its pages, freed as they are
//! written, are the ones the next ranges are written into. Kept cached, every snapshot took as
//! many pages again, new ones to the kernel: on a virtual machine each page the guest touches
//! for the first time costs a fault in the host, about 0.3 s of system time per 117 MB here
//! against 0.03 s for pages used before (docs/benchmarks.md, "Snapshot pages").

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

/// Bytes written between two write-back requests.
pub const WRITE_BACK_EVERY: u64 = 8 << 20;

/// A file whose writes are sent to the disk in ranges of [`WRITE_BACK_EVERY`] bytes as they
/// are made (see the module). Seeking passes through; a seek back (to complete a header)
/// starts no write-back of its own, and the final fsync covers it.
pub struct PacedFile<'a> {
    file: &'a mut File,
    /// The position writes go to.
    at: u64,
    /// Everything below it was asked to go to the disk.
    started: u64,
    /// Everything below it reached the disk (or failed to, which the final fsync reports).
    waited: u64,
}

impl<'a> PacedFile<'a> {
    /// Paces the writes to `file`, which is at its start.
    pub fn new(file: &'a mut File) -> Self {
        PacedFile {
            file,
            at: 0,
            started: 0,
            waited: 0,
        }
    }

    /// Waits for the range already started and lets its pages go, then starts the one
    /// written since.
    fn write_back(&mut self) {
        sync_range(self.file, self.waited, self.started, WAIT_AND_WRITE);
        drop_cached(self.file, self.waited, self.started);
        sync_range(self.file, self.started, self.at, START_WRITE);
        (self.waited, self.started) = (self.started, self.at);
    }
}

impl Write for PacedFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.at += n as u64;
        if self.at >= self.started.saturating_add(WRITE_BACK_EVERY) {
            self.write_back();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Seek for PacedFile<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.at = self.file.seek(pos)?;
        // A range written again after a seek back is the final fsync's to write.
        self.started = self.started.max(self.at);
        Ok(self.at)
    }
}

#[cfg(target_os = "linux")]
const WAIT_AND_WRITE: libc::c_uint = libc::SYNC_FILE_RANGE_WAIT_BEFORE
    | libc::SYNC_FILE_RANGE_WRITE
    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
#[cfg(target_os = "linux")]
const START_WRITE: libc::c_uint = libc::SYNC_FILE_RANGE_WRITE;
#[cfg(not(target_os = "linux"))]
const WAIT_AND_WRITE: u32 = 0;
#[cfg(not(target_os = "linux"))]
const START_WRITE: u32 = 0;

/// The offset and length of `from..to` as the kernel takes them; `None` when it is empty or
/// does not fit.
#[cfg(target_os = "linux")]
fn kernel_range(from: u64, to: u64) -> Option<(i64, i64)> {
    let offset = i64::try_from(from).ok()?;
    let len = i64::try_from(to.saturating_sub(from)).ok()?;
    (len > 0).then_some((offset, len))
}

/// Asks the kernel to write back the bytes of `file` in `from..to` as `flags` say. Only a
/// pace: durability is the final fsync's, so a failure here is left for it to report.
#[cfg(target_os = "linux")]
fn sync_range(file: &File, from: u64, to: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    let Some((offset, len)) = kernel_range(from, to) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no
    // memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, flags);
    }
}

/// Elsewhere there is no such request: the final fsync writes everything.
#[cfg(not(target_os = "linux"))]
fn sync_range(_: &File, _: u64, _: u64, _: u32) {}

/// Tells the kernel the cached pages of `file` in `from..to`, written back, will not be read
/// soon. Only advice: pages still dirty stay, and a failure changes nothing.
#[cfg(target_os = "linux")]
fn drop_cached(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let Some((offset, len)) = kernel_range(from, to) else {
        return;
    };
    // SAFETY: as in `sync_range`.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED);
    }
}

/// Elsewhere the pages stay cached.
#[cfg(not(target_os = "linux"))]
fn drop_cached(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_file_holds_what_was_written_across_ranges_and_seeks() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("paced");
        let mut file = File::create(&path).expect("a new file");
        let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let mut expected = Vec::new();
        {
            let mut paced = PacedFile::new(&mut file);
            paced.write_all(&[0; 16]).expect("header room");
            expected.extend_from_slice(&[0; 16]);
            for _ in 0..(2 * WRITE_BACK_EVERY / (1 << 20) + 3) {
                paced.write_all(&chunk).expect("a chunk");
                expected.extend_from_slice(&chunk);
            }
            paced.seek(SeekFrom::Start(4)).expect("back to the header");
            paced.write_all(&[9; 8]).expect("the header");
            expected[4..12].copy_from_slice(&[9; 8]);
            assert!(paced.waited > 0, "ranges were waited for: {}", paced.waited);
        }
        file.sync_all().expect("fsync");
        let mut back = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut back))
            .expect("read back");
        assert!(back == expected, "the file differs from what was written");
    }

    /// Pages of `file` in `range` (bytes) that are in the page cache.
    #[cfg(target_os = "linux")]
    fn cached_pages(file: &File, range: std::ops::Range<usize>) -> usize {
        use std::os::fd::AsRawFd;
        let page = 4096;
        let pages = (range.end - range.start) / page;
        let mut resident = vec![0u8; pages];
        // SAFETY: a read-only shared mapping of a file of at least `range.end` bytes, unmapped
        // before returning; mincore writes one byte per page into a vector that long.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                range.end,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(at, libc::MAP_FAILED, "mapping the file");
            let from = at.cast::<u8>().add(range.start).cast();
            let rc = libc::mincore(from, pages * page, resident.as_mut_ptr());
            libc::munmap(at, range.end);
            assert_eq!(rc, 0, "mincore");
        }
        resident.iter().filter(|&&r| r & 1 == 1).count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn ranges_that_reached_the_disk_leave_the_page_cache() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // SAFETY: statfs of a path that exists, into a zeroed struct.
        let on_tmpfs = unsafe {
            let mut fs: libc::statfs = std::mem::zeroed();
            let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
                .expect("a path without NUL");
            libc::statfs(c.as_ptr(), &mut fs) == 0 && fs.f_type == libc::TMPFS_MAGIC
        };
        if on_tmpfs {
            eprintln!("the temporary directory is in memory: its pages cannot leave it");
            return;
        }
        let path = dir.path().join("paced");
        let mut file = File::create(&path).expect("a new file");
        let chunk = vec![7u8; 1 << 20];
        {
            let mut paced = PacedFile::new(&mut file);
            for _ in 0..(3 * WRITE_BACK_EVERY / (1 << 20)) {
                paced.write_all(&chunk).expect("a chunk");
            }
            assert_eq!(
                paced.waited,
                2 * WRITE_BACK_EVERY,
                "two ranges were waited for"
            );
        }
        let every = usize::try_from(WRITE_BACK_EVERY).expect("a range fits in memory");
        let file = File::open(&path).expect("the file, to read");
        let waited = cached_pages(&file, 0..2 * every);
        let written = cached_pages(&file, 2 * every..3 * every);
        assert!(
            written > 0,
            "the last range is still cached as it was written"
        );
        assert_eq!(
            waited, 0,
            "pages of the range that reached the disk are cached"
        );
    }
}
