//! The data key and its two wrappings: to the HSM's X25519 backup key (restore onto the same
//! HSM) and to the quorum's X-Wing backup key (restore anywhere, in a recovery ceremony). Both
//! are HPKE base mode (RFC 9180) with HKDF-SHA256 and AES-256-GCM.

use std::fmt;

use hpke::kem::{X25519HkdfSha256, XWing};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::header::Header;
use super::{
    HSM_WRAP_INFO, HSM_WRAPPED_KEY_LEN, QUORUM_PUBLIC_KEY_LEN, QUORUM_WRAP_INFO,
    QUORUM_WRAPPED_KEY_LEN,
};
use crate::error::{BackupError, Rejection};
pub(crate) use hex::encode as hex;

type Aead = hpke::aead::AesGcm256;
type Kdf = hpke::kdf::HkdfSha256;

/// A backup's AES-256 data key. Zeroized when dropped; not `Clone`; its `Debug` shows nothing.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh key from the operating system's RNG.
    pub(crate) fn generate() -> Result<DataKey, BackupError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| BackupError::Crypto {
            op: "drawing a data key",
        })?;
        Ok(DataKey(key))
    }

    /// A key unwrapped elsewhere (by `quorum::unwrap_with` in a recovery ceremony).
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> DataKey {
        DataKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// The two public keys a backup's data key is wrapped to.
#[derive(Clone)]
pub struct Recipients {
    hsm_backup_public: [u8; 32],
    quorum_backup_public: Vec<u8>,
}

impl Recipients {
    /// The HSM's X25519 backup public key and the quorum backup public key (1216 bytes of
    /// X-Wing, as registered at enrolment). Checks that both keys are usable.
    pub fn new(
        hsm_backup_public: [u8; 32],
        quorum_backup_public: &[u8],
    ) -> Result<Recipients, BackupError> {
        <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&hsm_backup_public).map_err(|_| {
            BackupError::InvalidKey {
                key: "HSM backup public key",
                problem: "not an X25519 public key",
            }
        })?;
        quorum_public(quorum_backup_public)?;
        Ok(Recipients {
            hsm_backup_public,
            quorum_backup_public: quorum_backup_public.to_vec(),
        })
    }

    pub(crate) fn hsm_key_id(&self) -> [u8; 32] {
        key_id(&self.hsm_backup_public)
    }

    pub(crate) fn quorum_key_id(&self) -> [u8; 32] {
        key_id(&self.quorum_backup_public)
    }

    /// The data key wrapped to the HSM ([`HSM_WRAPPED_KEY_LEN`] bytes).
    pub(crate) fn wrap_for_hsm(
        &self,
        key: &DataKey,
    ) -> Result<[u8; HSM_WRAPPED_KEY_LEN], BackupError> {
        let public = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&self.hsm_backup_public)
            .map_err(|_| wrap_failed())?;
        entropy_available()?;
        let (encapped, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, X25519HkdfSha256>(
            &OpModeS::Base,
            &public,
            HSM_WRAP_INFO,
            key.bytes(),
            &[],
        )
        .map_err(|_| wrap_failed())?;
        let mut out = [0u8; HSM_WRAPPED_KEY_LEN];
        let encapped = encapped.to_bytes();
        if encapped.len() + ciphertext.len() != out.len() {
            return Err(wrap_failed());
        }
        out[..encapped.len()].copy_from_slice(&encapped);
        out[encapped.len()..].copy_from_slice(&ciphertext);
        Ok(out)
    }

    /// The data key wrapped to the quorum, in the `quorum` crate's wrapped key format.
    pub(crate) fn wrap_for_quorum(&self, key: &DataKey) -> Result<Vec<u8>, BackupError> {
        let public = quorum_public(&self.quorum_backup_public)?;
        entropy_available()?;
        let (encapped, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, XWing>(
            &OpModeS::Base,
            &public,
            QUORUM_WRAP_INFO,
            key.bytes(),
            &[],
        )
        .map_err(|_| wrap_failed())?;
        let mut out = Vec::with_capacity(QUORUM_WRAPPED_KEY_LEN);
        out.push(1);
        out.extend_from_slice(&encapped.to_bytes());
        out.extend_from_slice(&ciphertext);
        if out.len() != QUORUM_WRAPPED_KEY_LEN {
            return Err(wrap_failed());
        }
        Ok(out)
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipients")
            .field("hsm_backup_key_id", &hex(&self.hsm_key_id()[..8]))
            .field("quorum_backup_key_id", &hex(&self.quorum_key_id()[..8]))
            .finish()
    }
}

impl Header {
    /// Unwraps the data key with the HSM's X25519 backup secret. A backup wrapped to another
    /// HSM is [`Rejection::WrongHsm`] before any decryption is tried.
    pub fn unwrap_for_hsm(&self, backup_secret: &[u8; 32]) -> Result<DataKey, BackupError> {
        let private =
            <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(backup_secret).map_err(|_| {
                BackupError::InvalidKey {
                    key: "HSM backup secret",
                    problem: "not an X25519 secret key",
                }
            })?;
        let public = X25519HkdfSha256::sk_to_pk(&private);
        if key_id(&public.to_bytes()) != self.hsm_backup_key_id {
            return Err(Rejection::WrongHsm {
                detail: "the data key is wrapped to another HSM's backup key",
            }
            .into());
        }
        let unwrap = || Rejection::Unwrap {
            recipient: "HSM backup key",
        };
        let (encapped, ciphertext) = self.hsm_wrapped_key.split_at(32);
        let encapped =
            <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(encapped).map_err(|_| unwrap())?;
        let plain = Zeroizing::new(
            hpke::single_shot_open::<Aead, Kdf, X25519HkdfSha256>(
                &OpModeR::Base,
                &private,
                &encapped,
                HSM_WRAP_INFO,
                ciphertext,
                &[],
            )
            .map_err(|_| unwrap())?,
        );
        key_from(&plain).ok_or_else(|| unwrap().into())
    }

    /// Checks that the data key is wrapped to this quorum backup public key.
    pub fn check_quorum_key(&self, quorum_backup_public: &[u8]) -> Result<(), Rejection> {
        if key_id(quorum_backup_public) != self.quorum_backup_key_id {
            return Err(Rejection::WrongQuorum);
        }
        Ok(())
    }

    /// Unwraps the data key with the quorum backup key's 32-byte X-Wing private seed (what a
    /// recovery ceremony derives). A backup wrapped to another quorum is
    /// [`Rejection::WrongQuorum`] before any decryption is tried.
    pub fn unwrap_for_quorum(&self, private_seed: &[u8; 32]) -> Result<DataKey, BackupError> {
        let private = <XWing as Kem>::PrivateKey::from_bytes(private_seed).map_err(|_| {
            BackupError::InvalidKey {
                key: "quorum backup private key",
                problem: "not an X-Wing seed",
            }
        })?;
        self.check_quorum_key(&XWing::sk_to_pk(&private).to_bytes())?;
        let unwrap = || Rejection::Unwrap {
            recipient: "quorum backup key",
        };
        let blob = &self.quorum_wrapped_key;
        if blob.first() != Some(&1) {
            return Err(unwrap().into());
        }
        let (encapped, ciphertext) = blob[1..].split_at(1120);
        let encapped = <XWing as Kem>::EncappedKey::from_bytes(encapped).map_err(|_| unwrap())?;
        let plain = Zeroizing::new(
            hpke::single_shot_open::<Aead, Kdf, XWing>(
                &OpModeR::Base,
                &private,
                &encapped,
                QUORUM_WRAP_INFO,
                ciphertext,
                &[],
            )
            .map_err(|_| unwrap())?,
        );
        key_from(&plain).ok_or_else(|| unwrap().into())
    }
}

pub(super) fn key_from(plain: &[u8]) -> Option<DataKey> {
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != key.len() {
        return None;
    }
    key.copy_from_slice(plain);
    Some(DataKey(key))
}

fn quorum_public(bytes: &[u8]) -> Result<<XWing as Kem>::PublicKey, BackupError> {
    let bad = |problem| BackupError::InvalidKey {
        key: "quorum backup public key",
        problem,
    };
    if bytes.len() != QUORUM_PUBLIC_KEY_LEN {
        return Err(bad("an X-Wing public key is exactly 1216 bytes"));
    }
    <XWing as Kem>::PublicKey::from_bytes(bytes).map_err(|_| bad("X-Wing does not accept it"))
}

/// A public key's id in the header: SHA-256 of its encoding.
pub(crate) fn key_id(public: &[u8]) -> [u8; 32] {
    Sha256::digest(public).into()
}

/// hpke draws randomness through a panicking adapter: ask once first, so a missing entropy
/// source is an error rather than a panic.
pub(super) fn entropy_available() -> Result<(), BackupError> {
    getrandom::fill(&mut [0u8; 1]).map_err(|_| BackupError::Crypto {
        op: "drawing randomness",
    })
}

fn wrap_failed() -> BackupError {
    BackupError::Crypto {
        op: "wrapping the data key",
    }
}
