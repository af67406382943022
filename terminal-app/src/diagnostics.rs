//! The terminal's diagnostics: `tracing` events written to `<state>/logs/tessera.log`, never
//! onto the screen (the TUI owns it) nor onto standard error (scripts read that).
//!
//! The file is capped: once it would pass [`MAX_LOG_BYTES`] it is renamed to `tessera.log.1`
//! (replacing an older one) and a new file begun, so at most twice the cap is ever kept. The
//! directory is 0700 and the files 0600. What is logged is what happened (a start, the first
//! frame, the worker ready, a login's role and holders, a refusal's reason, a lost link), never
//! a PIN, a share, a password or key material: no event carries a [`Command`] or an [`Event`]
//! whole, only the fields chosen for it.
//!
//! A panic is logged too, and the panic hook says where the log is after the TUI has restored
//! the terminal ([`install_panic_hook`]).
//!
//! [`Command`]: crate::tui::message::Command
//! [`Event`]: crate::tui::message::Event

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log directory's name in the state directory.
pub const LOG_DIR: &str = "logs";
/// The log file's name.
pub const LOG_FILE: &str = "tessera.log";
/// The size at which the log is rotated.
pub const MAX_LOG_BYTES: u64 = 1 << 20;
/// The environment variable that sets the level (`error`, `warn`, `info`, `debug`, `trace`).
pub const LOG_LEVEL_ENV: &str = "TESSERA_LOG";

/// The log file in `state_dir`.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOG_DIR).join(LOG_FILE)
}

/// Sends this process's `tracing` events to the log file in `state_dir` (at `level`, or
/// `info`), and returns its path. Once per process: a second call leaves the first in place.
pub fn init(state_dir: &Path, level: Option<&str>) -> io::Result<PathBuf> {
    let dir = state_dir.join(LOG_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let path = dir.join(LOG_FILE);
    let file = CappedFile::open(path.clone(), MAX_LOG_BYTES)?;
    let level = level
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(path)
}

/// Logs a panic and, after the hooks installed later (the TUI's, which restores the terminal)
/// have run, says on standard error where the log is.
pub fn install_panic_hook(log: PathBuf) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        previous(info);
        eprintln!(
            "tessera: this is a bug; the diagnostics log is {}",
            log.display()
        );
    }));
}

/// A log file that is rotated once it would pass its cap.
#[derive(Debug)]
pub struct CappedFile {
    path: PathBuf,
    file: File,
    written: u64,
    cap: u64,
}

impl CappedFile {
    /// Opens `path` for appending (0600), rotating it first if it is at its cap already.
    pub fn open(path: PathBuf, cap: u64) -> io::Result<CappedFile> {
        let file = append(&path)?;
        let written = file.metadata()?.len();
        let mut capped = CappedFile {
            path,
            file,
            written,
            cap,
        };
        if capped.written >= cap {
            capped.rotate()?;
        }
        Ok(capped)
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, old)?;
        self.file = append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Write for CappedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if self.written > 0 && self.written.saturating_add(len) > self.cap {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written = self
            .written
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_rotated_at_its_cap_and_one_old_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut file = CappedFile::open(path.clone(), 100).unwrap();
        // One write per line, as the subscriber writes one formatted event.
        for i in 0..12 {
            file.write_all(format!("line {i:02} of the log\n").as_bytes())
                .unwrap();
        }
        let old = std::fs::read_to_string(dir.path().join("tessera.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.len() <= 100 && old.len() <= 100, "{old:?} {new:?}");
        assert!(new.ends_with("line 11 of the log\n"), "{new:?}");
        assert!(old.ends_with("line 09 of the log\n"), "{old:?}");
        // Reopened at its cap, the file is rotated before anything is written.
        drop(file);
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        CappedFile::open(path.clone(), 100).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
