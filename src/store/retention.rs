//! What the service keeps on disk, and how to delete it all.
//!
//! The service writes only into its data folder, and only the snapshot
//! files that `store::snapshot_dir` names ([`is_snapshot_file`]). [`purge`]
//! deletes exactly those and reports each file; it leaves anything else
//! (and the folder itself) alone, so pointing it at the wrong folder cannot
//! wipe unrelated files.
//!
//! Must not depend on anything but `std` and the store's file names.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::snapshot_dir::is_snapshot_file;

/// What [`purge`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Files deleted, sorted.
    pub deleted: Vec<PathBuf>,
    /// Bytes they held.
    pub bytes: u64,
    /// Entries left because the service did not write them, sorted.
    pub kept: Vec<PathBuf>,
}

/// Deletes every file the service wrote in `data_dir`. A missing folder is
/// nothing to purge.
pub fn purge(data_dir: &Path) -> io::Result<Purged> {
    let mut out = Purged::default();
    if !data_dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let path = entry.path();
        let ours = entry.file_type()?.is_file() && entry.file_name().to_str().is_some_and(is_snapshot_file);
        if ours {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path)?;
            out.bytes += len;
            out.deleted.push(path);
        } else {
            out.kept.push(path);
        }
    }
    out.deleted.sort();
    out.kept.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_deletes_the_snapshot_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("old")).unwrap();
        for name in [
            "state.snapshot",
            "state.snapshot.prev.rejected",
            ".state.snapshot.Ab1.tmp",
            "notes.txt",
            "old/state.snapshot",
        ] {
            std::fs::write(d.join(name), b"12345").unwrap();
        }
        let purged = purge(d).unwrap();
        let names: Vec<String> =
            purged.deleted.iter().map(|p| p.strip_prefix(d).unwrap().display().to_string()).collect();
        assert_eq!(names, [".state.snapshot.Ab1.tmp", "state.snapshot", "state.snapshot.prev.rejected"]);
        assert_eq!(purged.bytes, 15);
        assert_eq!(purged.kept, [d.join("notes.txt"), d.join("old")]);
        assert!(d.join("notes.txt").exists() && d.join("old/state.snapshot").exists());
        assert_eq!(purge(d).unwrap().deleted.len(), 0);
        assert_eq!(purge(&d.join("missing")).unwrap(), Purged::default());
    }
}
