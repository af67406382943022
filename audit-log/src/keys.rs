//! The HSM's audit key (Ed25519): the signing half in the HSM, the public half pinned by
//! whoever verifies a log.

use ed25519_dalek::rand_core::CryptoRng;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::error::LogError;
use crate::fingerprint::Fingerprint;
use crate::hash::Hash;

/// Domain label of an audit key's fingerprint.
pub const FINGERPRINT_DOMAIN: &[u8] = b"tessera audit key v1\0";

/// The public audit key that checkpoints are verified with. Pin it: a log is checked against
/// the key the verifier already trusts, never against one found in the log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuditKey(pub(crate) VerifyingKey);

impl AuditKey {
    /// The key from its 32 bytes; refuses bytes that are not a point, and small-order (weak)
    /// keys, under which any message verifies.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<AuditKey, LogError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| LogError::InvalidAuditKey)?;
        if key.is_weak() {
            return Err(LogError::InvalidAuditKey);
        }
        Ok(AuditKey(key))
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// SHA-256 over [`FINGERPRINT_DOMAIN`] and the key's bytes.
    pub fn fingerprint(&self) -> AuditKeyFingerprint {
        let mut h = Sha256::new();
        h.update(FINGERPRINT_DOMAIN);
        h.update(self.0.as_bytes());
        Fingerprint(h.finalize().into())
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.fingerprint())
    }
}

/// The fingerprint of an audit key: the workspace's one [`Fingerprint`] type.
pub type AuditKeyFingerprint = Fingerprint;

/// The HSM's audit signing key. Not `Clone`; `Debug` shows only the public key's fingerprint;
/// the secret is zeroized on drop (by `ed25519-dalek`).
pub struct AuditSigner(SigningKey);

impl AuditSigner {
    /// A fresh key from `rng` (in practice the operating system's generator).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> AuditSigner {
        AuditSigner(SigningKey::generate(rng))
    }

    /// The key for a stored 32-byte Ed25519 secret. The caller zeroizes its own copy.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> AuditSigner {
        AuditSigner(SigningKey::from_bytes(secret))
    }

    /// The public half, for verifiers to pin.
    pub fn public(&self) -> AuditKey {
        AuditKey(self.0.verifying_key())
    }

    /// Signs a checkpoint over entry `seq` with hash `hash` (see
    /// [`Checkpoint::message`] for the signed bytes).
    pub fn sign_checkpoint(&self, seq: u64, hash: Hash, time_unix_ms: u64) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            seq,
            hash,
            time_unix_ms,
            signature: [0; 64],
        };
        checkpoint.signature = self.0.sign(&checkpoint.message()).to_bytes();
        checkpoint
    }

    /// Signs a message of this crate's own (an export's closing checkpoint, say); the caller
    /// opens it with a domain label of its own.
    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSigner({})", self.public().fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let secret = [0x5a; 32];
        let signer = AuditSigner::from_secret_bytes(&secret);
        let shown = format!("{signer:?}");
        let fp = signer.public().fingerprint().to_string();
        assert_eq!(shown, format!("AuditSigner({fp})"));
        assert!(!shown.contains("5a5a"));
        assert_eq!(fp.len(), 8 * 4 + 7);
        assert_eq!(format!("{:?}", signer.public()), format!("AuditKey({fp})"));
    }

    #[test]
    fn keys_round_trip_and_weak_keys_are_refused() {
        let signer = AuditSigner::from_secret_bytes(&[1; 32]);
        let public = signer.public();
        assert_eq!(AuditKey::from_bytes(&public.to_bytes()), Ok(public));
        // The identity point (small order): every signature would verify under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            AuditKey::from_bytes(&identity),
            Err(LogError::InvalidAuditKey)
        );
        // Not a point on the curve (y = 2 has no x).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            AuditKey::from_bytes(&not_a_point),
            Err(LogError::InvalidAuditKey)
        );
    }

    #[test]
    fn fingerprints_differ_per_key() {
        let a = AuditSigner::from_secret_bytes(&[1; 32])
            .public()
            .fingerprint();
        let b = AuditSigner::from_secret_bytes(&[2; 32])
            .public()
            .fingerprint();
        assert_ne!(a, b);
    }
}
