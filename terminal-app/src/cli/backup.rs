//! `tessera backup create|list|verify|restore|clean`: the terminal's half of a backup. The HSM
//! seals the partition and streams the container; the terminal writes it to one or two drives
//! (twice to mirror): a directory (`--to DIR`, laptop mode) or a FAT file system written in
//! user space and never mounted (`--fat-device PATH`, a block device or an image; device
//! mode), through `usb-backup`'s targets (`NAME.partial`, made durable, renamed, then read back
//! from the drive and verified against what the HSM sent), and only then reports success.
//! `verify` proves a file offline against the pinned HSM key; `restore` uploads a file, shows
//! the HSM's dry run and diff, and commits only when told. `list` shows the files interrupted
//! writes left (`.partial`, `.failed`) apart from the backups; only `clean` removes them.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use hsm_link::message::{AdminRequest, AdminResponse, KeyIdList, MAX_RESTORE_CHUNK, RestoreDiff};
use quorum::ceremony::{Link, LinkError};
use serde_json::json;
use usb_backup::drive::{
    BackupName, BackupTarget, DirTarget, FatTarget, PendingBackup, StoredBackup,
};
use usb_backup::{BackupError, Header, Trailer, WrittenBackup, verify_offline};

use super::Shown;
use super::list::utc;
use crate::error::Error;

use hex::encode as hex;

/// The pending files of a backup being received, one per drive, and why a drive dropped out.
type Pending<'a> = Vec<Option<Box<dyn PendingBackup + 'a>>>;

/// A drive to write to or read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Laptop mode: a directory (a mounted drive, or any directory).
    Dir(PathBuf),
    /// Device mode: the FAT file system on a block device or image, in user space.
    Fat(PathBuf),
}

impl Drive {
    /// Opens the drive (a FAT file system is read, never mounted).
    /// Refused, with why, when the drive allow-list in force does not admit the drive
    /// ([`super::backup_drives`]).
    pub fn open(&self) -> Result<Box<dyn BackupTarget>, BackupError> {
        super::backup_drives::check(self)?;
        Ok(match self {
            Drive::Dir(dir) => Box::new(DirTarget::new(dir)),
            Drive::Fat(device) => Box::new(FatTarget::open(device)?),
        })
    }

    /// As shown.
    pub fn shown(&self) -> String {
        match self {
            Drive::Dir(dir) => dir.display().to_string(),
            Drive::Fat(device) => format!("{} (FAT)", device.display()),
        }
    }
}

/// Closes every target (a FAT file system writes its summary); tells a failure in `text`.
fn close_all(drives: &[Drive], targets: Vec<Box<dyn BackupTarget>>, text: &mut String) {
    for (drive, target) in drives.iter().zip(targets) {
        if let Err(e) = target.close() {
            text.push_str(&format!("{}: closing: {e}\n", drive.shown()));
        }
    }
}

/// `tessera backup create --to DIR | --fat-device PATH` (two of them to mirror): one backup
/// from the HSM written to every drive, each read back and verified on its own. Fails unless
/// at least one copy is stored and verified; says, per drive, stored or why not. The read-back
/// is checked against `pinned` (the HSM's audit key pinned at pairing) or, without one, against
/// the key that came over this pinned session in the backup's header. With `keep`, each drive
/// then keeps only the newest `keep` backups of the partition.
pub fn create(
    conn: &mut (impl Link + ?Sized),
    drives: &[Drive],
    pinned: Option<&VerifyingKey>,
    keep: Option<usize>,
) -> Result<(Shown, Vec<StoredBackup>), Error> {
    create_on(conn, drives, pinned, keep, &mut |_| {})
}

/// A step of [`create_on`] as it goes, for a screen that shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateStep {
    /// Bytes written to the drives so far, of the file's length.
    Written {
        /// Bytes so far.
        bytes: u64,
        /// The file's length (from the header).
        total: u64,
    },
    /// Every byte is written: each copy is now made durable, read back and verified.
    Verifying,
}

/// [`create`], telling `step` how far it got (the TUI's Backup screen).
pub fn create_on(
    conn: &mut (impl Link + ?Sized),
    drives: &[Drive],
    pinned: Option<&VerifyingKey>,
    keep: Option<usize>,
    step: &mut dyn FnMut(CreateStep),
) -> Result<(Shown, Vec<StoredBackup>), Error> {
    if drives.is_empty() || drives.len() > 2 {
        return Err(Error::Usage(
            "name one drive with --to DIR or --fat-device PATH, or two to mirror".to_owned(),
        ));
    }
    let mut targets = Vec::new();
    for drive in drives {
        targets.push(
            drive
                .open()
                .map_err(|e| Error::Usage(format!("{}: {e}", drive.shown())))?,
        );
    }
    let mut text = String::new();
    let result = create_into(conn, drives, &mut targets, pinned, keep, step, &mut text);
    close_all(drives, targets, &mut text);
    let (mut shown, stored) = result?;
    shown.text.insert_str(0, &text);
    Ok((shown, stored))
}

fn create_into(
    conn: &mut (impl Link + ?Sized),
    drives: &[Drive],
    targets: &mut [Box<dyn BackupTarget>],
    pinned: Option<&VerifyingKey>,
    keep: Option<usize>,
    step: &mut dyn FnMut(CreateStep),
    text: &mut String,
) -> Result<(Shown, Vec<StoredBackup>), Error> {
    let (written, copies, stored) = receive(conn, drives, targets, pinned, step, text)?;
    if let Some(keep) = keep {
        keep_newest(drives, targets, &stored, &written, keep, text)?;
    }
    let facts = written.header.facts();
    let hash = hex(written.header.hash());
    let text = format!(
        "backup of {} ({} objects, sequence {}), header hash {hash}\n",
        facts.partition_id, facts.object_count, facts.sequence,
    );
    let json = json!({
        "partition": facts.partition_id,
        "objects": facts.object_count,
        "sequence": facts.sequence,
        "header_hash": hash,
        "copies": copies,
    });
    Ok((Shown { text, json }, stored))
}

/// Takes the backup from the link onto every drive and commits each copy.
fn receive(
    conn: &mut (impl Link + ?Sized),
    drives: &[Drive],
    targets: &mut [Box<dyn BackupTarget>],
    pinned: Option<&VerifyingKey>,
    step: &mut dyn FnMut(CreateStep),
    text: &mut String,
) -> Result<(WrittenBackup, Vec<serde_json::Value>, Vec<StoredBackup>), Error> {
    let mut sink = LazySink::new(targets, step);
    let answer = match conn.download(AdminRequest::CreateBackup, &mut sink) {
        Ok(a) => a,
        Err(LinkError::Failed(hsm_link::Error::Sink(e))) => return Err(sink.failure(e)),
        Err(e) => return Err(e.into()),
    };
    let unexpected = || Error::UnexpectedAnswer {
        request: "CreateBackup",
    };
    let AdminResponse::BackupDone {
        header_hash,
        trailer,
        ..
    } = answer
    else {
        return Err(unexpected());
    };
    let LazySink {
        header,
        pending,
        errors,
        step,
        ..
    } = sink;
    let header = header.ok_or_else(unexpected)?;
    let trailer = Trailer::parse(&trailer).map_err(BackupError::from)?;
    if header.hash() != header_hash || trailer.header_hash != header_hash {
        return Err(unexpected());
    }
    let signer = VerifyingKey::from_bytes(&header.hsm_signing_key()).map_err(|_| unexpected())?;
    let hsm_key = match pinned {
        Some(k) if *k != signer => {
            return Err(Error::Backup(
                usb_backup::Rejection::WrongHsm {
                    detail: "the backup is signed by another key than the HSM's pinned one",
                }
                .into(),
            ));
        }
        _ => &signer,
    };
    let written = WrittenBackup { header, trailer };
    step(CreateStep::Verifying);
    let (copies, stored) = commit_copies(drives, pending, errors, &written, hsm_key, text);
    if stored.is_empty() {
        return Err(Error::Usage(format!(
            "the backup was not stored anywhere:\n{text}"
        )));
    }
    Ok((written, copies, stored))
}

/// Each drive's copy committed (read back from its drive and verified) or the reason it was
/// not, told in `text`; the JSON of each copy and the copies stored.
fn commit_copies(
    drives: &[Drive],
    pending: Pending<'_>,
    errors: Vec<Option<BackupError>>,
    written: &WrittenBackup,
    hsm_key: &VerifyingKey,
    text: &mut String,
) -> (Vec<serde_json::Value>, Vec<StoredBackup>) {
    let mut copies = Vec::new();
    let mut stored = Vec::new();
    for ((drive, p), e) in drives.iter().zip(pending).zip(errors) {
        let outcome = match (p, e) {
            (_, Some(e)) => Err(e),
            (Some(p), None) => p.commit(written, hsm_key),
            (None, None) => Err(BackupError::Pipeline { stage: "writing" }),
        };
        let shown = drive.shown();
        match outcome {
            Ok(s) => {
                text.push_str(&format!(
                    "{shown}: stored {} and verified it read back from the drive\n",
                    s.file_name
                ));
                copies.push(json!({"drive": shown, "file": s.file_name, "verified": true}));
                stored.push(s);
            }
            Err(e) => {
                text.push_str(&format!("{shown}: NOT stored: {e}\n"));
                copies.push(json!({"drive": shown, "error": e.to_string()}));
            }
        }
    }
    (copies, stored)
}

/// Keeps the newest `keep` backups of the partition on each drive that now holds a verified
/// copy: only after that copy verified, and never the only verified one.
fn keep_newest(
    drives: &[Drive],
    targets: &mut [Box<dyn BackupTarget>],
    stored: &[StoredBackup],
    written: &WrittenBackup,
    keep: usize,
    text: &mut String,
) -> Result<(), Error> {
    let partition = &written.header.facts().partition_id;
    for (drive, target) in drives.iter().zip(targets.iter_mut()) {
        let Some(s) = stored.iter().find(|s| s.target == target.describe()) else {
            continue;
        };
        for gone in usb_backup::drive::apply_retention(target.as_mut(), partition, keep, s)? {
            text.push_str(&format!("{}: removed the older {gone}\n", drive.shown()));
        }
    }
    Ok(())
}

/// Takes the stream from the link: holds the first bytes until the header is whole (its name
/// and length decide the file), then starts a pending file in every directory and copies each
/// byte to each; a directory that fails drops out (its partial file removed).
struct LazySink<'a, 's> {
    targets: Option<&'a mut [Box<dyn BackupTarget>]>,
    head: Vec<u8>,
    header: Option<Header>,
    pending: Pending<'a>,
    errors: Vec<Option<BackupError>>,
    /// Bytes written and the file's length, told to `step`.
    written: (u64, u64),
    step: &'s mut dyn FnMut(CreateStep),
}

impl<'a, 's> LazySink<'a, 's> {
    fn new(targets: &'a mut [Box<dyn BackupTarget>], step: &'s mut dyn FnMut(CreateStep)) -> Self {
        LazySink {
            targets: Some(targets),
            head: Vec::new(),
            header: None,
            pending: Vec::new(),
            errors: Vec::new(),
            written: (0, 0),
            step,
        }
    }

    /// Starts every directory once the header is whole.
    fn start(&mut self) -> std::io::Result<()> {
        // Magic (8), version (2), then the header's length (4).
        if self.head.len() < 14 {
            return Ok(());
        }
        let len = u32::from_le_bytes([self.head[10], self.head[11], self.head[12], self.head[13]])
            as usize;
        if len > usb_backup::container::MAX_HEADER_LEN {
            return Err(std::io::Error::other(
                "the HSM sent a header that is too long",
            ));
        }
        if self.head.len() < len {
            return Ok(());
        }
        let header = Header::parse(&self.head[..len]).map_err(std::io::Error::other)?;
        // Each drive starts its file here (`begin` takes each target for the pending file's
        // life).
        let name = BackupName::of(header.facts());
        let file_len = header.layout().file_len();
        self.written.1 = file_len;
        for target in self.targets.take().into_iter().flatten() {
            match target.begin(&name, file_len) {
                Ok(p) => {
                    self.pending.push(Some(p));
                    self.errors.push(None);
                }
                Err(e) => {
                    self.pending.push(None);
                    self.errors.push(Some(e));
                }
            }
        }
        self.header = Some(header);
        let head = std::mem::take(&mut self.head);
        self.fan_out(&head)
    }

    fn fan_out(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut live = 0;
        for (slot, error) in self.pending.iter_mut().zip(self.errors.iter_mut()) {
            let Some(p) = slot.as_mut() else { continue };
            match p.write_all(buf) {
                Ok(()) => live += 1,
                Err(e) => {
                    *error = Some(io_error("write", "backup file", e));
                    *slot = None; // dropping it removes its partial file
                }
            }
        }
        if live == 0 {
            return Err(std::io::Error::other("no drive could take the backup"));
        }
        self.written.0 += buf.len() as u64;
        (self.step)(CreateStep::Written {
            bytes: self.written.0,
            total: self.written.1,
        });
        Ok(())
    }

    /// Why the stream stopped: the first directory's error if there is one.
    fn failure(&mut self, e: std::io::Error) -> Error {
        match self.errors.iter_mut().find_map(Option::take) {
            Some(first) => Error::Backup(first),
            None => Error::Backup(io_error("write", "backup", e)),
        }
    }
}

fn io_error(op: &'static str, object: &str, source: std::io::Error) -> BackupError {
    BackupError::Io {
        op,
        object: object.to_owned(),
        source,
    }
}

impl Write for LazySink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.header.is_none() {
            self.head.extend_from_slice(buf);
            self.start()?;
        } else {
            self.fan_out(buf)?;
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

/// `tessera backup list DIR | --fat-device PATH`: the backups on a drive with their header
/// facts, read without decrypting; then, apart, the files interrupted or failed writes left,
/// which are never backups.
pub fn list(drive: &Drive) -> Result<Shown, Error> {
    let mut target = drive.open()?;
    let listed = target.list()?;
    let leftovers = target.leftovers()?;
    target.close()?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for b in &listed {
        match &b.header {
            Ok(h) => {
                let f = h.facts();
                text.push_str(&format!(
                    "{}  partition {} ({})  {}  sequence {}  {} objects  {} bytes  HSM {}  \
                     quorum key {}\n",
                    b.file_name,
                    f.partition_id,
                    super::printable(&f.partition_name),
                    utc(f.created),
                    f.sequence,
                    f.object_count,
                    b.len,
                    hex(&f.hsm_id[..8]),
                    hex(&h.quorum_backup_key_id()[..8]),
                ));
                rows.push(json!({
                    "file": b.file_name, "partition": f.partition_id, "created_unix": f.created,
                    "sequence": f.sequence, "objects": f.object_count, "bytes": b.len,
                    "hsm_id": hex(f.hsm_id), "quorum_key_id": hex(h.quorum_backup_key_id()),
                }));
            }
            Err(why) => {
                text.push_str(&format!(
                    "{}  unreadable: {}\n",
                    b.file_name,
                    super::printable(why)
                ));
                rows.push(json!({"file": b.file_name, "error": why}));
            }
        }
    }
    text.push_str(&format!("{} backups on {}\n", listed.len(), drive.shown()));
    let mut incomplete = Vec::new();
    for l in &leftovers {
        let what = if l.failed {
            "FAILED its read-back check: not a backup"
        } else {
            "INCOMPLETE: an interrupted write, not a backup"
        };
        text.push_str(&format!("{}  {what} ({} bytes)\n", l.file_name, l.len));
        incomplete.push(json!({"file": l.file_name, "failed_read_back": l.failed, "bytes": l.len}));
    }
    if !leftovers.is_empty() {
        text.push_str("remove them with: tessera backup clean (add --failed for .failed files)\n");
    }
    Ok(Shown {
        text,
        json: json!({ "backups": rows, "incomplete": incomplete }),
    })
}

/// `tessera backup clean DIR | --fat-device PATH [--failed]`: removes the `.partial` files
/// interrupted writes left (and with `failed`, the `.failed` ones). Only on request: a
/// `.partial` may be another terminal's write still going on, and each is evidence of a write
/// that broke off (a pulled or failing drive) that a person should see before it goes. A later
/// backup of the same partition does not remove them for the same reason.
pub fn clean(drive: &Drive, failed: bool) -> Result<Shown, Error> {
    let mut target = drive.open()?;
    let removed = usb_backup::drive::clean_leftovers(target.as_mut(), failed)?;
    target.close()?;
    let mut text: String = removed
        .iter()
        .map(|name| format!("{}: removed {name}\n", drive.shown()))
        .collect();
    text.push_str(&format!(
        "{} leftover files removed; backups are never touched\n",
        removed.len()
    ));
    Ok(Shown {
        text,
        json: json!({ "removed": removed }),
    })
}

/// `tessera backup verify FILE`: completeness and origin, offline, against the pinned HSM key
/// (header, every chunk digest, the trailer's signature). No secret is needed.
pub fn verify(file: &Path, hsm_key: &VerifyingKey) -> Result<Shown, BackupError> {
    refuse_leftover(&file.to_string_lossy())?;
    super::backup_drives::check_file(file)?;
    let f = File::open(file).map_err(|e| io_error("open", &file.display().to_string(), e))?;
    let verified = verify_offline(std::io::BufReader::with_capacity(1 << 20, f), hsm_key)?;
    Ok(verified_shown(&file.display().to_string(), &verified))
}

/// `tessera backup verify --fat-device PATH NAME`: the same for a file on a FAT drive, read in
/// user space.
pub fn verify_on(drive: &Drive, name: &str, hsm_key: &VerifyingKey) -> Result<Shown, BackupError> {
    refuse_leftover(name)?;
    let mut target = drive.open()?;
    let verified = target.verify(name, hsm_key);
    target.close()?;
    Ok(verified_shown(
        &format!("{}: {name}", drive.shown()),
        &verified?,
    ))
}

/// Refuses a leftover by its name (`NAME.partial`, `NAME.failed`) before its bytes are read: a
/// write killed after its last byte but before the rename leaves a `.partial` whose bytes are
/// whole, and it is still no backup (never made durable under its name nor read back).
fn refuse_leftover(name: &str) -> Result<(), BackupError> {
    let suffix = [
        usb_backup::drive::PARTIAL_SUFFIX,
        usb_backup::drive::FAILED_SUFFIX,
    ]
    .into_iter()
    .find(|s| name.ends_with(s));
    match suffix {
        Some(suffix) => Err(usb_backup::Rejection::Leftover { suffix }.into()),
        None => Ok(()),
    }
}

fn verified_shown(file: &str, verified: &usb_backup::Verified) -> Shown {
    let facts = verified.header().facts();
    let text = format!(
        "{file}: verified: a complete backup of partition {} signed by the pinned HSM key \
         ({} objects, sequence {}, made {})\n",
        facts.partition_id,
        facts.object_count,
        facts.sequence,
        utc(facts.created)
    );
    let json = json!({
        "file": file, "verified": true, "partition": facts.partition_id,
        "objects": facts.object_count, "sequence": facts.sequence,
        "header_hash": hex(verified.header().hash()),
    });
    Shown { text, json }
}

/// Where a backup to restore is: a file, or a name on a FAT drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file (in a directory, on a mounted drive or anywhere).
    File(PathBuf),
    /// A backup's name on the FAT file system of a device or image.
    Fat {
        /// The device or image.
        device: PathBuf,
        /// The backup's file name there.
        name: String,
    },
}

/// Uploads the backup at `source` for a restore, and asks the HSM for its dry run.
pub fn dry_run_from(
    conn: &mut (impl Link + ?Sized),
    source: &Source,
) -> Result<RestoreDiff, Error> {
    dry_run_from_on(conn, source, &mut |_| {})
}

/// Bytes of a backup uploaded for a restore so far, for a screen that shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes sent to the HSM.
    pub sent: u64,
    /// The file's length.
    pub total: u64,
}

/// [`dry_run_from`], telling `progress` the bytes uploaded after each piece (the TUI's Backup
/// screen).
pub fn dry_run_from_on(
    conn: &mut (impl Link + ?Sized),
    source: &Source,
    progress: &mut dyn FnMut(Uploaded),
) -> Result<RestoreDiff, Error> {
    match source {
        Source::File(file) => {
            refuse_leftover(&file.to_string_lossy())?;
            super::backup_drives::check_file(file)?;
            let shown = file.display().to_string();
            let f = File::open(file).map_err(|e| Error::Backup(io_error("read", &shown, e)))?;
            let file_len = f
                .metadata()
                .map_err(|e| Error::Backup(io_error("read", &shown, e)))?
                .len();
            upload(conn, Box::new(f), file_len, &shown, progress)
        }
        Source::Fat { device, name } => {
            refuse_leftover(name)?;
            let drive = Drive::Fat(device.clone());
            let mut target = drive.open()?;
            let diff = {
                let (reader, len) = target.open_backup(name)?;
                let shown = format!("{}: {name}", drive.shown());
                upload(conn, reader, len, &shown, progress)
            };
            target.close()?;
            diff
        }
    }
}

/// Uploads `file` to the HSM for a restore, in bounded pieces, and asks for its dry run (also
/// what `verify --deep` does): the diff, or the HSM's typed refusal. Changes nothing.
pub fn dry_run(conn: &mut (impl Link + ?Sized), file: &Path) -> Result<RestoreDiff, Error> {
    dry_run_from(conn, &Source::File(file.to_path_buf()))
}

fn upload(
    conn: &mut (impl Link + ?Sized),
    mut f: Box<dyn Read + '_>,
    file_len: u64,
    shown: &str,
    progress: &mut dyn FnMut(Uploaded),
) -> Result<RestoreDiff, Error> {
    let io = |e| Error::Backup(io_error("read", shown, e));
    let header = Header::read_from(&mut f)?;
    let header_len = header.layout().header_len;
    conn.admin(AdminRequest::RestoreBegin {
        file_len,
        header: header.encode(),
    })?;
    let mut buf = vec![0u8; MAX_RESTORE_CHUNK];
    let mut sent = header_len;
    while sent < file_len {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        conn.admin(AdminRequest::RestoreChunk {
            bytes: buf[..n].to_vec(),
        })?;
        sent += n as u64;
        progress(Uploaded {
            sent,
            total: file_len,
        });
    }
    match conn.admin(AdminRequest::RestoreDryRun)? {
        AdminResponse::RestoreDiff(diff) => Ok(*diff),
        _ => Err(Error::UnexpectedAnswer {
            request: "RestoreDryRun",
        }),
    }
}

/// Applies the restore whose dry run gave `diff`: one transaction at the HSM.
pub fn commit(conn: &mut (impl Link + ?Sized), diff: &RestoreDiff) -> Result<Shown, Error> {
    match conn.admin(AdminRequest::RestoreCommit {
        header_hash: diff.header_hash,
    })? {
        AdminResponse::Restored { objects, .. } => Ok(Shown {
            text: format!("restored: the partition now holds {objects} key objects\n"),
            json: json!({"restored": true, "objects": objects}),
        }),
        _ => Err(Error::UnexpectedAnswer {
            request: "RestoreCommit",
        }),
    }
}

/// The diff for people and scripts.
pub fn show_diff(diff: &RestoreDiff) -> Shown {
    // Each key as a person knows it, by label, with the id that tells two alike apart.
    let ids = |l: &KeyIdList| {
        let mut s: Vec<String> = l
            .first
            .iter()
            .map(|k| format!("{} ({})", super::printable(k.label.as_str()), k.id.0))
            .collect();
        if l.count > l.first.len() as u64 {
            s.push(format!("... ({} in all)", l.count));
        }
        s.join(", ")
    };
    let mut text = format!(
        "dry run passed: every chunk and object decrypted and checked at the HSM\n\
         backup made {} (sequence {}), {} objects; the partition holds {} now\n",
        utc(diff.created_unix),
        diff.sequence,
        diff.objects_in_backup,
        diff.objects_now
    );
    let lists = [
        (
            "keys coming back (purged or deleted since)",
            &diff.returning,
        ),
        ("keys removed (made since)", &diff.removed),
        ("keys going back into the bin", &diff.into_bin),
        ("keys leaving the bin", &diff.out_of_bin),
    ];
    for (what, list) in lists {
        if list.count > 0 {
            text.push_str(&format!("  {what}: {}\n", ids(list)));
        }
    }
    for c in &diff.config {
        text.push_str(&format!(
            "  {}: {} -> {}\n",
            c.parameter.label(),
            super::printable(&c.old),
            super::printable(&c.new)
        ));
    }
    if lists.iter().all(|(_, l)| l.count == 0) && diff.config.is_empty() {
        text.push_str("  nothing would change\n");
    }
    let json = json!({
        "header_hash": hex(diff.header_hash),
        "returning": diff.returning.count, "removed": diff.removed.count,
        "into_bin": diff.into_bin.count, "out_of_bin": diff.out_of_bin.count,
        "config_changes": diff.config.iter().map(|c| c.parameter.label()).collect::<Vec<_>>(),
    });
    Shown { text, json }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::cli::login::{CardChoice, login};
    use crate::cli::testing::{POLICY, enrolled_with_hsm, passphrase};
    use hsm_link::message::OfficerRole;
    use zeroize::Zeroizing;

    #[test]
    fn create_mirrors_lists_verifies_and_restores_with_a_dry_run_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, hsm) = enrolled_with_hsm(dir.path(), 1, &["ada"], &[]);
        let choice = CardChoice {
            readers: Vec::new(),
            soft: vec![dir.path().join("ada")],
        };
        let mut ask = |_: &str| Ok(Zeroizing::new(passphrase("ada").into_bytes()));
        let mut progress = Vec::new();
        login(
            &mut conn,
            OfficerRole::Pso,
            &choice,
            POLICY,
            &mut ask,
            false,
            &mut progress,
        )
        .unwrap();
        let key = hsm.keys().audit_public();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();

        let both = [Drive::Dir(a.clone()), Drive::Dir(b.clone())];
        let (shown, stored) = create(&mut conn, &both, Some(&key), None).unwrap();
        assert_eq!(stored.len(), 2, "{}", shown.text);
        assert_eq!(stored[0].file_name, stored[1].file_name);
        let file = a.join(&stored[0].file_name);
        let mirror = b.join(&stored[1].file_name);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            std::fs::read(mirror).unwrap()
        );
        // No partial file is left behind.
        assert_eq!(std::fs::read_dir(&a).unwrap().count(), 1);
        // A second backup with retention 1: the newer one stays, the older goes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (_, newer) = create(&mut conn, &both[1..], Some(&key), Some(1)).unwrap();
        let left: Vec<_> = std::fs::read_dir(&b)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec![newer[0].file_name.clone()]);

        let listed = list(&Drive::Dir(a.clone())).unwrap();
        assert!(listed.text.contains("partition p"), "{}", listed.text);
        assert!(verify(&file, &key).unwrap().text.contains("verified"));
        // Another key, or one flipped bit: refused.
        let other = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert!(verify(&file, &other).is_err());
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let flipped = dir.path().join("flipped.tsbackup");
        std::fs::write(&flipped, &bytes).unwrap();
        assert!(matches!(
            verify(&flipped, &key),
            Err(BackupError::Rejected(_))
        ));

        // The HSM's dry run of the good file: nothing would change; then the commit.
        let diff = dry_run(&mut conn, &file).unwrap();
        assert!(show_diff(&diff).text.contains("nothing would change"));
        let done = commit(&mut conn, &diff).unwrap();
        assert!(done.text.contains("0 key objects"), "{}", done.text);
        // The flipped file: the HSM refuses its dry run.
        assert!(matches!(
            dry_run(&mut conn, &flipped),
            Err(Error::Refused(_))
        ));
        // A directory that does not exist: no copy, and the error says so.
        let missing = dir.path().join("missing");
        assert!(create(&mut conn, &[Drive::Dir(missing)], None, None).is_err());
    }

    fn tool(name: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
        let out = std::process::Command::new(name)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{name} (Debian dosfstools / mtools): {e}"));
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn device_mode_writes_a_mkfs_vfat_image_that_fsck_passes_mcopy_reads_and_a_restore_takes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, hsm) = enrolled_with_hsm(dir.path(), 1, &["ada"], &[]);
        let choice = CardChoice {
            readers: Vec::new(),
            soft: vec![dir.path().join("ada")],
        };
        let mut ask = |_: &str| Ok(Zeroizing::new(passphrase("ada").into_bytes()));
        login(
            &mut conn,
            OfficerRole::Pso,
            &choice,
            POLICY,
            &mut ask,
            false,
            &mut Vec::new(),
        )
        .unwrap();
        let key = hsm.keys().audit_public();
        let image = dir.path().join("drive.img");
        tool(
            "mkfs.vfat",
            &[
                "-F".as_ref(),
                "32".as_ref(),
                "-C".as_ref(),
                image.as_os_str(),
                "34000".as_ref(),
            ],
        );
        let folder = dir.path().join("laptop");
        std::fs::create_dir(&folder).unwrap();
        // Mirrored: one copy to the FAT image in user space, one to a directory.
        let drives = [Drive::Fat(image.clone()), Drive::Dir(folder.clone())];
        let (shown, stored) = create(&mut conn, &drives, Some(&key), None).unwrap();
        assert_eq!(stored.len(), 2, "{}", shown.text);
        let name = stored[0].file_name.clone();
        tool("fsck.fat", &["-n".as_ref(), image.as_os_str()]);
        let copy = dir.path().join("mcopied.tsbk");
        let from = format!("::{name}");
        tool(
            "mcopy",
            &[
                "-i".as_ref(),
                image.as_os_str(),
                from.as_ref(),
                copy.as_os_str(),
            ],
        );
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(folder.join(&name)).unwrap()
        );
        assert!(verify(&copy, &key).is_ok());

        // Listed and verified from the image, then restored from it (dry run first).
        let fat = Drive::Fat(image.clone());
        let listed = list(&fat).unwrap();
        assert!(listed.text.contains(&name), "{}", listed.text);
        assert!(listed.text.contains("1 backups on"), "{}", listed.text);
        assert!(
            verify_on(&fat, &name, &key)
                .unwrap()
                .text
                .contains("verified")
        );
        let other = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert!(verify_on(&fat, &name, &other).is_err());
        let source = Source::Fat {
            device: image.clone(),
            name: name.clone(),
        };
        let diff = dry_run_from(&mut conn, &source).unwrap();
        assert!(show_diff(&diff).text.contains("nothing would change"));
        assert!(commit(&mut conn, &diff).unwrap().text.contains("restored"));
        tool("fsck.fat", &["-n".as_ref(), image.as_os_str()]);

        // A leftover of an interrupted write: listed apart, never as a backup, and removed
        // only by `clean`.
        let partial = folder.join(format!("{name}.partial").replace("seq", "seq9"));
        let partial_name = partial.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(
            &partial,
            &std::fs::read(folder.join(&name)).unwrap()[..1000],
        )
        .unwrap();
        let laptop = Drive::Dir(folder.clone());
        let listed = list(&laptop).unwrap();
        assert!(listed.text.contains("1 backups on"), "{}", listed.text);
        assert!(
            listed.text.contains(&format!("{partial_name}  INCOMPLETE")),
            "{}",
            listed.text
        );
        assert!(verify(&partial, &key).is_err());
        let (_, again) =
            create(&mut conn, std::slice::from_ref(&laptop), Some(&key), None).unwrap();
        assert!(partial.exists(), "a later backup removed the leftover");
        let cleaned = clean(&laptop, false).unwrap();
        assert!(cleaned.text.contains(&partial_name), "{}", cleaned.text);
        assert!(!partial.exists());
        assert!(folder.join(&name).exists() && folder.join(&again[0].file_name).exists());
    }
}
