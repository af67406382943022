//! A FAT32 image file, formatted in user space with `fatfs`: the drive `tessera demo` offers
//! in device mode, so that a person trying the terminal sees the hardened terminal's way of
//! writing (straight to a FAT file system, never mounted) without a USB stick or root.
//!
//! The image is sparse (only the written sectors take room on disk) and made under a temporary
//! name, then renamed: an interrupted start leaves no half-formatted image under the real name.

use std::fs::{File, OpenOptions};
use std::path::Path;

use fatfs::{FatType, FormatVolumeOptions};

use crate::error::BackupError;

/// The demo image's size: 64 MiB, FAT32 with 512-byte clusters (FAT32 needs at least 65,525
/// clusters, and 64 MiB holds about 130,000).
pub const DEMO_IMAGE_LEN: u64 = 64 << 20;

/// The smallest image made: below it FAT32 cannot be formatted.
pub const MIN_IMAGE_LEN: u64 = 34 << 20;

/// The volume label written into the image.
const LABEL: [u8; 11] = *b"TESSERA    ";

/// Makes a FAT32 image of `len` bytes at `path` unless a file is already there; says whether
/// it made one. An existing file is left as it is (it holds the backups written to it).
pub fn ensure_fat_image(path: &Path, len: u64) -> Result<bool, BackupError> {
    if path.exists() {
        return Ok(false);
    }
    if len < MIN_IMAGE_LEN {
        return Err(BackupError::Fat {
            op: "format",
            detail: format!(
                "{}: {len} bytes is too small for FAT32 (at least {MIN_IMAGE_LEN})",
                path.display()
            ),
        });
    }
    let scratch = path.with_extension("img.new");
    let io = |op, e| BackupError::io(op, scratch.display(), e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&scratch)
        .map_err(|e| io("create", e))?;
    file.set_len(len).map_err(|e| io("size", e))?;
    let options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .volume_label(LABEL);
    // `format_volume` takes the device by value; a clone of the handle keeps ours for the sync.
    let device = file.try_clone().map_err(|e| io("open", e))?;
    fatfs::format_volume(device, options).map_err(|e| BackupError::Fat {
        op: "format",
        detail: format!("{}: {e}", scratch.display()),
    })?;
    file.sync_all().map_err(|e| io("sync", e))?;
    drop(file);
    std::fs::rename(&scratch, path).map_err(|e| BackupError::io("rename", path.display(), e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| BackupError::io("sync", dir.display(), e))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::{BackupTarget, FatTarget};

    #[test]
    fn an_image_is_made_once_as_fat32_and_then_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drive.img");
        assert!(ensure_fat_image(&path, DEMO_IMAGE_LEN).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), DEMO_IMAGE_LEN);
        assert!(!dir.path().join("drive.img.new").exists());
        let fs = fatfs::FileSystem::new(File::open(&path).unwrap(), fatfs::FsOptions::new());
        assert_eq!(fs.unwrap().fat_type(), FatType::Fat32);
        let mut target = FatTarget::open(&path).unwrap();
        assert!(target.free_space().unwrap() > 60 << 20);
        assert!(target.list().unwrap().is_empty());
        target.close().unwrap();
        std::fs::write(dir.path().join("marker"), b"").unwrap();
        // Made already: not formatted again (its backups stay).
        let before = std::fs::read(&path).unwrap();
        assert!(!ensure_fat_image(&path, DEMO_IMAGE_LEN).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let small = dir.path().join("small.img");
        assert!(ensure_fat_image(&small, 1 << 20).is_err());
        assert!(!small.exists());
    }
}
