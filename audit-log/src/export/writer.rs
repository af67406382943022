//! Assembles an export file from the HSM's parts: header, log lines, closing checkpoint.

use std::io::Write;

use super::closing::{EXPORT_END_LINE_PREFIX, ExportEnd};
use super::header::{EXPORT_MAGIC, ExportHeader};
use crate::canonical::{CHECKPOINT_LINE_PREFIX, MAX_LINE_LEN};
use crate::error::LogError;

/// Writes an export: the header at [`new`](Self::new), the HSM's lines as they come, and the
/// closing checkpoint at [`finish`](Self::finish), which consumes the writer so nothing can
/// follow it. A writer dropped without `finish` leaves a file without a closing checkpoint,
/// which every verifier refuses as cut short.
///
/// It writes the lines exactly as given, checking only that each is one bounded line of the
/// right kind and that the closing checkpoint names the header's export; whether they verify is
/// for the read-back ([`verify_export`](crate::verify_export)) to say, with the pinned key.
pub struct ExportWriter<W: Write> {
    out: W,
    header: ExportHeader,
    lines: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export on `out` with its header line.
    pub fn new(mut out: W, header: &ExportHeader) -> Result<ExportWriter<W>, LogError> {
        let mut line = header.to_canonical()?;
        line.push(b'\n');
        out.write_all(&line).map_err(write_error)?;
        Ok(ExportWriter {
            out,
            header: header.clone(),
            lines: 1,
        })
    }

    /// Writes one log line (an entry or a checkpoint, without its newline) as the HSM sent it.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), LogError> {
        let kind_ok = line.starts_with(b"{\"seq\":") || line.starts_with(CHECKPOINT_LINE_PREFIX);
        let problem = if line.len() > MAX_LINE_LEN {
            Some("longer than a log line can be")
        } else if line.contains(&b'\n') {
            Some("holds a newline")
        } else if !kind_ok
            || line.starts_with(EXPORT_MAGIC)
            || line.starts_with(EXPORT_END_LINE_PREFIX)
        {
            Some("is not an entry or a checkpoint")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(LogError::Write {
                problem: format!("line {} {problem}", self.lines + 1),
            });
        }
        self.out.write_all(line).map_err(write_error)?;
        self.out.write_all(b"\n").map_err(write_error)?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far, the header included.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Writes the closing checkpoint, flushes, and hands back the output (for the caller to
    /// sync and rename). Refuses a closing checkpoint of another export or range.
    pub fn finish(mut self, end: &ExportEnd) -> Result<W, LogError> {
        if let Some(problem) = end.mismatch(&self.header) {
            return Err(LogError::Write {
                problem: format!("the closing checkpoint {problem}"),
            });
        }
        let mut line = end.to_canonical();
        line.push(b'\n');
        self.out.write_all(&line).map_err(write_error)?;
        self.out.flush().map_err(write_error)?;
        Ok(self.out)
    }
}

impl<W: Write> std::fmt::Debug for ExportWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportWriter")
            .field("export", &self.header.export)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

fn write_error(e: std::io::Error) -> LogError {
    LogError::Write {
        problem: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportId;
    use crate::hash::Hash;
    use crate::keys::AuditSigner;

    #[test]
    fn the_writer_takes_log_lines_only_and_the_closing_checkpoint_of_its_export() {
        let signer = AuditSigner::from_secret_bytes(&[5; 32]);
        let header = ExportHeader {
            hsm: "hsm-1".into(),
            partition: "p".into(),
            key: signer.public(),
            export: ExportId([3; 16]),
            from: 1,
            to: 0,
            anchor: None,
        };
        let mut w = ExportWriter::new(Vec::new(), &header).unwrap();
        let long = [b"{\"seq\":".as_slice(), &[b'1'; MAX_LINE_LEN]].concat();
        for bad in [
            &b"{\"seq\":1}\n{\"seq\":2}"[..],
            b"hello",
            &long,
            &header.to_canonical().unwrap(),
        ] {
            assert!(matches!(w.write_line(bad), Err(LogError::Write { .. })));
        }
        assert_eq!(w.lines(), 1, "nothing refused was written");
        let cp = signer.sign_checkpoint(0, Hash::ZERO, 1).to_canonical();
        w.write_line(&cp).unwrap();
        let other = ExportHeader {
            export: ExportId([4; 16]),
            ..header.clone()
        };
        let wrong = signer.sign_export_end(&other, Hash::ZERO, 2).unwrap();
        assert!(w.finish(&wrong).is_err());

        let w = ExportWriter::new(Vec::new(), &header).unwrap();
        let end = signer.sign_export_end(&header, Hash::ZERO, 2).unwrap();
        let bytes = w.finish(&end).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with("\"}}\n"));
    }
}
