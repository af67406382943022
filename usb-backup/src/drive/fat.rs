//! Device mode: a FAT file system written in user space with `fatfs`, straight onto the drive's
//! block device (or an image file), so the kernel never mounts untrusted media.
//!
//! FAT has no atomic rename, and a drive can be pulled at any byte. What makes a torn write
//! detectable is the container, not the file system:
//!
//! 1. The file is created as `NAME.partial`, which no listing takes for a backup.
//! 2. Its bytes go out in file order: header, chunks, digest table, and the trailer's signature
//!    last of all. A backup's exact length follows from its header, and the signature covers
//!    the header hash and the chain of every chunk digest, so any prefix, any file whose size
//!    field ran ahead of its data (zeros or stale clusters), or any mix of old and new sectors
//!    fails [`crate::verify_offline`] with a named reason.
//! 3. The file is flushed and the device synced *before* the rename, so the final name can only
//!    appear once every byte is on the medium. FAT renames by writing the new entry, then
//!    freeing the old: torn in between, both names point at the same complete clusters.
//! 4. After the rename and another sync, the file is read back through the file system (the
//!    device's cached pages dropped first) and verified against what was written.
//!
//! Earlier backups stay intact because FAT allocates the new file only from free clusters; the
//! only shared sectors are the FAT and directory sectors, which are rewritten with the same bytes
//! for every other entry. A device that corrupts sectors it was not asked to write is beyond
//! what any format can promise; verification still reports it.
//!
//! [`TornDevice`] simulates a write torn at byte N below the file system; the tests run the
//! whole device-mode write torn at many offsets.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use ed25519_dalek::VerifyingKey;
use fatfs::{FileSystem, FsOptions};

use super::name::BackupName;
use super::{BackupTarget, ListedBackup, PendingBackup, StoredBackup, space_needed};
use crate::container::{Header, Verified, WrittenBackup, verify_offline};
use crate::error::BackupError;

/// A FAT file system on a block device or image, opened in user space.
pub struct FatTarget<IO: Read + Write + Seek> {
    fs: FileSystem<IO>,
    /// A second handle on the same device, to sync it and drop its cached pages.
    sync: Option<File>,
    label: String,
}

impl<IO: Read + Write + Seek> std::fmt::Debug for FatTarget<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatTarget")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl FatTarget<File> {
    /// Opens the FAT file system on a block device (a partition such as `/dev/sdb1`) or an
    /// image file.
    pub fn open(path: &std::path::Path) -> Result<FatTarget<File>, BackupError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| BackupError::io("open", path.display(), e))?;
        let sync = file
            .try_clone()
            .map_err(|e| BackupError::io("open", path.display(), e))?;
        let mut target = FatTarget::new(file, path.display().to_string())?;
        target.sync = Some(sync);
        Ok(target)
    }
}

impl<IO: Read + Write + Seek> FatTarget<IO> {
    /// The FAT file system on `io`, called `label` on screen.
    pub fn new(io: IO, label: impl Into<String>) -> Result<FatTarget<IO>, BackupError> {
        let fs = FileSystem::new(io, FsOptions::new()).map_err(|e| fat("mount", e))?;
        Ok(FatTarget {
            fs,
            sync: None,
            label: label.into(),
        })
    }

    /// Flushes the file system's state (FSInfo, clean flag) and closes it.
    pub fn close(self) -> Result<(), BackupError> {
        self.fs.unmount().map_err(|e| fat("unmount", e))
    }

    fn sync_device(&self) -> Result<(), BackupError> {
        if let Some(sync) = &self.sync {
            sync.sync_all()
                .map_err(|e| BackupError::io("fsync", &self.label, e))?;
        }
        Ok(())
    }

    fn drop_cache(&self) {
        if let Some(sync) = &self.sync {
            let _ = rustix::fs::fadvise(sync, 0, None, rustix::fs::Advice::DontNeed);
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.fs.root_dir().open_file(name).is_ok()
    }
}

fn fat(op: &'static str, e: std::io::Error) -> BackupError {
    BackupError::Fat {
        op,
        detail: e.to_string(),
    }
}

impl<IO: Read + Write + Seek> BackupTarget for FatTarget<IO> {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn free_space(&mut self) -> Result<u64, BackupError> {
        let stats = self.fs.stats().map_err(|e| fat("free space", e))?;
        Ok(u64::from(stats.free_clusters()) * u64::from(stats.cluster_size()))
    }

    fn begin<'a>(
        &'a mut self,
        name: &BackupName,
        file_len: u64,
    ) -> Result<Box<dyn PendingBackup + 'a>, BackupError> {
        // FAT32 files end below 4 GiB.
        if file_len > u64::from(u32::MAX) {
            return Err(BackupError::NoSpace {
                target: self.describe(),
                need: file_len,
                free: u64::from(u32::MAX),
            });
        }
        let free = self.free_space()?;
        if free < space_needed(file_len) {
            return Err(BackupError::NoSpace {
                target: self.describe(),
                need: space_needed(file_len),
                free,
            });
        }
        for taken in [name.file_name(), name.partial_name()] {
            if self.exists(&taken) {
                return Err(BackupError::Exists { path: taken.into() });
            }
        }
        let target: &'a FatTarget<IO> = self;
        let file = target
            .fs
            .root_dir()
            .create_file(&name.partial_name())
            .map_err(|e| fat("create", e))?;
        Ok(Box::new(FatPending {
            target,
            file: Some(file),
            name: name.clone(),
        }))
    }

    fn list(&mut self) -> Result<Vec<ListedBackup>, BackupError> {
        let mut out = Vec::new();
        for entry in self.fs.root_dir().iter() {
            let entry = entry.map_err(|e| fat("list", e))?;
            let file_name = entry.file_name();
            if !entry.is_file() {
                continue;
            }
            let Ok(name) = BackupName::parse(&file_name) else {
                continue;
            };
            let header = Header::read_from(&mut entry.to_file());
            out.push(ListedBackup {
                file_name,
                name,
                len: entry.len(),
                header: header.map_err(|e| e.to_string()),
            });
        }
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    fn remove(&mut self, file_name: &str) -> Result<(), BackupError> {
        self.fs
            .root_dir()
            .remove(file_name)
            .map_err(|e| fat("remove", e))?;
        self.sync_device()
    }

    fn verify(&mut self, file_name: &str, hsm_key: &VerifyingKey) -> Result<Verified, BackupError> {
        let file = self
            .fs
            .root_dir()
            .open_file(file_name)
            .map_err(|e| fat("open", e))?;
        verify_offline(file, hsm_key)
    }
}

struct FatPending<'a, IO: Read + Write + Seek> {
    target: &'a FatTarget<IO>,
    file: Option<fatfs::File<'a, IO>>,
    name: BackupName,
}

impl<IO: Read + Write + Seek> Write for FatPending<'_, IO> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("the backup file is closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl<IO: Read + Write + Seek> PendingBackup for FatPending<'_, IO> {
    fn commit(
        mut self: Box<Self>,
        written: &WrittenBackup,
        hsm_key: &VerifyingKey,
    ) -> Result<StoredBackup, BackupError> {
        let target = self.target;
        let mut file = self
            .file
            .take()
            .ok_or(BackupError::Pipeline { stage: "writing" })?;
        file.flush().map_err(|e| fat("flush", e))?;
        drop(file);
        target.sync_device()?;
        let root = target.fs.root_dir();
        root.rename(&self.name.partial_name(), &root, &self.name.file_name())
            .map_err(|e| fat("rename", e))?;
        target.sync_device()?;
        target.drop_cache();
        let check = root
            .open_file(&self.name.file_name())
            .map_err(|e| fat("open", e))
            .and_then(|f| verify_offline(f, hsm_key))
            .and_then(|v| v.matches(written).map(|()| v).map_err(BackupError::from));
        match check {
            Ok(verified) => Ok(StoredBackup {
                target: target.describe(),
                file_name: self.name.file_name(),
                verified,
            }),
            Err(e) => {
                let _ = root.rename(&self.name.file_name(), &root, &self.name.failed_name());
                let _ = target.sync_device();
                Err(e)
            }
        }
    }
}

impl<IO: Read + Write + Seek> Drop for FatPending<'_, IO> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            let _ = self.target.fs.root_dir().remove(&self.name.partial_name());
        }
    }
}

/// A device that stops taking writes after `budget` bytes, as a drive pulled (or power lost)
/// mid-write: a write crossing the limit stores its first part and fails, later writes fail.
/// Reads see what was stored.
#[derive(Debug)]
pub struct TornDevice<IO> {
    inner: IO,
    budget: u64,
}

impl<IO> TornDevice<IO> {
    /// `inner` torn after `budget` more bytes written.
    pub fn new(inner: IO, budget: u64) -> TornDevice<IO> {
        TornDevice { inner, budget }
    }

    /// Whether the tear happened.
    pub fn torn(&self) -> bool {
        self.budget == 0
    }
}

impl<IO: Read> Read for TornDevice<IO> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<IO: Seek> Seek for TornDevice<IO> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<IO: Write> Write for TornDevice<IO> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.budget == 0 {
            return Err(std::io::Error::other(
                "the drive is gone (simulated torn write)",
            ));
        }
        let n = (buf.len() as u64).min(self.budget) as usize;
        let n = self.inner.write(&buf[..n])?;
        self.budget -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
