//! `ensemble data dump` and `ensemble data check`: offline tools for data directories, in the
//! spirit of Apache's zkTxnLogToolkit and zkSnapShotToolkit, reading both Apache ZooKeeper's
//! `version-2/` files and ensemble's own `ensemble-v2/` files. They only read.

mod check;
mod dump;

use clap::Subcommand;
use std::path::{Path, PathBuf};

/// What `ensemble data` does.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Prints a snapshot or log file (Apache's or ensemble's), or every one of a data dir.
    Dump {
        /// A file, or a dataDir (its version-2/ and ensemble-v2/ are read).
        path: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Checks a data dir: every checksum, and that the logs continue from the snapshots.
    /// Exits with 1 when something is wrong.
    Check {
        /// A dataDir (with dataLogDir the same directory).
        dir: PathBuf,
    },
}

/// Runs the command; returns the exit code.
pub fn run(cmd: DataCommand) -> Result<i32, Box<dyn std::error::Error>> {
    match cmd {
        DataCommand::Dump { path, json } => dump::run(&path, json),
        DataCommand::Check { dir } => Ok(check::run(&dir)),
    }
}

/// The snapshot and log files of `path`: the file itself, or those of a data dir (and of its
/// `version-2/` and `ensemble-v2/`), sorted by zxid within each directory.
fn data_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for dir in [
        path.to_path_buf(),
        path.join("version-2"),
        path.join("ensemble-v2"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                p.is_file() && (name.starts_with("snapshot.") || name.starts_with("log."))
            })
            .collect();
        files.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
        out.extend(files);
    }
    Ok(out)
}
