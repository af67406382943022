//! The `tessera` binary's commands (declared by `main.rs`, not by the library): each parses
//! nothing and decides nothing the library does not; it asks on the terminal, calls the
//! library ([`terminal_app::cli`] and the rest) and prints. `main.rs` dispatches to them and
//! maps their errors to the documented exit statuses.

pub(crate) mod args;
pub(crate) mod backup;
pub(crate) mod card;
pub(crate) mod demo;
pub(crate) mod firmware;
pub(crate) mod log;
pub(crate) mod man;
pub(crate) mod open;
pub(crate) mod pair;
pub(crate) mod reads;
pub(crate) mod session;
pub(crate) mod terminals;
