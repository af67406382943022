//! The scriptable commands behind `tessera`: each returns what to show, as text or as JSON
//! (`--json`), and never decides the process's exit (see [`exit`]).
//!
//! - [`list`]: the paired partitions (`tessera` without a TUI, `tessera list`).
//! - [`status`]: a pinned session's state and the partition's card set, without a login.
//! - [`login`]: an officer login from the command line: cards named in arguments, each PIN or
//!   passphrase asked on the terminal ([`prompt`]), never taken from arguments or the
//!   environment.
//! - [`reads`]: `config show`, `keys list`, `bin list`, `log show`, after a login.
//! - [`backup`]: `backup create` (one or two directories, each read back and verified),
//!   `backup list`, `backup verify` (offline) and `backup restore` (dry run, diff, commit).
//! - [`backup_drives`]: the drive allow-list applied to every drive a backup command opens,
//!   and `backup drives` (the removable drives, usable or refused with why).
//! - [`backup_migrate`]: `backup restore --migrate`: a backup of another HSM restored here,
//!   its data key recovered with the source PSO set's cards and re-wrapped to this HSM.
//! - [`terminals`]: `terminals list`, `terminals revoke`, `pairing-code`, after a login.
//! - [`log_export`]: `log export`, written to a directory, read back and verified, then
//!   confirmed.
//! - [`firmware`]: `firmware status|verify|install|confirm`, the terminal device's own
//!   firmware (no login; its own exit statuses).

pub mod backup;
pub mod backup_drives;
pub mod backup_migrate;
pub mod exit;
pub mod firmware;
pub mod list;
pub mod log_export;
pub mod login;
pub mod prompt;
pub mod reads;
pub mod status;
pub mod terminals;
#[cfg(all(test, feature = "embedded"))]
mod testing;

/// A result as text for people or as a JSON value for scripts.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    /// For people: lines, each ending with a line break.
    pub text: String,
    /// For scripts.
    pub json: serde_json::Value,
}

impl Shown {
    /// The JSON form (pretty) or the text form, ending with a line break.
    pub fn render(&self, json: bool) -> String {
        if json {
            let mut out = serde_json::to_string_pretty(&self.json).expect("JSON values serialise");
            out.push('\n');
            out
        } else {
            self.text.clone()
        }
    }
}

/// Replaces control characters (a hostile HSM's or card's text must not drive the terminal).
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
