//! Fuzz target: the backup container's header and trailer parsers, then the whole reader
//! (offline verification and, for what verifies, decryption). The body lives in
//! `usb_backup::fuzzing`, so the ordinary test `usb-backup/tests/fuzz_corpus.rs` runs it over
//! this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    usb_backup::fuzzing::container(data);
});
