//! The Firmware screen's worker part: the device read, the images on the drives found and
//! verified, an install with its progress, a confirmation.

use super::*;

/// Runs a firmware step on the worker; progress goes to `events` as the slot is written.
pub fn work(step: FirmwareCommand, events: Option<&Sender<Event>>) -> Vec<Event> {
    let wrap = |e: FirmwareEvent| Event::Firmware(e);
    match step {
        FirmwareCommand::Scan { root, drives } => vec![wrap(scan(root.as_deref(), &drives))],
        FirmwareCommand::Install {
            root,
            image,
            drives,
        } => {
            let mut last = None;
            let mut progress = |done: u64, total: u64| {
                // At most a hundred updates, whatever the image's size.
                let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
                if last != Some(percent) {
                    last = Some(percent);
                    if let Some(events) = events {
                        let _ = events.send(wrap(FirmwareEvent::Progress { done, total }));
                    }
                }
            };
            let done = Device::open(&root).and_then(|device| {
                device.install_with(
                    &image,
                    &mut firmware_image::device::Faults::none(),
                    &mut progress,
                )
            });
            let said = match done {
                Ok(i) => FirmwareEvent::Done(format!(
                    "Installed {} to slot {}, pending its first start.",
                    i.manifest.version, i.slot
                )),
                Err(e) => FirmwareEvent::Failed(format!("Install refused: {e}")),
            };
            vec![wrap(said), wrap(scan(Some(&root), &drives))]
        }
        FirmwareCommand::Confirm { root, drives } => {
            let said = match Device::open(&root).and_then(|d| d.confirm()) {
                Ok(c) => FirmwareEvent::Done(format!(
                    "Confirmed slot {} ({}); rollback floor now {}.",
                    c.slot, c.version, c.rollback_floor
                )),
                Err(e) => FirmwareEvent::Failed(format!("Confirmation refused: {e}")),
            };
            vec![wrap(said), wrap(scan(Some(&root), &drives))]
        }
    }
}

/// Reads the device and verifies the images on the drives against it.
pub fn scan(root: Option<&Path>, drives: &[PathBuf]) -> FirmwareEvent {
    let device = match root {
        None => Err(
            "This terminal has no firmware device root: set `root` in the \
                     configuration's [firmware] table on a terminal device."
                .to_owned(),
        ),
        Some(root) => Device::open(root).map_err(|e| format!("The device cannot be read: {e}")),
    };
    let status = device.as_ref().ok().map(Device::status);
    let view = match (&device, status) {
        (Err(why), _) => Err(why.clone()),
        (Ok(_), Some(Ok(s))) => Ok(device_view(&s)),
        (Ok(_), Some(Err(e))) => Err(format!("The device cannot be read: {e}")),
        (Ok(_), None) => unreachable!("read above"),
    };
    let images = match &device {
        Ok(device) => find_images(drives)
            .into_iter()
            .map(|path| image_view(device, path))
            .collect(),
        Err(_) => Vec::new(),
    };
    FirmwareEvent::Scanned {
        device: view,
        images,
    }
}

/// The `*.tsfw` files directly in each drive directory, sorted, at most [`MAX_IMAGES`] each.
fn find_images(drives: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in drives {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case(IMAGE_EXTENSION))
            })
            .collect();
        found.sort();
        found.truncate(MAX_IMAGES);
        all.extend(found);
    }
    all
}

/// The device's status as shown.
pub fn device_view(s: &Status) -> DeviceView {
    DeviceView {
        hardware_id: printable(&s.hardware_id),
        active: s.active.letter(),
        pending: s.pending.map(|p| p.letter()),
        boot_attempts: s.boot_attempts,
        rollback_floor: s.rollback_floor,
        keys: (s.key_threshold, s.key_count),
        slots: s
            .slots
            .iter()
            .map(|slot| {
                let (version, rollback_index, unreadable) = match &slot.image {
                    Some(Ok(m)) => (Some(m.version.to_string()), Some(m.rollback_index), None),
                    Some(Err(e)) => (None, None, Some(printable(e))),
                    None => (None, None, None),
                };
                SlotView {
                    letter: slot.slot.letter(),
                    role: match slot.role {
                        SlotRole::Active => "active",
                        SlotRole::Pending => "pending",
                        SlotRole::Spare => "spare",
                        SlotRole::Empty => "empty",
                    }
                    .to_owned(),
                    version,
                    rollback_index,
                    unreadable,
                }
            })
            .collect(),
    }
}

fn image_view(device: &Device, path: PathBuf) -> ImageView {
    let name = printable(&path.file_name().unwrap_or_default().to_string_lossy());
    match device.verify(&path) {
        Ok(v) => verification_view(name, path, v),
        Err(e) => ImageView {
            name,
            path,
            checks: Vec::new(),
            passed: false,
            version: None,
            rollback_index: None,
            files: Vec::new(),
            error: Some(printable(&e.to_string())),
        },
    }
}

/// An image's verification as shown: every check; the version and files once verified.
pub fn verification_view(name: String, path: PathBuf, v: Verification) -> ImageView {
    let checks = v
        .report
        .results
        .iter()
        .map(|(check, outcome)| {
            let (mark, detail) = match outcome {
                CheckOutcome::Passed(detail) => (Mark::Ok, detail.clone()),
                CheckOutcome::Failed(r) => (Mark::Failed(r.name()), r.to_string()),
                CheckOutcome::NotRun(why) => (Mark::NotRun, (*why).to_owned()),
            };
            CheckLine {
                label: check.label(),
                mark,
                detail: printable(&detail),
            }
        })
        .collect();
    let passed = v.report.passed();
    let verified = v.into_result().ok();
    let manifest = verified.as_ref().map(|v| v.manifest());
    ImageView {
        name,
        path,
        checks,
        passed,
        version: manifest.map(|m| format!("{} {}", printable(&m.product), m.version)),
        rollback_index: manifest.map(|m| m.rollback_index),
        files: manifest
            .map(|m| {
                m.files
                    .iter()
                    .map(|f| FileLine {
                        path: printable(&f.path),
                        size: f.size,
                        executable: f.executable,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: None,
    }
}
