//! Tessera's audit log: who did what to a partition, in one canonical form.
//!
//! ```
//! use audit_log::{Actor, Role};
//!
//! let actor = Actor::new(Role::Pso, ["Alice Meier", "Bruno Rossi"]);
//! assert_eq!(actor.role, Role::Pso);
//! assert_eq!(actor.holders.len(), 2);
//! ```
//!
//! This crate defines the actor and role types that every log entry carries (and that the admin
//! link, `hsm-link`, transports). The partition-service issue adds the canonical entry encoding
//! (one compact JSON object per entry, fixed field order), the SHA-256 hash chain, HSM-signed
//! checkpoints and I/O-free verification; the log-audit issue adds export formats.
//!
//! It does no I/O: storing entries is the partition service's job, writing exports the
//! terminal's.

mod actor;

pub use actor::{Actor, Role};
