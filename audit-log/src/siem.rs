//! SIEM formats for log entries: syslog (RFC 5424) and CEF (ArcSight Common Event Format,
//! revision 25), one record per entry and per line, for import into the tools auditors already
//! use. They carry no proof: the JSON Lines export stays the evidence.
//!
//! Both map the entry's fields to the formats' own:
//!
//! | entry | syslog (RFC 5424) | CEF |
//! |---|---|---|
//! | time | TIMESTAMP (RFC 3339, UTC, milliseconds) | `rt` (milliseconds since the epoch) |
//! | HSM | HOSTNAME | `deviceExternalId` |
//! | outcome | severity in PRI (facility 13, log audit: notice ok, warning refused, error failed) and `outcome` | Severity (3 ok, 6 refused, 8 failed) and `outcome` |
//! | operation | MSGID (when at most 32 characters) and `op` | Device Event Class ID, Name and `act` |
//! | sequence number | `seq` | `externalId` |
//! | role | `role` | `spriv` |
//! | holders | one `holder` each | `suser` (joined with `, `) |
//! | object | `object` | `cs2` (`cs2Label=object`) |
//! | reason | `reason` | `reason` |
//! | partition | `partition` | `cs1` (`cs1Label=partition`) |
//! | details | the `details@32473` element | `cs3` (`cs3Label=details`, `key=value; …`) |
//! | entry hash | `hash` | `cs4` (`cs4Label=hash`) |
//!
//! Syslog's structured data goes in the element `tessera@32473` (32473 is the private
//! enterprise number RFC 5612 reserves for documentation; a deployment with its own number
//! replaces it). Escaping: in syslog PARAM-VALUEs `"`, `\` and `]` get a backslash (RFC 5424,
//! 6.3.3); in CEF header fields `\` and `|`, in extension values `\` and `=` get a backslash and
//! a newline and a carriage return are written `\n` and `\r`. Other control characters, which an
//! entry can hold but a one-line record cannot show, become U+FFFD in both (the export keeps the
//! exact text).

use std::io::{BufRead, Read, Write};

use crate::canonical::{CHECKPOINT_LINE_PREFIX, MAX_LINE_LEN};
use crate::entry::{Entry, Outcome};
use crate::error::LogError;
use crate::export::{EXPORT_END_LINE_PREFIX, ExportHeader};

/// The SD-ID of the entry's structured data in syslog records.
pub const SYSLOG_SD_ID: &str = "tessera@32473";
/// The SD-ID of the entry's details in syslog records.
pub const SYSLOG_DETAILS_SD_ID: &str = "details@32473";
/// Syslog facility 13, "log audit" (RFC 5424, table 1).
const FACILITY_LOG_AUDIT: u8 = 13;

/// A SIEM format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiemFormat {
    /// Syslog, RFC 5424.
    Syslog,
    /// ArcSight Common Event Format.
    Cef,
}

impl SiemFormat {
    /// `syslog` or `cef`.
    pub fn from_name(name: &str) -> Option<SiemFormat> {
        match name {
            "syslog" => Some(SiemFormat::Syslog),
            "cef" => Some(SiemFormat::Cef),
            _ => None,
        }
    }

    /// One record (without a newline) for `entry` of `partition` on `hsm`.
    pub fn record(self, entry: &Entry, hsm: &str, partition: &str) -> String {
        match self {
            SiemFormat::Syslog => to_syslog(entry, hsm, partition),
            SiemFormat::Cef => to_cef(entry, hsm, partition),
        }
    }
}

/// The RFC 5424 record for `entry` of `partition` on the HSM `hsm` (see the [module
/// docs](self)).
pub fn to_syslog(entry: &Entry, hsm: &str, partition: &str) -> String {
    let severity = match entry.outcome() {
        Outcome::Ok => 5,
        Outcome::Refused { .. } => 4,
        Outcome::Failed { .. } => 3,
    };
    let pri = u32::from(FACILITY_LOG_AUDIT) * 8 + severity;
    let time = rfc3339_ms(entry.time_unix_ms()).unwrap_or_else(|| "-".into());
    let op = entry.operation().as_str();
    let msgid = if op.len() <= 32 { op } else { "-" };
    let mut out = format!(
        "<{pri}>1 {time} {} tessera - {msgid} [{SYSLOG_SD_ID}",
        header_token(hsm, 255)
    );
    let mut param = |name: &str, value: &str| {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        sd_escape(&mut out, value);
        out.push('"');
    };
    param("seq", &entry.seq().to_string());
    param("partition", partition);
    param("role", entry.role().as_str());
    for holder in &entry.actor().holders {
        param("holder", holder);
    }
    param("op", op);
    if let Some(object) = entry.object() {
        param("object", object);
    }
    param("outcome", entry.outcome().result_name());
    if let Some(reason) = entry.outcome().reason() {
        param("reason", reason);
    }
    param("hash", &entry.hash().to_string());
    out.push(']');
    if !entry.details().is_empty() {
        out.push('[');
        out.push_str(SYSLOG_DETAILS_SD_ID);
        for (key, value) in entry.details() {
            // Detail keys are names like operations (a-z 0-9 . _ -, at most 32 bytes): valid
            // PARAM-NAMEs as they stand.
            out.push(' ');
            out.push_str(key);
            out.push_str("=\"");
            sd_escape(&mut out, value);
            out.push('"');
        }
        out.push(']');
    }
    // MSG: a UTF-8 BOM, then a line for people.
    out.push_str(" \u{feff}");
    push_visible(&mut out, &summary(entry));
    out
}

/// The CEF record for `entry` of `partition` on the HSM `hsm` (see the [module docs](self)).
pub fn to_cef(entry: &Entry, hsm: &str, partition: &str) -> String {
    let severity = match entry.outcome() {
        Outcome::Ok => 3,
        Outcome::Refused { .. } => 6,
        Outcome::Failed { .. } => 8,
    };
    let op = entry.operation().as_str();
    let result = entry.outcome().result_name();
    let mut out = String::from("CEF:0|");
    for field in [
        "Tessera",
        "Tessera HSM partition",
        env!("CARGO_PKG_VERSION"),
        op,
        &format!("{op} {result}"),
    ] {
        cef_header_escape(&mut out, field);
        out.push('|');
    }
    out.push_str(&severity.to_string());
    out.push('|');
    let mut first = true;
    let mut ext = |key: &str, value: &str| {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(key);
        out.push('=');
        cef_value_escape(&mut out, value);
    };
    ext("rt", &entry.time_unix_ms().to_string());
    ext("deviceExternalId", hsm);
    ext("externalId", &entry.seq().to_string());
    ext("cs1Label", "partition");
    ext("cs1", partition);
    ext("spriv", entry.role().as_str());
    if !entry.actor().holders.is_empty() {
        ext("suser", &entry.actor().holders.join(", "));
    }
    ext("act", op);
    ext("outcome", result);
    if let Some(reason) = entry.outcome().reason() {
        ext("reason", reason);
    }
    if let Some(object) = entry.object() {
        ext("cs2Label", "object");
        ext("cs2", object);
    }
    if !entry.details().is_empty() {
        let details: Vec<String> = entry
            .details()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        ext("cs3Label", "details");
        ext("cs3", &details.join("; "));
    }
    ext("cs4Label", "hash");
    ext("cs4", &entry.hash().to_string());
    out
}

/// Writes one record per entry of the export read from `reader` to `out`, a line each, and
/// returns how many. Checkpoints carry nothing for a SIEM and are left out.
///
/// It checks each entry's own hash as it parses it, not the chain or the signatures: verify
/// the export first ([`verify_export`](crate::verify_export)); its records are only as good as
/// that.
pub fn convert_export(
    reader: impl BufRead,
    format: SiemFormat,
    mut out: impl Write,
) -> Result<u64, LogError> {
    let mut reader = reader;
    let mut line = Vec::new();
    let mut header: Option<ExportHeader> = None;
    let mut records = 0;
    let mut n = 0u64;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_LEN as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(|e| LogError::Read {
                problem: e.to_string(),
            })?;
        if read == 0 {
            break;
        }
        n += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let at = |e: LogError| LogError::Verification {
            line: n,
            fault: e
                .fault()
                .cloned()
                .unwrap_or(crate::error::Fault::NonCanonical {
                    problem: e.to_string(),
                }),
        };
        let Some(h) = &header else {
            header = Some(ExportHeader::from_canonical(text).map_err(at)?);
            continue;
        };
        if text.starts_with(CHECKPOINT_LINE_PREFIX) || text.starts_with(EXPORT_END_LINE_PREFIX) {
            continue;
        }
        let entry = Entry::from_canonical(text).map_err(at)?;
        let mut record = format.record(&entry, &h.hsm, &h.partition);
        record.push('\n');
        out.write_all(record.as_bytes())
            .map_err(|e| LogError::Write {
                problem: e.to_string(),
            })?;
        records += 1;
    }
    Ok(records)
}

/// `role holders: op object: outcome (reason)`, the human line of a syslog record.
fn summary(entry: &Entry) -> String {
    let holders = if entry.actor().holders.is_empty() {
        String::new()
    } else {
        format!(" {}", entry.actor().holders.join(", "))
    };
    let object = entry.object().map_or(String::new(), |o| format!(" {o}"));
    let reason = entry
        .outcome()
        .reason()
        .map_or(String::new(), |r| format!(" ({r})"));
    format!(
        "{}{holders}: {}{object}: {}{reason}",
        entry.role(),
        entry.operation(),
        entry.outcome().result_name()
    )
}

fn is_control(c: char) -> bool {
    c < ' ' || c == '\u{7f}'
}

fn push_visible(out: &mut String, text: &str) {
    out.extend(
        text.chars()
            .map(|c| if is_control(c) { '\u{fffd}' } else { c }),
    );
}

/// A syslog header field: printable US-ASCII, at most `max` characters, or `-`.
fn header_token(text: &str, max: usize) -> &str {
    let ok = !text.is_empty() && text.len() <= max && text.bytes().all(|b| (33..=126).contains(&b));
    if ok { text } else { "-" }
}

/// RFC 5424, 6.3.3: `"`, `\` and `]` are escaped with a backslash.
fn sd_escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if is_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// CEF header fields: `\` and `|` are escaped with a backslash.
fn cef_header_escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if is_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// CEF extension values: `\` and `=` are escaped with a backslash; a newline is `\n`, a
/// carriage return `\r`.
fn cef_value_escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// Days from 1970-01-01 to 9999-12-31: later times have no four-digit year.
const LAST_DAY: u64 = 2_932_896;

/// `YYYY-MM-DDThh:mm:ss.mmmZ` (RFC 3339, UTC) for milliseconds since the epoch, if the year
/// has four digits.
pub(crate) fn rfc3339_ms(ms: u64) -> Option<String> {
    let secs = ms / 1000;
    let days = secs / 86_400;
    if days > LAST_DAY {
        return None;
    }
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    ))
}

/// The calendar date `days` after 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let t = i64::try_from(days * 86_400)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (
        u64::try_from(t.year()).unwrap_or(0),
        u64::from(u8::from(t.month())),
        u64::from(t.day()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_ms(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_ms(1_732_377_600_123).unwrap(),
            "2024-11-23T16:00:00.123Z"
        );
        // A leap day, and the last representable millisecond.
        assert_eq!(
            rfc3339_ms(951_782_400_000).unwrap(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_ms(253_402_300_799_999).unwrap(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(rfc3339_ms(253_402_300_800_000), None);
        assert_eq!(rfc3339_ms(u64::MAX), None);
    }
}
