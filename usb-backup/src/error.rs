//! The crate's one error type, and the reasons a backup file is rejected.

use std::path::PathBuf;

/// Which part of a backup file a truncation cut into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The header (magic, version, facts, wrapped keys).
    Header,
    /// The body chunk with this index (from 0).
    Chunk(u64),
    /// The trailer (digest table, chain, signature).
    Trailer,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Header => f.write_str("the header"),
            Part::Chunk(i) => write!(f, "chunk {i}"),
            Part::Trailer => f.write_str("the trailer"),
        }
    }
}

/// Why a backup file is not a complete, authentic backup. Each attack the format defends against
/// has its own case, so that an operator is told which.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The first 8 bytes are not the backup magic: not a Tessera backup at all.
    #[error("not a Tessera backup (wrong magic)")]
    BadMagic,
    /// A format version this build cannot read.
    #[error("backup format version {found} is not readable by this build (it reads version 1)")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// A header field is out of bounds or badly formed.
    #[error("header field {field}: {problem}")]
    HeaderField {
        /// The field's name in the format description.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The file is shorter than its header says: it was cut off.
    #[error("truncated: the file is {found} bytes, its header says {expected}; it ends in {part}")]
    Truncated {
        /// The length the header implies.
        expected: u64,
        /// The length found.
        found: u64,
        /// Where the cut falls.
        part: Part,
    },
    /// The file is longer than its header says.
    #[error("{extra} bytes after the end of the backup")]
    TrailingData {
        /// How many bytes follow the trailer.
        extra: u64,
    },
    /// The backup belongs to another HSM than the one pinned or presented.
    #[error("wrong HSM: {detail}")]
    WrongHsm {
        /// What did not match.
        detail: &'static str,
    },
    /// The data key is not wrapped to the quorum backup key presented.
    #[error("wrong quorum: the backup's data key is wrapped to another quorum backup key")]
    WrongQuorum,
    /// The trailer does not start with the trailer magic.
    #[error("the trailer is damaged (wrong trailer magic)")]
    BadTrailerMagic,
    /// The trailer's signature does not verify with the HSM key: the trailer was altered.
    #[error("the trailer's signature does not verify with the HSM's key: the trailer was altered")]
    TrailerSignature,
    /// The digest table in the trailer does not hash to the signed chain.
    #[error("the trailer's chunk digest table was altered (it does not match the signed chain)")]
    TrailerAltered,
    /// The header is not the one the trailer signed, but it names the same backup: altered.
    #[error("the header was altered: it is not the header the HSM signed")]
    HeaderAltered,
    /// Body and trailer belong together; the header comes from another backup.
    #[error("the header comes from another backup than the body and trailer")]
    HeaderFromOtherBackup,
    /// The trailer comes from another backup than the header and body.
    #[error("the trailer comes from another backup than the header and body")]
    TrailerFromOtherBackup,
    /// A chunk is at the wrong position.
    #[error("chunks reordered: position {position} holds the chunk signed for position {found}")]
    ChunksReordered {
        /// Where the chunk was found.
        position: u64,
        /// Where the trailer says it belongs.
        found: u64,
    },
    /// A chunk's bytes are not the ones the HSM signed.
    #[error("chunk {index} was altered (its digest is not the signed one)")]
    ChunkAltered {
        /// The chunk's index.
        index: u64,
    },
    /// A chunk does not decrypt at its position: altered, moved or from another backup.
    #[error("chunk {index} fails authentication: altered, moved, or from another backup")]
    ChunkAuthentication {
        /// The chunk's index.
        index: u64,
    },
    /// The body is intact chunk by chunk but its chain is not the signed one.
    #[error("the body does not match the signed chain of chunk digests")]
    ChainMismatch,
    /// A wrapped data key does not open with the key presented.
    #[error("the data key wrapped to the {recipient} does not open: the wrapped key was altered")]
    Unwrap {
        /// Which wrapping: "HSM backup key" or "quorum backup key".
        recipient: &'static str,
    },
    /// The file read back from the drive is not the backup that was written.
    #[error("read-back check: the drive returned another backup than the one written ({what})")]
    ReadBackMismatch {
        /// What differs.
        what: &'static str,
    },
    /// A leftover of a write that never finished (`NAME.partial`: interrupted; `NAME.failed`:
    /// its read-back failed), refused by its name whatever its bytes: it was never made
    /// durable under its final name and read back, so it is not a backup even when complete.
    #[error(
        "a leftover of a write that never finished ({suffix}), not a backup whatever it holds; \
         `tessera backup clean` removes it"
    )]
    Leftover {
        /// `.partial` or `.failed`.
        suffix: &'static str,
    },
}

/// What went wrong, and in which operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A backup file or stream was rejected.
    #[error("backup rejected: {0}")]
    Rejected(#[from] Rejection),
    /// An I/O operation failed.
    #[error("{op} {object}: {source}")]
    Io {
        /// The operation ("write", "fsync", "rename", ...).
        op: &'static str,
        /// What it was done to (a path, or "backup stream").
        object: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// The facts given for a new backup are out of bounds.
    #[error("cannot start a backup: {field} {problem}")]
    InvalidFacts {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The writer was given more or fewer plaintext bytes than the header announced.
    #[error("the backup announced {expected} plaintext bytes but was given {given}")]
    PlaintextLength {
        /// The size in the header.
        expected: u64,
        /// The bytes given (at least).
        given: u64,
    },
    /// A key given to the container is not usable.
    #[error("{key}: {problem}")]
    InvalidKey {
        /// Which key.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A cryptographic operation failed (opaque on purpose).
    #[error("{op} failed")]
    Crypto {
        /// The operation.
        op: &'static str,
    },
    /// The target has too little free space for the backup.
    #[error("not enough space on {target}: the backup needs {need} bytes, {free} are free")]
    NoSpace {
        /// The target (a directory or a drive).
        target: String,
        /// Bytes needed.
        need: u64,
        /// Bytes free.
        free: u64,
    },
    /// A file of that name exists already; backups never overwrite.
    #[error("{path} exists already; a backup never overwrites a file")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file name is not a backup name of this format.
    #[error("{name:?} is not a backup file name ({problem})")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The FAT file system on a drive or image could not be used.
    #[error("FAT file system: {op}: {detail}")]
    Fat {
        /// The operation.
        op: &'static str,
        /// The file system library's message.
        detail: String,
    },
    /// The sysfs tree describing drives could not be read.
    #[error("drive discovery: {path}: {problem}")]
    Discovery {
        /// The sysfs path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A line of the drive allow-list is not `vendor:product:serial`.
    #[error(
        "drive allow-list line {line}: {problem} (expected vendor:product:serial, e.g. 0781:5581:4C530001)"
    )]
    AllowList {
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A drive the terminal's drive allow-list does not admit.
    #[error(
        "{drive}: refused: {why}; the terminal's configuration lists the drives backups may use \
         (`allow` in `[backup]`)"
    )]
    Refused {
        /// The drive as named (a directory or a device).
        drive: String,
        /// Why it is refused.
        why: String,
    },
    /// A pipeline thread panicked or hung up.
    #[error("the {stage} stage of the sealing pipeline stopped unexpectedly")]
    Pipeline {
        /// The stage.
        stage: &'static str,
    },
}

impl BackupError {
    /// The rejection, when a backup was rejected.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            BackupError::Rejected(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        object: impl std::fmt::Display,
        source: std::io::Error,
    ) -> Self {
        BackupError::Io {
            op,
            object: object.to_string(),
            source,
        }
    }
}
