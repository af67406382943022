//! The quorum backup key: X-Wing derived from the recovery secret, wrapping data keys with HPKE.

use quorum::QuorumError;
use quorum::secret::{
    BACKUP_PUBLIC_KEY_LEN, QuorumBackupKey, QuorumBackupPublicKey, RecoverySecret,
    WRAPPED_DATA_KEY_LEN, unwrap_with, wrap_to,
};

#[test]
fn derivation_is_deterministic_and_secret_specific() {
    let (_, a1) = QuorumBackupKey::derive(&RecoverySecret::from_bytes(&[3; 32]).unwrap());
    let (_, a2) = QuorumBackupKey::derive(&RecoverySecret::from_bytes(&[3; 32]).unwrap());
    let (_, b) = QuorumBackupKey::derive(&RecoverySecret::from_bytes(&[4; 32]).unwrap());
    assert_eq!(a1, a2);
    assert_eq!(a1.fingerprint(), a2.fingerprint());
    assert_ne!(a1, b);
    assert_eq!(a1.as_bytes().len(), BACKUP_PUBLIC_KEY_LEN);
}

#[test]
fn a_known_secret_derives_a_known_key() {
    // Pins the derivation (HKDF info, X-Wing DeriveKeyPair): a change here orphans every
    // registered quorum backup key. The value was recorded from this implementation.
    let (_, public) = QuorumBackupKey::derive(&RecoverySecret::from_bytes(&[3; 32]).unwrap());
    let fingerprint: String = public
        .fingerprint()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        fingerprint,
        include_str!("data/backup-key-fingerprint-secret-03.txt").trim()
    );
}

#[test]
fn wrap_and_unwrap_round_trip() {
    let secret = RecoverySecret::generate().unwrap();
    let (private, public) = QuorumBackupKey::derive(&secret);
    let registered = QuorumBackupPublicKey::from_bytes(public.as_bytes()).unwrap();
    let data_key = [0xa5; 32];
    let blob = wrap_to(&registered, &data_key).unwrap();
    assert_eq!(blob.len(), WRAPPED_DATA_KEY_LEN);
    assert_eq!(*unwrap_with(&private, &blob).unwrap(), data_key);
    // Wrapping is randomised.
    assert_ne!(wrap_to(&registered, &data_key).unwrap(), blob);
}

#[test]
fn another_key_cannot_unwrap() {
    let (_, public) = QuorumBackupKey::derive(&RecoverySecret::generate().unwrap());
    let (other, _) = QuorumBackupKey::derive(&RecoverySecret::generate().unwrap());
    let blob = wrap_to(&public, &[1; 32]).unwrap();
    assert!(matches!(
        unwrap_with(&other, &blob),
        Err(QuorumError::Unwrap)
    ));
}

#[test]
fn tampered_wrapped_keys_do_not_unwrap() {
    let (private, public) = QuorumBackupKey::derive(&RecoverySecret::generate().unwrap());
    let blob = wrap_to(&public, &[1; 32]).unwrap();
    // Every byte of the tail (ciphertext and tag) and a spread of the encapsulated key.
    let positions = (1..blob.len())
        .step_by(37)
        .chain(blob.len() - 48..blob.len());
    for byte in positions {
        let mut tampered = blob.clone();
        tampered[byte] ^= 0x01;
        assert!(
            matches!(unwrap_with(&private, &tampered), Err(QuorumError::Unwrap)),
            "byte {byte}"
        );
    }
}

#[test]
fn malformed_public_keys_are_refused() {
    assert!(matches!(
        QuorumBackupPublicKey::from_bytes(&[0; 100]),
        Err(QuorumError::BackupPublicKey { .. })
    ));
}
