//! Fuzz target: the whole firmware image verifier (container, manifest, signatures, payload) against a fixed device. The body lives in `firmware_image::fuzzing`, so the ordinary test
//! `firmware-image/tests/fuzz_corpus.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    firmware_image::fuzzing::firmware_image(data);
});
