//! Removable drives and the encrypted partition backup container.
//!
//! This crate will find and identify removable drives (sysfs, an optional allow-list), read and
//! write FAT file systems in user space, define the backup container format (an I/O-free core:
//! magic and version first, AES-256-GCM STREAM chunks, the data key wrapped for the HSM's backup
//! key and for the quorum backup key, a signed header) and write files atomically with a
//! read-back check.
//!
//! It does not decide what goes into a backup (the HSM seals the partition) and holds no key of
//! its own.
//!
//! Status: the crate exists so that the workspace has its final shape; its content arrives with
//! the backup issue.
