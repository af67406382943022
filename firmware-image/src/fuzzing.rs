//! Fuzz target bodies, shared by `fuzz/fuzz_targets/` (nightly, `cargo fuzz`) and the corpus
//! tests on stable (`firmware-image/tests/fuzz_corpus.rs`). Not part of the API.

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
