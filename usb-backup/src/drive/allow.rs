//! The optional drive allow-list: `vendor:product:serial` entries (USB ids in hexadecimal, the
//! serial as the drive reports it), from the terminal's configuration. Without a list every
//! drive is admitted; with one, any other drive is refused and shown with why.

use super::discover::Drive;
use crate::error::BackupError;

/// One allowed drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    /// USB vendor id.
    pub vendor: u16,
    /// USB product id.
    pub product: u16,
    /// USB serial number.
    pub serial: String,
}

/// The allowed drives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

/// Whether a drive may be used, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The drive may be used.
    Allowed,
    /// The drive is refused.
    Refused(String),
}

impl AllowList {
    /// Parses entries, one per item (the configuration's list, or lines of a file: blank items
    /// and `#` comments are skipped). Errors name the item, counted from 1.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<AllowList, BackupError> {
        let mut entries = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let item = item.split('#').next().unwrap_or("").trim();
            if item.is_empty() {
                continue;
            }
            let bad = |problem| BackupError::AllowList {
                line: i + 1,
                problem,
            };
            let mut parts = item.splitn(3, ':');
            let (Some(v), Some(p), Some(serial)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("fewer than three parts"));
            };
            let hex = |s: &str| {
                (s.len() == 4)
                    .then(|| u16::from_str_radix(s, 16).ok())
                    .flatten()
            };
            let vendor = hex(v).ok_or_else(|| bad("the vendor id is not 4 hex digits"))?;
            let product = hex(p).ok_or_else(|| bad("the product id is not 4 hex digits"))?;
            if serial.is_empty() {
                return Err(bad("the serial number is empty"));
            }
            entries.push(AllowEntry {
                vendor,
                product,
                serial: serial.to_owned(),
            });
        }
        Ok(AllowList { entries })
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// Whether `drive` is on the list, and if not, why not.
    pub fn admit(&self, drive: &Drive) -> Admission {
        let Some(serial) = drive.serial.as_deref() else {
            return Admission::Refused(format!(
                "{:04x}:{:04x} reports no serial number, so the allow-list cannot recognise it",
                drive.usb_vendor, drive.usb_product
            ));
        };
        let listed = self.entries.iter().any(|e| {
            e.vendor == drive.usb_vendor && e.product == drive.usb_product && e.serial == serial
        });
        if listed {
            Admission::Allowed
        } else {
            Admission::Refused(format!(
                "{} is not on the drive allow-list",
                drive.identity()
            ))
        }
    }
}

/// Admits `drive` under an optional list: without a list, every drive is allowed.
pub fn admit(list: Option<&AllowList>, drive: &Drive) -> Admission {
    list.map_or(Admission::Allowed, |l| l.admit(drive))
}
