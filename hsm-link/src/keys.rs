//! Static link keys (X25519) and their fingerprints.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A link key's fingerprint is the workspace's one fingerprint type (audit-log's), shown to
/// people the same way as the audit key's.
pub use audit_log::{FINGERPRINT_SHOWN_LEN, Fingerprint};

/// An X25519 public key of a link end.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key's fingerprint: SHA-256 over a domain label and the key.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(b"tessera link key v1\0");
        h.update(self.0);
        Fingerprint(h.finalize().into())
    }

    /// The id of the HSM whose link key this is, as its log exports name it:
    /// [`HSM_ID_PREFIX`] and 16 hex digits of SHA-256 over a domain label and the key. A
    /// terminal computes it from the key it pinned, so the id can never disagree with the key.
    pub fn hsm_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(HSM_ID_DOMAIN);
        h.update(self.0);
        let digest = h.finalize();
        let mut id = String::with_capacity(HSM_ID_PREFIX.len() + 2 * HSM_ID_HASH_LEN);
        id.push_str(HSM_ID_PREFIX);
        for byte in &digest[..HSM_ID_HASH_LEN] {
            id.push_str(&format!("{byte:02x}"));
        }
        id
    }
}

/// What every HSM id starts with.
pub const HSM_ID_PREFIX: &str = "hsm-";
/// Domain label of the HSM id hash.
const HSM_ID_DOMAIN: &[u8] = b"tessera hsm id v1\0";
/// Bytes of the id hash that the id shows (64 bits, 16 hex digits).
const HSM_ID_HASH_LEN: usize = 8;

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// A static X25519 key pair of a link end (terminal or HSM). The private half is zeroized on
/// drop, is not `Clone`, and its `Debug` shows only the public fingerprint.
pub struct StaticKeypair {
    secret: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl StaticKeypair {
    /// A fresh key pair from the operating system's random number generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut())?;
        Ok(Self::from_secret(secret))
    }

    /// The key pair for a stored private key.
    pub fn from_secret(secret: Zeroizing<[u8; 32]>) -> Self {
        let scalar = x25519_dalek::StaticSecret::from(*secret);
        let public = PublicKey(x25519_dalek::PublicKey::from(&scalar).to_bytes());
        StaticKeypair { secret, public }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private half, for sealing it at rest or handing it to Noise.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl std::fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKeypair(public {})", self.public.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_display_is_grouped_and_debug_hides_secret() {
        let kp = StaticKeypair::from_secret(Zeroizing::new([7u8; 32]));
        let shown = kp.public().fingerprint().to_string();
        assert_eq!(shown.len(), 8 * 4 + 7);
        assert_eq!(shown.split(' ').count(), 8);
        let debug = format!("{kp:?}");
        assert!(debug.contains(&shown));
        assert!(!debug.contains("0707"));
    }

    #[test]
    fn distinct_keys_have_distinct_fingerprints() {
        let a = StaticKeypair::generate().unwrap();
        let b = StaticKeypair::generate().unwrap();
        assert_ne!(a.public(), b.public());
        assert_ne!(a.public().fingerprint(), b.public().fingerprint());
        // The same secret always gives the same public key.
        let again = StaticKeypair::from_secret(Zeroizing::new(*a.secret_bytes()));
        assert_eq!(again.public(), a.public());
    }
}
