//! A snapshot a restore point uses, as recovery hands it over: a file it checked whole,
//! read again (and checked again) as the tree is built, or an image held in memory.

use super::files::{self, SnapshotZxids};
use ensemble_messages::{Snapshot, Zxid};
use std::io::Read;
use std::path::PathBuf;

/// A whole or incremental snapshot of a restore point.
#[derive(Clone, Debug)]
pub enum SnapshotRef {
    /// A file read as it streams, checked whole: its image is read again as the tree is
    /// built, never held beside the tree (a whole one is 117 MB at a million znodes).
    File {
        /// The file.
        path: PathBuf,
        /// The zxids it holds.
        zxids: SnapshotZxids,
    },
    /// An image held in memory (from a file of an older format).
    Held(Snapshot),
}

impl SnapshotRef {
    /// The last zxid it covers.
    pub fn last_zxid(&self) -> Zxid {
        match self {
            SnapshotRef::File { zxids, .. } => zxids.last,
            SnapshotRef::Held(s) => s.last_zxid,
        }
    }

    /// Builds what its image holds with `read` (given a reader of the image and its length):
    /// from the file, checked again as it streams, or from memory.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
    ) -> Result<T, String> {
        match self {
            SnapshotRef::Held(s) => {
                let mut image = &s.state[..];
                let built = read(&mut image, s.state.len() as u64)?;
                if !image.is_empty() {
                    return Err("the image ends before the snapshot does".into());
                }
                Ok(built)
            }
            SnapshotRef::File { path, zxids } => {
                let (read_zxids, built) = files::read_snapshot_file(path, read)?;
                if read_zxids != *zxids {
                    return Err(format!(
                        "{} now holds {read_zxids}, not {zxids}",
                        path.display()
                    ));
                }
                Ok(built)
            }
        }
    }

    /// Its image, read whole.
    #[cfg(test)]
    pub(crate) fn image(&self) -> Vec<u8> {
        let read = |r: &mut dyn Read, len| {
            let mut image = Vec::new();
            r.take(len)
                .read_to_end(&mut image)
                .map_err(|e| e.to_string())?;
            Ok(image)
        };
        self.read(read).expect("a readable image")
    }
}
