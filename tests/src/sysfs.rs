//! A fake sysfs tree with its mount table and device nodes, for drive discovery and the drive
//! allow-list: USB sticks (under a USB device with its ids and serial), internal disks, and
//! mounts; device nodes are plain files, so a "device" can hold a FAT image.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The fake tree: `sys/`, `dev/` and `mountinfo` under one directory.
pub struct FakeSys {
    root: PathBuf,
    mounts: Vec<(String, PathBuf)>,
}

/// A USB stick's identity: USB vendor and product ids (4 hex digits) and its serial.
pub struct UsbIds<'a> {
    /// `idVendor`.
    pub vendor: &'a str,
    /// `idProduct`.
    pub product: &'a str,
    /// `serial`, if the stick reports one.
    pub serial: Option<&'a str>,
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("create the fake tree");
    fs::write(path, text).expect("write the fake tree");
}

impl FakeSys {
    /// An empty tree under `root` (no drives, nothing mounted).
    pub fn new(root: &Path) -> FakeSys {
        fs::create_dir_all(root.join("sys/block")).expect("create the fake tree");
        fs::create_dir_all(root.join("dev")).expect("create the fake tree");
        let sys = FakeSys {
            root: root.to_path_buf(),
            mounts: Vec::new(),
        };
        sys.write_mounts();
        sys
    }

    /// The sysfs root (`/sys`).
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// The device nodes' directory (`/dev`).
    pub fn dev(&self) -> PathBuf {
        self.root.join("dev")
    }

    /// The mount table (`/proc/self/mountinfo`).
    pub fn mountinfo(&self) -> PathBuf {
        self.root.join("mountinfo")
    }

    /// Adds USB stick `name` on USB port `port` with `parts` partitions (`name1`…); its device
    /// nodes are empty files in [`FakeSys::dev`].
    pub fn add_usb_disk(&self, name: &str, port: &str, ids: UsbIds<'_>, parts: usize) {
        let sys = self.sys();
        let usb = sys.join(format!("devices/pci0000:00/0000:00:14.0/usb2/{port}"));
        write(&usb.join("idVendor"), &format!("{}\n", ids.vendor));
        write(&usb.join("idProduct"), &format!("{}\n", ids.product));
        if let Some(serial) = ids.serial {
            write(&usb.join("serial"), &format!("{serial}\n"));
        }
        write(&usb.join("manufacturer"), "SanDisk\n");
        write(&usb.join("product"), "Cruzer Blade\n");
        let scsi = usb.join(format!("{port}:1.0/host6/target6:0:0/6:0:0:0"));
        write(&scsi.join("vendor"), "SanDisk \n");
        write(&scsi.join("model"), "Cruzer Blade    \n");
        let block = scsi.join(format!("block/{name}"));
        write(&block.join("removable"), "1\n");
        write(&block.join("size"), "30031872\n");
        symlink("../..", block.join("device")).expect("link the fake tree");
        write(&self.dev().join(name), "");
        for p in 1..=parts {
            let part = block.join(format!("{name}{p}"));
            write(&part.join("partition"), &format!("{p}\n"));
            write(&part.join("size"), "30029824\n");
            write(&self.dev().join(format!("{name}{p}")), "");
        }
        symlink(&block, sys.join("block").join(name)).expect("link the fake tree");
    }

    /// Mounts device node `dev` (e.g. `sdb1`) at `point` in the mount table.
    pub fn mount(&mut self, dev: &str, point: &Path) {
        self.mounts.push((dev.to_owned(), point.to_path_buf()));
        self.write_mounts();
    }

    fn write_mounts(&self) {
        let mut table = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n".to_owned();
        for (i, (dev, point)) in self.mounts.iter().enumerate() {
            table.push_str(&format!(
                "{} 22 8:{} / {} rw,nosuid - vfat {} rw\n",
                90 + i,
                17 + i,
                point.display(),
                self.dev().join(dev).display()
            ));
        }
        write(&self.mountinfo(), &table);
    }
}
