//! HSM-signed checkpoints: the audit key's Ed25519 signature (RFC 8032) over the hash of the
//! last entry they cover, and when a writer owes one.
//!
//! The signed message is [`CHECKPOINT_MESSAGE_LEN`] (76) bytes:
//!
//! ```text
//! "tessera audit checkpoint v1\0"   28 bytes, CHECKPOINT_DOMAIN
//! seq                               8 bytes, big-endian: the last entry covered (0: none yet)
//! hash                              32 bytes: that entry's hash (Hash::ZERO for seq 0)
//! time                              8 bytes, big-endian: milliseconds since the Unix epoch
//! ```
//!
//! Because every entry's hash covers the hash before it, a checkpoint vouches for the whole
//! chain up to `seq`. Its line (see [`canonical`](crate::canonical)) is
//!
//! ```text
//! {"checkpoint":{"seq":2500,"hash":"<64 hex>","time":1732377600000,"sig":"<128 hex>"}}
//! ```
//!
//! and stands in the log right after the entry it names. Verification uses
//! `verify_strict` (no small-order keys or `R`, no non-canonical `S`) with the pinned key.

use ed25519_dalek::Signature;

use crate::error::{Fault, LogError};
use crate::hash::Hash;
use crate::keys::AuditKey;

/// Domain label that opens every signed checkpoint message.
pub const CHECKPOINT_DOMAIN: &[u8; 28] = b"tessera audit checkpoint v1\0";
/// Length of the signed checkpoint message.
pub const CHECKPOINT_MESSAGE_LEN: usize = CHECKPOINT_DOMAIN.len() + 8 + 32 + 8;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// The longest run of entries a writer leaves without a checkpoint, by default.
pub const DEFAULT_MAX_UNSIGNED_ENTRIES: u64 = 1_000;

/// A signed statement "the log's entry `seq` has hash `hash`", made at `time_unix_ms`.
///
/// A value of this type is not necessarily valid: [`Checkpoint::verify`] says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last entry covered (0 for an empty log).
    pub seq: u64,
    /// That entry's hash ([`Hash::ZERO`] for an empty log).
    pub hash: Hash,
    /// When it was signed, in milliseconds since the Unix epoch, by the HSM's clock.
    pub time_unix_ms: u64,
    /// Ed25519 signature over [`Checkpoint::message`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl Checkpoint {
    /// The bytes the signature covers (see [the format](crate#the-format)).
    pub fn message(&self) -> [u8; CHECKPOINT_MESSAGE_LEN] {
        let mut m = [0u8; CHECKPOINT_MESSAGE_LEN];
        let (domain, rest) = m.split_at_mut(CHECKPOINT_DOMAIN.len());
        domain.copy_from_slice(CHECKPOINT_DOMAIN);
        let (seq, rest) = rest.split_at_mut(8);
        seq.copy_from_slice(&self.seq.to_be_bytes());
        let (hash, time) = rest.split_at_mut(32);
        hash.copy_from_slice(&self.hash.0);
        time.copy_from_slice(&self.time_unix_ms.to_be_bytes());
        m
    }

    /// Checks the signature with `key`, the audit key the caller has pinned.
    pub fn verify(&self, key: &AuditKey) -> Result<(), LogError> {
        let signature = Signature::from_bytes(&self.signature);
        key.0
            .verify_strict(&self.message(), &signature)
            .map_err(|_| LogError::Rejected(Fault::BadCheckpoint { seq: self.seq }))
    }
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("seq", &self.seq)
            .field("hash", &self.hash)
            .field("time_unix_ms", &self.time_unix_ms)
            .finish_non_exhaustive()
    }
}

/// When the writer owes a checkpoint: after every administrative event, and after at most
/// `max_unsigned_entries` entries of any kind. (A read for export always ends with one, due or
/// not; that is the exporter's rule, not this policy's.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    max_unsigned_entries: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            max_unsigned_entries: DEFAULT_MAX_UNSIGNED_ENTRIES,
        }
    }
}

impl CheckpointPolicy {
    /// A policy that signs at least every `max_unsigned_entries` entries (at least 1).
    pub fn every(max_unsigned_entries: u64) -> CheckpointPolicy {
        CheckpointPolicy {
            max_unsigned_entries: max_unsigned_entries.max(1),
        }
    }

    /// The longest run of entries left without a checkpoint.
    pub fn max_unsigned_entries(&self) -> u64 {
        self.max_unsigned_entries
    }

    /// Whether a checkpoint is due now, with `entries_since_last` entries appended since the
    /// last one (see [`Chain::entries_since_checkpoint`](crate::Chain::entries_since_checkpoint))
    /// and `administrative` saying whether the entry just appended records an administrative
    /// event (anything a PSO, auditor, SO or the HSM owner did, refused or not). Nothing is due
    /// when nothing was appended.
    pub fn due(&self, entries_since_last: u64, administrative: bool) -> bool {
        entries_since_last > 0
            && (administrative || entries_since_last >= self.max_unsigned_entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditSigner;

    #[test]
    fn message_layout() {
        let cp = Checkpoint {
            seq: 0x0102_0304_0506_0708,
            hash: Hash([0xaa; 32]),
            time_unix_ms: 0x1112_1314_1516_1718,
            signature: [0; 64],
        };
        let m = cp.message();
        assert_eq!(m.len(), 76);
        assert_eq!(&m[..28], b"tessera audit checkpoint v1\0");
        assert_eq!(&m[28..36], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&m[36..68], &[0xaa; 32]);
        assert_eq!(&m[68..], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
    }

    #[test]
    fn signed_checkpoints_verify_and_round_trip() {
        let signer = AuditSigner::from_secret_bytes(&[3; 32]);
        let cp = signer.sign_checkpoint(42, Hash([7; 32]), 1_732_377_600_000);
        assert_eq!(cp.verify(&signer.public()), Ok(()));
        let line = cp.to_canonical();
        assert!(line.starts_with(b"{\"checkpoint\":{\"seq\":42,\"hash\":\"0707"));
        assert!(line.ends_with(b"\"}}"));
        assert_eq!(Checkpoint::from_canonical(&line), Ok(cp));

        let other = AuditSigner::from_secret_bytes(&[4; 32]).public();
        assert_eq!(
            cp.verify(&other),
            Err(LogError::Rejected(Fault::BadCheckpoint { seq: 42 }))
        );
        // Every signed field counts.
        for tampered in [
            Checkpoint { seq: 43, ..cp },
            Checkpoint {
                hash: Hash([8; 32]),
                ..cp
            },
            Checkpoint {
                time_unix_ms: cp.time_unix_ms + 1,
                ..cp
            },
        ] {
            assert!(tampered.verify(&signer.public()).is_err());
        }
    }

    #[test]
    fn policy() {
        let p = CheckpointPolicy::default();
        assert!(!p.due(0, false));
        assert!(!p.due(0, true));
        assert!(p.due(1, true));
        assert!(!p.due(999, false));
        assert!(p.due(1_000, false));
        assert!(p.due(1_001, false));
        assert!(CheckpointPolicy::every(0).due(1, false));
        assert_eq!(CheckpointPolicy::every(10).max_unsigned_entries(), 10);
    }
}
