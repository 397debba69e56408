//! Recovery mode FILESYSTEM: the same records as in the ensemble, one file each in
//! `spark.deploy.recoveryDirectory`, for a single master (no election: it leads once it has
//! read the directory). Each start takes the next epoch from an `epoch` file, so workers fence
//! off messages from the master's previous run. Files are written to a temporary name, synced
//! and renamed, on a blocking thread, never on the actor's.

use super::ensemble_link::{record_change, Fence, LinkEvent, Records, Stamped, StoreOp};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Reads the directory, reports the master elected, then applies record changes in order until
/// `ops` closes. An unusable directory is reported and ends the link (the master stays STANDBY).
pub async fn run(
    dir: PathBuf,
    mut ops: mpsc::UnboundedReceiver<Stamped>,
    report: impl Fn(LinkEvent),
) {
    let read_dir = dir.clone();
    let start = tokio::task::spawn_blocking(move || start(&read_dir)).await;
    let (epoch, records) = match start {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(dir = %dir.display(), "cannot use the recovery directory: {e}");
            return;
        }
        Err(e) => {
            tracing::error!("recovery directory reader failed: {e}");
            return;
        }
    };
    tracing::info!(dir = %dir.display(), "read {}; epoch {epoch}", records.summary());
    report(records.elected(epoch));
    let mut fence = Fence::default();
    fence.lead(epoch);
    while let Some(Stamped { epoch: issued, op }) = ops.recv().await {
        if !fence.admits(issued) {
            continue;
        }
        let dir = dir.clone();
        let done = tokio::task::spawn_blocking(move || apply(&dir, op)).await;
        match done.map_err(std::io::Error::other) {
            Ok(Ok(())) => {
                if let Some(stored) = fence.applied() {
                    report(stored);
                }
            }
            // Not reported stored: the replies waiting for it wait for the next success.
            Ok(Err(e)) | Err(e) => {
                tracing::error!("cannot write a record in the recovery directory: {e}")
            }
        }
    }
}

/// Takes the next epoch and reads every record; unreadable ones are reported and left.
fn start(dir: &Path) -> std::io::Result<(i64, Records)> {
    std::fs::create_dir_all(dir)?;
    let epoch_file = dir.join("epoch");
    let last: i64 = match std::fs::read_to_string(&epoch_file) {
        Ok(text) => text.trim().parse().map_err(|_| {
            std::io::Error::other(format!(
                "{} holds {text:?}, not an epoch",
                epoch_file.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let epoch = last + 1;
    write_atomically(&epoch_file, epoch.to_string().as_bytes())?;
    let mut records = Records::default();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name == "epoch" || name.ends_with(".tmp") {
            continue;
        }
        let data = std::fs::read(&path)?;
        if let Err(e) = records.add(&name, &data) {
            tracing::error!(path = %path.display(), "unreadable record left in place: {e}");
        }
    }
    Ok((epoch, records))
}

fn apply(dir: &Path, op: StoreOp) -> std::io::Result<()> {
    let (name, data) = record_change(op);
    match data {
        Some(data) => write_atomically(&dir.join(name), &data),
        None => match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Writes `path` through a synced temporary file and a rename, so a crash leaves the old
/// content or the new one.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    // Appended, not substituted: record names hold dots (worker ids carry an IP address).
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark_master::StoredApp;
    use ensemble_messages::spark::{AppDesc, WorkerSpec};

    #[test]
    fn records_survive_a_restart_and_each_start_takes_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (epoch, records) = start(dir.path()).unwrap();
        assert_eq!((epoch, records), (1, Records::default()));
        let spec = WorkerSpec {
            id: "worker-20261122-10.0.0.1-8081".into(),
            host: "h".into(),
            port: 1,
            cores: 1,
            memory_mb: 1,
            webui: String::new(),
        };
        let app = StoredApp {
            id: "app-1-0000".into(),
            desc: AppDesc {
                name: "n".into(),
                command: vec!["true".into()],
                max_cores: None,
                executor_cores: 1,
                executor_memory_mb: 1,
                user: String::new(),
            },
            wanted: 1,
            completed: 0,
            next_exec: 0,
            submitted_ms: 0,
        };
        apply(dir.path(), StoreOp::PutWorker(spec.clone())).unwrap();
        apply(dir.path(), StoreOp::PutApp(app.clone())).unwrap();
        apply(
            dir.path(),
            StoreOp::PutWorker(WorkerSpec {
                id: "worker-20261122-10.0.0.2-8081".into(),
                ..spec.clone()
            }),
        )
        .unwrap();
        apply(
            dir.path(),
            StoreOp::ForgetWorker("worker-20261122-10.0.0.2-8081".into()),
        )
        .unwrap();
        std::fs::write(dir.path().join("worker_broken"), b"\x07garbage").unwrap();
        let (epoch, records) = start(dir.path()).unwrap();
        assert_eq!(
            (epoch, records.workers, records.apps),
            (2, vec![spec], vec![app])
        );
        assert!(dir.path().join("worker_broken").exists(), "left in place");
        std::fs::write(dir.path().join("epoch"), "x").unwrap();
        assert!(start(dir.path()).is_err());
    }
}
