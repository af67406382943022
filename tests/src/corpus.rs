//! The corpus side of the fuzz targets, shared by the stable corpus tests
//! (`hsm-link/tests/fuzz_corpus.rs`, `quorum/tests/fuzz_corpus.rs`,
//! `quorum/tests/fuzz_corpus_objects.rs`, `terminal-app/tests/fuzz_corpus.rs`,
//! `firmware-image/tests/fuzz_corpus.rs`, `audit-log/tests/fuzz_corpus.rs`,
//! `usb-backup/tests/fuzz_corpus.rs`, `terminal-app/tests/fuzz_corpus_paired.rs`): reading a
//! target's corpus, running a body over it, mutating its seeds, and a fixed pseudo-random stream.
//! Paths are relative to this crate, one level below the repository's root.

use std::path::PathBuf;

/// `fuzz/corpus/<target>`.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of `target`'s corpus, sorted by path.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The hand-made seeds (`seed-*`) of `target`'s corpus, by name.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    corpus(target)
        .into_iter()
        .filter_map(|(path, bytes)| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("seed-").then_some((name, bytes))
        })
        .collect()
}

/// Runs `body` over every file of `target`'s corpus (at least `min_files` of them, at least
/// `min_accepted` accepted); a panic names the input.
pub fn run_corpus(target: &str, body: fn(&[u8]) -> bool, min_files: usize, min_accepted: usize) {
    let files = corpus(target);
    assert!(
        files.len() >= min_files,
        "the {target} corpus shrank to {} files",
        files.len()
    );
    let mut accepted = 0;
    for (path, bytes) in &files {
        let result = std::panic::catch_unwind(|| body(bytes));
        assert!(result.is_ok(), "input {} panicked", path.display());
        accepted += usize::from(result.unwrap_or(false));
    }
    assert!(
        accepted >= min_accepted,
        "only {accepted} {target} corpus inputs are accepted"
    );
}

/// Runs `body` over every truncation of every seed of `target` (at least `min_seeds`) and every
/// single bit flip of its first `max_len` bytes.
pub fn mutate_seeds(target: &str, body: fn(&[u8]) -> bool, max_len: usize, min_seeds: usize) {
    let seeds = seeds(target);
    assert!(
        seeds.len() >= min_seeds,
        "{} seeds in the {target} corpus",
        seeds.len()
    );
    for (_, bytes) in seeds {
        body(&bytes);
        for cut in 0..bytes.len() {
            body(&bytes[..cut]);
        }
        for bit in 0..bytes.len().min(max_len) * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            body(&flipped);
        }
    }
}

/// A fixed xorshift stream: reproducible inputs, broader than the hand-made seeds.
pub fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
