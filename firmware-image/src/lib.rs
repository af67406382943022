//! Signed firmware images for the terminal device itself.
//!
//! This crate will build firmware images, collect m-of-n release signatures (release keys live
//! on the same kind of cards as officer keys, hence the arrow to `quorum`), verify an image
//! (threshold signatures, hardware id, rollback index) before a byte is installed, and install
//! to the inactive A/B slot with a confirmed first start and a rising rollback floor.
//!
//! It does not provide secure boot, dm-verity or a TPM-backed counter: those are out of scope
//! (see SECURITY.md).
//!
//! Status: the crate exists so that the workspace has its final shape; its content arrives with
//! the firmware issue.
