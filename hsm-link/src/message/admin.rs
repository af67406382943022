//! The partition administration vocabulary of protocol version 1: logins, configuration, keys
//! and the bin, credentials, card sets and the log. The link carries it; the partition service
//! decides and enforces.

use crate::domain::CeremonyId;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::bounded::{deserialize_string, deserialize_vec, is_printable};
use crate::domain::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, KeyId,
    KeyObjectSummary, MAX_CARDS_PER_SET, Parameter, PartitionConfig, PartitionUsage, Role,
    ServiceTier,
};
use crate::keys::{Fingerprint, PublicKey};

mod action;
mod de;
mod error;
mod limits;
mod log;
mod signing;
mod types;

pub use action::Action;
use de::*;
pub use error::{AdminError, BackupProblem, CardSetProblem, ConfigProblem, LoginRefusal};
pub use limits::{
    MAX_BACKUP_HEADER, MAX_BACKUP_TRAILER, MAX_COMMITMENTS, MAX_DIFF_KEYS, MAX_FILTER_TEXT,
    MAX_KEYS_PER_PAGE, MAX_LOG_LINE, MAX_LOG_LINES_PER_PAGE, MAX_PAGE_BYTES,
    MAX_RECOVERY_PUBLIC_KEY, MAX_RESTORE_CHUNK, MAX_TERMINALS_LISTED,
};
pub use log::{FullLogPolicy, LogPage, LogQuery, LogSpace, LogStatus, OutcomeFilter};
pub use signing::{CardSignature, OfficerRole, drill_message, enrolment_message, login_message};
pub use types::{CeremonyKind, NewCredentials, NewPairingCode, RecoveryPublic, TerminalInfo};

/// Which keys a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyFilter {
    /// Every key, active or in the bin.
    All,
    /// Keys the application can use.
    Active,
    /// The bin: invalidated keys.
    Invalidated,
}

/// Administration requests.
///
/// Not `#[non_exhaustive]`: both ends live in this workspace, and the HSM's dispatch names every
/// request, so a new one must not compile until the HSM answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Ask for a login challenge for a role.
    LoginChallenge {
        /// The role to log in as.
        role: OfficerRole,
    },
    /// Answer the challenge with card signatures.
    Login {
        /// The role to log in as (as in the challenge).
        role: OfficerRole,
        /// One signature per card, at most [`MAX_CARDS_PER_SET`].
        #[serde(deserialize_with = "de_signatures")]
        signatures: Vec<CardSignature>,
    },
    /// End the login (the session stays).
    Logout,
    /// The partition's configuration and its revision.
    GetConfig,
    /// Replace the configuration, if its revision is still `expected_revision`.
    ChangeConfig {
        /// The revision the terminal read and staged its change against.
        expected_revision: u64,
        /// The whole new configuration (its own revision field is ignored).
        config: Box<PartitionConfig>,
    },
    /// Space and objects used.
    GetUsage,
    /// A page of key objects.
    ListKeys {
        /// Which keys.
        filter: KeyFilter,
        /// Start after this id.
        after: Option<KeyId>,
        /// Most keys (at most [`MAX_KEYS_PER_PAGE`]).
        limit: u32,
    },
    /// Take a key out of the bin.
    RestoreKey {
        /// The key.
        id: KeyId,
    },
    /// Delete a key in the bin for good.
    PurgeKey {
        /// The key.
        id: KeyId,
    },
    /// Issue a new setup password for the application, ending its permanent secret.
    ResetCredentials,
    /// The registered PSO and auditor card sets.
    GetCardSets,
    /// Retired: the HSM refuses it ([`CardSetProblem::NeedsCeremony`]). Every card set is
    /// registered in a ceremony ([`AdminRequest::BeginCeremony`],
    /// [`AdminRequest::RegisterCardSetInCeremony`]), each card proving its key. The variant
    /// keeps its place so that the requests after it keep their wire numbers.
    RegisterCardSet {
        /// The set.
        set: Box<CardSetDescription>,
        /// For a PSO set: the recovery quorum's public parts.
        recovery: Option<Box<RecoveryPublic>>,
    },
    /// A page of the log.
    ReadLog {
        /// Range and filter.
        query: LogQuery,
    },
    /// The log as a bulk transfer of canonical lines, ending with a fresh signed checkpoint.
    ExportLog {
        /// Range and filter.
        query: LogQuery,
    },
    /// The terminal read its export back: entries up to `up_to_seq` are safely outside.
    ConfirmExport {
        /// Last sequence number confirmed.
        up_to_seq: u64,
    },
    /// Open a card-set ceremony (enrol, re-share, revoke, enrol auditors): the HSM answers with
    /// a fresh id,
    /// logs it, and remembers it as this session's one open ceremony (a new one replaces it).
    /// Every later step names the id, so a step of another ceremony cannot be slipped in.
    BeginCeremony {
        /// What the ceremony does.
        kind: CeremonyKind,
    },
    /// Register a card set as the last step of the open ceremony `ceremony`. The HSM refuses
    /// it ([`AdminError::CeremonyMismatch`]) unless `ceremony` is this session's open
    /// ceremony, checks the set against the ceremony's kind and every card's proof, logs the
    /// id, and closes the ceremony on success.
    RegisterCardSetInCeremony {
        /// The id [`AdminResponse::Ceremony`] gave.
        ceremony: CeremonyId,
        /// The set.
        set: Box<CardSetDescription>,
        /// The recovery quorum's public parts.
        recovery: Option<Box<RecoveryPublic>>,
        /// For a revocation: the card that is revoked (it must be in the active set and not in
        /// the new one).
        replaces_revoked: Option<CardSerial>,
        /// Cards of the active set that were not present, and so still hold a share of the old
        /// set (re-share) — logged with the registration.
        #[serde(deserialize_with = "de_serials")]
        old_shares_left: Vec<CardSerial>,
        /// Cards not in the set that may hold an envelope of it: each failed after its share
        /// was written and could not have it removed (pulled from its reader) — logged with
        /// the registration, so that the log says which cards hold a share to wipe. The
        /// terminal's report: the HSM checks only that none is in the set.
        #[serde(deserialize_with = "de_serials")]
        leftover_shares: Vec<CardSerial>,
        /// One proof per card of the set, in the set's order: the card's signature over
        /// [`enrolment_message`] for this session, this ceremony and this set.
        #[serde(deserialize_with = "de_signatures")]
        proofs: Vec<CardSignature>,
    },
    /// The PSO set's number, cards and recovery parts (public values: the quorum backup public
    /// key and the Feldman commitments), for a share drill or a ceremony. Answered without a
    /// login (the login challenge shows the same cards); a logged-in role needs the right to
    /// view card sets.
    GetRecoveryPublic,
    /// The result of a share drill: a holder's card yielded a share that did (or did not) pass
    /// its check against the commitments. Needs no login; logged as `quorum.drill`. Without a
    /// login, reports are rationed with the partition's other entries written without one
    /// ([`AdminError::DrillsThrottled`] beyond the ration).
    ReportDrill {
        /// The drilled card; it must be in the active PSO set.
        card_serial: CardSerial,
        /// Whether the share opened and passed its Feldman check.
        ok: bool,
        /// The card's signature over [`drill_message`] for this session, the active set, the
        /// card and the result.
        #[serde(with = "serde_bytes")]
        signature: [u8; 64],
    },
    /// Mark a stored key as a trusted wrapping key, or take the mark away (PKCS#11
    /// `CKA_TRUSTED`): only a trusted key may wrap another, so that a key the application knows
    /// cannot carry keys out in a form it can open. A PSO action, logged as `key.trust`.
    TrustKey {
        /// The key.
        id: KeyId,
        /// Trusted (`true`) or not.
        trusted: bool,
    },
    /// Seal the partition into a backup container at the HSM: answered with a bulk transfer
    /// of the file's bytes (header, chunks, signed trailer), then
    /// [`AdminResponse::BackupDone`]. Logged with the backup's digest.
    CreateBackup,
    /// Start uploading a backup file for a restore: its length and its header (which the HSM
    /// checks at once: this partition, this HSM, within the quota and object limit). A new
    /// upload replaces any earlier one of this session.
    RestoreBegin {
        /// The whole file's length, as the header's layout gives it.
        file_len: u64,
        /// The header bytes (the file's first bytes; the upload continues after them).
        #[serde(deserialize_with = "de_backup_header")]
        header: Vec<u8>,
    },
    /// The next bytes of the uploaded file, in order, after the header.
    RestoreChunk {
        /// At most [`MAX_RESTORE_CHUNK`] bytes.
        #[serde(deserialize_with = "de_restore_chunk")]
        bytes: Vec<u8>,
    },
    /// Decrypt and check every chunk and object of the uploaded backup at the HSM, changing
    /// nothing: answered with [`AdminResponse::RestoreDiff`].
    RestoreDryRun,
    /// Replace the partition's keys and configuration with the dry-run backup's, in one
    /// transaction that also logs it. Refused unless this session's last dry run was of this
    /// backup and the partition has not changed since.
    RestoreCommit {
        /// The header hash the dry run reported.
        header_hash: [u8; 32],
    },
    /// The terminals pinned for this partition ([`AdminResponse::Terminals`]).
    ListTerminals,
    /// Unpin a terminal: its open sessions end at once and it can no longer connect; logged.
    /// The terminal of this session is refused ([`AdminError::RevokingThisTerminal`]) unless
    /// `this_terminal` says it is meant.
    RevokeTerminal {
        /// The terminal's fingerprint.
        terminal: Fingerprint,
        /// Set to revoke the terminal this session runs on (the session then ends too).
        this_terminal: bool,
    },
    /// Issue a new one-time management pairing code for another terminal, replacing any
    /// outstanding one (a pairing begun under the old code then fails). Shown once; the log
    /// records the issue, never the code.
    IssuePairingCode,
    /// This HSM's X25519 backup public key ([`AdminResponse::BackupPublic`]): what a migration
    /// re-wraps a backup's data key to. Needs the right to restore.
    GetBackupPublic,
    /// Start uploading a backup made by another HSM, or of another partition, for a restore
    /// here: a migration. The HSM checks the header at once (signed by `source_key`, within
    /// this partition's quota and object limit); the upload then goes on with
    /// [`AdminRequest::RestoreChunk`], [`AdminRequest::RestoreDryRun`] and
    /// [`AdminRequest::RestoreCommit`]. The data key comes only re-wrapped to this HSM's
    /// backup key (by a quorum recovery ceremony on the terminal), never bare.
    MigrateBegin {
        /// The whole file's length, as the header's layout gives it.
        file_len: u64,
        /// The header bytes (the file's first bytes; the upload continues after them).
        #[serde(deserialize_with = "de_backup_header")]
        header: Vec<u8>,
        /// The source HSM's Ed25519 key, which the backup's trailer must verify under (the
        /// PSO supplies it: pinned for that HSM on the terminal, or from a key file).
        #[serde(with = "serde_bytes")]
        source_key: [u8; 32],
        /// The data key wrapped to this HSM's backup key (`usb_backup`'s migration wrapping,
        /// bound to the header).
        #[serde(with = "serde_bytes")]
        wrapped_key: [u8; 80],
    },
    /// The partition log's fill level, what is not exported yet and what happens when it is
    /// full ([`AdminResponse::LogStatus`]). Counts only, no log contents: answered without a
    /// login (a pinned terminal shows it before anyone logs in); a logged-in role follows the
    /// table ([`Action::ViewUsage`]).
    GetLogStatus,
}

/// A list of key ids in a restore diff: the whole count, and the first ids (at most
/// [`MAX_DIFF_KEYS`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIdList {
    /// How many keys.
    pub count: u64,
    /// The first of them, in id order.
    #[serde(deserialize_with = "de_key_ids")]
    pub first: Vec<KeyId>,
}

/// What a restore would change, from a dry run that decrypted and checked the whole backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreDiff {
    /// The backup's header hash (the commit names it).
    pub header_hash: [u8; 32],
    /// When the backup was made (Unix seconds).
    pub created_unix: u64,
    /// The backup's sequence number.
    pub sequence: u64,
    /// Key objects in the backup (the bin's included).
    pub objects_in_backup: u64,
    /// Key objects in the partition now.
    pub objects_now: u64,
    /// Keys the backup holds that the partition no longer does: purged or deleted since, they
    /// come back.
    pub returning: KeyIdList,
    /// Keys the partition holds that the backup does not: made since, they are destroyed.
    pub removed: KeyIdList,
    /// Keys active now that go back into the bin.
    pub into_bin: KeyIdList,
    /// Keys in the bin now that come back active.
    pub out_of_bin: KeyIdList,
    /// Configuration parameters that change (the quota and licences stay as the HSM owner set
    /// them).
    #[serde(deserialize_with = "de_changes")]
    pub config: Vec<crate::domain::ParameterChange>,
}

/// Administration responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResponse {
    /// A login challenge and the set whose cards may answer it.
    Challenge {
        /// The HSM's fresh nonce.
        nonce: [u8; 32],
        /// Signatures needed.
        threshold: u8,
        /// The cards that may sign.
        #[serde(deserialize_with = "de_cards")]
        cards: Vec<CardDescription>,
    },
    /// Logged in.
    LoggedIn {
        /// The role.
        role: OfficerRole,
        /// The holders whose cards signed.
        #[serde(deserialize_with = "de_holders")]
        holders: Vec<HolderName>,
        /// Set when the partition log nears or reaches its size: every session is warned.
        log_warning: Option<LogSpace>,
    },
    /// Done, nothing to report.
    Done,
    /// The configuration (with its revision).
    Config(Box<PartitionConfig>),
    /// The configuration changed; its new revision.
    ConfigChanged {
        /// The new revision.
        revision: u64,
    },
    /// Space and objects used.
    Usage(PartitionUsage),
    /// A page of keys.
    Keys {
        /// The keys.
        #[serde(deserialize_with = "de_keys")]
        keys: Vec<KeyObjectSummary>,
        /// Whether more follow.
        more: bool,
    },
    /// New application credentials, shown once.
    Credentials(NewCredentials),
    /// The registered card sets.
    CardSets {
        /// The active PSO set.
        pso: Option<Box<CardSetDescription>>,
        /// The active auditor set.
        auditor: Option<Box<CardSetDescription>>,
    },
    /// A page of the log.
    LogPage(LogPage),
    /// The end of a log export.
    ExportDone {
        /// Lines sent.
        lines: u64,
        /// Highest entry sequence number sent.
        last_seq: Option<u64>,
        /// The checkpoint over the export's last entry (sent before the closing checkpoint that
        /// ends the file; empty for an empty export).
        #[serde(deserialize_with = "de_log_line")]
        checkpoint: String,
    },
    /// A ceremony was opened; its id (show it on screen: the log carries it too).
    Ceremony {
        /// The ceremony's id.
        id: CeremonyId,
        /// Whether this HSM accepts soft cards in a card set: when not, the terminal refuses a
        /// soft card before it writes a single share.
        soft_cards_allowed: bool,
    },
    /// The active PSO set's public recovery parts.
    RecoveryPublic {
        /// The set's number (share envelopes are bound to it).
        set_number: u32,
        /// m.
        threshold: u8,
        /// The set's cards; the card at position i holds share i + 1.
        #[serde(deserialize_with = "de_cards")]
        cards: Vec<CardDescription>,
        /// The quorum backup public key and the commitments.
        recovery: Box<RecoveryPublic>,
    },
    /// The end of a backup's bulk transfer.
    BackupDone {
        /// Bytes sent (the file's length).
        file_len: u64,
        /// SHA-256 of the header sent.
        header_hash: [u8; 32],
        /// The signed trailer's fixed part, as sent last: the terminal compares its read-back
        /// against it.
        #[serde(deserialize_with = "de_backup_trailer")]
        trailer: Vec<u8>,
    },
    /// A restore dry run passed: what the restore would change.
    RestoreDiff(Box<RestoreDiff>),
    /// A restore was applied.
    Restored {
        /// The backup's header hash.
        header_hash: [u8; 32],
        /// Key objects the partition now holds.
        objects: u64,
    },
    /// The partition's pinned terminals, by fingerprint.
    Terminals {
        /// The terminals (at most [`MAX_TERMINALS_LISTED`]).
        #[serde(deserialize_with = "de_terminals")]
        terminals: Vec<TerminalInfo>,
    },
    /// A new one-time pairing code, shown once.
    PairingCode(NewPairingCode),
    /// This HSM's X25519 backup public key.
    BackupPublic {
        /// The key.
        key: [u8; 32],
    },
    /// Answer to [`AdminRequest::GetLogStatus`].
    LogStatus(LogStatus),
}
