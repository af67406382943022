//! The technical user's credentials (seed 002 §3.1a): a one-time setup password, traded on
//! first use for a permanent secret. Both are machine-generated from the operating system's
//! random generator (125 bits for the setup password, 160 for the permanent secret), so a plain SHA-256 of each is what the store keeps (no password stretching
//! is needed for secrets nobody chose); comparisons are constant-time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::CryptoError;

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Random symbols of a setup password: 25 × 5 = 125 bits, shown as five groups of five
/// (29 characters with dashes, the length Decanus uses).
const SETUP_SYMBOLS: usize = 25;
/// Random symbols of a permanent secret: 32 × 5 = 160 bits.
const PERMANENT_SYMBOLS: usize = 32;

fn random_text(symbols: usize, group: usize) -> Result<Zeroizing<String>, CryptoError> {
    let mut bytes = Zeroizing::new(vec![0u8; symbols]);
    getrandom::fill(&mut bytes).map_err(CryptoError::Rng)?;
    let mut out = Zeroizing::new(String::with_capacity(symbols + symbols / group));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % group == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32: taking the low five bits is uniform.
        out.push(char::from(ALPHABET[usize::from(b & 0x1f)]));
    }
    Ok(out)
}

/// A fresh setup password.
pub fn new_setup_password() -> Result<Zeroizing<String>, CryptoError> {
    random_text(SETUP_SYMBOLS, 5)
}

/// A fresh permanent secret.
pub fn new_permanent_secret() -> Result<Zeroizing<String>, CryptoError> {
    random_text(PERMANENT_SYMBOLS, 8)
}

/// The stored form of a credential.
pub fn hash(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera application credential v1\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Whether `secret` matches `stored`, in constant time.
pub fn matches(secret: &str, stored: &[u8; 32]) -> bool {
    hash(secret).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_passwords_have_the_documented_shape_and_differ() {
        let a = new_setup_password().unwrap();
        let b = new_setup_password().unwrap();
        assert_eq!(a.len(), 29);
        assert_eq!(a.split('-').count(), 5);
        assert_ne!(*a, *b);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert_eq!(new_permanent_secret().unwrap().len(), 32 + 3);
    }
}
