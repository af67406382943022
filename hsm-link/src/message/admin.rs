//! The partition administration vocabulary of protocol version 1: logins, configuration, keys
//! and the bin, credentials, card sets and the log. The link carries it; the partition service
//! decides and enforces.

use crate::domain::CeremonyId;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::bounded::{deserialize_string, deserialize_vec, is_printable};
use crate::domain::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, KeyId, KeyLabel,
    KeyObjectSummary, MAX_CARDS_PER_SET, Parameter, PartitionConfig, PartitionUsage, Role,
    ServiceTier,
};
use crate::keys::{Fingerprint, PublicKey};

/// Bytes of lines or keys one page carries at most: a page fits in one link packet with room
/// for its header. A page that reaches it ends early and says where the next one starts.
pub const MAX_PAGE_BYTES: usize = 56 * 1024;
/// Most keys in one page of a listing.
pub const MAX_KEYS_PER_PAGE: usize = 1000;
/// Most log lines in one page.
pub const MAX_LOG_LINES_PER_PAGE: usize = 1000;
/// Longest log line carried (the audit log's canonical lines are far shorter).
pub const MAX_LOG_LINE: usize = 16 * 1024;
/// Longest text filter in a log query.
pub const MAX_FILTER_TEXT: usize = 64;
/// Longest quorum backup public key (X-Wing public keys are 1,216 bytes).
pub const MAX_RECOVERY_PUBLIC_KEY: usize = 2048;
/// Longest encoded set of Feldman commitments (16 compressed P-256 points and a generator).
pub const MAX_COMMITMENTS: usize = 17 * 33 + 64;
/// Longest backup header carried in a restore (the container's own bound).
pub const MAX_BACKUP_HEADER: usize = 2048;
/// Longest backup trailer carried at the end of a backup (the container's fixed part).
pub const MAX_BACKUP_TRAILER: usize = 256;
/// Most bytes of a backup file one restore upload request carries: one request fits one link
/// packet with room for its header.
pub const MAX_RESTORE_CHUNK: usize = 48 * 1024;
/// Most keys a restore diff names per kind of change (the counts are always whole): each
/// with a label of up to 128 bytes, four full lists still fit one link packet.
pub const MAX_DIFF_KEYS: usize = 100;
/// Most pinned terminals one listing carries (far more than a partition is paired with; a
/// partition with more lists the first ones by fingerprint).
pub const MAX_TERMINALS_LISTED: usize = 1000;

/// Roles that log in with cards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OfficerRole {
    /// Partition Security Officers: m of the partition's PSO set.
    Pso,
    /// Partition auditors: m of the auditor set; read-only.
    Auditor,
    /// Device Security Officers: SO cards of at least two different people.
    DeviceSo,
}

impl OfficerRole {
    /// The log's role for this officer role.
    pub fn role(self) -> Role {
        match self {
            OfficerRole::Pso => Role::Pso,
            OfficerRole::Auditor => Role::Auditor,
            OfficerRole::DeviceSo => Role::DeviceSo,
        }
    }
}

/// One card's signature: over [`login_message`] in a login, over [`enrolment_message`] as a
/// proof of possession in a card-set registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSignature {
    /// The card's Ed25519 signing public key (it names the card).
    pub signing_key: [u8; 32],
    /// The Ed25519 signature.
    #[serde(with = "serde_bytes")]
    pub signature: [u8; 64],
}

/// The bytes each card signs to log in: a label, the channel binding (the Noise handshake hash
/// of this session), the HSM's fresh nonce, the partition and the role. A signature therefore
/// works for this session, this challenge, this partition and this role only.
pub fn login_message(
    channel_binding: &[u8; 32],
    nonce: &[u8; 32],
    partition: &crate::domain::PartitionId,
    role: OfficerRole,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(160);
    m.extend_from_slice(b"tessera login v1\0");
    m.extend_from_slice(channel_binding);
    m.extend_from_slice(nonce);
    m.extend_from_slice(&(partition.as_str().len() as u32).to_be_bytes());
    m.extend_from_slice(partition.as_str().as_bytes());
    m.push(match role {
        OfficerRole::Pso => 1,
        OfficerRole::Auditor => 2,
        OfficerRole::DeviceSo => 3,
    });
    m
}

/// The bytes each card signs when it joins a card set in a ceremony (its proof of possession):
/// a label, the channel binding of this session, the ceremony's id, the partition, the set's
/// kind and number, and the card as it will be registered (holder, serial, signing key, soft
/// or not). The HSM registers a set only when every card signed this for the registration's
/// own ceremony: whoever registers a set held each of its private keys in this session, for
/// this ceremony and this set. So nobody enrols another person's public key without that
/// person's card, no card is registered under another holder or serial than it signed, and a
/// proof made for one session, ceremony, partition or set does not serve another. (A terminal
/// can still make a key in software and sign for it: the proof says a key was held, not that
/// it lives on a smartcard.)
pub fn enrolment_message(
    channel_binding: &[u8; 32],
    ceremony: &CeremonyId,
    partition: &crate::domain::PartitionId,
    kind: CardSetKind,
    set_number: u32,
    card: &CardDescription,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    m.extend_from_slice(b"tessera card enrolment v1\0");
    m.extend_from_slice(channel_binding);
    m.extend_from_slice(&ceremony.0);
    for field in [
        partition.as_str(),
        card.holder.as_str(),
        card.serial.as_str(),
    ] {
        m.extend_from_slice(&(field.len() as u32).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m.push(match kind {
        CardSetKind::Pso => 1,
        CardSetKind::Auditor => 2,
        CardSetKind::DeviceSo => 3,
    });
    m.extend_from_slice(&set_number.to_be_bytes());
    m.extend_from_slice(&card.signing_key);
    m.push(u8::from(card.soft_card));
    m
}

/// The bytes a card signs to report its own share drill: a label, the channel binding of this
/// session, the partition, the set's number, the card's serial and the result. The HSM logs a
/// drill only with the signature of the card it names, so a report speaks for a card that was
/// present with its PIN, not for the terminal's word about it.
pub fn drill_message(
    channel_binding: &[u8; 32],
    partition: &crate::domain::PartitionId,
    set_number: u32,
    card_serial: &CardSerial,
    ok: bool,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(160);
    m.extend_from_slice(b"tessera share drill v1\0");
    m.extend_from_slice(channel_binding);
    for field in [partition.as_str(), card_serial.as_str()] {
        m.extend_from_slice(&(field.len() as u32).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m.extend_from_slice(&set_number.to_be_bytes());
    m.push(u8::from(ok));
    m
}

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

/// The public parts of the recovery quorum registered with a PSO card set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPublic {
    /// The quorum backup public key (X-Wing), to which every backup's data key is wrapped.
    #[serde(
        serialize_with = "serde_bytes::serialize",
        deserialize_with = "de_recovery_key"
    )]
    pub backup_public_key: Vec<u8>,
    /// The Feldman commitments of the shares (for m = 1, the secret's public point).
    #[serde(
        serialize_with = "serde_bytes::serialize",
        deserialize_with = "de_commitments"
    )]
    pub commitments: Vec<u8>,
}

/// Outcomes a log query can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeFilter {
    /// Only successes.
    Ok,
    /// Only refusals (policy, role, login).
    Refused,
    /// Only failures.
    Failed,
}

/// A range and filter over the partition log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// First sequence number wanted. An export reads 1 as "the oldest entry stored" and 0 as
    /// "the entry after the last confirmed export".
    pub from_seq: u64,
    /// Last sequence number wanted, if any.
    pub to_seq: Option<u64>,
    /// Most lines in a page (at most [`MAX_LOG_LINES_PER_PAGE`]); ignored by an export.
    pub limit: u32,
    /// Only entries of this role.
    pub role: Option<Role>,
    /// Only operations starting with this text (e.g. `config.`).
    #[serde(deserialize_with = "de_filter_text")]
    pub operation_prefix: Option<String>,
    /// Only entries in which this holder took part.
    #[serde(deserialize_with = "de_filter_text")]
    pub holder: Option<String>,
    /// Only entries with this outcome.
    pub outcome: Option<OutcomeFilter>,
}

impl LogQuery {
    /// Everything from `from_seq` on, a page of `limit` lines.
    pub fn from(from_seq: u64, limit: u32) -> Self {
        LogQuery {
            from_seq,
            to_seq: None,
            limit,
            role: None,
            operation_prefix: None,
            holder: None,
            outcome: None,
        }
    }
}

/// A page of the log: canonical lines (entries and checkpoints), as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// The lines, in sequence order.
    #[serde(deserialize_with = "de_log_lines")]
    pub lines: Vec<String>,
    /// Where the next page starts, if there is more.
    pub next_seq: Option<u64>,
    /// Set when the log nears or reaches its configured size.
    pub warning: Option<LogSpace>,
}

/// How full the partition log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpace {
    /// Entries stored.
    pub entries: u64,
    /// The configured maximum.
    pub capacity: u64,
    /// Entries not yet confirmed as exported.
    pub unexported: u64,
}

/// The partition's status a pinned terminal reads before a login: the log's state (how full,
/// how much is not exported yet, the policy), and which HSM and service tier it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    /// Entries stored now.
    pub entries: u64,
    /// Entries stored and not yet confirmed as exported (read back from a drive).
    pub unexported: u64,
    /// The last entry confirmed as exported, if any.
    pub confirmed_up_to: Option<u64>,
    /// The last entry written, if any.
    pub last_seq: Option<u64>,
    /// The configured log limit: most entries kept.
    pub capacity: u64,
    /// Of the limit, entries kept back for the export that frees space, its confirmation and a
    /// quorum login: ordinary operations stop at `capacity - reserve`.
    pub reserve: u64,
    /// What the partition does when the log is full.
    pub when_full: FullLogPolicy,
    // Appended after the log's fields: postcard encodes a struct by field order.
    /// The HSM's identity key, from which its id is derived ([`LogStatus::hsm_id`]).
    pub hsm_key: PublicKey,
    /// The partition's service tier.
    pub tier: ServiceTier,
}

impl LogStatus {
    /// The HSM's id (`hsm-` and 16 hex digits), as its log exports name it.
    pub fn hsm_id(&self) -> String {
        self.hsm_key.hsm_id()
    }

    /// Entries ordinary operations may fill: the limit less the reserve.
    pub fn usable(&self) -> u64 {
        self.capacity.saturating_sub(self.reserve)
    }

    /// How full the log is, in percent of [`LogStatus::usable`] (100 when nothing is usable).
    pub fn percent_full(&self) -> u64 {
        match self.usable() {
            0 => 100,
            usable => self.entries.saturating_mul(100) / usable,
        }
    }
}

/// What a partition does when its log is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullLogPolicy {
    /// Refuse every logged operation (except an export, its confirmation and a quorum login)
    /// until an officer exports and confirms.
    Refuse,
    /// Prune entries confirmed as exported when room is needed; refuse if none are.
    PruneConfirmed,
}

impl std::fmt::Display for FullLogPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FullLogPolicy::Refuse => "refuse logged operations until an export is confirmed",
            FullLogPolicy::PruneConfirmed => "prune entries confirmed as exported",
        })
    }
}

/// Credentials shown once after a reset.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCredentials {
    /// The one-time setup password the application trades for its permanent secret.
    #[serde(deserialize_with = "de_password")]
    pub setup_password: String,
    /// When it expires unless used (seconds since the Unix epoch).
    pub expires_unix: u64,
}

impl std::fmt::Debug for NewCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredentials")
            .field("setup_password", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
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

/// A list of keys in a restore diff: the whole count, and the first keys (at most
/// [`MAX_DIFF_KEYS`]) named by label and id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIdList {
    /// How many keys.
    pub count: u64,
    /// The first of them, in id order.
    #[serde(deserialize_with = "de_diff_keys")]
    pub first: Vec<DiffKey>,
}

/// A key named in a restore diff, as a person knows it: its label, and its id to tell two
/// alike apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffKey {
    /// The key's id.
    pub id: KeyId,
    /// Its label (bounded on decode, as every label).
    pub label: KeyLabel,
    /// Whether it is in the bin: as the backup holds it for a key that comes back or changes
    /// state, as the partition holds it for a key the restore removes.
    pub in_bin: bool,
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

/// A pinned terminal, as [`AdminRequest::ListTerminals`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    /// The fingerprint of its link key.
    pub fingerprint: Fingerprint,
    /// When it paired (seconds since the Unix epoch), if the HSM recorded it.
    pub paired_unix: Option<u64>,
    /// When it last opened a session (seconds since the Unix epoch), if ever since pairing.
    pub last_seen_unix: Option<u64>,
    /// Whether it is the terminal of the session that asked.
    pub this_session: bool,
}

/// A one-time pairing code, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPairingCode {
    /// The code as issued (groups and check symbols), to be typed at the other terminal.
    #[serde(deserialize_with = "de_password")]
    pub code: String,
}

impl std::fmt::Debug for NewPairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPairingCode(<redacted>)")
    }
}

/// What a card-set ceremony does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CeremonyKind {
    /// Enrol a PSO set with a fresh recovery secret.
    Enrol,
    /// Move the same recovery secret to a new set.
    Reshare,
    /// Leave a card out: a fresh recovery secret for a new set without it.
    Revoke,
    /// Enrol an auditor set (card keys only, no share).
    EnrolAuditors,
}

impl CeremonyKind {
    /// The kind's name in logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Enrol => "enrol",
            CeremonyKind::Reshare => "reshare",
            CeremonyKind::Revoke => "revoke",
            CeremonyKind::EnrolAuditors => "enrol-auditors",
        }
    }
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

/// Operations, as the role/permission table names them.
///
/// Not `#[non_exhaustive]`: the HSM's table and its tests name every action ([`Action::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Read the configuration.
    ViewConfig,
    /// Change the configuration.
    ChangeConfig,
    /// Read usage.
    ViewUsage,
    /// List keys and the bin.
    ListKeys,
    /// Restore a key from the bin.
    RestoreKey,
    /// Purge a key from the bin.
    PurgeKey,
    /// Reset the application's credentials.
    ResetCredentials,
    /// Read the card sets.
    ViewCardSets,
    /// Register a card set.
    RegisterCardSet,
    /// Read the log.
    ReadLog,
    /// Export the log.
    ExportLog,
    /// Confirm a log export.
    ConfirmExport,
    /// Mark a key as a trusted wrapping key (or take the mark away).
    TrustKey,
    /// Back up the partition.
    Backup,
    /// Restore the partition from a backup.
    Restore,
    /// List the pinned terminals.
    ListTerminals,
    /// Revoke a pinned terminal.
    RevokeTerminal,
    /// Issue a management pairing code.
    IssuePairingCode,
}

impl Action {
    /// Every action, so that a role table and its tests cover each one.
    pub const ALL: [Action; 18] = [
        Action::ViewConfig,
        Action::ChangeConfig,
        Action::ViewUsage,
        Action::ListKeys,
        Action::RestoreKey,
        Action::PurgeKey,
        Action::ResetCredentials,
        Action::ViewCardSets,
        Action::RegisterCardSet,
        Action::ReadLog,
        Action::ExportLog,
        Action::ConfirmExport,
        Action::TrustKey,
        Action::Backup,
        Action::Restore,
        Action::ListTerminals,
        Action::RevokeTerminal,
        Action::IssuePairingCode,
    ];

    /// The action's name in logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewConfig => "view the configuration",
            Action::ChangeConfig => "change the configuration",
            Action::ViewUsage => "view usage",
            Action::ListKeys => "list keys",
            Action::RestoreKey => "restore a key from the bin",
            Action::PurgeKey => "purge a key from the bin",
            Action::ResetCredentials => "reset the application's credentials",
            Action::ViewCardSets => "view card sets",
            Action::RegisterCardSet => "register a card set",
            Action::ReadLog => "read the log",
            Action::ExportLog => "export the log",
            Action::ConfirmExport => "confirm a log export",
            Action::TrustKey => "mark a wrapping key trusted",
            Action::Backup => "back up the partition",
            Action::Restore => "restore the partition from a backup",
            Action::ListTerminals => "list the paired terminals",
            Action::RevokeTerminal => "revoke a paired terminal",
            Action::IssuePairingCode => "issue a pairing code",
        }
    }
}

// A new action does not compile until it has its place in `Action::ALL`: `place` names every
// variant, and each must sit at its place.
const _: () = {
    const fn place(action: Action) -> usize {
        match action {
            Action::ViewConfig => 0,
            Action::ChangeConfig => 1,
            Action::ViewUsage => 2,
            Action::ListKeys => 3,
            Action::RestoreKey => 4,
            Action::PurgeKey => 5,
            Action::ResetCredentials => 6,
            Action::ViewCardSets => 7,
            Action::RegisterCardSet => 8,
            Action::ReadLog => 9,
            Action::ExportLog => 10,
            Action::ConfirmExport => 11,
            Action::TrustKey => 12,
            Action::Backup => 13,
            Action::Restore => 14,
            Action::ListTerminals => 15,
            Action::RevokeTerminal => 16,
            Action::IssuePairingCode => 17,
        }
    }
    let mut i = 0;
    while i < Action::ALL.len() {
        assert!(place(Action::ALL[i]) == i, "Action::ALL out of order");
        i += 1;
    }
};

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

fn de_signatures<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CardSignature>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

fn de_cards<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CardDescription>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

fn de_serials<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CardSerial>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

fn de_holders<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HolderName>, D::Error> {
    deserialize_vec(d, MAX_CARDS_PER_SET)
}

fn de_terminals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TerminalInfo>, D::Error> {
    deserialize_vec(d, MAX_TERMINALS_LISTED)
}

fn de_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyObjectSummary>, D::Error> {
    deserialize_vec(d, MAX_KEYS_PER_PAGE)
}

#[derive(Deserialize)]
struct LogLine(#[serde(deserialize_with = "de_log_line")] String);

fn de_log_line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let line = deserialize_string(d, MAX_LOG_LINE)?;
    // Canonical log lines escape every control character: a raw one is not a log line.
    if line.chars().any(char::is_control) {
        return Err(serde::de::Error::custom("control character in a log line"));
    }
    Ok(line)
}

fn de_log_lines<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let lines: Vec<LogLine> = deserialize_vec(d, MAX_LOG_LINES_PER_PAGE)?;
    Ok(lines.into_iter().map(|l| l.0).collect())
}

fn de_filter_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Text(#[serde(deserialize_with = "de_text")] String);
    fn de_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let text = deserialize_string(d, MAX_FILTER_TEXT)?;
        if !is_printable(&text) {
            return Err(serde::de::Error::custom("unprintable filter text"));
        }
        Ok(text)
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

fn de_password<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = deserialize_string(d, 128)?;
    if !text.chars().all(|c| c.is_ascii_graphic() || c == '-') {
        return Err(serde::de::Error::custom(
            "setup password outside printable ASCII",
        ));
    }
    Ok(text)
}

fn de_backup_header<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_BACKUP_HEADER, "backup header too long")
}

fn de_backup_trailer<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_BACKUP_TRAILER, "backup trailer too long")
}

fn de_restore_chunk<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    de_bytes(d, MAX_RESTORE_CHUNK, "restore chunk too long")
}

fn de_bytes<'de, D: Deserializer<'de>>(
    d: D,
    max: usize,
    message: &'static str,
) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > max {
        return Err(serde::de::Error::custom(message));
    }
    Ok(bytes.into_vec())
}

fn de_diff_keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DiffKey>, D::Error> {
    deserialize_vec(d, MAX_DIFF_KEYS)
}

fn de_changes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::domain::ParameterChange>, D::Error> {
    deserialize_vec(d, crate::domain::Parameter::ALL.len())
}

fn de_recovery_key<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > MAX_RECOVERY_PUBLIC_KEY {
        return Err(serde::de::Error::custom("recovery public key too long"));
    }
    Ok(bytes.into_vec())
}

fn de_commitments<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
    if bytes.len() > MAX_COMMITMENTS {
        return Err(serde::de::Error::custom("commitments too long"));
    }
    Ok(bytes.into_vec())
}
