//! What a partition backup holds, and how the HSM seals, checks and restores it. The file
//! around it (header, STREAM chunks, signed trailer) is `usb-backup`'s container; this module
//! decides the plaintext inside it and does the HSM's part:
//!
//! - **Sealing** ([`PlaintextStream`], [`Hsm::backup_recipients`]): from one store snapshot, kept
//!   while the terminal takes the stream and read a page of keys at a time (so memory stays
//!   flat whatever the partition's size), the partition's identity and configuration, then
//!   every key object (active and in the bin, each with its attributes and state) with its
//!   material unsealed from the master key. Not
//!   the log, the credentials, the card sets, the pairing or pinned terminals. The data key is
//!   wrapped to this HSM's X25519 backup key and, with HPKE X-Wing, to the quorum backup public
//!   key registered with the active PSO set; the trailer is signed with the HSM's Ed25519
//!   audit key (under the container's own signature domain, so no log checkpoint and no backup
//!   trailer can stand for each other), which terminals already pin.
//! - **Staging** ([`StagedRestore`]): a restore's upload is authenticated and decrypted chunk
//!   by chunk as the chunks arrive, each chunk's records decoded, bounded and re-sealed under
//!   the master key into a staging table of the store (never seen by the application or a key
//!   listing), in bounded buffers: memory holds about two chunks whatever the backup's size.
//!   The dry run then only completes the check (trailer, signature, chain, counts, quota) and
//!   computes the diff from the staging table against the partition's keys.
//! - **Restoring** ([`StagedRestore::diff`], [`StagedRestore::apply`]): one transaction that
//!   moves the staged keys in place of the partition's, applies the configuration and appends
//!   the restore's log entry, so a crash leaves exactly the old or exactly the new. The log is
//!   never restored or truncated. Staging is dropped on a new upload, at session end, after
//!   the commit and when the store opens.
//!
//! # Plaintext format, version 1
//!
//! [`PAYLOAD_MAGIC`] `TSPARTBK`, a 2-byte little-endian version ([`PAYLOAD_VERSION`]), then
//! records, each a 4-byte little-endian length (at most [`MAX_RECORD_LEN`]) and a postcard
//! encoded [`Item`]: first one `Partition`, then one `Key` per key object in id order, then
//! `End` with the key count. Anything after `End` is refused.

use hsm_link::domain::{KeyObjectSummary, PartitionConfig, PartitionId, ServiceTier};
use hsm_link::message::BackupProblem;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto;
use crate::service::ServiceError;

mod restore;
mod seal;
mod staging;
#[cfg(test)]
mod tests;

pub use seal::{PLAINTEXT_PAGE_KEYS, PlaintextStream};
pub use staging::{StagedRestore, StagedTotals};

/// The plaintext's first bytes.
pub const PAYLOAD_MAGIC: [u8; 8] = *b"TSPARTBK";
/// The plaintext format this build writes and reads.
pub const PAYLOAD_VERSION: u16 = 1;
/// Longest record (a key's summary and material are far shorter; the configuration with a
/// full IP allow-list is the longest).
pub const MAX_RECORD_LEN: usize = 64 * 1024;
/// Bytes a key object may take in the plaintext beyond its quota size: its record's length
/// prefix, summary and label. Bounds a backup's plaintext from the quota before any upload.
pub const RECORD_OVERHEAD: u64 = 512;

/// One record of the plaintext.
#[derive(Serialize, Deserialize)]
pub enum Item<'a> {
    /// The partition: who it is and its configuration.
    Partition(PartitionItem),
    /// A key object, active or in the bin, with its plain material.
    Key {
        /// Attributes, state, size.
        summary: KeyObjectSummary,
        /// The key material, in plain (inside the encrypted container only).
        material: &'a [u8],
    },
    /// The end, with the key count.
    End {
        /// Key records before it.
        keys: u64,
    },
}

/// The partition as a backup records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionItem {
    /// The id.
    pub id: PartitionId,
    /// Its name.
    pub name: String,
    /// Its service tier.
    pub tier: ServiceTier,
    /// Its configuration.
    pub config: PartitionConfig,
    /// The next key id then.
    pub next_key_id: u64,
}

/// A restore that is a migration: the backup made by another HSM (or of another partition),
/// its data key re-wrapped to this HSM's backup key by a quorum recovery on the terminal.
#[derive(Clone)]
pub struct Migration {
    /// The source HSM's Ed25519 key the trailer must verify under (the PSO supplied it).
    pub source_key: [u8; 32],
    /// The data key wrapped to this HSM (`usb_backup::DataKey::wrap_for_migration`).
    pub wrapped_key: [u8; usb_backup::container::MIGRATION_WRAPPED_KEY_LEN],
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("source_key", &hex::encode(&self.source_key[..8]))
            .finish_non_exhaustive()
    }
}

/// The most plaintext bytes a backup of a partition with this configuration can hold: the
/// quota, each object's record overhead, and the partition record.
pub fn plaintext_bound(config: &PartitionConfig) -> u64 {
    let objects = config
        .quota
        .object_limit
        .map_or(config.quota.size_bytes / 32 + 1, u64::from);
    config
        .quota
        .size_bytes
        .saturating_add(objects.saturating_mul(RECORD_OVERHEAD))
        .saturating_add(MAX_RECORD_LEN as u64 + 64)
}

pub(crate) fn encode(item: &Item<'_>) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let encoded = Zeroizing::new(postcard::to_stdvec(item).map_err(|_| internal())?);
    if encoded.len() > MAX_RECORD_LEN {
        return Err(internal());
    }
    Ok(encoded)
}

pub(crate) fn push_record(
    out: &mut Zeroizing<Vec<u8>>,
    item: &Item<'_>,
) -> Result<(), ServiceError> {
    let encoded = encode(item)?;
    out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    out.extend_from_slice(&encoded);
    Ok(())
}

pub(crate) fn internal() -> ServiceError {
    ServiceError::Crypto(crypto::CryptoError::CorruptRecord {
        what: "backup record",
    })
}

pub(crate) fn refused(problem: BackupProblem) -> ServiceError {
    ServiceError::Admin(hsm_link::message::AdminError::Backup(problem))
}

/// A container rejection as the link's typed problem (the detail stays in the HSM).
pub(crate) fn rejected(e: usb_backup::BackupError) -> ServiceError {
    use usb_backup::Rejection;
    let problem = match e.rejection() {
        Some(Rejection::WrongHsm { .. }) => BackupProblem::OtherHsm,
        Some(
            Rejection::BadMagic
            | Rejection::UnsupportedVersion { .. }
            | Rejection::HeaderField { .. },
        ) => BackupProblem::Malformed,
        _ => BackupProblem::NotAuthentic,
    };
    refused(problem)
}
