//! Logging of every subcommand: level, text or JSON lines, stderr or rotated files.
//!
//! Precedence, for each setting: the command-line flag, then (for the level) `RUST_LOG`, then
//! the `[log]` section of the native TOML the command reads (`node --config`, `up`), then the
//! default (`info`, text, stderr, daily rotation, 7 files).

use ensemble_config::LogSection;
use std::path::{Path, PathBuf};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// Rotated files kept when nothing says otherwise.
const DEFAULT_MAX_FILES: usize = 7;

/// The logging flags, accepted before or after any subcommand.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct LogArgs {
    /// Filter of log lines: a level (error, warn, info, debug, trace) or RUST_LOG directives
    /// such as `info,ensemble_actors::zab=debug`. Wins over RUST_LOG, which wins over the TOML
    /// `[log] level`; default info.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Format of log lines: text, or json (one JSON object per line).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Write log lines to this file, rotated (PATH's stem, the date, then its extension),
    /// instead of stderr.
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// When the log file rotates.
    #[arg(long, global = true, value_enum)]
    pub log_rotation: Option<LogRotation>,
    /// Log files kept, the current one included (older ones are deleted at start and at
    /// each rotation); default 7.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub log_max_files: Option<u16>,
}

/// Format of log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, fields, target.
    Json,
}

/// When a log file rotates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogRotation {
    /// A new file each day (UTC).
    #[default]
    Daily,
    /// A new file each hour.
    Hourly,
    /// One file, never rotated.
    Never,
}

/// The settings in force, once the flags, RUST_LOG and the TOML are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Filter directives.
    pub filter: String,
    /// Line format.
    pub format: LogFormat,
    /// Log file, if not stderr.
    pub file: Option<PathBuf>,
    /// Rotation of the file.
    pub rotation: LogRotation,
    /// Files kept.
    pub max_files: usize,
    /// Why `RUST_LOG` was ignored, if it was: logged once logging is installed.
    pub ignored_rust_log: Option<String>,
}

/// The TOML's `[log]`, and the name of this process's file in its `dir`.
pub struct TomlLog<'a> {
    /// The section.
    pub section: &'a LogSection,
    /// `server-1`, `up`.
    pub name: String,
}

impl LogSettings {
    /// Combines the flags, `RUST_LOG` (as given) and the TOML's `[log]`.
    pub fn resolve(
        args: &LogArgs,
        rust_log: Option<&str>,
        toml: Option<&TomlLog>,
    ) -> Result<LogSettings, String> {
        let section = toml.map(|t| t.section);
        let from_toml = |f: fn(&LogSection) -> &str| section.map(f).filter(|s| !s.is_empty());
        // A RUST_LOG that does not parse is skipped with a warning rather than fatal.
        let rust_log = rust_log.filter(|s| !s.is_empty());
        let ignored_rust_log = rust_log.and_then(|r| {
            EnvFilter::try_new(r)
                .err()
                .map(|e| format!("ignoring RUST_LOG={r:?}: {e}"))
        });
        let rust_log = rust_log.filter(|_| ignored_rust_log.is_none());
        let filter = args
            .log_level
            .as_deref()
            .or(rust_log)
            .or(from_toml(|s| &s.level))
            .unwrap_or("info")
            .to_string();
        let format = match (args.log_format, from_toml(|s| &s.format)) {
            (Some(f), _) => f,
            (None, Some(name)) => parse_choice(name, "[log] format")?,
            (None, None) => LogFormat::default(),
        };
        let rotation = match (args.log_rotation, from_toml(|s| &s.rotation)) {
            (Some(r), _) => r,
            (None, Some(name)) => parse_choice(name, "[log] rotation")?,
            (None, None) => LogRotation::default(),
        };
        let file = args.log_file.clone().or_else(|| {
            let t = toml?;
            Some(t.section.dir.as_ref()?.join(format!("{}.log", t.name)))
        });
        let max_files = match (args.log_max_files, section.map(|s| s.max_files)) {
            (Some(n), _) => usize::from(n),
            (None, Some(n)) if n > 0 => n,
            _ => DEFAULT_MAX_FILES,
        };
        Ok(LogSettings {
            filter,
            format,
            file,
            rotation,
            max_files,
            ignored_rust_log,
        })
    }

    /// The flags that give a child process (of `ensemble up`) the same level and format.
    pub fn child_args(&self, args: &LogArgs) -> Vec<String> {
        let format = match self.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        let mut out = vec!["--log-format".to_string(), format.to_string()];
        if let Some(level) = &args.log_level {
            out.extend(["--log-level".to_string(), level.clone()]);
        }
        out
    }
}

fn parse_choice<T: clap::ValueEnum>(name: &str, key: &str) -> Result<T, String> {
    T::from_str(name, true).map_err(|_| {
        let choices: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!("{key} = {name:?}: expected one of {}", choices.join(", "))
    })
}

/// Keeps the file writer's thread; dropping it flushes every line logged before.
#[must_use = "dropping the guard stops the log file's writer"]
pub struct LogGuard {
    _writer: Option<WorkerGuard>,
}

/// Installs the global subscriber.
pub fn install(settings: &LogSettings) -> Result<LogGuard, String> {
    let filter = EnvFilter::try_new(&settings.filter)
        .map_err(|e| format!("log filter {:?}: {e}", settings.filter))?;
    let (writer, guard, ansi) = match &settings.file {
        Some(path) => {
            let appender = appender(path, settings.rotation, settings.max_files)?;
            let (w, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(appender);
            (BoxMakeWriter::new(w), Some(guard), false)
        }
        None => (
            BoxMakeWriter::new(std::io::stderr),
            None,
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| format!("cannot install logging: {e}"))?;
    if let Some(why) = &settings.ignored_rust_log {
        tracing::warn!("{why}");
    }
    Ok(LogGuard { _writer: guard })
}

/// The rolling appender of `path`: files `<stem>.<date>.<extension>` in its directory (just
/// `path` without rotation), at most `max_files` of them.
fn appender(
    path: &Path,
    rotation: LogRotation,
    max_files: usize,
) -> Result<RollingFileAppender, String> {
    let (dir, prefix, suffix) = file_parts(path)?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let rotation = match rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Never => Rotation::NEVER,
    };
    let mut b = RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(prefix)
        .max_log_files(max_files);
    if let Some(s) = suffix {
        b = b.filename_suffix(s);
    }
    b.build(&dir)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

/// Directory, file stem and extension of a log file path.
fn file_parts(path: &Path) -> Result<(PathBuf, String, Option<String>), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "..")
        .ok_or_else(|| format!("log file {}: no UTF-8 file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
            (dir, stem.to_string(), Some(ext.to_string()))
        }
        _ => (dir, name.to_string(), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(level: &str, format: &str, dir: Option<&str>) -> LogSection {
        LogSection {
            level: level.into(),
            format: format.into(),
            dir: dir.map(PathBuf::from),
            rotation: "hourly".into(),
            max_files: 3,
        }
    }

    #[test]
    fn flags_win_over_rust_log_which_wins_over_the_toml() {
        let s = section("debug", "json", Some("/var/log/e"));
        let toml = TomlLog {
            section: &s,
            name: "server-2".into(),
        };
        let none = LogArgs::default();
        let r = LogSettings::resolve(&none, None, Some(&toml)).unwrap();
        assert_eq!(r.filter, "debug");
        assert_eq!(r.format, LogFormat::Json);
        assert_eq!(r.rotation, LogRotation::Hourly);
        assert_eq!(r.max_files, 3);
        assert_eq!(r.file, Some(PathBuf::from("/var/log/e/server-2.log")));
        let r = LogSettings::resolve(&none, Some("warn"), Some(&toml)).unwrap();
        assert_eq!(r.filter, "warn");
        let flags = LogArgs {
            log_level: Some("error".into()),
            log_format: Some(LogFormat::Text),
            log_file: Some("x.log".into()),
            log_rotation: Some(LogRotation::Never),
            log_max_files: Some(9),
        };
        let r = LogSettings::resolve(&flags, Some("warn"), Some(&toml)).unwrap();
        assert_eq!(
            r,
            LogSettings {
                filter: "error".into(),
                format: LogFormat::Text,
                file: Some("x.log".into()),
                rotation: LogRotation::Never,
                max_files: 9,
                ignored_rust_log: None,
            }
        );
        let r = LogSettings::resolve(&none, Some("a=b=c"), Some(&toml)).unwrap();
        assert_eq!(r.filter, "debug");
        assert!(r
            .ignored_rust_log
            .unwrap()
            .starts_with("ignoring RUST_LOG=\"a=b=c\""));
        let r = LogSettings::resolve(&none, Some(""), None).unwrap();
        assert_eq!((r.filter.as_str(), r.file, r.max_files), ("info", None, 7));
    }

    #[test]
    fn a_bad_toml_choice_is_a_clear_error() {
        let s = section("", "xml", None);
        let toml = TomlLog {
            section: &s,
            name: "up".into(),
        };
        let e = LogSettings::resolve(&LogArgs::default(), None, Some(&toml)).unwrap_err();
        assert_eq!(e, "[log] format = \"xml\": expected one of text, json");
    }

    #[test]
    fn file_names_split_into_directory_stem_and_extension() {
        let parts = |p: &str| file_parts(Path::new(p)).unwrap();
        assert_eq!(
            parts("/var/log/ensemble.log"),
            ("/var/log".into(), "ensemble".into(), Some("log".into()))
        );
        assert_eq!(parts("server"), (".".into(), "server".into(), None));
        assert_eq!(parts(".hidden"), (".".into(), ".hidden".into(), None));
        assert!(file_parts(Path::new("/")).is_err());
    }

    #[test]
    fn old_rotated_files_beyond_the_limit_are_deleted_when_the_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        for day in 1..=5 {
            let old = dir.path().join(format!("server-1.2026-11-0{day}.log"));
            std::fs::write(old, "old\n").unwrap();
        }
        let other = dir.path().join("up.2026-11-01.log");
        std::fs::write(&other, "another process's\n").unwrap();
        let path = dir.path().join("server-1.log");
        drop(appender(&path, LogRotation::Daily, 3).unwrap());
        let kept = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("server-1."))
            .count();
        // Two old ones and today's.
        assert_eq!(kept, 3);
        assert!(other.exists());
    }
}
