//! Bodies of the terminal's fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and the ordinary
//! corpus test `terminal-app/tests/fuzz_corpus.rs`, so that CI exercises them on the stable
//! toolchain.

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
