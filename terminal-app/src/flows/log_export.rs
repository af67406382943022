//! The Logs screen's export panel (also the menu's "Log export"): a range (since the last
//! confirmed export, the default; everything; or a time window typed in place), a format (the
//! JSON Lines evidence, plus syslog or CEF records beside it for a SIEM) and a drive; then the
//! export written with a progress bar, the file read back from the drive and verified against
//! the pinned audit key as its own step, and only then confirmed at the HSM. The steps are
//! those of `tessera log export` ([`crate::cli::log_export::export_over`]), called, not copied.

mod view;
mod work;

use std::path::PathBuf;

pub use view::view;
pub(crate) use work::work;

use crate::cli::log_export::ExportStep;
use crate::tui::keymap::{self, Action, Context};
use crate::tui::message::{Command, Effect};

/// Moving through the chooser: the navigation keys but Enter, which exports here.
const MOVE: &[keymap::Binding] = keymap::NAVIGATION.split_at(6).0;

/// The most characters a time window may be typed with.
pub const MAX_WINDOW_TEXT: usize = 48;

/// Which entries to export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RangeChoice {
    /// The entries after the last confirmed export: the usual export, and the default.
    #[default]
    SinceLast,
    /// Every entry the HSM stores.
    All,
    /// The entries of a time window (UTC), typed in place.
    Window,
}

impl RangeChoice {
    fn next(self) -> RangeChoice {
        match self {
            RangeChoice::SinceLast => RangeChoice::All,
            RangeChoice::All => RangeChoice::Window,
            RangeChoice::Window => RangeChoice::SinceLast,
        }
    }

    /// As shown.
    pub fn label(self) -> &'static str {
        match self {
            RangeChoice::SinceLast => "since the last confirmed export",
            RangeChoice::All => "everything stored",
            RangeChoice::Window => "a time window (UTC)",
        }
    }
}

/// What is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The JSON Lines export: the evidence `tessera log verify` checks.
    #[default]
    Evidence,
    /// The evidence, and RFC 5424 syslog records beside it.
    Syslog,
    /// The evidence, and CEF records beside it.
    Cef,
}

impl Format {
    fn next(self) -> Format {
        match self {
            Format::Evidence => Format::Syslog,
            Format::Syslog => Format::Cef,
            Format::Cef => Format::Evidence,
        }
    }

    /// As shown.
    pub fn label(self) -> &'static str {
        match self {
            Format::Evidence => "JSON Lines evidence (verifiable)",
            Format::Syslog => "JSON Lines evidence + syslog (RFC 5424) records",
            Format::Cef => "JSON Lines evidence + CEF records",
        }
    }

    /// The SIEM format written beside the evidence, if any.
    pub fn siem(self) -> Option<audit_log::SiemFormat> {
        match self {
            Format::Evidence => None,
            Format::Syslog => Some(audit_log::SiemFormat::Syslog),
            Format::Cef => Some(audit_log::SiemFormat::Cef),
        }
    }
}

/// A place to write to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveView {
    /// As shown: the directory, or the drive's vendor and model with its mount point.
    pub label: String,
    /// The directory written to.
    pub path: PathBuf,
    /// Bytes free there, when known.
    pub free: Option<u64>,
}

/// The row of the chooser that keys change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    /// The range.
    #[default]
    Range,
    /// The format.
    Format,
    /// The drive.
    Drive,
}

/// The range as the worker runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// Since the last confirmed export.
    SinceLast,
    /// Everything stored.
    All,
    /// Entries whose time is in `from_ms..=to_ms` (Unix milliseconds, UTC).
    Window {
        /// The window's start.
        from_ms: u64,
        /// The window's end, included.
        to_ms: u64,
    },
}

/// A request to the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogExportCommand {
    /// List the places to write to: these directories, and the removable drives mounted.
    Drives(Vec<PathBuf>),
    /// Export.
    Start {
        /// Which entries.
        range: RangeSpec,
        /// What is written.
        format: Format,
        /// Into which directory.
        dir: PathBuf,
    },
}

/// A finished, verified export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportDone {
    /// The evidence file.
    pub file: String,
    /// Its first and last entry (`to < from`: nothing new).
    pub from: u64,
    /// Its last entry.
    pub to: u64,
    /// Entries in it.
    pub entries: u64,
    /// Its size.
    pub bytes: u64,
    /// The audit key it verified against (fingerprint, shown form).
    pub key: String,
    /// Whether the HSM counts it exported.
    pub confirmed: bool,
    /// The SIEM records written beside it: the file and how many, or why not.
    pub siem: Option<Result<(String, u64), String>>,
}

/// Why an export stopped, at which step, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFailure {
    /// The step: `writing`, `read-back`, `confirming`, `finding the window`.
    pub step: &'static str,
    /// What went wrong.
    pub why: String,
    /// What to do about it.
    pub todo: String,
}

/// A report from the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogExportEvent {
    /// The places to write to; a note when removable drives could not be scanned.
    Drives {
        /// The places.
        drives: Vec<DriveView>,
        /// Why removable drives are missing, if they are.
        note: Option<String>,
    },
    /// How far the export is.
    Progress(ExportStep),
    /// Written, read back, verified, and (if it continues the last export) confirmed.
    Done(Box<ExportDone>),
    /// Stopped; nothing was counted as exported.
    Failed(Box<ExportFailure>),
}

/// Where the export is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// The user chooses.
    #[default]
    Choosing,
    /// Sent to the worker; nothing reported yet (a time window is being looked up).
    Starting,
    /// The worker reports a step.
    Running(ExportStep),
    /// Finished.
    Done(Box<ExportDone>),
    /// Stopped.
    Failed(Box<ExportFailure>),
}

/// The export panel's part of the model.
#[derive(Clone, Debug, Default)]
pub struct LogExportFlow {
    /// The step.
    pub stage: Stage,
    /// The chooser's row that keys change.
    pub part: Part,
    /// The range.
    pub range: RangeChoice,
    /// The time window as typed.
    pub window: String,
    /// The time window is being typed.
    pub editing: bool,
    /// What is wrong with the typed window.
    pub window_problem: Option<String>,
    /// The format.
    pub format: Format,
    /// The places to write to.
    pub drives: Vec<DriveView>,
    /// The chosen place.
    pub drive: usize,
    /// Why removable drives are missing, if they are.
    pub drive_note: Option<String>,
    /// The places are being listed.
    pub scanning: bool,
}

/// What the export panel's answer to a key means for the Logs screen.
#[derive(Debug, PartialEq, Eq)]
pub enum PanelOutcome {
    /// The panel stays open; do these.
    Stay(Vec<Effect>),
    /// The panel closes; `reload`: the log changed (an export was logged).
    Close {
        /// Read the log again.
        reload: bool,
    },
}

impl LogExportFlow {
    /// A fresh panel, listing the places in `dirs` and the removable drives.
    pub fn open(dirs: &[PathBuf]) -> (LogExportFlow, Vec<Effect>) {
        let flow = LogExportFlow {
            scanning: true,
            ..LogExportFlow::default()
        };
        let scan = Effect::Send(Command::LogExport(LogExportCommand::Drives(dirs.to_vec())));
        (flow, vec![scan])
    }

    /// Whether the worker is exporting.
    pub fn running(&self) -> bool {
        matches!(self.stage, Stage::Starting | Stage::Running(_))
    }

    /// How keys read here.
    pub fn context(&self) -> Context {
        if self.editing {
            Context::Text
        } else if self.running() {
            // Esc is not offered: the worker finishes the export (or fails cleanly).
            Context::Tables(&[keymap::BUSY])
        } else {
            match self.stage {
                Stage::Choosing => Context::Tables(&[keymap::LOG_EXPORT, MOVE, keymap::GLOBAL]),
                _ => Context::Tables(&[keymap::LOG_EXPORT_END, keymap::GLOBAL]),
            }
        }
    }

    /// Answers a key.
    pub fn on_action(&mut self, action: Action, dirs: &[PathBuf]) -> PanelOutcome {
        if self.editing {
            self.on_window_key(action);
            return PanelOutcome::Stay(Vec::new());
        }
        match &self.stage {
            // An export is not stopped halfway: the worker finishes it (or fails cleanly).
            Stage::Starting | Stage::Running(_) => PanelOutcome::Stay(Vec::new()),
            Stage::Done(_) => match action {
                Action::Back | Action::Select => PanelOutcome::Close { reload: true },
                _ => PanelOutcome::Stay(Vec::new()),
            },
            Stage::Failed(_) => match action {
                Action::Back => PanelOutcome::Close { reload: true },
                Action::Select => {
                    self.stage = Stage::Choosing;
                    PanelOutcome::Stay(Vec::new())
                }
                _ => PanelOutcome::Stay(Vec::new()),
            },
            Stage::Choosing => self.on_choosing(action, dirs),
        }
    }

    fn on_choosing(&mut self, action: Action, dirs: &[PathBuf]) -> PanelOutcome {
        match action {
            Action::Back => return PanelOutcome::Close { reload: false },
            Action::Up => self.part = prev_part(self.part),
            Action::Down => self.part = next_part(self.part),
            Action::Toggle => self.change(),
            Action::Reload => {
                self.scanning = true;
                return PanelOutcome::Stay(vec![Effect::Send(Command::LogExport(
                    LogExportCommand::Drives(dirs.to_vec()),
                ))]);
            }
            Action::Select => return PanelOutcome::Stay(self.start()),
            _ => {}
        }
        PanelOutcome::Stay(Vec::new())
    }

    /// Changes the focused row's choice; choosing a window starts typing it.
    fn change(&mut self) {
        match self.part {
            Part::Range => {
                self.range = self.range.next();
                self.window_problem = None;
                self.editing = self.range == RangeChoice::Window;
            }
            Part::Format => self.format = self.format.next(),
            Part::Drive if !self.drives.is_empty() => {
                self.drive = (self.drive + 1) % self.drives.len();
            }
            Part::Drive => {}
        }
    }

    fn on_window_key(&mut self, action: Action) {
        match action {
            Action::Input(c) if self.window.chars().count() < MAX_WINDOW_TEXT => {
                self.window.push(c);
                self.window_problem = None;
            }
            Action::Erase => {
                self.window.pop();
                self.window_problem = None;
            }
            Action::Select => match parse_window(&self.window) {
                Ok(_) => self.editing = false,
                Err(problem) => self.window_problem = Some(problem),
            },
            Action::Back => {
                // Leaving the field without a valid window goes back to the usual export.
                self.editing = false;
                if parse_window(&self.window).is_err() {
                    self.range = RangeChoice::SinceLast;
                    self.window_problem = None;
                }
            }
            _ => {}
        }
    }

    /// The export, if everything chosen is valid; else says what is missing.
    fn start(&mut self) -> Vec<Effect> {
        let range = match self.range {
            RangeChoice::SinceLast => RangeSpec::SinceLast,
            RangeChoice::All => RangeSpec::All,
            RangeChoice::Window => match parse_window(&self.window) {
                Ok((from_ms, to_ms)) => RangeSpec::Window { from_ms, to_ms },
                Err(problem) => {
                    self.part = Part::Range;
                    self.editing = true;
                    self.window_problem = Some(problem);
                    return Vec::new();
                }
            },
        };
        let Some(drive) = self.drives.get(self.drive) else {
            if self.scanning {
                // The drives are being listed: the chooser says so; Enter again once they are.
                return Vec::new();
            }
            self.part = Part::Drive;
            self.drive_note = Some(
                "no drive to write to: insert a USB drive and press r to look again".to_owned(),
            );
            return Vec::new();
        };
        self.stage = Stage::Starting;
        vec![Effect::Send(Command::LogExport(LogExportCommand::Start {
            range,
            format: self.format,
            dir: drive.path.clone(),
        }))]
    }

    /// Takes the worker's report.
    pub fn on_event(&mut self, event: LogExportEvent) {
        match event {
            LogExportEvent::Drives { drives, note } => {
                self.scanning = false;
                self.drive = self.drive.min(drives.len().saturating_sub(1));
                self.drives = drives;
                self.drive_note = note;
            }
            // A late progress report never reopens a finished export.
            LogExportEvent::Progress(step) if self.running() => self.stage = Stage::Running(step),
            LogExportEvent::Progress(_) => {}
            LogExportEvent::Done(done) => self.stage = Stage::Done(done),
            LogExportEvent::Failed(failure) => self.stage = Stage::Failed(failure),
        }
    }
}

fn next_part(part: Part) -> Part {
    match part {
        Part::Range => Part::Format,
        Part::Format | Part::Drive => Part::Drive,
    }
}

fn prev_part(part: Part) -> Part {
    match part {
        Part::Drive => Part::Format,
        Part::Format | Part::Range => Part::Range,
    }
}

/// A time window as typed: `FROM .. TO`, each `YYYY-MM-DD` or `YYYY-MM-DD HH:MM` (UTC); a day
/// alone as the end means up to that day's end. Unix milliseconds, both ends included.
pub fn parse_window(text: &str) -> Result<(u64, u64), String> {
    let Some((from, to)) = text.split_once("..") else {
        return Err("write FROM .. TO, e.g. 2026-12-01 .. 2026-12-04 18:00 (UTC)".to_owned());
    };
    let from_ms = parse_instant(from.trim(), false)?;
    let to_ms = parse_instant(to.trim(), true)?;
    if to_ms < from_ms {
        return Err(format!(
            "the window ends ({}) before it starts ({})",
            to.trim(),
            from.trim()
        ));
    }
    Ok((from_ms, to_ms))
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM` as Unix milliseconds; a day alone is its first
/// millisecond, or its last when `end`.
fn parse_instant(text: &str, end: bool) -> Result<u64, String> {
    let (day, clock) = match text.split_once(' ') {
        Some((day, clock)) => (day, Some(clock.trim())),
        None => (text, None),
    };
    let bad = |why: &str| format!("'{text}': {why}");
    let mut parts = day.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("a date is YYYY-MM-DD"));
    };
    let number = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| bad(&format!("the {what} is not a number")))
    };
    let (y, m, d) = (number(y, "year")?, number(m, "month")?, number(d, "day")?);
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(|| bad(&format!("month {m} is not 1 to 12")))?;
    let year = i32::try_from(y).map_err(|_| bad("the year is too large"))?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(d).unwrap_or(0))
        .map_err(|_| bad(&format!("{month} {year} has no day {d}")))?;
    let (hour, minute, span_ms) = match clock {
        None => (0, 0, 86_400_000),
        Some(clock) => {
            let (h, min) = clock
                .split_once(':')
                .ok_or_else(|| bad("a time is HH:MM"))?;
            let (h, min) = (number(h, "hour")?, number(min, "minute")?);
            if h > 23 || min > 59 {
                return Err(bad(&format!("{h:02}:{min:02} is not a time of day")));
            }
            (h, min, 60_000)
        }
    };
    let start = date.midnight().assume_utc().unix_timestamp()
        + i64::from(hour) * 3600
        + i64::from(minute) * 60;
    let start_ms = u64::try_from(start)
        .map_err(|_| bad("before 1970"))?
        .saturating_mul(1000);
    Ok(if end {
        start_ms + span_ms - 1
    } else {
        start_ms
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 86_400_000;
    /// 2026-12-01 00:00 UTC.
    const DEC_1: u64 = 1_796_083_200_000;

    #[test]
    fn a_window_reads_days_and_times_in_utc_both_ends_included() {
        assert_eq!(
            parse_window("2026-12-01 .. 2026-12-01"),
            Ok((DEC_1, DEC_1 + DAY_MS - 1))
        );
        assert_eq!(
            parse_window(" 2026-12-01 09:30 ..2026-12-02 18:00 "),
            Ok((
                DEC_1 + (9 * 60 + 30) * 60_000,
                DEC_1 + DAY_MS + 18 * 3_600_000 + 59_999
            ))
        );
    }

    #[test]
    fn a_bad_window_says_what_is_wrong() {
        let problem = |text: &str| parse_window(text).unwrap_err();
        assert!(problem("yesterday").contains("FROM .. TO"));
        assert!(problem("2026-13-01 .. 2026-12-02").contains("month 13 is not 1 to 12"));
        assert!(problem("2026-02-30 .. 2026-03-01").contains("has no day 30"));
        assert!(problem("2026-12-01 25:00 .. 2026-12-02").contains("not a time of day"));
        assert!(problem("2026-12-01 .. 12/02/2026").contains("a date is YYYY-MM-DD"));
        assert!(problem("2026-12-03 .. 2026-12-02").contains("ends (2026-12-02) before"));
    }

    fn choosing() -> LogExportFlow {
        let (mut flow, effects) = LogExportFlow::open(&[PathBuf::from("/drive")]);
        assert_eq!(
            effects,
            [Effect::Send(Command::LogExport(LogExportCommand::Drives(
                vec![PathBuf::from("/drive")]
            )))]
        );
        flow.on_event(LogExportEvent::Drives {
            drives: vec![DriveView {
                label: "demo drive".into(),
                path: PathBuf::from("/drive"),
                free: None,
            }],
            note: None,
        });
        flow
    }

    #[test]
    fn since_last_is_the_default_and_enter_starts_it() {
        let mut flow = choosing();
        let PanelOutcome::Stay(effects) = flow.on_action(Action::Select, &[]) else {
            panic!()
        };
        assert_eq!(
            effects,
            [Effect::Send(Command::LogExport(LogExportCommand::Start {
                range: RangeSpec::SinceLast,
                format: Format::Evidence,
                dir: PathBuf::from("/drive"),
            }))]
        );
        assert!(flow.running());
        // Keys do not stop an export halfway.
        assert_eq!(
            flow.on_action(Action::Back, &[]),
            PanelOutcome::Stay(Vec::new())
        );
        flow.on_event(LogExportEvent::Progress(ExportStep::Confirming));
        assert_eq!(flow.stage, Stage::Running(ExportStep::Confirming));
    }

    #[test]
    fn a_window_is_typed_in_place_and_validated_before_it_is_sent() {
        let mut flow = choosing();
        flow.on_action(Action::Toggle, &[]);
        flow.on_action(Action::Toggle, &[]);
        assert_eq!(flow.range, RangeChoice::Window);
        assert!(flow.editing);
        for c in "2026-12-05 .. 2026-12-01".chars() {
            flow.on_action(Action::Input(c), &[]);
        }
        flow.on_action(Action::Select, &[]);
        assert!(flow.editing, "an invalid window stays in the field");
        assert!(flow.window_problem.as_deref().unwrap().contains("before"));
        for _ in 0..2 {
            flow.on_action(Action::Erase, &[]);
        }
        for c in "10".chars() {
            flow.on_action(Action::Input(c), &[]);
        }
        flow.on_action(Action::Select, &[]);
        assert!(!flow.editing && flow.window_problem.is_none());
        let PanelOutcome::Stay(effects) = flow.on_action(Action::Select, &[]) else {
            panic!()
        };
        assert!(matches!(
            effects.as_slice(),
            [Effect::Send(Command::LogExport(LogExportCommand::Start {
                range: RangeSpec::Window { .. },
                ..
            }))]
        ));
    }

    #[test]
    fn nothing_starts_without_a_drive_and_a_failure_offers_another_try() {
        let (mut flow, _) = LogExportFlow::open(&[]);
        flow.on_event(LogExportEvent::Drives {
            drives: Vec::new(),
            note: None,
        });
        assert_eq!(
            flow.on_action(Action::Select, &[]),
            PanelOutcome::Stay(Vec::new())
        );
        assert!(
            flow.drive_note
                .as_deref()
                .unwrap()
                .contains("insert a USB drive")
        );
        assert_eq!(flow.stage, Stage::Choosing);

        let mut flow = choosing();
        flow.on_action(Action::Select, &[]);
        flow.on_event(LogExportEvent::Failed(Box::new(ExportFailure {
            step: "read-back",
            why: "line 7 was edited".into(),
            todo: "try another drive".into(),
        })));
        assert!(!flow.running());
        flow.on_action(Action::Select, &[]);
        assert_eq!(flow.stage, Stage::Choosing);
    }
}
