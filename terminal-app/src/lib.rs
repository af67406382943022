//! The Tessera terminal's own logic, behind the thin `tessera` binary: the terminal
//! configuration, the scriptable card commands, and the embedded demo.
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
//! - [`error`]: the one error type, with the cases a screen acts on typed ([`Error`]).
//!
//! Nothing here prints or exits: each command returns what the binary shows.

pub mod cards;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;

pub use error::{CardName, Error, Throttle};

/// Whether this build holds the embedded default (the `embedded` feature).
pub const EMBEDDED: bool = cfg!(feature = "embedded");
