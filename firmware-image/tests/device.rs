//! The device side end to end in a temporary root: install and confirm, fall back after
//! unconfirmed starts and at once for a broken pending slot, the launcher refusing a changed
//! slot, the floor rising only on confirmation, key rotation, and installs interrupted at
//! every step.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use firmware_image::device::{Faults, MAX_BOOT_ATTEMPTS, SlotRole};
use firmware_image::{Device, Slot};
use fixtures::*;

fn provisioned(work: &Path) -> Device {
    let first = release(work, "v1", "1.0.0", 1, "");
    Device::provision(
        &work.join("device"),
        HARDWARE_ID,
        key_set(2, &[1, 2, 3]),
        &first,
    )
    .unwrap()
}

#[test]
fn an_update_installs_starts_on_trial_and_confirms() {
    let work = tempfile::tempdir().unwrap();
    let device = provisioned(work.path());
    let boot = device.start().unwrap();
    assert_eq!((boot.slot, boot.trial), (Slot::A, false));
    assert_eq!(
        fs::read_to_string(boot.files.join("assets/help/en.txt")).unwrap(),
        "help for v1\n"
    );

    let update = release(work.path(), "v2", "1.1.0", 2, "");
    let mut progress = Vec::new();
    let installed = device
        .install_with(&update, &mut Faults::none(), &mut |done, total| {
            progress.push((done, total))
        })
        .unwrap();
    assert_eq!(installed.slot, Slot::B);
    assert_eq!(progress.last().map(|p| p.0), progress.last().map(|p| p.1));
    let status = device.status().unwrap();
    assert_eq!(status.pending, Some(Slot::B));
    assert_eq!(
        status.rollback_floor, 1,
        "the floor rises only after confirmation"
    );
    assert_eq!(status.slots[1].role, SlotRole::Pending);
    let text = status.to_string();
    assert!(text.contains("pending\tB\n"), "{text}");
    assert!(
        text.contains("slot\tB\tpending\ttessera-terminal\t1.1.0\t2\t"),
        "{text}"
    );

    // A second update waits until this one is settled.
    let third = release(work.path(), "v3", "1.2.0", 3, "");
    let e = device.install(&third).unwrap_err();
    assert!(
        e.to_string()
            .contains("waiting for its first confirmed start"),
        "{e}"
    );

    let boot = device.start().unwrap();
    assert_eq!((boot.slot, boot.trial, boot.attempt), (Slot::B, true, 1));
    assert_eq!(boot.manifest.version.to_string(), "1.1.0");
    let confirmed = device.confirm().unwrap();
    assert_eq!((confirmed.slot, confirmed.rollback_floor), (Slot::B, 2));
    let status = device.status().unwrap();
    assert_eq!(
        (status.active, status.pending, status.rollback_floor),
        (Slot::B, None, 2)
    );
    assert_eq!(status.slots[0].role, SlotRole::Spare);
    assert!(device.confirm().is_err(), "nothing left to confirm");

    // The floor now refuses 1.0.0; the next update goes to slot A.
    let e = device
        .install(&release(work.path(), "again", "1.0.0", 1, ""))
        .unwrap_err();
    assert_eq!(e.refusal().unwrap().name(), "rollback-index-lower");
    assert_eq!(device.install(&third).unwrap().slot, Slot::A);
}

#[test]
fn an_update_that_never_confirms_falls_back_and_the_floor_stays() {
    let work = tempfile::tempdir().unwrap();
    let device = provisioned(work.path());
    let update = release(work.path(), "v2", "1.1.0", 5, "");
    device.install(&update).unwrap();
    for attempt in 1..=MAX_BOOT_ATTEMPTS {
        let boot = device.start().unwrap();
        assert_eq!(
            (boot.slot, boot.trial, boot.attempt),
            (Slot::B, true, attempt)
        );
    }
    let boot = device.start().unwrap();
    assert_eq!((boot.slot, boot.trial), (Slot::A, false));
    let (slot, why) = boot.fell_back.unwrap();
    assert_eq!(slot, Slot::B);
    assert!(why.contains("did not confirm"), "{why}");
    let status = device.status().unwrap();
    assert_eq!(
        (status.active, status.pending, status.rollback_floor),
        (Slot::A, None, 1)
    );
    assert_eq!(status.slots[1].role, SlotRole::Spare);
    assert!(
        device.confirm().is_err(),
        "a fallen-back update cannot be confirmed"
    );
    // The same update may be tried again.
    device.install(&update).unwrap();
    assert!(device.start().unwrap().trial);
}

#[test]
fn a_pending_slot_that_changed_falls_back_at_once() {
    let work = tempfile::tempdir().unwrap();
    let device = provisioned(work.path());
    device
        .install(&release(work.path(), "v2", "1.1.0", 2, ""))
        .unwrap();
    fs::write(
        device.slot_dir(Slot::B).join("files/bin/tessera"),
        "#!/bin/sh\nevil\n",
    )
    .unwrap();
    let boot = device.start().unwrap();
    assert_eq!(boot.slot, Slot::A);
    let (_, why) = boot.fell_back.unwrap();
    assert!(
        why.contains("slot B changed") && why.contains("bin/tessera"),
        "{why}"
    );
    assert_eq!(device.status().unwrap().pending, None);
}

#[test]
fn the_launcher_refuses_an_active_slot_that_changed() {
    type Tamper = (&'static str, fn(&Path));
    let tampers: [Tamper; 6] = [
        ("file changed", |f| {
            fs::write(f.join("etc/tessera.toml"), "version = 2\n").unwrap()
        }),
        ("file added", |f| {
            fs::write(f.join("bin/helper"), "x").unwrap()
        }),
        ("file removed", |f| {
            fs::remove_file(f.join("assets/empty")).unwrap()
        }),
        ("link out", |f| {
            fs::remove_file(f.join("etc/tessera.toml")).unwrap();
            symlink("/etc/passwd", f.join("etc/tessera.toml")).unwrap();
        }),
        ("mode changed", |f| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(f.join("bin/tessera"), fs::Permissions::from_mode(0o644)).unwrap();
        }),
        ("manifest replaced", |f| {
            let m = f.parent().unwrap().join("manifest");
            let mut bytes = fs::read(&m).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            fs::write(m, bytes).unwrap();
        }),
    ];
    for (what, tamper) in tampers {
        let work = tempfile::tempdir().unwrap();
        let device = provisioned(work.path());
        tamper(&device.slot_dir(Slot::A).join("files"));
        let e = device.start().unwrap_err();
        assert_eq!(
            e.refusal().map(|r| r.name()),
            Some("slot-changed"),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_key_rotation_takes_effect_on_confirmation_and_retires_the_old_keys() {
    let work = tempfile::tempdir().unwrap();
    let device = provisioned(work.path());
    let new_keys = format!(
        "[new_key_set]\nthreshold = 2\nkeys = [\"{}\", \"{}\"]\n",
        hex(&public(4)),
        hex(&public(5))
    );
    // The rotation itself is signed under the current set.
    device
        .install(&release(work.path(), "rotate", "2.0.0", 2, &new_keys))
        .unwrap();
    assert_eq!(device.trust().unwrap().keys, key_set(2, &[1, 2, 3]));
    device.start().unwrap();
    assert!(device.confirm().unwrap().keys_rotated);
    assert_eq!(device.trust().unwrap().keys, key_set(2, &[4, 5]));

    let by_old = release(work.path(), "old-keys", "2.1.0", 3, "");
    let e = device.install(&by_old).unwrap_err();
    assert_eq!(e.refusal().unwrap().name(), "unknown-key", "{e}");
    assert!(e.to_string().contains("retired"), "{e}");
    let by_new = sign(&build(work.path(), "new-keys", "2.1.0", 3, ""), &[4, 5]);
    device.install(&by_new).unwrap();
}

#[test]
fn an_install_interrupted_at_any_step_leaves_the_active_slot_bootable() {
    let work = tempfile::tempdir().unwrap();
    let update = release(work.path(), "v2", "1.1.0", 2, "");
    // A first update, confirmed, so that slot B holds an image to be cleared: every path.
    let base = {
        let device = provisioned(&work.path().join("base"));
        device.install(&update).unwrap();
        device.start().unwrap();
        device.confirm().unwrap();
        device
    };
    let next = release(work.path(), "v3", "1.2.0", 3, "");
    let mut counting = Faults::none();
    copy_dir(base.root(), &work.path().join("count"));
    Device::open(&work.path().join("count"))
        .unwrap()
        .install_with(&next, &mut counting, &mut |_, _| {})
        .unwrap();
    let steps = counting.steps();
    assert!(steps > 20, "only {steps} steps");

    for n in 0..steps {
        let root = work.path().join(format!("cut-{n}"));
        copy_dir(base.root(), &root);
        let device = Device::open(&root).unwrap();
        let e = device
            .install_with(&next, &mut Faults::fail_at(n), &mut |_, _| {})
            .unwrap_err();
        assert!(e.to_string().contains("injected fault"), "step {n}: {e}");

        // After the "crash": the old slot (B, 1.1.0) is active and starts, unless the cut came
        // after the pending mark was written (the last steps only sync the directory).
        let status = device.status().unwrap();
        let boot = device.start().unwrap();
        if status.pending.is_none() {
            assert_eq!((boot.slot, boot.trial), (Slot::B, false), "step {n}");
            assert_eq!(boot.manifest.version.to_string(), "1.1.0", "step {n}");
            assert_eq!(device.status().unwrap().rollback_floor, 2, "step {n}");
            // And installing again works from whatever the cut left.
            device.install(&next).unwrap();
            assert_eq!(device.start().unwrap().slot, Slot::A, "step {n}");
        } else {
            assert!(n >= steps - 2, "pending already at step {n} of {steps}");
            assert_eq!((boot.slot, boot.trial), (Slot::A, true), "step {n}");
        }
        device.confirm().unwrap();
        assert_eq!(
            device.start().unwrap().manifest.version.to_string(),
            "1.2.0"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
