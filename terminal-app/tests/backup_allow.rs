//! The drive allow-list (`[backup] allow`) over a fake sysfs tree: a drive off the list is
//! refused with why, whether named by a directory on it or by its device node (device mode),
//! by `tessera backup list` and `drives`; a drive on it is used; a directory on no removable
//! drive is not a drive. The real binary refuses a configuration with a bad entry, naming it.

use std::path::Path;
use std::process::Command;

use terminal_app::cli::backup::{self, Drive};
use terminal_app::cli::backup_drives::{DriveRules, admission, drives_under, with_rules};
use terminal_app::config::{Origin, TerminalConfig};
use tessera_tests::sysfs::{FakeSys, UsbIds};
use usb_backup::drive::allow::{Admission, AllowList};
use usb_backup::drive::discover::SysRoot;

const CONFIG: &str = "version = 1\n[backup]\nallow = [\"0781:5567:AAA111\"]\n";

fn rules(sys: &FakeSys, allow: Option<AllowList>) -> DriveRules {
    DriveRules {
        sys: SysRoot {
            sys: sys.sys(),
            mountinfo: sys.mountinfo(),
            dev: sys.dev(),
        },
        allow,
    }
}

fn refused(a: Admission) -> String {
    match a {
        Admission::Refused(why) => why,
        Admission::Allowed => panic!("admitted"),
    }
}

#[test]
fn a_drive_off_the_configured_list_is_refused_with_why_and_one_on_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut sys = FakeSys::new(&dir.path().join("fake"));
    let ids = |serial| UsbIds {
        vendor: "0781",
        product: "5567",
        serial: Some(serial),
    };
    sys.add_usb_disk("sdb", "2-1", ids("AAA111"), 1);
    sys.add_usb_disk("sdc", "2-2", ids("BBB222"), 1);
    let key = dir.path().join("media/KEY");
    std::fs::create_dir_all(key.join("backups")).unwrap();
    sys.mount("sdb1", &key);
    // sdc1 is not mounted: device mode, its node holding a FAT image.
    let image = dir.path().join("image.img");
    usb_backup::drive::ensure_fat_image(&image, usb_backup::drive::MIN_IMAGE_LEN).unwrap();
    let sdc1 = sys.dev().join("sdc1");
    std::fs::rename(&image, &sdc1).unwrap();

    let config = TerminalConfig::parse(CONFIG, Path::new("tessera.toml"), Origin::Flag).unwrap();
    let listed = rules(&sys, config.backup.allow.clone());

    // On the list: a directory on its mounted file system (or below it) is admitted.
    assert_eq!(
        admission(&listed, &Drive::Dir(key.clone())),
        Admission::Allowed
    );
    assert_eq!(
        admission(&listed, &Drive::Dir(key.join("backups"))),
        Admission::Allowed
    );
    // Off the list: its device node is refused, saying which drive and why.
    let why = refused(admission(&listed, &Drive::Fat(sdc1.clone())));
    assert!(why.contains("0781:5567:BBB222"), "{why}");
    assert!(why.contains("not on the drive allow-list"), "{why}");
    // A directory on no removable drive is not a drive.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    assert_eq!(admission(&listed, &Drive::Dir(home)), Admission::Allowed);
    // No list: every drive.
    assert_eq!(
        admission(&rules(&sys, None), &Drive::Fat(sdc1.clone())),
        Admission::Allowed
    );

    // `tessera backup drives`: each drive, usable (how) or refused (why).
    let shown = drives_under(&listed).unwrap().text;
    assert!(
        shown.contains(&format!("sdb1: --to {}", key.display())),
        "{shown}"
    );
    assert!(
        shown.contains("REFUSED: 0781:5567:BBB222 is not on the drive allow-list"),
        "{shown}"
    );
    assert!(shown.contains("allow-list is in force"), "{shown}");
    let open = drives_under(&rules(&sys, None)).unwrap().text;
    assert!(
        open.contains(&format!(
            "sdc1: --fat-device {} (device mode)",
            sdc1.display()
        )),
        "{open}"
    );

    // The backup commands open drives under the rules: the refused one is not read at all.
    let fat = Drive::Fat(sdc1.clone());
    let error = with_rules(listed.clone(), || backup::list(&fat)).unwrap_err();
    let said = error.to_string();
    assert!(said.contains("refused"), "{said}");
    assert!(said.contains("not on the drive allow-list"), "{said}");
    assert!(said.contains("`allow` in `[backup]`"), "{said}");
    let on_key = with_rules(listed.clone(), || backup::list(&Drive::Dir(key.clone()))).unwrap();
    assert!(on_key.text.contains("0 backups on"), "{}", on_key.text);
    // Once listed, the same device is used in device mode.
    let both = AllowList::parse(["0781:5567:AAA111", "0781:5567:BBB222"]).unwrap();
    let shown = with_rules(rules(&sys, Some(both)), || backup::list(&fat)).unwrap();
    assert!(shown.text.contains("0 backups on"), "{}", shown.text);
}

#[test]
fn the_binary_refuses_a_configuration_with_a_bad_entry_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        "version = 1\n[backup]\nallow = [\n  \"0781:5567:AAA111\",\n  \"0781-5567-BBB\",\n]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&config)
        .args(["backup", "drives"])
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("line 5, key `backup.allow`"), "{said}");
    assert!(said.contains("\"0781-5567-BBB\""), "{said}");
    assert!(said.contains("vendor:product:serial"), "{said}");
    // A good list: the drives (none here, or the machine's), and the list said to be in force.
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&config)
        .args(["backup", "drives"])
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("the drive allow-list is in force"), "{said}");
}
