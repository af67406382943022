//! What a terminal asks of a partition (variants appended at the end only: their order
//! is the wire's).

use super::*;

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
    /// A page of key objects, filtered and sorted at the HSM.
    ListKeys(KeyQuery),
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
