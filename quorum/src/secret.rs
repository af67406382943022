//! The recovery secret, its Feldman-verifiable shares, and the quorum backup key derived from it.
//!
//! - Shamir secret sharing with Feldman commitments over P-256, through `vsss-rs`
//!   (Feldman, "A practical scheme for non-interactive verifiable secret sharing", FOCS 1987).
//!   The shares' x-coordinates are the indices 1..=n; the commitments are `a_j·G` for the
//!   polynomial's coefficients `a_0 = secret, a_1, …, a_{m-1}`, with `G` the standard P-256 base
//!   point.
//! - `vsss-rs` refuses a threshold of 1. A 1-of-n quorum is the degenerate case of the same
//!   scheme: the polynomial is the constant `secret`, every share's value is the secret itself,
//!   and the one commitment is `secret·G`. [`split`], [`verify_share`] and [`combine`] treat
//!   both cases alike.
//! - The quorum backup key pair is X-Wing (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem),
//!   derived deterministically from the secret; data keys are wrapped to it with HPKE (RFC 9180,
//!   base mode, HKDF-SHA256, AES-256-GCM).
//!
//! Combining fewer than m Shamir shares yields a wrong value, not an error: [`combine`] therefore
//! counts distinct shares against the stored threshold before it combines anything, checks every
//! share against the commitments first, and checks the result against the first commitment.

use std::fmt;

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use hkdf::Hkdf;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use p256::elliptic_curve::Field;
use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::group::{Group, GroupEncoding};
use p256::{ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use vsss_rs::{
    DefaultShare, Feldman, FeldmanVerifierSet, IdentifierPrimeField, Polynomial, ReadableShareSet,
    Shamir, ShareVerifierGroup, ValueGroup,
};
use zeroize::{Zeroize, Zeroizing};

use crate::error::QuorumError;
use hex::encode as hex;

/// The most cards a quorum may have (and so the largest share index).
pub const MAX_CARDS: usize = 16;

/// Length of an encoded [`Share`]: the index (1 byte), then the value (a 32-byte big-endian
/// P-256 scalar).
pub const SHARE_LEN: usize = 1 + 32;

/// Length of a compressed SEC1 P-256 point, as used in [`Commitments`].
pub const POINT_LEN: usize = 33;

/// The format byte that opens an encoded [`Commitments`].
pub const COMMITMENTS_FORMAT_V1: u8 = 1;

/// The longest encoded [`Commitments`]: format, threshold, and 16 points.
pub const MAX_COMMITMENTS_LEN: usize = 2 + MAX_CARDS * POINT_LEN;

/// HKDF-SHA256 `info` that derives the X-Wing seed material from the recovery secret.
pub const BACKUP_KEY_INFO: &[u8] = b"tessera quorum backup key v1";

/// HPKE `info` that binds a wrapped data key to its purpose.
pub const DATA_KEY_WRAP_INFO: &[u8] = b"tessera backup data key v1";

/// Length of an encoded [`QuorumBackupPublicKey`] (an X-Wing encapsulation key).
pub const BACKUP_PUBLIC_KEY_LEN: usize = 1216;

/// Length of an X-Wing encapsulated key inside a wrapped data key.
pub const BACKUP_ENCAPSULATED_KEY_LEN: usize = 1120;

/// The format byte that opens a wrapped data key.
pub const WRAPPED_DATA_KEY_FORMAT_V1: u8 = 1;

/// Length of a wrapped 32-byte data key: format (1), X-Wing encapsulated key (1120), AES-256-GCM
/// ciphertext of the key with its tag (32 + 16).
pub const WRAPPED_DATA_KEY_LEN: usize = 1 + BACKUP_ENCAPSULATED_KEY_LEN + 32 + 16;

type P256Share = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type P256Verifier = ShareVerifierGroup<ProjectivePoint>;

/// The partition's recovery secret: a non-zero P-256 scalar.
///
/// It exists only during enrolment and recovery ceremonies, and is zeroized when dropped. It is
/// not `Clone`, and its `Debug` shows no bytes. Compare two secrets with
/// [`ConstantTimeEq::ct_eq`].
pub struct RecoverySecret {
    scalar: Zeroizing<Scalar>,
}

impl RecoverySecret {
    /// Draws a fresh, uniformly random, non-zero secret from the operating system's RNG.
    pub fn generate() -> Result<Self, QuorumError> {
        loop {
            let scalar = Zeroizing::new(Scalar::try_random(&mut SysRng)?);
            if !bool::from(scalar.is_zero()) {
                return Ok(RecoverySecret { scalar });
            }
        }
    }

    /// The secret from its 32-byte big-endian encoding. Refuses zero and values not below the
    /// group order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, QuorumError> {
        let scalar = scalar_from_bytes(bytes).ok_or(QuorumError::ShareEncoding {
            reason: "the value is zero or not below the P-256 group order",
        })?;
        Ok(RecoverySecret { scalar })
    }

    /// The secret's public point `secret·G`, compressed (33 bytes). For a 1-of-n quorum this is
    /// the whole of the commitments the HSM keeps.
    pub fn public_point(&self) -> [u8; POINT_LEN] {
        encode_point(&(ProjectivePoint::generator() * *self.scalar))
    }

    /// The 32-byte big-endian encoding, for key derivation inside this crate.
    fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        scalar_to_bytes(&self.scalar)
    }
}

impl ConstantTimeEq for RecoverySecret {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.scalar.ct_eq(&other.scalar)
    }
}

impl fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoverySecret(<redacted>)")
    }
}

/// One share of the recovery secret: the index (1 to n, the card's x-coordinate) and the value.
///
/// Zeroized when dropped; not `Clone`; its `Debug` shows the index only. On a card it travels
/// sealed in a share envelope ([`crate::envelope`]).
pub struct Share {
    index: u8,
    value: Zeroizing<[u8; 32]>,
}

impl Share {
    /// The share's index, 1 to n.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The share's encoding: the index, then the 32-byte big-endian value ([`SHARE_LEN`] bytes).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SHARE_LEN]> {
        let mut out = Zeroizing::new([0u8; SHARE_LEN]);
        out[0] = self.index;
        out[1..].copy_from_slice(self.value.as_ref());
        out
    }

    /// Decodes [`Share::to_bytes`]: checks the length, that the index is in 1..=16, and that the
    /// value is a non-zero scalar below the group order. Whether the share belongs to a quorum
    /// is [`verify_share`]'s question.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuorumError> {
        if bytes.len() != SHARE_LEN {
            return Err(QuorumError::ShareEncoding {
                reason: "a share is exactly 33 bytes",
            });
        }
        let index = bytes[0];
        check_index(index)?;
        let mut value = Zeroizing::new([0u8; 32]);
        value.copy_from_slice(&bytes[1..]);
        if scalar_from_bytes(&value).is_none() {
            return Err(QuorumError::ShareEncoding {
                reason: "the value is zero or not below the P-256 group order",
            });
        }
        Ok(Share { index, value })
    }

    fn scalar(&self) -> Zeroizing<Scalar> {
        // `from_bytes` and `split` only build shares whose value decodes.
        scalar_from_bytes(&self.value).unwrap_or_else(|| Zeroizing::new(Scalar::ZERO))
    }

    fn to_vsss(&self) -> Zeroizing<P256Share> {
        Zeroizing::new(P256Share {
            identifier: IdentifierPrimeField(Scalar::from(u64::from(self.index))),
            value: IdentifierPrimeField(*self.scalar()),
        })
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .field("value", &format_args!("<redacted>"))
            .finish()
    }
}

/// The public Feldman commitments of one split: `m` points, `a_j·G` for the polynomial's
/// coefficients, so the first is `secret·G`. The HSM keeps them with the card set and checks
/// every share against them as it arrives.
///
/// Encoding ([`Commitments::to_bytes`]), at most [`MAX_COMMITMENTS_LEN`] = 530 bytes:
///
/// | bytes | content |
/// |---|---|
/// | 1 | format, [`COMMITMENTS_FORMAT_V1`] |
/// | 1 | threshold m, 1..=16 |
/// | 33 × m | compressed SEC1 points, `secret·G` first |
///
/// The generator is always P-256's standard base point and is not stored. `serde` carries the
/// same bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Commitments {
    points: Vec<ProjectivePoint>,
}

impl Commitments {
    /// The threshold m these commitments were made for.
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// `secret·G`, compressed: the recovery secret's public point.
    pub fn secret_point(&self) -> [u8; POINT_LEN] {
        encode_point(&self.points[0])
    }

    /// The versioned encoding (see the type's documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.points.len() * POINT_LEN);
        out.push(COMMITMENTS_FORMAT_V1);
        // At most MAX_CARDS points: construction and decoding both check.
        out.push(self.points.len() as u8);
        for point in &self.points {
            out.extend_from_slice(&encode_point(point));
        }
        out
    }

    /// Decodes [`Commitments::to_bytes`], checking the length before reading, the format, the
    /// threshold, and that every point is on the curve and not the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuorumError> {
        let bad = |reason| QuorumError::Commitments { reason };
        if bytes.len() > MAX_COMMITMENTS_LEN {
            return Err(bad("longer than commitments for 16 cards"));
        }
        let [format, threshold, points @ ..] = bytes else {
            return Err(bad("shorter than the format and threshold bytes"));
        };
        if *format != COMMITMENTS_FORMAT_V1 {
            return Err(bad("unknown format byte (this build reads format 1)"));
        }
        let threshold = usize::from(*threshold);
        if !(1..=MAX_CARDS).contains(&threshold) {
            return Err(bad("the threshold is outside 1..=16"));
        }
        if points.len() != threshold * POINT_LEN {
            return Err(bad("the number of points does not match the threshold"));
        }
        let points = points
            .chunks_exact(POINT_LEN)
            .map(|chunk| {
                decode_point(chunk).ok_or(bad("a point is not on P-256 or is the identity"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Commitments { points })
    }

    fn verifier_set(&self) -> Vec<P256Verifier> {
        let mut set = Vec::with_capacity(self.points.len() + 1);
        set.push(ValueGroup(ProjectivePoint::generator()));
        set.extend(self.points.iter().copied().map(ValueGroup));
        set
    }
}

impl fmt::Debug for Commitments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = self.secret_point();
        f.debug_struct("Commitments")
            .field("threshold", &self.threshold())
            .field("secret_point", &format_args!("{}…", hex(&point[..8])))
            .finish()
    }
}

impl serde::Serialize for Commitments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Commitments {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Commitments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "at most {MAX_COMMITMENTS_LEN} bytes of quorum commitments"
                )
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Commitments, E> {
                Commitments::from_bytes(v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Commitments, A::Error> {
                // Formats without a bytes type (JSON) send a sequence: bound it while reading.
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    if bytes.len() == MAX_COMMITMENTS_LEN {
                        return Err(serde::de::Error::custom("quorum commitments too long"));
                    }
                    bytes.push(b);
                }
                Commitments::from_bytes(&bytes).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// Splits `secret` into `n` shares of which any `m` recombine it, with the commitments that
/// check each share. `1 <= m <= n <= 16`; share `i` is for card `i` (indices 1..=n).
///
/// For `m = 1` every share's value is the whole secret, and the commitments are `secret·G`.
///
/// # Panics
///
/// For `m >= 2`, if the operating system's RNG fails part-way (after it answered once): the
/// polynomial's coefficients come through `vsss-rs`, which takes an infallible RNG.
pub fn split(
    secret: &RecoverySecret,
    m: usize,
    n: usize,
) -> Result<(Vec<Share>, Commitments), QuorumError> {
    if !(1 <= m && m <= n && n <= MAX_CARDS) {
        return Err(QuorumError::QuorumSize {
            m,
            n,
            max: MAX_CARDS,
        });
    }
    if m == 1 {
        let shares = (1..=n as u8)
            .map(|index| Share {
                index,
                value: secret.to_bytes(),
            })
            .collect();
        let commitments = Commitments {
            points: vec![ProjectivePoint::generator() * *secret.scalar],
        };
        return Ok((shares, commitments));
    }

    // Ask the RNG once with error handling, so that a missing entropy source is an error here
    // rather than a panic inside vsss-rs.
    getrandom::fill(&mut [0u8; 1])?;
    let intercept = Zeroizing::new(IdentifierPrimeField(*secret.scalar));
    let (raw_shares, verifiers) = ZeroizingFeldman::split_secret_with_verifier(
        m,
        n,
        &intercept,
        None,
        &mut UnwrapErr(SysRng),
    )
    .map_err(|e| QuorumError::Sharing(e.to_string()))?;
    let raw_shares = Zeroizing::new(raw_shares);

    let mut shares = Vec::with_capacity(n);
    for (position, raw) in raw_shares.iter().enumerate() {
        let index = position as u8 + 1;
        if raw.identifier.0 != Scalar::from(u64::from(index)) {
            return Err(QuorumError::Sharing(
                "vsss-rs numbered the shares other than 1..=n".to_owned(),
            ));
        }
        shares.push(Share {
            index,
            value: scalar_to_bytes(&raw.value.0),
        });
    }
    if verifiers.len() != m + 1 || verifiers[0].0 != ProjectivePoint::generator() {
        return Err(QuorumError::Sharing(
            "vsss-rs returned an unexpected verifier set".to_owned(),
        ));
    }
    let commitments = Commitments {
        points: verifiers[1..].iter().map(|v| v.0).collect(),
    };
    Ok((shares, commitments))
}

/// Checks one share against the commitments. On failure the error names the share's index, so
/// the caller can name the card's holder and serial at once.
pub fn verify_share(commitments: &Commitments, share: &Share) -> Result<(), QuorumError> {
    check_index(share.index)?;
    let raw = share.to_vsss();
    commitments
        .verifier_set()
        .verify_share(&*raw)
        .map_err(|_| QuorumError::ShareMismatch { index: share.index })
}

/// Recombines the recovery secret from at least `threshold` shares.
///
/// In order, and before any arithmetic on secret values: `threshold` must be the commitments'
/// threshold; at least `threshold` distinct indices must be present ([`QuorumError::NotEnoughShares`]
/// otherwise — combining fewer would silently give a wrong value); every share presented must
/// pass [`verify_share`] (the first that fails is named by index). Then exactly `threshold`
/// shares are combined, and the result must satisfy `secret·G == ` the first commitment.
pub fn combine<'a>(
    commitments: &Commitments,
    threshold: usize,
    shares: impl IntoIterator<Item = &'a Share>,
) -> Result<RecoverySecret, QuorumError> {
    combine_with(commitments, threshold, shares, true)
}

/// [`combine`] for shares that each passed [`verify_share`] against these `commitments` when
/// they arrived (a ceremony checks each card's share as it is presented, to name a bad card at
/// once): the per-share checks are not repeated. Every other check stays, the final
/// `secret·G` comparison included, so a share that was not in fact checked still cannot give a
/// wrong secret silently.
pub(crate) fn combine_checked<'a>(
    commitments: &Commitments,
    threshold: usize,
    shares: impl IntoIterator<Item = &'a Share>,
) -> Result<RecoverySecret, QuorumError> {
    combine_with(commitments, threshold, shares, false)
}

fn combine_with<'a>(
    commitments: &Commitments,
    threshold: usize,
    shares: impl IntoIterator<Item = &'a Share>,
    verify_each: bool,
) -> Result<RecoverySecret, QuorumError> {
    if threshold != commitments.threshold() {
        return Err(QuorumError::ThresholdMismatch {
            given: threshold,
            stored: commitments.threshold(),
        });
    }
    let shares: Vec<&Share> = shares.into_iter().collect();
    let mut first_with_index: [Option<&Share>; MAX_CARDS + 1] = [None; MAX_CARDS + 1];
    for share in &shares {
        check_index(share.index)?;
        let slot = &mut first_with_index[usize::from(share.index)];
        match slot {
            None => *slot = Some(share),
            Some(seen) => {
                if !bool::from(seen.value.as_ref().ct_eq(share.value.as_ref())) {
                    return Err(QuorumError::ConflictingShares { index: share.index });
                }
            }
        }
    }
    let distinct: Vec<&Share> = first_with_index.iter().flatten().copied().collect();
    if distinct.len() < threshold {
        return Err(QuorumError::NotEnoughShares {
            got: distinct.len(),
            needed: threshold,
        });
    }
    if verify_each {
        for share in &distinct {
            verify_share(commitments, share)?;
        }
    }
    let chosen = &distinct[..threshold];

    let scalar = if threshold == 1 {
        chosen[0].scalar()
    } else {
        let raw: Zeroizing<Vec<P256Share>> =
            Zeroizing::new(chosen.iter().map(|s| *s.to_vsss()).collect());
        let combined = raw
            .combine()
            .map_err(|e| QuorumError::Sharing(e.to_string()))?;
        let combined = Zeroizing::new(combined);
        Zeroizing::new(combined.0)
    };
    let secret = RecoverySecret { scalar };
    let expected = commitments.points[0];
    if bool::from(secret.scalar.is_zero())
        || ProjectivePoint::generator() * *secret.scalar != expected
    {
        return Err(QuorumError::CombinedSecretMismatch);
    }
    Ok(secret)
}

/// Lagrange interpolation at 0 of `shares` (distinct indices), without commitments: for a
/// recovery that checks its result another way (the quorum backup key a backup names, see
/// `ceremony::BackupRecovery`). Fewer than m shares give a wrong value silently: the caller
/// must check it. A second share of one index is refused if it differs, skipped if not.
pub(crate) fn interpolate(shares: &[Share]) -> Result<RecoverySecret, QuorumError> {
    let mut distinct: Vec<&Share> = Vec::with_capacity(shares.len());
    for share in shares {
        check_index(share.index)?;
        match distinct.iter().find(|s| s.index == share.index) {
            Some(seen) if !bool::from(seen.value.as_ref().ct_eq(share.value.as_ref())) => {
                return Err(QuorumError::ConflictingShares { index: share.index });
            }
            Some(_) => {}
            None => distinct.push(share),
        }
    }
    let scalar = match distinct.as_slice() {
        [] => {
            return Err(QuorumError::NotEnoughShares { got: 0, needed: 1 });
        }
        [one] => one.scalar(),
        many => {
            let raw: Zeroizing<Vec<P256Share>> =
                Zeroizing::new(many.iter().map(|s| *s.to_vsss()).collect());
            let combined = Zeroizing::new(
                raw.combine()
                    .map_err(|e| QuorumError::Sharing(e.to_string()))?,
            );
            Zeroizing::new(combined.0)
        }
    };
    if bool::from(scalar.is_zero()) {
        return Err(QuorumError::CombinedSecretMismatch);
    }
    Ok(RecoverySecret { scalar })
}

/// The private half of the quorum backup key pair: an X-Wing decapsulation key (its 32-byte
/// seed), derived from the recovery secret. Zeroized when dropped; not `Clone`; redacted `Debug`.
pub struct QuorumBackupKey {
    seed: Zeroizing<[u8; 32]>,
}

/// The public half of the quorum backup key pair: an X-Wing encapsulation key of
/// [`BACKUP_PUBLIC_KEY_LEN`] (1216) bytes, registered at the HSM.
#[derive(Clone, PartialEq, Eq)]
pub struct QuorumBackupPublicKey {
    bytes: Vec<u8>,
}

impl QuorumBackupKey {
    /// Derives the key pair from the recovery secret: X-Wing's `DeriveKeyPair` over 32 bytes of
    /// HKDF-SHA256(secret, info [`BACKUP_KEY_INFO`]). The same secret always gives the same pair.
    pub fn derive(secret: &RecoverySecret) -> (QuorumBackupKey, QuorumBackupPublicKey) {
        let secret_bytes = secret.to_bytes();
        let mut ikm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, secret_bytes.as_ref())
            .expand(BACKUP_KEY_INFO, ikm.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        let (private, public) = XWing::derive_keypair(ikm.as_ref());
        let mut encoded = private.to_bytes();
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&encoded);
        encoded.zeroize();
        (
            QuorumBackupKey { seed },
            QuorumBackupPublicKey {
                bytes: public.to_bytes().to_vec(),
            },
        )
    }

    /// The matching public key.
    pub fn public_key(&self) -> QuorumBackupPublicKey {
        let public = XWing::sk_to_pk(&self.hpke_key());
        QuorumBackupPublicKey {
            bytes: public.to_bytes().to_vec(),
        }
    }

    fn hpke_key(&self) -> <XWing as hpke::Kem>::PrivateKey {
        <XWing as hpke::Kem>::PrivateKey::from_bytes(self.seed.as_ref())
            .unwrap_or_else(|_| unreachable!("an X-Wing private key is any 32 bytes"))
    }
}

impl fmt::Debug for QuorumBackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QuorumBackupKey(<redacted>)")
    }
}

impl QuorumBackupPublicKey {
    /// The 1216-byte encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes a public key, checking its length and that X-Wing accepts it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuorumError> {
        if bytes.len() != BACKUP_PUBLIC_KEY_LEN {
            return Err(QuorumError::BackupPublicKey {
                reason: "an X-Wing public key is exactly 1216 bytes",
            });
        }
        <XWing as hpke::Kem>::PublicKey::from_bytes(bytes).map_err(|_| {
            QuorumError::BackupPublicKey {
                reason: "X-Wing does not accept it",
            }
        })?;
        Ok(QuorumBackupPublicKey {
            bytes: bytes.to_vec(),
        })
    }

    /// SHA-256 of the encoding, to show and compare (the HSM's registered key against the one a
    /// ceremony derives).
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.bytes).into()
    }

    fn hpke_key(&self) -> Result<<XWing as hpke::Kem>::PublicKey, QuorumError> {
        <XWing as hpke::Kem>::PublicKey::from_bytes(&self.bytes).map_err(|_| {
            QuorumError::BackupPublicKey {
                reason: "X-Wing does not accept it",
            }
        })
    }
}

impl fmt::Debug for QuorumBackupPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QuorumBackupPublicKey(sha256 {}…)",
            hex(&self.fingerprint()[..8])
        )
    }
}

/// Wraps a backup's 32-byte data key to the quorum backup public key: HPKE base mode
/// (X-Wing, HKDF-SHA256, AES-256-GCM) with info [`DATA_KEY_WRAP_INFO`] and no associated data.
///
/// The result is [`WRAPPED_DATA_KEY_LEN`] (1169) bytes: format byte
/// [`WRAPPED_DATA_KEY_FORMAT_V1`], the 1120-byte encapsulated key, and 48 bytes of ciphertext
/// and tag.
pub fn wrap_to(
    public: &QuorumBackupPublicKey,
    data_key: &[u8; 32],
) -> Result<Vec<u8>, QuorumError> {
    // hpke draws its randomness through UnwrapErr(SysRng): ask once here so that a missing
    // entropy source is an error rather than a panic.
    getrandom::fill(&mut [0u8; 1])?;
    let (encapped, ciphertext) =
        hpke::single_shot_seal::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, XWing>(
            &OpModeS::Base,
            &public.hpke_key()?,
            DATA_KEY_WRAP_INFO,
            data_key,
            &[],
        )
        .map_err(|e| QuorumError::Wrap(e.to_string()))?;
    let mut out = Vec::with_capacity(WRAPPED_DATA_KEY_LEN);
    out.push(WRAPPED_DATA_KEY_FORMAT_V1);
    out.extend_from_slice(&encapped.to_bytes());
    out.extend_from_slice(&ciphertext);
    if out.len() != WRAPPED_DATA_KEY_LEN {
        return Err(QuorumError::Wrap(
            "HPKE produced an unexpected length".to_owned(),
        ));
    }
    Ok(out)
}

/// Unwraps a data key wrapped by [`wrap_to`]. A structural fault is named; a key that does not
/// open it, or any tampering, gives the opaque [`QuorumError::Unwrap`].
pub fn unwrap_with(
    private: &QuorumBackupKey,
    blob: &[u8],
) -> Result<Zeroizing<[u8; 32]>, QuorumError> {
    if blob.len() != WRAPPED_DATA_KEY_LEN {
        return Err(QuorumError::WrappedKeyFormat {
            reason: "a wrapped data key is exactly 1169 bytes",
        });
    }
    if blob[0] != WRAPPED_DATA_KEY_FORMAT_V1 {
        return Err(QuorumError::WrappedKeyFormat {
            reason: "unknown format byte (this build reads format 1)",
        });
    }
    let (encapped, ciphertext) = blob[1..].split_at(BACKUP_ENCAPSULATED_KEY_LEN);
    let encapped =
        <XWing as hpke::Kem>::EncappedKey::from_bytes(encapped).map_err(|_| QuorumError::Unwrap)?;
    let plaintext = Zeroizing::new(
        hpke::single_shot_open::<hpke::aead::AesGcm256, hpke::kdf::HkdfSha256, XWing>(
            &OpModeR::Base,
            &private.hpke_key(),
            &encapped,
            DATA_KEY_WRAP_INFO,
            ciphertext,
            &[],
        )
        .map_err(|_| QuorumError::Unwrap)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if plaintext.len() != key.len() {
        return Err(QuorumError::Unwrap);
    }
    key.copy_from_slice(&plaintext);
    Ok(key)
}

/// vsss-rs's Feldman split with a polynomial that is zeroized when dropped: its first
/// coefficient is the secret, and the stock `Vec` polynomial is freed without being wiped.
struct ZeroizingFeldman;

struct ZeroizingPolynomial(Zeroizing<Vec<P256Share>>);

impl Polynomial<P256Share> for ZeroizingPolynomial {
    fn create(size_hint: usize) -> Self {
        ZeroizingPolynomial(Zeroizing::new(vec![P256Share::default(); size_hint]))
    }
    fn coefficients(&self) -> &[P256Share] {
        &self.0
    }
    fn coefficients_mut(&mut self) -> &mut [P256Share] {
        &mut self.0
    }
}

impl Shamir<P256Share> for ZeroizingFeldman {
    type InnerPolynomial = ZeroizingPolynomial;
    type ShareSet = Vec<P256Share>;
}

impl Feldman<P256Share, P256Verifier> for ZeroizingFeldman {
    type VerifierSet = Vec<P256Verifier>;
}

fn check_index(index: u8) -> Result<(), QuorumError> {
    if index == 0 || usize::from(index) > MAX_CARDS {
        return Err(QuorumError::ShareIndex {
            index,
            max: MAX_CARDS,
        });
    }
    Ok(())
}

fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Zeroizing<Scalar>> {
    let mut repr = p256::FieldBytes::default();
    repr.copy_from_slice(bytes);
    let scalar: Option<Scalar> = Scalar::from_repr(repr).into();
    repr.zeroize();
    let scalar = Zeroizing::new(scalar?);
    if bool::from(scalar.is_zero()) {
        return None;
    }
    Some(scalar)
}

fn scalar_to_bytes(scalar: &Scalar) -> Zeroizing<[u8; 32]> {
    let mut repr = scalar.to_repr();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&repr);
    repr.zeroize();
    out
}

fn encode_point(point: &ProjectivePoint) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    out.copy_from_slice(&point.to_bytes());
    out
}

fn decode_point(bytes: &[u8]) -> Option<ProjectivePoint> {
    let mut repr = <ProjectivePoint as GroupEncoding>::Repr::default();
    repr.copy_from_slice(bytes);
    let point: Option<ProjectivePoint> = ProjectivePoint::from_bytes(&repr).into();
    // Only the canonical compressed form: the decoder also takes SEC1's compact form (tag 5).
    point.filter(|p| !bool::from(p.is_identity()) && encode_point(p)[..] == *bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_one_gives_every_card_the_secret() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, commitments) = split(&secret, 1, 3).unwrap();
        assert_eq!(commitments.threshold(), 1);
        assert_eq!(commitments.secret_point(), secret.public_point());
        for share in &shares {
            verify_share(&commitments, share).unwrap();
            let back = combine(&commitments, 1, [share]).unwrap();
            assert!(bool::from(back.ct_eq(&secret)));
        }
    }

    #[test]
    fn a_share_not_in_fact_checked_never_gives_a_wrong_secret() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, commitments) = split(&secret, 2, 3).unwrap();
        let (strangers, _) = split(&RecoverySecret::generate().unwrap(), 2, 3).unwrap();
        let mixed = [&shares[0], &strangers[1]];
        // combine checks each share and names the stranger; combine_checked trusts the
        // ceremony's earlier checks, yet the final comparison with secret·G still refuses.
        assert!(matches!(
            combine(&commitments, 2, mixed),
            Err(QuorumError::ShareMismatch { index: 2 })
        ));
        assert!(matches!(
            combine_checked(&commitments, 2, mixed),
            Err(QuorumError::CombinedSecretMismatch)
        ));
        let back = combine_checked(&commitments, 2, [&shares[2], &shares[0]]).unwrap();
        assert!(bool::from(back.ct_eq(&secret)));
        assert!(matches!(
            combine_checked(&commitments, 2, [&shares[1]]),
            Err(QuorumError::NotEnoughShares { got: 1, needed: 2 })
        ));
    }

    #[test]
    fn quorum_sizes_are_checked() {
        let secret = RecoverySecret::generate().unwrap();
        for (m, n) in [(0, 3), (4, 3), (2, 17), (17, 17), (0, 0)] {
            assert!(matches!(
                split(&secret, m, n),
                Err(QuorumError::QuorumSize { .. })
            ));
        }
        assert!(split(&secret, 16, 16).is_ok());
    }

    #[test]
    fn commitments_round_trip_and_refuse_garbage() {
        let secret = RecoverySecret::generate().unwrap();
        let (_, commitments) = split(&secret, 3, 5).unwrap();
        let bytes = commitments.to_bytes();
        assert_eq!(bytes.len(), 2 + 3 * POINT_LEN);
        assert_eq!(Commitments::from_bytes(&bytes).unwrap(), commitments);
        let wire = postcard::to_stdvec(&commitments).unwrap();
        assert_eq!(
            postcard::from_bytes::<Commitments>(&wire).unwrap(),
            commitments
        );

        let mut wrong_format = bytes.clone();
        wrong_format[0] = 2;
        let mut wrong_threshold = bytes.clone();
        wrong_threshold[1] = 4;
        let mut zero_threshold = bytes.clone();
        zero_threshold[1] = 0;
        let mut identity = bytes.clone();
        identity[2..2 + POINT_LEN].fill(0);
        let mut compact_form = bytes.clone();
        compact_form[2] = 0x05;
        let mut off_field = bytes.clone();
        off_field[3..2 + POINT_LEN].fill(0xff);
        for bad in [
            &[][..],
            &[1][..],
            &wrong_format,
            &wrong_threshold,
            &zero_threshold,
            &identity,
            &compact_form,
            &off_field,
            &bytes[..bytes.len() - 1],
            &vec![1u8; MAX_COMMITMENTS_LEN + 1],
        ]
        .iter()
        .enumerate()
        {
            assert!(
                matches!(
                    Commitments::from_bytes(bad.1),
                    Err(QuorumError::Commitments { .. })
                ),
                "case {}",
                bad.0
            );
        }
    }

    #[test]
    fn share_encoding_is_checked() {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, _) = split(&secret, 2, 2).unwrap();
        let bytes = shares[1].to_bytes();
        assert_eq!(Share::from_bytes(bytes.as_ref()).unwrap().index(), 2);
        let mut zero_index = *bytes;
        zero_index[0] = 0;
        let mut big_index = *bytes;
        big_index[0] = 17;
        let mut zero_value = *bytes;
        zero_value[1..].fill(0);
        let mut over_order = *bytes;
        over_order[1..].fill(0xff);
        assert!(Share::from_bytes(&zero_index).is_err());
        assert!(Share::from_bytes(&big_index).is_err());
        assert!(Share::from_bytes(&zero_value).is_err());
        assert!(Share::from_bytes(&over_order).is_err());
        assert!(Share::from_bytes(&bytes[..32]).is_err());
    }

    #[test]
    fn wrapped_key_structure_is_named() {
        let secret = RecoverySecret::generate().unwrap();
        let (private, public) = QuorumBackupKey::derive(&secret);
        let blob = wrap_to(&public, &[9; 32]).unwrap();
        assert_eq!(blob.len(), WRAPPED_DATA_KEY_LEN);
        assert!(matches!(
            unwrap_with(&private, &blob[..100]),
            Err(QuorumError::WrappedKeyFormat { .. })
        ));
        let mut other_format = blob.clone();
        other_format[0] = 2;
        assert!(matches!(
            unwrap_with(&private, &other_format),
            Err(QuorumError::WrappedKeyFormat { .. })
        ));
        assert_eq!(public.as_bytes().len(), BACKUP_PUBLIC_KEY_LEN);
        assert_eq!(
            QuorumBackupPublicKey::from_bytes(public.as_bytes()).unwrap(),
            public
        );
        assert_eq!(private.public_key(), public);
    }
}
