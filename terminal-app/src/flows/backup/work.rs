//! The worker's side of the Backup screen: drive scans, the backup (through `tessera backup
//! create`'s code, with progress sent as it goes), listing and offline verification, and the
//! restore's dry run (its upload's progress sent as it goes) and commit (through `tessera
//! backup restore`'s). Every progress report goes out on the worker's one events channel.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::VerifyingKey;
use usb_backup::drive::allow::{self, Admission, AllowList};
use usb_backup::drive::discover::{Drive as Found, SysRoot, find_drives};
use usb_backup::drive::{DirTarget, StoredBackup};

use super::{
    BackupCommand, BackupEvent, BackupView, Check, CreatedView, DriveView, FactsView, KEEP_NEWEST,
    LastVerified,
};
use crate::cli::Shown;
use crate::cli::backup::{self as cli_backup, CreateStep, Drive, Source, Uploaded};
use crate::cli::backup_drives::{DriveRules, with_rules};
use crate::tui::message::Event;
use crate::tui::worker::Worker;

/// How often progress is sent while a backup is written or uploaded.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What the worker keeps for the Backup screen.
#[derive(Default)]
pub struct BackupWork {
    /// Where removable drives are looked for.
    pub(crate) sys: SysRoot,
    /// The drive allow-list, if the terminal has one (`[backup] allow`).
    pub(crate) allow: Option<AllowList>,
}

impl BackupWork {
    /// Drives looked for under `sys`, admitted by `allow` (none: every drive).
    pub fn new(sys: SysRoot, allow: Option<AllowList>) -> BackupWork {
        BackupWork { sys, allow }
    }
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

/// Runs one step of the Backup screen, with the allow-list applied to every drive opened
/// (a drive may have been swapped since the scan that showed it).
pub(crate) fn work(worker: &mut Worker, command: BackupCommand) -> Vec<Event> {
    let rules = DriveRules {
        sys: worker.backup.sys.clone(),
        allow: worker.backup.allow.clone(),
    };
    with_rules(rules, || step(worker, command))
}

fn step(worker: &mut Worker, command: BackupCommand) -> Vec<Event> {
    let mut events = Vec::new();
    let last = match command {
        BackupCommand::Scan { dirs, devices } => scan(&worker.backup, &dirs, &devices),
        BackupCommand::Create { drives, record } => create(worker, &drives, record.as_deref()),
        BackupCommand::List { drive } => match list(worker, &drive, &mut events) {
            Ok(()) => return events,
            Err(why) => BackupEvent::ListFailed(why),
        },
        BackupCommand::DryRun { source } => dry_run(worker, &source),
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

/// Uploads the backup for the HSM's dry run, sending the bytes uploaded as they go.
fn dry_run(worker: &mut Worker, source: &Source) -> BackupEvent {
    let tx = worker.events.clone();
    let started = Instant::now();
    let mut sent_at: Option<Instant> = None;
    let mut progress = |u: Uploaded| {
        let due = sent_at.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if !due && u.sent < u.total {
            return;
        }
        sent_at = Some(Instant::now());
        if let Some(tx) = &tx {
            let _ = tx.send(Event::Backup(BackupEvent::Uploading {
                sent: u.sent,
                total: u.total,
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }));
        }
    };
    match cli_backup::dry_run_from_on(&mut *worker.link, source, &mut progress) {
        Ok(diff) => BackupEvent::Diff(Box::new(diff)),
        Err(e) => BackupEvent::RestoreRefused(e.to_string()),
    }
}

/// The directories, the FAT images, then the removable drives (or why they could not be
/// scanned).
fn scan(work: &BackupWork, dirs: &[PathBuf], devices: &[PathBuf]) -> BackupEvent {
    let mut drives: Vec<DriveView> = dirs.iter().map(|d| dir_view(d)).collect();
    drives.extend(devices.iter().map(|d| image_view(d)));
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
        drive: refused.is_none().then(|| Drive::Dir(dir.to_path_buf())),
        free: usb_backup::drive::BackupTarget::free_space(&mut DirTarget::new(dir)).ok(),
        refused,
    }
}

/// A FAT image offered in device mode. Its file system is not opened by a scan (opening
/// writes its clean flag on close); free space is checked before writing.
fn image_view(image: &Path) -> DriveView {
    let refused = (!image.is_file()).then(|| "the image does not exist".to_owned());
    DriveView {
        label: "demo FAT drive (device mode)".to_owned(),
        detail: image.display().to_string(),
        drive: refused.is_none().then(|| Drive::Fat(image.to_path_buf())),
        free: None,
        refused,
    }
}

/// Removable drives as the screen lists them. A drive refused by the allow-list says why. Of
/// an admitted drive, each mounted file system is offered as a directory (laptop mode) and
/// each unmounted one in device mode (its FAT file system written in user space, never
/// mounted); the whole disk counts as a volume only when it has no partitions.
pub fn removable_views(drives: &[Found], allow: Option<&AllowList>) -> Vec<DriveView> {
    let mut views = Vec::new();
    for d in drives {
        let name = format!("{} {}", d.vendor, d.model).trim().to_owned();
        if let Admission::Refused(why) = allow::admit(allow, d) {
            views.push(DriveView {
                label: format!("{name} ({})", d.name),
                detail: d.identity(),
                drive: None,
                free: None,
                refused: Some(why),
            });
            continue;
        }
        let whole =
            d.partitions
                .is_empty()
                .then_some((d.name.as_str(), &d.dev_path, d.mount.as_ref()));
        let parts = d
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), &p.dev_path, p.mount.as_ref()));
        for (volume, dev_path, mount) in whole.into_iter().chain(parts) {
            views.push(match mount {
                Some(mount) => DriveView {
                    label: format!("{name} ({volume})"),
                    detail: format!("{} · {}", d.identity(), mount.mount_point.display()),
                    drive: Some(Drive::Dir(mount.mount_point.clone())),
                    free: mount.free,
                    refused: None,
                },
                None => DriveView {
                    label: format!("{name} ({volume}, device mode)"),
                    detail: format!("{} · {}", d.identity(), dev_path.display()),
                    drive: Some(Drive::Fat(dev_path.clone())),
                    free: None,
                    refused: None,
                },
            });
        }
    }
    views
}

/// Seals at the HSM and writes to `dirs` through the CLI's code, sending progress; records
/// the result for the dashboard once a copy read back intact.
fn create(worker: &mut Worker, drives: &[Drive], record: Option<&Path>) -> BackupEvent {
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
    match cli_backup::create_on(
        &mut *worker.link,
        drives,
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

/// Lists `drive` (sent at once), then verifies each backup offline, one report each.
fn list(worker: &mut Worker, drive: &Drive, later: &mut Vec<Event>) -> Result<(), String> {
    let shown = |e: usb_backup::BackupError| format!("{}: {e}", drive.shown());
    let mut target = drive.open().map_err(shown)?;
    let listed = match target.list() {
        Ok(listed) => listed,
        Err(e) => {
            let _ = target.close();
            return Err(shown(e));
        }
    };
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
            drive: drive.clone(),
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
        let checked = BackupEvent::Checked {
            drive: drive.clone(),
            file_name,
            check,
        };
        emit(worker.events.as_ref(), checked, later);
    }
    // A FAT file system writes its summary and clean flag here.
    target.close().map_err(shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use usb_backup::drive::discover::{Mount, Volume};

    fn drive(name: &str, serial: Option<&str>, mounted: Option<&str>) -> Found {
        Found {
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
    fn a_drive_off_the_allow_list_is_refused_with_why_and_an_unmounted_one_is_a_fat_device() {
        let allow = AllowList::parse(["0781:5567:AAA111"]).unwrap();
        let drives = [
            drive("sdb", Some("AAA111"), Some("/media/key")),
            drive("sdc", Some("BBB222"), Some("/media/other")),
            drive("sdd", Some("AAA111"), None),
        ];
        let views = removable_views(&drives, Some(&allow));
        assert_eq!(views.len(), 3);
        assert_eq!(views[0].drive, Some(Drive::Dir("/media/key".into())));
        assert_eq!(views[0].free, Some(8_000_000_000));
        assert_eq!(views[0].label, "SanDisk Cruzer (sdb1)");
        assert!(views[0].refused.is_none());
        let why = views[1].refused.as_deref().unwrap();
        assert!(why.contains("0781:5567:BBB222"), "{why}");
        assert!(why.contains("allow-list"), "{why}");
        assert_eq!(views[1].drive, None);
        // Not mounted: written in device mode, straight to its FAT file system.
        assert_eq!(views[2].drive, Some(Drive::Fat("/dev/sdd1".into())));
        assert!(views[2].label.contains("device mode"), "{}", views[2].label);
        assert!(views[2].refused.is_none());
        // Without a list, every drive may take a backup.
        assert!(
            removable_views(&drives, None)
                .iter()
                .all(|v| v.drive.is_some())
        );
        // An empty list admits none.
        let none = AllowList::parse([]).unwrap();
        assert!(
            removable_views(&drives, Some(&none))
                .iter()
                .all(|v| v.drive.is_none() && v.refused.is_some())
        );
        // A whole disk without partitions is itself the volume.
        let mut bare = drive("sde", Some("AAA111"), None);
        bare.partitions.clear();
        let views = removable_views(&[bare], Some(&allow));
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].drive, Some(Drive::Fat("/dev/sde".into())));
    }

    #[test]
    fn a_missing_directory_or_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir_view(dir.path());
        assert_eq!(here.drive, Some(Drive::Dir(dir.path().to_path_buf())));
        assert!(here.free.is_some());
        let gone = dir_view(&dir.path().join("gone"));
        assert_eq!(gone.drive, None);
        assert!(gone.refused.is_some());
        let image = dir.path().join("drive.img");
        assert_eq!(image_view(&image).drive, None);
        std::fs::write(&image, b"").unwrap();
        assert_eq!(image_view(&image).drive, Some(Drive::Fat(image.clone())));
    }
}
