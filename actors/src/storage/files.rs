//! File names, record framing and atomic writes.

use super::StorageError;
use ensemble_messages::{codec, Snapshot, Txn, Zxid};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Subdirectory holding ensemble's files, versioned by format.
pub const VERSION_DIR: &str = "ensemble-v1";
const LOG_PREFIX: &str = "log.";
const SNAPSHOT_PREFIX: &str = "snapshot.";

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

/// Frames one txn as a log record.
pub fn encode_record(txn: &Txn) -> Result<Vec<u8>, StorageError> {
    let body =
        codec::encode(txn).map_err(|e| StorageError::Corrupt(format!("encoding txn: {e}")))?;
    let mut rec = Vec::with_capacity(8 + body.len());
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes());
    rec.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    rec.extend_from_slice(&body);
    Ok(rec)
}

/// One parsed record, or why parsing stopped.
pub enum RecordRead {
    /// A whole, valid record and the offset after it.
    Record(Txn, usize),
    /// The bytes end inside a record.
    Truncated,
    /// A record whose checksum or content is wrong.
    Damaged(String),
}

/// Parses the record at `offset` of `bytes`.
pub fn read_record(bytes: &[u8], offset: usize) -> RecordRead {
    let rest = &bytes[offset..];
    if rest.len() < 8 {
        return RecordRead::Truncated;
    }
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if rest.len() < 8 + len {
        return RecordRead::Truncated;
    }
    let body = &rest[8..8 + len];
    if crc32fast::hash(body) != crc {
        return RecordRead::Damaged("checksum mismatch".into());
    }
    match codec::decode::<Txn>(body) {
        Ok(txn) => RecordRead::Record(txn, offset + 8 + len),
        Err(e) => RecordRead::Damaged(format!("undecodable record: {e}")),
    }
}

/// Encodes a snapshot file's content.
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>, StorageError> {
    let body = codec::encode(snapshot)
        .map_err(|e| StorageError::Corrupt(format!("encoding snapshot: {e}")))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a snapshot file's content.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < 4 {
        return Err("shorter than its checksum".into());
    }
    let crc = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if crc32fast::hash(&bytes[4..]) != crc {
        return Err("checksum mismatch".into());
    }
    codec::decode(&bytes[4..]).map_err(|e| format!("undecodable: {e}"))
}

/// Writes `content` to `path` atomically: a temporary file, fsync, rename, fsync of the dir.
pub fn write_atomic(path: &Path, content: &[u8], fsync: bool) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    let ctx = || format!("writing {}", path.display());
    let mut f = File::create(&tmp).map_err(StorageError::io(ctx()))?;
    f.write_all(content).map_err(StorageError::io(ctx()))?;
    if fsync {
        f.sync_all().map_err(StorageError::io(ctx()))?;
    }
    fs::rename(&tmp, path).map_err(StorageError::io(ctx()))?;
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

/// Opens a log file for appending, creating it.
pub fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(StorageError::io(format!("opening {}", path.display())))
}

/// Reads an epoch file; a missing file is epoch 0.
pub fn read_epoch(path: &Path) -> Result<u32, StorageError> {
    match fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map_err(|_| {
            StorageError::Corrupt(format!(
                "{} holds {:?}, not an epoch",
                path.display(),
                s.trim()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StorageError::io(format!("reading {}", path.display()))(e)),
    }
}
