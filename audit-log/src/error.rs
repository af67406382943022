//! The crate's one error type, and the typed faults a log line can have.

/// What went wrong building, reading or verifying the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A field of a new entry is out of bounds or badly formed.
    #[error("invalid {field}: {problem}")]
    InvalidField {
        /// The field, by its name in the canonical line (`op`, `object`, `holders`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A new entry would encode to a line longer than [`MAX_LINE_LEN`](crate::MAX_LINE_LEN).
    #[error("entry too long: its canonical line would be {len} bytes, the limit is {max}")]
    EntryTooLong {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The chain has reached the largest sequence number; no entry can follow.
    #[error("sequence numbers exhausted after entry {last_seq}")]
    SequenceExhausted {
        /// The last sequence number.
        last_seq: u64,
    },
    /// Bytes that were to be an audit public key are not a valid Ed25519 key.
    #[error("invalid audit public key")]
    InvalidAuditKey,
    /// One line, checked on its own, was rejected.
    #[error("{0}")]
    Rejected(Fault),
    /// An export file could not be read (an I/O error, not a fault of its contents).
    #[error("reading the export: {problem}")]
    Read {
        /// What the system said.
        problem: String,
    },
    /// An export file could not be written.
    #[error("writing the export: {problem}")]
    Write {
        /// What went wrong.
        problem: String,
    },
    /// A key pin (a fingerprint or a key file) could not be read.
    #[error("the audit key given: {problem}")]
    BadPin {
        /// What is wrong with it, and what to give instead.
        problem: String,
    },
    /// No audit key is pinned for the file's HSM and partition where the verifier looked (the
    /// terminal's state): the problem says why and what to give instead.
    #[error("{problem}")]
    NoPin {
        /// Why no pinned key applies, and what to do.
        problem: String,
    },
    /// Verification of a log stopped at its first bad line (lines counted from 1).
    #[error("line {line}: {fault}")]
    Verification {
        /// The first bad line, counted from 1. For a fault found at the end of the input (no
        /// checkpoint at all) it is one past the last line.
        line: u64,
        /// What is wrong with it.
        fault: Fault,
    },
}

impl LogError {
    /// The fault of a rejected line or of a failed verification.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            LogError::Rejected(fault) | LogError::Verification { fault, .. } => Some(fault),
            _ => None,
        }
    }

    /// The line verification stopped at.
    pub fn line(&self) -> Option<u64> {
        match self {
            LogError::Verification { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// What kind of problem this is, for people and for exit codes.
    pub fn kind(&self) -> FaultKind {
        match self {
            LogError::Rejected(fault) | LogError::Verification { fault, .. } => fault.kind(),
            LogError::BadPin { .. } | LogError::NoPin { .. } | LogError::InvalidAuditKey => {
                FaultKind::UnknownKey
            }
            _ => FaultKind::Unreadable,
        }
    }

    pub(crate) fn non_canonical(problem: impl Into<String>) -> LogError {
        LogError::Rejected(Fault::NonCanonical {
            problem: problem.into(),
        })
    }
}

/// What is wrong with a log line, or with the log at that line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The line is longer than [`MAX_LINE_LEN`](crate::MAX_LINE_LEN); it was not parsed.
    #[error("line of {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// The line's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The line is not an entry or a checkpoint in canonical form (bad JSON, fields out of
    /// order or out of bounds, other whitespace or escapes).
    #[error("not a canonical log line: {problem}")]
    NonCanonical {
        /// What the parser found.
        problem: String,
    },
    /// The entry's contents do not match its own hash: it was edited.
    #[error("entry {seq} was altered: its contents do not match its hash")]
    EditedEntry {
        /// The sequence number the line claims.
        seq: u64,
    },
    /// The entry's `prev` is not the hash of the entry before it.
    #[error("entry {seq} does not link to the entry before it (its prev hash differs)")]
    BrokenChain {
        /// The entry's sequence number.
        seq: u64,
    },
    /// Entries are missing: the sequence number jumps forward.
    #[error("entry {expected} is missing: the next entry is {found}")]
    Gap {
        /// The sequence number that should have come.
        expected: u64,
        /// The one that came.
        found: u64,
    },
    /// Entries are reordered or repeated: the next entry comes later on, or has come already.
    #[error("entries out of order: expected entry {expected}, found entry {found}")]
    OutOfOrder {
        /// The sequence number that should have come.
        expected: u64,
        /// The one that came.
        found: u64,
    },
    /// A checkpoint's signature does not verify with the pinned audit key.
    #[error("checkpoint at entry {seq}: signature does not verify with the pinned audit key")]
    BadCheckpoint {
        /// The sequence number the checkpoint names.
        seq: u64,
    },
    /// A validly signed checkpoint names another entry (or another hash) than the entry just
    /// before it. If it names a later entry, entries before it are missing; an earlier one, it
    /// was moved.
    #[error("{}", checkpoint_mismatch(*seq, *last_seq))]
    CheckpointMismatch {
        /// The sequence number the checkpoint names.
        seq: u64,
        /// The sequence number of the entry before the checkpoint (the anchor's if none).
        last_seq: u64,
    },
    /// The log ends with entries that no checkpoint covers (a cut-off export, or a live log
    /// between checkpoints).
    #[error("{entries} entries from entry {first_seq} on are not covered by a checkpoint")]
    UnsignedTail {
        /// The first entry not covered.
        first_seq: u64,
        /// How many entries are not covered.
        entries: u64,
    },
    /// The log has no checkpoint at all.
    #[error("no checkpoint: nothing in the log is signed")]
    NoCheckpoint,
    /// The input is not a Tessera log export (it does not open with an export header).
    #[error("not a Tessera log export: {problem}")]
    NotAnExport {
        /// What was found instead.
        problem: String,
    },
    /// An export in a format version this verifier does not read.
    #[error(
        "export format version {version} is not supported: this verifier reads version {supported}"
    )]
    UnsupportedVersion {
        /// The file's version.
        version: u64,
        /// The version this verifier reads.
        supported: u64,
    },
    /// The export's header is not canonical or contradicts the export it heads.
    #[error("the export header was altered: {problem}")]
    BadHeader {
        /// What does not fit.
        problem: String,
    },
    /// The file names an audit key other than the pinned one.
    #[error(
        "the export names audit key {found}, which is not the pinned key {pinned}: \
         verify with the key of the HSM that wrote it"
    )]
    UnknownKey {
        /// The fingerprint the file names.
        found: crate::keys::AuditKeyFingerprint,
        /// The pinned key or fingerprint, as shown to people.
        pinned: String,
    },
    /// The export's closing checkpoint does not verify with the pinned key.
    #[error("the closing checkpoint's signature does not verify with the pinned audit key")]
    BadClosingSignature,
    /// The closing checkpoint names another export, range or last entry than the file holds.
    #[error("the closing checkpoint {problem}")]
    ClosingMismatch {
        /// What differs.
        problem: String,
    },
    /// The file ends before the export's closing checkpoint.
    #[error("the export is cut short: {problem}")]
    CutShort {
        /// Where it ends.
        problem: String,
    },
    /// A line follows the export's closing checkpoint.
    #[error("a line was added after the export's closing checkpoint")]
    AfterEnd,
    /// The first entry does not open the named partition's log.
    #[error(
        "entry 1 does not open the log of partition {partition}: this is another partition's log"
    )]
    NotPartitionLog {
        /// The partition the header names.
        partition: String,
    },
    /// The export given as the previous one is of another HSM or partition.
    #[error(
        "the previous export is the log of {previous}, this one the log of {this}: another partition's log"
    )]
    OtherLog {
        /// HSM and partition of the previous export.
        previous: String,
        /// HSM and partition of this one.
        this: String,
    },
    /// Entries between the previous export and this one are in neither.
    #[error("entries {first} to {last} are in neither export: the previous export ends at {}, this one starts at {}", first - 1, last + 1)]
    GapAfterPrevious {
        /// The first entry in neither export.
        first: u64,
        /// The last entry in neither export.
        last: u64,
    },
    /// The export given as the previous one does not come before this one.
    #[error(
        "the previous export (entries {previous_from} to {previous_to}) does not come before this one (entries {from} to {to})"
    )]
    NotAfterPrevious {
        /// The previous export's first entry.
        previous_from: u64,
        /// Its last entry.
        previous_to: u64,
        /// This export's first entry.
        from: u64,
        /// Its last entry.
        to: u64,
    },
    /// An entry both exports hold has another hash in each.
    #[error("entry {seq} differs between this export and the previous one")]
    DisagreesWithPrevious {
        /// The entry.
        seq: u64,
    },
}

/// The kinds of problem a verification names, as the issue and the `tessera log verify` report
/// put them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// A line was changed (an edited field, a replaced entry, an altered header).
    Edited,
    /// Entries are missing (a removed line, a gap between exports).
    Removed,
    /// Lines are out of order (swapped, moved, exports given in the wrong order).
    Reordered,
    /// A line was added (a repeated entry, a line after the closing checkpoint).
    Inserted,
    /// A signature does not verify with the pinned key.
    Signature,
    /// The file names another audit key than the pinned one, or the key given is unusable.
    UnknownKey,
    /// The file ends early (no closing checkpoint, a truncated last line, unsigned entries).
    CutShort,
    /// The log of another partition or HSM.
    OtherLog,
    /// Not an export this verifier reads, or not readable at all.
    Unreadable,
}

impl FaultKind {
    /// A short name: `edited`, `removed`, `reordered`, `inserted`, `signature`, `unknown-key`,
    /// `cut-short`, `other-log`, `unreadable`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Edited => "edited",
            FaultKind::Removed => "removed",
            FaultKind::Reordered => "reordered",
            FaultKind::Inserted => "inserted",
            FaultKind::Signature => "signature",
            FaultKind::UnknownKey => "unknown-key",
            FaultKind::CutShort => "cut-short",
            FaultKind::OtherLog => "other-log",
            FaultKind::Unreadable => "unreadable",
        }
    }

    /// Whether this says the evidence was tampered with (rather than that it could not be
    /// checked: unreadable, or not under the pinned key).
    pub fn is_tampering(self) -> bool {
        !matches!(self, FaultKind::Unreadable | FaultKind::UnknownKey)
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Fault {
    /// What kind of problem this is.
    pub fn kind(&self) -> FaultKind {
        use std::cmp::Ordering;
        match self {
            Fault::TooLong { .. }
            | Fault::NonCanonical { .. }
            | Fault::EditedEntry { .. }
            | Fault::BrokenChain { .. }
            | Fault::BadHeader { .. }
            | Fault::ClosingMismatch { .. }
            | Fault::DisagreesWithPrevious { .. } => FaultKind::Edited,
            Fault::Gap { .. } | Fault::GapAfterPrevious { .. } => FaultKind::Removed,
            Fault::OutOfOrder { expected, found } if found < expected => FaultKind::Inserted,
            Fault::OutOfOrder { .. } | Fault::NotAfterPrevious { .. } => FaultKind::Reordered,
            Fault::CheckpointMismatch { seq, last_seq } => match seq.cmp(last_seq) {
                Ordering::Greater => FaultKind::Removed,
                Ordering::Less => FaultKind::Reordered,
                Ordering::Equal => FaultKind::Edited,
            },
            Fault::BadCheckpoint { .. } | Fault::BadClosingSignature => FaultKind::Signature,
            Fault::UnsignedTail { .. } | Fault::NoCheckpoint | Fault::CutShort { .. } => {
                FaultKind::CutShort
            }
            Fault::AfterEnd => FaultKind::Inserted,
            Fault::UnknownKey { .. } => FaultKind::UnknownKey,
            Fault::NotPartitionLog { .. } | Fault::OtherLog { .. } => FaultKind::OtherLog,
            Fault::NotAnExport { .. } | Fault::UnsupportedVersion { .. } => FaultKind::Unreadable,
        }
    }
}

fn checkpoint_mismatch(seq: u64, last_seq: u64) -> String {
    use std::cmp::Ordering;
    match seq.cmp(&last_seq) {
        Ordering::Greater => format!(
            "checkpoint names entry {seq}, but the entry before it is {last_seq}: \
             entries are missing"
        ),
        Ordering::Less => format!(
            "checkpoint names entry {seq}, but entries up to {last_seq} come before it: \
             it was moved"
        ),
        Ordering::Equal => format!(
            "checkpoint names entry {seq} with another hash than the entry before it: \
             that entry was replaced"
        ),
    }
}
