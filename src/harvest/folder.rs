//! The definitions folder on disk: atomic writes of a new set (reads are
//! `DefinitionSet::read_dir`'s).
//!
//! Must not depend on anything but `definitions::DefinitionFile`.

use std::path::Path;

use crate::definitions::DefinitionFile;

/// Writes `files` into `dir` (created if missing), each through a temporary
/// file and a rename so no reader sees a partly written file, then removes
/// the `*.rhai` files that are not part of the set.
pub fn write_files(dir: &Path, files: &[DefinitionFile]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    for file in files {
        let target = dir.join(&file.name);
        let temporary = dir.join(format!(".{}.tmp", file.name));
        {
            let mut out = std::fs::File::create(&temporary)?;
            out.write_all(file.source.as_bytes())?;
            out.sync_all()?;
        }
        std::fs::rename(&temporary, &target)?;
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "rhai") && !files.iter().any(|f| f.name == name) {
            std::fs::remove_file(&path)?;
        }
    }
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}
