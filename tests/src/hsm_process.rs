//! The real `tessera-hsm` binary for end-to-end tests: built when missing, a data directory
//! initialised, a partition created, a pairing code issued, and `serve` on loopback TCP or a
//! serial line, stopped
//! (by its own pid) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `tessera-hsm` binary beside `sibling` (a binary of the same build, e.g. the test's
/// `CARGO_BIN_EXE_tessera`), built first when missing (`cargo test -p X` builds only X's
/// binaries). `workspace` is the workspace's root.
pub fn tessera_hsm(sibling: &Path, workspace: &Path) -> PathBuf {
    let bin = sibling.with_file_name("tessera-hsm");
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

/// An HSM's data directory, driven through the `tessera-hsm` binary.
pub struct HsmDir {
    bin: PathBuf,
    data: PathBuf,
}

/// `tessera-hsm serve`, stopped by its own pid when dropped.
pub struct Serving {
    child: Child,
    /// Where its admin link listens (`HOST:PORT`, or the serial device).
    pub address: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HsmDir {
    /// `tessera-hsm init DATA`.
    pub fn init(bin: PathBuf, data: PathBuf) -> HsmDir {
        let hsm = HsmDir { bin, data };
        let data = hsm.data.to_str().expect("a UTF-8 path").to_owned();
        hsm.run_raw(&["init", &data]);
        hsm
    }

    /// `tessera-hsm init DATA`, then one partition `partition` named `name` (economy tier, soft
    /// cards allowed), before it serves: the HSM, its audit key's fingerprint as `init` printed
    /// it, and a pairing code for the partition.
    pub fn with_partition(
        bin: PathBuf,
        data: PathBuf,
        partition: &str,
        name: &str,
    ) -> (HsmDir, String, String) {
        let hsm = HsmDir { bin, data };
        let data = hsm.data.to_str().expect("a UTF-8 path").to_owned();
        let printed = hsm.run_raw(&["init", &data]);
        let audit = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("audit key fingerprint"))
            .unwrap_or_else(|| panic!("{printed}"))
            .trim()
            .to_owned();
        let create = ["partition", "create", partition, "--name", name];
        hsm.run(&[&create[..], &["--tier", "economy"]].concat());
        hsm.run(&["soft-cards", "allow"]);
        let (code, _) = hsm.pairing_code(partition);
        (hsm, audit, code)
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    fn run_raw(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tessera-hsm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `tessera-hsm --data DATA ARGS…`; its standard output (a failure panics with its error).
    pub fn run(&self, args: &[&str]) -> String {
        let data = self.data.to_str().expect("a UTF-8 path");
        self.run_raw(&[&["--data", data], args].concat())
    }

    /// A new one-time pairing code for `partition`: the code and the HSM key's fingerprint.
    pub fn pairing_code(&self, partition: &str) -> (String, String) {
        let issued = self.run(&["pairing-code", partition]);
        let code = issued.lines().nth(1).unwrap().trim().to_owned();
        let fingerprint = issued
            .lines()
            .find_map(|l| l.trim().strip_prefix("HSM key fingerprint: "))
            .unwrap()
            .to_owned();
        (code, fingerprint)
    }

    /// `serve --listen 127.0.0.1:0`, once it listens.
    pub fn serve_tcp(&self) -> Serving {
        self.serve_tcp_on("127.0.0.1:0")
    }

    /// `serve --listen LISTEN` (a loopback `HOST:PORT`), once it listens.
    pub fn serve_tcp_on(&self, listen: &str) -> Serving {
        self.serve(&["--listen", listen], "admin link on ")
    }

    /// `serve --serial DEVICE` (a socat pseudo-terminal), once it listens.
    pub fn serve_serial(&self, device: &str) -> Serving {
        self.serve(&["--serial", device], "admin link on serial line ")
    }

    /// `serve ARGS`, once it printed the line that starts with `ready` (the rest of that line
    /// is the address).
    fn serve(&self, args: &[&str], ready: &str) -> Serving {
        let data = self.data.to_str().expect("a UTF-8 path");
        let mut child = Command::new(&self.bin)
            .args(["--data", data, "serve"])
            .args(args)
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
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix(ready).map(str::to_owned))
            .expect("tessera-hsm reports its listener");
        serving
    }
}
