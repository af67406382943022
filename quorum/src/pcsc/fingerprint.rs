//! OpenPGP v4 fingerprints (RFC 4880 §12.2, RFC 9580 §5.5.4.2) of the keys a card generates.
//!
//! `openpgp-card`'s `generate_key` stores a fingerprint beside each key it makes, and leaves
//! computing it to the caller. We compute the real one, so that OpenPGP tools (gpg, sq,
//! openpgp-tool) show the same fingerprint as Tessera:
//!
//! ```text
//! fingerprint = SHA-1(0x99 ‖ body length (u16 BE) ‖ body)
//! body        = 4 ‖ creation time (u32 BE) ‖ algorithm ‖ OID length ‖ OID ‖ MPI(0x40 ‖ point)
//!               [ ‖ 03 01 hash cipher ]                      (ECDH only: the KDF parameters)
//! ```
//!
//! Ed25519 is algorithm 22 (EdDSA, "Ed25519Legacy" in RFC 9580) with OID 1.3.6.1.4.1.11591.15.1;
//! Curve25519 is algorithm 18 (ECDH) with OID 1.3.6.1.4.1.3029.1.5.1 and the KDF parameters
//! SHA-256 / AES-128 that GnuPG and Sequoia use for Cv25519. The point is the card's native
//! 32 bytes behind the 0x40 prefix, an MPI of 263 bits.
//!
//! SHA-1 is what the v4 format defines; the fingerprint names a key, it protects nothing.

use openpgp_card::Error;
use openpgp_card::ocard::KeyType;
use openpgp_card::ocard::algorithm::{AlgorithmAttributes, Curve};
use openpgp_card::ocard::crypto::{EccType, PublicKeyMaterial};
use openpgp_card::ocard::data::{Fingerprint, KeyGenerationTime};
use sha1::{Digest, Sha1};

/// OpenPGP public key algorithm 22: EdDSA (Ed25519Legacy).
const ALGORITHM_EDDSA: u8 = 22;
/// OpenPGP public key algorithm 18: ECDH.
const ALGORITHM_ECDH: u8 = 18;
/// KDF parameters of a Cv25519 ECDH key: length 3, reserved 1, SHA-256 (8), AES-128 (7).
const CV25519_KDF_PARAMS: [u8; 4] = [3, 1, 8, 7];

/// The `fp_from_pub` function `openpgp-card`'s `generate_key` calls: Ed25519 and Curve25519
/// keys only (the only ones Tessera generates).
pub(crate) fn from_public_key(
    key: &PublicKeyMaterial,
    created: KeyGenerationTime,
    _slot: KeyType,
) -> Result<Fingerprint, Error> {
    let PublicKeyMaterial::E(ecc) = key else {
        return Err(Error::UnsupportedAlgo(
            "Tessera computes fingerprints of Ed25519 and Curve25519 keys only".to_owned(),
        ));
    };
    let AlgorithmAttributes::Ecc(attributes) = ecc.algo() else {
        return Err(Error::UnsupportedAlgo(format!(
            "unexpected algorithm {:?}",
            ecc.algo()
        )));
    };
    let point = native_point(ecc.data()).ok_or_else(|| {
        Error::ParseError(format!(
            "a 25519 public key of {} bytes (expected 32)",
            ecc.data().len()
        ))
    })?;
    let fingerprint = match (attributes.ecc_type(), attributes.curve()) {
        (EccType::EdDSA, Curve::Ed25519) => ed25519(&point, created.get()),
        (EccType::ECDH, Curve::Curve25519) => cv25519(&point, created.get()),
        (ecc_type, curve) => {
            return Err(Error::UnsupportedAlgo(format!(
                "Tessera computes fingerprints of Ed25519 and Curve25519 keys only, not \
                 {ecc_type:?} on {curve:?}"
            )));
        }
    };
    Ok(Fingerprint::from(fingerprint))
}

/// A 25519 point as the card gives it: 32 bytes, or 33 with OpenPGP's 0x40 prefix.
pub(crate) fn native_point(data: &[u8]) -> Option<[u8; 32]> {
    match data {
        [0x40, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        _ => data.try_into().ok(),
    }
}

/// The v4 fingerprint of an Ed25519 (EdDSA legacy) public key created at `created`.
pub(crate) fn ed25519(point: &[u8; 32], created: u32) -> [u8; 20] {
    v4(ALGORITHM_EDDSA, Curve::Ed25519.oid(), point, created, &[])
}

/// The v4 fingerprint of a Curve25519 ECDH public key created at `created`.
pub(crate) fn cv25519(point: &[u8; 32], created: u32) -> [u8; 20] {
    v4(
        ALGORITHM_ECDH,
        Curve::Curve25519.oid(),
        point,
        created,
        &CV25519_KDF_PARAMS,
    )
}

fn v4(algorithm: u8, oid: &[u8], point: &[u8; 32], created: u32, trailer: &[u8]) -> [u8; 20] {
    let mut body = Vec::with_capacity(64);
    body.push(4);
    body.extend_from_slice(&created.to_be_bytes());
    body.push(algorithm);
    // OIDs of the curves above are 9 and 10 bytes long.
    body.push(oid.len() as u8);
    body.extend_from_slice(oid);
    // MPI: bit count of 0x40 ‖ point (33 bytes, top byte 0x40 has 7 significant bits) = 263.
    body.extend_from_slice(&263u16.to_be_bytes());
    body.push(0x40);
    body.extend_from_slice(point);
    body.extend_from_slice(trailer);

    let mut hash = Sha1::new();
    hash.update([0x99]);
    // At most 4 + 1 + 1 + 1 + 10 + 2 + 33 + 4 = 56 bytes.
    hash.update((body.len() as u16).to_be_bytes());
    hash.update(&body);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Point 01 02 … 20, created 2020-07-04 04:05:20 UTC (0x5F000000). GnuPG 2.2's
    /// `gpg --list-packets` on the same public key packets reports the key ids 979BEF3329BF0C77
    /// and 9B32F107D9C3CD6F: the low 64 bits of these fingerprints.
    #[test]
    fn fingerprints_match_gnupg() {
        let point: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        assert_eq!(
            hex::encode_upper(ed25519(&point, 0x5F00_0000)),
            "CD262C284C0035AA96671DEC979BEF3329BF0C77"
        );
        assert_eq!(
            hex::encode_upper(cv25519(&point, 0x5F00_0000)),
            "6F912C6E56E7BC697503814D9B32F107D9C3CD6F"
        );
    }

    #[test]
    fn points_with_and_without_prefix() {
        let mut prefixed = vec![0x40];
        prefixed.extend_from_slice(&[7; 32]);
        assert_eq!(native_point(&prefixed), Some([7; 32]));
        assert_eq!(native_point(&[7; 32]), Some([7; 32]));
        assert_eq!(native_point(&[7; 31]), None);
        assert_eq!(native_point(&[0x41; 33]), None);
    }
}
