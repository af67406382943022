//! The administration side: one handler per link session, holding that session's login.
//!
//! Every request is checked against the role/permission table and the partition's device-SO
//! access switch ([`crate::access::admin_check`]); every refusal is logged like a success, except
//! beyond the ration of entries a partition takes for sessions without a login
//! ([`UNAUTHENTICATED_ENTRIES_PER_WINDOW`]: counted, and the next entry says how many) and a
//! login challenge refused while logins are throttled.
//!
//! One flow, one file, each an `impl AdminSession` block beside the pure checks it uses:
//!
//! - `session`: the session itself, the request dispatch (every request named), the role check
//!   and the one way a change is made and its refusal logged;
//! - `login`: challenge, quorum login, throttling; the four-eyes rule (a device-SO login needs
//!   two people) is one check in `verify_quorum`, so it stays with the login it guards;
//! - `config`: reading and changing the configuration, and reading usage;
//! - `bin`: listing keys and the bin, restoring and purging;
//! - `credentials`: resetting the application's credentials (one short method: the work is in
//!   `Hsm::reset_credentials`, but a reader looks for the flow by its name);
//! - `ceremony`: card sets, ceremonies and the registration that ends them;
//! - `drill`: a holder's share drill (public recovery values and the signed report);
//! - `log_query`: which lines a log query selects (pure, shared by reading and export);
//! - `log_read`: paged reading; `log_export`: the streamed export and its confirmation;
//! - `backup`: a backup sealed as it streams, and a restore's upload, dry run and commit.
//! - `migrate`: a restore of a backup made by another HSM (or of another partition): its
//!   upload begun with the source HSM's key and the data key re-wrapped to this HSM.
//! - `terminals`: the pinned terminals (list, revoke; the sessions of a revoked terminal end)
//!   and a new pairing code issued over the link.

mod backup;
mod bin;
mod ceremony;
mod config;
mod credentials;
mod drill;
mod log_export;
mod log_query;
mod log_read;
mod login;
mod migrate;
mod session;
mod terminals;
mod trust;

pub use credentials::SETUP_PASSWORD_LIFETIME_S;
pub use log_read::MAX_SCANNED_PER_PAGE;
pub use login::{
    CHALLENGE_LIFETIME_MS, THROTTLE_FAILURES, THROTTLE_FAILURES_PER_TERMINAL, THROTTLE_LOCKOUT_S,
    THROTTLE_WINDOW_S,
};
pub use session::{AdminLink, UNAUTHENTICATED_ENTRIES_PER_WINDOW};
