//! File names a person can read: `PARTITION_YYYY-MM-DDTHHMMSSZ_seqNNNNNN.tsbk` (UTC, no colons,
//! which FAT forbids). A file being written carries `.partial` after that; a file that failed
//! its read-back check carries `.failed`.

use crate::container::{BackupFacts, MAX_PARTITION_ID_LEN};
use crate::error::BackupError;

/// The extension of a finished backup file.
pub const BACKUP_EXTENSION: &str = ".tsbk";

/// Appended to a backup's name while it is being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Appended to a backup's name when its read-back check failed.
pub const FAILED_SUFFIX: &str = ".failed";

/// The facts a backup file's name carries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackupName {
    /// The partition's id.
    pub partition_id: String,
    /// Creation time, Unix seconds, UTC.
    pub created: u64,
    /// The backup's sequence number.
    pub sequence: u64,
}

impl BackupName {
    /// The name of the backup with these facts.
    pub fn of(facts: &BackupFacts) -> BackupName {
        BackupName {
            partition_id: facts.partition_id.clone(),
            created: facts.created,
            sequence: facts.sequence,
        }
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.created);
        format!(
            "{}_{y:04}-{mo:02}-{d:02}T{h:02}{mi:02}{s:02}Z_seq{:06}{BACKUP_EXTENSION}",
            self.partition_id, self.sequence
        )
    }

    /// The name while being written.
    pub fn partial_name(&self) -> String {
        format!("{}{PARTIAL_SUFFIX}", self.file_name())
    }

    /// The name after a failed read-back check.
    pub fn failed_name(&self) -> String {
        format!("{}{FAILED_SUFFIX}", self.file_name())
    }

    /// Parses a finished backup's file name.
    pub fn parse(name: &str) -> Result<BackupName, BackupError> {
        let bad = |problem| BackupError::BadName {
            name: name.to_owned(),
            problem,
        };
        let stem = name
            .strip_suffix(BACKUP_EXTENSION)
            .ok_or_else(|| bad("it does not end in .tsbk"))?;
        let (rest, seq) = stem
            .rsplit_once("_seq")
            .ok_or_else(|| bad("no _seq part"))?;
        let (partition_id, time) = rest.rsplit_once('_').ok_or_else(|| bad("no time part"))?;
        if partition_id.is_empty() || partition_id.len() > MAX_PARTITION_ID_LEN {
            return Err(bad("the partition id is not 1 to 64 characters"));
        }
        let sequence = seq
            .parse()
            .map_err(|_| bad("the sequence number is not a number"))?;
        let created = parse_time(time).ok_or_else(|| bad("the time is not YYYY-MM-DDTHHMMSSZ"))?;
        let parsed = BackupName {
            partition_id: partition_id.to_owned(),
            created,
            sequence,
        };
        if parsed.file_name() != name {
            return Err(bad("it is not in canonical form"));
        }
        Ok(parsed)
    }
}

/// A file a write left behind that is not a backup: `NAME.partial` (the write never finished:
/// interrupted, killed, the drive pulled) or `NAME.failed` (finished, but its read-back check
/// failed). Never listed or verified as a backup; removed only when a person asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// The file's name.
    pub file_name: String,
    /// The backup it was meant to be.
    pub name: BackupName,
    /// Whether it is a `.failed` file (else `.partial`).
    pub failed: bool,
    /// Its length.
    pub len: u64,
}

impl Leftover {
    /// Recognises a leftover by its name: a canonical backup name plus `.partial` or
    /// `.failed`. Nothing else is ever taken for one, so cleaning removes nothing else.
    pub fn parse(file_name: &str, len: u64) -> Option<Leftover> {
        let (stem, failed) = match file_name.strip_suffix(PARTIAL_SUFFIX) {
            Some(stem) => (stem, false),
            None => (file_name.strip_suffix(FAILED_SUFFIX)?, true),
        };
        Some(Leftover {
            file_name: file_name.to_owned(),
            name: BackupName::parse(stem).ok()?,
            failed,
            len,
        })
    }
}

fn parse_time(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 18 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[17] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(13..15)?, num(15..17)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 || y < 1970
    {
        return None;
    }
    Some(days_from_civil(y, mo, d)? * 86_400 + h * 3600 + mi * 60 + s)
}

/// Unix seconds to (year, month, day, hour, minute, second), UTC.
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = u64::try_from(t.year()).unwrap_or(0);
    let (h, mi, s) = t.to_hms();
    (
        year,
        u64::from(u8::from(t.month())),
        u64::from(t.day()),
        u64::from(h),
        u64::from(mi),
        u64::from(s),
    )
}

/// The Unix day of a calendar date, `None` for a date that does not exist (30 February).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    u64::try_from(date.midnight().assume_utc().unix_timestamp() / 86_400).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_utc_and_parse_back() {
        let name = BackupName {
            partition_id: "payments".into(),
            created: 1_796_376_645, // 2026-12-04 09:30:45 UTC
            sequence: 42,
        };
        assert_eq!(
            name.file_name(),
            "payments_2026-12-04T093045Z_seq000042.tsbk"
        );
        assert_eq!(BackupName::parse(&name.file_name()).unwrap(), name);
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        for bad in [
            "payments_2026-12-04T093045Z_seq000042.tsbk.partial",
            "payments_2026-13-04T093045Z_seq000042.tsbk",
            "payments_2026-12-04T09:30:45Z_seq000042.tsbk",
            "_2026-12-04T093045Z_seq1.tsbk",
            "payments_2026-12-04T093045Z_seq42.tsbk",
        ] {
            assert!(BackupName::parse(bad).is_err(), "{bad}");
        }
        let partial = Leftover::parse(&name.partial_name(), 7).unwrap();
        assert_eq!((partial.name, partial.failed), (name.clone(), false));
        assert!(Leftover::parse(&name.failed_name(), 0).unwrap().failed);
        for not_ours in [
            name.file_name(),
            "notes.txt.partial".into(),
            "x.partial".into(),
        ] {
            assert_eq!(Leftover::parse(&not_ours, 0), None, "{not_ours}");
        }
    }
}
