//! The crate's one error type, with typed sub-cases for share envelopes and cards.
//!
//! Cryptographic failures stay opaque: an envelope that does not open says only that it does not
//! open with this card ([`QuorumError::EnvelopeOpen`]), never which check failed. Structural
//! faults (a short envelope, an unknown version, a soft card file from another program) say
//! exactly what is wrong, because they leak nothing and the operator can act on them.

use std::convert::Infallible;
use std::path::PathBuf;

/// Everything that can go wrong while splitting, sealing, checking or combining the recovery
/// secret, or while talking to a card.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The quorum's size is outside what this crate supports.
    #[error(
        "a quorum of {m} of {n} cards is not possible: it needs 1 <= m <= n <= {max}; \
         choose a threshold and a number of cards in that range"
    )]
    QuorumSize {
        /// The threshold asked for.
        m: usize,
        /// The number of cards asked for.
        n: usize,
        /// The largest number of cards supported.
        max: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// A share failed its check against the stored commitments. The caller knows which card
    /// carried `index` and names its holder and serial.
    #[error(
        "share {index} does not match this partition's quorum: the card holding it is the wrong \
         card, from an older quorum, or corrupted; set it aside and insert another card"
    )]
    ShareMismatch {
        /// The share's index (1 to n).
        index: u8,
    },
    /// A share index outside 1..=16.
    #[error("share index {index} is outside 1..={max}; the share is corrupted")]
    ShareIndex {
        /// The index found.
        index: u8,
        /// The largest index allowed.
        max: usize,
    },
    /// Two different shares with the same index.
    #[error(
        "two different shares both carry index {index}: at least one card is corrupted or from \
         another quorum"
    )]
    ConflictingShares {
        /// The index carried twice.
        index: u8,
    },
    /// Fewer distinct shares than the threshold: nothing was combined.
    #[error(
        "{got} distinct share(s) presented but this quorum needs {needed}; \
         insert {missing} more card(s)", missing = needed - got
    )]
    NotEnoughShares {
        /// Distinct shares presented.
        got: usize,
        /// The stored threshold.
        needed: usize,
    },
    /// The threshold given does not match the stored commitments.
    #[error(
        "the threshold {given} does not match the stored commitments, which were made for a \
         threshold of {stored}"
    )]
    ThresholdMismatch {
        /// The threshold the caller gave.
        given: usize,
        /// The threshold the commitments encode.
        stored: usize,
    },
    /// The combined secret does not match the stored commitments. Every share passed its own
    /// check, so this means the commitments themselves are inconsistent.
    #[error("the combined secret does not match the stored commitments; nothing was recovered")]
    CombinedSecretMismatch,
    /// Stored commitments that cannot be decoded.
    #[error("the stored quorum commitments are malformed: {reason}")]
    Commitments {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A share whose encoding is malformed (after its envelope opened).
    #[error("the share is malformed: {reason}")]
    ShareEncoding {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A share envelope that is structurally wrong (before any cryptography).
    #[error("the share envelope is malformed: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A share envelope that does not open: opaque on purpose.
    #[error(
        "the share envelope does not open with this card: wrong card, wrong context, or tampered"
    )]
    EnvelopeOpen,
    /// A share context that cannot be encoded, or that does not fit the share.
    #[error("the share's context is invalid: {reason}")]
    ShareContext {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A card's decryption key that no share may be sealed to.
    #[error("the card's decryption key is not usable (a low-order X25519 point); re-key the card")]
    CardKey,
    /// A card operation failed.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A soft card file could not be read or written.
    #[error("soft card file {path}: {source}")]
    SoftCardIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A soft card file that is not one, or that this version cannot read.
    #[error("soft card file {path} is not usable: {reason}")]
    SoftCardFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A soft card file already exists where a new one was to be created.
    #[error("soft card file {path} already exists; refusing to overwrite it")]
    SoftCardExists {
        /// The file.
        path: PathBuf,
    },
    /// A soft card refused by the card policy ([`crate::card_policy::CardPolicy`]): outside the
    /// embedded demo, soft cards need the terminal configuration to allow them.
    #[error(
        "soft card file {path} refused: this terminal accepts hardware cards only. Soft cards \
         are refused by default because a copied soft card file meets no PIN retry counter: \
         only its passphrase stands between a copy and the card's keys. To allow them anyway, \
         set `allow_soft_cards = true` in the `[cards]` section of the terminal configuration \
         ({key}), or use a smartcard", key = crate::card_policy::ALLOW_SOFT_CARDS_KEY
    )]
    SoftCardRefused {
        /// The file.
        path: PathBuf,
    },
    /// A soft card's passphrase that is too short or too long.
    #[error(
        "a soft card passphrase needs {min} to {max} characters: a copied soft card file \
         meets no retry counter, so its passphrase must resist guessing offline"
    )]
    WeakPassphrase {
        /// Fewest characters accepted.
        min: usize,
        /// Most bytes accepted.
        max: usize,
    },
    /// Argon2 parameters outside the accepted range.
    #[error("soft card passphrase hashing parameters refused: {reason}")]
    Argon2Params {
        /// What is wrong with them.
        reason: String,
    },
    /// A holder name or serial that cannot be stored or shown.
    #[error("invalid card {field}: {reason}")]
    CardLabel {
        /// `holder` or `serial`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A quorum backup public key that does not decode.
    #[error("the quorum backup public key is malformed: {reason}")]
    BackupPublicKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A wrapped data key that is structurally wrong.
    #[error("the wrapped data key is malformed: {reason}")]
    WrappedKeyFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A wrapped data key that does not unwrap: opaque on purpose.
    #[error(
        "the wrapped data key does not open with this quorum backup key: another quorum's key, \
         or tampered"
    )]
    Unwrap,
    /// HPKE refused to seal (an internal fault, not an attack).
    #[error("wrapping the data key failed: {0}")]
    Wrap(String),
    /// vsss-rs refused an operation this crate believed valid (an internal fault).
    #[error("secret sharing failed: {0}")]
    Sharing(String),
}

/// A share envelope's structural faults, found before any cryptography.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Fewer bytes than the fixed part of an envelope.
    #[error("{len} bytes is shorter than the {min} bytes of the smallest envelope (truncated?)")]
    TooShort {
        /// The length found.
        len: usize,
        /// The smallest length possible.
        min: usize,
    },
    /// More bytes than any envelope has.
    #[error("{len} bytes is longer than the {max} bytes an envelope may have")]
    Oversize {
        /// The length found.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The first bytes are not the envelope's magic.
    #[error("not a share envelope (the magic bytes are not \"TSSH\")")]
    BadMagic,
    /// A version this crate does not know.
    #[error("share envelope version {0} is not supported (this build reads version 1)")]
    UnknownVersion(u8),
    /// A body whose length does not fit the version.
    #[error("the encrypted share is {len} bytes, but version 1 carries exactly {expected}")]
    BodyLength {
        /// The body length found.
        len: usize,
        /// The body length the version defines.
        expected: usize,
    },
}

/// Failures of a card operation, by cause. A soft card reports the same cases as a smartcard,
/// so a ceremony handles both alike.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The PIN (or a soft card's passphrase) was wrong. `retries_left` is `None` when the card
    /// has no retry counter (a soft card) or did not say.
    #[error("{}", wrong_pin_message(*retries_left))]
    WrongPin {
        /// Tries left before the card blocks, if it counts.
        retries_left: Option<u8>,
    },
    /// The PIN is blocked: no try is left.
    #[error("the card's PIN is blocked; unblock it with the admin PIN or the resetting code")]
    Blocked,
    /// A PIN whose length the card refuses.
    #[error("the PIN is not acceptable to this card: {reason}")]
    PinFormat {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The card holds no share of the recovery secret.
    #[error("this card holds no share of the recovery secret")]
    NoShare,
    /// A share object larger than the card can store.
    #[error("the share object is {len} bytes; the card stores at most {max}")]
    ShareObjectTooLarge {
        /// The object's length.
        len: usize,
        /// The most the card stores.
        max: usize,
    },
    /// The card was removed or its reader disappeared.
    #[error("the card was removed; insert it again")]
    Removed,
    /// A soft card's decrypted contents are malformed.
    #[error("the soft card's contents are malformed: {reason}")]
    Corrupt {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A soft card's file could not be written.
    #[error("the soft card's file could not be updated: {0}")]
    Io(#[source] std::io::Error),
    /// A device or driver message, passed on as it came (smartcards over PC/SC only).
    #[error("card reader: {0}")]
    Backend(String),
}

fn wrong_pin_message(retries_left: Option<u8>) -> String {
    match retries_left {
        Some(0) => "wrong PIN; the card is now blocked".to_owned(),
        Some(1) => "wrong PIN; 1 try left before the card blocks".to_owned(),
        Some(n) => format!("wrong PIN; {n} tries left before the card blocks"),
        None => "wrong PIN or passphrase (a soft card has no retry counter; a soft card file \
                 that was altered also fails here)"
            .to_owned(),
    }
}

impl From<getrandom::Error> for QuorumError {
    fn from(e: getrandom::Error) -> Self {
        QuorumError::Random(e)
    }
}

impl From<Infallible> for QuorumError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}
