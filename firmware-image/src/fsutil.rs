//! Atomic file writes for the tool's outputs: `<name>.partial`, fsync, rename, fsync of the
//! directory. A crash leaves the old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::FirmwareError;

/// `path` with `.partial` appended to its file name.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    path.with_file_name(name)
}

/// The directory `path` is in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `path` atomically with what `body` writes to the file.
pub(crate) fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), FirmwareError> {
    let partial = partial_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)?;
        body(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&partial, path)?;
        File::open(parent_dir(path))?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&partial);
        FirmwareError::io("writing", path)(e)
    })
}
