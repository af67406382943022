//! Fuzz target: the log export parser and verifier (header, log lines, closing checkpoint), read
//! line by line and in parts on threads, and the SIEM conversion. The body lives in
//! `audit_log::fuzzing`, so the ordinary test `audit-log/tests/fuzz_corpus.rs` runs it over this
//! target's corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    audit_log::fuzzing::log_export(data);
});
