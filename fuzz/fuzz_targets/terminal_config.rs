//! Fuzz target: the terminal's TOML configuration parser, with the errors it names the file in.
//! The body lives in `terminal_app::fuzzing`, so the ordinary test
//! `terminal-app/tests/fuzz_corpus.rs` runs it over this target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    terminal_app::fuzzing::terminal_config(data);
});
