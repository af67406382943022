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
//! - [`demo`]: `tessera demo`: its fixture (an in-process reference HSM with two partitions and
//!   soft cards) and its first screen, the list of those partitions.
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

pub use runtime::{Ending, run, run_until};

#[cfg(feature = "embedded")]
/// Runs `tessera demo`: the list of the demo HSM's partitions, then the TUI against the one
/// chosen, as often as the user goes back to the list (see [`demo::run`]).
pub fn run_demo(
    idle_lock_secs: u64,
    params: quorum::Argon2Params,
    demo_dir: &std::path::Path,
) -> std::io::Result<()> {
    demo::run(idle_lock_secs, params, demo_dir)
}
