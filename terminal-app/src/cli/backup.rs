//! `tessera backup create|list|verify|restore`: the terminal's half of a backup. The HSM seals
//! the partition and streams the container; the terminal writes it to one or two directories
//! (`--to DIR`, twice to mirror) through `usb-backup`'s targets (`NAME.partial`, fsync, rename,
//! fsync of the directory, then a read-back from the drive verified against what the HSM
//! sent), and only then reports success. `verify` proves a file offline against the pinned HSM
//! key; `restore` uploads a file, shows the HSM's dry run and diff, and commits only when told.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use hsm_link::client::Connection;
use hsm_link::message::{AdminRequest, AdminResponse, KeyIdList, MAX_RESTORE_CHUNK, RestoreDiff};
use hsm_link::transport::FrameTransport;
use quorum::ceremony::{Link, LinkError};
use serde_json::json;
use usb_backup::drive::{BackupName, BackupTarget, DirTarget, PendingBackup, StoredBackup};
use usb_backup::{BackupError, Header, Trailer, WrittenBackup, verify_offline};

use super::Shown;
use super::list::utc;
use crate::error::Error;

use hex::encode as hex;

/// The pending files of a backup being received, one per directory, and why a directory
/// dropped out.
type Pending<'a> = Vec<Option<Box<dyn PendingBackup + 'a>>>;

/// `tessera backup create --to DIR [--to DIR2]`: one backup from the HSM written to every
/// directory, each read back and verified on its own. Fails unless at least one copy is
/// stored and verified; says, per directory, stored or why not. The read-back is checked
/// against `pinned` (the HSM's audit key pinned at pairing) or, without one, against the key
/// that came over this pinned session in the backup's header.
/// With `keep`, each directory then keeps only the newest `keep` backups of the partition.
pub fn create<T: FrameTransport>(
    conn: &mut Connection<T>,
    dirs: &[PathBuf],
    pinned: Option<&VerifyingKey>,
    keep: Option<usize>,
) -> Result<(Shown, Vec<StoredBackup>), Error> {
    create_on(conn, dirs, pinned, keep, &mut |_| {})
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

/// [`create`] over any link, telling `step` how far it got (the TUI's Backup screen).
pub fn create_on(
    conn: &mut (impl Link + ?Sized),
    dirs: &[PathBuf],
    pinned: Option<&VerifyingKey>,
    keep: Option<usize>,
    step: &mut dyn FnMut(CreateStep),
) -> Result<(Shown, Vec<StoredBackup>), Error> {
    if dirs.is_empty() || dirs.len() > 2 {
        return Err(Error::Usage(
            "name one directory with --to DIR, or two to mirror".to_owned(),
        ));
    }
    let mut targets: Vec<DirTarget> = dirs.iter().map(DirTarget::new).collect();
    let mut sink = LazySink::new(&mut targets, step);
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
    let mut text = String::new();
    let (copies, stored) = commit_copies(dirs, pending, errors, &written, hsm_key, &mut text);
    if stored.is_empty() {
        return Err(Error::Usage(format!(
            "the backup was not stored anywhere:\n{text}"
        )));
    }
    if let Some(keep) = keep {
        keep_newest(dirs, &stored, &written, keep, &mut text)?;
    }
    let facts = written.header.facts();
    let hash = hex(written.header.hash());
    text.push_str(&format!(
        "backup of {} ({} objects, sequence {}), header hash {hash}\n",
        facts.partition_id, facts.object_count, facts.sequence,
    ));
    let json = json!({
        "partition": facts.partition_id,
        "objects": facts.object_count,
        "sequence": facts.sequence,
        "header_hash": hash,
        "copies": copies,
    });
    Ok((Shown { text, json }, stored))
}

/// Each directory's copy committed (read back from its drive and verified) or the reason it
/// was not, told in `text`; the JSON of each copy and the copies stored.
fn commit_copies(
    dirs: &[PathBuf],
    pending: Pending<'_>,
    errors: Vec<Option<BackupError>>,
    written: &WrittenBackup,
    hsm_key: &VerifyingKey,
    text: &mut String,
) -> (Vec<serde_json::Value>, Vec<StoredBackup>) {
    let mut copies = Vec::new();
    let mut stored = Vec::new();
    for ((dir, p), e) in dirs.iter().zip(pending).zip(errors) {
        let outcome = match (p, e) {
            (_, Some(e)) => Err(e),
            (Some(p), None) => p.commit(written, hsm_key),
            (None, None) => Err(BackupError::Pipeline { stage: "writing" }),
        };
        let shown_dir = dir.display().to_string();
        match outcome {
            Ok(s) => {
                text.push_str(&format!(
                    "{shown_dir}: stored {} and verified it read back from the drive\n",
                    s.file_name
                ));
                copies.push(json!({"dir": shown_dir, "file": s.file_name, "verified": true}));
                stored.push(s);
            }
            Err(e) => {
                text.push_str(&format!("{shown_dir}: NOT stored: {e}\n"));
                copies.push(json!({"dir": shown_dir, "error": e.to_string()}));
            }
        }
    }
    (copies, stored)
}

/// Keeps the newest `keep` backups of the partition in each directory that now holds a
/// verified copy: only after that copy verified, and never the only verified one.
fn keep_newest(
    dirs: &[PathBuf],
    stored: &[StoredBackup],
    written: &WrittenBackup,
    keep: usize,
    text: &mut String,
) -> Result<(), Error> {
    let partition = &written.header.facts().partition_id;
    for s in stored {
        let Some(dir) = dirs.iter().find(|d| d.display().to_string() == s.target) else {
            continue;
        };
        let mut target = DirTarget::new(dir);
        for gone in usb_backup::drive::apply_retention(&mut target, partition, keep, s)? {
            text.push_str(&format!("{}: removed the older {gone}\n", dir.display()));
        }
    }
    Ok(())
}

/// Takes the stream from the link: holds the first bytes until the header is whole (its name
/// and length decide the file), then starts a pending file in every directory and copies each
/// byte to each; a directory that fails drops out (its partial file removed).
struct LazySink<'a, 's> {
    targets: Option<&'a mut [DirTarget]>,
    head: Vec<u8>,
    header: Option<Header>,
    pending: Pending<'a>,
    errors: Vec<Option<BackupError>>,
    /// Bytes written and the file's length, told to `step`.
    written: (u64, u64),
    step: &'s mut dyn FnMut(CreateStep),
}

impl<'a, 's> LazySink<'a, 's> {
    fn new(targets: &'a mut [DirTarget], step: &'s mut dyn FnMut(CreateStep)) -> Self {
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
            return Err(std::io::Error::other("no directory could take the backup"));
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

/// `tessera backup list DIR`: the backups in a directory with their header facts, read
/// without decrypting.
pub fn list(dir: &Path) -> Result<Shown, Error> {
    let mut target = DirTarget::new(dir);
    let listed = target.list()?;
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
    text.push_str(&format!("{} backups in {}\n", listed.len(), dir.display()));
    Ok(Shown {
        text,
        json: json!({ "backups": rows }),
    })
}

/// `tessera backup verify FILE`: completeness and origin, offline, against the pinned HSM key
/// (header, every chunk digest, the trailer's signature). No secret is needed.
pub fn verify(file: &Path, hsm_key: &VerifyingKey) -> Result<Shown, BackupError> {
    let f = File::open(file).map_err(|e| io_error("open", &file.display().to_string(), e))?;
    let verified = verify_offline(std::io::BufReader::with_capacity(1 << 20, f), hsm_key)?;
    let facts = verified.header().facts();
    let text = format!(
        "{}: verified: a complete backup of partition {} signed by the pinned HSM key \
         ({} objects, sequence {}, made {})\n",
        file.display(),
        facts.partition_id,
        facts.object_count,
        facts.sequence,
        utc(facts.created)
    );
    let json = json!({
        "file": file.display().to_string(), "verified": true, "partition": facts.partition_id,
        "objects": facts.object_count, "sequence": facts.sequence,
        "header_hash": hex(verified.header().hash()),
    });
    Ok(Shown { text, json })
}

/// Uploads `file` to the HSM for a restore, in bounded pieces, and asks for its dry run (also
/// what `verify --deep` does): the diff, or the HSM's typed refusal. Changes nothing.
pub fn dry_run(conn: &mut (impl Link + ?Sized), file: &Path) -> Result<RestoreDiff, Error> {
    let shown = file.display().to_string();
    let io = |e| Error::Backup(io_error("read", &shown, e));
    let mut f = File::open(file).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
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
    let ids = |l: &KeyIdList| {
        let mut s: Vec<String> = l.first.iter().map(|k| k.0.to_string()).collect();
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

        let (shown, stored) = create(&mut conn, &[a.clone(), b.clone()], Some(&key), None).unwrap();
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
        let (_, newer) = create(&mut conn, std::slice::from_ref(&b), Some(&key), Some(1)).unwrap();
        let left: Vec<_> = std::fs::read_dir(&b)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec![newer[0].file_name.clone()]);

        let listed = list(&a).unwrap();
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
        assert!(create(&mut conn, &[missing], None, None).is_err());
    }
}
