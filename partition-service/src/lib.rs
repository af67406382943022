//! A reference HSM in software: the peer every Tessera terminal feature talks to.
//!
//! It holds partitions, their enforced configuration (seed 002, sections 4.3 and 5.3), key
//! objects sealed under a master key, the invalidation bin, the technical user's credentials,
//! the audit log (written through `audit-log`) and a `redb` store, served over `hsm-link` in
//! process (the terminal's embedded default) or over TCP and a serial line (the `tessera-hsm`
//! binary).
//!
//! It is a **simulator with real cryptography, not a certified HSM**: key material lives in
//! ordinary process memory and in files sealed at rest under a device key file, with none of the
//! physical protection, tamper response or certification of a hardware security module.
//!
//! It does not draw anything on a screen, talk to smartcards, or write to removable drives:
//! those are the terminal's jobs.
//!
//! Only the types that face code outside this workspace are `#[non_exhaustive]`: the crate's
//! error ([`service::ServiceError`]) and what a business application's client sees
//! ([`app_link::AppError`], [`app_link::AppClientError`], [`app_link::WireError`]). Everything
//! else is matched exhaustively here, so a new case is named wherever it matters.

pub mod access;
pub mod admin;
pub mod app_link;
pub mod application;
pub mod backup;
pub mod credentials;
pub mod crypto;
pub mod model;
pub mod service;
pub mod store;
