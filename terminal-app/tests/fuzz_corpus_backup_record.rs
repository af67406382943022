//! The last-verified-backup record's fuzz target body over its corpus, on stable, so CI
//! exercises what `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random
//! texts.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

use terminal_app::fuzzing::last_backup_record;

use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

const TARGET: &str = "last_backup_record";

const VALID: &str = r#"{"format":"tessera-last-verified-backup","version":1,"partition":"demo-partition","hsm":"7f3a9c2e11d04b58","time_unix":1796376600,"drive":"/media/ada/BACKUP-A","file":"demo-partition_2026-12-04T093000Z_seq000268.tsbk","digest":"3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a3f9a"}"#;

#[test]
fn the_record_target_survives_its_corpus() {
    run_corpus(TARGET, last_backup_record, 6, 2);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    mutate_seeds(TARGET, last_backup_record, 512, 6);
}

#[test]
fn pseudo_random_texts_are_survived() {
    const ALPHABET: &[u8] = b"{}[]\":,0123456789.-+eEtruefalsnl \\u/format version";
    let mut next = xorshift(0x51f1_5eed_0dd5_eed5);
    for _ in 0..3_000 {
        let len = (next() % 120) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        last_backup_record(&text);
    }
    assert!(last_backup_record(VALID.as_bytes()));
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let dir = corpus_dir(TARGET);
    std::fs::create_dir_all(&dir).unwrap();
    let long_drive = VALID.replace("/media/ada/BACKUP-A", &"d".repeat(5000));
    let seeds: Vec<(&str, String)> = vec![
        ("seed-valid", VALID.to_owned()),
        (
            "seed-valid-spaced",
            VALID.replace(",", ",\n  ").replace("{", "{\n  "),
        ),
        (
            "seed-other-version",
            VALID.replace("\"version\":1", "\"version\":2"),
        ),
        (
            "seed-other-format",
            VALID.replace("tessera-last-verified-backup", "tessera-log-export"),
        ),
        ("seed-unknown-field", VALID.replace("{", "{\"extra\":true,")),
        (
            "seed-missing-field",
            VALID.replace(",\"hsm\":\"7f3a9c2e11d04b58\"", ""),
        ),
        ("seed-too-long", long_drive),
        ("seed-not-json", "version = 1\n".to_owned()),
    ];
    for (name, text) in seeds {
        std::fs::write(dir.join(name), text).unwrap();
    }
}
