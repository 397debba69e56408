//! Executor and driver logs, served as Spark's worker serves them: `/logPage/` (a page) and
//! `/log` (the text) take `appId` and `executorId`, or `driverId`, with `logType` (`stdout` or
//! `stderr`), and an optional `offset` and `byteLength`. The query is hostile input: ids must
//! be plain names, and the file must resolve inside the work dir.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes shown when the query sets no `byteLength` (Spark's default, 100 KiB).
pub const DEFAULT_BYTES: u64 = 100 * 1024;
/// The most bytes one request reads.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// The query of a log request, with Spark's parameter names.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// An executor's application.
    pub app_id: Option<String>,
    /// An executor's number within it.
    pub executor_id: Option<String>,
    /// A driver, instead of an executor.
    pub driver_id: Option<String>,
    /// `stdout` or `stderr`.
    pub log_type: Option<String>,
    /// Where to start reading; default: `byteLength` before the end.
    pub offset: Option<u64>,
    /// How many bytes to read (at most [`MAX_BYTES`]).
    pub byte_length: Option<u64>,
}

/// A range of a log file that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// The text read (invalid UTF-8 replaced).
    pub text: String,
    /// Its first byte's offset.
    pub start: u64,
    /// The offset just past its last byte.
    pub end: u64,
    /// The file's length.
    pub total: u64,
}

/// Whether `id` is a plain name: letters, digits, `-`, `_` and `.`, not `.` or `..`.
fn plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The file `q` names, relative to the work dir, or why it is refused.
pub fn relative_path(q: &LogQuery) -> Result<PathBuf, String> {
    let log_type = match q.log_type.as_deref() {
        Some(t @ ("stdout" | "stderr")) => t,
        _ => return Err("logType must be one of stdout, stderr".into()),
    };
    let dir = match (&q.app_id, &q.executor_id, &q.driver_id) {
        (Some(app), Some(exec), None) => {
            let exec: u32 = exec
                .parse()
                .map_err(|_| "executorId must be a number".to_string())?;
            if !plain(app) {
                return Err("appId is not a valid application id".into());
            }
            Path::new(app).join(exec.to_string())
        }
        (None, None, Some(driver)) if plain(driver) => PathBuf::from(driver),
        (None, None, Some(_)) => return Err("driverId is not a valid driver id".into()),
        _ => return Err("give appId and executorId, or driverId".into()),
    };
    Ok(dir.join(log_type))
}

/// The byte range `[start, end)` to read of a `total`-byte file: `length` bytes (default
/// [`DEFAULT_BYTES`], at most [`MAX_BYTES`]) from `offset`, or the last ones without one.
pub fn range(offset: Option<u64>, length: Option<u64>, total: u64) -> (u64, u64) {
    let length = length.unwrap_or(DEFAULT_BYTES).min(MAX_BYTES);
    let start = offset
        .unwrap_or_else(|| total.saturating_sub(length))
        .min(total);
    (start, start.saturating_add(length).min(total))
}

/// Reads what `q` asks for under `work_dir`; the file must resolve (links followed) inside it.
pub fn read(work_dir: &Path, q: &LogQuery) -> Result<LogChunk, String> {
    let relative = relative_path(q)?;
    let not_found = || format!("no log {}", relative.display());
    let root = work_dir.canonicalize().map_err(|_| not_found())?;
    let path = root
        .join(&relative)
        .canonicalize()
        .map_err(|_| not_found())?;
    if !path.starts_with(&root) {
        return Err("the log is outside the work dir".into());
    }
    let mut file = std::fs::File::open(&path).map_err(|_| not_found())?;
    let total = file.metadata().map_err(|e| e.to_string())?.len();
    let (start, end) = range(q.offset, q.byte_length, total);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(end - start)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(LogChunk {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        start,
        end: start + bytes.len() as u64,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(app: &str, exec: &str, log_type: &str) -> LogQuery {
        LogQuery {
            app_id: Some(app.into()),
            executor_id: Some(exec.into()),
            log_type: Some(log_type.into()),
            ..LogQuery::default()
        }
    }

    #[test]
    fn only_plain_ids_and_the_two_log_types_name_a_file() {
        assert_eq!(
            relative_path(&query("app-1", "0", "stdout")),
            Ok(PathBuf::from("app-1/0/stdout"))
        );
        let driver = LogQuery {
            driver_id: Some("driver-1".into()),
            log_type: Some("stderr".into()),
            ..LogQuery::default()
        };
        assert_eq!(relative_path(&driver), Ok(PathBuf::from("driver-1/stderr")));
        for bad in [
            query("..", "0", "stdout"),
            query("../../etc", "0", "stdout"),
            query("/etc", "0", "stdout"),
            query("app-1", "../0", "stdout"),
            query("app-1", "-1", "stdout"),
            query("app-1", "0", "passwd"),
            query("app-1", "0", "../stdout"),
            LogQuery::default(),
        ] {
            assert!(relative_path(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_default_to_the_tail_and_are_bounded() {
        assert_eq!(range(None, None, 10), (0, 10));
        assert_eq!(range(None, Some(4), 10), (6, 10));
        assert_eq!(range(Some(3), Some(4), 10), (3, 7));
        assert_eq!(range(Some(50), None, 10), (10, 10));
        assert_eq!(
            range(Some(0), Some(u64::MAX), 5 * MAX_BYTES),
            (0, MAX_BYTES)
        );
        assert_eq!(range(Some(u64::MAX), Some(u64::MAX), 7), (7, 7));
    }

    #[test]
    fn a_log_is_read_in_range_and_a_link_out_of_the_work_dir_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("app-1").join("0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stdout"), "hello world").unwrap();
        let mut q = query("app-1", "0", "stdout");
        q.offset = Some(6);
        let chunk = read(work.path(), &q).unwrap();
        assert_eq!(
            (chunk.text.as_str(), chunk.start, chunk.end, chunk.total),
            ("world", 6, 11, 11)
        );
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.join("stderr")).unwrap();
        let e = read(work.path(), &query("app-1", "0", "stderr")).unwrap_err();
        assert_eq!(e, "the log is outside the work dir");
        assert!(read(work.path(), &query("app-2", "0", "stdout")).is_err());
    }
}
