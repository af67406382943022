//! Fuzz target: the soft card file header parser, and the header's canonical encoding. The body
//! lives in `quorum::fuzzing` (over a hook in `quorum::soft`), so the ordinary test
//! `quorum/tests/fuzz_corpus_objects.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quorum::fuzzing::soft_card_header(data);
});
