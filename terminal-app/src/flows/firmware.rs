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

/// Draws the Firmware screen: the device above, the images and the selected one's checks
/// below (one line each, clipped; a refusal's whole reason follows them), a gauge while
/// installing.
pub fn view(frame: &mut Frame, area: Rect, flow: &FirmwareFlow, theme: &Theme) {
    let device = device_lines(flow, theme);
    let height = view::wrapped_height(&device, area.width.saturating_sub(2)) + 2;
    let notice = flow
        .notice
        .as_ref()
        .map(|n| view::notice_paragraph(n, theme));
    let notice_rows = match &flow.notice {
        Some(n) => (n.text.chars().count() + 10)
            .div_ceil(usize::from(area.width.max(1)))
            .min(3) as u16,
        None => 0,
    };
    let [top, bottom, foot] = Layout::vertical([
        Constraint::Length(height.min(area.height / 2)),
        Constraint::Min(3),
        Constraint::Length(notice_rows),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(device)
            .block(view::block("Firmware: this terminal", theme))
            .wrap(Wrap { trim: false }),
        top,
    );
    let title = "Update images on the drives (*.tsfw), verified before any install";
    let inner = view::block(title, theme).inner(bottom);
    frame.render_widget(view::block(title, theme), bottom);
    let list = image_lines(flow, theme);
    let gauge_rows = u16::from(matches!(flow.stage, Stage::Installing { .. }));
    let [list_area, step_area, gauge] = Layout::vertical([
        Constraint::Length(list.len().try_into().unwrap_or(u16::MAX)),
        Constraint::Min(0),
        Constraint::Length(gauge_rows),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(list), list_area);
    frame.render_widget(
        Paragraph::new(next_step(flow, theme)).wrap(Wrap { trim: false }),
        step_area,
    );
    if let Stage::Installing { done, total } = flow.stage {
        let ratio = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0)
        };
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme.accent)
                .ratio(ratio)
                .label(format!(
                    "writing the inactive slot: {done} of {total} bytes ({:.0} %)",
                    ratio * 100.0
                )),
            gauge,
        );
    }
    if let Some(notice) = notice {
        frame.render_widget(notice, foot);
    }
}

fn device_lines(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    let d = match &flow.device {
        None => return vec![Line::styled("Reading the device…", theme.muted)],
        Some(Err(why)) => return vec![Line::styled(why.clone(), theme.warn)],
        Some(Ok(d)) => d,
    };
    let current = d.version(d.active).unwrap_or("unreadable");
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("Version {current}"), theme.accent),
        Span::raw(format!(
            " (slot {}) · hardware {} · release keys {} of {}",
            d.active, d.hardware_id, d.keys.0, d.keys.1
        )),
    ])];
    for s in &d.slots {
        let what = match (&s.version, &s.unreadable) {
            (Some(v), _) => format!(
                "{v}, rollback index {}",
                s.rollback_index.unwrap_or_default()
            ),
            (None, Some(why)) => format!("unreadable: {why}"),
            (None, None) => "no image".to_owned(),
        };
        lines.push(Line::from(format!(
            "Slot {}  {:<8} {what}",
            s.letter, s.role
        )));
    }
    lines.push(state_line(d, theme));
    lines.push(Line::from(format!(
        "Rollback floor {}: images with a lower index are refused.",
        d.rollback_floor
    )));
    lines
}

/// Confirmed, pending or on trial, and what the next start does.
fn state_line(d: &DeviceView, theme: &Theme) -> Line<'static> {
    let Some(p) = d.pending else {
        return Line::styled(
            format!("✓ confirmed: slot {} starts; nothing pending.", d.active),
            theme.ok,
        );
    };
    let version = d.version(p).unwrap_or("?");
    let text = if d.boot_attempts == 0 {
        format!(
            "! pending: slot {p} ({version}) starts on trial at the next start and must confirm \
             within {MAX_BOOT_ATTEMPTS} starts; otherwise slot {} starts again. The floor rises \
             only on confirmation.",
            d.active
        )
    } else {
        format!(
            "! on trial: slot {p} ({version}), start {} of {MAX_BOOT_ATTEMPTS}; c confirms it \
             once healthy, else slot {} starts again after {MAX_BOOT_ATTEMPTS} starts.",
            d.boot_attempts, d.active
        )
    };
    Line::styled(text, theme.warn)
}

fn image_lines(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    if flow.stage == Stage::Reading && flow.images.is_empty() {
        return vec![Line::styled(
            "Reading the drives and verifying the images…",
            theme.muted,
        )];
    }
    if flow.images.is_empty() {
        return vec![Line::styled(
            "No update image (*.tsfw) on the drives. Put one on a drive; r reads again.",
            theme.muted,
        )];
    }
    let mut lines: Vec<Line> = flow
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let (mark, style) = if image.passed {
                ("✓ verified", theme.ok)
            } else {
                ("✗ refused", theme.error)
            };
            let selected = i == flow.selected;
            Line::from(vec![
                Span::styled(
                    format!("{} {}", if selected { "›" } else { " " }, image.name),
                    if selected {
                        theme.selection
                    } else {
                        theme.plain
                    },
                ),
                Span::raw("  "),
                Span::styled(mark, style),
            ])
        })
        .collect();
    let Some(image) = flow.images.get(flow.selected) else {
        return lines;
    };
    for c in &image.checks {
        let (mark, style, detail) = match c.mark {
            Mark::Ok => ("✓", theme.ok, c.detail.clone()),
            Mark::Failed(name) => ("✗", theme.error, format!("FAILED {name}: {}", c.detail)),
            Mark::NotRun => ("·", theme.muted, format!("not run: {}", c.detail)),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {mark} "), style),
            Span::raw(format!("{:<15}", c.label)),
            Span::styled(
                detail,
                if c.mark == Mark::Ok {
                    theme.plain
                } else {
                    style
                },
            ),
        ]));
    }
    lines
}

/// Under the checks: why the image is refused (whole), or the question, or its files and the
/// install hint.
fn next_step(flow: &FirmwareFlow, theme: &Theme) -> Vec<Line<'static>> {
    if flow.stage == Stage::AskConfirm {
        return vec![Line::styled(
            "Confirm the update on trial as healthy? Its slot becomes active and the rollback \
             floor rises to its index: older images are refused from then on. y: confirm · n: \
             not now",
            theme.warn,
        )];
    }
    let Some(image) = flow.images.get(flow.selected) else {
        return Vec::new();
    };
    if let Some(why) = &image.error {
        return vec![Line::styled(format!("Unreadable: {why}"), theme.error)];
    }
    if !image.passed {
        let reason = image
            .checks
            .iter()
            .find_map(|c| match c.mark {
                Mark::Failed(name) => Some(format!("{} ({name}): {}", c.label, c.detail)),
                _ => None,
            })
            .unwrap_or_default();
        return vec![Line::styled(
            format!("Refused, {reason}. Nothing from this image can be installed."),
            theme.error,
        )];
    }
    let target = flow
        .device()
        .map_or('?', |d| if d.active == 'A' { 'B' } else { 'A' });
    let version = image.version.clone().unwrap_or_default();
    if flow.stage == Stage::AskInstall {
        return vec![Line::styled(
            format!(
                "Install {version} to slot {target}? The device verifies it again first. y: \
                 install · n: not now"
            ),
            theme.warn,
        )];
    }
    let files: Vec<String> = image
        .files
        .iter()
        .map(|f| {
            let x = if f.executable { ", executable" } else { "" };
            format!("{} ({} B{x})", f.path, f.size)
        })
        .collect();
    vec![
        Line::from(format!("  Files: {}", files.join(", "))),
        Line::styled(
            format!("i installs {version} to slot {target}."),
            theme.accent,
        ),
    ]
}

/// Runs a firmware step on the worker; progress goes to `events` as the slot is written.
pub fn work(step: FirmwareCommand, events: Option<&Sender<Event>>) -> Vec<Event> {
    let wrap = |e: FirmwareEvent| Event::Firmware(e);
    match step {
        FirmwareCommand::Scan { root, drives } => vec![wrap(scan(root.as_deref(), &drives))],
        FirmwareCommand::Install {
            root,
            image,
            drives,
        } => {
            let mut last = None;
            let mut progress = |done: u64, total: u64| {
                // At most a hundred updates, whatever the image's size.
                let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
                if last != Some(percent) {
                    last = Some(percent);
                    if let Some(events) = events {
                        let _ = events.send(wrap(FirmwareEvent::Progress { done, total }));
                    }
                }
            };
            let done = Device::open(&root).and_then(|device| {
                device.install_with(
                    &image,
                    &mut firmware_image::device::Faults::none(),
                    &mut progress,
                )
            });
            let said = match done {
                Ok(i) => FirmwareEvent::Done(format!(
                    "Installed {} to slot {}, pending its first start.",
                    i.manifest.version, i.slot
                )),
                Err(e) => FirmwareEvent::Failed(format!("Install refused: {e}")),
            };
            vec![wrap(said), wrap(scan(Some(&root), &drives))]
        }
        FirmwareCommand::Confirm { root, drives } => {
            let said = match Device::open(&root).and_then(|d| d.confirm()) {
                Ok(c) => FirmwareEvent::Done(format!(
                    "Confirmed slot {} ({}); rollback floor now {}.",
                    c.slot, c.version, c.rollback_floor
                )),
                Err(e) => FirmwareEvent::Failed(format!("Confirmation refused: {e}")),
            };
            vec![wrap(said), wrap(scan(Some(&root), &drives))]
        }
    }
}

/// Reads the device and verifies the images on the drives against it.
pub fn scan(root: Option<&Path>, drives: &[PathBuf]) -> FirmwareEvent {
    let device = match root {
        None => Err(
            "This terminal has no firmware device root: set `root` in the \
                     configuration's [firmware] table on a terminal device."
                .to_owned(),
        ),
        Some(root) => Device::open(root).map_err(|e| format!("The device cannot be read: {e}")),
    };
    let status = device.as_ref().ok().map(Device::status);
    let view = match (&device, status) {
        (Err(why), _) => Err(why.clone()),
        (Ok(_), Some(Ok(s))) => Ok(device_view(&s)),
        (Ok(_), Some(Err(e))) => Err(format!("The device cannot be read: {e}")),
        (Ok(_), None) => unreachable!("read above"),
    };
    let images = match &device {
        Ok(device) => find_images(drives)
            .into_iter()
            .map(|path| image_view(device, path))
            .collect(),
        Err(_) => Vec::new(),
    };
    FirmwareEvent::Scanned {
        device: view,
        images,
    }
}

/// The `*.tsfw` files directly in each drive directory, sorted, at most [`MAX_IMAGES`] each.
fn find_images(drives: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in drives {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case(IMAGE_EXTENSION))
            })
            .collect();
        found.sort();
        found.truncate(MAX_IMAGES);
        all.extend(found);
    }
    all
}

/// The device's status as shown.
pub fn device_view(s: &Status) -> DeviceView {
    DeviceView {
        hardware_id: printable(&s.hardware_id),
        active: s.active.letter(),
        pending: s.pending.map(|p| p.letter()),
        boot_attempts: s.boot_attempts,
        rollback_floor: s.rollback_floor,
        keys: (s.key_threshold, s.key_count),
        slots: s
            .slots
            .iter()
            .map(|slot| {
                let (version, rollback_index, unreadable) = match &slot.image {
                    Some(Ok(m)) => (Some(m.version.to_string()), Some(m.rollback_index), None),
                    Some(Err(e)) => (None, None, Some(printable(e))),
                    None => (None, None, None),
                };
                SlotView {
                    letter: slot.slot.letter(),
                    role: match slot.role {
                        SlotRole::Active => "active",
                        SlotRole::Pending => "pending",
                        SlotRole::Spare => "spare",
                        SlotRole::Empty => "empty",
                    }
                    .to_owned(),
                    version,
                    rollback_index,
                    unreadable,
                }
            })
            .collect(),
    }
}

fn image_view(device: &Device, path: PathBuf) -> ImageView {
    let name = printable(&path.file_name().unwrap_or_default().to_string_lossy());
    match device.verify(&path) {
        Ok(v) => verification_view(name, path, v),
        Err(e) => ImageView {
            name,
            path,
            checks: Vec::new(),
            passed: false,
            version: None,
            rollback_index: None,
            files: Vec::new(),
            error: Some(printable(&e.to_string())),
        },
    }
}

/// An image's verification as shown: every check; the version and files once verified.
pub fn verification_view(name: String, path: PathBuf, v: Verification) -> ImageView {
    let checks = v
        .report
        .results
        .iter()
        .map(|(check, outcome)| {
            let (mark, detail) = match outcome {
                CheckOutcome::Passed(detail) => (Mark::Ok, detail.clone()),
                CheckOutcome::Failed(r) => (Mark::Failed(r.name()), r.to_string()),
                CheckOutcome::NotRun(why) => (Mark::NotRun, (*why).to_owned()),
            };
            CheckLine {
                label: check.label(),
                mark,
                detail: printable(&detail),
            }
        })
        .collect();
    let passed = v.report.passed();
    let verified = v.into_result().ok();
    let manifest = verified.as_ref().map(|v| v.manifest());
    ImageView {
        name,
        path,
        checks,
        passed,
        version: manifest.map(|m| format!("{} {}", printable(&m.product), m.version)),
        rollback_index: manifest.map(|m| m.rollback_index),
        files: manifest
            .map(|m| {
                m.files
                    .iter()
                    .map(|f| FileLine {
                        path: printable(&f.path),
                        size: f.size,
                        executable: f.executable,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: None,
    }
}
