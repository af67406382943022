//! The terminal's side of each administration flow, one file per flow (beside `quorum`'s
//! ceremonies and the HSM's admin handlers): the flow's part of the model, how it answers keys
//! and worker events (pure: it returns [`Effect`]s), how it draws, and the worker's side, which
//! speaks the link.
//!
//! - [`login`]: a PSO, auditor or SO login, card by card, through `quorum`'s login ceremony.
//! - [`dashboard`]: the partition at a glance.
//! - [`config`]: the configuration: staged, reviewed old → new, applied against the revision
//!   read.
//! - [`keys`]: the key list and the bin (restore, purge), pages fetched as the user scrolls.
//! - [`drill`]: a share drill of one card (the Cards screen).
//! - [`reshare`]: a re-share of the PSO set to a new m and n (the Cards screen).
//! - [`revoke`]: revoke a lost card: a fresh secret for a new set without it (Cards).
//! - [`enrol`]: enrol a PSO set (a fresh partition's first) or an auditor set, card by card
//!   (Cards).
//! - [`new_set`]: the stage [`enrol`], [`reshare`] and [`revoke`] share: the new set's cards
//!   one at a time, and which of them an abandoned ceremony left holding an unused share.
//! - [`newcard`]: set up a new card: a soft card file, or an OpenPGP card's keys and admin
//!   PIN (Cards).
//! - [`pin`]: change or unblock a card's PIN, no login needed (Cards).
//! - [`credentials`]: the application's setup password reset, shown once.
//! - [`logs`]: the partition log in pages, filtered, and verified as it is read.
//! - [`backup`]: backups to one drive or two, verified read back; restore with a dry run.
//! - [`terminals`]: the partition's paired terminals, revoke one, a new pairing code.
//! - [`firmware`]: the terminal device's own firmware: slots, updates verified, installed,
//!   confirmed (no HSM login needed).
//! - [`log_export`]: the Logs screen's export to a drive: written, read back and verified,
//!   then confirmed.

use crate::tui::message::Effect;

pub mod backup;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod drill;
pub mod enrol;
pub mod firmware;
pub mod keys;
pub mod log_export;
pub mod login;
pub mod logs;
pub mod new_set;
pub mod newcard;
pub mod pin;
pub mod reshare;
pub mod revoke;
pub mod terminals;

/// What a flow's answer to a key means for the screen around it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stay on the screen; do these.
    Stay(Vec<Effect>),
    /// Back out of the screen; do these first.
    Leave(Vec<Effect>),
}

impl Outcome {
    /// Stay, doing nothing.
    pub fn none() -> Outcome {
        Outcome::Stay(Vec::new())
    }

    /// Stay, doing one thing.
    pub fn one(effect: Effect) -> Outcome {
        Outcome::Stay(vec![effect])
    }
}

/// A keystroke into the PIN being typed, whose length (in characters) `typed` counts: a
/// character goes to the runtime's zeroizing buffer, an erasure takes the last one back; the
/// model never sees either. `None` for any other key (Enter included: each flow says where
/// the PIN then goes).
pub(crate) fn pin_typing(typed: &mut usize, action: crate::tui::keymap::Action) -> Option<Outcome> {
    use crate::tui::keymap::Action;
    match action {
        Action::Input(c) if *typed < login::MAX_PIN_CHARS => {
            *typed += 1;
            Some(Outcome::one(Effect::PinPush(c)))
        }
        Action::Erase if *typed > 0 => {
            *typed -= 1;
            Some(Outcome::one(Effect::PinPop))
        }
        _ => None,
    }
}

/// Moves a selection within `len` rows by `action`'s step (`page` rows for a page).
pub(crate) fn step_selection(
    selected: usize,
    len: usize,
    action: crate::tui::keymap::Action,
    page: usize,
) -> usize {
    use crate::tui::keymap::Action;
    if len == 0 {
        return 0;
    }
    let last = len - 1;
    match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (selected + 1).min(last),
        Action::PageUp => selected.saturating_sub(page),
        Action::PageDown => (selected + page).min(last),
        Action::Home => 0,
        Action::End => last,
        _ => selected.min(last),
    }
}
