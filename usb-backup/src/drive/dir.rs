//! Laptop mode: a mounted directory (the drive, or any directory the user names).
//!
//! Write order: `NAME.partial` created new (never over an existing file), written (with
//! writeback started behind the writer, [`WritebackFile`]), fsync'd;
//! renamed to `NAME` without replacing (`renameat2(RENAME_NOREPLACE)`); the directory fsync'd;
//! the file's cached pages dropped and the file read back from the drive and verified against
//! what was written. Only then is it reported stored; a failed read-back renames it to
//! `NAME.failed`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::name::{BackupName, Leftover, PARTIAL_SUFFIX};
use super::writeback::WritebackFile;
use super::{BackupTarget, ListedBackup, PendingBackup, StoredBackup, space_needed};
use crate::container::{Header, WrittenBackup, verify_offline};
use crate::error::BackupError;

/// A directory backups are written to.
#[derive(Clone, Debug)]
pub struct DirTarget {
    dir: PathBuf,
}

impl DirTarget {
    /// Backups in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> DirTarget {
        DirTarget { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl BackupTarget for DirTarget {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn free_space(&mut self) -> Result<u64, BackupError> {
        let st = rustix::fs::statvfs(&self.dir)
            .map_err(|e| BackupError::io("statvfs", self.dir.display(), e.into()))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn begin<'a>(
        &'a mut self,
        name: &BackupName,
        file_len: u64,
    ) -> Result<Box<dyn PendingBackup + 'a>, BackupError> {
        let free = self.free_space()?;
        if free < space_needed(file_len) {
            return Err(BackupError::NoSpace {
                target: self.describe(),
                need: space_needed(file_len),
                free,
            });
        }
        let final_path = self.path(&name.file_name());
        if final_path.exists() {
            return Err(BackupError::Exists { path: final_path });
        }
        let partial = self.path(&name.partial_name());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => BackupError::Exists {
                    path: partial.clone(),
                },
                _ => BackupError::io("create", partial.display(), e),
            })?;
        Ok(Box::new(DirPending {
            target: self,
            name: name.clone(),
            file: Some(WritebackFile::new(file)),
            partial,
            final_path,
        }))
    }

    fn list(&mut self) -> Result<Vec<ListedBackup>, BackupError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| BackupError::io("list", self.dir.display(), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| BackupError::io("list", self.dir.display(), e))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Ok(name) = BackupName::parse(&file_name) else {
                continue;
            };
            let path = entry.path();
            let header = File::open(&path)
                .map_err(|e| BackupError::io("open", path.display(), e))
                .and_then(|mut f| Header::read_from(&mut f));
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
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
        let path = self.path(file_name);
        std::fs::remove_file(&path).map_err(|e| BackupError::io("remove", path.display(), e))?;
        sync_dir(&self.dir)
    }

    fn verify(
        &mut self,
        file_name: &str,
        hsm_key: &VerifyingKey,
    ) -> Result<crate::Verified, BackupError> {
        let path = self.path(file_name);
        let file = File::open(&path).map_err(|e| BackupError::io("open", path.display(), e))?;
        verify_offline(std::io::BufReader::with_capacity(1 << 20, file), hsm_key)
    }

    fn leftovers(&mut self) -> Result<Vec<Leftover>, BackupError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| BackupError::io("list", self.dir.display(), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| BackupError::io("list", self.dir.display(), e))?;
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if let Some(l) = Leftover::parse(&entry.file_name().to_string_lossy(), len) {
                out.push(l);
            }
        }
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

    fn open_backup<'a>(
        &'a mut self,
        file_name: &str,
    ) -> Result<(Box<dyn std::io::Read + 'a>, u64), BackupError> {
        BackupName::parse(file_name)?;
        let path = self.path(file_name);
        let file = File::open(&path).map_err(|e| BackupError::io("open", path.display(), e))?;
        let len = file
            .metadata()
            .map_err(|e| BackupError::io("open", path.display(), e))?
            .len();
        Ok((Box::new(file), len))
    }
}

struct DirPending<'a> {
    target: &'a mut DirTarget,
    name: BackupName,
    file: Option<WritebackFile>,
    partial: PathBuf,
    final_path: PathBuf,
}

impl Write for DirPending<'_> {
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

impl PendingBackup for DirPending<'_> {
    fn commit(
        mut self: Box<Self>,
        written: &WrittenBackup,
        hsm_key: &VerifyingKey,
    ) -> Result<StoredBackup, BackupError> {
        let file = self
            .file
            .take()
            .ok_or(BackupError::Pipeline { stage: "writing" })?
            .into_inner();
        file.sync_all()
            .map_err(|e| BackupError::io("fsync", self.partial.display(), e))?;
        drop(file);
        rename_noreplace(&self.partial, &self.final_path)?;
        sync_dir(&self.target.dir)?;
        match read_back(&self.final_path, written, hsm_key) {
            Ok(verified) => Ok(StoredBackup {
                target: self.target.describe(),
                file_name: self.name.file_name(),
                verified,
            }),
            Err(e) => {
                // Keep the evidence, under a name no one takes for a backup.
                let failed = self.target.path(&self.name.failed_name());
                let _ = std::fs::rename(&self.final_path, failed);
                let _ = sync_dir(&self.target.dir);
                Err(e)
            }
        }
    }
}

impl Drop for DirPending<'_> {
    fn drop(&mut self) {
        // Abandoned before commit: the partial file is of no use to anyone.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Reads the file back from the drive, not from the page cache, and checks it is the backup
/// written.
fn read_back(
    path: &Path,
    written: &WrittenBackup,
    hsm_key: &VerifyingKey,
) -> Result<crate::Verified, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("open", path.display(), e))?;
    // Clean pages only (the file was fsync'd): dropping them makes the next reads hit the drive.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    let verified = verify_offline(std::io::BufReader::with_capacity(1 << 20, file), hsm_key)?;
    verified.matches(written)?;
    Ok(verified)
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<(), BackupError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(BackupError::Exists {
            path: to.to_path_buf(),
        }),
        // File systems without RENAME_NOREPLACE: check, then rename (one writer per drive).
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            if to.exists() {
                return Err(BackupError::Exists {
                    path: to.to_path_buf(),
                });
            }
            std::fs::rename(from, to).map_err(|e| BackupError::io("rename", from.display(), e))
        }
        Err(e) => Err(BackupError::io("rename", from.display(), e.into())),
    }
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io("fsync", dir.display(), e))
}

/// Whether a name is a partial file left by an interrupted backup.
pub fn is_partial(file_name: &str) -> bool {
    file_name.ends_with(PARTIAL_SUFFIX)
}

/// Any file written by the backups' rules (for other evidence kept on drives, such as log
/// exports): `NAME.partial` created new, written, fsync'd, renamed to `NAME` without replacing,
/// the directory fsync'd. Dropped before [`commit`](Self::commit), the partial file is removed.
pub struct NewFile {
    file: Option<WritebackFile>,
    dir: PathBuf,
    partial: PathBuf,
    final_path: PathBuf,
}

impl NewFile {
    /// Starts `name` in `dir`; refused if `name` or its partial file exists.
    pub fn create(dir: &Path, name: &str) -> Result<NewFile, BackupError> {
        let final_path = dir.join(name);
        if final_path.exists() {
            return Err(BackupError::Exists { path: final_path });
        }
        let partial = dir.join(format!("{name}{PARTIAL_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => BackupError::Exists {
                    path: partial.clone(),
                },
                _ => BackupError::io("create", partial.display(), e),
            })?;
        Ok(NewFile {
            file: Some(WritebackFile::new(file)),
            dir: dir.to_path_buf(),
            partial,
            final_path,
        })
    }

    /// Like [`commit`](Self::commit), under `name` in the same directory instead: for a name
    /// known only once the content is (never replacing a file either).
    pub fn commit_as(mut self, name: &str) -> Result<PathBuf, BackupError> {
        self.final_path = self.dir.join(name);
        self.commit()
    }

    /// Makes the file durable under its name; returns its path. Read it back with
    /// [`open_from_drive`] before trusting it is there.
    pub fn commit(mut self) -> Result<PathBuf, BackupError> {
        let file = self
            .file
            .take()
            .ok_or(BackupError::Pipeline { stage: "writing" })?
            .into_inner();
        let synced = file
            .sync_all()
            .map_err(|e| BackupError::io("fsync", self.partial.display(), e));
        drop(file);
        if let Err(e) = synced.and_then(|()| rename_noreplace(&self.partial, &self.final_path)) {
            let _ = std::fs::remove_file(&self.partial);
            return Err(e);
        }
        sync_dir(&self.dir)?;
        Ok(self.final_path.clone())
    }
}

impl Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("the file is closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Opens a written, fsync'd file to read it back from the drive rather than the page cache.
pub fn open_from_drive(path: &Path) -> Result<File, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("open", path.display(), e))?;
    // Clean pages only (the file was fsync'd): dropping them makes the next reads hit the drive.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_never_replaces_and_leaves_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = NewFile::create(dir.path(), "a.jsonl").unwrap();
        f.write_all(b"one\n").unwrap();
        assert!(dir.path().join("a.jsonl.partial").exists());
        let path = f.commit_as("b.jsonl").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        assert!(!dir.path().join("a.jsonl.partial").exists());
        // Abandoned: the partial file goes; an existing name is never replaced.
        drop(NewFile::create(dir.path(), "c.jsonl").unwrap());
        assert!(!dir.path().join("c.jsonl.partial").exists());
        let mut f = NewFile::create(dir.path(), "d.jsonl").unwrap();
        f.write_all(b"two\n").unwrap();
        assert!(matches!(
            f.commit_as("b.jsonl"),
            Err(BackupError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        assert!(!dir.path().join("d.jsonl.partial").exists());
        assert!(matches!(
            NewFile::create(dir.path(), "b.jsonl"),
            Err(BackupError::Exists { .. })
        ));
    }
}
