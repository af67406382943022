//! The body of the export parser's fuzz target, shared by `cargo fuzz` (`fuzz/`) and the
//! ordinary corpus test `audit-log/tests/fuzz_corpus.rs`, so that CI runs it on stable.

use crate::error::LogError;
use crate::export::{ExportVerifier, KeyPin, verify_export_with};
use crate::keys::AuditSigner;
use crate::siem::{SiemFormat, convert_export};
use crate::testkit::verify_lines;

/// The audit signing key of the fuzz corpus's exports (a test key, public in this file).
pub const FUZZ_AUDIT_SECRET: [u8; 32] = [0x42; 32];

/// Verifies arbitrary bytes as an export under the corpus key: line by line, and streamed in
/// tiny parts on two threads, which must give the same answer; an error must name a line; an
/// export that verifies must hold exactly its range. The SIEM conversion must not panic either.
/// Returns whether the bytes verified.
pub fn log_export(data: &[u8]) -> bool {
    let key = AuditSigner::from_secret_bytes(&FUZZ_AUDIT_SECRET).public();
    let make = || ExportVerifier::new(KeyPin::Key(key));
    let one = verify_lines(data, make());
    let parts = verify_export_with(data, make(), 97, 2);
    assert_eq!(parts, one, "streamed in parts and line by line disagree");
    for format in [SiemFormat::Syslog, SiemFormat::Cef] {
        let _ = convert_export(data, format, std::io::sink());
    }
    match one {
        Ok(report) => {
            let h = report.header();
            assert_eq!(
                report.entries(),
                h.to.wrapping_add(1).wrapping_sub(h.from),
                "a verified export is whole"
            );
            assert_eq!(report.end().to, h.to);
            let lines = data.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(report.lines() as usize, lines);
            assert_eq!(data.last(), Some(&b'\n'));
            true
        }
        Err(e) => {
            assert!(
                e.line().is_some() && !matches!(e, LogError::Read { .. }),
                "every refusal names a line: {e}"
            );
            false
        }
    }
}
