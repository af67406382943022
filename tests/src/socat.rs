//! Two linked pseudo-terminals made by `socat`, for the serial-line tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Two linked pseudo-terminals made by `socat`: what one end writes, the other reads, as over a
/// null-modem cable. The socat process is stopped (by its pid) when this is dropped.
pub struct SocatPair {
    child: Child,
    _dir: tempfile::TempDir,
    /// Path of one end.
    pub a: PathBuf,
    /// Path of the other end.
    pub b: PathBuf,
}

impl SocatPair {
    /// Starts socat and waits (up to five seconds) until both ends exist.
    pub fn start() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("ttyA");
        let b = dir.path().join("ttyB");
        let end = |p: &Path| format!("pty,raw,echo=0,link={}", p.display());
        let child = Command::new("socat")
            .arg(end(&a))
            .arg(end(&b))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start socat ({e}): run scripts/setup to install it"),
                )
            })?;
        let mut pair = SocatPair {
            child,
            _dir: dir,
            a,
            b,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(pair.a.exists() && pair.b.exists()) {
            if let Some(status) = pair.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "socat exited early: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(
                    "socat did not create the ptys in 5 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(pair)
    }

    /// Path of end A as a string.
    pub fn a_str(&self) -> &str {
        self.a.to_str().expect("temp paths are UTF-8")
    }

    /// Path of end B as a string.
    pub fn b_str(&self) -> &str {
        self.b.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for SocatPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
