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
