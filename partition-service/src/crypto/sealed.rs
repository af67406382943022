//! Authenticated sealing with AES-256-GCM (NIST SP 800-38D) in a versioned envelope.
//!
//! ```text
//! offset  len  field
//!      0    4  magic "TSEL"
//!      4    1  format, 1
//!      5   12  nonce (random, 96 bits)
//!     17    n  ciphertext (n = plaintext length, at most MAX_SEALED_PLAINTEXT)
//!   17+n   16  GCM tag
//! ```
//!
//! The tag covers the magic and format byte as well as the caller's associated data, so a
//! changed header fails like a changed ciphertext. Nonces are random: NIST SP 800-38D §8.3
//! allows 2^32 messages under one key that way, far more than a simulated HSM seals.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Tag};
use zeroize::Zeroizing;

use super::CryptoError;

/// The envelope's first four bytes.
pub const SEALED_MAGIC: [u8; 4] = *b"TSEL";
/// The envelope format this build writes and reads.
pub const SEALED_FORMAT: u8 = 1;
/// Length of the random nonce.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the GCM tag.
pub(crate) const TAG_LEN: usize = 16;
/// Magic and format byte.
const HEADER_LEN: usize = SEALED_MAGIC.len() + 1;
/// Bytes an envelope adds to its plaintext: header, nonce and tag.
pub const SEALED_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Largest plaintext [`seal`] accepts (1 MiB): key records and the HSM's key file are far
/// smaller; bulk data (backups) goes through the streaming container instead.
pub const MAX_SEALED_PLAINTEXT: usize = 1 << 20;
/// Largest envelope [`open`] accepts.
pub const MAX_SEALED_LEN: usize = MAX_SEALED_PLAINTEXT + SEALED_OVERHEAD;

/// A 256-bit AES-GCM key. Zeroized on drop, not `Clone`, and its `Debug` shows nothing of it.
pub struct AeadKey(Zeroizing<[u8; 32]>);

impl AeadKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut())?;
        Ok(AeadKey(key))
    }

    /// The key for stored bytes.
    pub fn from_bytes(key: Zeroizing<[u8; 32]>) -> Self {
        AeadKey(key)
    }

    /// The key's bytes, for sealing it at rest.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(redacted)")
    }
}

/// Seals `plaintext` under `key`, authenticating `aad` with it. `aad` is not stored: whoever
/// opens the envelope must present the same bytes.
///
/// Refuses a plaintext over [`MAX_SEALED_PLAINTEXT`].
pub fn seal(key: &AeadKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_SEALED_PLAINTEXT {
        return Err(CryptoError::TooLarge {
            what: "plaintext to seal",
            len: plaintext.len(),
            max: MAX_SEALED_PLAINTEXT,
        });
    }
    let header = header();
    gcm_seal(
        key.secret_bytes(),
        &header,
        &envelope_aad(&header, aad),
        plaintext,
    )
}

/// Opens an envelope made by [`seal`] with the same key and `aad`.
///
/// Structural faults (too short, too long, not an envelope, unknown format) get their own
/// error; anything that fails the tag is [`CryptoError::AuthenticationFailed`].
pub fn open(key: &AeadKey, aad: &[u8], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if envelope.len() > MAX_SEALED_LEN {
        return Err(CryptoError::TooLarge {
            what: "sealed envelope",
            len: envelope.len(),
            max: MAX_SEALED_LEN,
        });
    }
    if envelope.len() < HEADER_LEN {
        return Err(CryptoError::Truncated {
            len: envelope.len(),
            min: SEALED_OVERHEAD,
        });
    }
    let (header, body) = envelope.split_at(HEADER_LEN);
    if header[..SEALED_MAGIC.len()] != SEALED_MAGIC {
        return Err(CryptoError::BadMagic);
    }
    let format = header[SEALED_MAGIC.len()];
    if format != SEALED_FORMAT {
        return Err(CryptoError::UnsupportedFormat {
            found: format,
            supported: SEALED_FORMAT,
        });
    }
    if envelope.len() < SEALED_OVERHEAD {
        return Err(CryptoError::Truncated {
            len: envelope.len(),
            min: SEALED_OVERHEAD,
        });
    }
    gcm_open(key.secret_bytes(), &envelope_aad(header, aad), body)
}

fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..SEALED_MAGIC.len()].copy_from_slice(&SEALED_MAGIC);
    header[SEALED_MAGIC.len()] = SEALED_FORMAT;
    header
}

/// The header (fixed length, so the concatenation is unambiguous) followed by the caller's
/// associated data.
fn envelope_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut all = Vec::with_capacity(header.len() + aad.len());
    all.extend_from_slice(header);
    all.extend_from_slice(aad);
    all
}

/// AES-256-GCM with a fresh random nonce: `prefix ‖ nonce ‖ ciphertext ‖ tag`. The caller
/// bounds `plaintext`.
pub(crate) fn gcm_seal(
    key: &[u8; 32],
    prefix: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    let cipher = Aes256Gcm::new(key.into());
    let body_start = prefix.len() + NONCE_LEN;
    // Room for everything up front: the plaintext is encrypted where it lies and never copied
    // by a reallocation.
    let mut out = Vec::with_capacity(body_start + plaintext.len() + TAG_LEN);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached((&nonce).into(), aad, out[body_start..].as_mut().into())
        // Only a plaintext or AAD beyond GCM's own limits (2^36 and 2^61 bytes) fails here.
        .map_err(|_| CryptoError::TooLarge {
            what: "AES-GCM input",
            len: plaintext.len(),
            max: MAX_SEALED_PLAINTEXT,
        })?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens `nonce ‖ ciphertext ‖ tag` (as [`gcm_seal`] wrote it after its prefix). The caller
/// bounds `body`.
pub(crate) fn gcm_open(
    key: &[u8; 32],
    aad: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::AuthenticationFailed);
    }
    let (nonce, rest) = body.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CryptoError::AuthenticationFailed)?;
    let tag = <&Tag>::try_from(tag).map_err(|_| CryptoError::AuthenticationFailed)?;
    let cipher = Aes256Gcm::new(key.into());
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, plaintext.as_mut_slice().into(), tag)
        .map_err(|_| CryptoError::AuthenticationFailed)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> AeadKey {
        AeadKey::from_bytes(Zeroizing::new([byte; 32]))
    }

    #[test]
    fn round_trip_at_the_boundaries() {
        let k = key(1);
        for len in [0, 1, 15, 16, 17, 4096, MAX_SEALED_PLAINTEXT] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&k, b"aad", &plaintext).unwrap();
            assert_eq!(sealed.len(), plaintext.len() + SEALED_OVERHEAD);
            assert_eq!(&sealed[..4], b"TSEL");
            assert_eq!(sealed[4], SEALED_FORMAT);
            assert_eq!(
                open(&k, b"aad", &sealed).unwrap().as_slice(),
                &plaintext[..]
            );
        }
    }

    #[test]
    fn nonces_are_fresh() {
        let k = key(1);
        let a = seal(&k, b"", b"same").unwrap();
        let b = seal(&k, b"", b"same").unwrap();
        assert_ne!(
            a[HEADER_LEN..HEADER_LEN + NONCE_LEN],
            b[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        );
        assert_ne!(a, b);
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let k = key(2);
        let sealed = seal(&k, b"ctx", b"a secret worth keeping").unwrap();
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                let err = open(&k, b"ctx", &bad).unwrap_err();
                // Header bits fail the structural checks; everything else fails the tag.
                match i {
                    0..4 => assert!(matches!(err, CryptoError::BadMagic), "byte {i}: {err}"),
                    4 => assert!(
                        matches!(err, CryptoError::UnsupportedFormat { found, supported: 1 }
                            if found == 1 ^ (1 << bit)),
                        "byte {i}: {err}"
                    ),
                    _ => assert!(
                        matches!(err, CryptoError::AuthenticationFailed),
                        "byte {i}: {err}"
                    ),
                }
            }
        }
    }

    #[test]
    fn wrong_aad_or_key_is_rejected_opaquely() {
        let sealed = seal(&key(3), b"partition a", b"data").unwrap();
        for (k, aad) in [
            (key(3), &b"partition b"[..]),
            (key(3), b""),
            (key(3), b"partition a\0"),
            (key(4), b"partition a"),
        ] {
            let err = open(&k, aad, &sealed).unwrap_err();
            assert!(matches!(err, CryptoError::AuthenticationFailed));
            assert_eq!(err.to_string(), "authentication failed");
        }
    }

    #[test]
    fn truncation_is_rejected() {
        let k = key(5);
        let sealed = seal(&k, b"", b"twelve bytes").unwrap();
        for len in 0..sealed.len() {
            let err = open(&k, b"", &sealed[..len]).unwrap_err();
            if len < SEALED_OVERHEAD {
                assert!(
                    matches!(err, CryptoError::Truncated { len: l, min: SEALED_OVERHEAD }
                        if l == len),
                    "length {len}: {err}"
                );
            } else {
                assert!(
                    matches!(err, CryptoError::AuthenticationFailed),
                    "length {len}"
                );
            }
        }
        // An appended byte shifts the tag.
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(
            open(&k, b"", &longer),
            Err(CryptoError::AuthenticationFailed)
        ));
    }

    #[test]
    fn oversize_is_refused_before_work() {
        let k = key(6);
        let too_big = vec![0u8; MAX_SEALED_PLAINTEXT + 1];
        assert!(matches!(
            seal(&k, b"", &too_big),
            Err(CryptoError::TooLarge { len, max: MAX_SEALED_PLAINTEXT, .. })
                if len == MAX_SEALED_PLAINTEXT + 1
        ));
        let mut envelope = vec![0u8; MAX_SEALED_LEN + 1];
        envelope[..4].copy_from_slice(b"TSEL");
        envelope[4] = SEALED_FORMAT;
        assert!(matches!(
            open(&k, b"", &envelope),
            Err(CryptoError::TooLarge { len, max: MAX_SEALED_LEN, .. }) if len == MAX_SEALED_LEN + 1
        ));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = key(0xa7);
        let shown = format!("{k:?}");
        assert_eq!(shown, "AeadKey(redacted)");
        crate::crypto::tests::assert_shows_no_secret(&shown, k.secret_bytes());
    }
}
