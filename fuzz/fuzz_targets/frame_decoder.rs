//! Fuzz target: the link's frame decoders (length-prefixed and COBS), link frame parsing, and
//! the hello and packet decoders behind them. The body lives in `hsm_link::fuzzing`, so the
//! ordinary test `hsm-link/tests/fuzz_corpus.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hsm_link::fuzzing::frame_decoders(data);
});
