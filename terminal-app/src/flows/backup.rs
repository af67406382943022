//! Backup: the partition backed up to one drive or two (a mirror), and restored from one.
//!
//! The screen lists drives as they come and go: the directories of [`Model::drive_dirs`] (the
//! demo's drive directory), the FAT images of [`BackupFlow::devices`] (the demo's FAT drive)
//! and the removable drives `usb-backup` discovers over sysfs (polled on the worker about once
//! a second), or refused with why (not on the terminal's drive allow-list). A mounted file
//! system is offered as a directory (laptop mode); an unmounted one in device mode: its FAT
//! file system written in user space, never mounted by the kernel. A PSO chooses one drive or
//! two and creates a backup: the HSM seals it, the worker writes it through `tessera backup
//! create`'s code ([`cli::backup::create_on`]) and reports the bytes as they go (rate and time
//! left shown), then the read-back verification as its own step, then the file's name, size
//! and digest and what retention removed.
//!
//! The backups on a drive are listed with their header facts, each verified offline against
//! the HSM key pinned at pairing. A restore always goes dry run at the HSM (the upload shown
//! with bytes, rate and time left, then the HSM's checks) → its diff → the
//! partition id typed → the atomic swap; [`update`](crate::tui::update) cannot reach a later
//! step without the earlier ones, and an answer that arrives out of order is ignored.
//!
//! The dashboard's "last verified backup" comes from a small record the worker writes in the
//! terminal's state directory after a verified write ([`LastVerified`]): the HSM's log entry
//! for a backup says it streamed one, not that a drive holds a copy that read back intact, and
//! only the terminal knows that (and which drive).
//!
//! [`cli::backup::create_on`]: crate::cli::backup::create_on

use std::path::PathBuf;

use hsm_link::message::{OfficerRole, RestoreDiff};

use super::Outcome;
use crate::cli::backup::{Drive, Source};
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect};
use crate::tui::model::{Level, Model, Notice};

mod record;
mod view;
mod work;

pub use record::{LastVerified, MAX_RECORD_LEN, RECORD_FORMAT, RECORD_VERSION};
pub use view::{dashboard_line, view};
pub(crate) use work::work;
pub use work::{BackupWork, removable_views};

/// Backups of this partition kept on a drive after a verified write (older ones removed; never
/// the only verified one).
pub const KEEP_NEWEST: usize = 5;

/// The record of the last verified backup, beside the demo's drive directory (in the demo's
/// state directory).
pub const RECORD_FILE: &str = "last-verified-backup.json";

/// How often the drives are scanned while the drive list shows.
pub const SCAN_EVERY_MS: u64 = 1000;

/// The longest typed confirmation (a partition id is shorter).
const MAX_TYPED: usize = 64;

/// A place a backup can go: a directory (a removable drive's mounted file system, or any), or
/// a FAT file system written in user space (an unmounted drive, or an image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveView {
    /// What it is, e.g. `directory` or `SanDisk Cruzer (sdb1)`.
    pub label: String,
    /// Where, e.g. the directory, or the drive's `vendor:product:serial`.
    pub detail: String,
    /// Where backups are written: a directory or a FAT device; `None` when the drive cannot
    /// take one.
    pub drive: Option<Drive>,
    /// Bytes free there, when known.
    pub free: Option<u64>,
    /// Why the drive cannot be used, if it cannot.
    pub refused: Option<String>,
}

/// A backup's header facts, read without decrypting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactsView {
    /// The partition's id.
    pub partition: String,
    /// The HSM's id (its first four bytes, hex).
    pub hsm: String,
    /// When it was made (Unix seconds).
    pub created: u64,
    /// Its sequence number.
    pub sequence: u64,
    /// Key objects in it.
    pub objects: u64,
}

/// Whether a listed backup was verified offline against the pinned HSM key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Being checked.
    Checking,
    /// Complete and signed by the pinned HSM key.
    Verified,
    /// Not: why.
    Failed(String),
}

/// A backup file on a drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupView {
    /// The file's name.
    pub file_name: String,
    /// The file's length.
    pub len: u64,
    /// Its header facts, or why the header could not be read.
    pub facts: Result<FactsView, String>,
    /// The offline verification.
    pub check: Check,
}

/// A backup written and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedView {
    /// The file's name.
    pub file_name: String,
    /// Its length.
    pub bytes: u64,
    /// The header's hash (what the HSM logged), hex.
    pub digest: String,
    /// Per drive: stored and verified, or why not; and what retention removed.
    pub lines: Vec<String>,
}

/// A step of the Backup screen, for the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum BackupCommand {
    /// Scan the drives (the directories and FAT images given, and removable drives).
    Scan {
        /// The directories offered as drives.
        dirs: Vec<PathBuf>,
        /// The FAT images offered as drives in device mode.
        devices: Vec<PathBuf>,
    },
    /// Make a backup at the HSM and write it to one drive, or two to mirror.
    Create {
        /// Where.
        drives: Vec<Drive>,
        /// Where to record the last verified backup, if anywhere.
        record: Option<PathBuf>,
    },
    /// List the backups on a drive, then verify each offline.
    List {
        /// The drive.
        drive: Drive,
    },
    /// Upload a backup for the HSM's dry run (changes nothing).
    DryRun {
        /// The backup.
        source: Source,
    },
    /// Apply the restore whose dry run gave this diff.
    Commit(Box<RestoreDiff>),
}

/// What the worker reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackupEvent {
    /// The drives as scanned; a note when removable drives could not be scanned.
    Drives {
        /// Every place offered.
        drives: Vec<DriveView>,
        /// Why the removable drives are missing, if they are.
        note: Option<String>,
    },
    /// Bytes written so far.
    Progress {
        /// Bytes written to each drive.
        written: u64,
        /// The file's length.
        total: u64,
        /// Milliseconds since the backup began.
        elapsed_ms: u64,
    },
    /// Every byte written: reading back and verifying.
    Verifying {
        /// The file's length.
        total: u64,
    },
    /// Stored and verified on at least one drive.
    Created {
        /// The result.
        created: Box<CreatedView>,
        /// What the dashboard now shows.
        last: Option<Box<LastVerified>>,
    },
    /// Not stored anywhere: why.
    CreateFailed(String),
    /// The backups on a drive (each then checked).
    Listed {
        /// The drive.
        drive: Drive,
        /// Its backups, newest first.
        backups: Vec<BackupView>,
    },
    /// A listed backup's offline verification.
    Checked {
        /// The drive.
        drive: Drive,
        /// The file's name.
        file_name: String,
        /// The result.
        check: Check,
    },
    /// The drive could not be listed.
    ListFailed(String),
    /// Bytes of a backup uploaded for the HSM's dry run so far.
    Uploading {
        /// Bytes sent.
        sent: u64,
        /// The file's length.
        total: u64,
        /// Milliseconds since the upload began.
        elapsed_ms: u64,
    },
    /// The HSM's dry run passed: what a restore would change.
    Diff(Box<RestoreDiff>),
    /// The HSM refused the dry run or the restore; nothing changed.
    RestoreRefused(String),
    /// Restored.
    Restored(String),
}

/// Where the screen stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Step {
    /// The drives; choosing one or two.
    #[default]
    Drives,
    /// The HSM seals, the worker writes.
    Writing {
        /// Bytes written.
        written: u64,
        /// Of.
        total: u64,
        /// Milliseconds since it began.
        elapsed_ms: u64,
    },
    /// Reading back from the drive and verifying.
    Verifying {
        /// The file's length.
        total: u64,
    },
    /// Done.
    Created(Box<CreatedView>),
    /// Not stored: why.
    CreateFailed(String),
    /// The backups on a drive.
    Backups,
    /// The chosen backup uploaded, then every chunk and object checked at the HSM.
    DryRun {
        /// The file.
        file_name: String,
        /// Bytes uploaded.
        sent: u64,
        /// Of.
        total: u64,
        /// Milliseconds since the upload began.
        elapsed_ms: u64,
    },
    /// The dry run's diff.
    Diff(Box<RestoreDiff>),
    /// The partition id typed to confirm.
    Confirm(Box<RestoreDiff>),
    /// The swap at the HSM.
    Restoring,
    /// Restored: what the HSM said.
    Restored(String),
    /// Refused (dry run or swap): why; nothing changed.
    RestoreRefused(String),
}

impl Step {
    /// Waiting on the worker: keys other than quit and help wait too.
    pub fn busy(&self) -> bool {
        matches!(
            self,
            Step::Writing { .. } | Step::Verifying { .. } | Step::DryRun { .. } | Step::Restoring
        )
    }
}

/// The Backup screen's part of the model.
#[derive(Clone, Debug, Default)]
pub struct BackupFlow {
    /// Where it stands.
    pub step: Step,
    /// The drives as last scanned.
    pub drives: Vec<DriveView>,
    /// Why removable drives are missing from the list, if they are.
    pub scan_note: Option<String>,
    /// The selected drive.
    pub cursor: usize,
    /// The drives chosen for the backup (two mirror).
    pub chosen: Vec<Drive>,
    /// A scan was asked for and not answered yet.
    pub scanning: bool,
    /// When the last scan was asked for.
    pub last_scan_ms: Option<u64>,
    /// The drive whose backups are listed.
    pub listing: Option<Drive>,
    /// Its backups, newest first.
    pub backups: Vec<BackupView>,
    /// The selected backup.
    pub backup_cursor: usize,
    /// The typed confirmation (the partition id).
    pub typed: String,
    /// The last notice.
    pub notice: Option<Notice>,
    /// Where the worker records the last verified backup (the terminal's state directory).
    pub record: Option<PathBuf>,
    /// The last verified backup, as recorded.
    pub last_verified: Option<LastVerified>,
    /// FAT images offered as drives in device mode (the demo's FAT drive).
    pub devices: Vec<PathBuf>,
}

impl BackupFlow {
    /// A flow whose verified backups are recorded at `record`, with the record read now (at
    /// start-up, before the first frame).
    pub fn with_record(record: PathBuf) -> BackupFlow {
        BackupFlow {
            last_verified: LastVerified::read(&record),
            record: Some(record),
            ..BackupFlow::default()
        }
    }

    /// Forgets what was read under a login; keeps the record.
    pub fn forget(&mut self) {
        *self = BackupFlow {
            record: self.record.take(),
            last_verified: self.last_verified.take(),
            devices: std::mem::take(&mut self.devices),
            ..BackupFlow::default()
        };
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        match &self.step {
            Step::Drives => Context::Tables(&[keymap::BACKUP_DRIVES, keymap::MOVE, keymap::GLOBAL]),
            Step::Backups => Context::Tables(&[keymap::BACKUP_LIST, keymap::MOVE, keymap::GLOBAL]),
            Step::Diff(_) => Context::Question,
            Step::Confirm(_) => Context::Text,
            _ => Context::Tables(&[keymap::GLOBAL]),
        }
    }

    /// The selected drive, if it can take a backup.
    fn selected_drive(&self) -> Option<&Drive> {
        self.drives.get(self.cursor)?.drive.as_ref()
    }

    fn warn(&mut self, text: impl Into<String>) -> Outcome {
        self.notice = Some(Notice::new(Level::Warn, text));
        Outcome::none()
    }
}

/// Opens the screen: the drives are scanned at once.
pub fn open(model: &mut Model) -> Vec<Effect> {
    let flow = &mut model.backup;
    flow.step = Step::Drives;
    flow.notice = None;
    scan(flow, model.drive_dirs.clone(), model.now_ms)
}

fn scan(flow: &mut BackupFlow, dirs: Vec<PathBuf>, now_ms: u64) -> Vec<Effect> {
    flow.scanning = true;
    flow.last_scan_ms = Some(now_ms);
    let devices = flow.devices.clone();
    vec![Effect::Send(Command::Backup(BackupCommand::Scan {
        dirs,
        devices,
    }))]
}

/// Each tick: while the drive list shows, a scan about once a second (drives come and go).
pub fn on_tick(model: &mut Model) -> Vec<Effect> {
    let flow = &mut model.backup;
    let due = flow
        .last_scan_ms
        .is_none_or(|last| model.now_ms.saturating_sub(last) >= SCAN_EVERY_MS);
    if model.screen != crate::tui::model::Screen::Backup
        || flow.step != Step::Drives
        || flow.scanning
        || !due
    {
        return Vec::new();
    }
    scan(flow, model.drive_dirs.clone(), model.now_ms)
}

/// Answers a key on the Backup screen.
pub fn on_action(model: &mut Model, action: Action) -> Outcome {
    let pso = model.session.as_ref().map(|s| s.role) == Some(OfficerRole::Pso);
    let flow = &mut model.backup;
    if flow.step.busy() {
        return match action {
            Action::Back => flow.warn("Wait: the HSM and the drive are at work."),
            _ => Outcome::none(),
        };
    }
    match flow.step.clone() {
        Step::Drives => drives_action(model, action, pso),
        Step::Backups => backups_action(flow, action, pso),
        Step::Diff(diff) => match action {
            Action::Yes => {
                flow.typed.clear();
                flow.step = Step::Confirm(diff);
                Outcome::none()
            }
            _ => back_to_backups(flow),
        },
        Step::Confirm(diff) => confirm_action(flow, action, diff, &model.target.partition_id),
        Step::Created(_) | Step::CreateFailed(_) if action == Action::Back => {
            flow.step = Step::Drives;
            Outcome::none()
        }
        Step::Restored(_) | Step::RestoreRefused(_) if action == Action::Back => {
            back_to_backups(flow)
        }
        _ => Outcome::none(),
    }
}

fn back_to_backups(flow: &mut BackupFlow) -> Outcome {
    flow.step = Step::Backups;
    flow.typed.clear();
    match flow.listing.clone() {
        // Listed again: a restore may have changed nothing on the drive, but a check may be due.
        Some(drive) => Outcome::one(Effect::Send(Command::Backup(BackupCommand::List { drive }))),
        None => Outcome::none(),
    }
}

fn drives_action(model: &mut Model, action: Action, pso: bool) -> Outcome {
    let flow = &mut model.backup;
    match action {
        Action::Back => return Outcome::Leave(Vec::new()),
        Action::Reload => return Outcome::Stay(scan(flow, model.drive_dirs.clone(), model.now_ms)),
        Action::Toggle => return toggle(flow),
        Action::Select => {
            let Some(drive) = flow.selected_drive().cloned() else {
                return flow.warn("This drive cannot be used: see why beside it.");
            };
            flow.listing = Some(drive.clone());
            flow.backups.clear();
            flow.backup_cursor = 0;
            flow.notice = None;
            flow.step = Step::Backups;
            return Outcome::one(Effect::Send(Command::Backup(BackupCommand::List { drive })));
        }
        Action::Create => {}
        _ => {
            flow.cursor = super::step_selection(flow.cursor, flow.drives.len(), action, 5);
            return Outcome::none();
        }
    }
    if !pso {
        return flow
            .warn("A backup needs a PSO login: log out (o on the dashboard) and log in as PSO.");
    }
    if flow.chosen.is_empty() {
        match flow.selected_drive().cloned() {
            Some(drive) => flow.chosen.push(drive),
            None => return flow.warn("Choose a drive first (Space), one or two."),
        }
    }
    flow.notice = None;
    flow.step = Step::Writing {
        written: 0,
        total: 0,
        elapsed_ms: 0,
    };
    Outcome::one(Effect::Send(Command::Backup(BackupCommand::Create {
        drives: flow.chosen.clone(),
        record: flow.record.clone(),
    })))
}

/// Space: choose the selected drive, or un-choose it; two at most (a mirror).
fn toggle(flow: &mut BackupFlow) -> Outcome {
    let Some(drive) = flow.selected_drive().cloned() else {
        return flow.warn("This drive cannot be used: see why beside it.");
    };
    if let Some(i) = flow.chosen.iter().position(|d| *d == drive) {
        flow.chosen.remove(i);
    } else if flow.chosen.len() >= 2 {
        return flow.warn("Two drives at most (a mirror): un-choose one first.");
    } else {
        flow.chosen.push(drive);
    }
    flow.notice = None;
    Outcome::none()
}

fn backups_action(flow: &mut BackupFlow, action: Action, pso: bool) -> Outcome {
    match action {
        Action::Back => {
            flow.step = Step::Drives;
            flow.notice = None;
            Outcome::none()
        }
        Action::Reload => match flow.listing.clone() {
            Some(drive) => {
                Outcome::one(Effect::Send(Command::Backup(BackupCommand::List { drive })))
            }
            None => Outcome::none(),
        },
        Action::Restore => {
            let (Some(drive), Some(b)) = (&flow.listing, flow.backups.get(flow.backup_cursor))
            else {
                return flow.warn("No backup chosen.");
            };
            if !pso {
                return flow.warn(
                    "A restore needs a PSO login: log out (o on the dashboard) and log in as PSO.",
                );
            }
            let source = match drive {
                Drive::Dir(dir) => Source::File(dir.join(&b.file_name)),
                Drive::Fat(device) => Source::Fat {
                    device: device.clone(),
                    name: b.file_name.clone(),
                },
            };
            flow.notice = None;
            flow.step = Step::DryRun {
                file_name: b.file_name.clone(),
                sent: 0,
                total: b.len,
                elapsed_ms: 0,
            };
            Outcome::one(Effect::Send(Command::Backup(BackupCommand::DryRun {
                source,
            })))
        }
        _ => {
            flow.backup_cursor =
                super::step_selection(flow.backup_cursor, flow.backups.len(), action, 5);
            Outcome::none()
        }
    }
}

fn confirm_action(
    flow: &mut BackupFlow,
    action: Action,
    diff: Box<RestoreDiff>,
    partition_id: &str,
) -> Outcome {
    match action {
        Action::Input(c) if flow.typed.chars().count() < MAX_TYPED => flow.typed.push(c),
        Action::Erase => {
            flow.typed.pop();
        }
        Action::Back => {
            flow.typed.clear();
            flow.step = Step::Diff(diff);
        }
        Action::Select if flow.typed == partition_id => {
            flow.typed.clear();
            flow.step = Step::Restoring;
            return Outcome::one(Effect::Send(Command::Backup(BackupCommand::Commit(diff))));
        }
        Action::Select => {
            flow.notice = Some(Notice::new(
                Level::Warn,
                format!("That is not the partition id: type {partition_id} to restore."),
            ));
        }
        _ => {}
    }
    Outcome::none()
}

/// Takes the worker's report. An answer the current step does not wait for is ignored, so
/// that no step is reached out of order (a diff without a dry run, a restore without one).
pub fn on_event(model: &mut Model, event: BackupEvent) -> Vec<Effect> {
    match event {
        BackupEvent::Uploading { .. }
        | BackupEvent::Diff(_)
        | BackupEvent::RestoreRefused(_)
        | BackupEvent::Restored(_) => on_restore_event(model, event),
        event => {
            on_write_event(&mut model.backup, event);
            Vec::new()
        }
    }
}

/// The drives, a backup's writing and its listing.
fn on_write_event(flow: &mut BackupFlow, event: BackupEvent) {
    match event {
        BackupEvent::Drives { drives, note } => {
            flow.scanning = false;
            // A chosen drive that went away is no longer chosen.
            flow.chosen
                .retain(|d| drives.iter().any(|v| v.drive.as_ref() == Some(d)));
            flow.cursor = flow.cursor.min(drives.len().saturating_sub(1));
            flow.drives = drives;
            flow.scan_note = note;
        }
        BackupEvent::Progress {
            written,
            total,
            elapsed_ms,
        } if matches!(flow.step, Step::Writing { .. }) => {
            flow.step = Step::Writing {
                written,
                total,
                elapsed_ms,
            };
        }
        BackupEvent::Verifying { total } if matches!(flow.step, Step::Writing { .. }) => {
            flow.step = Step::Verifying { total };
        }
        BackupEvent::Created { created, last } => {
            // Recorded whatever the screen shows now (a session locked while writing).
            if let Some(last) = last {
                flow.last_verified = Some(*last);
            }
            if flow.step.busy() {
                flow.notice = None; // the step says it
                flow.step = Step::Created(created);
                flow.chosen.clear();
            }
        }
        BackupEvent::CreateFailed(why) if flow.step.busy() => {
            flow.notice = None;
            flow.step = Step::CreateFailed(why);
        }
        BackupEvent::Listed { drive, backups } if flow.listing.as_ref() == Some(&drive) => {
            flow.backup_cursor = flow.backup_cursor.min(backups.len().saturating_sub(1));
            flow.backups = backups;
        }
        BackupEvent::Checked {
            drive,
            file_name,
            check,
        } if flow.listing.as_ref() == Some(&drive) => {
            if let Some(b) = flow.backups.iter_mut().find(|b| b.file_name == file_name) {
                b.check = check;
            }
        }
        BackupEvent::ListFailed(why) => flow.notice = Some(Notice::new(Level::Error, why)),
        _ => {}
    }
}

/// A restore's upload, dry run, diff and swap.
fn on_restore_event(model: &mut Model, event: BackupEvent) -> Vec<Effect> {
    let flow = &mut model.backup;
    match event {
        BackupEvent::Uploading {
            sent,
            total,
            elapsed_ms,
        } => {
            if let Step::DryRun {
                sent: s,
                total: t,
                elapsed_ms: e,
                ..
            } = &mut flow.step
            {
                (*s, *t, *e) = (sent, total, elapsed_ms);
            }
        }
        BackupEvent::Diff(diff) if matches!(flow.step, Step::DryRun { .. }) => {
            flow.step = Step::Diff(diff);
        }
        BackupEvent::RestoreRefused(why)
            if matches!(flow.step, Step::DryRun { .. } | Step::Restoring) =>
        {
            flow.notice = None;
            flow.step = Step::RestoreRefused(why);
        }
        BackupEvent::Restored(text) if flow.step == Step::Restoring => {
            flow.notice = None;
            flow.step = Step::Restored(text);
            // The keys and the usage changed: read them again when shown.
            model.keys = super::keys::KeysFlow::new(model.keys.filter);
            model.bin = super::keys::KeysFlow::new(model.bin.filter);
            return vec![Effect::Send(Command::Refresh)];
        }
        _ => {}
    }
    Vec::new()
}
