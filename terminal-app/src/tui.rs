//! The Tessera TUI, on The Elm Architecture with ratatui and crossterm.
//!
//! - [`model`]: the [`Model`](model::Model) (screens are an enum, overlays too); it holds
//!   progress and results, never a PIN or a share.
//! - [`message`]: [`Message`](message::Message)s in, [`Effect`](message::Effect)s out, and the
//!   worker's [`Command`](message::Command)s and [`Event`](message::Event)s.
//! - [`keymap`]: key maps as data; the footer and the help overlay read the same tables.
//! - [`update`]: pure `update(model, message) -> effects`; it finds the flow that answers the
//!   screen (its context, actions, opening, backing out, logout, worker events) in `screens`,
//!   one entry per screen.
//! - [`view`]: pure `view(frame, model, theme)`; usable at 80×24, and nothing panics at 40×12.
//! - [`worker`]: the thread that owns the link and the cards.
//! - [`theme`]: colours from `assets/theme.toml`; `NO_COLOR` turns them off, and every state
//!   also reads in words and marks.
//! - [`demo`]: `tessera demo`'s fixture (an in-process reference HSM and soft cards).
//! - [`pin`]: the zeroizing PIN buffer the runtime keeps outside the model.
//! - [`paired`]: the TUI against a paired HSM (`tessera`, `tessera open`), and [`chooser`],
//!   the list of paired partitions it starts from; [`pcsc_reader`]: PC/SC card readers (and
//!   configured soft cards) as the worker's card reader, with reader events; [`demo_pcsc`]:
//!   `tessera demo --pcsc`, the demo HSM with the virtual OpenPGP cards behind pcscd.
//! - [`mouse`]: clicks and the wheel, turned into the key presses that do the same.
//!
//! The flows themselves (login, dashboard, configuration, keys and bin, logs) are in
//! [`crate::flows`], one file each.

pub mod chooser;
#[cfg(feature = "embedded")]
pub mod demo;
#[cfg(feature = "embedded")]
pub mod demo_pcsc;
pub mod keymap;
pub mod message;
pub mod model;
pub mod mouse;
pub mod paired;
pub mod pcsc_reader;
pub mod pin;
mod runtime;
pub(crate) mod screens;
pub mod theme;
pub mod update;
pub mod view;
pub mod worker;

pub use runtime::run;

#[cfg(feature = "embedded")]
/// Runs `tessera demo`: the TUI against the demo HSM whose state lives in `demo_dir`
/// (`<state>/demo`, see [`demo::layout`]). `idle_lock_secs` locks an idle session; `params`
/// stretches the soft cards' passphrases; `<demo_dir>/drive` is the demo's drive directory
/// (backups and log exports go there, and the demo firmware images), `<demo_dir>/drive.img` the
/// demo's FAT drive (a FAT32 image made on the first start, offered in device mode) and
/// `<demo_dir>/device` the demo device's firmware root (see `firmware_image::demo`). The fixture is built on the first start only, on the
/// worker thread after the first frame, which says so.
pub fn run_demo(
    idle_lock_secs: u64,
    params: quorum::Argon2Params,
    demo_dir: &std::path::Path,
) -> std::io::Result<()> {
    let demo = demo::Demo::open(demo_dir, params, false).map_err(std::io::Error::other)?;
    let drive_dir = demo_dir.join("drive");
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&drive_dir)
        .map_err(|e| {
            std::io::Error::other(format!(
                "creating the demo drive directory {}: {e}",
                drive_dir.display()
            ))
        })?;
    let mut model = model::Model::new(demo.target(), demo::Demo::cards());
    model.idle_lock_ms = idle_lock_secs.saturating_mul(1000);
    model.backup = crate::flows::backup::BackupFlow::with_record(
        drive_dir.with_file_name(crate::flows::backup::RECORD_FILE),
    );
    let device_dir = demo_dir.join("device");
    let scratch = device_dir.with_extension("build");
    match firmware_image::demo::prepare(&device_dir, &drive_dir, &scratch) {
        Ok(_) => model.firmware.root = Some(device_dir),
        Err(e) => model.notify(
            model::Level::Warn,
            format!("The demo firmware device could not be set up: {e}"),
        ),
    }
    let image = demo_dir.join("drive.img");
    match usb_backup::drive::ensure_fat_image(&image, usb_backup::drive::DEMO_IMAGE_LEN) {
        Ok(_) => model.backup.devices = vec![image],
        Err(e) => model.notify(
            model::Level::Warn,
            format!("The demo FAT drive could not be made: {e}"),
        ),
    }
    model.drive_dirs = vec![drive_dir];
    model.setup_note = Some(if demo.first_start() {
        "preparing the demo HSM… (first start only)".to_owned()
    } else {
        "opening the demo HSM…".to_owned()
    });
    let theme = theme::Theme::for_terminal(theme::Theme::no_color_from_env());
    run(model, move || demo.into_worker(), theme)
}
