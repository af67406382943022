//! Finding removable USB drives from sysfs: the block devices whose device sits under a USB
//! device, with their partitions, vendor, model, serial number, USB ids and size, where they are
//! mounted and how much is free there. Everything is read from a root that tests point at a
//! fake tree. Arrival and removal are noticed by polling ([`DriveWatcher`]).
//!
//! sysfs gives everything needed to identify a drive (`idVendor`, `idProduct`, `serial` of the
//! USB device above the disk), so no USB library is used: nothing here talks to the device.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::BackupError;

/// Where to read: a sysfs tree and a mount table.
#[derive(Clone, Debug)]
pub struct SysRoot {
    /// The sysfs root (`/sys`).
    pub sys: PathBuf,
    /// The mount table (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
    /// Where device nodes live (`/dev`).
    pub dev: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot {
            sys: "/sys".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            dev: "/dev".into(),
        }
    }
}

/// A mounted file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Bytes free there, if the mount point answers.
    pub free: Option<u64>,
}

/// A partition (or the whole disk, when it holds a file system without a partition table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The kernel's name (`sdb1`).
    pub name: String,
    /// The device node.
    pub dev_path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Where it is mounted, if it is.
    pub mount: Option<Mount>,
}

/// A removable USB mass-storage drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drive {
    /// The kernel's name (`sdb`).
    pub name: String,
    /// The device node.
    pub dev_path: PathBuf,
    /// The vendor (SCSI inquiry, else the USB manufacturer string).
    pub vendor: String,
    /// The model (SCSI inquiry, else the USB product string).
    pub model: String,
    /// The USB serial number, if the drive reports one.
    pub serial: Option<String>,
    /// The USB vendor id.
    pub usb_vendor: u16,
    /// The USB product id.
    pub usb_product: u16,
    /// Size in bytes.
    pub size: u64,
    /// The partitions, in name order.
    pub partitions: Vec<Volume>,
    /// Where the whole disk is mounted, if it is (a file system without a partition table).
    pub mount: Option<Mount>,
}

impl Drive {
    /// `vendor:product:serial` as the allow-list spells it.
    pub fn identity(&self) -> String {
        format!(
            "{:04x}:{:04x}:{}",
            self.usb_vendor,
            self.usb_product,
            self.serial.as_deref().unwrap_or("")
        )
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn read_hex(path: &Path) -> Option<u16> {
    u16::from_str_radix(&read_trimmed(path)?, 16).ok()
}

/// Size from sysfs, which counts 512-byte sectors whatever the device's block size.
fn read_size(dir: &Path) -> u64 {
    read_trimmed(&dir.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512)
}

/// The USB device above a block device: the nearest ancestor of its `device` with `idVendor`.
fn usb_device(block_dir: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(block_dir.join("device")).ok()?;
    real.ancestors()
        .find(|dir| dir.join("idVendor").is_file() && dir.join("idProduct").is_file())
        .map(Path::to_path_buf)
}

/// Every removable USB drive under `root`, in name order.
pub fn find_drives(root: &SysRoot) -> Result<Vec<Drive>, BackupError> {
    let block = root.sys.join("block");
    let entries = fs::read_dir(&block).map_err(|e| BackupError::Discovery {
        path: block.clone(),
        problem: e.to_string(),
    })?;
    let mounts = read_mounts(&root.mountinfo);
    let mut drives = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = block.join(&name);
        if read_trimmed(&dir.join("removable")).as_deref() != Some("1") {
            continue;
        }
        let Some(usb) = usb_device(&dir) else {
            continue;
        };
        let (Some(usb_vendor), Some(usb_product)) = (
            read_hex(&usb.join("idVendor")),
            read_hex(&usb.join("idProduct")),
        ) else {
            continue;
        };
        let mount_of = |dev: &str| {
            let node = root.dev.join(dev);
            mounts.get(&node).map(|point| Mount {
                free: free_space(point),
                mount_point: point.clone(),
            })
        };
        let mut partitions: Vec<Volume> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|p| p.path().join("partition").is_file())
            .map(|p| {
                let part = p.file_name().to_string_lossy().into_owned();
                Volume {
                    dev_path: root.dev.join(&part),
                    size: read_size(&p.path()),
                    mount: mount_of(&part),
                    name: part,
                }
            })
            .collect();
        partitions.sort_by(|a, b| a.name.cmp(&b.name));
        let device = dir.join("device");
        drives.push(Drive {
            dev_path: root.dev.join(&name),
            vendor: read_trimmed(&device.join("vendor"))
                .or_else(|| read_trimmed(&usb.join("manufacturer")))
                .unwrap_or_default(),
            model: read_trimmed(&device.join("model"))
                .or_else(|| read_trimmed(&usb.join("product")))
                .unwrap_or_default(),
            serial: read_trimmed(&usb.join("serial")),
            usb_vendor,
            usb_product,
            size: read_size(&dir),
            partitions,
            mount: mount_of(&name),
            name,
        });
    }
    drives.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(drives)
}

/// Where `device` is mounted, by the mount table at `mountinfo` (`/proc/self/mountinfo`):
/// device mode refuses a mounted drive, whose file system the kernel is writing too. The
/// device is compared by its canonical path (so `/dev/disk/by-id/...` finds `/dev/sdb1`).
pub fn mount_point_of(mountinfo: &Path, device: &Path) -> Option<PathBuf> {
    let canonical = fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    read_mounts(mountinfo)
        .into_iter()
        .find_map(|(source, point)| {
            let source = fs::canonicalize(&source).unwrap_or(source);
            (source == canonical).then_some(point)
        })
}

/// Device node to mount point, from a mountinfo table (first mount of each device).
fn read_mounts(path: &Path) -> BTreeMap<PathBuf, PathBuf> {
    let mut out = BTreeMap::new();
    let Ok(text) = fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(point), Some(source)) = (left.split(' ').nth(4), right.split(' ').nth(1)) else {
            continue;
        };
        out.entry(PathBuf::from(unescape(source)))
            .or_insert_with(|| PathBuf::from(unescape(point)));
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn free_space(point: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(point).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A change seen by [`DriveWatcher::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveEvent {
    /// A drive appeared.
    Arrived(Drive),
    /// A drive went away (its kernel name).
    Removed(String),
    /// A drive's partitions, mounts or free space changed.
    Changed(Drive),
}

/// Notices drives arriving, leaving and changing, by comparing successive scans.
#[derive(Debug)]
pub struct DriveWatcher {
    root: SysRoot,
    known: BTreeMap<String, Drive>,
}

impl DriveWatcher {
    /// A watcher that knows no drive yet: the first poll reports every drive as arrived.
    pub fn new(root: SysRoot) -> DriveWatcher {
        DriveWatcher {
            root,
            known: BTreeMap::new(),
        }
    }

    /// The drives as of the last poll.
    pub fn drives(&self) -> impl Iterator<Item = &Drive> {
        self.known.values()
    }

    /// Scans again and reports what changed since the last scan.
    pub fn poll(&mut self) -> Result<Vec<DriveEvent>, BackupError> {
        let now: BTreeMap<String, Drive> = find_drives(&self.root)?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let mut events = Vec::new();
        for name in self.known.keys() {
            if !now.contains_key(name) {
                events.push(DriveEvent::Removed(name.clone()));
            }
        }
        for (name, drive) in &now {
            match self.known.get(name) {
                None => events.push(DriveEvent::Arrived(drive.clone())),
                Some(old) if old != drive => events.push(DriveEvent::Changed(drive.clone())),
                Some(_) => {}
            }
        }
        self.known = now;
        Ok(events)
    }
}
