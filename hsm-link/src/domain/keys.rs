//! Key objects as the terminal lists them: id, label, kind, flags, size and state (active or in
//! the bin). No key material ever travels in these types.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::bounded::{BoundedString, is_printable};

/// Longest key label accepted, in bytes (UTF-8).
pub const MAX_KEY_LABEL_LEN: usize = 128;

/// A key object's id within its partition. Ids stay taken while a key sits in the bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(pub u64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A key's label: at most [`MAX_KEY_LABEL_LEN`] bytes of printable text (no control characters,
/// no bidirectional overrides or invisible formatting characters), checked on construction and
/// on deserialisation. May be empty: PKCS#11 allows an unlabelled key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "BoundedString<MAX_KEY_LABEL_LEN>", into = "String")]
pub struct KeyLabel(String);

impl KeyLabel {
    /// Checks `label` and wraps it.
    pub fn new(label: impl Into<String>) -> Result<Self, DomainError> {
        let label = label.into();
        if label.len() > MAX_KEY_LABEL_LEN {
            return Err(DomainError::KeyLabelLength { len: label.len() });
        }
        if !is_printable(&label) {
            return Err(DomainError::KeyLabelCharacters);
        }
        Ok(KeyLabel(label))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<BoundedString<MAX_KEY_LABEL_LEN>> for KeyLabel {
    type Error = DomainError;
    fn try_from(value: BoundedString<MAX_KEY_LABEL_LEN>) -> Result<Self, Self::Error> {
        KeyLabel::new(value.0)
    }
}

impl TryFrom<String> for KeyLabel {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        KeyLabel::new(value)
    }
}

impl From<KeyLabel> for String {
    fn from(value: KeyLabel) -> Self {
        value.0
    }
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of a key object. More kinds will follow; match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyKind {
    /// AES with a 256-bit key.
    Aes256,
    /// Ed25519 key pair.
    Ed25519,
    /// ECDSA/ECDH key pair on NIST P-256.
    EcP256,
}

impl KeyKind {
    /// The kind as shown: `AES-256`, `Ed25519`, `EC P-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Aes256 => "AES-256",
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::EcP256 => "EC P-256",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key's access flags, as the seed names them (`ACCESS_EXTRACTABLE`, `ACCESS_SENSITIVE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyAttributes {
    /// The key may leave the HSM (wrapped, or in plain if also not sensitive), when the
    /// partition's key export allows it.
    pub extractable: bool,
    /// The key may never leave the HSM in plain.
    pub sensitive: bool,
    /// The key's attributes may be changed after creation.
    pub modifiable: bool,
}

/// Whether a key is in use or in the bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    /// In use.
    Active,
    /// Deleted by the application while key invalidation was on: in the bin, still counting
    /// against the quota, restorable or purgeable by a PSO.
    Invalidated {
        /// When it was invalidated, in seconds since the Unix epoch.
        invalidated_unix: u64,
    },
}

impl KeyState {
    /// True for a key in the bin.
    pub fn is_invalidated(&self) -> bool {
        matches!(self, KeyState::Invalidated { .. })
    }
}

/// One key object as listed to the terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyObjectSummary {
    /// The key's id.
    pub id: KeyId,
    /// The key's label.
    pub label: KeyLabel,
    /// What kind of key it is.
    pub kind: KeyKind,
    /// Its access flags.
    pub attributes: KeyAttributes,
    /// When it was created, in seconds since the Unix epoch.
    pub created_unix: u64,
    /// The space it takes against the partition's quota, in bytes.
    pub size_bytes: u64,
    /// Active or in the bin.
    pub state: KeyState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        assert!(KeyLabel::new("payments-signing 2026 (prod) – Zürich").is_ok());
        assert!(KeyLabel::new("").is_ok());
        assert!(KeyLabel::new("x".repeat(128)).is_ok());
        // 127 ASCII bytes and a two-byte character: 129 bytes.
        assert_eq!(
            KeyLabel::new(format!("{}é", "x".repeat(127))),
            Err(DomainError::KeyLabelLength { len: 129 })
        );
        for bad in [
            "tab\there",
            "new\nline",
            "\u{1b}[31mred",
            "nul\0",
            "rtl\u{202E}gnp.exe",
        ] {
            assert_eq!(
                KeyLabel::new(bad),
                Err(DomainError::KeyLabelCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn labels_deserialise_checked() {
        let ok = postcard::to_stdvec("backup-kek").unwrap();
        assert_eq!(
            postcard::from_bytes::<KeyLabel>(&ok).unwrap().as_str(),
            "backup-kek"
        );
        let long = postcard::to_stdvec(&"x".repeat(129)).unwrap();
        assert!(postcard::from_bytes::<KeyLabel>(&long).is_err());
        let control = postcard::to_stdvec("bell\u{7}").unwrap();
        assert!(postcard::from_bytes::<KeyLabel>(&control).is_err());
    }

    #[test]
    fn summaries_round_trip() {
        let summary = KeyObjectSummary {
            id: KeyId(7),
            label: KeyLabel::new("kek").unwrap(),
            kind: KeyKind::EcP256,
            attributes: KeyAttributes {
                extractable: true,
                sensitive: true,
                modifiable: false,
            },
            created_unix: 1_790_000_000,
            size_bytes: 312,
            state: KeyState::Invalidated {
                invalidated_unix: 1_790_000_100,
            },
        };
        assert!(summary.state.is_invalidated());
        let bytes = postcard::to_stdvec(&summary).unwrap();
        assert_eq!(
            postcard::from_bytes::<KeyObjectSummary>(&bytes).unwrap(),
            summary
        );
    }
}
