//! The `backup_container` fuzz target's body over its corpus, on stable, so CI exercises what
//! `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random inputs.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change). They double as version-1 golden files: the
//! accepted seeds must keep verifying with the test HSM's key.

use usb_backup::container::{MAGIC, TRAILER_FIXED_LEN};
use usb_backup::fuzzing::{SEED_CHUNK_SIZE, TestHsm, container};

use tessera_tests::corpus::{corpus_dir, mutate_seeds, run_corpus, xorshift};

#[test]
fn the_backup_container_target_survives_its_corpus() {
    // Four seeds verify: the empty backup, one short chunk, two chunks and a full chunk.
    run_corpus("backup_container", container, 6, 2);
}

#[test]
fn truncations_and_bit_flips_of_the_backup_seeds_are_survived() {
    // Every truncation, and every bit flip of the header, the first chunk's start included.
    mutate_seeds("backup_container", container, 1600, 3);
}

#[test]
fn pseudo_random_backups_are_survived() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let (seed, _) = TestHsm::new(1).seal(b"pseudo", SEED_CHUNK_SIZE);
    for round in 0..2_000 {
        let mut bytes = seed.clone();
        // A few random bytes anywhere, or a random length field, or a random tail.
        match round % 3 {
            0 => {
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
            1 => bytes[10..14].copy_from_slice(&((next() % 4096) as u32).to_le_bytes()),
            _ => {
                let cut = (next() as usize) % bytes.len();
                bytes.truncate(cut);
                bytes.extend((0..next() % (TRAILER_FIXED_LEN as u64 * 2)).map(|_| next() as u8));
            }
        }
        assert!(!container(&bytes) || bytes == seed);
    }
}

#[test]
#[ignore = "regenerates the committed seeds"]
fn write_seed_corpus() {
    let hsm = TestHsm::new(1);
    let dir = corpus_dir("backup_container");
    std::fs::create_dir_all(&dir).unwrap();
    let c = SEED_CHUNK_SIZE as usize;
    let body = |n: usize| (0..n).map(|i| (i % 253) as u8).collect::<Vec<u8>>();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("seed-empty-backup", hsm.seal(&[], SEED_CHUNK_SIZE).0),
        (
            "seed-short-backup",
            hsm.seal(b"three key objects", SEED_CHUNK_SIZE).0,
        ),
        ("seed-full-chunk", hsm.seal(&body(c), SEED_CHUNK_SIZE).0),
        ("seed-two-chunks", hsm.seal(&body(c + 1), SEED_CHUNK_SIZE).0),
        (
            "seed-other-hsm",
            TestHsm::new(2).seal(b"x", SEED_CHUNK_SIZE).0,
        ),
        ("seed-magic-only", MAGIC.to_vec()),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
