//! A reference HSM in software: the peer every Tessera terminal feature talks to.
//!
//! This crate will hold partitions, their enforced configuration (seed 002, sections 4.3 and
//! 5.3), key objects sealed under a master key, the invalidation bin, the technical user's
//! credentials, the audit log (written through `audit-log`) and a `redb` store, served over
//! `hsm-link` in process (the terminal's embedded default) or over TCP and a serial line
//! (the `tessera-hsm` binary).
//!
//! It is a **simulator with real cryptography, not a certified HSM**: key material lives in
//! ordinary process memory and in a file sealed at rest, with none of the physical protection,
//! tamper response or certification of a hardware security module.
//!
//! It does not draw anything on a screen, talk to smartcards, or write to removable drives:
//! those are the terminal's jobs.
//!
//! Status: the crate exists so that the workspace has its final shape; its content arrives with
//! the partition-service issue. Until then the embedded default serves the link with
//! `hsm_link::server` and an in-memory trust store.
