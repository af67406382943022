//! `tessera firmware`: the terminal device's own firmware, for scripts and operators at the
//! device: `status` (slots A and B, versions, pending or confirmed, boot attempts, the rollback
//! floor), `verify FILE` (every check and its result), `install FILE` (verify, then write the
//! inactive slot, pending its first confirmed start) and `confirm` (the program on trial is
//! healthy: its slot becomes active and the floor rises).
//!
//! The device root comes from `--root DIR`, else `root` in the configuration's `[firmware]`
//! table. What the device trusts (its release keys and threshold, its hardware id, its floor)
//! is in the device's own state, never in the configuration or on the command line.
//!
//! Exit statuses ([`FIRMWARE_EXIT_CODES_HELP`]): 0 done; 1 refused (an image failed a check, or
//! the device refused the step: an install while another is pending, a confirm with nothing on
//! trial); 2 a file could not be read or written (the image, a slot); 3 no usable device root
//! (none configured, not absolute, not provisioned, or its state unreadable).

use std::path::{Path, PathBuf};

use firmware_image::device::{MAX_BOOT_ATTEMPTS, SlotRole};
use firmware_image::{Device, FirmwareError, Outcome as CheckOutcome, Status, Verification};
use serde_json::{Value, json};

use super::{Shown, printable};
use crate::config::FirmwareConfig;

/// Done.
pub const OK: u8 = 0;
/// An image failed a check, or the device refused the step.
pub const REFUSED: u8 = 1;
/// A file could not be read or written.
pub const IO: u8 = 2;
/// No usable device root.
pub const NO_DEVICE: u8 = 3;

/// The exit statuses as `tessera firmware --help` shows them.
pub const FIRMWARE_EXIT_CODES_HELP: &str = "\
Exit status:
  0   done (status shown, image verified, installed, confirmed)
  1   refused: an image failed a check, or the device refused the step
  2   a file could not be read or written (the image, a slot)
  3   no usable device root: none configured ([firmware] root or --root), not provisioned, or
      its state unreadable";

/// One `tessera firmware` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirmwareCommand {
    /// The device's status.
    Status,
    /// Verify an image against the device, installing nothing.
    Verify(PathBuf),
    /// Verify and install an image to the inactive slot.
    Install(PathBuf),
    /// Confirm the slot on trial.
    Confirm,
}

/// What a command printed and the status to exit with.
#[derive(Clone, Debug, PartialEq)]
pub struct Ran {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit status.
    pub code: u8,
}

impl Ran {
    fn failed(code: u8, message: String) -> Ran {
        Ran {
            stdout: String::new(),
            stderr: format!("tessera firmware: {message}\n"),
            code,
        }
    }
}

/// The device root: `--root`, else the configuration's; it must be absolute.
pub fn device_root(flag: Option<PathBuf>, config: &FirmwareConfig) -> Result<PathBuf, String> {
    let (root, from) = match (flag, &config.root) {
        (Some(root), _) => (root, "--root"),
        (None, Some(root)) => (root.clone(), "the configuration's [firmware] root"),
        (None, None) => {
            return Err(
                "no device root: this machine is not set up as a terminal device; set \
                        `root` in the configuration's [firmware] table, or give --root DIR"
                    .to_owned(),
            );
        }
    };
    if !root.is_absolute() {
        return Err(format!(
            "{from} {} is not an absolute path; give the device root as an absolute path",
            root.display()
        ));
    }
    Ok(root)
}

/// The exit status for a library error.
pub fn exit_code(e: &FirmwareError) -> u8 {
    match e {
        FirmwareError::Refused(_) | FirmwareError::Device { .. } => REFUSED,
        FirmwareError::State { .. } => NO_DEVICE,
        _ => IO,
    }
}

/// Runs `command` on the device at `root` (or reports why there is none).
pub fn run(command: &FirmwareCommand, root: Result<PathBuf, String>, json: bool) -> Ran {
    let root = match root {
        Ok(root) => root,
        Err(why) => return Ran::failed(NO_DEVICE, why),
    };
    let device = match Device::open(&root) {
        Ok(device) => device,
        Err(e) => return Ran::failed(NO_DEVICE, format!("device root {}: {e}", root.display())),
    };
    let result = match command {
        FirmwareCommand::Status => device.status().map(|s| show_status(&s)),
        FirmwareCommand::Verify(image) => {
            device.verify(image).map(|v| show_verification(image, &v))
        }
        FirmwareCommand::Install(image) => install(&device, image),
        FirmwareCommand::Confirm => device.confirm().map(|c| Shown {
            text: format!(
                "confirmed slot {} ({}); rollback floor {}{}\n",
                c.slot,
                c.version,
                c.rollback_floor,
                if c.keys_rotated {
                    "; release keys rotated"
                } else {
                    ""
                }
            ),
            json: json!({
                "slot": c.slot.to_string(),
                "version": c.version.to_string(),
                "rollback_floor": c.rollback_floor,
                "keys_rotated": c.keys_rotated,
            }),
        }),
    };
    match result {
        Ok(shown) => {
            let refused = shown.json.get("passed") == Some(&Value::Bool(false));
            Ran {
                stdout: shown.render(json),
                stderr: if refused {
                    "tessera firmware: the image is refused; nothing was installed\n".to_owned()
                } else {
                    String::new()
                },
                code: if refused { REFUSED } else { OK },
            }
        }
        Err(e) => Ran::failed(exit_code(&e), e.to_string()),
    }
}

fn install(device: &Device, image: &Path) -> Result<Shown, FirmwareError> {
    let installed = device.install(image)?;
    let status = device.status()?;
    let active = status.active;
    let m = &installed.manifest;
    Ok(Shown {
        text: format!(
            "installed {} {} to slot {}, pending\nnext start: slot {} starts on trial and must \
             confirm (tessera firmware confirm) within {MAX_BOOT_ATTEMPTS} starts; otherwise \
             slot {active} starts again. The rollback floor rises to {} only on confirmation.\n",
            printable(&m.product),
            m.version,
            installed.slot,
            installed.slot,
            m.rollback_index
        ),
        json: json!({
            "installed": true,
            "slot": installed.slot.to_string(),
            "product": m.product,
            "version": m.version.to_string(),
            "rollback_index": m.rollback_index,
            "pending": true,
            "fallback_slot": active.to_string(),
            "max_boot_attempts": MAX_BOOT_ATTEMPTS,
        }),
    })
}

/// The status as the library's stable tab-separated lines, or JSON.
pub fn show_status(s: &Status) -> Shown {
    let slots: Vec<Value> = s
        .slots
        .iter()
        .map(|slot| {
            let mut v = json!({
                "slot": slot.slot.to_string(),
                "role": slot.role.to_string(),
            });
            match &slot.image {
                Some(Ok(m)) => {
                    v["product"] = json!(m.product);
                    v["version"] = json!(m.version.to_string());
                    v["rollback_index"] = json!(m.rollback_index);
                    v["build_time"] = json!(m.build_time);
                }
                Some(Err(e)) => v["unreadable"] = json!(e),
                None => {}
            }
            v
        })
        .collect();
    let state = match s.pending {
        Some(_) if s.boot_attempts == 0 => "pending (not started yet)",
        Some(_) => "on trial (started, not confirmed)",
        None => "confirmed",
    };
    let current = s
        .slots
        .iter()
        .find(|slot| slot.role == SlotRole::Active)
        .and_then(|slot| slot.image.as_ref()?.as_ref().ok())
        .map(|m| m.version.to_string());
    Shown {
        text: printable_lines(&s.to_string()),
        json: json!({
            "hardware_id": s.hardware_id,
            "version": current,
            "active": s.active.to_string(),
            "pending": s.pending.map(|p| p.to_string()),
            "state": state,
            "boot_attempts": s.boot_attempts,
            "max_boot_attempts": MAX_BOOT_ATTEMPTS,
            "rollback_floor": s.rollback_floor,
            "release_keys": { "threshold": s.key_threshold, "keys": s.key_count },
            "slots": slots,
        }),
    }
}

/// Every check and its result, the verdict, and the file list of a verified image.
pub fn show_verification(image: &Path, v: &Verification) -> Shown {
    let mut text = printable_lines(&v.report.to_string());
    let checks: Vec<Value> = v
        .report
        .results
        .iter()
        .map(|(check, outcome)| match outcome {
            CheckOutcome::Passed(detail) => {
                json!({ "check": check.label(), "result": "ok", "detail": detail })
            }
            CheckOutcome::Failed(r) => json!({
                "check": check.label(),
                "result": "failed",
                "refusal": r.name(),
                "detail": r.to_string(),
            }),
            CheckOutcome::NotRun(why) => {
                json!({ "check": check.label(), "result": "not run", "detail": why })
            }
        })
        .collect();
    let passed = v.report.passed();
    text.push_str(&if passed {
        format!("verified: {}\n", printable(&image.display().to_string()))
    } else {
        format!("REFUSED: {}\n", printable(&image.display().to_string()))
    });
    Shown {
        text,
        json: json!({
            "image": image.display().to_string(),
            "passed": passed,
            "checks": checks,
        }),
    }
}

/// The library's text with every control character replaced but its tabs (the columns) and
/// line breaks.
fn printable_lines(text: &str) -> String {
    text.lines()
        .map(|l| l.split('\t').map(printable).collect::<Vec<_>>().join("\t") + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_comes_from_the_flag_then_the_configuration_and_must_be_absolute() {
        let configured = FirmwareConfig {
            root: Some(PathBuf::from("/var/lib/tessera-firmware")),
        };
        assert_eq!(
            device_root(Some("/tmp/dev".into()), &configured),
            Ok(PathBuf::from("/tmp/dev"))
        );
        assert_eq!(
            device_root(None, &configured),
            Ok(PathBuf::from("/var/lib/tessera-firmware"))
        );
        let none = device_root(None, &FirmwareConfig::default()).unwrap_err();
        assert!(none.contains("[firmware]"), "{none}");
        let relative = device_root(Some("dev".into()), &configured).unwrap_err();
        assert!(relative.contains("absolute"), "{relative}");
    }

    #[test]
    fn without_a_device_the_status_is_refused_with_status_3() {
        let ran = run(
            &FirmwareCommand::Status,
            Err("no device root".into()),
            false,
        );
        assert_eq!(ran.code, NO_DEVICE);
        assert!(ran.stderr.contains("no device root"));
        let dir = tempfile::tempdir().unwrap();
        let ran = run(&FirmwareCommand::Status, Ok(dir.path().to_owned()), true);
        assert_eq!(ran.code, NO_DEVICE);
        assert!(ran.stderr.contains("provisioned"), "{}", ran.stderr);
    }

    #[cfg(feature = "embedded")]
    #[test]
    fn status_verify_install_and_confirm_on_the_demo_device() {
        use firmware_image::demo::{DEMO_REFUSED, DEMO_UPDATE, prepare};
        let dir = tempfile::tempdir().unwrap();
        let (root, drive) = (dir.path().join("device"), dir.path().join("drive"));
        prepare(&root, &drive, &dir.path().join("scratch")).unwrap();
        let on = |c: FirmwareCommand, json: bool| run(&c, Ok(root.clone()), json);

        let status = on(FirmwareCommand::Status, true);
        assert_eq!(status.code, OK, "{}", status.stderr);
        let v: Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(v["version"], "1.0.0");
        assert_eq!(v["state"], "confirmed");
        assert_eq!(v["rollback_floor"], 1);
        assert_eq!(v["release_keys"]["threshold"], 2);

        let refused = on(FirmwareCommand::Verify(drive.join(DEMO_REFUSED)), false);
        assert_eq!(refused.code, REFUSED);
        assert!(
            refused.stdout.contains("FAILED   signatures"),
            "{}",
            refused.stdout
        );
        assert!(refused.stdout.contains("REFUSED"), "{}", refused.stdout);
        let refused = on(FirmwareCommand::Install(drive.join(DEMO_REFUSED)), false);
        assert_eq!(refused.code, REFUSED);
        assert!(refused.stderr.contains("needs 2"), "{}", refused.stderr);
        let missing = on(FirmwareCommand::Verify(drive.join("none.tsfw")), false);
        assert_eq!(missing.code, IO);

        let ok = on(FirmwareCommand::Verify(drive.join(DEMO_UPDATE)), true);
        assert_eq!(ok.code, OK);
        let v: Value = serde_json::from_str(&ok.stdout).unwrap();
        assert_eq!(v["passed"], true);
        assert_eq!(v["checks"].as_array().unwrap().len(), 7);

        let installed = on(FirmwareCommand::Install(drive.join(DEMO_UPDATE)), false);
        assert_eq!(installed.code, OK, "{}", installed.stderr);
        assert!(installed.stdout.contains("to slot B, pending"));
        let again = on(FirmwareCommand::Install(drive.join(DEMO_UPDATE)), false);
        assert_eq!(again.code, REFUSED, "a second install while one is pending");
        let early = on(FirmwareCommand::Confirm, false);
        assert_eq!(early.code, REFUSED, "not started yet");

        Device::open(&root).unwrap().start().unwrap();
        let confirmed = on(FirmwareCommand::Confirm, false);
        assert_eq!(confirmed.code, OK, "{}", confirmed.stderr);
        assert!(
            confirmed
                .stdout
                .contains("confirmed slot B (1.1.0); rollback floor 2")
        );
        let v: Value = serde_json::from_str(&on(FirmwareCommand::Status, true).stdout).unwrap();
        assert_eq!(v["version"], "1.1.0");
        assert_eq!(v["active"], "B");
    }
}
