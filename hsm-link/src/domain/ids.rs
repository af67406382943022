//! Identifiers shared by both ends of the link.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// Longest partition id accepted, in bytes.
pub const MAX_PARTITION_ID_LEN: usize = 64;

/// A partition's id: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or
/// digit. Validated on construction and on deserialisation, so a hostile peer cannot smuggle
/// control characters onto an operator's screen or into the log.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartitionId(String);

impl PartitionId {
    /// Checks `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, DomainError> {
        let id = id.into();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > MAX_PARTITION_ID_LEN {
            return Err(DomainError::PartitionIdLength { len: id.len() });
        }
        if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) || !id.chars().all(valid_char) {
            return Err(DomainError::PartitionIdCharacters);
        }
        Ok(PartitionId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PartitionId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PartitionId::new(value)
    }
}

impl From<PartitionId> for String {
    fn from(value: PartitionId) -> Self {
        value.0
    }
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PartitionId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartitionId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_are_checked() {
        assert!(PartitionId::new("bank-payments.01").is_ok());
        assert_eq!(
            PartitionId::new(""),
            Err(DomainError::PartitionIdLength { len: 0 })
        );
        assert_eq!(
            PartitionId::new("a".repeat(65)),
            Err(DomainError::PartitionIdLength { len: 65 })
        );
        assert_eq!(
            PartitionId::new("-lead"),
            Err(DomainError::PartitionIdCharacters)
        );
        assert_eq!(
            PartitionId::new("esc\u{1b}[2J"),
            Err(DomainError::PartitionIdCharacters)
        );
    }

    #[test]
    fn deserialisation_validates() {
        let bytes = postcard::to_stdvec(&String::from("bad id")).unwrap();
        assert!(postcard::from_bytes::<PartitionId>(&bytes).is_err());
        let bytes = postcard::to_stdvec(&String::from("good")).unwrap();
        assert_eq!(
            postcard::from_bytes::<PartitionId>(&bytes)
                .unwrap()
                .as_str(),
            "good"
        );
    }
}

/// The id of a ceremony the HSM opened (`BeginCeremony`): 128 random bits that bind every step
/// of that ceremony, shown on screen and in the log as 32 lowercase hex digits. On the wire it
/// is exactly its 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CeremonyId(pub [u8; 16]);

impl std::fmt::Display for CeremonyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for CeremonyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CeremonyId({self})")
    }
}

#[cfg(test)]
mod ceremony_id_tests {
    use super::CeremonyId;

    #[test]
    fn shown_as_hex_and_sent_as_its_sixteen_bytes() {
        let id = CeremonyId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        let wire = postcard::to_allocvec(&id).unwrap();
        assert_eq!(wire, postcard::to_allocvec(&[0xabu8; 16]).unwrap());
        assert_eq!(postcard::from_bytes::<CeremonyId>(&wire).unwrap(), id);
    }
}
