//! Fuzz target: the terminal's record of its last verified backup (JSON, format and version
//! checked, length bounded). The body lives in `terminal_app::fuzzing`, so the ordinary test
//! `terminal-app/tests/fuzz_corpus_backup_record.rs` runs it over this target's corpus on
//! stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    terminal_app::fuzzing::last_backup_record(data);
});
