//! The terminal's state directory: its identity key and the HSM partitions it is paired with.
//!
//! Where: `--state-dir DIR`, else `$XDG_STATE_HOME/tessera`, else `~/.local/state/tessera`
//! ([`state_dir_path`]). The directory is created 0700 and refused if it is not this user's or
//! gives anything to group or others; each file is 0600 and refused likewise.
//!
//! - `terminal.key`: the terminal's static X25519 identity key for the link ([`IDENTITY_FILE`]):
//!   the magic `TSTK`, format version 1, and the 32-byte private key; exactly
//!   [`IDENTITY_LEN`] bytes. Made once, on first use, and never overwritten.
//! - `paired.toml`: the paired partitions ([`paired`], `version = 1`).
//!
//! Every file is read with a bound checked before it is read in full, and written atomically
//! (temporary file, fsync, rename, fsync of the directory). The key is not sealed under a
//! passphrase: SECURITY.md says what the permissions protect and what they do not.

mod files;
pub mod paired;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use hsm_link::keys::StaticKeypair;
use zeroize::Zeroizing;

pub use paired::{Address, PairedList, PairedPartition};

use files::{Replace, ensure_private_dir, read_bounded, write_atomically};

/// The state directory's name under `$XDG_STATE_HOME` or `~/.local/state`.
pub const STATE_DIR_NAME: &str = "tessera";
/// The identity key's file.
pub const IDENTITY_FILE: &str = "terminal.key";
/// The paired partitions' file.
pub const PAIRED_FILE: &str = "paired.toml";
/// The lock file that serialises changes to the paired partitions.
pub const LOCK_FILE: &str = ".lock";
/// The identity key file's first bytes.
pub const IDENTITY_MAGIC: &[u8; 4] = b"TSTK";
/// The identity key file's format version.
pub const IDENTITY_VERSION: u8 = 1;
/// The identity key file's length: magic, version, key.
pub const IDENTITY_LEN: usize = IDENTITY_MAGIC.len() + 1 + 32;

/// Why the state directory or a file in it cannot be used. Each names the path and says what
/// to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// No `--state-dir`, no `$XDG_STATE_HOME`, no `$HOME`.
    #[error(
        "no state directory: neither --state-dir, $XDG_STATE_HOME nor $HOME is set; pass \
         --state-dir DIR"
    )]
    NoStateDir,
    /// Reading or writing failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A path that is not the kind expected (or a symbolic link).
    #[error("{} is not a {kind} (symbolic links are not followed): move it away", path.display())]
    NotA {
        /// The path.
        path: PathBuf,
        /// `directory` or `file`.
        kind: &'static str,
    },
    /// A directory or file another user owns or can use.
    #[error(
        "the terminal's state {kind} {} is not private (mode {mode:o}, owner uid {owner}): it \
         holds the terminal's key; make it yours and `chmod {fix:o}` it",
        path.display()
    )]
    NotPrivate {
        /// The path.
        path: PathBuf,
        /// `directory` or `file`.
        kind: &'static str,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// The mode to set.
        fix: u32,
    },
    /// A file larger than its format allows.
    #[error("{} is larger than {max} bytes, which no such file is: check it, or move it away", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: u64,
    },
    /// A file that must not be replaced exists.
    #[error("{} exists already: it was left as it is", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// An identity key file that is not one this build reads.
    #[error(
        "{} is not a terminal key file of version {IDENTITY_VERSION}: {reason}; move it away \
         to make a new key (and pair again)", path.display()
    )]
    BadIdentity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A paired-partitions file that does not parse.
    #[error(transparent)]
    Paired(#[from] paired::PairedError),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl StateError {
    fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StateError {
        StateError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// The state directory to use: `flag` (`--state-dir`), else `$XDG_STATE_HOME/tessera` when
/// that is an absolute path (the XDG rule: a relative one is ignored), else
/// `$HOME/.local/state/tessera`.
pub fn state_dir_path(
    flag: Option<PathBuf>,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, StateError> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(xdg) = xdg_state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(xdg.join(STATE_DIR_NAME));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home)
            .join(".local/state")
            .join(STATE_DIR_NAME)),
        None => Err(StateError::NoStateDir),
    }
}

/// An open state directory (created 0700 if missing).
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Opens the directory at `path`, creating it (0700) if missing; refuses one that is not
    /// private.
    pub fn open(path: impl Into<PathBuf>) -> Result<StateDir, StateError> {
        let path = path.into();
        ensure_private_dir(&path)?;
        Ok(StateDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The terminal's identity key, made (and written) on first use.
    pub fn identity(&self) -> Result<StaticKeypair, StateError> {
        if let Some(key) = self.load_identity()? {
            return Ok(key);
        }
        let key = StaticKeypair::generate().map_err(StateError::Random)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(IDENTITY_LEN));
        bytes.extend_from_slice(IDENTITY_MAGIC);
        bytes.push(IDENTITY_VERSION);
        bytes.extend_from_slice(key.secret_bytes());
        match write_atomically(&self.path, IDENTITY_FILE, &bytes, Replace::Refused) {
            Ok(()) => Ok(key),
            // Another tessera made one at the same moment: use that one.
            Err(StateError::Exists { .. }) => self.load_identity()?.ok_or_else(|| {
                StateError::io(
                    "reading",
                    self.identity_path(),
                    io::ErrorKind::NotFound.into(),
                )
            }),
            Err(e) => Err(e),
        }
    }

    /// The identity key if one was made.
    pub fn load_identity(&self) -> Result<Option<StaticKeypair>, StateError> {
        let path = self.identity_path();
        let Some(bytes) = read_bounded(&path, IDENTITY_LEN as u64)? else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        parse_identity(&bytes)
            .map(Some)
            .map_err(|reason| StateError::BadIdentity { path, reason })
    }

    fn identity_path(&self) -> PathBuf {
        self.path.join(IDENTITY_FILE)
    }

    /// The paired partitions (none if the file does not exist yet).
    pub fn paired(&self) -> Result<PairedList, StateError> {
        let path = self.path.join(PAIRED_FILE);
        match read_bounded(&path, paired::MAX_PAIRED_LEN)? {
            None => Ok(PairedList::default()),
            Some(bytes) => Ok(PairedList::parse_bytes(&bytes, &path)?),
        }
    }

    /// Reads the paired partitions, lets `change` edit them, and writes them back
    /// (atomically) if it returns `true`, all under the directory's lock, so that two
    /// `tessera` processes (a pairing and a status noting when it last saw a partition) never
    /// lose each other's change.
    pub fn update_paired<T>(
        &self,
        change: impl FnOnce(&mut PairedList) -> Result<(T, bool), String>,
    ) -> Result<Result<T, String>, StateError> {
        let _lock = self.lock()?;
        let mut list = self.paired()?;
        let (value, write) = match change(&mut list) {
            Ok(done) => done,
            Err(problem) => return Ok(Err(problem)),
        };
        if write {
            write_atomically(
                &self.path,
                PAIRED_FILE,
                list.to_toml().as_bytes(),
                Replace::Allowed,
            )?;
        }
        Ok(Ok(value))
    }

    /// The directory's lock (`.lock`, an exclusive `flock`), held until dropped.
    fn lock(&self) -> Result<File, StateError> {
        let path = self.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::io("opening", &path, e))?;
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| StateError::io("locking", &path, e.into()))?;
        Ok(file)
    }
}

/// The key in an identity file's bytes, or what is wrong with them.
fn parse_identity(bytes: &[u8]) -> Result<StaticKeypair, &'static str> {
    if bytes.len() != IDENTITY_LEN {
        return Err("its length is wrong");
    }
    if &bytes[..4] != IDENTITY_MAGIC {
        return Err("it does not start with TSTK");
    }
    if bytes[4] != IDENTITY_VERSION {
        return Err("its version is another");
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes[5..]);
    Ok(StaticKeypair::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_directory_comes_from_the_flag_then_xdg_then_home() {
        let flag = Some(PathBuf::from("/s"));
        let xdg = Some(OsString::from("/x"));
        let home = Some(OsString::from("/h"));
        assert_eq!(
            state_dir_path(flag, xdg.clone(), home.clone()).unwrap(),
            PathBuf::from("/s")
        );
        assert_eq!(
            state_dir_path(None, xdg, home.clone()).unwrap(),
            PathBuf::from("/x/tessera")
        );
        // A relative XDG_STATE_HOME is ignored, as the XDG rules say.
        assert_eq!(
            state_dir_path(None, Some(OsString::from("rel")), home).unwrap(),
            PathBuf::from("/h/.local/state/tessera")
        );
        let e = state_dir_path(None, None, Some(OsString::new())).unwrap_err();
        assert!(matches!(e, StateError::NoStateDir), "{e:?}");
    }

    #[test]
    fn the_identity_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("tessera")).unwrap();
        assert!(state.load_identity().unwrap().is_none());
        let key = state.identity().unwrap();
        let again = StateDir::open(state.path()).unwrap().identity().unwrap();
        assert_eq!(key.public(), again.public());
        let path = state.path().join(IDENTITY_FILE);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), IDENTITY_LEN);
        assert_eq!(&bytes[..5], b"TSTK\x01");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn concurrent_updates_of_the_paired_list_lose_nothing() {
        use hsm_link::domain::PartitionId;
        use hsm_link::keys::PublicKey;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera");
        StateDir::open(&path).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = path.clone();
                s.spawn(move || {
                    let state = StateDir::open(path).unwrap();
                    for i in 0..10 {
                        let entry = PairedPartition {
                            name: format!("t{t}-{i}"),
                            address: "tcp:127.0.0.1:1".parse().unwrap(),
                            partition: PartitionId::new("p").unwrap(),
                            hsm_key: PublicKey([t; 32]),
                            audit_key: None,
                            paired_unix: 1,
                            last_seen_unix: None,
                        };
                        state
                            .update_paired(|list| list.upsert(entry).map(|()| ((), true)))
                            .unwrap()
                            .unwrap();
                    }
                });
            }
        });
        let state = StateDir::open(&path).unwrap();
        assert_eq!(state.paired().unwrap().partitions().len(), 40);
        // A change that declines writes nothing; one that fails says why.
        let before = std::fs::read(path.join(PAIRED_FILE)).unwrap();
        let value = state.update_paired(|list| Ok((list.seen("nobody", 5), false)));
        assert!(!value.unwrap().unwrap());
        let refused = state.update_paired(|_| Err::<((), bool), _>("no".to_owned()));
        assert_eq!(refused.unwrap(), Err("no".to_owned()));
        assert_eq!(std::fs::read(path.join(PAIRED_FILE)).unwrap(), before);
    }

    #[test]
    fn a_damaged_or_exposed_identity_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("tessera")).unwrap();
        let path = state.path().join(IDENTITY_FILE);
        state.identity().unwrap();
        let good = std::fs::read(&path).unwrap();
        for (bytes, reason) in [
            (good[..IDENTITY_LEN - 1].to_vec(), "length"),
            ([b"XSTK".as_slice(), &good[4..]].concat(), "TSTK"),
            ([b"TSTK\x02".as_slice(), &good[5..]].concat(), "version"),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let e = state.identity().unwrap_err();
            assert!(matches!(e, StateError::BadIdentity { .. }), "{e:?}");
            assert!(e.to_string().contains(reason), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
        }
        std::fs::write(&path, [&good[..], b"x"].concat()).unwrap();
        let e = state.identity().unwrap_err();
        assert!(matches!(e, StateError::TooLarge { .. }), "{e:?}");
        std::fs::write(&path, &good).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = state.identity().unwrap_err();
        assert!(matches!(e, StateError::NotPrivate { .. }), "{e:?}");
    }
}
