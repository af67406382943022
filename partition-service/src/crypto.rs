//! The simulated HSM's cryptographic core: sealing, the HSM's own keys, and key objects.
//!
//! ```
//! use partition_service::crypto::{self, AeadKey, KeyMaterial, ObjectBinding};
//! use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, PartitionId};
//!
//! let master = AeadKey::generate().unwrap();
//! let partition = PartitionId::new("payments").unwrap();
//! let key = KeyMaterial::generate(KeyKind::Ed25519).unwrap();
//! let attributes = KeyAttributes { extractable: false, sensitive: true, modifiable: false };
//! let at = |id| ObjectBinding { partition: &partition, key_id: KeyId(id), attributes };
//!
//! // At rest a key object is sealed under the master key, bound to its partition, id and
//! // attributes; the trust mark (may it wrap other keys?) is sealed inside.
//! let sealed = crypto::seal_object(&master, at(1), &key, false).unwrap();
//! let key = crypto::open_object(&master, at(1), &sealed).unwrap().material;
//! assert!(crypto::open_object(&master, at(2), &sealed).is_err());
//!
//! let signature = crypto::sign(&key, b"pay 10 CHF").unwrap();
//! crypto::verify(&key, b"pay 10 CHF", &signature).unwrap();
//! ```
//!
//! - **Sealing** (`sealed.rs`): AES-256-GCM (NIST SP 800-38D) in a versioned envelope, `TSEL`,
//!   format 1, a random 96-bit nonce, ciphertext and tag: [`seal`], [`open`], [`AeadKey`].
//! - **The HSM's keys** (`hsm_keys.rs`): identity (X25519, the admin link), master (seals key
//!   objects), backup (X25519, for backups) and audit (Ed25519, signs log checkpoints), kept in
//!   a data directory sealed under a device key: [`HsmKeys`].
//! - **Key objects** (`objects.rs`): [`KeyMaterial`] for AES-256, Ed25519 and ECDSA P-256
//!   (FIPS 186-5), sealed at rest with [`seal_object`], used by [`sign`], [`verify`],
//!   [`encrypt`], [`decrypt`], [`wrap`] and [`unwrap`] (AES key wrap with padding, RFC 5649).
//!
//! This module does no policy: whether a key may be exported, used or destroyed is the
//! partition's configuration, enforced by its callers. It does no storage besides the two files
//! of [`HsmKeys`], and no logging. Secrets in it are zeroized on drop, are not `Clone`, and
//! their `Debug` shows no secret byte.
//!
//! It is part of a **simulator**: the device key that stands in for a hardware root key is an
//! ordinary file (see [`HsmKeys`]), and key material lives in ordinary process memory.

mod hsm_keys;
mod objects;
mod sealed;

use std::fmt;
use std::path::PathBuf;

use hsm_link::domain::KeyKind;

pub use hsm_keys::{DEVICE_KEY_FILE, HSM_ID_PREFIX, HSM_KEYS_AAD, HSM_KEYS_FILE, HsmKeys};
pub use objects::{
    KeyMaterial, MAX_OPERATION_INPUT, ObjectBinding, OpenedObject, decrypt, encrypt, export_plain,
    import_plain, open_object, seal_object, sign, unwrap, verify, wrap,
};
pub use sealed::{
    AeadKey, MAX_SEALED_LEN, MAX_SEALED_PLAINTEXT, SEALED_FORMAT, SEALED_MAGIC, SEALED_OVERHEAD,
    open, seal,
};

/// An operation on a key object, as named in [`CryptoError::WrongKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyOperation {
    /// Making a signature.
    Sign,
    /// Checking a signature.
    Verify,
    /// Encrypting data.
    Encrypt,
    /// Decrypting data.
    Decrypt,
    /// Wrapping another key (the wrapping key's side).
    Wrap,
    /// Unwrapping another key (the wrapping key's side).
    Unwrap,
}

impl KeyOperation {
    /// The operation as written in messages: `sign`, `verify`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOperation::Sign => "sign",
            KeyOperation::Verify => "verify",
            KeyOperation::Encrypt => "encrypt",
            KeyOperation::Decrypt => "decrypt",
            KeyOperation::Wrap => "wrap",
            KeyOperation::Unwrap => "unwrap",
        }
    }

    /// The kinds of key the operation needs, in words.
    pub fn needs(self) -> &'static str {
        match self {
            KeyOperation::Sign | KeyOperation::Verify => "an Ed25519 or EC P-256 key",
            KeyOperation::Encrypt
            | KeyOperation::Decrypt
            | KeyOperation::Wrap
            | KeyOperation::Unwrap => "an AES-256 key",
        }
    }
}

impl fmt::Display for KeyOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the cryptographic core. Each message says what was wrong and
/// what to do. A cryptographic failure stays opaque ([`CryptoError::AuthenticationFailed`]): it
/// never says whether the key, the associated data, the nonce or the ciphertext was wrong.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Sealed data, a ciphertext or a wrapped key did not authenticate: a wrong key, wrong
    /// associated data (another partition or key id), or tampering.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A signature does not verify for this key and message.
    #[error("signature is not valid for this key and message")]
    SignatureInvalid,
    /// The operating system's random number generator failed; nothing was generated.
    #[error(
        "the operating system's random number generator failed ({0}): nothing was generated; \
         check the system's entropy source and retry"
    )]
    Rng(#[from] getrandom::Error),

    /// A sealed envelope shorter than its fixed parts.
    #[error(
        "sealed envelope is {len} bytes, shorter than the {min} bytes every envelope has: \
         it is truncated or not a Tessera sealed envelope"
    )]
    Truncated {
        /// The envelope's length.
        len: usize,
        /// The shortest possible envelope.
        min: usize,
    },
    /// Data that does not start with the envelope magic `TSEL`.
    #[error("data does not start with `TSEL`: it is not a Tessera sealed envelope")]
    BadMagic,
    /// An envelope in a format this build does not read.
    #[error(
        "sealed envelope has format {found}; this build reads format {supported}: \
         open it with a build that knows format {found}"
    )]
    UnsupportedFormat {
        /// The format byte found.
        found: u8,
        /// The format this build reads.
        supported: u8,
    },
    /// An input over its limit, refused before anything was allocated for it.
    #[error("{what} is {len} bytes, more than the {max}-byte limit: use a smaller input")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Data that authenticated but does not decode: written by an incompatible build.
    #[error(
        "{what} authenticated but does not decode: it was written by an incompatible build; \
         open it with the build that wrote it"
    )]
    CorruptRecord {
        /// What did not decode.
        what: &'static str,
    },

    /// An operation on a key of the wrong kind (signing with an AES key, encrypting with an
    /// Ed25519 key).
    #[error("cannot {operation} with this {kind} key: {operation} needs {}", operation.needs())]
    WrongKind {
        /// The operation refused.
        operation: KeyOperation,
        /// The kind of the key it was asked of.
        kind: KeyKind,
    },
    /// A key kind this build does not implement.
    #[error("key kind {kind} is not supported by this build of the HSM")]
    UnsupportedKind {
        /// The kind asked for.
        kind: KeyKind,
    },
    /// Plain key bytes of the wrong length for their kind.
    #[error("a {kind} key is {expected} bytes; {actual} bytes were given")]
    KeyLength {
        /// The key's kind.
        kind: KeyKind,
        /// The length of such a key.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Plain key bytes of the right length that are not a valid key of their kind.
    #[error(
        "the bytes are not a valid {kind} key (an EC P-256 scalar must be at least 1 and below \
         the group order): check the key's source"
    )]
    InvalidKey {
        /// The key's kind.
        kind: KeyKind,
    },
    /// A signature of the wrong length for the key's kind.
    #[error("a {kind} signature is {expected} bytes; {actual} bytes were given")]
    SignatureLength {
        /// The signing key's kind.
        kind: KeyKind,
        /// The length of such a signature.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A wrapped key of the wrong length for the kind it should unwrap to.
    #[error(
        "a wrapped {kind} key is {expected} bytes (AES key wrap with padding, RFC 5649); \
         {actual} bytes were given: check the kind and the blob"
    )]
    WrappedKeyLength {
        /// The kind to unwrap to.
        kind: KeyKind,
        /// The length of such a wrapped key.
        expected: usize,
        /// The length given.
        actual: usize,
    },

    /// A file or directory operation of the HSM's key store failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `create`, `sync`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// `init` found a key file already there. Keys are never overwritten.
    #[error(
        "{path} already exists: this data directory already holds HSM keys, which are never \
         overwritten; load them instead, or move the directory aside to start a new HSM"
    )]
    AlreadyInitialised {
        /// The existing file.
        path: PathBuf,
    },
    /// `load` found no key files at all.
    #[error("{dir} holds no HSM keys: run `tessera-hsm init` to create them")]
    NotInitialised {
        /// The data directory.
        dir: PathBuf,
    },
    /// One of the two key files is missing while the other is there.
    #[error(
        "{path} is missing while its partner file exists: restore both files from the same \
         copy; if initialisation was interrupted and the HSM never held keys, move the \
         directory aside and run `tessera-hsm init` again"
    )]
    MissingKeyFile {
        /// The missing file.
        path: PathBuf,
    },
    /// The device key file is not 32 bytes long.
    #[error(
        "{path} is {len} bytes, not 32: the device key is damaged; restore it from the same \
         copy as hsm-keys.sealed"
    )]
    DeviceKeyLength {
        /// The device key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The device key file can be read by others than its owner.
    #[error(
        "{path} has mode {mode:03o}; a device key must be readable by its owner only: \
         run `chmod 600` on it, and consider the key exposed if others could read it"
    )]
    DeviceKeyPermissions {
        /// The device key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The sealed key file does not open under the device key.
    #[error(
        "{path} cannot be opened with the device key ({source}): it is damaged, or it and \
         device.key come from different copies; restore both files together from one copy"
    )]
    KeysFileUnreadable {
        /// The sealed key file.
        path: PathBuf,
        /// Why it did not open.
        source: Box<CryptoError>,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    /// Fails if `shown` holds any 4-byte run of `secret` in hex (either case) or as a decimal
    /// list, the forms a derived `Debug` of bytes or arrays would print.
    pub(crate) fn assert_shows_no_secret(shown: &str, secret: &[u8]) {
        assert!(secret.len() >= 4);
        for window in secret.windows(4) {
            let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
            assert!(!shown.to_lowercase().contains(&hex), "{shown} shows {hex}");
            let decimal = format!("{}, {}, {}, {}", window[0], window[1], window[2], window[3]);
            assert!(!shown.contains(&decimal), "{shown} shows {decimal}");
        }
    }

    #[test]
    fn the_secret_check_can_fail() {
        let secret = [0xde, 0xad, 0xbe, 0xef, 0x01];
        for leaky in ["x DEADBEEF y", "[222, 173, 190, 239, 1]", "adbeef01"] {
            let caught = std::panic::catch_unwind(|| assert_shows_no_secret(leaky, &secret));
            assert!(caught.is_err(), "{leaky}");
        }
        assert_shows_no_secret("AeadKey(redacted)", &secret);
    }
}
