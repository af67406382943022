//! `tessera demo` itself: the demo HSM opened, its fixture prepared on a thread while the
//! first screen (the partition list) shows, then the TUI against the partition chosen; Esc on
//! its welcome screen comes back to the list.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Demo, PARTITIONS, partitions};
use crate::tui::model::{Level, Model};
use crate::tui::theme::Theme;
use crate::tui::{Ending, run_until};

/// Runs `tessera demo` on the demo state in `demo_dir` (`<state>/demo`, see
/// [`super::layout`]). `idle_lock_secs` locks an idle session; `params` stretches the soft
/// cards' passphrases; `<demo_dir>/drive` is the demo's drive directory (backups and log
/// exports go there, and the demo firmware images), `<demo_dir>/drive.img` the demo's FAT drive
/// (a FAT32 image made on the first start, offered in device mode) and `<demo_dir>/device` the
/// demo device's firmware root (see `firmware_image::demo`).
pub fn run(idle_lock_secs: u64, params: quorum::Argon2Params, demo_dir: &Path) -> io::Result<()> {
    let demo = Arc::new(Demo::open(demo_dir, params, false).map_err(io::Error::other)?);
    demo.prepare_in_background();
    let drive_dir = demo_dir.join("drive");
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&drive_dir)
        .map_err(|e| {
            io::Error::other(format!(
                "creating the demo drive directory {}: {e}",
                drive_dir.display()
            ))
        })?;
    let device_dir = demo_dir.join("device");
    let scratch = device_dir.with_extension("build");
    let firmware = firmware_image::demo::prepare(&device_dir, &drive_dir, &scratch)
        .map(|_| device_dir)
        .map_err(|e| e.to_string());
    let image = demo_dir.join("drive.img");
    let fat_drive = usb_backup::drive::ensure_fat_image(&image, usb_backup::drive::DEMO_IMAGE_LEN)
        .map(|_| image)
        .map_err(|e| e.to_string());
    let theme = Theme::for_terminal(Theme::no_color_from_env());
    let mut selected = 0;
    loop {
        let Some(index) = partitions::choose(&demo, selected, &theme)? else {
            return Ok(());
        };
        selected = index;
        let mut model = model(&demo, index, &drive_dir, &firmware);
        match &fat_drive {
            Ok(image) => model.backup.devices = vec![image.clone()],
            Err(e) => model.notify(
                Level::Warn,
                format!("The demo FAT drive could not be made: {e}"),
            ),
        }
        model.idle_lock_ms = idle_lock_secs.saturating_mul(1000);
        let worker_demo = Arc::clone(&demo);
        match run_until(model, move || worker_demo.worker(index), theme)? {
            Ending::Quit => return Ok(()),
            Ending::Leave => {}
        }
    }
}

/// The welcome screen of partition `index`.
fn model(demo: &Demo, index: usize, drive_dir: &Path, firmware: &Result<PathBuf, String>) -> Model {
    let mut model = Model::new(demo.target_of(index), Demo::cards_of(index));
    model.partition_list = true;
    // Each partition its own record of backups (the first keeps the name it always had).
    let record = match index {
        0 => crate::flows::backup::RECORD_FILE.to_owned(),
        _ => format!(
            "{}-{}",
            PARTITIONS[index].id,
            crate::flows::backup::RECORD_FILE
        ),
    };
    model.backup = crate::flows::backup::BackupFlow::with_record(drive_dir.with_file_name(record));
    match firmware {
        Ok(root) => model.firmware.root = Some(root.clone()),
        Err(e) => model.notify(
            Level::Warn,
            format!("The demo firmware device could not be set up: {e}"),
        ),
    }
    model.drive_dirs = vec![drive_dir.to_path_buf()];
    model.setup_note = Some(match demo.prepared() {
        None if demo.first_start() => "preparing the demo HSM… (first start only)".to_owned(),
        _ => "opening the demo HSM…".to_owned(),
    });
    model
}
