//! File names, record framing and atomic writes.

use super::paced_file::PacedFile;
use super::StorageError;
use ensemble_messages::{codec, Snapshot, Txn, Zxid};
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Subdirectory holding ensemble's files, versioned by format.
pub const VERSION_DIR: &str = "ensemble-v2";
/// Subdirectory of the previous format, which this build refuses to read.
pub const OLD_VERSION_DIR: &str = "ensemble-v1";
const LOG_PREFIX: &str = "log.";
const SNAPSHOT_PREFIX: &str = "snapshot.";
/// Name, in the snapshot directory, of the purged snapshot file the next snapshot writes over
/// (see [`write_snapshot`]); no listing takes it for a snapshot.
const SPARE_SNAPSHOT: &str = "spare-snapshot";

/// Directory of the log files.
pub fn log_dir(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join(VERSION_DIR)
}

/// Directory of the snapshots.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(VERSION_DIR)
}

/// Path of the log file whose first txn is `first`.
pub fn log_path(dir: &Path, first: Zxid) -> PathBuf {
    dir.join(format!("{LOG_PREFIX}{:016x}", first.0))
}

/// Path of the snapshot covering txns up to `last`.
pub fn snapshot_path(dir: &Path, last: Zxid) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{:016x}", last.0))
}

/// Files in `dir` named `<prefix><hex zxid>`, sorted by zxid.
fn list(dir: &Path, prefix: &str) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io(format!("listing {}", dir.display()))(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StorageError::io(format!("listing {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(hex) = name.strip_prefix(prefix) {
            if let Ok(z) = u64::from_str_radix(hex, 16) {
                out.push((Zxid(z), entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Log files, oldest first.
pub fn list_logs(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    list(dir, LOG_PREFIX)
}

/// Snapshot files, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    list(dir, SNAPSHOT_PREFIX)
}

/// Magic at the start of every log file, followed by the format version.
const LOG_MAGIC: [u8; 4] = *b"ENSL";
/// Magic at the start of every snapshot file, followed by the format version.
const SNAPSHOT_MAGIC: [u8; 4] = *b"ENSS";
/// Version of the log format written and read.
pub const LOG_FORMAT_VERSION: u32 = 2;
/// Version of the snapshot format written. Since version 4 nothing before the image depends
/// on its length: the body is the last zxid (8 bytes) and the image, and the header's body
/// length is written after the image, with the checksum. Version 5 holds the same body with an
/// image of format 5 (see `data_tree::compact_image`), version 4 one of format 4: the version
/// tells a build that reads only format 4 images that it cannot read the file. Versions 2 and
/// 3, whose body is the encoded [`Snapshot`] (the zxid, the image's length, the image), are
/// read too.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 5;
/// The version of an incremental snapshot file: its body is the last zxid, the zxid of the
/// snapshot it applies onto (8 bytes each), then the delta image.
pub const DELTA_SNAPSHOT_VERSION: u32 = 6;
/// Snapshot format versions read.
const READ_SNAPSHOT_VERSIONS: &[u32] = &[2, 3, 4, SNAPSHOT_FORMAT_VERSION, DELTA_SNAPSHOT_VERSION];
/// Versions of snapshot files whose body (the last zxid, the base's for an incremental one,
/// then the image) is read as it streams: the whole ones first.
const STREAMED_SNAPSHOT_VERSIONS: [u32; 3] = [4, SNAPSHOT_FORMAT_VERSION, DELTA_SNAPSHOT_VERSION];
/// The last snapshot format whose body is an encoded [`Snapshot`].
const ENCODED_SNAPSHOT_VERSION: u32 = 3;
/// Bytes of a log file's header: magic and version.
pub const LOG_HEADER_LEN: usize = 8;
/// Bytes of a record's header: length, checksum of the length, checksum of the body.
const RECORD_HEADER_LEN: usize = 12;
/// Bytes of a snapshot file's header: magic, version, body length, body checksum.
const SNAPSHOT_HEADER_LEN: usize = 20;
/// Where the body length starts in a snapshot file's header (the checksum follows it).
const SNAPSHOT_LEN_AT: u64 = 8;
/// Bytes of a zxid at the start of a snapshot body of version 4, 5 or 6 (the last zxid, then
/// for version 6 its base's).
const SNAPSHOT_ZXID_LEN: usize = 8;

/// The header every log file starts with.
pub fn log_header() -> [u8; LOG_HEADER_LEN] {
    let mut h = [0; LOG_HEADER_LEN];
    h[..4].copy_from_slice(&LOG_MAGIC);
    h[4..].copy_from_slice(&LOG_FORMAT_VERSION.to_be_bytes());
    h
}

/// A log file's header, checked.
pub enum LogHeader {
    /// The header is valid; records start at [`LOG_HEADER_LEN`].
    Valid,
    /// The file ends inside its header (a crash right after creating it).
    Truncated,
    /// Not a log file of this format.
    Wrong(String),
}

/// Checks the header of a log file's content.
pub fn check_log_header(bytes: &[u8]) -> LogHeader {
    if bytes.len() < LOG_HEADER_LEN {
        let expected = log_header();
        return if expected.starts_with(bytes) || bytes.iter().all(|b| *b == 0) {
            LogHeader::Truncated
        } else {
            LogHeader::Wrong("damaged file header".into())
        };
    }
    check_magic(bytes, LOG_MAGIC, "log", &[LOG_FORMAT_VERSION])
        .map_or_else(LogHeader::Wrong, |()| LogHeader::Valid)
}

fn check_magic(bytes: &[u8], magic: [u8; 4], what: &str, read: &[u32]) -> Result<(), String> {
    if bytes[..4] != magic {
        return Err(format!("not an ensemble {what} file (bad magic)"));
    }
    let version = be_u32(&bytes[4..8]);
    if !read.contains(&version) {
        return Err(format!(
            "{what} format version {version}, but this build reads version {read:?}"
        ));
    }
    Ok(())
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Frames one txn as a log record: `u32 length, u32 crc32(length), u32 crc32(body), body`.
/// The length has a checksum of its own so that a damaged length is told from a torn tail.
pub fn encode_record(txn: &Txn) -> Result<Vec<u8>, StorageError> {
    let body =
        codec::encode(txn).map_err(|e| StorageError::Corrupt(format!("encoding txn: {e}")))?;
    let len = u32::try_from(body.len())
        .map_err(|_| StorageError::Corrupt(format!("txn {} is too large to log", txn.zxid)))?
        .to_be_bytes();
    let mut rec = Vec::with_capacity(RECORD_HEADER_LEN + body.len());
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&crc32fast::hash(&len).to_be_bytes());
    rec.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    rec.extend_from_slice(&body);
    Ok(rec)
}

/// One parsed record, or why parsing stopped.
#[derive(Debug)]
pub enum RecordRead {
    /// A whole, valid record and the offset after it.
    Record(Txn, usize),
    /// The bytes end inside a record: inside its header, or inside a body whose length is
    /// intact.
    Truncated,
    /// The length is intact but the body fails its checksum; the record would end at this
    /// offset.
    BadBody(usize),
    /// The length field is damaged, or a checksummed body does not decode.
    Damaged(String),
}

/// Parses the record at `offset` of `bytes` (`offset` at most `bytes.len()`). Never allocates
/// more than the record's bytes, which are already in `bytes`.
pub fn read_record(bytes: &[u8], offset: usize) -> RecordRead {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.len() < RECORD_HEADER_LEN {
        return RecordRead::Truncated;
    }
    if crc32fast::hash(&rest[..4]) != be_u32(&rest[4..8]) {
        return RecordRead::Damaged("length field fails its checksum".into());
    }
    let len = be_u32(&rest[..4]) as usize;
    let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
        return RecordRead::Truncated;
    };
    let end = offset + RECORD_HEADER_LEN + len;
    if crc32fast::hash(body) != be_u32(&rest[8..12]) {
        return RecordRead::BadBody(end);
    }
    match codec::decode::<Txn>(body) {
        Ok(txn) => RecordRead::Record(txn, end),
        Err(e) => RecordRead::Damaged(format!("undecodable record: {e}")),
    }
}

/// A state machine image to write into a snapshot file, streamed to the file without a
/// buffer of its size (at a million znodes, the largest a server would hold). Its length need
/// not be known before it is written; it writes in large pieces (the file is not buffered).
pub trait SnapshotImage: Send {
    /// Writes the image.
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()>;

    /// The zxid of the snapshot an incremental image applies onto; `None` for a whole one.
    fn base(&self) -> Option<Zxid> {
        None
    }
}

impl SnapshotImage for Vec<u8> {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self)
    }
}

impl SnapshotImage for bytes::Bytes {
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self)
    }
}

/// Passes bytes on, counting them and their crc32.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot file's content (version 5) to `out`: `magic, u32 version, u64 body
/// length, u32 crc32(body)`, then the body: `u64 last_zxid`, then `image`. The length and the
/// checksum are written last, over the header's place, which holds zeros until then: a file
/// whose header was never completed reads as a torn write.
fn write_snapshot_to<W: Write + Seek>(
    out: W,
    last_zxid: Zxid,
    image: &dyn SnapshotImage,
) -> Result<u64, StorageError> {
    let io = |e| StorageError::io("writing a snapshot")(e);
    let mut header = [0; SNAPSHOT_HEADER_LEN];
    header[..4].copy_from_slice(&SNAPSHOT_MAGIC);
    let version = match image.base() {
        Some(_) => DELTA_SNAPSHOT_VERSION,
        None => SNAPSHOT_FORMAT_VERSION,
    };
    header[4..8].copy_from_slice(&version.to_be_bytes());
    let mut out = out;
    out.write_all(&header).map_err(io)?;
    let mut body = Checksummed {
        inner: out,
        crc: crc32fast::Hasher::new(),
        written: 0,
    };
    body.write_all(&last_zxid.0.to_be_bytes()).map_err(io)?;
    if let Some(base) = image.base() {
        body.write_all(&base.0.to_be_bytes()).map_err(io)?;
    }
    image.write_to(&mut body).map_err(io)?;
    let mut out = body.inner;
    let mut tail = [0; SNAPSHOT_HEADER_LEN - SNAPSHOT_LEN_AT as usize];
    tail[..8].copy_from_slice(&body.written.to_be_bytes());
    tail[8..].copy_from_slice(&body.crc.finalize().to_be_bytes());
    out.seek(SeekFrom::Start(SNAPSHOT_LEN_AT)).map_err(io)?;
    out.write_all(&tail).map_err(io)?;
    Ok(SNAPSHOT_HEADER_LEN as u64 + body.written)
}

/// Encodes a snapshot file's content (see [`write_snapshot`] to write one as it streams).
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>, StorageError> {
    let mut out = Cursor::new(Vec::new());
    write_snapshot_to(&mut out, snapshot.last_zxid, &snapshot.state)?;
    Ok(out.into_inner())
}

/// Writes the snapshot of `image` at `last_zxid` to `path` atomically, as [`write_atomic`]
/// does. The file is not buffered: the image's writes go straight to it.
///
/// The temporary file is the spare a purge left ([`keep_as_spare`]) when there is one: the
/// snapshot writes over blocks the file system already holds. A new file would take fresh
/// blocks and, on a file system mounted with `discard`, a deleted one gives its blocks back
/// with a discard at the next journal commit; both add to the journal commit the log's
/// next fsync waits for (at a million znodes, 177 MB per snapshot).
pub fn write_snapshot(
    path: &Path,
    last_zxid: Zxid,
    image: &dyn SnapshotImage,
    fsync: bool,
) -> Result<(), StorageError> {
    write_snapshot_through(path, BACKGROUND_TMP, last_zxid, image, fsync)
}

/// Temporary file name of the background snapshots (the snapshot thread's).
pub const BACKGROUND_TMP: &str = "snapshot.tmp";
/// Temporary file name of the snapshots a SNAP installs (the storage writer's): a background
/// snapshot may still be writing its own.
pub const INSTALL_TMP: &str = "snapshot-install.tmp";

/// [`write_snapshot`] through the temporary file `tmp`, beside `path`.
pub fn write_snapshot_through(
    path: &Path,
    tmp: &str,
    last_zxid: Zxid,
    image: &dyn SnapshotImage,
    fsync: bool,
) -> Result<(), StorageError> {
    let spare = spare_snapshot_path(path);
    let open = |tmp: &Path| match fs::rename(&spare, tmp) {
        // The spare's old bytes beyond the new image are cut off once it is written.
        Ok(()) => OpenOptions::new().write(true).open(tmp),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::create(tmp),
        Err(e) => Err(e),
    };
    write_atomic_with(path, &path.with_file_name(tmp), fsync, open, |f| {
        let len = if fsync {
            write_snapshot_to(PacedFile::new(f), last_zxid, image)?
        } else {
            write_snapshot_to(&mut *f, last_zxid, image)?
        };
        f.set_len(len)
            .map_err(StorageError::io("cutting a snapshot to its length"))
    })
}

/// Keeps the purged snapshot file at `path` as the spare the next snapshot writes over (see
/// [`write_snapshot`]), replacing an older spare. With `fsync`, the rename is durable before
/// this returns: were it lost in a crash after the next snapshot began to write over the
/// file, the old name would come back on a damaged snapshot.
pub fn keep_as_spare(path: &Path, fsync: bool) -> Result<(), StorageError> {
    match fs::rename(path, spare_snapshot_path(path)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(format!(
            "keeping {} as the spare snapshot file",
            path.display()
        ))(e)),
        Ok(()) if fsync => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Ok(()) => Ok(()),
    }
}

/// The spare snapshot file beside the snapshot file `path`.
fn spare_snapshot_path(path: &Path) -> PathBuf {
    path.with_file_name(SPARE_SNAPSHOT)
}

/// Decodes a snapshot file's content (version 2, 3, 4, 5 or 6), checking its header, length
/// and checksum; an incremental snapshot (version 6) gives its delta image as the state.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, String> {
    decode_snapshot_file(bytes).map(|(s, _)| s)
}

/// As [`decode_snapshot`], with the zxid of the snapshot an incremental one applies onto.
pub fn decode_snapshot_file(bytes: &[u8]) -> Result<(Snapshot, Option<Zxid>), String> {
    decode_snapshot_with(bytes, |image| bytes::Bytes::copy_from_slice(&bytes[image]))
}

/// As [`decode_snapshot_file`], of a file's content read into `bytes`: the state is a slice
/// of them, not a copy (at a million znodes a whole image is 117 MB).
pub fn decode_snapshot_bytes(bytes: bytes::Bytes) -> Result<(Snapshot, Option<Zxid>), String> {
    decode_snapshot_with(&bytes, |image| bytes.slice(image))
}

/// Decodes a snapshot file's content as [`decode_snapshot_file`] says; `state` gives the
/// bytes of the image, at the range of `bytes` it is given.
fn decode_snapshot_with(
    bytes: &[u8],
    state: impl FnOnce(std::ops::Range<usize>) -> bytes::Bytes,
) -> Result<(Snapshot, Option<Zxid>), String> {
    let body = bytes.get(SNAPSHOT_HEADER_LEN..).unwrap_or_default();
    let header = SnapshotHeader::read(bytes, body.len() as u64)?;
    if crc32fast::hash(body) != header.crc {
        return Err("checksum mismatch".into());
    }
    let version = header.version;
    if version <= ENCODED_SNAPSHOT_VERSION {
        return codec::decode(body)
            .map(|s| (s, None))
            .map_err(|e| format!("undecodable: {e}"));
    }
    let (last, rest) = read_zxid(body).ok_or("the body is shorter than its zxid")?;
    let (base, image) = if version == DELTA_SNAPSHOT_VERSION {
        let (base, image) = read_zxid(rest).ok_or("the body is shorter than its base zxid")?;
        (Some(base), image)
    } else {
        (None, rest)
    };
    let at = bytes.len() - image.len();
    let snapshot = Snapshot {
        last_zxid: last,
        state: state(at..bytes.len()),
    };
    Ok((snapshot, base))
}

/// Reads the whole snapshot file at `path` as it streams from the disk: `read` gets its
/// image (a reader and the image's length) and builds what it holds, so the image is never
/// held whole in memory. The header, the length and the CRC-32 are checked as
/// [`decode_snapshot`] checks them, the checksum once `read` is done: its result is returned
/// only if the file proves whole. Returns the snapshot's zxid with it.
pub fn read_whole_snapshot<T>(
    path: &Path,
    read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
) -> Result<(Zxid, T), String> {
    read_streamed(path, &STREAMED_SNAPSHOT_VERSIONS[..2], read).map(|(ids, t)| (ids.last, t))
}

/// As [`read_whole_snapshot`], of a whole or an incremental snapshot file (whose image is a
/// delta image): its zxids with what `read` built.
pub fn read_snapshot_file<T>(
    path: &Path,
    read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
) -> Result<(SnapshotZxids, T), String> {
    read_streamed(path, &STREAMED_SNAPSHOT_VERSIONS, read)
}

/// Checks the snapshot file at `path` whole (header, length, checksum) as it streams from the
/// disk, holding none of it, if [`read_snapshot_file`] reads it: its zxids (an error names the
/// file). `None` for other
/// files (older formats, files too short for a version), which [`decode_snapshot_bytes`]
/// reads and checks.
pub fn check_snapshot_file(path: &Path) -> Result<Option<SnapshotZxids>, String> {
    let mut head = Vec::with_capacity(8);
    File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|e| format!("{}: reading it: {e}", path.display()))?;
    if head.len() < 8 || !STREAMED_SNAPSHOT_VERSIONS.contains(&be_u32(&head[4..8])) {
        return Ok(None);
    }
    let skip = |image: &mut dyn Read, len: u64| {
        let copied = std::io::copy(&mut image.take(len), &mut std::io::sink());
        copied.map_err(|e| format!("reading it: {e}"))
    };
    read_snapshot_file(path, skip).map(|(ids, _)| Some(ids))
}

/// The zxids a snapshot file holds before its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotZxids {
    /// The last zxid it covers.
    pub last: Zxid,
    /// For an incremental snapshot, the zxid of the snapshot it applies onto.
    pub base: Option<Zxid>,
}

impl std::fmt::Display for SnapshotZxids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.base {
            None => write!(f, "{}", self.last),
            Some(base) => write!(f, "{} (onto {base})", self.last),
        }
    }
}

/// Reads the snapshot file at `path`, of one of the `versions`, as it streams: see
/// [`read_whole_snapshot`]. Every error names the file.
fn read_streamed<T>(
    path: &Path,
    versions: &[u32],
    read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
) -> Result<(SnapshotZxids, T), String> {
    read_streamed_body(path, versions, read).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`read_streamed`], whose errors do not name the file.
fn read_streamed_body<T>(
    path: &Path,
    versions: &[u32],
    read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
) -> Result<(SnapshotZxids, T), String> {
    let io = |e: std::io::Error| format!("reading it: {e}");
    let mut file = File::open(path).map_err(io)?;
    let mut header = [0; SNAPSHOT_HEADER_LEN];
    file.read_exact(&mut header).map_err(io)?;
    let on_disk = file.metadata().map_err(io)?.len();
    let body_on_disk = on_disk.saturating_sub(SNAPSHOT_HEADER_LEN as u64);
    let SnapshotHeader { version, len, crc } = SnapshotHeader::read(&header, body_on_disk)?;
    if !versions.contains(&version) {
        return Err(format!(
            "format version {version} is not one of {versions:?} read here"
        ));
    }
    // The checksum sees the file in the buffer's large reads, not in the decoder's small ones.
    let checked = CheckedRead {
        inner: file.take(len),
        crc: crc32fast::Hasher::new(),
    };
    let mut body = std::io::BufReader::with_capacity(READ_BUFFER, checked);
    let mut zxid = || {
        let mut z = [0; SNAPSHOT_ZXID_LEN];
        body.read_exact(&mut z).map(|_| Zxid(u64::from_be_bytes(z)))
    };
    let last = zxid().map_err(io)?;
    let base = match version {
        DELTA_SNAPSHOT_VERSION => Some(zxid().map_err(io)?),
        _ => None,
    };
    let zxids_len = SNAPSHOT_ZXID_LEN as u64 * (1 + u64::from(base.is_some()));
    let built = read(&mut body, len.saturating_sub(zxids_len))?;
    if std::io::copy(&mut body, &mut std::io::sink()).map_err(io)? != 0 {
        return Err("the image ends before the file does".into());
    }
    if body.into_inner().crc.finalize() != crc {
        return Err("checksum mismatch".into());
    }
    Ok((SnapshotZxids { last, base }, built))
}

/// What a snapshot file's header says.
struct SnapshotHeader {
    version: u32,
    /// The body's length.
    len: u64,
    /// The body's CRC-32.
    crc: u32,
}

impl SnapshotHeader {
    /// The header at the start of `bytes`, checked against the `body` bytes the file holds
    /// after it: magic, a version this build reads, a completed header, the body's length.
    fn read(bytes: &[u8], body: u64) -> Result<Self, String> {
        if bytes.len() < SNAPSHOT_HEADER_LEN {
            return Err("shorter than its header".into());
        }
        check_magic(bytes, SNAPSHOT_MAGIC, "snapshot", READ_SNAPSHOT_VERSIONS)?;
        let mut len = [0; 8];
        len.copy_from_slice(&bytes[8..16]);
        let (len, crc) = (u64::from_be_bytes(len), be_u32(&bytes[16..20]));
        if len == 0 && crc == 0 {
            return Err("its header was never completed (a torn write)".into());
        }
        if len != body {
            return Err(format!("header says {len} bytes, the file holds {body}"));
        }
        let version = be_u32(&bytes[4..8]);
        Ok(SnapshotHeader { version, len, crc })
    }
}

/// Bytes [`read_snapshot_file`] and [`read_whole_snapshot`] read from the file at a time.
const READ_BUFFER: usize = 256 << 10;

/// A reader that hashes what it reads.
struct CheckedRead<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CheckedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// The zxid of the snapshot the snapshot file at `path` applies onto, read from its header
/// alone (`None` for a whole snapshot, a file too short to say, or one gone: the other storage
/// thread's purge may remove a file this one listed).
pub fn snapshot_base(path: &Path) -> Result<Option<Zxid>, StorageError> {
    use std::io::Read;
    let mut head = [0; SNAPSHOT_HEADER_LEN + 2 * SNAPSHOT_ZXID_LEN];
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("opening {}", path.display()))(e)),
    };
    let mut read = 0;
    while read < head.len() {
        match f.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()))(e)),
        }
    }
    if read < head.len() || be_u32(&head[4..8]) != DELTA_SNAPSHOT_VERSION {
        return Ok(None);
    }
    let at = SNAPSHOT_HEADER_LEN + SNAPSHOT_ZXID_LEN;
    Ok(read_zxid(&head[at..]).map(|(z, _)| z))
}

/// The big-endian zxid at the front of `bytes`, and the bytes after it.
fn read_zxid(bytes: &[u8]) -> Option<(Zxid, &[u8])> {
    let (zxid, rest) = bytes.split_at_checked(SNAPSHOT_ZXID_LEN)?;
    let mut z = [0; SNAPSHOT_ZXID_LEN];
    z.copy_from_slice(zxid);
    Some((Zxid(u64::from_be_bytes(z)), rest))
}

/// Writes `content` to `path` atomically: a temporary file, fsync, rename, fsync of the dir.
pub fn write_atomic(path: &Path, content: &[u8], fsync: bool) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    write_atomic_with(
        path,
        &tmp,
        fsync,
        |tmp| File::create(tmp),
        |f| {
            f.write_all(content)
                .map_err(StorageError::io(format!("writing {}", path.display())))
        },
    )
}

/// [`write_atomic`] of what `write` writes to the temporary file `tmp`, which `open` opens.
fn write_atomic_with(
    path: &Path,
    tmp: &Path,
    fsync: bool,
    open: impl FnOnce(&Path) -> std::io::Result<File>,
    write: impl FnOnce(&mut File) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let ctx = || format!("writing {}", path.display());
    let mut f = open(tmp).map_err(StorageError::io(ctx()))?;
    write(&mut f)?;
    if fsync {
        f.sync_all().map_err(StorageError::io(ctx()))?;
    }
    fs::rename(tmp, path).map_err(StorageError::io(ctx()))?;
    if fsync {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io(format!(
            "syncing directory {}",
            dir.display()
        )))
}

/// Creates a directory and its parents.
pub fn ensure_dir(dir: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(dir).map_err(StorageError::io(format!("creating {}", dir.display())))
}

/// Name of the file, in the snapshot directory, naming the newest log file by its first zxid
/// (`0000000000000000` when there is none). It is rewritten after a new log file exists and
/// before log files are removed, so it never names a file newer than the newest on disk; a
/// newest log file deleted behind the server's back is then seen at recovery.
pub const NEWEST_LOG: &str = "newest-log";

/// Reads the newest-log marker of `data_dir`; `None` when there is none (a data dir of an
/// earlier build of this format).
pub fn read_newest_log(data_dir: &Path) -> Result<Option<Zxid>, StorageError> {
    let path = snapshot_dir(data_dir).join(NEWEST_LOG);
    match fs::read_to_string(&path) {
        Ok(s) => u64::from_str_radix(s.trim(), 16)
            .map(|z| Some(Zxid(z)))
            .map_err(|_| {
                StorageError::Corrupt(format!(
                    "{} holds {:?}, not a zxid",
                    path.display(),
                    s.trim()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(format!("reading {}", path.display()))(e)),
    }
}

/// Records `first` (the first zxid of the newest log file, or zero) as the newest-log marker.
pub fn write_newest_log(data_dir: &Path, first: Zxid, fsync: bool) -> Result<(), StorageError> {
    let path = snapshot_dir(data_dir).join(NEWEST_LOG);
    write_atomic(&path, format!("{:016x}", first.0).as_bytes(), fsync)
}

/// Name of the file holding the epoch this server last accepted from a prospective leader.
pub const ACCEPTED_EPOCH: &str = "acceptedEpoch";
/// Name of the file holding the epoch of the last leader this server synced with.
pub const CURRENT_EPOCH: &str = "currentEpoch";

/// Reads an epoch file; `None` when it does not exist.
pub fn read_epoch(path: &Path) -> Result<Option<u32>, StorageError> {
    match fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| {
            StorageError::Corrupt(format!(
                "{} holds {:?}, not an epoch",
                path.display(),
                s.trim()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(format!("reading {}", path.display()))(e)),
    }
}
