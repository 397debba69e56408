//! The snapshot file: its layout in version 5, the versions still read, and damaged files
//! refused with a clear error.

use super::files::{self, SnapshotImage};
use ensemble_messages::{codec, Snapshot, Zxid};

fn snapshot() -> Snapshot {
    Snapshot {
        last_zxid: Zxid::new(3, 7),
        state: (0..100_000u32).map(|i| (i % 251) as u8).collect(),
    }
}

/// A snapshot file of an older `version`, whose body is the encoded snapshot.
fn encoded_file(version: u32, snapshot: &Snapshot) -> Vec<u8> {
    let body = codec::encode(snapshot).unwrap();
    let mut file = b"ENSS".to_vec();
    file.extend(version.to_be_bytes());
    file.extend((body.len() as u64).to_be_bytes());
    file.extend(crc32fast::hash(&body).to_be_bytes());
    file.extend(body);
    file
}

/// The error decoding `bytes` gives.
fn refusal(bytes: &[u8]) -> String {
    files::decode_snapshot(bytes).unwrap_err()
}

#[test]
fn a_snapshot_file_is_its_header_then_the_zxid_and_the_image() {
    let snapshot = snapshot();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot");
    files::write_snapshot(&path, snapshot.last_zxid, &snapshot.state, false).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, files::encode_snapshot(&snapshot).unwrap());
    assert_eq!(bytes[..4], *b"ENSS");
    assert_eq!(bytes[4..8], 5u32.to_be_bytes());
    let body = &bytes[20..];
    assert_eq!(bytes[8..16], (body.len() as u64).to_be_bytes());
    assert_eq!(bytes[16..20], crc32fast::hash(body).to_be_bytes());
    assert_eq!(body[..8], snapshot.last_zxid.0.to_be_bytes());
    assert_eq!(body[8..], snapshot.state[..]);
    assert_eq!(files::decode_snapshot(&bytes).unwrap(), snapshot);
}

#[test]
fn a_file_read_into_bytes_gives_its_image_without_a_copy() {
    let snapshot = snapshot();
    let file = bytes::Bytes::from(files::encode_snapshot(&snapshot).unwrap());
    let (read, base) = files::decode_snapshot_bytes(file.clone()).unwrap();
    assert_eq!((&read, base), (&snapshot, None));
    let image_at = file.len() - snapshot.state.len();
    assert_eq!(
        read.state.as_ptr(),
        file[image_at..].as_ptr(),
        "the image was copied"
    );
    for version in [2, 3] {
        let old = bytes::Bytes::from(encoded_file(version, &snapshot));
        assert_eq!(
            files::decode_snapshot_bytes(old).unwrap(),
            (snapshot.clone(), None)
        );
    }
    let mut flipped = file.to_vec();
    flipped[image_at] ^= 1;
    let e = files::decode_snapshot_bytes(flipped.into()).unwrap_err();
    assert!(e.contains("checksum"), "{e}");
}

#[test]
fn files_of_versions_2_and_3_still_read() {
    let snapshot = snapshot();
    for version in [2, 3] {
        let file = encoded_file(version, &snapshot);
        assert_eq!(
            files::decode_snapshot(&file).unwrap(),
            snapshot,
            "v{version}"
        );
    }
    let e = refusal(&encoded_file(7, &snapshot));
    assert!(e.contains("format version 7"), "{e}");
}

#[test]
fn truncated_corrupt_and_torn_files_are_refused_with_a_clear_error() {
    let valid = files::encode_snapshot(&snapshot()).unwrap();
    let cut = |len: usize| valid[..len].to_vec();
    assert!(
        refusal(&cut(valid.len() - 1)).contains("header says 100008 bytes, the file holds 100007")
    );
    assert!(refusal(&cut(20)).contains("the file holds 0"));
    assert_eq!(refusal(&cut(19)), "shorter than its header");
    let mut flipped = valid.clone();
    flipped[5_000] ^= 4;
    assert_eq!(refusal(&flipped), "checksum mismatch");
    // A crash before the length and checksum replaced their zeros in the header.
    let mut torn = valid.clone();
    torn[8..20].fill(0);
    assert_eq!(
        refusal(&torn),
        "its header was never completed (a torn write)"
    );
    // The header written, the end of the body lost (zeros where a page was not written).
    let mut lost = valid.clone();
    lost[valid.len() - 4096..].fill(0);
    assert_eq!(refusal(&lost), "checksum mismatch");
    // A body too short to hold the zxid, though its checksum holds.
    let mut short = valid[..20].to_vec();
    short[8..16].copy_from_slice(&4u64.to_be_bytes());
    short[16..20].copy_from_slice(&crc32fast::hash(&[1, 2, 3, 4]).to_be_bytes());
    short.extend([1, 2, 3, 4]);
    assert_eq!(refusal(&short), "the body is shorter than its zxid");
}

/// An image that fails halfway through.
struct Failing;

impl SnapshotImage for Failing {
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&[7; 10])?;
        Err(std::io::Error::other("the image failed"))
    }
}

#[test]
fn an_image_that_fails_to_write_leaves_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot");
    let e = files::write_snapshot(&path, Zxid::new(1, 1), &Failing, false).unwrap_err();
    assert!(e.to_string().contains("the image failed"), "{e}");
    assert!(!path.exists());
}

#[test]
fn a_snapshot_writes_over_the_spare_and_is_cut_to_its_own_length() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("snapshot.1"), dir.path().join("snapshot.2"));
    let longer = vec![9u8; 300_000];
    files::write_snapshot(&old, Zxid::new(1, 1), &longer, false).unwrap();
    let inode = std::fs::metadata(&old).unwrap().ino();
    files::keep_as_spare(&old, true).unwrap();
    assert!(!old.exists());
    let snapshot = snapshot();
    files::write_snapshot(&new, snapshot.last_zxid, &snapshot.state, false).unwrap();
    assert_eq!(
        std::fs::metadata(&new).unwrap().ino(),
        inode,
        "the spare's file"
    );
    let bytes = std::fs::read(&new).unwrap();
    assert_eq!(bytes, files::encode_snapshot(&snapshot).unwrap());
    assert_eq!(files::decode_snapshot(&bytes).unwrap(), snapshot);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "the spare was taken: {left:?}");
}

#[test]
fn a_spare_that_failed_to_take_an_image_is_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("snapshot.1"), dir.path().join("snapshot.2"));
    files::write_snapshot(&old, Zxid::new(1, 1), &vec![9u8; 1000], false).unwrap();
    files::keep_as_spare(&old, true).unwrap();
    assert!(files::write_snapshot(&new, Zxid::new(1, 2), &Failing, false).is_err());
    assert!(!new.exists());
    assert!(files::list_snapshots(dir.path()).unwrap().is_empty());
}

#[test]
fn an_installed_snapshot_leaves_a_background_snapshot_in_progress_alone() {
    let dir = tempfile::tempdir().unwrap();
    let in_progress = dir.path().join("snapshot.tmp");
    std::fs::write(&in_progress, b"half of a background snapshot").unwrap();
    let snapshot = snapshot();
    let path = dir.path().join("snapshot.2");
    let (zxid, image) = (snapshot.last_zxid, &snapshot.state);
    files::write_snapshot_through(&path, files::INSTALL_TMP, zxid, image, false).unwrap();
    assert_eq!(
        std::fs::read(&in_progress).unwrap(),
        b"half of a background snapshot"
    );
    let written = files::decode_snapshot(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(written, snapshot);
}
