//! `tessera log export`: the HSM's export file streamed into a new file in a directory by the
//! backups' rules (`NAME.partial`, fsync, rename without replacing, fsync the directory), read
//! back from the drive and verified against the pinned audit key, and only then confirmed at
//! the HSM (which may then prune the confirmed entries).

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use audit_log::{ExportHeader, ExportReport, ExportVerifier, KeyPin, MAX_LINE_LEN, verify_export};
use hsm_link::domain::PartitionId;
use hsm_link::message::{AdminError, AdminRequest, AdminResponse, LogQuery};
use quorum::ceremony::Link;
use serde_json::json;
use usb_backup::drive::{NewFile, open_from_drive};

use super::Shown;
use crate::error::Error;
use crate::pair::AnyConnection;

/// Which entries to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportRange {
    /// Every entry stored.
    All,
    /// The entries after the last confirmed export.
    SinceLast,
    /// Entries `from` to `to` (the HSM stops at its last entry).
    Span {
        /// The first entry.
        from: u64,
        /// The last entry.
        to: u64,
    },
}

impl ExportRange {
    fn query(self) -> LogQuery {
        // The HSM reads `from_seq` 1 as "the oldest stored", 0 as "after the last confirmed".
        let (from, to) = match self {
            ExportRange::All => (1, None),
            ExportRange::SinceLast => (0, None),
            ExportRange::Span { from, to } => (from.max(2), Some(to)),
        };
        let mut query = LogQuery::from(from, 0);
        query.to_seq = to;
        // An explicit span from entry 1 is "everything from 1", which 1 means too.
        if matches!(self, ExportRange::Span { from: 0 | 1, .. }) {
            query.from_seq = 1;
        }
        query
    }
}

/// The file name: partition, UTC time, range; `NAME.partial` while it is written.
pub fn file_name(partition: &PartitionId, now_unix: u64, range: Option<(u64, u64)>) -> String {
    let t = i64::try_from(now_unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match range {
        Some((from, to)) => format!("tessera-log-{partition}-{stamp}-{from}-{to}.jsonl"),
        None => format!("tessera-log-{partition}-{stamp}.jsonl"),
    }
}

/// Exports `range` into a new file in `dir`, reads it back, verifies it against `pin`, and
/// confirms it at the HSM. A file that does not verify is renamed `NAME.failed` and nothing
/// is confirmed.
pub fn export(
    conn: &mut AnyConnection,
    partition: &PartitionId,
    dir: &Path,
    range: ExportRange,
    pin: &KeyPin,
    now_unix: u64,
) -> Result<Shown, Error> {
    let done = export_over(conn, partition, dir, range, pin, now_unix, &mut |_| {})?;
    Ok(shown(&done.path, &done.report, done.confirmed))
}

/// How far an export is, reported as it goes (the TUI's progress bar; the CLI ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportStep {
    /// Lines and bytes written to the file so far; the entries the header announced, once
    /// the header line is in.
    Writing {
        /// Lines written after the header (entries and checkpoints).
        lines: u64,
        /// Bytes written.
        bytes: u64,
        /// Entries the export holds, from its header.
        expected: Option<u64>,
    },
    /// The file is read back from the drive and verified.
    ReadingBack {
        /// Bytes read back so far.
        bytes: u64,
        /// The file's size.
        total: u64,
    },
    /// Verified; the HSM is asked to count it exported.
    Confirming,
}

/// A finished export: where it is, what the read-back verified, whether the HSM counts it.
pub struct Exported {
    /// The file.
    pub path: PathBuf,
    /// The verification of the file as read back from the drive.
    pub report: ExportReport,
    /// Whether the HSM confirmed it (an export that does not continue the exported part of
    /// the log is verified and kept, but not counted).
    pub confirmed: bool,
}

/// [`export`] over any administration link, telling `progress` how far it is.
pub fn export_over(
    conn: &mut dyn Link,
    partition: &PartitionId,
    dir: &Path,
    range: ExportRange,
    pin: &KeyPin,
    now_unix: u64,
    progress: &mut (dyn FnMut(ExportStep) + Send),
) -> Result<Exported, Error> {
    let file =
        NewFile::create(dir, &file_name(partition, now_unix, None)).map_err(Error::ExportFile)?;
    let mut sink = FirstLine {
        file,
        first: Vec::new(),
        complete: false,
        lines: 0,
        bytes: 0,
        expected: None,
        progress,
    };
    let done = conn.download(
        AdminRequest::ExportLog {
            query: range.query(),
        },
        &mut sink,
    )?;
    let AdminResponse::ExportDone { last_seq, .. } = done else {
        return Err(Error::UnexpectedAnswer {
            request: "ExportLog",
        });
    };
    let progress = sink.progress;
    // The final name carries the range the HSM fixed, which its header line states.
    let header = ExportHeader::from_canonical(&sink.first).map_err(Error::LogVerify)?;
    let name = file_name(partition, now_unix, Some((header.from, header.to)));
    let path = sink.file.commit_as(&name).map_err(Error::ExportFile)?;
    let report = match read_back(&path, partition, last_seq, pin, progress) {
        Ok(report) => report,
        Err(e) => {
            // Keep the evidence, under a name no one takes for an export.
            let mut failed = path.clone().into_os_string();
            failed.push(".failed");
            let _ = std::fs::rename(&path, failed);
            return Err(e);
        }
    };
    progress(ExportStep::Confirming);
    let (from, to) = (report.header().from, report.header().to);
    let confirmed = confirm(conn, from, to)?;
    Ok(Exported {
        path,
        report,
        confirmed,
    })
}

/// Reads the file back from the drive and verifies it: the pinned key, this partition, and
/// the range the HSM said it sent.
fn read_back(
    path: &Path,
    partition: &PartitionId,
    last_seq: Option<u64>,
    pin: &KeyPin,
    progress: &mut (dyn FnMut(ExportStep) + Send),
) -> Result<ExportReport, Error> {
    let file = open_from_drive(path).map_err(Error::ExportFile)?;
    let total = file.metadata().map_or(0, |m| m.len());
    progress(ExportStep::ReadingBack { bytes: 0, total });
    let counted = Counted {
        inner: file,
        bytes: 0,
        total,
        progress,
    };
    let report = verify_export(
        BufReader::with_capacity(1 << 20, counted),
        ExportVerifier::new(pin.clone()),
    )
    .map_err(Error::LogVerify)?;
    let header = report.header();
    let sent = (header.to >= header.from).then_some(header.to);
    if header.partition != partition.as_str() || sent != last_seq {
        return Err(Error::LogVerify(audit_log::LogError::Rejected(
            audit_log::Fault::BadHeader {
                problem: format!(
                    "the file is partition {}'s entries {} to {}, not what the HSM sent",
                    header.partition, header.from, header.to
                ),
            },
        )));
    }
    Ok(report)
}

/// A file read back, its bytes counted for the progress report.
struct Counted<'p, R> {
    inner: R,
    bytes: u64,
    total: u64,
    progress: &'p mut (dyn FnMut(ExportStep) + Send),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        (self.progress)(ExportStep::ReadingBack {
            bytes: self.bytes,
            total: self.total,
        });
        Ok(n)
    }
}

/// The file being written, with its first line (the header) kept aside, bounded, and the
/// lines and bytes written counted for the progress report.
struct FirstLine<'p> {
    file: NewFile,
    first: Vec<u8>,
    complete: bool,
    lines: u64,
    bytes: u64,
    expected: Option<u64>,
    progress: &'p mut (dyn FnMut(ExportStep) + Send),
}

impl Write for FirstLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        let mut taken = &buf[..n];
        self.bytes += n as u64;
        if !self.complete {
            let end = taken.iter().position(|&b| b == b'\n');
            let part = &taken[..end.unwrap_or(taken.len())];
            let room = MAX_LINE_LEN.saturating_sub(self.first.len());
            self.first.extend_from_slice(&part[..part.len().min(room)]);
            self.complete = end.is_some() || room < part.len();
            if let Some(end) = end {
                // The header names the range: how many entries the bar counts towards.
                self.expected = ExportHeader::from_canonical(&self.first)
                    .ok()
                    .map(|h| (h.to + 1).saturating_sub(h.from));
                taken = &taken[end + 1..];
            }
        }
        if self.complete {
            self.lines += taken.iter().filter(|&&b| b == b'\n').count() as u64;
            (self.progress)(ExportStep::Writing {
                lines: self.lines,
                bytes: self.bytes,
                expected: self.expected,
            });
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Confirms `to` at the HSM. Whether it was: an export that does not continue the exported
/// part of the log (a span beyond it) is verified and kept, but the HSM does not count it.
fn confirm(conn: &mut dyn Link, from: u64, to: u64) -> Result<bool, Error> {
    if to < from {
        return Ok(false);
    }
    match conn.admin(AdminRequest::ConfirmExport { up_to_seq: to }) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.admin_error(),
                Some(AdminError::ConfirmBeyondExport { .. })
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn shown(path: &Path, report: &ExportReport, confirmed: bool) -> Shown {
    let h = report.header();
    let range = if h.to < h.from {
        "no new entries".to_owned()
    } else {
        format!("entries {} to {}", h.from, h.to)
    };
    let text = format!(
        "exported {range} ({} entries) of partition {} to {}\n\
         read back and verified against audit key {}\n{}\n",
        report.entries(),
        h.partition,
        path.display(),
        audit_log::Hash(h.key.fingerprint().0),
        if confirmed {
            format!("confirmed at the HSM up to entry {}", h.to)
        } else {
            "not confirmed at the HSM (nothing new, or not continuing the last export)".to_owned()
        }
    );
    let json = json!({
        "file": PathBuf::from(path),
        "partition": h.partition,
        "export": h.export.to_string(),
        "from": h.from,
        "to": h.to,
        "entries": report.entries(),
        "confirmed": confirmed,
    });
    Shown { text, json }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_queries() {
        let p = PartitionId::new("bank-1").unwrap();
        assert_eq!(
            file_name(&p, 1_764_848_000, Some((5, 9))),
            "tessera-log-bank-1-20251204T113320Z-5-9.jsonl"
        );
        assert_eq!(ExportRange::SinceLast.query().from_seq, 0);
        assert_eq!(ExportRange::All.query().from_seq, 1);
        let span = ExportRange::Span { from: 1, to: 4 }.query();
        assert_eq!((span.from_seq, span.to_seq), (1, Some(4)));
        let span = ExportRange::Span { from: 7, to: 9 }.query();
        assert_eq!((span.from_seq, span.to_seq), (7, Some(9)));
    }
}
