//! Fuzz target bodies, shared by `fuzz/fuzz_targets/` (nightly, `cargo fuzz`) and the corpus
//! tests on stable (`firmware-image/tests/fuzz_corpus.rs`). Not part of the API.

use crate::device::state::State;
use crate::image::verify::{Trust, verify_reader};
use crate::keys::ReleaseKeySet;
use crate::manifest::Manifest;

/// The `firmware_manifest` target: bytes to the manifest parser. What parses must pass its own
/// checks and encode to exactly the bytes read (the encoding is canonical, so the signed bytes
/// and the parsed manifest cannot disagree). Whether the input parsed.
pub fn firmware_manifest(data: &[u8]) -> bool {
    match Manifest::parse(data) {
        Ok(manifest) => {
            assert_eq!(manifest.check(), Ok(()));
            assert_eq!(
                manifest.encode(),
                data,
                "a parsed manifest re-encodes differently"
            );
            true
        }
        Err(_) => false,
    }
}

/// The release key the `firmware_image` target trusts (threshold 1): the Ed25519 public key of
/// the seed `[7; 32]`, so that corpus seeds can be signed.
pub const FUZZ_RELEASE_KEY: [u8; 32] = [
    0xea, 0x4a, 0x6c, 0x63, 0xe2, 0x9c, 0x52, 0x0a, 0xbe, 0xf5, 0x50, 0x7b, 0x13, 0x2e, 0xc5, 0xf9,
    0x95, 0x47, 0x76, 0xae, 0xbe, 0xbe, 0x7b, 0x92, 0x42, 0x1e, 0xea, 0x69, 0x14, 0x46, 0xd2, 0x2c,
];

/// The hardware id the `firmware_image` target's device has.
pub const FUZZ_HARDWARE_ID: &str = "tessera-fuzz";

/// The `firmware_image` target: bytes to the whole verifier (container, manifest, signatures,
/// payload and file digests) against a fixed device. It must report every check, and pass all
/// only with a verified image. Whether the image verified.
pub fn firmware_image(data: &[u8]) -> bool {
    let trust = Trust {
        keys: ReleaseKeySet::new(1, vec![FUZZ_RELEASE_KEY]).expect("a valid key"),
        hardware_id: FUZZ_HARDWARE_ID.to_owned(),
        rollback_floor: 1,
    };
    let verification = verify_reader(data, &trust).expect("a slice does not fail to read");
    assert_eq!(verification.report.results.len(), 7);
    let passed = verification.report.passed();
    assert_eq!(passed, verification.into_result().is_ok());
    passed
}

/// The `firmware_state` target: bytes to the device state parser; what parses must encode to
/// exactly the bytes read. Whether the input parsed.
pub fn firmware_state(data: &[u8]) -> bool {
    match State::parse(data) {
        Ok(state) => {
            assert_eq!(
                state.encode(),
                data,
                "a parsed state re-encodes differently"
            );
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_release_key_is_the_seed_sevens_key() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(
            key.to_bytes(),
            super::FUZZ_RELEASE_KEY,
            "{:02x?}",
            key.to_bytes()
        );
    }
}
