//! What the store keeps: one record per partition, one per key object, the SO registry.
//!
//! Records are postcard-encoded with a leading format version byte, so a store written by a
//! future version is refused clearly instead of misread.

use hsm_link::domain::{
    CardDescription, CardSetDescription, KeyObjectSummary, PartitionConfig, PartitionId,
    PartitionUsage, ServiceTier,
};
use hsm_link::keys::PublicKey;
use hsm_link::message::RecoveryPublic;
use serde::{Deserialize, Serialize};

/// Format version of every record.
pub const RECORD_FORMAT: u8 = 1;

/// What the partition does when its log is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogFullPolicy {
    /// Refuse every operation that would be logged, except an export, its confirmation and a
    /// quorum login (they use the reserve). The default: nothing is lost, and logged
    /// operations stop until an officer exports and confirms; the confirmation frees the
    /// confirmed entries at once, behind a signed checkpoint that stays as the log's anchor.
    Refuse,
    /// Keep entries confirmed as exported while there is room; when room is needed, prune them
    /// (behind a signed checkpoint, as above); if none are confirmed, refuse.
    PruneConfirmed,
}

/// The partition log's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// Sequence number of the next entry.
    pub next_seq: u64,
    /// Lowest sequence number still stored (entries below were pruned after a confirmed export).
    pub first_seq: u64,
    /// Hash of the last entry (the next entry's `prev`); the partition's genesis hash before
    /// the first.
    pub last_hash: [u8; 32],
    /// Entries since the last signed checkpoint.
    pub since_checkpoint: u64,
    /// Highest sequence number ever sent in an export.
    pub exported_up_to: Option<u64>,
    /// Highest sequence number the terminal confirmed (read back) after an export.
    pub confirmed_up_to: Option<u64>,
    /// Most entries kept.
    pub capacity: u64,
    /// Entries kept back for the export that frees space, its confirmation and a quorum login.
    pub reserve: u64,
    /// What happens when the log is full.
    pub full_policy: LogFullPolicy,
}

impl LogState {
    /// A fresh log of `capacity` entries whose first entry chains to `genesis` (the partition's
    /// [`audit_log::genesis_hash`]).
    pub fn new(capacity: u64, genesis: [u8; 32]) -> Self {
        LogState {
            next_seq: 1,
            first_seq: 1,
            last_hash: genesis,
            since_checkpoint: 0,
            exported_up_to: None,
            confirmed_up_to: None,
            capacity,
            reserve: 16,
            full_policy: LogFullPolicy::Refuse,
        }
    }

    /// Entries stored now.
    pub fn stored(&self) -> u64 {
        self.next_seq - self.first_seq
    }

    /// Entries stored but not confirmed as exported.
    pub fn unexported(&self) -> u64 {
        let confirmed = self.confirmed_up_to.unwrap_or(0);
        self.next_seq - self.first_seq.max(confirmed + 1)
    }
}

/// A card set as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSetRecord {
    /// The set.
    pub set: CardSetDescription,
    /// For a PSO set: the recovery quorum's public parts.
    pub recovery: Option<RecoveryPublic>,
}

/// The technical user's credentials (seed 002 §3.1a), as hashes: the secrets themselves are
/// shown once and never stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// SHA-256 of the outstanding setup password and when it expires.
    pub setup: Option<([u8; 32], u64)>,
    /// SHA-256 of the permanent secret, once the setup password was traded.
    pub permanent: Option<[u8; 32]>,
    /// Rises with every reset and every trade: connections opened under an older epoch end.
    pub epoch: u64,
}

/// Pairing state and pinned terminals of a partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingRecord {
    /// The outstanding code's pre-shared key, sealed under the master key, and failures so far.
    pub sealed_psk: Option<(Vec<u8>, u32)>,
    /// The first terminal ever paired (it may register the first PSO set).
    pub first_terminal: Option<PublicKey>,
    /// Every pinned terminal.
    pub terminals: Vec<PublicKey>,
}

/// When a pinned terminal paired and last opened a session (seconds since the Unix epoch);
/// `None` where it is not known (a terminal paired before the HSM kept this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSeen {
    /// When it paired.
    pub paired_unix: Option<u64>,
    /// When it last opened a session.
    pub last_seen_unix: Option<u64>,
}

/// Failed officer logins, for throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Times (Unix seconds) of failures within the current window.
    pub failures: Vec<u64>,
    /// Logins are refused until then.
    pub locked_until: Option<u64>,
}

/// Everything about one partition except its key objects and log lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The id.
    pub id: PartitionId,
    /// A human name.
    pub name: String,
    /// The service tier it was created with.
    pub tier: ServiceTier,
    /// The enforced configuration (with its revision, quota and object limit).
    pub config: PartitionConfig,
    /// The active PSO set.
    pub pso: Option<CardSetRecord>,
    /// The active auditor set.
    pub auditor: Option<CardSetRecord>,
    /// The application's credentials.
    pub credentials: Credentials,
    /// Pairing and pinned terminals.
    pub pairing: PairingRecord,
    /// The log's bookkeeping.
    pub log: LogState,
    /// The next key object id.
    pub next_key_id: u64,
    /// Space and objects used, kept in step with the key objects in the same transactions
    /// (the quota check reads it; [`crate::service::Hsm::check`] recomputes and compares).
    pub usage: PartitionUsage,
    /// Officer login throttling.
    pub throttle: Throttle,
}

/// A key object: its public summary and its sealed material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Attributes, state, size.
    pub summary: KeyObjectSummary,
    /// The key material, sealed under the master key and bound to partition and id.
    pub sealed: Vec<u8>,
}

/// The device SOs of this HSM (registered by its owner with `tessera-hsm so add`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoRegistry {
    /// Registered SO cards, each belonging to one named person.
    pub cards: Vec<CardDescription>,
    /// Cards needed for an SO session (at least 2, of at least two different people).
    pub threshold: u8,
}

/// Encodes a record with its format byte.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    out.extend(postcard::to_stdvec(record).expect("records always serialise"));
    out
}

/// Decodes a record, checking its format byte.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, body)) => {
            postcard::from_bytes(body).map_err(|_| RecordError::Corrupt)
        }
        Some((&other, _)) => Err(RecordError::Format(other)),
        None => Err(RecordError::Corrupt),
    }
}

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Written by another version of the store format.
    #[error("record format {0} is not supported by this version (it reads format 1)")]
    Format(u8),
    /// Does not decode.
    #[error("record is corrupt")]
    Corrupt,
}
