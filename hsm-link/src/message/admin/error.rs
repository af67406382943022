//! Typed refusals: a login's, the service's, a backup's, a configuration change's and a
//! card set's.

use super::*;

/// Why a login was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LoginRefusal {
    /// No card set is registered for the role.
    #[error("no card set is registered for this role: enrol one first")]
    NoCardSet,
    /// No challenge outstanding, or it expired.
    #[error("the login challenge expired or was never issued: ask for a new one")]
    NoChallenge,
    /// A signature from a card that is not in the set.
    #[error("card {index} of the answer is not in the active set for this role")]
    UnknownCard {
        /// Position in the signature list.
        index: usize,
    },
    /// A card that signed twice.
    #[error("card {index} of the answer signed twice: each card counts once")]
    DuplicateCard {
        /// Position in the signature list.
        index: usize,
    },
    /// A signature that does not verify.
    #[error("the signature of card {index} does not verify")]
    BadSignature {
        /// Position in the signature list.
        index: usize,
    },
    /// Fewer good signatures than the threshold.
    #[error("{have} of {need} cards signed: insert the next card")]
    TooFewCards {
        /// Good signatures.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// Four eyes: SO cards of one person only.
    #[error("device SO login needs cards of at least two different people")]
    SamePerson,
    /// Too many failed logins recently.
    #[error("too many failed logins: try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until logins are accepted again.
        retry_after_secs: u64,
    },
}

/// Typed administration errors (carried in [`super::RemoteError`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    /// The action needs a login.
    #[error("{action} needs an officer login")]
    NotLoggedIn {
        /// What was attempted.
        action: Action,
    },
    /// The logged-in role may not do this.
    #[error("{role} may not {action}")]
    Forbidden {
        /// The logged-in role.
        role: Role,
        /// What was attempted.
        action: Action,
    },
    /// Device-SO access is off: SOs can do nothing in this partition.
    #[error("device-SO access is off for this partition: SOs can do nothing here")]
    DeviceSoAccessOff,
    /// The partition's configuration does not allow it.
    #[error("the partition's configuration does not allow this ({})", .parameter.label())]
    Policy {
        /// The parameter that refuses.
        parameter: Parameter,
    },
    /// The configuration changed since the terminal read it.
    #[error(
        "the configuration changed since it was read (now revision {current}): reload and stage the change again"
    )]
    StaleRevision {
        /// The current revision.
        current: u64,
    },
    /// The new configuration is not consistent (e.g. an unlicensed option enabled).
    #[error("the new configuration is not valid: {problem}")]
    InvalidConfig {
        /// What is wrong.
        problem: ConfigProblem,
    },
    /// No such key (or not in the bin, for restore and purge).
    #[error("no key {} {}", .id.0, if *.in_bin { "in the bin" } else { "in the partition" })]
    NoSuchKey {
        /// The key.
        id: KeyId,
        /// Whether the bin was searched.
        in_bin: bool,
    },
    /// A login was refused.
    #[error("login refused: {0}")]
    Login(LoginRefusal),
    /// A card set that cannot be registered.
    #[error("card set refused: {0}")]
    CardSet(CardSetProblem),
    /// The log is full and the partition's policy refuses logged operations until an export
    /// is confirmed.
    #[error("the partition log is full: export it and confirm the export to free space")]
    LogFull,
    /// An export confirmation beyond what was exported.
    #[error("cannot confirm sequence {requested}: only up to {exported} was exported")]
    ConfirmBeyondExport {
        /// What was asked.
        requested: u64,
        /// What was exported.
        exported: u64,
    },
    /// The partition's object limit or size quota would be exceeded.
    #[error("the partition's quota would be exceeded")]
    QuotaExceeded,
    /// A ceremony step whose id is not this session's open ceremony: nothing was done.
    #[error(
        "this step belongs to another ceremony than the one open in this session: nothing was \
         done; begin the ceremony again"
    )]
    CeremonyMismatch,
    /// A card that is not in the active set.
    #[error("the card is not in the active card set")]
    CardNotInSet,
    /// Too many share drill reports without a login recently (they are logged, so they are
    /// rationed): nothing was logged.
    #[error(
        "too many share drills reported without a login: try again in {retry_after_secs} s, or \
         drill while logged in"
    )]
    DrillsThrottled {
        /// Seconds until a drill report without a login is accepted again.
        retry_after_secs: u64,
    },
    /// A drill report that is not signed by the card it names (for this session, set and
    /// result): nothing was logged but the refusal.
    #[error(
        "the drill report is not signed by the card it names: drill with that card in the \
         reader, after its PIN"
    )]
    DrillNotSigned,
    /// A backup refused for a restore: nothing was changed.
    #[error("backup refused, nothing was changed: {0}")]
    Backup(BackupProblem),
    /// No terminal with that fingerprint is pinned for this partition.
    #[error(
        "no terminal {terminal} is paired with this partition: list the terminals and copy its \
         fingerprint"
    )]
    NoSuchTerminal {
        /// The fingerprint asked for.
        terminal: Fingerprint,
    },
    /// A revocation of the terminal this session runs on, without saying so: nothing was done.
    #[error(
        "{terminal} is the terminal this session runs on: revoking it ends this session and \
         this terminal can no longer connect; say so explicitly to revoke it"
    )]
    RevokingThisTerminal {
        /// This session's terminal.
        terminal: Fingerprint,
    },
    /// An export with a filter: an export is a contiguous range of the log, every entry in it.
    #[error(
        "an export holds every entry of its range: read filtered entries as log pages, and \
         export without a filter"
    )]
    FilteredExport,
    /// An export range the log cannot give.
    #[error(
        "cannot export entries {from} to {to}: the partition stores entries {first} to {last} \
         (earlier ones were exported and pruned)"
    )]
    ExportRange {
        /// The first entry asked for.
        from: u64,
        /// The last entry asked for (or the last stored).
        to: u64,
        /// The first entry stored.
        first: u64,
        /// The last entry stored.
        last: u64,
    },
    /// Too many logged requests without a login recently (the first PSO set's ceremony
    /// openings draw on the same ration as refusals and drill reports): nothing was done or
    /// logged.
    #[error("too many logged requests without a login: try again in {retry_after_secs} s")]
    UnauthenticatedThrottled {
        /// Seconds until a logged request without a login is accepted again.
        retry_after_secs: u64,
    },
    /// A trusted-wrapping-key mark asked for an extractable key: its value can leave the HSM,
    /// so whatever it wraps could be unwrapped outside. Nothing was changed.
    #[error(
        "key {id} is extractable, so its value can leave the HSM: only a key generated \
         non-extractable can be trusted to wrap others"
    )]
    ExtractableWrappingKey {
        /// The key.
        id: KeyId,
    },
}

/// Why a backup cannot be restored (or uploaded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BackupProblem {
    /// The backup is of another partition (restoring it here is a migration, done only in a
    /// quorum recovery ceremony).
    #[error(
        "it is a backup of another partition: restore it here only as a migration, with the \
         recovery cards of the set that made it (`tessera backup restore --migrate`)"
    )]
    OtherPartition,
    /// The backup was made by, or its data key wrapped to, another HSM.
    #[error(
        "it was made by another HSM: restore it there, or onto this HSM as a migration, with \
         the recovery cards of the set that made it (`tessera backup restore --migrate`)"
    )]
    OtherHsm,
    /// The header or the contents do not parse.
    #[error("it is not a readable Tessera backup (header or contents malformed)")]
    Malformed,
    /// A chunk, the digest chain or the signature did not check: the file is damaged or was
    /// altered.
    #[error("it does not authenticate: the file is damaged or was altered; verify it offline")]
    NotAuthentic,
    /// It holds more objects or bytes than the partition's quota and object limit allow.
    #[error("it holds more than this partition's quota or object limit allows")]
    OverQuota,
    /// Upload bytes without a begun upload, or beyond the announced length.
    #[error("upload out of order: begin the upload again")]
    UploadOutOfOrder,
    /// A dry run before the whole file arrived.
    #[error("the upload is incomplete: send the rest of the file")]
    Incomplete,
    /// A commit without a dry run of this backup in this session, or after the partition
    /// changed since the dry run.
    #[error("no current dry run of this backup: run the dry run again")]
    NoDryRun,
    /// The partition has no usable quorum backup key (its PSO set registered none, or not an
    /// X-Wing key): a backup would be closed to every recovery ceremony, so none is made.
    #[error(
        "the partition's PSO set has no usable quorum backup key: enrol (or re-enrol) a PSO \
         set first"
    )]
    NoQuorumKey,
    /// A migration whose backup is not signed by the source HSM key the PSO supplied.
    #[error(
        "it is not signed by the source HSM key given: check the key (--source-key) or the file"
    )]
    SourceKeyMismatch,
    /// A migration whose data key does not open at this HSM (re-wrapped to another HSM's
    /// backup key, or for another backup).
    #[error(
        "the data key sent with it does not open at this HSM: it was wrapped to another HSM or \
         for another backup; run the recovery again against this HSM"
    )]
    MigrationKey,
}

/// What is wrong with a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConfigProblem {
    /// An option enabled without its licence.
    #[error("{} is enabled but not licensed", .0.label())]
    Unlicensed(Parameter),
    /// A licence flag changed: licences are set by the HSM owner, not the PSO.
    #[error("the licence of {} is set by the HSM owner", .0.label())]
    LicenceChanged(Parameter),
    /// The quota or object limit changed: set by the HSM owner (the service tier).
    #[error("{} is set by the service tier", .0.label())]
    TierParameter(Parameter),
    /// Some other inconsistency.
    #[error("the configuration is inconsistent")]
    Inconsistent,
}

/// Why a card set cannot be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CardSetProblem {
    /// The set fails validation (threshold, duplicates, size).
    #[error("the set is not valid (threshold, size or duplicate cards)")]
    Invalid,
    /// The first PSO set may be registered only from the first terminal paired.
    #[error("the first PSO set may be registered only from the terminal that paired first")]
    NotFirstTerminal,
    /// A PSO set needs the recovery quorum's public parts.
    #[error("a PSO set needs the quorum backup public key and the share commitments")]
    MissingRecovery,
    /// The recovery parts do not have the expected shape (an X-Wing public key, and one
    /// commitment per share needed).
    #[error(
        "the recovery parts are malformed: expected an X-Wing public key and one commitment per share needed"
    )]
    BadRecovery,
    /// Only PSO sets carry recovery parts.
    #[error("only a PSO set carries recovery parts")]
    UnexpectedRecovery,
    /// The set number must follow the active set's.
    #[error("the set number must be {expected}")]
    SetNumber {
        /// The number expected.
        expected: u32,
    },
    /// SO cards are registered on the HSM by its owner, not over the link.
    #[error("SO cards are registered by the HSM owner with tessera-hsm")]
    DeviceSoSet,
    /// The set does not fit its ceremony: a ceremony registers a PSO set; a re-share keeps the
    /// quorum backup key; a revocation names a card of the active set, leaves it out, and
    /// changes the backup key; an enrolment revokes nothing.
    #[error(
        "the set does not fit its ceremony (enrol and enrol auditors: a PSO or an auditor set, \
         nothing revoked, no old shares; re-share keeps the backup key; revoke leaves the named \
         card out and changes the key; old shares only on cards of the active set that leave \
         it)"
    )]
    NotForCeremony,
    /// A card of the set gave no valid proof that it holds its key for this ceremony.
    #[error(
        "a card of the set (position {index}, counting from 0) did not prove it holds its key \
         for this ceremony: begin the ceremony again and present every card anew"
    )]
    NoProof {
        /// The card's position in the set (from 0).
        index: u8,
    },
    /// A card set registered outside a ceremony ([`AdminRequest::RegisterCardSet`], retired).
    #[error(
        "card sets are registered in a ceremony: begin one (enrol, enrol auditors, re-share, \
         revoke)"
    )]
    NeedsCeremony,
    /// A soft card in a set, on an HSM whose owner does not allow soft cards.
    #[error(
        "a card of the set (position {index}, counting from 0) is a soft card, and this HSM \
         does not accept soft cards \
         (its owner allows them with `tessera-hsm soft-cards allow`): use smartcards"
    )]
    SoftCardsRefused {
        /// The first soft card's position in the set (from 0).
        index: u8,
    },
}
