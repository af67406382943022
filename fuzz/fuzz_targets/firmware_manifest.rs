//! Fuzz target: the firmware manifest parser; what parses must re-encode to exactly the bytes read. The body lives in `firmware_image::fuzzing`, so the ordinary test
//! `firmware-image/tests/fuzz_corpus.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    firmware_image::fuzzing::firmware_manifest(data);
});
