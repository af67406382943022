//! The worker's side of the export: the places to write to, a time window turned into entry
//! numbers, and the export itself through [`export_over`], its progress sent as it goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use audit_log::{KeyPin, LogLine};
use hsm_link::message::{AdminRequest, AdminResponse, LogQuery, MAX_LOG_LINES_PER_PAGE};
use usb_backup::BackupError;
use usb_backup::drive::NewFile;
use usb_backup::drive::discover::{SysRoot, find_drives};

use super::RangeSpec;
use super::{DriveView, ExportDone, ExportFailure, Format, LogExportCommand, LogExportEvent};
use crate::cli::log_export::{ExportRange, ExportStep, Exported, export_over};
use crate::error::Error;
use crate::tui::message::Event;
use crate::tui::worker::Worker;

/// Shortest time between two progress reports (the screen redraws at about this rate).
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// Pages a time window is looked for in at most (a log of 1,000,000 entries).
const MAX_WINDOW_PAGES: usize = 1_000_000 / MAX_LOG_LINES_PER_PAGE + 1;

/// Runs one export command.
pub(crate) fn work(worker: &mut Worker, command: LogExportCommand) -> Event {
    Event::LogExport(match command {
        LogExportCommand::Drives(dirs) => drives(&dirs, &SysRoot::default()),
        LogExportCommand::Start { range, format, dir } => match export(worker, range, format, &dir)
        {
            Ok(done) => LogExportEvent::Done(Box::new(done)),
            Err(failure) => LogExportEvent::Failed(Box::new(failure)),
        },
    })
}

/// The directories given, then the removable drives mounted (their first mounted volume).
pub(crate) fn drives(dirs: &[PathBuf], root: &SysRoot) -> LogExportEvent {
    let mut drives: Vec<DriveView> = dirs
        .iter()
        .map(|dir| DriveView {
            label: dir.display().to_string(),
            path: dir.clone(),
            free: free_space(dir),
        })
        .collect();
    let note = match find_drives(root) {
        Ok(found) => {
            let before = drives.len();
            for drive in found {
                let mounts = drive
                    .mount
                    .iter()
                    .chain(drive.partitions.iter().filter_map(|v| v.mount.as_ref()));
                for mount in mounts {
                    drives.push(DriveView {
                        label: format!(
                            "{} {} at {}",
                            drive.vendor,
                            drive.model,
                            mount.mount_point.display()
                        ),
                        path: mount.mount_point.clone(),
                        free: mount.free,
                    });
                }
            }
            (drives.len() == before && dirs.is_empty())
                .then(|| "no mounted USB drive found: insert one and press r".to_owned())
        }
        Err(e) => Some(format!("removable drives were not scanned: {e}")),
    };
    LogExportEvent::Drives { drives, note }
}

fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The export, the step reached when it stopped, and why, in the screen's words.
fn export(
    worker: &mut Worker,
    range: RangeSpec,
    format: Format,
    dir: &Path,
) -> Result<ExportDone, ExportFailure> {
    let range = match range {
        RangeSpec::SinceLast => ExportRange::SinceLast,
        RangeSpec::All => ExportRange::All,
        RangeSpec::Window { from_ms, to_ms } => window_span(worker, from_ms, to_ms)?,
    };
    let partition = worker.link.partition().clone();
    let pin = KeyPin::Key(worker.audit_key);
    let events = worker.events.clone();
    let mut reached = None;
    let mut last_sent: Option<Instant> = None;
    let mut progress = |step: ExportStep| {
        // A new step is always reported; within a step, at most every PROGRESS_EVERY.
        let new_step = reached.is_none_or(|r: ExportStep| {
            std::mem::discriminant(&r) != std::mem::discriminant(&step)
        });
        reached = Some(step);
        if !new_step && last_sent.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        last_sent = Some(Instant::now());
        if let Some(events) = &events {
            let _ = events.send(Event::LogExport(LogExportEvent::Progress(step)));
        }
    };
    let result = export_over(
        &mut *worker.link,
        &partition,
        dir,
        range,
        &pin,
        crate::pair::now_unix(),
        &mut progress,
    );
    match result {
        Ok(exported) => Ok(done(exported, format)),
        Err(e) => Err(failure(&e, reached)),
    }
}

fn done(exported: Exported, format: Format) -> ExportDone {
    let Exported {
        path,
        report,
        confirmed,
    } = exported;
    let header = report.header();
    let siem = format.siem().map(|siem| write_siem(&path, siem, format));
    ExportDone {
        file: path.display().to_string(),
        from: header.from,
        to: header.to,
        entries: report.entries(),
        bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
        key: header.key.fingerprint().to_string(),
        confirmed,
        siem,
    }
}

/// SIEM records of the verified export, written beside it by the same rules.
fn write_siem(
    evidence: &Path,
    siem: audit_log::SiemFormat,
    format: Format,
) -> Result<(String, u64), String> {
    let extension = match format {
        Format::Cef => "cef",
        _ => "syslog",
    };
    let dir = evidence.parent().unwrap_or(Path::new("."));
    let name = evidence
        .with_extension(extension)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or("the export has no file name")?;
    let mut file = NewFile::create(dir, &name).map_err(|e| e.to_string())?;
    let input = std::fs::File::open(evidence).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
    let records = audit_log::convert_export(
        std::io::BufReader::with_capacity(1 << 20, input),
        siem,
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let path = file.commit().map_err(|e| e.to_string())?;
    Ok((path.display().to_string(), records))
}

/// The entries whose time falls in `from_ms..=to_ms`, read forward from the oldest stored.
fn window_span(
    worker: &mut Worker,
    from_ms: u64,
    to_ms: u64,
) -> Result<ExportRange, ExportFailure> {
    let fail = |why: String, todo: &str| ExportFailure {
        step: "finding the window",
        why,
        todo: todo.to_owned(),
    };
    let mut first = None;
    let mut last = None;
    let mut from = 1;
    'pages: for _ in 0..MAX_WINDOW_PAGES {
        let page = match worker.admin(AdminRequest::ReadLog {
            query: LogQuery::from(from, MAX_LOG_LINES_PER_PAGE as u32),
        }) {
            Ok(AdminResponse::LogPage(page)) => page,
            Ok(_) => {
                return Err(fail(
                    "the HSM gave an unexpected answer".into(),
                    "try again",
                ));
            }
            Err(e) => {
                return Err(fail(
                    crate::tui::worker::refusal_text(&e),
                    "check the link and try again",
                ));
            }
        };
        for line in &page.lines {
            if let Ok(LogLine::Entry(entry)) = LogLine::from_canonical(line.as_bytes()) {
                let t = entry.time_unix_ms();
                if t > to_ms {
                    break 'pages;
                }
                if t >= from_ms {
                    first.get_or_insert(entry.seq());
                    last = Some(entry.seq());
                }
            }
        }
        match page.next_seq {
            Some(next) if next > from => from = next,
            _ => break,
        }
    }
    match (first, last) {
        (Some(from), Some(to)) => Ok(ExportRange::Span { from, to }),
        _ => Err(fail(
            "the log holds no entry in that window".into(),
            "choose another window (UTC), or export everything",
        )),
    }
}

/// Why it stopped, in the screen's words, by what failed and the step reached.
pub(crate) fn failure(error: &Error, reached: Option<ExportStep>) -> ExportFailure {
    let step = match reached {
        None | Some(ExportStep::Writing { .. }) => "writing",
        Some(ExportStep::ReadingBack { .. }) => "read-back",
        Some(ExportStep::Confirming) => "confirming",
    };
    let (why, todo) = if drive_full(error) {
        (
            "the drive is full".to_owned(),
            "free space on the drive or choose another one (Space on Drive); the partial \
             file was removed"
                .to_owned(),
        )
    } else {
        match error {
            Error::ExportFile(BackupError::Exists { path }) => (
                format!("{} already exists", path.display()),
                "export again in a second (the name carries the time)".to_owned(),
            ),
            Error::ExportFile(e) => (
                format!("the drive: {e}"),
                "check that the drive is mounted and writable, or choose another".to_owned(),
            ),
            Error::LogVerify(e) => (
                format!("the file read back from the drive does not verify: {e}"),
                "it was renamed .failed and kept as evidence; export again, to another drive \
                 if this one fails again"
                    .to_owned(),
            ),
            Error::Refused(e) => (
                format!("the HSM refused: {e}"),
                "an export needs an auditor or PSO login; log in again if the session ended"
                    .to_owned(),
            ),
            Error::Link(e) => (
                format!("the link failed: {e}"),
                "reconnect and export again; nothing was confirmed".to_owned(),
            ),
            e => (e.to_string(), "export again".to_owned()),
        }
    };
    ExportFailure { step, why, todo }
}

/// Whether the drive ran out of space somewhere under `error`.
fn drive_full(error: &Error) -> bool {
    let full = |io: &std::io::Error| {
        io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
    };
    // The link hands the sink's error back as it is, without a source chain.
    if let Error::Link(hsm_link::Error::Sink(io)) = error {
        return full(io);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(full) {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_drive_says_so_and_what_to_do() {
        let full = Error::Link(hsm_link::Error::Sink(std::io::Error::from_raw_os_error(28)));
        let f = failure(
            &full,
            Some(ExportStep::Writing {
                lines: 3,
                bytes: 900,
                expected: Some(10),
            }),
        );
        assert_eq!((f.step, f.why.as_str()), ("writing", "the drive is full"));
        assert!(f.todo.contains("choose another"));
    }

    #[test]
    fn a_read_back_mismatch_is_named_at_its_step() {
        let bad = Error::LogVerify(audit_log::LogError::Read {
            problem: "short read".into(),
        });
        let f = failure(&bad, Some(ExportStep::ReadingBack { bytes: 1, total: 2 }));
        assert_eq!(f.step, "read-back");
        assert!(f.why.contains("does not verify"));
        assert!(f.todo.contains(".failed"));
    }

    #[test]
    fn removable_drives_come_after_the_directories_and_a_missing_sysfs_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot {
            sys: dir.path().join("no-sys"),
            mountinfo: dir.path().join("no-mountinfo"),
            dev: dir.path().join("no-dev"),
        };
        let LogExportEvent::Drives { drives, note } = drives(&[dir.path().to_path_buf()], &root)
        else {
            panic!()
        };
        assert_eq!(drives.len(), 1);
        assert_eq!(drives[0].path, dir.path());
        assert!(drives[0].free.is_some());
        assert!(note.unwrap().contains("not scanned"));
    }
}
