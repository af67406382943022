//! Key objects: their material, sealing at rest, and the operations an application asks of
//! them.
//!
//! - Ed25519 signatures (RFC 8032, pure Ed25519; verification is strict: no small-order keys,
//!   no malleable signatures).
//! - ECDSA on P-256 with SHA-256 (FIPS 186-5), deterministic nonces (RFC 6979), signatures as
//!   fixed-size `r ‖ s` (64 bytes), not DER.
//! - AES-256-GCM encryption (NIST SP 800-38D) with a random 96-bit nonce: `nonce ‖ ciphertext ‖
//!   tag`.
//! - Key wrapping with AES key wrap with padding (KWP, RFC 5649 / NIST SP 800-38F), the
//!   PKCS#11 `CKM_AES_KEY_WRAP_KWP` mechanism, so that wrapped keys move to and from other
//!   HSMs. Like PKCS#11, a wrapped blob does not say what kind of key it holds: the caller names
//!   the kind when unwrapping, and only length and range are checked against it.
//!
//! At rest an object is a [`seal`](super::seal) envelope under the master key, with the
//! partition id, the key id and the attributes that decide whether the key may leave the HSM
//! (`extractable`, `sensitive`) as associated data, so a sealed object copied to another id or
//! partition, or whose stored attributes were flipped, does not open. The sealed record is
//!
//! ```text
//! format (2) ‖ kind (1: AES-256, 2: Ed25519, 3: EC P-256) ‖ trusted (0 or 1) ‖ material
//! ```
//!
//! `trusted` is the officers' mark on a wrapping key (PKCS#11 `CKA_TRUSTED`): only a trusted
//! key may wrap another. It lives inside the sealed record, so it too can only be set by the
//! HSM. Format 1 (before the attributes were bound) is refused, not read: a record that opened
//! without its attributes would let whoever writes the store flip them on every key sealed
//! before.
//!
//! where the material is the AES key, the Ed25519 seed (RFC 8032 secret key) or the P-256
//! scalar (32 bytes, big-endian) — the same bytes [`export_plain`] gives.
//!
//! Policy (may this key be exported, used, wrapped?) is the partition's to enforce before it
//! calls in here.

use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, PartitionId};
use zeroize::{Zeroize, Zeroizing};

use super::sealed::{self, AeadKey, NONCE_LEN, SEALED_OVERHEAD, TAG_LEN};
use super::{CryptoError, KeyOperation};

/// Largest input [`encrypt`] and [`decrypt`] take (1 MiB, not counting nonce and tag).
pub const MAX_OPERATION_INPUT: usize = 1 << 20;

/// Format byte of a sealed key record.
const OBJECT_RECORD_FORMAT: u8 = 2;
/// Format, kind and trust bytes before the material.
const OBJECT_RECORD_HEADER_LEN: usize = 3;
/// Domain label that starts a key object's associated data.
const OBJECT_AAD_DOMAIN: &[u8] = b"tessera key object v2\0";
/// Bits of the attribute byte in the associated data.
const AAD_EXTRACTABLE: u8 = 1;
const AAD_SENSITIVE: u8 = 2;
/// Length of every kind's material today.
const MATERIAL_LEN: usize = 32;
/// Length of an Ed25519 or P-256 (`r ‖ s`) signature.
const SIGNATURE_LEN: usize = 64;
/// AES key wrap's integrity block (RFC 5649's alternative initial value).
const KWP_IV_LEN: usize = aes_kw::IV_LEN;
/// Tries at drawing a P-256 scalar below the group order before giving up. One try fails with
/// probability below 2^-32, so a second failure means the generator is broken.
const P256_GENERATE_TRIES: usize = 4;

const KIND_AES256: u8 = 1;
const KIND_ED25519: u8 = 2;
const KIND_EC_P256: u8 = 3;

/// The secret material of a key object. Every value is a valid key of its kind: construction
/// checks it. Zeroized on drop (by `zeroize`, `ed25519-dalek` and `ecdsa`), not `Clone`, and
/// its `Debug` shows the kind only.
pub enum KeyMaterial {
    /// An AES-256 key.
    Aes256(Zeroizing<[u8; 32]>),
    /// An Ed25519 key pair (from its 32-byte seed).
    Ed25519(ed25519_dalek::SigningKey),
    /// An ECDSA P-256 key pair (from its scalar, 1 ≤ d < n).
    EcP256(p256::ecdsa::SigningKey),
}

impl KeyMaterial {
    /// A fresh key of `kind` from the operating system's random number generator.
    pub fn generate(kind: KeyKind) -> Result<KeyMaterial, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; MATERIAL_LEN]);
        match kind {
            KeyKind::Aes256 => {
                getrandom::fill(bytes.as_mut())?;
                Ok(KeyMaterial::Aes256(bytes))
            }
            KeyKind::Ed25519 => {
                getrandom::fill(bytes.as_mut())?;
                Ok(KeyMaterial::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &bytes,
                )))
            }
            KeyKind::EcP256 => {
                // Rejection sampling: uniform over [1, n).
                for _ in 0..P256_GENERATE_TRIES {
                    getrandom::fill(bytes.as_mut())?;
                    if let Ok(key) = p256::ecdsa::SigningKey::from_bytes((&*bytes).into()) {
                        return Ok(KeyMaterial::EcP256(key));
                    }
                }
                Err(CryptoError::Rng(getrandom::Error::UNEXPECTED))
            }
        }
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyMaterial::Aes256(_) => KeyKind::Aes256,
            KeyMaterial::Ed25519(_) => KeyKind::Ed25519,
            KeyMaterial::EcP256(_) => KeyKind::EcP256,
        }
    }

    /// The public key: `None` for AES; the 32-byte Ed25519 public key (RFC 8032); the 65-byte
    /// uncompressed SEC1 point for P-256 (`04 ‖ x ‖ y`).
    pub fn public_key(&self) -> Option<Vec<u8>> {
        match self {
            KeyMaterial::Aes256(_) => None,
            KeyMaterial::Ed25519(key) => Some(key.verifying_key().to_bytes().to_vec()),
            KeyMaterial::EcP256(key) => {
                Some(key.verifying_key().to_sec1_point(false).as_bytes().to_vec())
            }
        }
    }

    /// The space the key takes against its partition's quota: the length of its sealed record
    /// as [`seal_object`] writes it (envelope overhead, record header and material; 68 bytes
    /// for every kind today). Labels and attributes are stored beside it and not counted here.
    pub fn size_bytes(&self) -> u64 {
        (SEALED_OVERHEAD + OBJECT_RECORD_HEADER_LEN + MATERIAL_LEN) as u64
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({}, redacted)", self.kind())
    }
}

/// Where a sealed key object belongs and what its sealing binds: its partition and id, the
/// attributes that decide whether it may leave the HSM, and the officers' trust mark.
#[derive(Clone, Copy, Debug)]
pub struct ObjectBinding<'a> {
    /// The partition.
    pub partition: &'a PartitionId,
    /// The key's id.
    pub key_id: KeyId,
    /// Its attributes (`extractable` and `sensitive` are bound; `modifiable` is not).
    pub attributes: KeyAttributes,
}

/// A key object as [`open_object`] returns it.
#[derive(Debug)]
pub struct OpenedObject {
    /// The key.
    pub material: KeyMaterial,
    /// Whether the officers marked it as a trusted wrapping key.
    pub trusted: bool,
}

/// Seals `material` under the master key for the place and attributes `binding` names, with
/// the trust mark `trusted`.
pub fn seal_object(
    master: &AeadKey,
    binding: ObjectBinding<'_>,
    material: &KeyMaterial,
    trusted: bool,
) -> Result<Vec<u8>, CryptoError> {
    let plain = export_plain(material);
    let mut record = Zeroizing::new(Vec::with_capacity(OBJECT_RECORD_HEADER_LEN + plain.len()));
    record.push(OBJECT_RECORD_FORMAT);
    record.push(kind_code(material.kind())?);
    record.push(u8::from(trusted));
    record.extend_from_slice(&plain);
    sealed::seal(master, &object_aad(binding), &record)
}

/// Opens a key object sealed by [`seal_object`] with the same binding. Anything sealed for
/// another id, partition, attributes or master key is [`CryptoError::AuthenticationFailed`].
pub fn open_object(
    master: &AeadKey,
    binding: ObjectBinding<'_>,
    sealed: &[u8],
) -> Result<OpenedObject, CryptoError> {
    let record = sealed::open(master, &object_aad(binding), sealed)?;
    let corrupt = || CryptoError::CorruptRecord {
        what: "key object record",
    };
    let [format, kind, trusted, material @ ..] = record.as_slice() else {
        return Err(corrupt());
    };
    if *format != OBJECT_RECORD_FORMAT {
        return Err(corrupt());
    }
    let trusted = match trusted {
        0 => false,
        1 => true,
        _ => return Err(corrupt()),
    };
    let kind = kind_from_code(*kind).ok_or_else(corrupt)?;
    let material = import_plain(kind, material).map_err(|_| corrupt())?;
    Ok(OpenedObject { material, trusted })
}

/// Signs `message`: Ed25519 (64 bytes), or ECDSA P-256 with SHA-256 (64 bytes, `r ‖ s`).
pub fn sign(material: &KeyMaterial, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match material {
        KeyMaterial::Ed25519(key) => Ok(ed25519_dalek::Signer::sign(key, message)
            .to_bytes()
            .to_vec()),
        KeyMaterial::EcP256(key) => {
            let signature: p256::ecdsa::Signature =
                p256::ecdsa::signature::Signer::try_sign(key, message).map_err(|_| {
                    CryptoError::InvalidKey {
                        kind: KeyKind::EcP256,
                    }
                })?;
            Ok(signature.to_bytes().to_vec())
        }
        other => Err(wrong_kind(KeyOperation::Sign, other)),
    }
}

/// Checks a signature made by [`sign`] (or by anyone with the key) over `message`.
pub fn verify(material: &KeyMaterial, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let length = |kind| CryptoError::SignatureLength {
        kind,
        expected: SIGNATURE_LEN,
        actual: signature.len(),
    };
    match material {
        KeyMaterial::Ed25519(key) => {
            let bytes: &[u8; SIGNATURE_LEN] =
                signature.try_into().map_err(|_| length(KeyKind::Ed25519))?;
            key.verifying_key()
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(bytes))
                .map_err(|_| CryptoError::SignatureInvalid)
        }
        KeyMaterial::EcP256(key) => {
            if signature.len() != SIGNATURE_LEN {
                return Err(length(KeyKind::EcP256));
            }
            let signature = p256::ecdsa::Signature::from_slice(signature)
                .map_err(|_| CryptoError::SignatureInvalid)?;
            p256::ecdsa::signature::Verifier::verify(key.verifying_key(), message, &signature)
                .map_err(|_| CryptoError::SignatureInvalid)
        }
        other => Err(wrong_kind(KeyOperation::Verify, other)),
    }
}

/// Encrypts with AES-256-GCM under a fresh random nonce: `nonce (12) ‖ ciphertext ‖ tag (16)`.
/// `aad` is authenticated, not stored; pass `&[]` for none.
pub fn encrypt(
    material: &KeyMaterial,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = aes_key(material, KeyOperation::Encrypt)?;
    if plaintext.len() > MAX_OPERATION_INPUT {
        return Err(CryptoError::TooLarge {
            what: "plaintext to encrypt",
            len: plaintext.len(),
            max: MAX_OPERATION_INPUT,
        });
    }
    sealed::gcm_seal(key, &[], aad, plaintext)
}

/// Decrypts what [`encrypt`] made, with the same `aad`. Anything that does not authenticate,
/// including input too short to hold a nonce and tag, is
/// [`CryptoError::AuthenticationFailed`].
pub fn decrypt(
    material: &KeyMaterial,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = aes_key(material, KeyOperation::Decrypt)?;
    let max = MAX_OPERATION_INPUT + NONCE_LEN + TAG_LEN;
    if ciphertext.len() > max {
        return Err(CryptoError::TooLarge {
            what: "ciphertext to decrypt",
            len: ciphertext.len(),
            max,
        });
    }
    sealed::gcm_open(key, aad, ciphertext)
}

/// Wraps `target` under the AES key `wrapping` with AES key wrap with padding (RFC 5649):
/// 40 bytes for every kind today. The blob does not record `target`'s kind.
pub fn wrap(wrapping: &KeyMaterial, target: &KeyMaterial) -> Result<Vec<u8>, CryptoError> {
    let key = aes_key(wrapping, KeyOperation::Wrap)?;
    let plain = export_plain(target);
    let mut wrapped = vec![0u8; kwp_len(plain.len())];
    let kw = <aes_kw::KwpAes256 as aes_kw::KeyInit>::new(key.into());
    kw.wrap_key(&plain, &mut wrapped)
        // Only a key over 2^32 bytes or a short buffer fails, and neither can happen here.
        .map_err(|_| CryptoError::TooLarge {
            what: "key to wrap",
            len: plain.len(),
            max: u32::MAX as usize,
        })?;
    Ok(wrapped)
}

/// Unwraps a blob made by [`wrap`] (or any RFC 5649 implementation) as a key of `kind`.
/// A blob that fails its integrity check is [`CryptoError::AuthenticationFailed`].
pub fn unwrap(
    wrapping: &KeyMaterial,
    kind: KeyKind,
    wrapped: &[u8],
) -> Result<KeyMaterial, CryptoError> {
    let key = aes_key(wrapping, KeyOperation::Unwrap)?;
    let expected = kwp_len(material_len(kind)?);
    if wrapped.len() != expected {
        return Err(CryptoError::WrappedKeyLength {
            kind,
            expected,
            actual: wrapped.len(),
        });
    }
    let mut buf = Zeroizing::new(vec![0u8; expected - KWP_IV_LEN]);
    let kw = <aes_kw::KwpAes256 as aes_kw::KeyInit>::new(key.into());
    let plain = kw
        .unwrap_key(wrapped, &mut buf)
        .map_err(|_| CryptoError::AuthenticationFailed)?;
    import_plain(kind, plain)
}

/// The key's plain bytes: the AES key, the Ed25519 seed, or the P-256 scalar (big-endian).
/// Whether a key may leave the HSM in plain is the caller's policy to check first.
pub fn export_plain(material: &KeyMaterial) -> Zeroizing<Vec<u8>> {
    match material {
        KeyMaterial::Aes256(key) => Zeroizing::new(key.to_vec()),
        KeyMaterial::Ed25519(key) => Zeroizing::new(key.as_bytes().to_vec()),
        KeyMaterial::EcP256(key) => {
            let mut scalar = key.to_bytes();
            let plain = Zeroizing::new(scalar.to_vec());
            scalar.as_mut_slice().zeroize();
            plain
        }
    }
}

/// A key of `kind` from plain bytes as [`export_plain`] gives them. Checks the length, and for
/// P-256 that the scalar is in range (1 ≤ d < n).
pub fn import_plain(kind: KeyKind, bytes: &[u8]) -> Result<KeyMaterial, CryptoError> {
    let expected = material_len(kind)?;
    let bytes: &[u8; MATERIAL_LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
        kind,
        expected,
        actual: bytes.len(),
    })?;
    match kind {
        KeyKind::Aes256 => Ok(KeyMaterial::Aes256(Zeroizing::new(*bytes))),
        KeyKind::Ed25519 => Ok(KeyMaterial::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            bytes,
        ))),
        KeyKind::EcP256 => p256::ecdsa::SigningKey::from_bytes(bytes.into())
            .map(KeyMaterial::EcP256)
            .map_err(|_| CryptoError::InvalidKey { kind }),
    }
}

/// The associated data that binds a sealed object to its place and attributes: a domain
/// label, the partition id (length-prefixed), the key id and one byte of attribute bits.
fn object_aad(binding: ObjectBinding<'_>) -> Vec<u8> {
    let id = binding.partition.as_str().as_bytes();
    let mut aad = Vec::with_capacity(OBJECT_AAD_DOMAIN.len() + 2 + id.len() + 9);
    aad.extend_from_slice(OBJECT_AAD_DOMAIN);
    // Partition ids are at most 64 bytes (hsm-link checks that), far below u16::MAX.
    aad.extend_from_slice(&(id.len() as u16).to_be_bytes());
    aad.extend_from_slice(id);
    aad.extend_from_slice(&binding.key_id.0.to_be_bytes());
    let a = binding.attributes;
    let mut bits = 0;
    if a.extractable {
        bits |= AAD_EXTRACTABLE;
    }
    if a.sensitive {
        bits |= AAD_SENSITIVE;
    }
    aad.push(bits);
    aad
}

fn aes_key(material: &KeyMaterial, operation: KeyOperation) -> Result<&[u8; 32], CryptoError> {
    match material {
        KeyMaterial::Aes256(key) => Ok(key),
        other => Err(wrong_kind(operation, other)),
    }
}

fn wrong_kind(operation: KeyOperation, material: &KeyMaterial) -> CryptoError {
    CryptoError::WrongKind {
        operation,
        kind: material.kind(),
    }
}

fn material_len(kind: KeyKind) -> Result<usize, CryptoError> {
    match kind {
        KeyKind::Aes256 | KeyKind::Ed25519 | KeyKind::EcP256 => Ok(MATERIAL_LEN),
    }
}

/// Length of a KWP-wrapped key of `len` bytes: padded to 8 bytes, plus the integrity block.
fn kwp_len(len: usize) -> usize {
    len.div_ceil(KWP_IV_LEN) * KWP_IV_LEN + KWP_IV_LEN
}

fn kind_code(kind: KeyKind) -> Result<u8, CryptoError> {
    match kind {
        KeyKind::Aes256 => Ok(KIND_AES256),
        KeyKind::Ed25519 => Ok(KIND_ED25519),
        KeyKind::EcP256 => Ok(KIND_EC_P256),
    }
}

fn kind_from_code(code: u8) -> Option<KeyKind> {
    match code {
        KIND_AES256 => Some(KeyKind::Aes256),
        KIND_ED25519 => Some(KeyKind::Ed25519),
        KIND_EC_P256 => Some(KeyKind::EcP256),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::assert_shows_no_secret;

    const KINDS: [KeyKind; 3] = [KeyKind::Aes256, KeyKind::Ed25519, KeyKind::EcP256];
    const SIGNING: [KeyKind; 2] = [KeyKind::Ed25519, KeyKind::EcP256];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn partition(id: &str) -> PartitionId {
        PartitionId::new(id).unwrap()
    }

    fn master(byte: u8) -> AeadKey {
        AeadKey::from_bytes(Zeroizing::new([byte; 32]))
    }

    #[test]
    fn generated_keys_have_their_public_forms() {
        for kind in KINDS {
            let key = KeyMaterial::generate(kind).unwrap();
            assert_eq!(key.kind(), kind);
            assert_eq!(export_plain(&key).len(), 32);
            let other = KeyMaterial::generate(kind).unwrap();
            assert_ne!(*export_plain(&key), *export_plain(&other), "{kind}");
        }
        assert_eq!(
            KeyMaterial::generate(KeyKind::Aes256).unwrap().public_key(),
            None
        );
        let ed = KeyMaterial::generate(KeyKind::Ed25519).unwrap();
        assert_eq!(ed.public_key().unwrap().len(), 32);
        let ec = KeyMaterial::generate(KeyKind::EcP256).unwrap();
        let point = ec.public_key().unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 0x04);
        assert!(p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).is_ok());
    }

    const SENSITIVE: KeyAttributes = KeyAttributes {
        extractable: false,
        sensitive: true,
        modifiable: false,
    };

    fn at(partition: &PartitionId, id: u64) -> ObjectBinding<'_> {
        ObjectBinding {
            partition,
            key_id: KeyId(id),
            attributes: SENSITIVE,
        }
    }

    #[test]
    fn sealed_objects_round_trip_and_count_their_size() {
        let m = master(1);
        let p = partition("payments");
        for (kind, trusted) in KINDS.into_iter().zip([true, false, true]) {
            let key = KeyMaterial::generate(kind).unwrap();
            let sealed = seal_object(&m, at(&p, 1), &key, trusted).unwrap();
            assert_eq!(sealed.len() as u64, key.size_bytes(), "{kind}");
            let opened = open_object(&m, at(&p, 1), &sealed).unwrap();
            assert_eq!(opened.trusted, trusted);
            let opened = opened.material;
            assert_eq!(opened.kind(), kind);
            assert_eq!(*export_plain(&opened), *export_plain(&key));
            assert_eq!(opened.public_key(), key.public_key());
        }
    }

    #[test]
    fn a_sealed_object_opens_only_in_its_place_and_with_its_attributes() {
        let m = master(2);
        let p = partition("payments");
        let key = KeyMaterial::generate(KeyKind::Ed25519).unwrap();
        let sealed = seal_object(&m, at(&p, 1), &key, false).unwrap();
        let flipped = |extractable, sensitive| ObjectBinding {
            attributes: KeyAttributes {
                extractable,
                sensitive,
                modifiable: false,
            },
            ..at(&p, 1)
        };
        for binding in [
            flipped(true, true),
            flipped(false, false),
            flipped(true, false),
        ] {
            assert!(matches!(
                open_object(&m, binding, &sealed),
                Err(CryptoError::AuthenticationFailed)
            ));
        }
        // `modifiable` is not bound.
        let modifiable = ObjectBinding {
            attributes: KeyAttributes {
                modifiable: true,
                ..SENSITIVE
            },
            ..at(&p, 1)
        };
        assert!(open_object(&m, modifiable, &sealed).is_ok());
        for (master, part, id) in [
            (master(2), partition("payments"), 2),
            (master(2), partition("payments"), 1 << 32 | 1),
            (master(2), partition("payments2"), 1),
            (master(2), partition("Payments"), 1),
            (master(3), partition("payments"), 1),
        ] {
            assert!(
                matches!(
                    open_object(&master, at(&part, id), &sealed),
                    Err(CryptoError::AuthenticationFailed)
                ),
                "{part} {id}"
            );
        }
        // Every byte of the sealed object is covered.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(open_object(&m, at(&p, 1), &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_record_that_authenticates_but_is_malformed_is_corrupt() {
        let m = master(4);
        let p = partition("p");
        let aad = object_aad(at(&p, 9));
        for record in [
            &[][..],
            &[OBJECT_RECORD_FORMAT][..],
            &[OBJECT_RECORD_FORMAT, KIND_AES256][..],
            &[1, KIND_AES256, 0, 0][..],
            &[OBJECT_RECORD_FORMAT, 99, 0][..],
            &[OBJECT_RECORD_FORMAT, KIND_AES256, 0, 1, 2, 3][..],
            &[OBJECT_RECORD_FORMAT, KIND_AES256, 2, 1, 2, 3][..],
        ] {
            let sealed = sealed::seal(&m, &aad, record).unwrap();
            assert!(matches!(
                open_object(&m, at(&p, 9), &sealed),
                Err(CryptoError::CorruptRecord { .. })
            ));
        }
        // A P-256 scalar of zero is out of range even inside an authentic record.
        let mut zero = vec![OBJECT_RECORD_FORMAT, KIND_EC_P256, 0];
        zero.extend_from_slice(&[0; 32]);
        let sealed = sealed::seal(&m, &aad, &zero).unwrap();
        assert!(matches!(
            open_object(&m, at(&p, 9), &sealed),
            Err(CryptoError::CorruptRecord { .. })
        ));
    }

    #[test]
    fn sign_and_verify() {
        for kind in SIGNING {
            let key = KeyMaterial::generate(kind).unwrap();
            let message = b"transfer 100 CHF to account 42";
            let signature = sign(&key, message).unwrap();
            assert_eq!(signature.len(), 64);
            verify(&key, message, &signature).unwrap();

            let mut flipped = message.to_vec();
            flipped[0] ^= 1;
            assert!(matches!(
                verify(&key, &flipped, &signature),
                Err(CryptoError::SignatureInvalid)
            ));
            for i in 0..signature.len() {
                let mut bad = signature.clone();
                bad[i] ^= 0x01;
                assert!(verify(&key, message, &bad).is_err(), "{kind} byte {i}");
            }
            assert!(matches!(
                verify(&key, message, &signature[..63]),
                Err(CryptoError::SignatureLength {
                    expected: 64,
                    actual: 63,
                    ..
                })
            ));
            let other = KeyMaterial::generate(kind).unwrap();
            assert!(matches!(
                verify(&other, message, &signature),
                Err(CryptoError::SignatureInvalid)
            ));
        }
    }

    #[test]
    fn signatures_verify_with_the_published_public_key() {
        let ed = KeyMaterial::generate(KeyKind::Ed25519).unwrap();
        let public: [u8; 32] = ed.public_key().unwrap().try_into().unwrap();
        let signature: [u8; 64] = sign(&ed, b"m").unwrap().try_into().unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&public)
            .unwrap()
            .verify_strict(b"m", &ed25519_dalek::Signature::from_bytes(&signature))
            .unwrap();

        let ec = KeyMaterial::generate(KeyKind::EcP256).unwrap();
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec.public_key().unwrap()).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&sign(&ec, b"m").unwrap()).unwrap();
        p256::ecdsa::signature::Verifier::verify(&public, b"m", &signature).unwrap();
    }

    /// RFC 8032 section 7.1, TEST 1 (empty message).
    #[test]
    fn ed25519_known_answer() {
        let key = import_plain(
            KeyKind::Ed25519,
            &unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
        )
        .unwrap();
        assert_eq!(
            key.public_key().unwrap(),
            unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let expected = unhex(concat!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ));
        assert_eq!(sign(&key, b"").unwrap(), expected);
        verify(&key, b"", &expected).unwrap();
    }

    /// RFC 6979 appendix A.2.5, P-256 with SHA-256, message "sample".
    #[test]
    fn ecdsa_p256_known_answer() {
        let key = import_plain(
            KeyKind::EcP256,
            &unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"),
        )
        .unwrap();
        let mut public = vec![0x04];
        public.extend(unhex(
            "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6",
        ));
        public.extend(unhex(
            "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
        ));
        assert_eq!(key.public_key().unwrap(), public);
        let mut expected =
            unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716");
        expected.extend(unhex(
            "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        ));
        assert_eq!(sign(&key, b"sample").unwrap(), expected);
        verify(&key, b"sample", &expected).unwrap();
    }

    #[test]
    fn encrypt_and_decrypt() {
        let key = KeyMaterial::generate(KeyKind::Aes256).unwrap();
        for (aad, len) in [
            (&b""[..], 0),
            (b"", 1),
            (b"context", 16),
            (b"context", 1000),
        ] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ciphertext = encrypt(&key, aad, &plaintext).unwrap();
            assert_eq!(ciphertext.len(), 12 + len + 16);
            assert_eq!(
                decrypt(&key, aad, &ciphertext).unwrap().as_slice(),
                &plaintext[..]
            );
            for i in 0..ciphertext.len() {
                let mut bad = ciphertext.clone();
                bad[i] ^= 0x01;
                assert!(matches!(
                    decrypt(&key, aad, &bad),
                    Err(CryptoError::AuthenticationFailed)
                ));
            }
        }
        let ciphertext = encrypt(&key, b"one", b"data").unwrap();
        assert!(matches!(
            decrypt(&key, b"two", &ciphertext),
            Err(CryptoError::AuthenticationFailed)
        ));
        let other = KeyMaterial::generate(KeyKind::Aes256).unwrap();
        assert!(matches!(
            decrypt(&other, b"one", &ciphertext),
            Err(CryptoError::AuthenticationFailed)
        ));
        assert!(matches!(
            decrypt(&key, b"one", &ciphertext[..27]),
            Err(CryptoError::AuthenticationFailed)
        ));
        assert_ne!(
            encrypt(&key, b"", b"x").unwrap(),
            encrypt(&key, b"", b"x").unwrap()
        );
        assert!(matches!(
            encrypt(&key, b"", &vec![0; MAX_OPERATION_INPUT + 1]),
            Err(CryptoError::TooLarge { .. })
        ));
        assert!(matches!(
            decrypt(&key, b"", &vec![0; MAX_OPERATION_INPUT + 29]),
            Err(CryptoError::TooLarge { .. })
        ));
    }

    #[test]
    fn wrap_and_unwrap_every_kind() {
        let kek = KeyMaterial::generate(KeyKind::Aes256).unwrap();
        for kind in KINDS {
            let target = KeyMaterial::generate(kind).unwrap();
            let wrapped = wrap(&kek, &target).unwrap();
            assert_eq!(wrapped.len(), 40);
            let plain = export_plain(&target);
            assert!(!wrapped.windows(8).any(|w| plain.windows(8).any(|p| p == w)));
            let back = unwrap(&kek, kind, &wrapped).unwrap();
            assert_eq!(back.kind(), kind);
            assert_eq!(*export_plain(&back), *plain);

            for i in 0..wrapped.len() {
                let mut bad = wrapped.clone();
                bad[i] ^= 0x01;
                assert!(matches!(
                    unwrap(&kek, kind, &bad),
                    Err(CryptoError::AuthenticationFailed)
                ));
            }
            let other = KeyMaterial::generate(KeyKind::Aes256).unwrap();
            assert!(matches!(
                unwrap(&other, kind, &wrapped),
                Err(CryptoError::AuthenticationFailed)
            ));
            assert!(matches!(
                unwrap(&kek, kind, &wrapped[..32]),
                Err(CryptoError::WrappedKeyLength {
                    expected: 40,
                    actual: 32,
                    ..
                })
            ));
        }
    }

    /// The blob is bare RFC 5649 output (no envelope of ours around it), so another KWP
    /// implementation unwraps it; and, as the RFC makes it, deterministic.
    #[test]
    fn wrap_output_is_bare_rfc_5649() {
        let kek = import_plain(KeyKind::Aes256, &[0x11; 32]).unwrap();
        let target = import_plain(KeyKind::Aes256, &[0x22; 32]).unwrap();
        let wrapped = wrap(&kek, &target).unwrap();
        let kw = <aes_kw::KwpAes256 as aes_kw::KeyInit>::new((&[0x11u8; 32]).into());
        let mut buf = [0u8; 32];
        assert_eq!(kw.unwrap_key(&wrapped, &mut buf).unwrap(), &[0x22; 32]);
        assert_eq!(wrap(&kek, &target).unwrap(), wrapped);
    }

    #[test]
    fn export_and_import() {
        for kind in KINDS {
            let key = KeyMaterial::generate(kind).unwrap();
            let plain = export_plain(&key);
            let back = import_plain(kind, &plain).unwrap();
            assert_eq!(*export_plain(&back), *plain);
            assert_eq!(back.public_key(), key.public_key());
            for len in [0, 31, 33, 64] {
                assert!(matches!(
                    import_plain(kind, &vec![1; len]),
                    Err(CryptoError::KeyLength { expected: 32, actual, .. }) if actual == len
                ));
            }
        }
        // P-256 scalars: 0 and n are out of range, n - 1 is the largest valid one.
        let n = unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        let mut n_minus_1 = n.clone();
        n_minus_1[31] -= 1;
        for bad in [vec![0u8; 32], n.clone(), vec![0xff; 32]] {
            assert!(matches!(
                import_plain(KeyKind::EcP256, &bad),
                Err(CryptoError::InvalidKey {
                    kind: KeyKind::EcP256
                })
            ));
        }
        assert!(import_plain(KeyKind::EcP256, &n_minus_1).is_ok());
    }

    #[test]
    fn wrong_kind_operations_are_refused() {
        let aes = KeyMaterial::generate(KeyKind::Aes256).unwrap();
        let ed = KeyMaterial::generate(KeyKind::Ed25519).unwrap();
        let ec = KeyMaterial::generate(KeyKind::EcP256).unwrap();
        let refused = |result: Result<(), CryptoError>, op: KeyOperation, kind: KeyKind| {
            let err = result.unwrap_err();
            assert!(
                matches!(err, CryptoError::WrongKind { operation, kind: k }
                    if operation == op && k == kind),
                "{err}"
            );
            err.to_string()
        };
        let shown = refused(
            sign(&aes, b"m").map(drop),
            KeyOperation::Sign,
            KeyKind::Aes256,
        );
        assert_eq!(
            shown,
            "cannot sign with this AES-256 key: sign needs an Ed25519 or EC P-256 key"
        );
        refused(
            verify(&aes, b"m", &[0; 64]),
            KeyOperation::Verify,
            KeyKind::Aes256,
        );
        for key in [&ed, &ec] {
            let kind = key.kind();
            refused(
                encrypt(key, b"", b"m").map(drop),
                KeyOperation::Encrypt,
                kind,
            );
            refused(
                decrypt(key, b"", &[0; 40]).map(drop),
                KeyOperation::Decrypt,
                kind,
            );
            refused(wrap(key, &aes).map(drop), KeyOperation::Wrap, kind);
            refused(
                unwrap(key, KeyKind::Aes256, &[0; 40]).map(drop),
                KeyOperation::Unwrap,
                kind,
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        for kind in KINDS {
            let key = KeyMaterial::generate(kind).unwrap();
            let shown = format!("{key:?}");
            assert_eq!(shown, format!("KeyMaterial({kind}, redacted)"));
            assert_shows_no_secret(&shown, &export_plain(&key));
        }
    }
}
