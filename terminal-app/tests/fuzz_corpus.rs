//! The terminal configuration fuzz target's body over its corpus, on stable, so CI exercises
//! what `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random texts.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

use terminal_app::fuzzing::terminal_config;

use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

const TARGET: &str = "terminal_config";

#[test]
fn the_terminal_config_target_survives_its_corpus() {
    run_corpus(TARGET, terminal_config, 200, 8);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    mutate_seeds(TARGET, terminal_config, 512, 15);
}

#[test]
fn pseudo_random_texts_are_survived() {
    // A fixed xorshift stream over TOML's own characters, so the texts reach the parser and
    // often the keys.
    const ALPHABET: &[u8] = b"version=1 \n[cards]allow_soft_cards=true\"'#.{},-+_0x";
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3_000 {
        let len = (next() % 80) as usize;
        let mut text = b"version = 1\n".to_vec();
        text.extend((0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]));
        terminal_config(&text);
        terminal_config(&text[12..]);
    }
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let dir = corpus_dir(TARGET);
    std::fs::create_dir_all(&dir).unwrap();
    let seeds: &[(&str, &[u8])] = &[
        // Valid.
        (
            "seed-valid-documented",
            b"version = 1\n\n[cards]\n# Soft cards.\nallow_soft_cards = false\n",
        ),
        (
            "seed-valid-soft-cards",
            b"# the terminal\nversion = 1\n\n[cards]\nallow_soft_cards = true\n",
        ),
        ("seed-valid-minimal", b"version = 1\n"),
        ("seed-valid-empty-section", b"version = 1\n[cards]\n"),
        (
            "seed-valid-dotted",
            b"version = 1\ncards.allow_soft_cards = true\n",
        ),
        (
            "seed-valid-inline-table",
            b"version = 1\ncards = { allow_soft_cards = true }\n",
        ),
        (
            "seed-valid-crlf",
            b"version = 1\r\n[cards]\r\nallow_soft_cards = true\r\n",
        ),
        ("seed-valid-hex-version", b"version = 0x1\n"),
        // Invalid.
        ("seed-empty", b""),
        ("seed-no-version", b"[cards]\nallow_soft_cards = true\n"),
        (
            "seed-version-two",
            b"version = 2\n[cards]\nallow_soft_cards = true\n[drives]\nallow = []\n",
        ),
        ("seed-version-string", b"version = \"1\"\n"),
        ("seed-version-float", b"version = 1.0\n"),
        ("seed-version-table", b"[version]\nx = 1\n"),
        (
            "seed-unknown-key",
            b"version = 1\n[cards]\nallow_soft_card = true\n",
        ),
        ("seed-unknown-section", b"version = 1\n[link]\nport = 1\n"),
        (
            "seed-wrong-type",
            b"version = 1\n[cards]\nallow_soft_cards = \"yes\"\n",
        ),
        (
            "seed-broken-header",
            b"version = 1\n[cards\nallow_soft_cards = true\n",
        ),
        ("seed-duplicate-key", b"version = 1\nversion = 1\n"),
        (
            "seed-duplicate-section",
            b"version = 1\n[cards]\n[cards]\nallow_soft_cards = true\n",
        ),
        ("seed-cards-not-table", b"version = 1\ncards = 1\n"),
        (
            "seed-array-of-tables",
            b"version = 1\n[[cards]]\nallow_soft_cards = true\n",
        ),
        ("seed-unterminated-string", b"version = 1\nx = \"abc\n"),
        (
            "seed-multibyte",
            b"version = 1\n# caf\xc3\xa9 \xe2\x9c\x93\n[cards]\nallow_soft_cards = tru\n",
        ),
        ("seed-not-utf8", b"version = 1\n# caf\xe9\n"),
        (
            "seed-nested-arrays",
            b"version = 1\nx = [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n",
        ),
        (
            "seed-nested-inline",
            b"version = 1\nx = {a={a={a={a={a={a={a={}}}}}}}}\n",
        ),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
