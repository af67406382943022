//! Fuzz target: a card's share object (empty, a bare envelope, or a "TSSO" container of at most
//! two entries), its encoding and the updates a ceremony makes to it. The body lives in
//! `quorum::fuzzing`, so the ordinary test `quorum/tests/fuzz_corpus_objects.rs` runs it over
//! this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quorum::fuzzing::share_object(data);
});
