//! How long verifying 1,000,000 entries takes (budget: under a second, and faster than
//! `sha256sum` over the same bytes; see DESIGN.md, "Performance budgets").
//!
//! ```text
//! cargo run --release -p audit-log --example verify_speed [entries [administrative-every]]
//! ```
//!
//! Builds the log in memory: every `administrative-every`-th entry (default 1,000) a PSO
//! quorum's configuration change, the others the technical user's key operations; checkpoints
//! by the default policy (after every administrative event, at least every 1,000 entries) and
//! at the end. Then times [`audit_log::verify_log`] over it (parts on parallel threads), the
//! streaming [`Verifier`] alone (one thread), and one SHA-256 pass over the same bytes for
//! scale. Each checkpoint costs an Ed25519 verification (tens of microseconds), so the
//! checkpoint count matters as well as the entry count.

use std::time::Instant;

use audit_log::{
    Actor, AuditSigner, Chain, CheckpointPolicy, EntryDraft, Operation, Outcome, Role, Verifier,
    verify_log,
};
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let administrative_every: u64 = args.next().map_or(Ok(1_000), |n| n.parse())?;
    let signer = AuditSigner::from_secret_bytes(&[0x42; 32]);
    let policy = CheckpointPolicy::default();
    let sign = Operation::new("key.sign")?;
    let change = Operation::new("config.change")?;
    let mut chain = Chain::new();
    let mut log = Vec::with_capacity(entries as usize * 260);
    let t0 = 1_732_377_600_000u64;

    let build = Instant::now();
    for i in 1..=entries {
        let administrative = i.is_multiple_of(administrative_every.max(1));
        let draft = if administrative {
            EntryDraft::new(
                t0 + i,
                Actor::new(Role::Pso, ["Alice Meier", "Zoë Müller"]),
                change.clone(),
                Outcome::Ok,
            )
            .with_object("partition")
            .with_detail("param", "key-export")
            .with_detail("old", "off")
            .with_detail("new", "wrapped")
        } else {
            EntryDraft::new(
                t0 + i,
                Actor::new(Role::TechnicalUser, Vec::<String>::new()),
                sign.clone(),
                Outcome::Ok,
            )
            .with_object(format!(
                "key/{:016x}",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ))
        };
        chain.append(draft)?.encode_into(&mut log);
        log.push(b'\n');
        if policy.due(chain.entries_since_checkpoint(), administrative) {
            chain.checkpoint(&signer, t0 + i).encode_into(&mut log);
            log.push(b'\n');
        }
    }
    chain
        .checkpoint(&signer, t0 + entries + 1)
        .encode_into(&mut log);
    log.push(b'\n');
    let built = build.elapsed();

    let start = Instant::now();
    let report = verify_log(signer.public(), None, &log)?.require_signed_to_end()?;
    let verify = start.elapsed();

    let start = Instant::now();
    let mut verifier = Verifier::new(signer.public(), None);
    for line in log[..log.len() - 1].split(|&b| b == b'\n') {
        verifier.push_line(line)?;
    }
    let streamed = verifier.finish()?;
    let stream = start.elapsed();
    assert_eq!(streamed, report);

    let start = Instant::now();
    let digest = Sha256::digest(&log);
    let sha = start.elapsed();

    let mib = log.len() as f64 / (1024.0 * 1024.0);
    println!(
        "log: {} entries, {} checkpoints, {} lines, {:.1} MiB (built in {:.2?})",
        report.entries(),
        report.checkpoints(),
        report.lines(),
        mib,
        built
    );
    println!(
        "verify_log:           {:.3?}  ({:.0} entries/s, {:.0} MiB/s; {} threads)",
        verify,
        report.entries() as f64 / verify.as_secs_f64(),
        mib / verify.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
    );
    println!(
        "Verifier, one thread: {:.3?}  ({:.0} entries/s, {:.0} MiB/s)",
        stream,
        report.entries() as f64 / stream.as_secs_f64(),
        mib / stream.as_secs_f64()
    );
    println!(
        "one SHA-256 pass over the same bytes: {:.3?}  ({:.0} MiB/s, {:02x}{:02x}..)",
        sha,
        mib / sha.as_secs_f64(),
        digest[0],
        digest[1]
    );
    Ok(())
}
