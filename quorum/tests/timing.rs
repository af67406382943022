//! Rough timings, not a benchmark: run with
//! `cargo test -p quorum --test timing -- --ignored --nocapture` (add `--release` to compare).

use std::time::Instant;

use quorum::card::{Card, Pin};
use quorum::secret::{QuorumBackupKey, RecoverySecret, combine, split, verify_share};
use quorum::soft::{Argon2Params, SoftCard};

#[test]
#[ignore = "prints timings; run on demand"]
fn timings() {
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, commitments) = split(&secret, 3, 5).unwrap();
        for share in &shares {
            verify_share(&commitments, share).unwrap();
        }
        combine(&commitments, 3, &shares[..3]).unwrap();
    }
    println!(
        "3-of-5 split + verify 5 + combine 3 (which verifies 3 again): {:?} per round",
        start.elapsed() / rounds
    );

    let secret = RecoverySecret::generate().unwrap();
    let start = Instant::now();
    for _ in 0..rounds {
        QuorumBackupKey::derive(&secret);
    }
    println!("X-Wing derive: {:?} per key", start.elapsed() / rounds);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.tssc");
    let pass = Pin::from_slice(b"correct horse battery");
    SoftCard::create(
        &path,
        None,
        "TSC-T",
        &pass,
        Argon2Params::production(),
        quorum::CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    let card = SoftCard::open(&path, quorum::CardPolicy::allowed_by_configuration()).unwrap();
    let start = Instant::now();
    let verified = card.verify(&pass).map_err(|(_, e)| e).unwrap();
    println!(
        "soft card verify, Argon2id 64 MiB / 3 passes: {:?}",
        start.elapsed()
    );
    drop(verified);
}
