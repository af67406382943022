//! Verifying a 1,000,000-entry export file read from disk, against `sha256sum` over the same
//! file, in one run (budget: under a second, and faster than `sha256sum`; DESIGN.md,
//! "Performance budgets").
//!
//! ```text
//! cargo bench -p audit-log --bench export_verify
//! ```
//!
//! Writes the export into a temporary directory with [`ExportWriter`] (every 1,000th entry a
//! PSO quorum's configuration change, the others the technical user's key operations, with
//! checkpoints by the default policy), then times, three times each, [`verify_export`] over the
//! open file (what `tessera log verify` runs) and `sha256sum` over the same file. Both read
//! through the page cache: the file was just written. Beside the wall-clock times it prints the
//! CPU time of each (all threads), which other work on a shared machine changes far less: the
//! wall-clock budget holds on idle cores when verify_export's CPU time over its thread count is
//! under a second and under sha256sum's. `TESSERA_BENCH_LOG_ENTRIES` changes the
//! entry count; `TESSERA_BIN=target/release/tessera` also times the `tessera log verify` binary
//! on the same file (build it first: `cargo build --release -p terminal-app`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use audit_log::{
    Actor, AuditSigner, Chain, CheckpointPolicy, EntryDraft, ExportHeader, ExportId,
    ExportVerifier, ExportWriter, KeyPin, Operation, Outcome, Role, verify_export, verify_log,
};

const RUNS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries: u64 = std::env::var("TESSERA_BENCH_LOG_ENTRIES")
        .ok()
        .map_or(Ok(1_000_000), |v| v.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("export.jsonl");
    let signer = AuditSigner::from_secret_bytes(&[0x42; 32]);
    let build = Instant::now();
    write_export(&path, &signer, entries)?;
    let size = std::fs::metadata(&path)?.len();
    let mib = size as f64 / (1024.0 * 1024.0);
    println!(
        "export: {entries} entries, {mib:.1} MiB, written in {:.2?}",
        build.elapsed()
    );

    let mut verify = Vec::new();
    let mut sha = Vec::new();
    let mut in_memory = Vec::new();
    // CPU seconds (all threads), which other work on the machine changes far less than the
    // wall-clock time: verify's and verify_log's from this process, sha256sum's as a child's.
    let (mut verify_cpu, mut memory_cpu, mut sha_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut cli = Vec::new();
    let tessera = std::env::var_os("TESSERA_BIN");
    let fingerprint = signer.public().fingerprint().to_string();
    let bytes = std::fs::read(&path)?;
    let body = log_lines(&bytes);
    for _ in 0..RUNS {
        let start = Instant::now();
        let cpu = cpu_seconds();
        let report = verify_log(
            signer.public(),
            Some((0, audit_log::genesis_hash("bank-1"))),
            body,
        )?;
        in_memory.push(start.elapsed());
        memory_cpu.push(cpu_seconds().0 - cpu.0);
        assert_eq!(report.entries(), entries);

        let start = Instant::now();
        let cpu = cpu_seconds();
        let report = verify_export(
            File::open(&path)?,
            ExportVerifier::new(KeyPin::Key(signer.public())),
        )?;
        verify.push(start.elapsed());
        verify_cpu.push(cpu_seconds().0 - cpu.0);
        assert_eq!(report.entries(), entries);

        if let Some(bin) = &tessera {
            let start = Instant::now();
            let out = Command::new(bin)
                .args(["log", "verify"])
                .arg(&path)
                .args(["--key", &fingerprint])
                .output()?;
            cli.push(start.elapsed());
            assert!(out.status.success(), "tessera log verify failed");
        }

        let start = Instant::now();
        let cpu = cpu_seconds();
        let out = Command::new("sha256sum").arg(&path).output()?;
        sha.push(start.elapsed());
        sha_cpu.push(cpu_seconds().1 - cpu.1);
        assert!(out.status.success(), "sha256sum failed");
    }
    drop(bytes);
    let (v, s, m) = (best(&verify), best(&sha), best(&in_memory));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    println!(
        "verify_export (file, {threads} threads): {v:.3?} best of {RUNS} ({:.0} MiB/s, {:.0} entries/s)",
        mib / v.as_secs_f64(),
        entries as f64 / v.as_secs_f64()
    );
    println!("verify_log (log lines in memory, for scale): {m:.3?} best of {RUNS}");
    println!(
        "sha256sum (same file):           {s:.3?} best of {RUNS} ({:.0} MiB/s)",
        mib / s.as_secs_f64()
    );
    if !cli.is_empty() {
        let c = best(&cli);
        println!(
            "tessera log verify (the binary, same file): {c:.3?} best of {RUNS} (ratio to \
             sha256sum {:.2})",
            c.as_secs_f64() / s.as_secs_f64()
        );
    }
    let least = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (vc, mc, sc) = (least(&verify_cpu), least(&memory_cpu), least(&sha_cpu));
    println!(
        "CPU time: verify_export {vc:.2} s, verify_log {mc:.2} s, sha256sum {sc:.2} s \
         (verify_export / verify_log {:.2}; on {threads} idle cores verify_export would take \
         about {:.2} s)",
        vc / mc,
        vc / threads as f64
    );
    // Other work on the machine slows both sides; say how much there was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = load.split_whitespace().next().unwrap_or("?");
        println!("machine load (1-minute average): {one_minute} on {threads} cores");
    }
    println!(
        "ratio verify / sha256sum: {:.2} (budget: below 1.00, and verify below 1 s: {})",
        v.as_secs_f64() / s.as_secs_f64(),
        if v < Duration::from_secs(1) && v < s {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

/// CPU seconds used so far by this process (all its threads) and by its waited-for children,
/// from `/proc/self/stat` (user and system time, in clock ticks of 1/100 s); zeros where there
/// is no `/proc`.
fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> f64 {
        after
            .split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (field(14) + field(15), field(16) + field(17))
}

/// The log lines of an export: without its header and closing lines.
fn log_lines(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let body = &bytes[..bytes.len() - 1];
    let end = body
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

/// An export of `entries` entries from genesis, as the HSM would stream it.
fn write_export(
    path: &std::path::Path,
    signer: &AuditSigner,
    entries: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let partition = "bank-1";
    let header = ExportHeader {
        hsm: "hsm-0123456789abcdef".into(),
        partition: partition.into(),
        key: signer.public(),
        export: ExportId([7; 16]),
        from: 1,
        to: entries,
        anchor: None,
    };
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut writer = ExportWriter::new(file, &header)?;
    let policy = CheckpointPolicy::default();
    let (sign, change) = (
        Operation::new("key.sign")?,
        Operation::new("config.change")?,
    );
    let mut chain = Chain::for_log(partition);
    let t0 = 1_732_377_600_000u64;
    let mut line = Vec::with_capacity(512);
    for i in 1..=entries {
        let administrative = i.is_multiple_of(1_000);
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
        line.clear();
        chain.append(draft)?.encode_into(&mut line);
        writer.write_line(&line)?;
        if policy.due(chain.entries_since_checkpoint(), administrative) {
            line.clear();
            chain.checkpoint(signer, t0 + i).encode_into(&mut line);
            writer.write_line(&line)?;
        }
    }
    let end = signer.sign_export_end(&header, chain.last_hash(), t0 + entries + 1)?;
    let mut file = writer.finish(&end)?;
    file.flush()?;
    Ok(())
}
