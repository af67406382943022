//! Fuzz target: the share envelope parser, and opening whatever parses with a fixed dummy card
//! and context. The body lives in `quorum::fuzzing`, so the ordinary test
//! `quorum/tests/fuzz_corpus.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quorum::fuzzing::envelope_parser(data);
});
