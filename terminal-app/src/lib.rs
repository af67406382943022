//! The Tessera terminal's own logic, behind the thin `tessera` binary: the terminal
//! configuration, its state (identity key, paired partitions), pairing, the scriptable
//! commands, and the embedded demo.
//!
//! ```
//! use terminal_app::config::TerminalConfig;
//!
//! // No configuration file: the defaults, which accept hardware cards only.
//! let loaded = TerminalConfig::load(None)?;
//! assert!(!loaded.config.card_policy().allows_soft_cards());
//! # Ok::<(), terminal_app::config::ConfigError>(())
//! ```
//!
//! - [`config`]: the versioned TOML configuration (`--config FILE` or `$TESSERA_CONFIG`) and
//!   the card policy it asks for.
//! - [`cards`]: `tessera card list` and `tessera card export-key`.
//! - `embedded` (with the `embedded` feature, on by default): the embedded default, a demo
//!   against an in-process HSM simulator running the real flows. Without the feature the
//!   simulator (and its store) is not in the build, and [`Error::EmbeddedNotBuilt`] says so.
//! - [`state`]: the terminal's state directory (XDG state dir or `--state-dir`): its identity
//!   key and the paired partitions, private and written atomically.
//! - [`pair`]: `tessera pair` with a one-time code, and pinned sessions with paired partitions.
//! - [`cli`]: the scriptable commands (`status`, `config show`, `keys list`, `bin list`,
//!   `log show`, the list of paired partitions), their logins and prompts, and the exit
//!   statuses.
//! - [`error`]: the one error type, with the cases a screen acts on typed ([`Error`]).
//! - [`log_verify`]: `tessera log verify` and `tessera log convert`, an exported log checked
//!   offline (and turned into syslog or CEF records).
//! - [`diagnostics`]: `tracing` to a size-capped log file in the state directory, and the
//!   panic hook that says where it is.
//! - [`tui`] and [`flows`]: the TUI (`tessera demo`), one file per flow on the terminal side.
//!
//! Nothing here prints or exits: each command returns what the binary shows.

pub mod cards;
pub mod cli;
pub mod config;
pub mod diagnostics;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod log_verify;
pub mod pair;
pub mod state;
pub mod tui;

pub use error::{CardName, Error, Throttle};

/// Whether this build holds the embedded default (the `embedded` feature).
pub const EMBEDDED: bool = cfg!(feature = "embedded");
