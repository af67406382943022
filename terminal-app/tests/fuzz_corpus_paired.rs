//! The paired-partitions list fuzz target's body over its corpus, on stable, so CI exercises
//! what `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random texts.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

use terminal_app::fuzzing::paired_list;

use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

const TARGET: &str = "paired_list";

const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn entry(name: &str, address: &str) -> String {
    format!(
        "[[partition]]\nname = \"{name}\"\naddress = \"{address}\"\npartition = \"p1\"\n\
         hsm_key = \"{KEY}\"\npaired = 1764806400\n"
    )
}

#[test]
fn the_paired_list_target_survives_its_corpus() {
    run_corpus(TARGET, paired_list, 12, 4);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    mutate_seeds(TARGET, paired_list, 256, 12);
}

#[test]
fn pseudo_random_texts_are_survived() {
    const ALPHABET: &[u8] = b"[]partition=\"name address tcp:serial:/dev 0123456789abcdef\n#.,";
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let base = format!("version = 1\n{}", entry("a", "tcp:h:1"));
    for _ in 0..2_000 {
        let len = (next() % 60) as usize;
        let mut text = base.clone().into_bytes();
        text.extend((0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]));
        paired_list(&text);
    }
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let dir = corpus_dir(TARGET);
    std::fs::create_dir_all(&dir).unwrap();
    let one = entry("payments", "tcp:hsm1.example:7700");
    let serial = entry("vault", "serial:/dev/ttyUSB0");
    let seeds: Vec<(&str, String)> = vec![
        ("seed-valid-empty", "version = 1\n".to_owned()),
        ("seed-valid-one", format!("version = 1\n\n{one}")),
        (
            "seed-valid-two",
            format!("# comment\nversion = 1\n{one}\n{serial}last_seen = 1764810000\n"),
        ),
        (
            "seed-valid-audit-key",
            format!("version = 1\n{one}audit_key = \"{KEY}\"\n"),
        ),
        ("seed-no-version", one.clone()),
        ("seed-version-two", format!("version = 2\n{one}")),
        (
            "seed-unknown-key",
            format!("version = 1\n{one}colour = \"red\"\n"),
        ),
        (
            "seed-duplicate-name",
            format!("version = 1\n{one}{}", entry("payments", "tcp:other:1")),
        ),
        (
            "seed-bad-address",
            format!("version = 1\n{}", entry("x", "udp:h:1")),
        ),
        (
            "seed-bad-port",
            format!("version = 1\n{}", entry("x", "tcp:h:99999")),
        ),
        (
            "seed-short-key",
            format!("version = 1\n{}", one.replace(KEY, "07")),
        ),
        (
            "seed-empty-name",
            format!("version = 1\n{}", entry("", "tcp:h:1")),
        ),
        (
            "seed-partition-not-table",
            "version = 1\npartition = 1\n".to_owned(),
        ),
    ];
    for (name, text) in seeds {
        std::fs::write(dir.join(name), text).unwrap();
    }
}
