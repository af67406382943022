//! The HSM's own keys, and the data directory that keeps them at rest.
//!
//! Four keys, made once by [`HsmKeys::init`]:
//!
//! | key | kind | used for |
//! |---|---|---|
//! | identity | X25519 static | the Noise admin link (its fingerprint is what terminals pin) |
//! | master | AES-256-GCM | sealing key objects at rest |
//! | backup | X25519 static | receiving backup data keys |
//! | audit | Ed25519 | signing log checkpoints |
//!
//! At rest a data directory holds two files:
//!
//! - `device.key`: 32 random bytes, mode 0600. **This is the simulator's weakness.** In a real
//!   HSM the root key that seals everything else lives in tamper-responding hardware and never
//!   leaves it; here it is an ordinary file next to what it protects. Anyone who can read both
//!   files has every key of the HSM. File permissions are the only protection.
//! - `hsm-keys.sealed`: the four secrets, postcard-encoded and sealed under the device key
//!   with [`seal`](super::seal) and the associated data [`HSM_KEYS_AAD`].
//!
//! Both are written once: `*.partial` first, fsync, then published with a hard link (which,
//! unlike a rename, fails if the name exists, so no key file is ever replaced), the partial
//! removed, and the directory fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hsm_link::keys::{PublicKey, StaticKeypair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::sealed::{self, AeadKey};

/// Name of the device key file in a data directory.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// Name of the sealed key file in a data directory.
pub const HSM_KEYS_FILE: &str = "hsm-keys.sealed";
/// Associated data that seals [`HSM_KEYS_FILE`]; names its format version.
pub const HSM_KEYS_AAD: &[u8] = b"tessera hsm keys v1";
/// What every HSM id starts with.
pub const HSM_ID_PREFIX: &str = hsm_link::keys::HSM_ID_PREFIX;
/// Mode of both key files.
const KEY_FILE_MODE: u32 = 0o600;
/// Mode of a data directory that `init` creates.
const DATA_DIR_MODE: u32 = 0o700;
/// Length of the device key.
const DEVICE_KEY_LEN: usize = 32;
/// The postcard encoding of [`StoredKeysV1`]: four 32-byte arrays, one byte per element.
const STORED_KEYS_LEN: usize = 4 * 32;
/// Largest sealed key file `load` reads; the real one is `STORED_KEYS_LEN + SEALED_OVERHEAD`.
const MAX_KEYS_FILE_LEN: u64 = 4096;

/// The four secrets as sealed in [`HSM_KEYS_FILE`].
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredKeysV1 {
    identity: [u8; 32],
    master: [u8; 32],
    backup: [u8; 32],
    audit: [u8; 32],
}

/// The HSM's own keys. Not `Clone`; every secret is zeroized on drop; `Debug` shows the HSM id
/// and public fingerprints only.
pub struct HsmKeys {
    identity: StaticKeypair,
    master: AeadKey,
    backup: Zeroizing<[u8; 32]>,
    audit: ed25519_dalek::SigningKey,
}

impl HsmKeys {
    /// Four fresh keys from the operating system's random number generator, in memory only.
    pub fn generate() -> Result<Self, CryptoError> {
        let identity = StaticKeypair::generate()?;
        let master = AeadKey::generate()?;
        let mut backup = Zeroizing::new([0u8; 32]);
        getrandom::fill(backup.as_mut())?;
        let mut audit = Zeroizing::new([0u8; 32]);
        getrandom::fill(audit.as_mut())?;
        Ok(HsmKeys {
            identity,
            master,
            backup,
            audit: ed25519_dalek::SigningKey::from_bytes(&audit),
        })
    }

    /// Makes a new HSM in `dir`: generates the keys and a device key, and writes
    /// [`DEVICE_KEY_FILE`] and [`HSM_KEYS_FILE`]. Creates `dir` (mode 0700) if it is missing.
    ///
    /// Refuses with [`CryptoError::AlreadyInitialised`] if either file exists: keys are never
    /// overwritten. If writing the sealed file fails, the device key just written is removed
    /// again, so `init` can be retried.
    pub fn init(dir: &Path) -> Result<HsmKeys, CryptoError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DATA_DIR_MODE)
            .create(dir)
            .map_err(io_error("create the data directory", dir))?;
        let device_path = dir.join(DEVICE_KEY_FILE);
        let keys_path = dir.join(HSM_KEYS_FILE);
        for path in [&device_path, &keys_path] {
            if exists(path)? {
                return Err(CryptoError::AlreadyInitialised { path: path.clone() });
            }
        }

        let keys = HsmKeys::generate()?;
        let device = AeadKey::generate()?;
        let sealed = keys.seal(&device)?;

        write_new(dir, DEVICE_KEY_FILE, device.secret_bytes())?;
        if let Err(err) = write_new(dir, HSM_KEYS_FILE, &sealed) {
            // The device key has sealed nothing that exists: take it back so that the
            // directory is as it was and `init` can run again.
            let _ = fs::remove_file(&device_path);
            let _ = sync_dir(dir);
            return Err(err);
        }
        Ok(keys)
    }

    /// Loads the keys `init` wrote to `dir`.
    ///
    /// Refuses a device key that others than its owner can read, and says which file is
    /// missing, damaged or does not match its partner.
    pub fn load(dir: &Path) -> Result<HsmKeys, CryptoError> {
        let device_path = dir.join(DEVICE_KEY_FILE);
        let keys_path = dir.join(HSM_KEYS_FILE);
        match (exists(&device_path)?, exists(&keys_path)?) {
            (true, true) => {}
            (false, false) => {
                return Err(CryptoError::NotInitialised {
                    dir: dir.to_path_buf(),
                });
            }
            (false, true) => return Err(CryptoError::MissingKeyFile { path: device_path }),
            (true, false) => return Err(CryptoError::MissingKeyFile { path: keys_path }),
        }
        let device = read_device_key(&device_path)?;
        let sealed = read_bounded(&keys_path, MAX_KEYS_FILE_LEN).map_err(|err| match err {
            ReadError::Io(source) => CryptoError::Io {
                action: "read",
                path: keys_path.clone(),
                source,
            },
            ReadError::TooLarge(len) => CryptoError::KeysFileUnreadable {
                path: keys_path.clone(),
                source: Box::new(CryptoError::TooLarge {
                    what: "sealed key file",
                    len: usize::try_from(len).unwrap_or(usize::MAX),
                    max: MAX_KEYS_FILE_LEN as usize,
                }),
            },
        })?;
        HsmKeys::unseal(&device, &sealed).map_err(|source| CryptoError::KeysFileUnreadable {
            path: keys_path,
            source: Box::new(source),
        })
    }

    /// The four secrets sealed under `device`.
    fn seal(&self, device: &AeadKey) -> Result<Vec<u8>, CryptoError> {
        let stored = StoredKeysV1 {
            identity: *self.identity.secret_bytes(),
            master: *self.master.secret_bytes(),
            backup: *self.backup,
            audit: self.audit.to_bytes(),
        };
        let mut buf = Zeroizing::new([0u8; STORED_KEYS_LEN]);
        let encoded = postcard::to_slice(&stored, buf.as_mut()).map_err(|_| corrupt_record())?;
        sealed::seal(device, HSM_KEYS_AAD, encoded)
    }

    /// The keys from the sealed key file's bytes.
    fn unseal(device: &AeadKey, sealed: &[u8]) -> Result<HsmKeys, CryptoError> {
        let plain = sealed::open(device, HSM_KEYS_AAD, sealed)?;
        let (stored, rest) =
            postcard::take_from_bytes::<StoredKeysV1>(&plain).map_err(|_| corrupt_record())?;
        if !rest.is_empty() {
            return Err(corrupt_record());
        }
        Ok(HsmKeys {
            identity: StaticKeypair::from_secret(Zeroizing::new(stored.identity)),
            master: AeadKey::from_bytes(Zeroizing::new(stored.master)),
            backup: Zeroizing::new(stored.backup),
            audit: ed25519_dalek::SigningKey::from_bytes(&stored.audit),
        })
    }

    /// The identity key pair, for the admin link.
    pub fn identity(&self) -> &StaticKeypair {
        &self.identity
    }

    /// The identity's public key, the one terminals pin.
    pub fn identity_public(&self) -> PublicKey {
        self.identity.public()
    }

    /// A short id for this HSM: [`HSM_ID_PREFIX`] and 16 hex digits of SHA-256 over a domain
    /// label and the identity public key. Stable for the HSM's life; not a secret.
    pub fn hsm_id(&self) -> String {
        // Computed in hsm-link, so a terminal finds the id from the link key it pinned.
        self.identity.public().hsm_id()
    }

    /// The master key, which seals key objects at rest.
    pub fn master(&self) -> &AeadKey {
        &self.master
    }

    /// The backup key's X25519 secret, for unwrapping backup data keys.
    pub fn backup_secret(&self) -> &[u8; 32] {
        &self.backup
    }

    /// The backup key's X25519 public key, that backups wrap their data key to.
    pub fn backup_public(&self) -> [u8; 32] {
        StaticKeypair::from_secret(Zeroizing::new(*self.backup))
            .public()
            .0
    }

    /// The audit signing key, for signing log checkpoints.
    pub fn audit_signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.audit
    }

    /// The audit key as the log crate's signer (a second zeroizing copy of the secret).
    pub fn audit_signer(&self) -> audit_log::AuditSigner {
        audit_log::AuditSigner::from_secret_bytes(self.audit.as_bytes())
    }

    /// The audit key's public half, that log verifiers pin.
    pub fn audit_public(&self) -> ed25519_dalek::VerifyingKey {
        self.audit.verifying_key()
    }

    /// The audit key's fingerprint, as `audit-log` computes and shows it (SHA-256 over
    /// [`audit_log::FINGERPRINT_DOMAIN`] and the key; `Display` gives eight groups of four hex
    /// digits).
    pub fn audit_fingerprint(&self) -> audit_log::AuditKeyFingerprint {
        let mut h = Sha256::new();
        h.update(audit_log::FINGERPRINT_DOMAIN);
        h.update(self.audit.verifying_key().as_bytes());
        audit_log::Fingerprint(h.finalize().into())
    }
}

impl std::fmt::Debug for HsmKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKeys")
            .field("hsm_id", &self.hsm_id())
            .field("identity", &self.identity.public().fingerprint())
            .field("audit", &self.audit_fingerprint())
            .finish_non_exhaustive()
    }
}

fn corrupt_record() -> CryptoError {
    CryptoError::CorruptRecord {
        what: "HSM key record",
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CryptoError {
    let path = path.to_path_buf();
    move |source| CryptoError::Io {
        action,
        path,
        source,
    }
}

/// Whether anything (even a dangling link) has this name.
fn exists(path: &Path) -> Result<bool, CryptoError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(io_error("inspect", path)(err)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync the directory", dir))
}

/// Writes `bytes` to `dir/name`, which must not exist: to `name.partial`, fsynced, then
/// published with a hard link, which fails rather than replace an existing file.
fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CryptoError> {
    let path = dir.join(name);
    let partial = dir.join(format!("{name}.partial"));
    // A partial file is never published, so one left by an interrupted `init` holds nothing
    // that anything depends on.
    match fs::remove_file(&partial) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("remove the stale file", &partial)(err));
        }
        _ => {}
    }
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(KEY_FILE_MODE)
            .open(&partial)?;
        // The umask may have taken bits away; set exactly the mode meant.
        file.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&partial);
        return Err(CryptoError::Io {
            action: "write",
            path: partial,
            source,
        });
    }
    let linked = fs::hard_link(&partial, &path);
    let _ = fs::remove_file(&partial);
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(CryptoError::AlreadyInitialised { path });
        }
        Err(source) => {
            return Err(CryptoError::Io {
                action: "publish",
                path,
                source,
            });
        }
    }
    sync_dir(dir)
}

fn read_device_key(path: &Path) -> Result<AeadKey, CryptoError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let meta = file.metadata().map_err(io_error("inspect", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::DeviceKeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() != DEVICE_KEY_LEN as u64 {
        return Err(CryptoError::DeviceKeyLength {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
    let short = |err: io::Error| {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            // Shrunk between the length check and the read.
            CryptoError::DeviceKeyLength {
                path: path.to_path_buf(),
                len: 0,
            }
        } else {
            io_error("read", path)(err)
        }
    };
    file.read_exact(key.as_mut()).map_err(short)?;
    Ok(AeadKey::from_bytes(key))
}

enum ReadError {
    Io(io::Error),
    TooLarge(u64),
}

/// Reads a whole file of at most `max` bytes, refusing a larger one before reading it.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    let len = file.metadata().map_err(ReadError::Io)?.len();
    if len > max {
        return Err(ReadError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` also bounds a file that grew after the length check.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SEALED_OVERHEAD;

    /// The length of an intact sealed key file.
    const KEYS_FILE_LEN: usize = STORED_KEYS_LEN + SEALED_OVERHEAD;

    #[test]
    fn init_then_load_gives_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let made = HsmKeys::init(dir.path()).unwrap();
        let loaded = HsmKeys::load(dir.path()).unwrap();
        assert_eq!(loaded.identity_public(), made.identity_public());
        assert_eq!(loaded.hsm_id(), made.hsm_id());
        assert_eq!(loaded.audit_public(), made.audit_public());
        assert_eq!(loaded.audit_fingerprint(), made.audit_fingerprint());
        assert_eq!(loaded.backup_public(), made.backup_public());
        // The master key still opens what the first instance sealed.
        let sealed = sealed::seal(made.master(), b"x", b"object").unwrap();
        assert_eq!(
            sealed::open(loaded.master(), b"x", &sealed)
                .unwrap()
                .as_slice(),
            b"object"
        );
        // No partial files are left behind.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [DEVICE_KEY_FILE, HSM_KEYS_FILE]);
        assert_eq!(
            fs::metadata(dir.path().join(HSM_KEYS_FILE)).unwrap().len() as usize,
            KEYS_FILE_LEN
        );
    }

    #[test]
    fn init_twice_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = HsmKeys::init(dir.path()).unwrap();
        let device = fs::read(dir.path().join(DEVICE_KEY_FILE)).unwrap();
        let sealed = fs::read(dir.path().join(HSM_KEYS_FILE)).unwrap();
        let err = HsmKeys::init(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CryptoError::AlreadyInitialised { path }
                if path.ends_with(DEVICE_KEY_FILE)),
            "{err}"
        );
        assert!(err.to_string().contains("never overwritten"));
        assert_eq!(fs::read(dir.path().join(DEVICE_KEY_FILE)).unwrap(), device);
        assert_eq!(fs::read(dir.path().join(HSM_KEYS_FILE)).unwrap(), sealed);
        assert_eq!(HsmKeys::load(dir.path()).unwrap().hsm_id(), first.hsm_id());

        // Either file alone is enough to refuse.
        fs::remove_file(dir.path().join(DEVICE_KEY_FILE)).unwrap();
        assert!(matches!(
            HsmKeys::init(dir.path()),
            Err(CryptoError::AlreadyInitialised { path }) if path.ends_with(HSM_KEYS_FILE)
        ));
        assert_eq!(fs::read(dir.path().join(HSM_KEYS_FILE)).unwrap(), sealed);
    }

    #[test]
    fn device_key_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        HsmKeys::init(dir.path()).unwrap();
        for name in [DEVICE_KEY_FILE, HSM_KEYS_FILE] {
            let meta = fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
        assert_eq!(
            fs::metadata(dir.path().join(DEVICE_KEY_FILE))
                .unwrap()
                .len(),
            32
        );

        // A device key others can read is refused until it is fixed.
        let path = dir.path().join(DEVICE_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = HsmKeys::load(dir.path()).unwrap_err();
        assert!(
            matches!(err, CryptoError::DeviceKeyPermissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        HsmKeys::load(dir.path()).unwrap();
    }

    #[test]
    fn a_created_data_directory_is_owner_only() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("hsm");
        HsmKeys::init(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn a_tampered_key_file_fails_to_load_clearly() {
        let dir = tempfile::tempdir().unwrap();
        HsmKeys::init(dir.path()).unwrap();
        let path = dir.path().join(HSM_KEYS_FILE);
        let good = fs::read(&path).unwrap();
        for i in [0, 4, 5, 20, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            let err = HsmKeys::load(dir.path()).unwrap_err();
            let CryptoError::KeysFileUnreadable {
                path: named,
                source,
            } = &err
            else {
                panic!("byte {i}: {err}");
            };
            assert_eq!(named, &path);
            let shown = err.to_string();
            assert!(shown.contains(HSM_KEYS_FILE), "{shown}");
            assert!(shown.contains("restore both files"), "{shown}");
            if i >= SEALED_MAGIC_AND_FORMAT {
                assert!(matches!(**source, CryptoError::AuthenticationFailed));
            }
        }
        // Truncated, and replaced by a huge file.
        fs::write(&path, &good[..10]).unwrap();
        assert!(matches!(
            HsmKeys::load(dir.path()),
            Err(CryptoError::KeysFileUnreadable { source, .. })
                if matches!(*source, CryptoError::Truncated { .. })
        ));
        fs::write(&path, vec![0u8; MAX_KEYS_FILE_LEN as usize + 1]).unwrap();
        assert!(matches!(
            HsmKeys::load(dir.path()),
            Err(CryptoError::KeysFileUnreadable { source, .. })
                if matches!(*source, CryptoError::TooLarge { .. })
        ));
        fs::write(&path, &good).unwrap();
        HsmKeys::load(dir.path()).unwrap();
    }

    const SEALED_MAGIC_AND_FORMAT: usize = 5;

    #[test]
    fn files_from_different_inits_do_not_mix() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        HsmKeys::init(a.path()).unwrap();
        HsmKeys::init(b.path()).unwrap();
        fs::copy(b.path().join(HSM_KEYS_FILE), a.path().join(HSM_KEYS_FILE)).unwrap();
        assert!(matches!(
            HsmKeys::load(a.path()),
            Err(CryptoError::KeysFileUnreadable { source, .. })
                if matches!(*source, CryptoError::AuthenticationFailed)
        ));
    }

    #[test]
    fn missing_and_damaged_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            HsmKeys::load(dir.path()),
            Err(CryptoError::NotInitialised { .. })
        ));
        HsmKeys::init(dir.path()).unwrap();
        let device = dir.path().join(DEVICE_KEY_FILE);
        let device_bytes = fs::read(&device).unwrap();

        fs::write(&device, &device_bytes[..31]).unwrap();
        assert!(matches!(
            HsmKeys::load(dir.path()),
            Err(CryptoError::DeviceKeyLength { len: 31, .. })
        ));
        fs::write(&device, [0u8; 32]).unwrap();
        assert!(matches!(
            HsmKeys::load(dir.path()),
            Err(CryptoError::KeysFileUnreadable { .. })
        ));

        fs::remove_file(&device).unwrap();
        let err = HsmKeys::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CryptoError::MissingKeyFile { path } if path == &device),
            "{err}"
        );
        assert!(err.to_string().contains(DEVICE_KEY_FILE));
    }

    #[test]
    fn a_stale_partial_file_does_not_block_init() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("device.key.partial"), b"left by a crash").unwrap();
        HsmKeys::init(dir.path()).unwrap();
        HsmKeys::load(dir.path()).unwrap();
        assert!(!dir.path().join("device.key.partial").exists());
    }

    #[test]
    fn hsm_id_and_fingerprint_forms() {
        let keys = HsmKeys::generate().unwrap();
        let id = keys.hsm_id();
        assert_eq!(id.len(), 4 + 16);
        assert!(id.starts_with("hsm-"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(HsmKeys::generate().unwrap().hsm_id(), id);

        let fp = keys.audit_fingerprint().to_string();
        assert_eq!(fp.len(), 8 * 4 + 7);
        assert_eq!(fp.split(' ').count(), 8);
        // The same fingerprint audit-log shows for the pinned key.
        let pinned = audit_log::AuditKey::from_bytes(&keys.audit_public().to_bytes()).unwrap();
        assert_eq!(pinned.fingerprint(), keys.audit_fingerprint());
        assert_eq!(keys.audit_signer().public(), pinned);
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = HsmKeys::generate().unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.hsm_id()));
        for secret in [
            keys.identity.secret_bytes(),
            keys.master.secret_bytes(),
            &*keys.backup,
            keys.audit.as_bytes(),
        ] {
            crate::crypto::tests::assert_shows_no_secret(&shown, secret);
        }
    }
}
