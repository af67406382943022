//! Fuzz target: the terminal state directory's list of paired partitions (`paired.toml`). The
//! body lives in `terminal_app::fuzzing`, so the ordinary test
//! `terminal-app/tests/fuzz_corpus_paired.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    terminal_app::fuzzing::paired_list(data);
});
