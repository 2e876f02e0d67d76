//! What the service keeps on disk, and how to delete it all.
//!
//! The service writes only into its data folder: snapshots of aggregates
//! (`*.snap`, `*.bin`) and the temporary files it writes them through
//! (`*.tmp`). [`purge`] deletes exactly those and reports each file; it
//! leaves anything else (and the folder itself) alone, so pointing it at the
//! wrong folder cannot wipe unrelated files.
//!
//! Must not depend on anything but `std`.

use std::io;
use std::path::{Path, PathBuf};

/// File name endings the service writes.
pub const OWN_EXTENSIONS: &[&str] = &["snap", "bin", "tmp"];

/// Is this a file the service wrote?
pub fn is_own_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| OWN_EXTENSIONS.contains(&e))
}

/// What [`purge`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Files deleted, sorted.
    pub deleted: Vec<PathBuf>,
    /// Bytes they held.
    pub bytes: u64,
    /// Files left because the service did not write them.
    pub kept: Vec<PathBuf>,
}

/// Deletes every file the service wrote in `data_dir` (and its
/// subfolders). A missing folder is nothing to purge.
pub fn purge(data_dir: &Path) -> io::Result<Purged> {
    let mut out = Purged::default();
    if !data_dir.exists() {
        return Ok(out);
    }
    let mut folders = vec![data_dir.to_path_buf()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() && is_own_file(&path) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&path)?;
                out.bytes += len;
                out.deleted.push(path);
            } else {
                out.kept.push(path);
            }
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
    fn purge_deletes_the_service_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("old")).unwrap();
        for name in ["aggregates.snap", "old/aggregates-1.bin", ".aggregates.snap.tmp", "notes.txt"] {
            std::fs::write(d.join(name), b"12345").unwrap();
        }
        let purged = purge(d).unwrap();
        let names: Vec<String> =
            purged.deleted.iter().map(|p| p.strip_prefix(d).unwrap().display().to_string()).collect();
        assert_eq!(names, [".aggregates.snap.tmp", "aggregates.snap", "old/aggregates-1.bin"]);
        assert_eq!(purged.bytes, 15);
        assert_eq!(purged.kept, [d.join("notes.txt")]);
        assert!(d.join("notes.txt").exists() && !d.join("aggregates.snap").exists());
        assert_eq!(purge(d).unwrap().deleted.len(), 0);
        assert_eq!(purge(&d.join("missing")).unwrap(), Purged::default());
    }
}
