//! The terminal's record of its last verified backup: one small JSON file in the state
//! directory, replaced atomically after each backup that read back intact from a drive.
//!
//! ```json
//! {"format":"tessera-last-verified-backup","version":1,"partition":"demo-partition",
//!  "hsm":"…","time_unix":1796376600,"drive":"/media/ada/KEY","file":"….tsbackup",
//!  "digest":"…"}
//! ```
//!
//! It is a convenience for the dashboard, not evidence: the backup itself is proven with
//! `tessera backup verify`. A record that is missing, too long or not this format reads as
//! none.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The record's `format` field.
pub const RECORD_FORMAT: &str = "tessera-last-verified-backup";
/// The record's version.
pub const RECORD_VERSION: u32 = 1;
/// The longest record read (a record is a few hundred bytes).
pub const MAX_RECORD_LEN: u64 = 4096;

/// The last backup this terminal wrote and verified read back from its drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastVerified {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// Always [`RECORD_VERSION`].
    pub version: u32,
    /// The partition's id.
    pub partition: String,
    /// The HSM's id as the terminal names it.
    pub hsm: String,
    /// When it was verified (Unix seconds).
    pub time_unix: u64,
    /// Where: the drive's directory (the first verified copy).
    pub drive: String,
    /// The file's name.
    pub file: String,
    /// The header's hash, hex.
    pub digest: String,
}

impl LastVerified {
    /// Reads the record at `path`; none when it is missing or not a record of this format.
    pub fn read(path: &Path) -> Option<LastVerified> {
        let mut bytes = Vec::new();
        File::open(path)
            .ok()?
            .take(MAX_RECORD_LEN + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        LastVerified::parse(&bytes)
    }

    /// Parses a record; none for anything that is not one (too long, another format or
    /// version, a field missing or unknown).
    pub fn parse(bytes: &[u8]) -> Option<LastVerified> {
        if bytes.len() as u64 > MAX_RECORD_LEN {
            return None;
        }
        let record: LastVerified = serde_json::from_slice(bytes).ok()?;
        (record.format == RECORD_FORMAT && record.version == RECORD_VERSION).then_some(record)
    }

    /// Replaces the record at `path` atomically: a new temporary file (0600), fsync, rename,
    /// fsync of the directory.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let temp = path.with_extension("tmp");
        let _ = fs::remove_file(&temp); // left by an earlier run that stopped half-way
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&temp, path))
            .and_then(|()| File::open(dir)?.sync_all());
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LastVerified {
        LastVerified {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            partition: "demo-partition".into(),
            hsm: "hsm-1".into(),
            time_unix: 1_796_376_600,
            drive: "/media/key".into(),
            file: "demo-partition-20261204T093000Z-000001.tsbackup".into(),
            digest: "ab".repeat(32),
        }
    }

    #[test]
    fn a_record_is_replaced_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-verified-backup.json");
        assert_eq!(LastVerified::read(&path), None);
        record().write(&path).unwrap();
        let mut newer = record();
        newer.time_unix += 60;
        newer.write(&path).unwrap();
        assert_eq!(LastVerified::read(&path), Some(newer));
        // Only the record is left: no temporary file.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn anything_else_reads_as_no_record() {
        let good = serde_json::to_vec(&record()).unwrap();
        assert!(LastVerified::parse(&good).is_some());
        let other_version = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        assert_eq!(LastVerified::parse(other_version.as_bytes()), None);
        let other_format = String::from_utf8(good.clone())
            .unwrap()
            .replace(RECORD_FORMAT, "something-else");
        assert_eq!(LastVerified::parse(other_format.as_bytes()), None);
        let mut long = good.clone();
        long.extend(std::iter::repeat_n(b' ', MAX_RECORD_LEN as usize));
        assert_eq!(LastVerified::parse(&long), None);
        assert_eq!(LastVerified::parse(&good[..good.len() - 1]), None);
    }
}
