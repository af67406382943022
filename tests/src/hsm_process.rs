//! The real `tessera-hsm` for the command-line tests of the real `tessera`: the binary of this
//! build (built if missing), its subcommands run to completion, and `serve` on a loopback port,
//! stopped by its own pid.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `tessera-hsm` binary beside `tessera` (`env!("CARGO_BIN_EXE_tessera")`), built from the
/// workspace at `workspace` if missing.
pub fn tessera_hsm(tessera: &Path, workspace: &Path) -> PathBuf {
    let bin = tessera.with_file_name("tessera-hsm");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "-p", "partition-service", "--bin", "tessera-hsm"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building tessera-hsm failed");
    }
    bin
}

/// Runs `tessera-hsm ARGS` to completion; its standard output (it must succeed).
pub fn run(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tessera-hsm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An HSM made in `data` with one partition (soft cards allowed), before it serves: its audit
/// key as `init` prints it (64 hex digits) and a pairing code for the partition.
pub fn init(bin: &Path, data: &str, partition: &str, name: &str) -> (String, String) {
    let printed = run(bin, &["init", data]);
    let audit = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("audit key fingerprint"))
        .unwrap_or_else(|| panic!("{printed}"))
        .trim()
        .to_owned();
    let create = [
        "partition",
        "create",
        partition,
        "--name",
        name,
        "--tier",
        "economy",
    ];
    run(bin, &[&["--data", data][..], &create].concat());
    run(bin, &["--data", data, "soft-cards", "allow"]);
    let issued = run(bin, &["--data", data, "pairing-code", partition]);
    let code = issued.lines().nth(1).unwrap().trim().to_owned();
    (audit, code)
}

/// `tessera-hsm serve` on a loopback port, stopped (by its own pid) when dropped.
pub struct Serving {
    child: Child,
    /// The admin link's address, `127.0.0.1:PORT`.
    pub address: String,
}

impl Serving {
    /// Serves the HSM in `data`.
    pub fn start(bin: &Path, data: &str) -> Serving {
        let mut child = Command::new(bin)
            .args(["--data", data, "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut serving = Serving {
            child,
            address: String::new(),
        };
        serving.address = BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            .find_map(|l| l.strip_prefix("admin link on ").map(str::to_owned))
            .expect("tessera-hsm serve printed its address");
        serving
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
