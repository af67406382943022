//! Officer cards and the m-of-n quorum.
//!
//! This crate will reach OpenPGP cards over PC/SC (and passphrase-sealed soft cards for the
//! demo), collect m card signatures over a challenge bound to the link's handshake hash for a
//! login, and keep the partition's recovery secret as Feldman-verifiable Shamir shares
//! (`vsss-rs` over P-256), each sealed to one card. Ceremonies (enrol, re-share, revoke, drill)
//! are UI-free state machines that speak `hsm-link` requests.
//!
//! It does not decide whether a PIN is right (each card checks its own, with its own retry
//! counter), never stores a share or the combined secret on disk, and draws nothing on a screen.
//!
//! Status: the crate exists so that the workspace has its final shape; its content arrives with
//! the quorum issue.
