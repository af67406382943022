//! The fuzz target's body (run by `cargo fuzz` in `fuzz/` and over the corpus by
//! `tests/fuzz_corpus.rs`), and a test HSM with fixed, public keys that the fuzz body, the
//! tests, the benchmark and the examples share. Its keys are derived from one byte: never use
//! them for anything real.

use std::io::Cursor;

use ed25519_dalek::{SigningKey, VerifyingKey};
use hpke::{Kem, Serializable};

use crate::container::{
    BackupFacts, BackupReader, BackupWriter, DEFAULT_CHUNK_SIZE, Header, Recipients,
    TRAILER_FIXED_LEN, Trailer, WrittenBackup, verify_offline,
};

/// An HSM and a quorum with keys derived from one byte (public, for tests only).
pub struct TestHsm {
    /// The HSM's Ed25519 signing key.
    pub signing: SigningKey,
    /// The HSM's X25519 backup secret.
    pub backup_secret: [u8; 32],
    /// The quorum backup key's X-Wing private seed.
    pub quorum_seed: [u8; 32],
}

impl TestHsm {
    /// The test HSM number `n`.
    pub fn new(n: u8) -> TestHsm {
        TestHsm {
            signing: SigningKey::from_bytes(&[n; 32]),
            backup_secret: [n.wrapping_add(100); 32],
            quorum_seed: [n.wrapping_add(200); 32],
        }
    }

    /// The signing key's public half, as a terminal pins it.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The HSM's X25519 backup public key.
    pub fn backup_public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(self.backup_secret))
            .to_bytes()
    }

    /// The quorum backup public key (X-Wing, 1216 bytes).
    pub fn quorum_public(&self) -> Vec<u8> {
        quorum_public_from_seed(&self.quorum_seed)
    }

    /// Both recipients.
    pub fn recipients(&self) -> Recipients {
        Recipients::new(self.backup_public(), &self.quorum_public())
            .unwrap_or_else(|e| unreachable!("the test keys are valid: {e}"))
    }

    /// Facts for a backup of `plaintext_len` bytes of the partition `test-partition`.
    pub fn facts(&self, plaintext_len: u64, chunk_size: u32) -> BackupFacts {
        BackupFacts {
            partition_id: "test-partition".into(),
            partition_name: "Test partition".into(),
            hsm_id: [0x42; 32],
            created: 1_796_376_000,
            sequence: 7,
            object_count: 3,
            plaintext_len,
            chunk_size,
        }
    }

    /// A whole backup of `plaintext` in memory.
    pub fn seal(&self, plaintext: &[u8], chunk_size: u32) -> (Vec<u8>, WrittenBackup) {
        let facts = self.facts(plaintext.len() as u64, chunk_size);
        let mut writer = BackupWriter::new(Vec::new(), facts, &self.recipients(), &self.signing)
            .unwrap_or_else(|e| unreachable!("test facts are valid: {e}"));
        writer
            .write_plaintext(plaintext)
            .and_then(|()| writer.finish())
            .unwrap_or_else(|e| unreachable!("writing to memory does not fail: {e}"))
    }
}

/// The X-Wing public key for a private seed.
fn quorum_public_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    use hpke::Deserializable;
    let private = <hpke::kem::XWing as Kem>::PrivateKey::from_bytes(seed)
        .unwrap_or_else(|_| unreachable!("an X-Wing private key is any 32 bytes"));
    hpke::kem::XWing::sk_to_pk(&private).to_bytes().to_vec()
}

/// The quorum public key of [`TestHsm::new(1)`](TestHsm::new), for examples.
pub fn quorum_public_key() -> Vec<u8> {
    TestHsm::new(1).quorum_public()
}

/// The `backup_container` fuzz body: `data` as a header alone, as a trailer alone, then as a
/// whole backup file verified offline against test HSM 1 and, if it verifies, decrypted with
/// its backup key. Returns whether the whole file was accepted. Nothing may panic; what verifies
/// offline must also decrypt and verify again.
pub fn container(data: &[u8]) -> bool {
    if let Ok(header) = Header::parse(data) {
        assert_eq!(
            header.encode(),
            data,
            "a parsed header re-encodes to its bytes"
        );
    }
    if data.len() >= TRAILER_FIXED_LEN {
        let tail = &data[data.len() - TRAILER_FIXED_LEN..];
        if let Ok(trailer) = Trailer::parse(tail) {
            assert_eq!(trailer.encode().as_slice(), tail);
        }
    }
    let hsm = TestHsm::new(1);
    let Ok(verified) = verify_offline(Cursor::new(data), &hsm.verifying_key()) else {
        return false;
    };
    let reader = BackupReader::open(data, &hsm.verifying_key())
        .unwrap_or_else(|e| panic!("verified offline, but the header does not open: {e}"));
    let key = reader
        .header()
        .unwrap_for_hsm(&hsm.backup_secret)
        .unwrap_or_else(|e| panic!("verified offline, but the key does not unwrap: {e}"));
    let again = reader
        .decrypt(key)
        .and_then(|r| r.finish())
        .unwrap_or_else(|e| panic!("verified offline, but does not decrypt: {e}"));
    assert_eq!(again, verified);
    true
}

/// The chunk size of the corpus seeds: the smallest, to keep them small.
pub const SEED_CHUNK_SIZE: u32 = crate::container::MIN_CHUNK_SIZE;

/// The default chunk size, for callers without an opinion.
pub const CHUNK_SIZE: u32 = DEFAULT_CHUNK_SIZE;
