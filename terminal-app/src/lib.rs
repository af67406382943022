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
//! - [`embedded`]: the embedded default, a demo against an in-process HSM simulator.
//! - [`tui`] and [`flows`]: the TUI (`tessera demo`), one file per flow.
//!
//! Nothing here prints: each command returns what the binary shows.

pub mod cards;
pub mod config;
pub mod embedded;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod tui;
