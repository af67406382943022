//! The data key re-wrapped for a migration: a recovery ceremony on the terminal opens the
//! quorum wrapping, and the key travels to the TARGET HSM wrapped to that HSM's X25519 backup
//! key, never bare. HPKE base mode (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM),
//! info [`MIGRATION_WRAP_INFO`], the backup's header hash as associated data (so a wrapped key
//! opens only together with the backup it came with); [`MIGRATION_WRAPPED_KEY_LEN`] bytes:
//! encapsulated key (32), then ciphertext and tag (48).

use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use super::header::Header;
use super::keys::{DataKey, entropy_available, key_from};
use super::{HSM_WRAPPED_KEY_LEN, TAG_LEN};
use crate::error::{BackupError, Rejection};

type Aead = hpke::aead::AesGcm256;
type Kdf = hpke::kdf::HkdfSha256;

/// HPKE `info` of a data key re-wrapped to a target HSM for a migration.
pub const MIGRATION_WRAP_INFO: &[u8] = b"tessera backup data key migrated to hsm v1";

/// Length of a migration-wrapped data key (the same shape as the header's HSM wrapping).
pub const MIGRATION_WRAPPED_KEY_LEN: usize = HSM_WRAPPED_KEY_LEN;

impl DataKey {
    /// Wraps this key (of the backup whose header is `header`) to a target HSM's X25519 backup
    /// public key, for a migration.
    pub fn wrap_for_migration(
        &self,
        target_backup_public: &[u8; 32],
        header: &Header,
    ) -> Result<[u8; MIGRATION_WRAPPED_KEY_LEN], BackupError> {
        let failed = || BackupError::Crypto {
            op: "wrapping the data key to the target HSM",
        };
        let public = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(target_backup_public)
            .map_err(|_| BackupError::InvalidKey {
                key: "target HSM backup public key",
                problem: "not an X25519 public key",
            })?;
        entropy_available()?;
        let (encapped, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, X25519HkdfSha256>(
            &OpModeS::Base,
            &public,
            MIGRATION_WRAP_INFO,
            self.bytes(),
            &header.hash(),
        )
        .map_err(|_| failed())?;
        let encapped = encapped.to_bytes();
        let mut out = [0u8; MIGRATION_WRAPPED_KEY_LEN];
        if encapped.len() + ciphertext.len() != out.len() || ciphertext.len() != 32 + TAG_LEN {
            return Err(failed());
        }
        out[..encapped.len()].copy_from_slice(&encapped);
        out[encapped.len()..].copy_from_slice(&ciphertext);
        Ok(out)
    }
}

impl Header {
    /// Opens a data key re-wrapped for a migration ([`DataKey::wrap_for_migration`]) with the
    /// target HSM's X25519 backup secret. A key wrapped to another HSM, or for another backup,
    /// does not open: [`Rejection::Unwrap`].
    pub fn unwrap_migrated(
        &self,
        backup_secret: &[u8; 32],
        wrapped: &[u8; MIGRATION_WRAPPED_KEY_LEN],
    ) -> Result<DataKey, BackupError> {
        let private =
            <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(backup_secret).map_err(|_| {
                BackupError::InvalidKey {
                    key: "HSM backup secret",
                    problem: "not an X25519 secret key",
                }
            })?;
        let unwrap = || Rejection::Unwrap {
            recipient: "HSM backup key (migration)",
        };
        let (encapped, ciphertext) = wrapped.split_at(32);
        let encapped =
            <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(encapped).map_err(|_| unwrap())?;
        let plain = Zeroizing::new(
            hpke::single_shot_open::<Aead, Kdf, X25519HkdfSha256>(
                &OpModeR::Base,
                &private,
                &encapped,
                MIGRATION_WRAP_INFO,
                ciphertext,
                &self.hash(),
            )
            .map_err(|_| unwrap())?,
        );
        key_from(&plain).ok_or_else(|| unwrap().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Recipients;
    use crate::fuzzing::quorum_public_key;
    use hpke::kem::X25519HkdfSha256;

    fn x25519_pair(seed: u8) -> ([u8; 32], [u8; 32]) {
        let (private, public) = X25519HkdfSha256::derive_keypair(&[seed; 32]);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&private.to_bytes());
        let mut p = [0u8; 32];
        p.copy_from_slice(&public.to_bytes());
        (secret, p)
    }

    /// A header of a sealed empty backup, and its data key as the HSM wrapped it.
    fn backup() -> (Header, [u8; 32]) {
        let (source_secret, source_public) = x25519_pair(1);
        let recipients = Recipients::new(source_public, &quorum_public_key()).unwrap();
        let signer = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let facts = crate::BackupFacts {
            partition_id: "p".into(),
            partition_name: "P".into(),
            hsm_id: [3; 32],
            created: 1,
            sequence: 1,
            object_count: 0,
            plaintext_len: 0,
            chunk_size: crate::DEFAULT_CHUNK_SIZE,
        };
        let writer = crate::BackupWriter::new(Vec::new(), facts, &recipients, &signer).unwrap();
        let (file, _) = writer.finish().unwrap();
        (Header::read_from(&mut &file[..]).unwrap(), source_secret)
    }

    #[test]
    fn a_rewrapped_key_opens_only_at_the_target_and_only_with_its_backup() {
        let (header, source_secret) = backup();
        let key = header.unwrap_for_hsm(&source_secret).unwrap();
        let (target_secret, target_public) = x25519_pair(2);
        let wrapped = key.wrap_for_migration(&target_public, &header).unwrap();
        // The bare key is not in the wrapping.
        assert!(!wrapped.windows(32).any(|w| w == key.bytes()));
        let opened = header.unwrap_migrated(&target_secret, &wrapped).unwrap();
        assert_eq!(opened.bytes(), key.bytes());
        // Another HSM's secret, another backup's header, one flipped bit: not opened.
        let unwrap_refused = |r: Result<DataKey, BackupError>| matches!(r, Err(e) if matches!(e.rejection(), Some(Rejection::Unwrap { .. })));
        assert!(unwrap_refused(
            header.unwrap_migrated(&source_secret, &wrapped)
        ));
        let (other_header, _) = backup();
        assert!(unwrap_refused(
            other_header.unwrap_migrated(&target_secret, &wrapped)
        ));
        let mut flipped = wrapped;
        flipped[40] ^= 1;
        assert!(unwrap_refused(
            header.unwrap_migrated(&target_secret, &flipped)
        ));
    }
}
