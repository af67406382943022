//! Drive discovery from a fake sysfs tree: USB mass storage found with its identity, size,
//! partitions and mounts; internal and non-removable disks ignored; arrival and removal
//! noticed; the allow-list admitting and refusing with why.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use usb_backup::drive::allow::{Admission, AllowList, admit};
use usb_backup::drive::discover::{DriveEvent, DriveWatcher, SysRoot, find_drives};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A USB stick `name` under a USB device with these ids, with `parts` partitions.
fn add_usb_disk(sys: &Path, name: &str, port: &str, ids: (&str, &str, Option<&str>), parts: usize) {
    let usb = sys.join(format!("devices/pci0000:00/0000:00:14.0/usb2/{port}"));
    write(&usb.join("idVendor"), &format!("{}\n", ids.0));
    write(&usb.join("idProduct"), &format!("{}\n", ids.1));
    if let Some(serial) = ids.2 {
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
    symlink("../..", block.join("device")).unwrap();
    for p in 1..=parts {
        let part = block.join(format!("{name}{p}"));
        write(&part.join("partition"), &format!("{p}\n"));
        write(&part.join("size"), "30029824\n");
    }
    fs::create_dir_all(sys.join("block")).unwrap();
    symlink(&block, sys.join("block").join(name)).unwrap();
}

fn add_internal_disk(sys: &Path, name: &str, removable: &str) {
    let block = sys.join(format!(
        "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/{name}"
    ));
    write(&block.join("removable"), removable);
    write(&block.join("size"), "1000215216\n");
    symlink("../..", block.join("device")).unwrap();
    fs::create_dir_all(sys.join("block")).unwrap();
    symlink(&block, sys.join("block").join(name)).unwrap();
}

#[test]
fn finds_usb_sticks_with_identity_partitions_and_mounts() {
    let root = tempfile::tempdir().unwrap();
    let sys = root.path().join("sys");
    add_usb_disk(&sys, "sdb", "2-1", ("0781", "5567", Some("4C530001")), 1);
    add_internal_disk(&sys, "sda", "0\n");
    add_internal_disk(&sys, "sr0", "1\n"); // removable, but not on USB
    let mount_point = root.path().join("media/BACKUP");
    fs::create_dir_all(&mount_point).unwrap();
    let mountinfo = root.path().join("mountinfo");
    write(
        &mountinfo,
        &format!(
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             90 22 8:17 / {} rw,nosuid - vfat /dev/sdb1 rw\n",
            mount_point.display()
        ),
    );
    let sys_root = SysRoot {
        sys: sys.clone(),
        mountinfo,
        dev: "/dev".into(),
    };
    let drives = find_drives(&sys_root).unwrap();
    assert_eq!(drives.len(), 1, "{drives:#?}");
    let d = &drives[0];
    assert_eq!(d.name, "sdb");
    assert_eq!(
        (d.vendor.as_str(), d.model.as_str()),
        ("SanDisk", "Cruzer Blade")
    );
    assert_eq!(d.serial.as_deref(), Some("4C530001"));
    assert_eq!((d.usb_vendor, d.usb_product), (0x0781, 0x5567));
    assert_eq!(d.size, 30_031_872 * 512);
    assert_eq!(d.identity(), "0781:5567:4C530001");
    assert_eq!(d.partitions.len(), 1);
    let part = &d.partitions[0];
    assert_eq!(part.dev_path, Path::new("/dev/sdb1"));
    let mount = part.mount.as_ref().unwrap();
    assert_eq!(mount.mount_point, mount_point);
    assert!(mount.free.unwrap() > 0);
    assert!(d.mount.is_none());
}

#[test]
fn notices_arrival_and_removal() {
    let root = tempfile::tempdir().unwrap();
    let sys = root.path().join("sys");
    fs::create_dir_all(sys.join("block")).unwrap();
    let mut watcher = DriveWatcher::new(SysRoot {
        sys: sys.clone(),
        mountinfo: root.path().join("none"),
        dev: "/dev".into(),
    });
    assert!(watcher.poll().unwrap().is_empty());
    add_usb_disk(&sys, "sdc", "2-2", ("0951", "1666", Some("ABC")), 2);
    let events = watcher.poll().unwrap();
    assert!(
        matches!(&events[..], [DriveEvent::Arrived(d)] if d.name == "sdc" && d.partitions.len() == 2)
    );
    assert!(watcher.poll().unwrap().is_empty());
    fs::remove_file(sys.join("block/sdc")).unwrap();
    assert_eq!(
        watcher.poll().unwrap(),
        vec![DriveEvent::Removed("sdc".into())]
    );
    assert_eq!(watcher.drives().count(), 0);
}

#[test]
fn the_allow_list_admits_listed_drives_and_refuses_others_with_why() {
    let root = tempfile::tempdir().unwrap();
    let sys = root.path().join("sys");
    add_usb_disk(&sys, "sdb", "2-1", ("0781", "5567", Some("4C530001")), 1);
    add_usb_disk(&sys, "sdc", "2-2", ("0951", "1666", Some("XYZ")), 1);
    add_usb_disk(&sys, "sdd", "2-3", ("abcd", "1234", None), 1);
    let drives = find_drives(&SysRoot {
        sys,
        mountinfo: root.path().join("none"),
        dev: "/dev".into(),
    })
    .unwrap();
    let list = AllowList::parse(["# the PSO's two sticks", "0781:5567:4C530001", ""]).unwrap();
    assert_eq!(admit(Some(&list), &drives[0]), Admission::Allowed);
    let Admission::Refused(why) = admit(Some(&list), &drives[1]) else {
        panic!("an unlisted drive was admitted");
    };
    assert!(
        why.contains("0951:1666:XYZ is not on the drive allow-list"),
        "{why}"
    );
    let Admission::Refused(why) = admit(Some(&list), &drives[2]) else {
        panic!("a drive without a serial was admitted");
    };
    assert!(why.contains("no serial number"), "{why}");
    assert_eq!(admit(None, &drives[1]), Admission::Allowed);
    let err = AllowList::parse(["0781:5567:X", "781:5567:Y"]).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn device_mode_finds_where_a_device_is_mounted_even_through_a_link() {
    let root = tempfile::tempdir().unwrap();
    // A device node stand-in and a by-id style link to it.
    let node = root.path().join("sdb1");
    write(&node, "");
    let link = root.path().join("usb-SanDisk-part1");
    std::os::unix::fs::symlink(&node, &link).unwrap();
    let mountinfo = root.path().join("mountinfo");
    write(
        &mountinfo,
        &format!(
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             90 22 8:17 / /media/BACKUP\\040DRIVE rw,nosuid - vfat {} rw\n",
            node.display()
        ),
    );
    let point = usb_backup::drive::discover::mount_point_of(&mountinfo, &link);
    assert_eq!(point, Some("/media/BACKUP DRIVE".into()));
    let other = root.path().join("sdc1");
    write(&other, "");
    assert_eq!(
        usb_backup::drive::discover::mount_point_of(&mountinfo, &other),
        None
    );
}
