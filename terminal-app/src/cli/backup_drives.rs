//! The drive allow-list (`[backup] allow` in the terminal's configuration) applied to every
//! drive a backup command opens, and `tessera backup drives`: the removable drives, each usable
//! (as a directory when mounted, in device mode when not) or refused with why.
//!
//! The rules are set for the span of one command ([`with_rules`]): `tessera backup …` runs
//! inside it with the configuration's list, and the TUI's worker runs each backup step inside
//! it with the list it was given, so a drive swapped after the screen's last scan is still
//! checked when it is opened. Without a list every drive is admitted.
//!
//! What a path is on: a device (`--fat-device`) is matched to a removable drive by its device
//! node; a directory (`--to`, or a file in one) by the longest mount point of a removable drive
//! that contains it. A directory on no removable drive (the laptop's own disk) and an image
//! file there are not drives and are admitted; a block device that is no recognised USB drive
//! is refused, since the list cannot say it is one of its drives.

use std::cell::RefCell;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use usb_backup::BackupError;
use usb_backup::drive::allow::{self, Admission, AllowList};
use usb_backup::drive::discover::{Drive as Found, SysRoot, find_drives};

use super::Shown;
use super::backup::Drive;

/// Which drives backup commands may use.
#[derive(Clone, Debug, Default)]
pub struct DriveRules {
    /// Where removable drives are looked for.
    pub sys: SysRoot,
    /// The allow-list; `None` admits every drive.
    pub allow: Option<AllowList>,
}

impl DriveRules {
    /// The rules of the terminal's configuration: its allow-list, drives read from `/sys`.
    pub fn configured(allow: Option<AllowList>) -> DriveRules {
        DriveRules {
            sys: SysRoot::default(),
            allow,
        }
    }
}

thread_local! {
    static RULES: RefCell<Option<DriveRules>> = const { RefCell::new(None) };
}

/// Runs `f` with `rules` applied to every drive a backup command opens on this thread.
pub fn with_rules<T>(rules: DriveRules, f: impl FnOnce() -> T) -> T {
    let before = RULES.with(|r| r.replace(Some(rules)));
    let out = f();
    RULES.with(|r| *r.borrow_mut() = before);
    out
}

/// The rules in force on this thread, if any were set.
fn in_force() -> Option<DriveRules> {
    RULES.with(|r| r.borrow().clone())
}

/// Refuses `drive` when the rules in force do not admit it, saying why.
pub fn check(drive: &Drive) -> Result<(), BackupError> {
    let Some(rules) = in_force() else {
        return Ok(());
    };
    match admission(&rules, drive) {
        Admission::Allowed => Ok(()),
        Admission::Refused(why) => Err(BackupError::Refused {
            drive: drive.shown(),
            why,
        }),
    }
}

/// Refuses the drive that holds `file` (a backup read by name from a directory).
pub fn check_file(file: &Path) -> Result<(), BackupError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    check(&Drive::Dir(dir.to_path_buf()))
}

/// Whether `rules` admit `drive`, and if not why not.
pub fn admission(rules: &DriveRules, drive: &Drive) -> Admission {
    let Some(list) = rules.allow.as_ref() else {
        return Admission::Allowed;
    };
    let found = match find_drives(&rules.sys) {
        Ok(found) => found,
        Err(e) => {
            return Admission::Refused(format!(
                "the removable drives could not be read ({e}), so the drive allow-list cannot \
                 be checked"
            ));
        }
    };
    match drive {
        Drive::Fat(device) => {
            let device = canonical(device);
            if let Some(d) = found
                .iter()
                .find(|d| volumes(d).any(|v| canonical(v) == device))
            {
                return allow::admit(Some(list), d);
            }
            if is_block_device(&device) {
                return Admission::Refused(format!(
                    "{} is not a USB drive the allow-list can recognise",
                    device.display()
                ));
            }
            on_drive(list, &found, device.parent().unwrap_or(Path::new("/")))
        }
        Drive::Dir(dir) => on_drive(list, &found, &canonical(dir)),
    }
}

/// The removable drive whose mounted file system holds `path` (the longest mount point that
/// contains it) decides; a path on none is not on a drive.
fn on_drive(list: &AllowList, found: &[Found], path: &Path) -> Admission {
    let holder = found
        .iter()
        .flat_map(|d| mounts(d).map(move |m| (d, canonical(m))))
        .filter(|(_, point)| path.starts_with(point))
        .max_by_key(|(_, point)| point.as_os_str().len());
    match holder {
        Some((d, _)) => allow::admit(Some(list), d),
        None => Admission::Allowed,
    }
}

fn volumes(d: &Found) -> impl Iterator<Item = &PathBuf> {
    std::iter::once(&d.dev_path).chain(d.partitions.iter().map(|p| &p.dev_path))
}

fn mounts(d: &Found) -> impl Iterator<Item = &PathBuf> {
    let whole = d.mount.as_ref().map(|m| &m.mount_point);
    whole.into_iter().chain(
        d.partitions
            .iter()
            .filter_map(|p| p.mount.as_ref().map(|m| &m.mount_point)),
    )
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// `tessera backup drives` under the rules in force (the configuration's).
pub fn drives() -> Result<Shown, BackupError> {
    drives_under(&in_force().unwrap_or_default())
}

/// `tessera backup drives`: every removable drive, and for each volume how a backup would use
/// it (`--to` its mount point, or `--fat-device` its device node), or why it is refused.
pub fn drives_under(rules: &DriveRules) -> Result<Shown, BackupError> {
    let found = find_drives(&rules.sys)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for d in &found {
        let name = super::printable(format!("{} {}", d.vendor, d.model).trim());
        let identity = super::printable(&d.identity());
        let refused = match allow::admit(rules.allow.as_ref(), d) {
            Admission::Refused(why) => Some(super::printable(&why)),
            Admission::Allowed => None,
        };
        text.push_str(&format!(
            "{} ({name}, {identity}, {} bytes)\n",
            d.name, d.size
        ));
        let mut uses = Vec::new();
        if let Some(why) = &refused {
            text.push_str(&format!("  REFUSED: {why}\n"));
        } else {
            for (volume, dev, mount) in usable(d) {
                let line = match mount {
                    Some(point) => format!("  {volume}: --to {}", point.display()),
                    None => format!("  {volume}: --fat-device {} (device mode)", dev.display()),
                };
                text.push_str(&line);
                text.push('\n');
                uses.push(json!({
                    "volume": volume,
                    "to": mount.map(|p| p.display().to_string()),
                    "fat_device": mount.is_none().then(|| dev.display().to_string()),
                }));
            }
        }
        rows.push(json!({
            "name": d.name, "identity": d.identity(), "vendor": d.vendor, "model": d.model,
            "size": d.size, "refused": refused, "volumes": uses,
        }));
    }
    text.push_str(&format!(
        "{} removable drives; {}\n",
        found.len(),
        if rules.allow.is_some() {
            "the drive allow-list is in force"
        } else {
            "no drive allow-list: every drive may be used"
        }
    ));
    Ok(Shown {
        text,
        json: json!({ "drives": rows, "allow_list": rules.allow.is_some() }),
    })
}

/// A drive's volumes: the partitions, or the whole disk when it has none.
fn usable(d: &Found) -> Vec<(&str, &PathBuf, Option<&PathBuf>)> {
    if d.partitions.is_empty() {
        return vec![(
            d.name.as_str(),
            &d.dev_path,
            d.mount.as_ref().map(|m| &m.mount_point),
        )];
    }
    d.partitions
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                &p.dev_path,
                p.mount.as_ref().map(|m| &m.mount_point),
            )
        })
        .collect()
}
