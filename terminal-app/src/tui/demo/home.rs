//! Where the demo keeps its state: `<state>/demo` (see [`layout`]), locked while a demo runs,
//! built in a partial fixture and published by one rename; or, for tests, a temporary
//! directory.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::anyhow_free;
use crate::state::StateDir;

/// The demo state directory's parts (under `<state>/demo`).
pub mod layout {
    /// The finished fixture: published by renaming [`PARTIAL`] once every file is on disk.
    pub const FIXTURE: &str = "fixture";
    /// A fixture being built; one left by an interrupted first start is removed and rebuilt.
    pub const PARTIAL: &str = "fixture.partial";
    /// In a fixture: the HSM's data directory, as `tessera-hsm init` makes it (`device.key`,
    /// `hsm-keys.sealed`, the redb store).
    pub const HSM: &str = "hsm";
    /// In a fixture: the soft card files (the fixture's and those made with `n`).
    pub const CARDS: &str = "cards";
    /// In a fixture: the demo terminal's state directory (its identity key and the HSM's
    /// pinned keys, in the formats of the terminal's own state directory).
    pub const TERMINAL: &str = "terminal";
    /// The lock a running `tessera demo` holds, so that a second one (or a reset) does not
    /// pull the state from under it.
    pub const LOCK: &str = ".lock";
    /// The demo terminal's name for the first demo partition in its `paired.toml` (the
    /// second one's is `passports`: see [`super::super::PARTITIONS`]).
    pub const PAIRED_NAME: &str = "demo";
    /// The address recorded with the pin: the demo's link runs in process and is never
    /// dialled, so the address is one that cannot be (`.invalid` is reserved, RFC 2606).
    pub const PAIRED_ADDRESS: &str = "tcp:demo-in-process.invalid:0";
}

/// Where the demo keeps its HSM, cards and terminal key.
pub(super) enum Home {
    /// Nothing on disk but the cards in a temporary directory (tests).
    Memory(tempfile::TempDir),
    /// Under `<state>/demo`, locked while the demo runs.
    Disk {
        /// `<state>/demo`.
        root: PathBuf,
        /// Whether the fixture was there already (else it is being built in `PARTIAL`).
        built: bool,
        /// The held lock.
        _lock: std::fs::File,
    },
}

impl Home {
    /// Where the fixture is being built (a first start) or is (a later start).
    pub(super) fn fixture(&self) -> PathBuf {
        match self {
            Home::Memory(dir) => dir.path().to_path_buf(),
            Home::Disk { root, built, .. } => root.join(if *built {
                layout::FIXTURE
            } else {
                layout::PARTIAL
            }),
        }
    }

    /// Makes the partial fixture the fixture: everything in it synced, one rename, the parent
    /// synced. Returns the published fixture.
    pub(super) fn publish(&self) -> anyhow_free::Result<PathBuf> {
        let Home::Disk { root, .. } = self else {
            return Ok(self.fixture());
        };
        let partial = root.join(layout::PARTIAL);
        for dir in [layout::HSM, layout::CARDS, layout::TERMINAL] {
            sync_dir(&partial.join(dir))?;
        }
        sync_dir(&partial)?;
        let fixture = root.join(layout::FIXTURE);
        std::fs::rename(&partial, &fixture).map_err(|e| {
            anyhow_free::Error(format!(
                "publishing the demo fixture as {}: {e}",
                fixture.display()
            ))
        })?;
        sync_dir(root)?;
        Ok(fixture)
    }
}

/// Removes the demo state in `root` (`<state>/demo`: the HSM, the cards, the demo terminal's
/// key and pin, the drive directory, all of it), refused while a `tessera demo` runs on it.
/// Nothing there is missing afterwards, so the next start builds the fixture afresh.
pub fn reset(root: &Path) -> Result<(), String> {
    if !root.exists() {
        return Ok(());
    }
    let _lock = lock(root)?;
    remove_tree(root)
}

/// Takes `root`'s lock (creating `root`, 0700, if missing); refused while another
/// `tessera demo` holds it.
pub(super) fn lock(root: &Path) -> Result<std::fs::File, String> {
    private_dir(root).map_err(|e| e.0)?;
    let path = root.join(layout::LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("opening the demo's lock {}: {e}", path.display()))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(format!(
            "another `tessera demo` is running on the demo state in {}: quit it first",
            root.display()
        )),
        Err(e) => Err(format!("locking {}: {e}", path.display())),
    }
}

/// A private (0700) directory, made if missing; refused if it is not private.
pub(super) fn private_dir(path: &Path) -> anyhow_free::Result<()> {
    StateDir::open(path)?;
    Ok(())
}

pub(super) fn remove_tree(path: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", path.display())),
    }
}

fn sync_dir(path: &Path) -> anyhow_free::Result<()> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow_free::Error(format!("syncing {}: {e}", path.display())))
}
