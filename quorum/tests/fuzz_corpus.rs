//! The share envelope fuzz target's body over its corpus, on stable, so CI exercises what
//! `cargo fuzz` runs on nightly; plus truncations, bit flips and pseudo-random inputs.
//!
//! The seeds are made by `write_seed_corpus` below (ignored; run it with `--ignored` to
//! regenerate them after a format change).

use quorum::envelope::{
    ENVELOPE_LEN_V1, EnvelopeHeader, MAX_ENVELOPE_LEN, ShareContext, seal_share,
};
use quorum::fuzzing::{DUMMY_CARD_SECRET, dummy_context, envelope_parser};
use quorum::secret::{RecoverySecret, split};
use x25519_dalek::{PublicKey, StaticSecret};

use tessera_tests::corpus::{corpus, corpus_dir, run_corpus, xorshift};

const TARGET: &str = "share_envelope";

#[test]
fn the_share_envelope_target_survives_its_corpus() {
    // The valid seeds still open with the dummy card, so the corpus reaches past the parser.
    run_corpus(TARGET, envelope_parser, 10, 2);
}

#[test]
fn truncations_and_bit_flips_of_the_seeds_are_survived() {
    for (path, bytes) in corpus(TARGET) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("seed-") {
            continue;
        }
        let opens = envelope_parser(&bytes);
        for cut in 0..bytes.len() {
            envelope_parser(&bytes[..cut]);
        }
        for bit in 0..bytes.len().min(MAX_ENVELOPE_LEN + 1) * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let flipped_opens = envelope_parser(&flipped);
            // A flipped valid envelope never opens.
            assert!(
                !(opens && flipped_opens),
                "{name} with bit {bit} flipped opened"
            );
        }
    }
}

#[test]
fn pseudo_random_inputs_are_survived() {
    // A fixed xorshift stream: reproducible, and broader than the hand-made seeds. Half the
    // inputs carry the right magic and version, so they reach the cryptography.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for round in 0..2_000 {
        let len = if round % 2 == 0 {
            ENVELOPE_LEN_V1
        } else {
            (next() % 600) as usize
        };
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            bytes[..5].copy_from_slice(b"TSSH\x01");
        }
        assert!(!envelope_parser(&bytes));
    }
}

#[test]
#[ignore = "writes the seed corpus; run with --ignored after a format change"]
fn write_seed_corpus() {
    let dir = corpus_dir(TARGET);
    std::fs::create_dir_all(&dir).unwrap();
    let card_public = PublicKey::from(&StaticSecret::from(DUMMY_CARD_SECRET)).to_bytes();
    let secret = RecoverySecret::generate().unwrap();
    let (shares, _) = split(&secret, 2, 3).unwrap();
    let ctx = dummy_context();
    let valid_a = seal_share(&card_public, &ctx, &shares[0]).unwrap();
    let valid_b = seal_share(&card_public, &ctx, &shares[0]).unwrap();
    let other_context = ShareContext {
        share_index: 2,
        ..ctx.clone()
    };
    let other = seal_share(&card_public, &other_context, &shares[1]).unwrap();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = valid_a.clone();
        f(&mut v);
        v
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("seed-valid-a", valid_a.clone()),
        ("seed-valid-b", valid_b),
        ("seed-valid-other-index", other),
        ("seed-empty", Vec::new()),
        ("seed-magic-only", b"TSSH".to_vec()),
        ("seed-truncated-header", valid_a[..20].to_vec()),
        ("seed-truncated-tag", valid_a[..valid_a.len() - 1].to_vec()),
        ("seed-bad-magic", with(&|v| v[..4].copy_from_slice(b"TSSC"))),
        ("seed-bad-version", with(&|v| v[4] = 2)),
        ("seed-version-zero", with(&|v| v[4] = 0)),
        ("seed-extra-byte", with(&|v| v.push(0))),
        (
            "seed-oversize",
            with(&|v| v.resize(MAX_ENVELOPE_LEN + 1, 0xaa)),
        ),
        ("seed-low-order-ephemeral", with(&|v| v[5..37].fill(0))),
        ("seed-flipped-tag", with(&|v| *v.last_mut().unwrap() ^= 1)),
    ];
    for (name, bytes) in seeds {
        // Every seed is one the parser either accepts or names.
        let _ = EnvelopeHeader::parse(&bytes);
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
