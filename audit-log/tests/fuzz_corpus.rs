//! The log export fuzz target's body over its corpus, on stable, so CI exercises what
//! `cargo fuzz` runs on nightly; plus truncations and bit flips of the seeds, and line-level
//! shuffles of a good export.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

use audit_log::AuditSigner;
use audit_log::fuzzing::{FUZZ_AUDIT_SECRET, log_export};
use audit_log::testkit::TestLog;

use tessera_tests::corpus::{corpus_dir, run_corpus, seeds, xorshift};

const TARGET: &str = "log_export";

#[test]
fn the_log_export_target_survives_its_corpus() {
    run_corpus(TARGET, log_export, 200, 5);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    // Every seed is a few kilobytes and each run verifies it twice: cut at every 29th byte and
    // at every line end, and flip every 31st bit, rather than every byte and bit.
    let seeds = seeds(TARGET);
    assert!(seeds.len() >= 20, "{} seeds", seeds.len());
    for (_, bytes) in seeds {
        for cut in (0..bytes.len()).step_by(29) {
            log_export(&bytes[..cut]);
        }
        for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            log_export(&bytes[..i]);
            log_export(&bytes[..=i]);
        }
        for bit in (0..bytes.len() * 8).step_by(31) {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            log_export(&flipped);
        }
    }
}

#[test]
fn shuffled_lines_are_survived() {
    let lines = good().1;
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..300 {
        let mut shuffled = lines.clone();
        for _ in 0..1 + next() % 3 {
            let len = shuffled.len();
            let (a, b) = (next() as usize % len, next() as usize % len);
            match next() % 3 {
                0 => shuffled.swap(a, b),
                1 => {
                    let l = shuffled[a].clone();
                    shuffled.insert(b, l);
                }
                _ => {
                    shuffled.remove(a);
                }
            }
        }
        log_export(&join(&shuffled));
    }
}

fn log() -> TestLog {
    TestLog::new(
        AuditSigner::from_secret_bytes(&FUZZ_AUDIT_SECRET),
        "hsm-0123456789abcdef",
        "bank-1",
    )
}

fn good() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut log = log();
    log.append(8);
    let bytes = log.export(1, 8, 1);
    let lines = bytes[..bytes.len() - 1]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    (bytes, lines)
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let dir = corpus_dir(TARGET);
    std::fs::create_dir_all(&dir).unwrap();
    let (bytes, lines) = good();
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![("seed-valid-from-genesis", bytes.clone())];

    let mut l = log();
    l.append(12);
    let _ = l.export(1, 7, 1);
    seeds.push(("seed-valid-anchored", l.export(8, 12, 2)));
    seeds.push(("seed-valid-unanchored", l.export(5, 12, 3)));
    seeds.push(("seed-valid-empty", l.export(13, 12, 4)));
    l.prune_through(7);
    l.append(3);
    seeds.push(("seed-valid-after-pruning", l.export(8, 15, 5)));
    seeds.push(("seed-valid-empty-log", log().export(1, 0, 6)));

    let edit = |i: usize, from: &str, to: &str| {
        let mut t = lines.clone();
        t[i] = String::from_utf8(t[i].clone())
            .unwrap()
            .replacen(from, to, 1)
            .into_bytes();
        join(&t)
    };
    let last = lines.len() - 1;
    seeds.push(("seed-edited-object", edit(3, "key/", "kex/")));
    seeds.push(("seed-edited-header-range", edit(0, "\"to\":8", "\"to\":7")));
    seeds.push((
        "seed-edited-closing-signature",
        edit(last, "\"sig\":\"", "\"sig\":\"0"),
    ));
    seeds.push((
        "seed-version-two",
        edit(0, "\"version\":1", "\"version\":2"),
    ));
    let mut t = lines.clone();
    t.remove(4);
    seeds.push(("seed-removed-entry", join(&t)));
    let mut t = lines.clone();
    t.swap(3, 4);
    seeds.push(("seed-swapped-pair", join(&t)));
    let mut t = lines.clone();
    t.insert(6, lines[2].clone());
    seeds.push(("seed-inserted-entry", join(&t)));
    let mut t = lines.clone();
    t.push(lines[3].clone());
    seeds.push(("seed-line-after-closing", join(&t)));
    let cp = lines
        .iter()
        .position(|l| l.starts_with(b"{\"checkpoint\":"))
        .unwrap();
    seeds.push(("seed-cut-after-inner-checkpoint", join(&lines[..=cp])));
    seeds.push((
        "seed-truncated-last-line",
        bytes[..bytes.len() - 30].to_vec(),
    ));
    seeds.push(("seed-no-final-newline", bytes[..bytes.len() - 1].to_vec()));
    let mut other = TestLog::new(
        AuditSigner::from_secret_bytes(&[0x43; 32]),
        "hsm-0123456789abcdef",
        "bank-1",
    );
    other.append(3);
    seeds.push(("seed-other-hsm", other.export(1, 3, 7)));
    seeds.push(("seed-empty", Vec::new()));
    seeds.push(("seed-not-an-export", b"{\"seq\":1}\nhello\n".to_vec()));
    seeds.push((
        "seed-crlf",
        join(&lines)
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect(),
    ));
    seeds.push((
        "seed-long-line",
        [lines[0].clone(), vec![b'x'; 20_000]].concat(),
    ));
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
