//! Snapshot files in the data directory: a crash-safe write and a load that
//! never fails the start.
//!
//! Files: `state.snapshot` (the newest) and `state.snapshot.prev` (the one
//! before, the fallback). A write goes to a temporary file in the same
//! directory, is fsynced, the current file becomes the previous one, the
//! temporary file is renamed over the current one, and the directory is
//! fsynced. A crash at any point leaves at least one complete snapshot:
//! renames are atomic, and a half-written temporary file is never renamed
//! (it is removed at the next start).
//!
//! Loading decodes the current file and, only if that fails, the previous
//! one (which is always older). A previous file next to a valid current one
//! is not read: its header is checked against its length, which catches a
//! torn, truncated or foreign file at the start; a bit flip inside its
//! payload is caught by the checksum when it is needed, and it is then
//! rejected like any other. A file that fails is moved aside
//! as `*.rejected` for inspection (so it never becomes the fallback) and
//! reported; nothing valid means an empty start, never a failed one.
//!
//! [`is_snapshot_file`] names every file written here, for `purge`.
//!
//! Blocking I/O: call from a blocking thread. Knows nothing of the service
//! beyond the `snapshot` format.
//!
//! Must not depend on what a snapshot holds: it handles checked bytes and
//! files only.

use std::fs::{self, File};
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::snapshot::{self, Snapshot, SnapshotError};

/// The newest snapshot.
pub const CURRENT: &str = "state.snapshot";
/// The one before it.
pub const PREVIOUS: &str = "state.snapshot.prev";
const TEMP_PREFIX: &str = ".state.snapshot.";
const TEMP_SUFFIX: &str = ".tmp";
const PROBE_SUFFIX: &str = ".probe";
/// Appended to the name of a file that failed to load.
const REJECTED_SUFFIX: &str = ".rejected";

/// Is `name` one of the files a [`SnapshotDir`] writes: the current or the
/// previous snapshot, either set aside as rejected, or a temporary file of a
/// write or of the writability check? (`jira-dora purge` deletes exactly
/// these.)
pub fn is_snapshot_file(name: &str) -> bool {
    let slot = name.strip_suffix(REJECTED_SUFFIX).unwrap_or(name);
    slot == CURRENT
        || slot == PREVIOUS
        || (name.starts_with(TEMP_PREFIX) && (name.ends_with(TEMP_SUFFIX) || name.ends_with(PROBE_SUFFIX)))
}

/// The data directory cannot hold snapshots.
#[derive(Debug, Error)]
pub enum DataDirError {
    #[error("data directory {}: cannot create it: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("data directory {} is not writable: {source}", .path.display())]
    NotWritable { path: PathBuf, source: io::Error },
}

/// Which file a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Current,
    Previous,
}

impl Slot {
    pub fn file_name(self) -> &'static str {
        match self {
            Slot::Current => CURRENT,
            Slot::Previous => PREVIOUS,
        }
    }
}

/// A file that was not used, and why.
#[derive(Debug)]
pub struct Rejected {
    pub slot: Slot,
    pub reason: String,
}

/// The result of a load.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The newest valid snapshot, its file and its checksum.
    pub snapshot: Option<(Snapshot, Slot, u32)>,
    pub rejected: Vec<Rejected>,
}

/// The data directory.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
}

impl SnapshotDir {
    /// Creates the directory if absent, checks that files can be created in
    /// it, and removes temporary files left by an interrupted write.
    pub fn open(dir: &Path) -> Result<Self, DataDirError> {
        fs::create_dir_all(dir).map_err(|source| DataDirError::Create { path: dir.to_owned(), source })?;
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(PROBE_SUFFIX)
            .tempfile_in(dir)
            .and_then(|mut f| f.write_all(b"probe").and_then(|()| f.as_file().sync_all()))
            .map_err(|source| DataDirError::NotWritable { path: dir.to_owned(), source })?;
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(TEMP_PREFIX) && (name.ends_with(TEMP_SUFFIX) || name.ends_with(PROBE_SUFFIX)) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn path(&self, slot: Slot) -> PathBuf {
        self.dir.join(slot.file_name())
    }

    /// Replaces the current snapshot with `bytes`, keeping the old one as the
    /// previous.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_pieces(&[bytes])
    }

    /// [`write`](Self::write) of the concatenation of `pieces`, without
    /// making it: they go to the file in as few system calls as the kernel
    /// allows.
    pub fn write_pieces(&self, pieces: &[&[u8]]) -> io::Result<()> {
        let mut temp = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempfile_in(&self.dir)?;
        write_all_vectored(temp.as_file_mut(), pieces)?;
        temp.as_file().sync_all()?;
        match fs::rename(self.path(Slot::Current), self.path(Slot::Previous)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        temp.persist(self.path(Slot::Current)).map_err(|e| e.error)?;
        sync_dir(&self.dir)
    }

    /// The newest valid snapshot: the current one, else the previous one.
    pub fn load(&self) -> Loaded {
        let mut loaded = Loaded::default();
        for slot in [Slot::Current, Slot::Previous] {
            let path = self.path(slot);
            if loaded.snapshot.is_some() {
                match check_header(&path) {
                    Ok(()) => {}
                    Err(Fallback::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(Fallback::Io(e)) => {
                        loaded.rejected.push(Rejected { slot, reason: format!("cannot be read: {e}") })
                    }
                    Err(Fallback::Bad(e)) => {
                        loaded.rejected.push(Rejected { slot, reason: e.to_string() });
                        set_aside(&path, &e);
                    }
                }
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    loaded.rejected.push(Rejected { slot, reason: format!("cannot be read: {e}") });
                    continue;
                }
            };
            match snapshot::decode(&bytes) {
                Ok(s) => loaded.snapshot = Some((s, slot, snapshot::checksum(&bytes).unwrap_or_default())),
                Err(e) => {
                    loaded.rejected.push(Rejected { slot, reason: e.to_string() });
                    set_aside(&path, &e);
                }
            }
        }
        loaded
    }
}

/// Writes every byte of `pieces`, in order.
fn write_all_vectored(file: &mut File, pieces: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut left = &mut slices[..];
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match file.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why a fallback file's header does not pass.
enum Fallback {
    Io(io::Error),
    Bad(SnapshotError),
}

/// Checks a file's header against its length, reading only the header.
fn check_header(path: &Path) -> Result<(), Fallback> {
    let file = File::open(path).map_err(Fallback::Io)?;
    let len = file.metadata().map_err(Fallback::Io)?.len();
    let mut head = Vec::with_capacity(snapshot::HEADER_LEN);
    file.take(snapshot::HEADER_LEN as u64).read_to_end(&mut head).map_err(Fallback::Io)?;
    snapshot::verify_header(&head, len).map(|_| ()).map_err(Fallback::Bad)
}

/// Moves a rejected file out of the way (best effort), so the next write
/// does not turn it into the fallback and it stays for inspection.
fn set_aside(path: &Path, _why: &SnapshotError) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(REJECTED_SUFFIX);
    let _ = fs::rename(path, PathBuf::from(aside));
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is still
    // atomic.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(seq: u64) -> Snapshot {
        Snapshot { seq, taken_at: seq as i64 * 1000, ..Default::default() }
    }

    #[test]
    fn writes_keep_the_previous_snapshot_as_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(&tmp.path().join("nested/data")).unwrap();
        assert!(dir.load().snapshot.is_none());
        dir.write(&snapshot::encode(&snap(1))).unwrap();
        dir.write(&snapshot::encode(&snap(2))).unwrap();
        let loaded = dir.load();
        assert_eq!(loaded.snapshot.as_ref().map(|(s, slot, _)| (s.seq, *slot)), Some((2, Slot::Current)));
        assert_eq!(snapshot::decode(&fs::read(dir.path(Slot::Previous)).unwrap()).unwrap().seq, 1);
        let names: Vec<String> = fs::read_dir(tmp.path().join("nested/data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "only the two snapshots remain: {names:?}");
    }

    #[test]
    fn a_snapshot_written_in_pieces_is_their_concatenation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        // More pieces than one system call takes, some of them empty.
        let owned: Vec<Vec<u8>> = (0..3000u32).map(|n| vec![n as u8; (n % 7) as usize * 300]).collect();
        let pieces: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        dir.write_pieces(&pieces).unwrap();
        assert_eq!(fs::read(dir.path(Slot::Current)).unwrap(), owned.concat());
        dir.write_pieces(&[]).unwrap();
        assert_eq!(fs::read(dir.path(Slot::Current)).unwrap(), b"");
        assert_eq!(fs::read(dir.path(Slot::Previous)).unwrap(), owned.concat());
    }

    #[test]
    fn a_corrupt_current_file_falls_back_and_is_set_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        dir.write(&snapshot::encode(&snap(1))).unwrap();
        let mut bad = snapshot::encode(&snap(2));
        let n = bad.len();
        bad[n - 1] ^= 1;
        dir.write(&bad).unwrap();
        let loaded = dir.load();
        assert_eq!(loaded.snapshot.as_ref().map(|(s, slot, _)| (s.seq, *slot)), Some((1, Slot::Previous)));
        assert_eq!(loaded.rejected.len(), 1);
        assert!(loaded.rejected[0].reason.contains("checksum"), "{:?}", loaded.rejected);
        assert!(tmp.path().join("state.snapshot.rejected").exists());
        assert!(!dir.path(Slot::Current).exists());
    }

    #[test]
    fn a_corrupt_fallback_next_to_a_valid_current_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(PREVIOUS), &snapshot::encode(&snap(1))[..28]).unwrap();
        fs::write(tmp.path().join(CURRENT), snapshot::encode(&snap(2))).unwrap();
        let loaded = SnapshotDir::open(tmp.path()).unwrap().load();
        assert_eq!(loaded.snapshot.map(|(s, slot, _)| (s.seq, slot)), Some((2, Slot::Current)));
        assert_eq!(loaded.rejected.len(), 1);
        assert_eq!(loaded.rejected[0].slot, Slot::Previous);
    }

    #[test]
    fn nothing_valid_means_an_empty_start() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(CURRENT), b"garbage").unwrap();
        fs::write(tmp.path().join(PREVIOUS), &snapshot::encode(&snap(3))[..30]).unwrap();
        let loaded = SnapshotDir::open(tmp.path()).unwrap().load();
        assert!(loaded.snapshot.is_none());
        assert_eq!(loaded.rejected.len(), 2);
    }

    #[test]
    fn every_file_written_here_is_named_as_a_snapshot_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        dir.write(&snapshot::encode(&snap(1))).unwrap();
        dir.write(&snapshot::encode(&snap(2))).unwrap();
        fs::write(tmp.path().join(CURRENT), b"torn").unwrap();
        fs::write(tmp.path().join(PREVIOUS), b"torn").unwrap();
        dir.load();
        fs::write(tmp.path().join(".state.snapshot.x1.tmp"), b"half").unwrap();
        let names: Vec<String> =
            fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| is_snapshot_file(n)), "{names:?}");
        for other in ["state.snapshot.bak", "notes.txt", "state.snap", ".state.snapshot.x", "my.state.snapshot"] {
            assert!(!is_snapshot_file(other), "{other}");
        }
    }

    #[test]
    fn leftover_temporary_files_are_removed_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join(".state.snapshot.abc123.tmp");
        fs::write(&stale, b"half a snapshot").unwrap();
        SnapshotDir::open(tmp.path()).unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let e = SnapshotDir::open(&file.join("data")).unwrap_err();
        assert!(e.to_string().starts_with("data directory "), "{e}");
        assert!(e.to_string().contains("cannot create it"), "{e}");
    }
}
