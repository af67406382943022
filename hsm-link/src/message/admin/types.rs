//! The values requests and responses carry: key filters, recovery keys, new credentials,
//! restore diffs, paired terminals, pairing codes, ceremony kinds.

use super::*;

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

/// The order of a key listing. The HSM keeps an index per order (written in the transaction
/// that writes the key), so a page costs the same at any depth of the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySort {
    /// By id: the order the keys were created in.
    #[default]
    Id,
    /// By label, case-insensitively (then by id).
    Label,
    /// By size (then by id).
    Size,
    /// By creation time (then by id).
    Created,
}

/// Where a key stands in a listing: the fields every order sorts by. The terminal takes it from
/// a row it holds, so a page continues from there even if that key left the list meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPosition {
    /// The key's id (every order's last tie-breaker).
    pub id: KeyId,
    /// Its label.
    pub label: KeyLabel,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// When it was created.
    pub created_unix: u64,
}

impl KeyPosition {
    /// The position of a listed key.
    pub fn of(key: &KeyObjectSummary) -> KeyPosition {
        KeyPosition {
            id: key.id,
            label: key.label.clone(),
            size_bytes: key.size_bytes,
            created_unix: key.created_unix,
        }
    }
}

/// Where a page of keys starts, in the listing's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyCursor {
    /// The first keys.
    First,
    /// The last keys.
    Last,
    /// The keys after this position.
    After(KeyPosition),
    /// The keys before this position (the page still comes in the listing's order).
    Before(KeyPosition),
}

/// A page of a partition's keys: which ones, in which order, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyQuery {
    /// Active keys, the bin, or both.
    pub filter: KeyFilter,
    /// Only keys whose label contains this text (case-insensitive).
    #[serde(deserialize_with = "de_filter_text")]
    pub label_contains: Option<String>,
    /// Only keys of this kind.
    pub kind: Option<KeyKind>,
    /// The order.
    pub sort: KeySort,
    /// Largest, newest, last first.
    pub descending: bool,
    /// Where the page starts.
    pub from: KeyCursor,
    /// Most keys (at most [`MAX_KEYS_PER_PAGE`]).
    pub limit: u32,
    /// Whether to count the keys matching (the answer's `matching`). Without a label or kind
    /// filter the count is free; with one it reads the whole index once, so a terminal asks
    /// for it when the filter changes, not for every page.
    pub count: bool,
}

impl KeyQuery {
    /// The first `limit` keys of `filter`, by id, counted.
    pub fn first(filter: KeyFilter, limit: u32) -> KeyQuery {
        KeyQuery {
            filter,
            label_contains: None,
            kind: None,
            sort: KeySort::Id,
            descending: false,
            from: KeyCursor::First,
            limit,
            count: true,
        }
    }

    /// Whether the page is read backwards from its cursor.
    pub fn backwards(&self) -> bool {
        matches!(self.from, KeyCursor::Last | KeyCursor::Before(_))
    }
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
