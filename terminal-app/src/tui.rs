//! The Tessera TUI, on The Elm Architecture with ratatui and crossterm.
//!
//! - [`model`]: the [`Model`](model::Model) (screens are an enum, overlays too); it holds
//!   progress and results, never a PIN or a share.
//! - [`message`]: [`Message`](message::Message)s in, [`Effect`](message::Effect)s out, and the
//!   worker's [`Command`](message::Command)s and [`Event`](message::Event)s.
//! - [`keymap`]: key maps as data; the footer and the help overlay read the same tables.
//! - [`update`]: pure `update(model, message) -> effects`.
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
pub mod paired;
pub mod pcsc_reader;
pub mod pin;
mod runtime;
pub mod theme;
pub mod update;
pub mod view;
pub mod worker;

pub use runtime::run;

#[cfg(feature = "embedded")]
/// Runs `tessera demo`: the TUI against the in-process demo HSM. `idle_lock_secs` locks an
/// idle session; `params` stretches the soft cards' passphrases; `drive_dir` is the demo's
/// drive directory (backups and log exports go there, and the demo firmware images are put
/// there); `device_dir` is the demo device's firmware root (provisioned on the first run, kept
/// after: see `firmware_image::demo`).
pub fn run_demo(
    idle_lock_secs: u64,
    params: quorum::Argon2Params,
    drive_dir: std::path::PathBuf,
    device_dir: std::path::PathBuf,
) -> std::io::Result<()> {
    let demo = demo::Demo::new(params, false).map_err(std::io::Error::other)?;
    let mut model = model::Model::new(demo.target(), demo::Demo::cards());
    model.idle_lock_ms = idle_lock_secs.saturating_mul(1000);
    model.backup = crate::flows::backup::BackupFlow::with_record(
        drive_dir.with_file_name(crate::flows::backup::RECORD_FILE),
    );
    let scratch = device_dir.with_extension("build");
    match firmware_image::demo::prepare(&device_dir, &drive_dir, &scratch) {
        Ok(_) => model.firmware.root = Some(device_dir),
        Err(e) => model.notify(
            model::Level::Warn,
            format!("The demo firmware device could not be set up: {e}"),
        ),
    }
    model.drive_dirs = vec![drive_dir];
    let theme = theme::Theme::for_terminal(theme::Theme::no_color_from_env());
    run(model, move || demo.into_worker(), theme)
}
