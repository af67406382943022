//! What the partition answers (variants appended at the end only: their order is the
//! wire's).

use super::*;

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
        /// Whether more follow in the direction read (after the page, or before it when read
        /// backwards).
        more: bool,
        /// How many keys match the query's filters, when it asked.
        matching: Option<u64>,
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
