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
