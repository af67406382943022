//! The worker's side of the Backup screen: drive scans, the backup (through `tessera backup
//! create`'s code, with progress sent as it goes), listing and offline verification, and the
//! restore's dry run and commit (through `tessera backup restore`'s).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::VerifyingKey;
use usb_backup::drive::allow::{self, Admission, AllowList};
use usb_backup::drive::discover::{Drive, SysRoot, find_drives};
use usb_backup::drive::{BackupTarget, DirTarget, StoredBackup};

use super::{
    BackupCommand, BackupEvent, BackupView, Check, CreatedView, DriveView, FactsView, KEEP_NEWEST,
    LastVerified,
};
use crate::cli::Shown;
use crate::cli::backup::{self as cli_backup, CreateStep};
use crate::tui::message::Event;
use crate::tui::worker::Worker;

/// How often progress is sent while a backup is written.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What the worker keeps for the Backup screen.
#[derive(Default)]
pub struct BackupWork {
    /// Where removable drives are looked for.
    pub(crate) sys: SysRoot,
    /// The drive allow-list, if the terminal has one.
    pub(crate) allow: Option<AllowList>,
}

/// Sends `event` now on the worker's channel when the worker thread runs, else keeps it for
/// the command's answer.
fn emit(events: Option<&Sender<Event>>, event: BackupEvent, later: &mut Vec<Event>) {
    let event = Event::Backup(event);
    match events {
        Some(tx) => {
            let _ = tx.send(event);
        }
        None => later.push(event),
    }
}

/// Runs one step of the Backup screen.
pub(crate) fn work(worker: &mut Worker, command: BackupCommand) -> Vec<Event> {
    let mut events = Vec::new();
    let last = match command {
        BackupCommand::Scan { dirs } => scan(&worker.backup, &dirs),
        BackupCommand::Create { dirs, record } => create(worker, &dirs, record.as_deref()),
        BackupCommand::List { dir } => match list(worker, &dir, &mut events) {
            Ok(()) => return events,
            Err(why) => BackupEvent::ListFailed(why),
        },
        BackupCommand::DryRun { file } => match cli_backup::dry_run(&mut *worker.link, &file) {
            Ok(diff) => BackupEvent::Diff(Box::new(diff)),
            Err(e) => BackupEvent::RestoreRefused(e.to_string()),
        },
        BackupCommand::Commit(diff) => match cli_backup::commit(&mut *worker.link, &diff) {
            Ok(shown) => BackupEvent::Restored(shown.text.trim().to_owned()),
            Err(e) => BackupEvent::RestoreRefused(e.to_string()),
        },
    };
    events.push(Event::Backup(last));
    events
}

/// The HSM's key the backups are signed with, as pinned at pairing.
fn pinned_key(worker: &Worker) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&worker.audit_key.to_bytes()).ok()
}

/// The directories, then the removable drives (or why they could not be scanned).
fn scan(work: &BackupWork, dirs: &[PathBuf]) -> BackupEvent {
    let mut drives: Vec<DriveView> = dirs.iter().map(|d| dir_view(d)).collect();
    let note = match find_drives(&work.sys) {
        Ok(found) => {
            drives.extend(removable_views(&found, work.allow.as_ref()));
            None
        }
        Err(e) => Some(format!("removable drives were not scanned: {e}")),
    };
    BackupEvent::Drives { drives, note }
}

fn dir_view(dir: &Path) -> DriveView {
    let refused = (!dir.is_dir()).then(|| "the directory does not exist".to_owned());
    DriveView {
        label: "directory".to_owned(),
        detail: dir.display().to_string(),
        dir: refused.is_none().then(|| dir.to_path_buf()),
        free: DirTarget::new(dir).free_space().ok(),
        refused,
    }
}

/// Removable drives as the screen lists them: each mounted file system of an admitted drive
/// can take a backup; a drive refused by the allow-list, or with nothing mounted, says why.
pub fn removable_views(drives: &[Drive], allow: Option<&AllowList>) -> Vec<DriveView> {
    let mut views = Vec::new();
    for d in drives {
        let name = format!("{} {}", d.vendor, d.model).trim().to_owned();
        let refused = |why: String| DriveView {
            label: format!("{name} ({})", d.name),
            detail: d.identity(),
            dir: None,
            free: None,
            refused: Some(why),
        };
        if let Admission::Refused(why) = allow::admit(allow, d) {
            views.push(refused(why));
            continue;
        }
        let whole = d.mount.as_ref().map(|m| (d.name.as_str(), m));
        let parts = d
            .partitions
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.mount.as_ref()?)));
        let before = views.len();
        for (volume, mount) in whole.into_iter().chain(parts) {
            views.push(DriveView {
                label: format!("{name} ({volume})"),
                detail: format!("{} · {}", d.identity(), mount.mount_point.display()),
                dir: Some(mount.mount_point.clone()),
                free: mount.free,
                refused: None,
            });
        }
        if views.len() == before {
            views.push(refused(
                "nothing on it is mounted: mount it to write a backup there".to_owned(),
            ));
        }
    }
    views
}

/// Seals at the HSM and writes to `dirs` through the CLI's code, sending progress; records
/// the result for the dashboard once a copy read back intact.
fn create(worker: &mut Worker, dirs: &[PathBuf], record: Option<&Path>) -> BackupEvent {
    let pinned = pinned_key(worker);
    let tx = worker.events.clone();
    let started = Instant::now();
    let mut sent: Option<Instant> = None;
    let mut total = 0;
    let mut step = |s: CreateStep| {
        let event = match s {
            CreateStep::Written { bytes, total: t } => {
                total = t;
                let due = sent.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
                if !due && bytes < t {
                    return;
                }
                sent = Some(Instant::now());
                BackupEvent::Progress {
                    written: bytes,
                    total: t,
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            }
            CreateStep::Verifying => BackupEvent::Verifying { total },
        };
        if let Some(tx) = &tx {
            let _ = tx.send(Event::Backup(event));
        }
    };
    let drives: Vec<cli_backup::Drive> = dirs.iter().cloned().map(cli_backup::Drive::Dir).collect();
    match cli_backup::create_on(
        &mut *worker.link,
        &drives,
        pinned.as_ref(),
        Some(KEEP_NEWEST),
        &mut step,
    ) {
        Ok((shown, stored)) => created(&shown, &stored, record),
        Err(e) => BackupEvent::CreateFailed(e.to_string()),
    }
}

fn created(shown: &Shown, stored: &[StoredBackup], record: Option<&Path>) -> BackupEvent {
    let Some(first) = stored.first() else {
        return BackupEvent::CreateFailed(shown.text.clone());
    };
    let header = first.verified.header();
    let digest = hex::encode(header.hash());
    let mut lines: Vec<String> = shown.text.lines().map(crate::cli::printable).collect();
    lines.push(format!(
        "retention: the newest {KEEP_NEWEST} backups of this partition are kept on each drive"
    ));
    let last = record.and_then(|path| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = LastVerified {
            format: super::record::RECORD_FORMAT.to_owned(),
            version: super::record::RECORD_VERSION,
            partition: header.facts().partition_id.clone(),
            hsm: hex::encode(&header.facts().hsm_id[..8]),
            time_unix: now,
            drive: first.target.clone(),
            file: first.file_name.clone(),
            digest: digest.clone(),
        };
        match last.write(path) {
            Ok(()) => Some(Box::new(last)),
            Err(e) => {
                lines.push(format!("not recorded for the dashboard: {e}"));
                None
            }
        }
    });
    BackupEvent::Created {
        created: Box::new(CreatedView {
            file_name: first.file_name.clone(),
            bytes: header.layout().file_len(),
            digest,
            lines,
        }),
        last,
    }
}

/// Lists `dir` (sent at once), then verifies each backup offline, one report each.
fn list(worker: &mut Worker, dir: &Path, later: &mut Vec<Event>) -> Result<(), String> {
    let mut target = DirTarget::new(dir);
    let listed = target
        .list()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let backups: Vec<BackupView> = listed
        .iter()
        .map(|b| BackupView {
            file_name: b.file_name.clone(),
            len: b.len,
            facts: b.header.as_ref().map_err(Clone::clone).map(|h| {
                let f = h.facts();
                FactsView {
                    partition: crate::cli::printable(&f.partition_id),
                    hsm: hex::encode(&f.hsm_id[..4]),
                    created: f.created,
                    sequence: f.sequence,
                    objects: f.object_count,
                }
            }),
            check: match &b.header {
                Ok(_) => Check::Checking,
                Err(why) => Check::Failed(crate::cli::printable(why)),
            },
        })
        .collect();
    let checkable: Vec<String> = backups
        .iter()
        .filter(|b| b.check == Check::Checking)
        .map(|b| b.file_name.clone())
        .collect();
    emit(
        worker.events.as_ref(),
        BackupEvent::Listed {
            dir: dir.to_path_buf(),
            backups,
        },
        later,
    );
    let key = pinned_key(worker);
    for file_name in checkable {
        let check = match &key {
            Some(key) => match target.verify(&file_name, key) {
                Ok(_) => Check::Verified,
                Err(e) => Check::Failed(e.to_string()),
            },
            None => Check::Failed("no pinned HSM key to check it against".to_owned()),
        };
        let dir = dir.to_path_buf();
        let checked = BackupEvent::Checked {
            dir,
            file_name,
            check,
        };
        emit(worker.events.as_ref(), checked, later);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use usb_backup::drive::discover::{Mount, Volume};

    fn drive(name: &str, serial: Option<&str>, mounted: Option<&str>) -> Drive {
        Drive {
            name: name.into(),
            dev_path: format!("/dev/{name}").into(),
            vendor: "SanDisk".into(),
            model: "Cruzer".into(),
            serial: serial.map(Into::into),
            usb_vendor: 0x0781,
            usb_product: 0x5567,
            size: 16_000_000_000,
            partitions: vec![Volume {
                name: format!("{name}1"),
                dev_path: format!("/dev/{name}1").into(),
                size: 15_999_000_000,
                mount: mounted.map(|m| Mount {
                    mount_point: m.into(),
                    free: Some(8_000_000_000),
                }),
            }],
            mount: None,
        }
    }

    #[test]
    fn a_drive_off_the_allow_list_is_refused_with_why_and_an_unmounted_one_too() {
        let allow = AllowList::parse(["0781:5567:AAA111"]).unwrap();
        let drives = [
            drive("sdb", Some("AAA111"), Some("/media/key")),
            drive("sdc", Some("BBB222"), Some("/media/other")),
            drive("sdd", Some("AAA111"), None),
        ];
        let views = removable_views(&drives, Some(&allow));
        assert_eq!(views.len(), 3);
        assert_eq!(views[0].dir, Some(PathBuf::from("/media/key")));
        assert_eq!(views[0].free, Some(8_000_000_000));
        assert_eq!(views[0].label, "SanDisk Cruzer (sdb1)");
        assert!(views[0].refused.is_none());
        let why = views[1].refused.as_deref().unwrap();
        assert!(why.contains("0781:5567:BBB222"), "{why}");
        assert!(why.contains("allow-list"), "{why}");
        assert_eq!(views[1].dir, None);
        assert!(views[2].refused.as_deref().unwrap().contains("mounted"));
        // Without a list, every mounted drive may take a backup.
        assert!(
            removable_views(&drives[..2], None)
                .iter()
                .all(|v| v.dir.is_some())
        );
    }

    #[test]
    fn a_missing_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir_view(dir.path());
        assert_eq!(here.dir.as_deref(), Some(dir.path()));
        assert!(here.free.is_some());
        let gone = dir_view(&dir.path().join("gone"));
        assert_eq!(gone.dir, None);
        assert!(gone.refused.is_some());
    }
}
