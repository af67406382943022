//! The share envelope: one share sealed to one card's X25519 decryption key.
//!
//! An ECIES-style construction from standard parts: ephemeral-static X25519 (RFC 7748), HKDF-SHA256
//! (RFC 5869) and AES-256-GCM (NIST SP 800-38D).
//!
//! ```text
//! offset  length  content
//!      0       4  magic "TSSH"
//!      4       1  version, 1
//!      5      32  ephemeral X25519 public key E
//!     37      12  AES-256-GCM nonce (random)
//!     49      49  ciphertext of the 33-byte share (index, value) and the 16-byte tag
//! ```
//!
//! Version 1 envelopes are exactly [`ENVELOPE_LEN_V1`] = 98 bytes; a parser refuses more than
//! [`MAX_ENVELOPE_LEN`] = 512 bytes before it reads anything.
//!
//! - key = HKDF-SHA256(ikm = X25519(e, C), salt = E ‖ C, info = [`ENVELOPE_KDF_INFO`]), where
//!   C is the card's decryption public key;
//! - associated data = `"TSSH"` ‖ version ‖ the canonical encoding of the [`ShareContext`]:
//!   partition id length (1 byte) ‖ partition id ‖ set number (u32 big-endian) ‖ share index
//!   (1 byte) ‖ card serial length (1 byte) ‖ card serial.
//!
//! So an envelope opens only with the right card, for the partition, card set, index and serial
//! it was sealed for; anything else, and any tampering, gives one opaque error
//! ([`QuorumError::EnvelopeOpen`]). Structural faults (length, magic, version) are named
//! ([`EnvelopeError`]).
//!
//! On a smartcard the ECDH with the card's private key happens on the card (OpenPGP
//! PSO:DECIPHER), so [`open_share`] takes it as a closure; [`open_share_with_x25519`] does it in
//! memory for a key held by the terminal (soft cards, tests).

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use hsm_link::domain::PartitionId;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::card::check_serial;
use crate::error::{EnvelopeError, QuorumError};
use crate::secret::{MAX_CARDS, SHARE_LEN, Share};

/// The envelope's first four bytes.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"TSSH";

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION_V1: u8 = 1;

/// Length of the ephemeral X25519 public key.
pub const EPHEMERAL_PUBLIC_LEN: usize = 32;

/// Length of the AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;

/// Length of the AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

/// Length of everything before the ciphertext: magic, version, ephemeral key, nonce.
pub const ENVELOPE_HEADER_LEN: usize = 4 + 1 + EPHEMERAL_PUBLIC_LEN + NONCE_LEN;

/// Length of a version 1 envelope.
pub const ENVELOPE_LEN_V1: usize = ENVELOPE_HEADER_LEN + SHARE_LEN + TAG_LEN;

/// The most bytes any envelope may have; longer input is refused before it is read.
pub const MAX_ENVELOPE_LEN: usize = 512;

/// HKDF `info` for the envelope key.
pub const ENVELOPE_KDF_INFO: &[u8] = b"tessera share envelope v1";

/// What a share is sealed for. All of it is bound into the envelope as associated data: an
/// envelope moved to another partition, card set, index or card does not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareContext {
    /// The partition whose recovery secret this is a share of.
    pub partition: PartitionId,
    /// The card set's number (it rises with every re-share, so an older card is stale).
    pub set_number: u32,
    /// The share's index, 1 to n.
    pub share_index: u8,
    /// The serial of the card the share is sealed to.
    pub card_serial: String,
}

impl ShareContext {
    /// The canonical encoding bound as associated data (see the module documentation); checks
    /// the index and the serial.
    pub fn associated_data(&self) -> Result<Vec<u8>, QuorumError> {
        if self.share_index == 0 || usize::from(self.share_index) > MAX_CARDS {
            return Err(QuorumError::ShareContext {
                reason: "the share index is outside 1..=16",
            });
        }
        check_serial(&self.card_serial)?;
        let partition = self.partition.as_str().as_bytes();
        let serial = self.card_serial.as_bytes();
        let mut out = Vec::with_capacity(5 + 1 + partition.len() + 4 + 1 + 1 + serial.len());
        out.extend_from_slice(&ENVELOPE_MAGIC);
        out.push(ENVELOPE_VERSION_V1);
        // Partition ids are at most 64 bytes and serials at most 64: both fit a length byte.
        out.push(partition.len() as u8);
        out.extend_from_slice(partition);
        out.extend_from_slice(&self.set_number.to_be_bytes());
        out.push(self.share_index);
        out.push(serial.len() as u8);
        out.extend_from_slice(serial);
        Ok(out)
    }
}

/// A structurally valid envelope, parsed but not opened. Borrows the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader<'a> {
    version: u8,
    ephemeral_public: [u8; EPHEMERAL_PUBLIC_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

impl<'a> EnvelopeHeader<'a> {
    /// Checks the length (at most [`MAX_ENVELOPE_LEN`], before anything else), the magic, the
    /// version and the body length, and splits the envelope into its parts.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(EnvelopeError::Oversize {
                len: bytes.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        let Some((magic, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(EnvelopeError::TooShort {
                len: bytes.len(),
                min: ENVELOPE_LEN_V1,
            });
        };
        if *magic != ENVELOPE_MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        let Some((&version, rest)) = rest.split_first() else {
            return Err(EnvelopeError::TooShort {
                len: bytes.len(),
                min: ENVELOPE_LEN_V1,
            });
        };
        if version != ENVELOPE_VERSION_V1 {
            return Err(EnvelopeError::UnknownVersion(version));
        }
        if bytes.len() < ENVELOPE_LEN_V1 {
            return Err(EnvelopeError::TooShort {
                len: bytes.len(),
                min: ENVELOPE_LEN_V1,
            });
        }
        let (ephemeral_public, rest) =
            rest.split_first_chunk::<EPHEMERAL_PUBLIC_LEN>()
                .ok_or(EnvelopeError::TooShort {
                    len: bytes.len(),
                    min: ENVELOPE_LEN_V1,
                })?;
        let (nonce, ciphertext) =
            rest.split_first_chunk::<NONCE_LEN>()
                .ok_or(EnvelopeError::TooShort {
                    len: bytes.len(),
                    min: ENVELOPE_LEN_V1,
                })?;
        if ciphertext.len() != SHARE_LEN + TAG_LEN {
            return Err(EnvelopeError::BodyLength {
                len: ciphertext.len(),
                expected: SHARE_LEN + TAG_LEN,
            });
        }
        Ok(EnvelopeHeader {
            version,
            ephemeral_public: *ephemeral_public,
            nonce: *nonce,
            ciphertext,
        })
    }

    /// The envelope's version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The ephemeral X25519 public key: what the card's ECDH takes.
    pub fn ephemeral_public(&self) -> &[u8; EPHEMERAL_PUBLIC_LEN] {
        &self.ephemeral_public
    }
}

/// Seals `share` to the card whose X25519 decryption public key is `card_public`, bound to
/// `ctx`. `ctx.share_index` must be the share's index. The result is [`ENVELOPE_LEN_V1`] bytes.
pub fn seal_share(
    card_public: &[u8; 32],
    ctx: &ShareContext,
    share: &Share,
) -> Result<Vec<u8>, QuorumError> {
    if ctx.share_index != share.index() {
        return Err(QuorumError::ShareContext {
            reason: "the context's share index is not the share's",
        });
    }
    let aad = ctx.associated_data()?;

    let mut ephemeral_secret = Zeroizing::new([0u8; 32]);
    getrandom::fill(ephemeral_secret.as_mut())?;
    let ephemeral_secret = StaticSecret::from(*ephemeral_secret);
    let ephemeral_public = PublicKey::from(&ephemeral_secret).to_bytes();
    let shared = ephemeral_secret.diffie_hellman(&PublicKey::from(*card_public));
    if !shared.was_contributory() {
        return Err(QuorumError::CardKey);
    }
    let cipher = envelope_cipher(shared.as_bytes(), &ephemeral_public, card_public);

    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    let mut body = Zeroizing::new(Vec::with_capacity(SHARE_LEN + TAG_LEN));
    body.extend_from_slice(share.to_bytes().as_ref());
    cipher
        .encrypt_in_place(&nonce.into(), &aad, &mut *body)
        .map_err(|_| QuorumError::ShareContext {
            reason: "AES-GCM refused to seal (cannot happen for 33 bytes)",
        })?;

    let mut out = Vec::with_capacity(ENVELOPE_LEN_V1);
    out.extend_from_slice(&ENVELOPE_MAGIC);
    out.push(ENVELOPE_VERSION_V1);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens an envelope sealed to `card_public` under `ctx`. `ecdh` does X25519 with the card's
/// private key and the envelope's ephemeral public key — on a smartcard, on the card.
///
/// The context is checked before the card is asked. A failing `ecdh` passes its error on; an
/// envelope that does not open gives the opaque [`QuorumError::EnvelopeOpen`].
pub fn open_share<E>(
    header: &EnvelopeHeader<'_>,
    card_public: &[u8; 32],
    ecdh: impl FnOnce(&[u8; 32]) -> Result<Zeroizing<[u8; 32]>, E>,
    ctx: &ShareContext,
) -> Result<Share, QuorumError>
where
    E: Into<QuorumError>,
{
    let aad = ctx.associated_data()?;
    let shared = ecdh(&header.ephemeral_public).map_err(Into::into)?;
    // A low-order ephemeral key gives an all-zero secret: refuse it like any bad envelope.
    if bool::from(shared.as_ref().ct_eq(&[0u8; 32])) {
        return Err(QuorumError::EnvelopeOpen);
    }
    let cipher = envelope_cipher(&shared, &header.ephemeral_public, card_public);
    let mut body = Zeroizing::new(Vec::with_capacity(header.ciphertext.len()));
    body.extend_from_slice(header.ciphertext);
    cipher
        .decrypt_in_place(&header.nonce.into(), &aad, &mut *body)
        .map_err(|_| QuorumError::EnvelopeOpen)?;
    let share = Share::from_bytes(&body)?;
    if share.index() != ctx.share_index {
        return Err(QuorumError::ShareContext {
            reason: "the share inside carries another index than its context",
        });
    }
    Ok(share)
}

/// [`open_share`] for a card whose X25519 secret is in memory (soft cards, tests).
pub fn open_share_with_x25519(
    header: &EnvelopeHeader<'_>,
    card_secret: &[u8; 32],
    ctx: &ShareContext,
) -> Result<Share, QuorumError> {
    let secret = StaticSecret::from(*card_secret);
    let card_public = PublicKey::from(&secret).to_bytes();
    open_share(
        header,
        &card_public,
        |ephemeral| Ok::<_, QuorumError>(x25519(&secret, ephemeral)),
        ctx,
    )
}

/// X25519 between a secret in memory and a peer's public key.
pub(crate) fn x25519(secret: &StaticSecret, peer_public: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let shared = secret.diffie_hellman(&PublicKey::from(*peer_public));
    Zeroizing::new(*shared.as_bytes())
}

fn envelope_cipher(
    shared: &[u8; 32],
    ephemeral_public: &[u8; 32],
    card_public: &[u8; 32],
) -> Aes256Gcm {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public);
    salt[32..].copy_from_slice(card_public);
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(ENVELOPE_KDF_INFO, key.as_mut())
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
    Aes256Gcm::new(&(*key).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{RecoverySecret, split};

    fn context(index: u8) -> ShareContext {
        ShareContext {
            partition: PartitionId::new("bank-payments").unwrap(),
            set_number: 7,
            share_index: index,
            card_serial: "000F:1234ABCD".to_owned(),
        }
    }

    #[test]
    fn associated_data_is_canonical() {
        let aad = context(3).associated_data().unwrap();
        let mut expected = b"TSSH\x01\x0dbank-payments".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 7, 3, 13]);
        expected.extend_from_slice(b"000F:1234ABCD");
        assert_eq!(aad, expected);
    }

    #[test]
    fn seal_refuses_a_context_for_another_index() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, _) = split(&secret, 2, 3).unwrap();
        let card = StaticSecret::from([5u8; 32]);
        let public = PublicKey::from(&card).to_bytes();
        assert!(matches!(
            seal_share(&public, &context(2), &shares[0]),
            Err(QuorumError::ShareContext { .. })
        ));
    }

    #[test]
    fn seal_refuses_a_low_order_card_key() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, _) = split(&secret, 1, 1).unwrap();
        assert!(matches!(
            seal_share(&[0u8; 32], &context(1), &shares[0]),
            Err(QuorumError::CardKey)
        ));
    }

    #[test]
    fn a_failing_card_passes_its_error_on() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, _) = split(&secret, 1, 1).unwrap();
        let card = StaticSecret::from([5u8; 32]);
        let public = PublicKey::from(&card).to_bytes();
        let sealed = seal_share(&public, &context(1), &shares[0]).unwrap();
        let header = EnvelopeHeader::parse(&sealed).unwrap();
        let result = open_share(
            &header,
            &public,
            |_| Err(crate::error::CardError::Removed),
            &context(1),
        );
        assert!(matches!(
            result,
            Err(QuorumError::Card(crate::error::CardError::Removed))
        ));
    }
}
