//! Firmware: the terminal device's own firmware (the `firmware-image` crate's [`Device`]). The
//! screen shows the current version, slots A and B (version, role), whether an update is
//! pending, on trial or confirmed, the boot attempts and the rollback floor; the update images
//! (`*.tsfw`) found on the drives, each with every verification result (structure, manifest
//! and paths, m-of-n release signatures, hardware id, rollback index, payload digest, file
//! digests) and, once verified, its file list; an install of a verified image with a progress
//! gauge; and, after it, what the next start does. An update on trial is confirmed here.
//!
//! Who may use it: anybody at the terminal, logged in or not (it opens from the welcome screen
//! as well as from the dashboard's menu). The device's firmware is the terminal's business, not
//! a partition's: an HSM login proves a quorum of a partition's officers, who have no say over
//! which program the device runs, and a terminal whose link or HSM is down must still be
//! updatable. What authorises an update is in the image: a quorum of the device's release keys
//! signed it, for this hardware, at or above the rollback floor; the screen installs nothing
//! that failed a check, and the device falls back by itself if the update does not confirm.
//!
//! The model part holds plain views ([`DeviceView`], [`ImageView`]); the worker part reads the
//! device and the drives and installs, sending progress as it writes.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use firmware_image::device::{MAX_BOOT_ATTEMPTS, SlotRole};
use firmware_image::{Device, Outcome as CheckOutcome, Status, Verification};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use super::Outcome;
use crate::cli::printable;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect, Event};
use crate::tui::model::{Level, Notice};
use crate::tui::theme::Theme;
use crate::tui::view;

mod screen;
mod worker;

pub use screen::view;
pub use worker::{device_view, scan, verification_view, work};

/// Images listed per drive at most (each is verified when listed).
pub const MAX_IMAGES: usize = 16;

/// The file name ending of firmware images.
pub const IMAGE_EXTENSION: &str = "tsfw";

/// The device as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceView {
    /// Its hardware id.
    pub hardware_id: String,
    /// The active slot.
    pub active: char,
    /// The slot on trial or waiting for its first start.
    pub pending: Option<char>,
    /// Starts of the pending slot so far.
    pub boot_attempts: u8,
    /// The lowest rollback index accepted.
    pub rollback_floor: u64,
    /// Release signatures needed, of release keys.
    pub keys: (usize, usize),
    /// Slots A and B.
    pub slots: Vec<SlotView>,
}

impl DeviceView {
    /// The version of `slot`, if it holds a readable image.
    pub fn version(&self, slot: char) -> Option<&str> {
        self.slots
            .iter()
            .find(|s| s.letter == slot)
            .and_then(|s| s.version.as_deref())
    }
}

/// One slot as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// `A` or `B`.
    pub letter: char,
    /// `active`, `pending`, `spare` or `empty`.
    pub role: String,
    /// Its version.
    pub version: Option<String>,
    /// Its rollback index.
    pub rollback_index: Option<u64>,
    /// Why its manifest cannot be read.
    pub unreadable: Option<String>,
}

/// One check's result as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// The check, e.g. `signatures`.
    pub label: &'static str,
    /// Passed, failed (with the refusal's name), or not run.
    pub mark: Mark,
    /// What was found, or why it failed or did not run.
    pub detail: String,
}

/// A check's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Passed.
    Ok,
    /// Failed: the refusal's short name (`too-few-signatures`, …).
    Failed(&'static str),
    /// Not run, because of an earlier failure.
    NotRun,
}

/// A file of a verified image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLine {
    /// Its path in the slot.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Whether it is executable.
    pub executable: bool,
}

/// An image found on a drive, verified against the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageView {
    /// Its file name.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Every check, in order (empty if the file could not be read).
    pub checks: Vec<CheckLine>,
    /// Whether every check passed.
    pub passed: bool,
    /// `product version`, once verified.
    pub version: Option<String>,
    /// Its rollback index, once verified.
    pub rollback_index: Option<u64>,
    /// Its files, once verified.
    pub files: Vec<FileLine>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// A step for the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirmwareCommand {
    /// Read the device at `root` and verify the images on `drives`.
    Scan {
        /// The device root, if the terminal has one.
        root: Option<PathBuf>,
        /// The drive directories.
        drives: Vec<PathBuf>,
    },
    /// Install `image` (verified again by the device), then scan.
    Install {
        /// The device root.
        root: PathBuf,
        /// The image.
        image: PathBuf,
        /// The drive directories, for the scan after.
        drives: Vec<PathBuf>,
    },
    /// Confirm the update on trial, then scan.
    Confirm {
        /// The device root.
        root: PathBuf,
        /// The drive directories, for the scan after.
        drives: Vec<PathBuf>,
    },
}

/// What the worker found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirmwareEvent {
    /// The device (or why it cannot be read) and the images on the drives.
    Scanned {
        /// The device.
        device: Result<DeviceView, String>,
        /// The images, verified.
        images: Vec<ImageView>,
    },
    /// Bytes of the slot written so far, of the total.
    Progress {
        /// Written.
        done: u64,
        /// In all.
        total: u64,
    },
    /// An install or a confirmation is done: what to say.
    Done(String),
    /// An install or a confirmation was refused or failed; nothing changed.
    Failed(String),
}

/// What the screen is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// Reading the device and the drives.
    #[default]
    Reading,
    /// Showing them.
    Browse,
    /// Asking whether to install the selected image.
    AskInstall,
    /// Asking whether to confirm the update on trial.
    AskConfirm,
    /// Installing: bytes written of the total.
    Installing {
        /// Written.
        done: u64,
        /// In all.
        total: u64,
    },
}

/// The Firmware screen's part of the model.
#[derive(Clone, Debug, Default)]
pub struct FirmwareFlow {
    /// The device root (the configuration's, or the demo's); `None` off a terminal device.
    pub root: Option<PathBuf>,
    /// The device as read, or why it cannot be; `None` before the first read.
    pub device: Option<Result<DeviceView, String>>,
    /// The images found on the drives.
    pub images: Vec<ImageView>,
    /// The selected image.
    pub selected: usize,
    /// What the screen is doing.
    pub stage: Stage,
    /// The last notice.
    pub notice: Option<Notice>,
}

impl FirmwareFlow {
    /// How keys read here.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::AskInstall | Stage::AskConfirm => Context::Question,
            Stage::Installing { .. } | Stage::Reading => Context::Tables(&[keymap::GLOBAL]),
            Stage::Browse => {
                Context::Tables(&[keymap::FIRMWARE, keymap::NAVIGATION, keymap::GLOBAL])
            }
        }
    }

    /// Opens the screen: reads the device and the drives.
    pub fn open(&mut self, drives: &[PathBuf]) -> Vec<Effect> {
        self.stage = Stage::Reading;
        self.notice = None;
        vec![self.scan(drives)]
    }

    fn scan(&self, drives: &[PathBuf]) -> Effect {
        Effect::Send(Command::Firmware(FirmwareCommand::Scan {
            root: self.root.clone(),
            drives: drives.to_vec(),
        }))
    }

    /// The selected image, if it passed every check.
    fn installable(&self) -> Option<&ImageView> {
        self.images.get(self.selected).filter(|i| i.passed)
    }

    /// The device, if it was read.
    fn device(&self) -> Option<&DeviceView> {
        self.device.as_ref().and_then(|d| d.as_ref().ok())
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action, drives: &[PathBuf]) -> Outcome {
        match (&self.stage, action) {
            (Stage::AskInstall, Action::Yes) => return self.install(drives),
            (Stage::AskConfirm, Action::Yes) => {
                self.stage = Stage::Reading;
                let root = self.root.clone().expect("a device was read");
                return Outcome::one(Effect::Send(Command::Firmware(FirmwareCommand::Confirm {
                    root,
                    drives: drives.to_vec(),
                })));
            }
            (Stage::AskInstall | Stage::AskConfirm, _) => {
                self.stage = Stage::Browse;
                return Outcome::none();
            }
            (Stage::Installing { .. }, Action::Back) => {
                self.notice = Some(Notice::new(
                    Level::Info,
                    "Wait until the device has answered; the screen stays until then.",
                ));
                return Outcome::none();
            }
            _ => {}
        }
        match action {
            Action::Back => Outcome::Leave(Vec::new()),
            Action::Reload => {
                self.stage = Stage::Reading;
                Outcome::one(self.scan(drives))
            }
            Action::Install => self.ask_install(),
            Action::ConfirmUpdate => self.ask_confirm(),
            _ => {
                self.selected = super::step_selection(self.selected, self.images.len(), action, 5);
                Outcome::none()
            }
        }
    }

    fn ask_install(&mut self) -> Outcome {
        let why_not = match (self.device(), self.images.get(self.selected)) {
            (None, _) => Some("the device could not be read".to_owned()),
            (_, None) => Some("no update image was found on a drive".to_owned()),
            (Some(d), _) if d.pending.is_some() => Some(format!(
                "slot {} holds an update that has not confirmed yet: confirm it after its \
                 start, or let it fall back, first",
                d.pending.unwrap_or('?')
            )),
            (_, Some(image)) if !image.passed => Some(format!(
                "{} failed its verification (see the checks)",
                image.name
            )),
            _ => None,
        };
        match why_not {
            Some(why) => {
                self.notice = Some(Notice::new(
                    Level::Warn,
                    format!("Nothing to install: {why}."),
                ));
            }
            None => self.stage = Stage::AskInstall,
        }
        Outcome::none()
    }

    fn ask_confirm(&mut self) -> Outcome {
        match self.device() {
            Some(d) if d.pending.is_some() && d.boot_attempts > 0 => {
                self.stage = Stage::AskConfirm;
            }
            Some(d) if d.pending.is_some() => {
                self.notice = Some(Notice::new(
                    Level::Warn,
                    "The update has not been started yet: it is confirmed after its first start.",
                ));
            }
            _ => {
                self.notice = Some(Notice::new(
                    Level::Info,
                    "No update is on trial: nothing to confirm.",
                ));
            }
        }
        Outcome::none()
    }

    fn install(&mut self, drives: &[PathBuf]) -> Outcome {
        let (Some(root), Some(image)) = (self.root.clone(), self.installable()) else {
            self.stage = Stage::Browse;
            return Outcome::none();
        };
        let image = image.path.clone();
        self.stage = Stage::Installing { done: 0, total: 0 };
        self.notice = Some(Notice::new(Level::Info, "Verifying again, then writing…"));
        Outcome::one(Effect::Send(Command::Firmware(FirmwareCommand::Install {
            root,
            image,
            drives: drives.to_vec(),
        })))
    }

    /// Takes the worker's report.
    pub fn on_event(&mut self, event: FirmwareEvent) -> Vec<Effect> {
        match event {
            FirmwareEvent::Scanned { device, images } => {
                self.device = Some(device);
                self.images = images;
                self.selected = self.selected.min(self.images.len().saturating_sub(1));
                self.stage = Stage::Browse;
            }
            FirmwareEvent::Progress { done, total } => {
                if let Stage::Installing { .. } = self.stage {
                    self.stage = Stage::Installing { done, total };
                }
            }
            FirmwareEvent::Done(text) => self.notice = Some(Notice::new(Level::Ok, text)),
            FirmwareEvent::Failed(text) => {
                self.stage = Stage::Browse;
                self.notice = Some(Notice::new(
                    Level::Error,
                    format!("{text}. Nothing changed."),
                ));
            }
        }
        Vec::new()
    }
}
