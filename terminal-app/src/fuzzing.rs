//! Bodies of the terminal's fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and the ordinary
//! corpus tests `terminal-app/tests/fuzz_corpus.rs` and `fuzz_corpus_paired.rs`, so that CI
//! exercises them on the stable toolchain.

use std::path::Path;

use quorum::CardPolicy;

use crate::config::{Origin, TerminalConfig};

/// The file name every configuration the fuzz target parses goes by; each error must name it.
pub const FUZZ_CONFIG_PATH: &str = "fuzz.toml";

/// Parses arbitrary bytes as the terminal's configuration file, as `--config fuzz.toml` would
/// (bytes that are not UTF-8 are refused before the parser, as [`TerminalConfig::load`] does).
/// A refusal must name the file; a configuration that parses must ask for the card policy its
/// `allow_soft_cards` says. Must never panic. Returns whether the text parsed.
pub fn terminal_config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match TerminalConfig::parse(text, Path::new(FUZZ_CONFIG_PATH), Origin::Flag) {
        Ok(config) => {
            let expected = if config.cards.allow_soft_cards {
                CardPolicy::allowed_by_configuration()
            } else {
                CardPolicy::hardware_only()
            };
            assert_eq!(config.card_policy(), expected);
            assert_eq!(
                config.card_policy().allows_soft_cards(),
                config.cards.allow_soft_cards
            );
            // Parsing is a function of the text: the same text gives the same configuration.
            let again = TerminalConfig::parse(text, Path::new(FUZZ_CONFIG_PATH), Origin::Env);
            assert_eq!(again.ok(), Some(config));
            true
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains(FUZZ_CONFIG_PATH),
                "the refusal does not name the file: {message}"
            );
            assert!(message.contains("--config"), "{message}");
            false
        }
    }
}

/// The file name every paired-partitions list the fuzz target parses goes by.
pub const FUZZ_PAIRED_PATH: &str = "fuzz-paired.toml";

/// Parses arbitrary bytes as the state directory's `paired.toml`. A refusal must name the file;
/// a list that parses must write a file that parses back to the same list, and stay within its
/// bounds. Must never panic. Returns whether the bytes parsed.
pub fn paired_list(data: &[u8]) -> bool {
    use crate::state::paired::{MAX_PAIRED, PairedList};
    match PairedList::parse_bytes(data, Path::new(FUZZ_PAIRED_PATH)) {
        Ok(list) => {
            assert!(list.partitions().len() <= MAX_PAIRED);
            let text = list.to_toml();
            let again = PairedList::parse_bytes(text.as_bytes(), Path::new(FUZZ_PAIRED_PATH))
                .unwrap_or_else(|e| panic!("a list written does not parse back: {e}\n{text}"));
            assert_eq!(again, list);
            true
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains(FUZZ_PAIRED_PATH),
                "the refusal does not name the file: {message}"
            );
            false
        }
    }
}

/// Parses arbitrary bytes as the record of the last verified backup (the dashboard's line). A
/// record that parses must be of this format and version, within its bound, and serialise to
/// a record that parses back to itself. Must never panic. Returns whether the bytes parsed.
pub fn last_backup_record(data: &[u8]) -> bool {
    use crate::flows::backup::{LastVerified, MAX_RECORD_LEN, RECORD_FORMAT, RECORD_VERSION};
    let Some(record) = LastVerified::parse(data) else {
        return false;
    };
    assert!(data.len() as u64 <= MAX_RECORD_LEN);
    assert_eq!(
        (record.format.as_str(), record.version),
        (RECORD_FORMAT, RECORD_VERSION)
    );
    let again = serde_json::to_vec(&record).expect("a record serialises");
    assert_eq!(LastVerified::parse(&again).as_ref(), Some(&record));
    true
}
