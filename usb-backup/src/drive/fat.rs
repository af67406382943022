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

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::panic::AssertUnwindSafe;

use ed25519_dalek::VerifyingKey;
use fatfs::{FileSystem, FsOptions};

use super::name::{BackupName, Leftover};
use super::{BackupTarget, ListedBackup, PendingBackup, StoredBackup, space_needed};
use crate::container::{Header, Verified, WrittenBackup, verify_offline};
use crate::error::BackupError;

/// A FAT file system on a block device or image, opened in user space.
///
/// Untrusted media can hold a crafted file system, and the FAT library may panic on one
/// instead of returning an error. Every call into it is contained ([`std::panic::catch_unwind`]):
/// a panic becomes [`BackupError::Fat`] saying the file system is damaged, and the target is
/// then *broken*: it refuses every further call and writes nothing more (not even the
/// unmount's summary), so a half-understood file system is never written to. Whatever was
/// being written then is a `.partial` file at most, which no reader takes for a backup.
pub struct FatTarget<IO: Read + Write + Seek> {
    /// `None` once closed (or let go, broken).
    fs: Option<FileSystem<Bounded<IO>>>,
    /// A second handle on the same device, to sync it and drop its cached pages.
    sync: Option<File>,
    label: String,
    broken: Cell<bool>,
}

impl<IO: Read + Write + Seek> std::fmt::Debug for FatTarget<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatTarget")
            .field("label", &self.label)
            .field("broken", &self.broken.get())
            .finish_non_exhaustive()
    }
}

impl FatTarget<File> {
    /// Opens the FAT file system on a block device (a partition such as `/dev/sdb1`) or an
    /// image file.
    pub fn open(path: &std::path::Path) -> Result<FatTarget<File>, BackupError> {
        let mounts = std::path::Path::new("/proc/self/mountinfo");
        if let Some(point) = super::discover::mount_point_of(mounts, path) {
            return Err(BackupError::Fat {
                op: "open",
                detail: format!(
                    "{} is mounted at {}: device mode writes the file system itself and never \
                     shares it with the kernel; unmount it first, or write to the mounted \
                     directory instead (--to)",
                    path.display(),
                    point.display()
                ),
            });
        }
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

/// What a contained panic of the FAT library is reported as.
const DAMAGED: &str = "the file system on the drive is damaged or crafted (the FAT reader \
                       stopped); nothing more is written to it: check it with fsck.fat, or use \
                       another drive";

thread_local! {
    /// Set on this thread while a FAT call runs contained.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic now would be one of the FAT library's, contained and reported as an error.
/// A panic hook consults it: the process's hook runs even for a panic that is caught, and a
/// TUI's hook restores the terminal, which must not happen while the TUI goes on.
pub fn panic_is_contained() -> bool {
    CONTAINING.with(Cell::get)
}

/// Runs `f`, turning a panic inside it into [`BackupError::Fat`] saying the file system is damaged.
fn catch<T>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let outer = CONTAINING.with(|c| c.replace(true));
    let caught = std::panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    match caught {
        Ok(result) => result,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(BackupError::Fat {
                op,
                detail: format!("{DAMAGED} ({})", why.chars().take(200).collect::<String>()),
            })
        }
    }
}

impl<IO: Read + Write + Seek> FatTarget<IO> {
    /// The FAT file system on `io`, called `label` on screen.
    pub fn new(io: IO, label: impl Into<String>) -> Result<FatTarget<IO>, BackupError> {
        let io = Bounded::new(io).map_err(|e| fat("mount", e))?;
        let fs = catch("mount", || {
            FileSystem::new(io, FsOptions::new()).map_err(|e| fat("mount", e))
        })?;
        Ok(FatTarget {
            fs: Some(fs),
            sync: None,
            label: label.into(),
            broken: Cell::new(false),
        })
    }

    /// Flushes the file system's state (FSInfo, clean flag) and closes it.
    pub fn close(mut self) -> Result<(), BackupError> {
        let fs = self.take_fs()?;
        catch("unmount", || fs.unmount().map_err(|e| fat("unmount", e)))
    }

    /// Whether a contained panic stopped this target.
    pub fn is_broken(&self) -> bool {
        self.broken.get()
    }

    fn take_fs(&mut self) -> Result<FileSystem<Bounded<IO>>, BackupError> {
        if self.broken.get() {
            return Err(BackupError::Fat {
                op: "unmount",
                detail: DAMAGED.to_owned(),
            });
        }
        self.fs.take().ok_or(BackupError::Fat {
            op: "unmount",
            detail: "the file system was closed".to_owned(),
        })
    }

    /// Runs `f` on the file system, containing a panic (after which the target is broken).
    fn with_fs<'s, T>(
        &'s self,
        op: &'static str,
        f: impl FnOnce(&'s FileSystem<Bounded<IO>>) -> Result<T, BackupError>,
    ) -> Result<T, BackupError> {
        let fs = match (&self.fs, self.broken.get()) {
            (Some(fs), false) => fs,
            (_, true) => {
                return Err(BackupError::Fat {
                    op,
                    detail: DAMAGED.to_owned(),
                });
            }
            (None, false) => {
                return Err(BackupError::Fat {
                    op,
                    detail: "the file system was closed".to_owned(),
                });
            }
        };
        let result = catch(op, || f(fs));
        if matches!(&result, Err(BackupError::Fat { detail, .. }) if detail.starts_with(DAMAGED)) {
            self.broken.set(true);
        }
        result
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

    fn exists(&self, name: &str) -> Result<bool, BackupError> {
        self.with_fs("open", |fs| Ok(fs.root_dir().open_file(name).is_ok()))
    }

    /// Every file in the root directory: name and length.
    fn files(&self) -> Result<Vec<(String, u64)>, BackupError> {
        self.with_fs("list", |fs| {
            let mut out = Vec::new();
            for entry in fs.root_dir().iter() {
                let entry = entry.map_err(|e| fat("list", e))?;
                if entry.is_file() {
                    out.push((entry.file_name(), entry.len()));
                }
            }
            Ok(out)
        })
    }
}

impl<IO: Read + Write + Seek> Drop for FatTarget<IO> {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.take() {
            if self.broken.get() {
                // Its unmount would write to a file system it does not understand.
                std::mem::forget(fs);
            } else {
                let _ = catch("unmount", || {
                    drop(fs);
                    Ok(())
                });
            }
        }
    }
}

/// The device as the file system may use it: no read, write or seek past its end. A crafted
/// boot sector can claim a volume larger than the drive; the FAT library believes it, and would
/// then write far past the end (growing an image file without bound, or failing late on a
/// device). Here that is an error at the first such access.
struct Bounded<IO> {
    inner: IO,
    len: u64,
    pos: u64,
}

impl<IO: Seek> Bounded<IO> {
    fn new(mut inner: IO) -> std::io::Result<Bounded<IO>> {
        let len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        Ok(Bounded { inner, len, pos: 0 })
    }
}

impl<IO> Bounded<IO> {
    fn beyond(&self) -> std::io::Error {
        std::io::Error::other(format!(
            "the file system reaches past the end of the drive ({} bytes): its boot sector is \
             damaged or crafted",
            self.len
        ))
    }
}

impl<IO: Read> Read for Bounded<IO> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        if room == 0 && !buf.is_empty() {
            return Err(self.beyond());
        }
        let n = self.inner.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<IO: Write> Write for Bounded<IO> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.pos.saturating_add(buf.len() as u64) > self.len {
            return Err(self.beyond());
        }
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<IO: Seek> Seek for Bounded<IO> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) if p <= self.len => {
                self.pos = self.inner.seek(SeekFrom::Start(p))?;
                Ok(self.pos)
            }
            _ => Err(self.beyond()),
        }
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
        self.with_fs("free space", |fs| {
            let stats = fs.stats().map_err(|e| fat("free space", e))?;
            Ok(u64::from(stats.free_clusters()) * u64::from(stats.cluster_size()))
        })
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
            if self.exists(&taken)? {
                return Err(BackupError::Exists { path: taken.into() });
            }
        }
        let target: &'a FatTarget<IO> = self;
        let file = target.with_fs("create", |fs| {
            fs.root_dir()
                .create_file(&name.partial_name())
                .map_err(|e| fat("create", e))
        })?;
        Ok(Box::new(FatPending {
            target,
            file: Some(file),
            name: name.clone(),
        }))
    }

    fn list(&mut self) -> Result<Vec<ListedBackup>, BackupError> {
        let mut out = Vec::new();
        for (file_name, len) in self.files()? {
            let Ok(name) = BackupName::parse(&file_name) else {
                continue;
            };
            let header = self.with_fs("read", |fs| {
                let mut file = fs
                    .root_dir()
                    .open_file(&file_name)
                    .map_err(|e| fat("open", e))?;
                Ok(Header::read_from(&mut file))
            })?;
            out.push(ListedBackup {
                file_name,
                name,
                len,
                header: header.map_err(|e| e.to_string()),
            });
        }
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    fn remove(&mut self, file_name: &str) -> Result<(), BackupError> {
        self.with_fs("remove", |fs| {
            fs.root_dir()
                .remove(file_name)
                .map_err(|e| fat("remove", e))
        })?;
        self.sync_device()
    }

    fn verify(&mut self, file_name: &str, hsm_key: &VerifyingKey) -> Result<Verified, BackupError> {
        self.with_fs("verify", |fs| {
            let file = fs
                .root_dir()
                .open_file(file_name)
                .map_err(|e| fat("open", e))?;
            verify_offline(BufReader::with_capacity(1 << 20, file), hsm_key)
        })
    }

    fn leftovers(&mut self) -> Result<Vec<Leftover>, BackupError> {
        let mut out: Vec<Leftover> = self
            .files()?
            .into_iter()
            .filter_map(|(name, len)| Leftover::parse(&name, len))
            .collect();
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<(), BackupError> {
        let checked = Leftover::parse(&leftover.file_name, 0).ok_or(BackupError::BadName {
            name: leftover.file_name.clone(),
            problem: "it is not a .partial or .failed backup file",
        })?;
        self.remove(&checked.file_name)
    }

    fn close(mut self: Box<Self>) -> Result<(), BackupError> {
        let fs = self.take_fs()?;
        catch("unmount", || fs.unmount().map_err(|e| fat("unmount", e)))?;
        self.sync_device()
    }

    fn open_backup<'a>(
        &'a mut self,
        file_name: &str,
    ) -> Result<(Box<dyn Read + 'a>, u64), BackupError> {
        BackupName::parse(file_name)?;
        let len = self
            .files()?
            .into_iter()
            .find(|(name, _)| name == file_name)
            .map(|(_, len)| len)
            .ok_or_else(|| BackupError::Fat {
                op: "open",
                detail: format!("no file {file_name} on the drive"),
            })?;
        let target: &'a FatTarget<IO> = self;
        let file = target.with_fs("open", |fs| {
            fs.root_dir()
                .open_file(file_name)
                .map_err(|e| fat("open", e))
        })?;
        Ok((
            Box::new(Contained {
                target,
                file: Some(file),
            }),
            len,
        ))
    }
}

/// A file on the FAT file system read with every call contained.
struct Contained<'a, IO: Read + Write + Seek> {
    target: &'a FatTarget<IO>,
    file: Option<fatfs::File<'a, Bounded<IO>>>,
}

impl<IO: Read + Write + Seek> Read for Contained<'_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = self.file.as_mut();
        guarded_io(self.target, "read", || match file {
            Some(f) => f.read(buf),
            None => Err(std::io::Error::other("the file is closed")),
        })
    }
}

impl<IO: Read + Write + Seek> Drop for Contained<'_, IO> {
    fn drop(&mut self) {
        release(self.target, self.file.take());
    }
}

/// Lets a fatfs file go (its drop writes its directory entry): contained, and not at all once
/// the target is broken.
fn release<IO: Read + Write + Seek>(
    target: &FatTarget<IO>,
    file: Option<fatfs::File<'_, Bounded<IO>>>,
) {
    let Some(file) = file else { return };
    if target.broken.get() {
        std::mem::forget(file);
    } else if catch("close", || {
        drop(file);
        Ok(())
    })
    .is_err()
    {
        target.broken.set(true);
    }
}

/// An I/O call into fatfs, contained: a panic marks the target broken and is an I/O error.
fn guarded_io<IO: Read + Write + Seek, T>(
    target: &FatTarget<IO>,
    op: &'static str,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    if target.broken.get() {
        return Err(std::io::Error::other(DAMAGED));
    }
    match catch(op, || f().map_err(|e| fat(op, e))) {
        Ok(v) => Ok(v),
        Err(BackupError::Fat { detail, .. }) if detail.starts_with(DAMAGED) => {
            target.broken.set(true);
            Err(std::io::Error::other(detail))
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

struct FatPending<'a, IO: Read + Write + Seek> {
    target: &'a FatTarget<IO>,
    file: Option<fatfs::File<'a, Bounded<IO>>>,
    name: BackupName,
}

impl<IO: Read + Write + Seek> Write for FatPending<'_, IO> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self.file.as_mut();
        guarded_io(self.target, "write", || match file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("the backup file is closed")),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let file = self.file.as_mut();
        guarded_io(self.target, "flush", || file.map_or(Ok(()), |f| f.flush()))
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
        guarded_io(target, "flush", || file.flush()).map_err(|e| BackupError::Fat {
            op: "flush",
            detail: e.to_string(),
        })?;
        release(target, Some(file));
        target.sync_device()?;
        let (partial, final_name) = (self.name.partial_name(), self.name.file_name());
        target.with_fs("rename", |fs| {
            let root = fs.root_dir();
            root.rename(&partial, &root, &final_name)
                .map_err(|e| fat("rename", e))
        })?;
        target.sync_device()?;
        target.drop_cache();
        let check = target.with_fs("read back", |fs| {
            let file = fs
                .root_dir()
                .open_file(&final_name)
                .map_err(|e| fat("open", e))?;
            let verified = verify_offline(BufReader::with_capacity(1 << 20, file), hsm_key)?;
            verified.matches(written)?;
            Ok(verified)
        });
        match check {
            Ok(verified) => Ok(StoredBackup {
                target: target.describe(),
                file_name: final_name,
                verified,
            }),
            Err(e) => {
                let failed = self.name.failed_name();
                let _ = target.with_fs("rename", |fs| {
                    let root = fs.root_dir();
                    root.rename(&final_name, &root, &failed)
                        .map_err(|e| fat("rename", e))
                });
                let _ = target.sync_device();
                Err(e)
            }
        }
    }
}

impl<IO: Read + Write + Seek> Drop for FatPending<'_, IO> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            release(self.target, Some(file));
            let partial = self.name.partial_name();
            let _ = self.target.with_fs("remove", |fs| {
                fs.root_dir().remove(&partial).map_err(|e| fat("remove", e))
            });
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
