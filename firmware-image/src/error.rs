//! The crate's one error type, and the typed reasons an image or a slot is refused.
//!
//! A refused image names the check that failed in [`Refusal`], whose [`Refusal::name`] is the
//! short attack name the tests' fixtures carry (`rollback-index-lower`, `path-escape`, …).
//! Signature failures name the release key (its first bytes in hex) but say nothing more than
//! "does not verify": there is nothing an operator can learn from the curve arithmetic.

use std::io;
use std::path::PathBuf;

/// Why an image, or a slot on the device, was refused. Each says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The file is not a Tessera firmware image, or of a format version this build does not read.
    #[error("{what}: {reason}")]
    Format {
        /// The part of the image.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The image ends before `what` is complete: a copy was cut short; copy it again.
    #[error("the image is truncated: it ends inside the {what}; copy the image again")]
    Truncated {
        /// The part the image ends in.
        what: &'static str,
    },
    /// A length or count is above its bound; nothing of that size was allocated or read.
    #[error("the {what} is {len}, above the bound of {max}: the image is malformed or hostile")]
    Oversize {
        /// The length or count.
        what: &'static str,
        /// Its value in the image.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// Bytes follow the last signature.
    #[error("the image has bytes after its last signature; it is malformed")]
    TrailingBytes,
    /// The manifest does not parse.
    #[error("the manifest is malformed: {reason}")]
    Manifest {
        /// What is wrong.
        reason: String,
    },
    /// A path in the file list could leave the slot or is not in normal form.
    #[error("the file list holds the path {path:?}, which {reason}; such an image is refused")]
    PathEscape {
        /// The path as the manifest gives it (control characters escaped).
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The image is built for another device.
    #[error(
        "the image is for hardware {image:?}, but this device is {device:?}: use the image built \
         for this device"
    )]
    WrongHardwareId {
        /// The image's hardware id.
        image: String,
        /// The device's.
        device: String,
    },
    /// The image's rollback index is below the device's floor: it is an older, weaker release.
    #[error(
        "the image's rollback index {index} is lower than this device's floor {floor}: it is an \
         older release and may carry fixed weaknesses; use a current image"
    )]
    RollbackIndexLower {
        /// The image's index.
        index: u64,
        /// The device's floor.
        floor: u64,
    },
    /// A signature by a key that is not a current release key (unknown, or retired by a rotation).
    #[error(
        "a signature is by release key {key}, which is not one of this device's current release \
         keys (unknown or retired); re-sign the image with current keys"
    )]
    UnknownKey {
        /// The key's first bytes, hex.
        key: String,
    },
    /// Two signatures by one release key: a key counts once.
    #[error(
        "release key {key} signed the image twice; each key counts once, so a second officer \
         must sign with their own key"
    )]
    SameKeyTwice {
        /// The key's first bytes, hex.
        key: String,
    },
    /// A signature that does not verify (strict Ed25519) under the key it names.
    #[error("the signature by release key {key} does not verify over this manifest")]
    BadSignature {
        /// The key's first bytes, hex.
        key: String,
    },
    /// Fewer valid signatures by distinct current release keys than the threshold.
    #[error(
        "{valid} release key(s) signed the image but this device needs {threshold}: have more \
         release officers sign it"
    )]
    TooFewSignatures {
        /// Distinct valid signatures.
        valid: usize,
        /// The device's threshold.
        threshold: usize,
    },
    /// The payload's length differs from the manifest's payload size.
    #[error("the payload is {actual} bytes, but the manifest says {manifest}")]
    PayloadSize {
        /// The manifest's size.
        manifest: u64,
        /// The payload's length in the image.
        actual: u64,
    },
    /// The payload does not hash to the manifest's SHA-512: it was changed after signing.
    #[error("the payload's SHA-512 differs from the manifest's: the payload was changed")]
    PayloadDigest,
    /// A file's bytes do not hash to its digest in the manifest.
    #[error("the file {path:?} does not match its SHA-512 in the manifest")]
    FileDigest {
        /// The file.
        path: String,
    },
    /// A slot on the device no longer matches its verified manifest.
    #[error("slot {slot} changed since it was installed: {reason}; reinstall a verified image")]
    SlotChanged {
        /// The slot, "A" or "B".
        slot: char,
        /// What changed.
        reason: String,
    },
}

impl Refusal {
    /// The short name of the check or attack, as the adversarial fixtures are named.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Format { .. } => "format",
            Refusal::Truncated { .. } => "truncated",
            Refusal::Oversize { .. } => "oversize-length",
            Refusal::TrailingBytes => "trailing-bytes",
            Refusal::Manifest { .. } => "manifest-malformed",
            Refusal::PathEscape { .. } => "path-escape",
            Refusal::WrongHardwareId { .. } => "wrong-hardware-id",
            Refusal::RollbackIndexLower { .. } => "rollback-index-lower",
            Refusal::UnknownKey { .. } => "unknown-key",
            Refusal::SameKeyTwice { .. } => "same-key-twice",
            Refusal::BadSignature { .. } => "bad-signature",
            Refusal::TooFewSignatures { .. } => "too-few-signatures",
            Refusal::PayloadSize { .. } => "payload-size",
            Refusal::PayloadDigest => "payload-digest-mismatch",
            Refusal::FileDigest { .. } => "manifest-digest-mismatch",
            Refusal::SlotChanged { .. } => "slot-changed",
        }
    }
}

/// Everything that can go wrong building, signing, verifying or installing firmware.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// The image (or a slot) was refused by a check; nothing was installed.
    #[error("firmware refused: {0}")]
    Refused(#[from] Refusal),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing", "syncing", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Building an image from a directory failed.
    #[error("building the image from {}: {reason}", path.display())]
    Build {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A release key set (a key set file, or one in a manifest) is not usable.
    #[error("release key set: {reason}")]
    KeySet {
        /// What is wrong.
        reason: String,
    },
    /// A detached signature file does not belong to this image or is malformed.
    #[error("signature file {}: {reason}", path.display())]
    SignatureFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The device's state file is unreadable or malformed.
    #[error("device state {}: {reason}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The device is not in a state that allows the operation.
    #[error("{op}: {reason}")]
    Device {
        /// The operation ("install", "confirm", …).
        op: &'static str,
        /// Why not, and what to do.
        reason: String,
    },
    /// The release card failed (wrong PIN, card removed, soft card refused, …).
    #[error("release card: {0}")]
    Card(#[from] quorum::CardError),
    /// The quorum crate refused (a soft card under the card policy, its file, …).
    #[error("release card: {0}")]
    Quorum(#[from] quorum::QuorumError),
}

impl FirmwareError {
    /// The refusal, if this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            FirmwareError::Refused(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| FirmwareError::Io { op, path, source }
    }
}
