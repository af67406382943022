//! Verify time for a 64 MiB image against `sha512sum` over the same file, in the same run.
//! Budget (DESIGN.md): verifying an image is no slower than `sha512sum` hashing it. Verification
//! hashes every payload byte once (into its file's SHA-512; the payload digest is derived from
//! those), files on two threads, and checks the signatures. Two images: 16 files of 4 MiB (both
//! threads busy) and one file of 64 MiB (a file's SHA-512 is sequential: one thread, the worst
//! case). Prints the ratio and the CPU time per byte of each; asserts nothing about time.
//!
//! `cargo bench -p firmware-image --bench verify`

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use firmware_image::image::build::build_image;
use firmware_image::image::verify::verify_file;
use sha2::{Digest, Sha512};

const IMAGE_MIB: usize = 64;
const RUNS: usize = 7;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// CPU time (user + system) so far of this process's threads and of its waited-for children,
/// from `/proc/self/stat` (fields 14 to 17, in clock ticks).
fn cpu_times() -> (Duration, Duration) {
    let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("a process name") + 2..];
    let ticks: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|t| t.parse().expect("a tick count"))
        .collect();
    let tick = Duration::from_secs(1) / rustix::param::clock_ticks_per_second() as u32;
    (
        tick * (ticks[0] + ticks[1]) as u32,
        tick * (ticks[2] + ticks[3]) as u32,
    )
}

fn make_root(dir: &Path, files: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..files {
        let sub = dir.join(format!("part{}", i % 4));
        fs::create_dir_all(&sub).unwrap();
        let mut bytes = vec![0u8; (IMAGE_MIB / files) << 20];
        for chunk in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        fs::write(sub.join(format!("file{i}.bin")), bytes).unwrap();
    }
}

/// Builds and signs an image of `files` files in `work`.
fn image(work: &Path, files: usize) -> PathBuf {
    let root = work.join(format!("root-{files}"));
    make_root(&root, files);
    let template = work.join("template.toml");
    fs::write(
        &template,
        format!(
            "product = \"tessera-terminal\"\nhardware_id = \"{}\"\nversion = \"1.0.0\"\n\
             rollback_index = 1\n",
            fixtures::HARDWARE_ID
        ),
    )
    .unwrap();
    let unsigned = work.join(format!("bench-{files}.unsigned.tsfw"));
    build_image(&root, &template, 0, &unsigned).unwrap();
    let image = fixtures::sign(&unsigned, &[1, 2]);
    fs::remove_dir_all(&root).unwrap();
    fs::remove_file(&unsigned).unwrap();
    image
}

fn sha512sum(path: &Path) {
    let out = Command::new("sha512sum")
        .arg(path)
        .output()
        .expect("run sha512sum");
    assert!(out.status.success());
}

/// Verify against `sha512sum` on `image`, interleaved; prints both and the ratio.
fn measure(image: &Path, files: usize) {
    let len = fs::metadata(image).unwrap().len();
    let trust = fixtures::trust(0);
    // Warm the page cache and check that the image verifies.
    assert!(verify_file(image, &trust).unwrap().report.passed());
    sha512sum(image);

    let mut verify = Vec::new();
    let mut coreutils = Vec::new();
    let (mut verify_cpu, mut coreutils_cpu) = (Duration::ZERO, Duration::ZERO);
    // Interleaved, so that both meet the same load on a shared machine.
    for _ in 0..RUNS {
        let (own, _) = cpu_times();
        let start = Instant::now();
        assert!(verify_file(image, &trust).unwrap().report.passed());
        verify.push(start.elapsed());
        let (own_after, children) = cpu_times();
        verify_cpu += own_after - own;
        let start = Instant::now();
        sha512sum(image);
        coreutils.push(start.elapsed());
        coreutils_cpu += cpu_times().1 - children;
    }
    let (v, s) = (median(verify), median(coreutils));
    let rate = |d: Duration| len as f64 / d.as_secs_f64() / 1e9;
    println!("image: {len} bytes ({files} file(s)), {RUNS} interleaved runs, medians");
    println!(
        "  firmware verify     {:>8.1} ms  {:.3} GB/s",
        v.as_secs_f64() * 1e3,
        rate(v)
    );
    println!(
        "  sha512sum           {:>8.1} ms  {:.3} GB/s",
        s.as_secs_f64() * 1e3,
        rate(s)
    );
    let per_byte = |cpu: Duration| cpu.as_secs_f64() * 1e9 / (RUNS as f64 * len as f64);
    println!(
        "  CPU time per byte: verify {:.2} ns, sha512sum {:.2} ns (ratio {:.2}; all threads, \
         clock-tick resolution)",
        per_byte(verify_cpu),
        per_byte(coreutils_cpu),
        verify_cpu.as_secs_f64() / coreutils_cpu.as_secs_f64()
    );
    println!(
        "  verify / sha512sum = {:.2} (budget: <= 1.00, no slower than sha512sum) {}",
        v.as_secs_f64() / s.as_secs_f64(),
        if v <= s {
            "within budget"
        } else {
            "OVER BUDGET"
        }
    );
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let mut last = None;
    for files in [16, 1] {
        let image = image(work.path(), files);
        measure(&image, files);
        last = Some(image);
    }

    let bytes = fs::read(last.expect("measured")).unwrap();
    let start = Instant::now();
    let _ = Sha512::digest(&bytes);
    let one_pass = start.elapsed();
    println!(
        "sha2 SHA-512 (one pass in memory, one thread) {:>8.1} ms  {:.3} GB/s",
        one_pass.as_secs_f64() * 1e3,
        bytes.len() as f64 / one_pass.as_secs_f64() / 1e9
    );

    let key = fixtures::key(1);
    let message = [7u8; 93];
    let signature: Signature = key.sign(&message);
    let public: VerifyingKey = key.verifying_key();
    let start = Instant::now();
    for _ in 0..1000 {
        public.verify_strict(&message, &signature).unwrap();
    }
    let per_signature = start.elapsed() / 1000;
    println!(
        "Ed25519 verify_strict  {:>8.1} µs per signature",
        per_signature.as_secs_f64() * 1e6
    );
}
