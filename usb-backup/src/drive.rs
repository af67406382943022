//! Drives: finding them ([`discover`]), admitting them ([`allow`]), and writing backups to them
//! in laptop mode ([`DirTarget`], a mounted directory) or device mode ([`FatTarget`], a FAT file
//! system in user space). Both targets follow one contract ([`BackupTarget`]): a new file under
//! a temporary name, made durable, renamed, then read back from the drive and verified against
//! what was written before it is reported stored. [`write_mirrored`] writes one backup to two
//! targets in one run, each verified on its own; [`apply_retention`] then keeps the newest K.

use std::io::Write;

use ed25519_dalek::VerifyingKey;

use crate::container::{Header, Verified, WrittenBackup};
use crate::error::BackupError;

pub mod allow;
mod dir;
pub mod discover;
mod fat;
mod image;
mod name;
mod writeback;

pub use dir::{DirTarget, NewFile, is_partial, open_from_drive};
pub use fat::{FatTarget, TornDevice, panic_is_contained};
pub use image::{DEMO_IMAGE_LEN, MIN_IMAGE_LEN, ensure_fat_image};
pub use name::{BACKUP_EXTENSION, BackupName, FAILED_SUFFIX, Leftover, PARTIAL_SUFFIX};
pub use writeback::{WRITEBACK_WINDOW, WritebackFile};

/// Room kept free beyond the file itself, for directory entries and cluster rounding.
pub const SPACE_MARGIN: u64 = 1 << 20;

/// The free space a backup file of `file_len` bytes needs.
pub fn space_needed(file_len: u64) -> u64 {
    file_len.saturating_add(SPACE_MARGIN)
}

/// Somewhere backups are written: a directory or a FAT file system.
pub trait BackupTarget {
    /// What to call it on screen.
    fn describe(&self) -> String;
    /// Bytes free.
    fn free_space(&mut self) -> Result<u64, BackupError>;
    /// Starts `name` (`file_len` bytes): checks free space, refuses an existing name, creates the
    /// temporary file.
    fn begin<'a>(
        &'a mut self,
        name: &BackupName,
        file_len: u64,
    ) -> Result<Box<dyn PendingBackup + 'a>, BackupError>;
    /// The finished backups (by name), newest first, with their headers (or why not).
    fn list(&mut self) -> Result<Vec<ListedBackup>, BackupError>;
    /// Removes a finished backup.
    fn remove(&mut self, file_name: &str) -> Result<(), BackupError>;
    /// Verifies a finished backup offline.
    fn verify(&mut self, file_name: &str, hsm_key: &VerifyingKey) -> Result<Verified, BackupError>;
    /// The files interrupted or failed writes left (`NAME.partial`, `NAME.failed`), never
    /// listed as backups. They stay until a person removes them ([`clean_leftovers`]): one may
    /// be another terminal's write still in progress, and each is evidence of a failed write
    /// (a pulled or failing drive) that should be seen, not silently tidied away.
    fn leftovers(&mut self) -> Result<Vec<Leftover>, BackupError>;
    /// Removes one leftover file (refused for any name that is not one).
    fn remove_leftover(&mut self, leftover: &Leftover) -> Result<(), BackupError>;
    /// Makes everything written durable and lets the target go (a FAT file system writes its
    /// free-space summary and clean flag). Dropping a target does the same where it can.
    fn close(self: Box<Self>) -> Result<(), BackupError> {
        Ok(())
    }
    /// Reads a finished backup's bytes from the start (to upload for a restore), with its length.
    fn open_backup<'a>(
        &'a mut self,
        file_name: &str,
    ) -> Result<(Box<dyn std::io::Read + 'a>, u64), BackupError>;
}

/// Removes every leftover on `target` (interrupted `.partial` files; with `failed`, also
/// `.failed` ones); returns the names removed. Finished backups are never touched.
pub fn clean_leftovers(
    target: &mut dyn BackupTarget,
    failed: bool,
) -> Result<Vec<String>, BackupError> {
    let mut removed = Vec::new();
    for leftover in target.leftovers()? {
        if leftover.failed && !failed {
            continue;
        }
        target.remove_leftover(&leftover)?;
        removed.push(leftover.file_name);
    }
    Ok(removed)
}

/// A backup being written to a target. Dropped without [`PendingBackup::commit`], its temporary
/// file is removed where possible, and is never taken for a backup in any case.
pub trait PendingBackup: Write {
    /// Makes the file durable under its final name, reads it back and verifies it.
    fn commit(
        self: Box<Self>,
        written: &WrittenBackup,
        hsm_key: &VerifyingKey,
    ) -> Result<StoredBackup, BackupError>;
}

/// A backup written, read back from the drive and verified.
#[derive(Clone, Debug)]
pub struct StoredBackup {
    /// The target's description.
    pub target: String,
    /// The file's name.
    pub file_name: String,
    /// The read-back verification.
    pub verified: Verified,
}

/// A backup file found on a target, with its header facts (read without decrypting).
#[derive(Debug)]
pub struct ListedBackup {
    /// The file's name.
    pub file_name: String,
    /// What the name says.
    pub name: BackupName,
    /// The file's length.
    pub len: u64,
    /// The header, or why it could not be read.
    pub header: Result<Header, String>,
}

/// Writes one backup to every target in one run: `produce` writes the whole backup once (from
/// the link, or [`crate::seal_pipelined`]) into a writer that copies every byte to each target.
/// A target that fails drops out without stopping the others. The outer error is for a backup
/// no target could take; the inner results say, per target in order, stored and verified or why
/// not.
pub fn write_mirrored(
    targets: &mut [&mut dyn BackupTarget],
    name: &BackupName,
    file_len: u64,
    hsm_key: &VerifyingKey,
    produce: impl FnOnce(&mut dyn Write) -> Result<WrittenBackup, BackupError>,
) -> Result<Vec<Result<StoredBackup, BackupError>>, BackupError> {
    let mut fan = FanOut {
        pending: Vec::new(),
        errors: Vec::new(),
    };
    for target in targets.iter_mut() {
        match target.begin(name, file_len) {
            Ok(p) => {
                fan.pending.push(Some(p));
                fan.errors.push(None);
            }
            Err(e) => {
                fan.pending.push(None);
                fan.errors.push(Some(e));
            }
        }
    }
    if fan.pending.iter().all(Option::is_none) {
        return Err(fan
            .errors
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(BackupError::Pipeline { stage: "writing" }));
    }
    let written = produce(&mut fan)?;
    let FanOut { pending, errors } = fan;
    Ok(pending
        .into_iter()
        .zip(errors)
        .map(|(p, e)| match (p, e) {
            (_, Some(e)) => Err(e),
            (Some(p), None) => p.commit(&written, hsm_key),
            (None, None) => Err(BackupError::Pipeline { stage: "writing" }),
        })
        .collect())
}

/// Writes one backup to one target ([`write_mirrored`] with one target).
pub fn write_backup(
    target: &mut dyn BackupTarget,
    name: &BackupName,
    file_len: u64,
    hsm_key: &VerifyingKey,
    produce: impl FnOnce(&mut dyn Write) -> Result<WrittenBackup, BackupError>,
) -> Result<StoredBackup, BackupError> {
    let mut results = write_mirrored(&mut [target], name, file_len, hsm_key, produce)?;
    results
        .pop()
        .unwrap_or(Err(BackupError::Pipeline { stage: "writing" }))
}

struct FanOut<'a> {
    pending: Vec<Option<Box<dyn PendingBackup + 'a>>>,
    errors: Vec<Option<BackupError>>,
}

impl Write for FanOut<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut live = 0;
        for (slot, error) in self.pending.iter_mut().zip(self.errors.iter_mut()) {
            let Some(p) = slot.as_mut() else { continue };
            match p.write_all(buf) {
                Ok(()) => live += 1,
                Err(e) => {
                    *error = Some(BackupError::io("write", "backup file", e));
                    *slot = None; // dropping it removes its partial file
                }
            }
        }
        if live == 0 {
            return Err(std::io::Error::other("every target of the backup failed"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for p in self.pending.iter_mut().flatten() {
            p.flush()?;
        }
        Ok(())
    }
}

/// Keeps the newest `keep` backups of `partition_id` on `target` (at least one) and removes the
/// older ones, but only when `newest`, just stored and verified, is among those kept: the only
/// verified backup is never deleted. Files whose header cannot be read, or names another
/// partition, are left alone. Returns the names removed.
pub fn apply_retention(
    target: &mut dyn BackupTarget,
    partition_id: &str,
    keep: usize,
    newest: &StoredBackup,
) -> Result<Vec<String>, BackupError> {
    let ours: Vec<ListedBackup> = target
        .list()?
        .into_iter()
        .filter(|b| {
            b.name.partition_id == partition_id
                && b.header
                    .as_ref()
                    .is_ok_and(|h| h.facts().partition_id == partition_id)
        })
        .collect();
    let keep = keep.max(1);
    let kept_verified = ours
        .iter()
        .take(keep)
        .any(|b| b.file_name == newest.file_name);
    if !kept_verified || newest.verified.header().facts().partition_id != partition_id {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for old in ours.iter().skip(keep) {
        target.remove(&old.file_name)?;
        removed.push(old.file_name.clone());
    }
    Ok(removed)
}
