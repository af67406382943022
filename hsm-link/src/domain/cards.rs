//! Card sets as the HSM registers them: which role, which cards, whose, and how many must sign.
//! Public data only: holder names, serials and the cards' Ed25519 public keys.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::bounded::{BoundedString, deserialize_vec, is_printable};
use super::{DomainError, Role};

/// Longest card holder name accepted, in bytes (UTF-8).
pub const MAX_HOLDER_NAME_LEN: usize = 64;

/// Longest card serial accepted, in bytes.
pub const MAX_CARD_SERIAL_LEN: usize = 32;

/// Most cards in one card set.
pub const MAX_CARDS_PER_SET: usize = 16;

/// The role a card set logs in as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CardSetKind {
    /// Partition Security Officers.
    Pso,
    /// Partition auditors (read-only).
    Auditor,
    /// Device Security Officers of the HSM operator (four eyes).
    DeviceSo,
}

impl CardSetKind {
    /// The role a quorum of this set acts in.
    pub fn role(self) -> Role {
        match self {
            CardSetKind::Pso => Role::Pso,
            CardSetKind::Auditor => Role::Auditor,
            CardSetKind::DeviceSo => Role::DeviceSo,
        }
    }
}

impl fmt::Display for CardSetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role().as_str())
    }
}

/// The person a card is registered to: 1 to [`MAX_HOLDER_NAME_LEN`] bytes of printable text
/// with no leading or trailing whitespace, checked on construction and on deserialisation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "BoundedString<MAX_HOLDER_NAME_LEN>", into = "String")]
pub struct HolderName(String);

impl HolderName {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, DomainError> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_HOLDER_NAME_LEN {
            return Err(DomainError::HolderNameLength { len: name.len() });
        }
        if !is_printable(&name) || name.trim() != name {
            return Err(DomainError::HolderNameCharacters);
        }
        Ok(HolderName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when both names denote the same person for the four-eyes rule: equal after case
    /// folding and collapsing runs of whitespace, so that `Anna Muster` and `anna  muster`
    /// count as one holder.
    pub fn same_person_as(&self, other: &HolderName) -> bool {
        self.identity() == other.identity()
    }

    fn identity(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

impl TryFrom<BoundedString<MAX_HOLDER_NAME_LEN>> for HolderName {
    type Error = DomainError;
    fn try_from(value: BoundedString<MAX_HOLDER_NAME_LEN>) -> Result<Self, Self::Error> {
        HolderName::new(value.0)
    }
}

impl TryFrom<String> for HolderName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        HolderName::new(value)
    }
}

impl From<HolderName> for String {
    fn from(value: HolderName) -> Self {
        value.0
    }
}

impl fmt::Display for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A card's serial as the card reports it, e.g. `000F:1A2B3C4D` (an OpenPGP card's
/// manufacturer and serial number): 1 to [`MAX_CARD_SERIAL_LEN`] printable ASCII characters
/// without spaces, checked on construction and on deserialisation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "BoundedString<MAX_CARD_SERIAL_LEN>", into = "String")]
pub struct CardSerial(String);

impl CardSerial {
    /// Checks `serial` and wraps it.
    pub fn new(serial: impl Into<String>) -> Result<Self, DomainError> {
        let serial = serial.into();
        if serial.is_empty() || serial.len() > MAX_CARD_SERIAL_LEN {
            return Err(DomainError::CardSerialLength { len: serial.len() });
        }
        if !serial.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::CardSerialCharacters);
        }
        Ok(CardSerial(serial))
    }

    /// The serial as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<BoundedString<MAX_CARD_SERIAL_LEN>> for CardSerial {
    type Error = DomainError;
    fn try_from(value: BoundedString<MAX_CARD_SERIAL_LEN>) -> Result<Self, Self::Error> {
        CardSerial::new(value.0)
    }
}

impl TryFrom<String> for CardSerial {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CardSerial::new(value)
    }
}

impl From<CardSerial> for String {
    fn from(value: CardSerial) -> Self {
        value.0
    }
}

impl fmt::Display for CardSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One card of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDescription {
    /// The person the card is registered to.
    pub holder: HolderName,
    /// The card's serial.
    pub serial: CardSerial,
    /// The card's Ed25519 signing public key (the private half never leaves the card).
    pub signing_key: [u8; 32],
    /// A soft card (passphrase-sealed file, demo and laptops without a reader), labelled as such
    /// everywhere.
    pub soft_card: bool,
}

/// A card set: the cards registered for one role of a partition (or the HSM's device SOs), and
/// how many must sign a login (m of n).
///
/// Deserialisation refuses more than [`MAX_CARDS_PER_SET`] cards; everything else is checked by
/// [`CardSetDescription::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSetDescription {
    /// The role the set logs in as.
    pub kind: CardSetKind,
    /// The set's number: raised by one with every re-share or revocation, so that cards of an
    /// older set are recognised and refused.
    pub set_number: u32,
    /// m: how many distinct cards must sign a login.
    pub threshold: u8,
    /// The n cards.
    #[serde(deserialize_with = "deserialize_cards")]
    pub cards: Vec<CardDescription>,
}

fn deserialize_cards<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<CardDescription>, D::Error> {
    deserialize_vec(deserializer, MAX_CARDS_PER_SET)
}

impl CardSetDescription {
    /// The serials of the set's soft cards, comma-separated; empty if it has none.
    pub fn soft_serials(&self) -> String {
        let soft: Vec<&str> = self
            .cards
            .iter()
            .filter(|c| c.soft_card)
            .map(|c| c.serial.as_str())
            .collect();
        soft.join(", ")
    }

    /// Checks the set: 1 to [`MAX_CARDS_PER_SET`] cards, a threshold m with 1 ≤ m ≤ n, no serial
    /// and no signing key twice. A device-SO set must also keep four eyes possible: m ≥ 2, and
    /// cards of at least two different holders (compared with [`HolderName::same_person_as`]).
    ///
    /// This does not make every m cards span two people (one SO may hold m cards of the set):
    /// that a device-SO login's signatures come from two different holders is checked at each
    /// login by the partition service.
    pub fn validate(&self) -> Result<(), DomainError> {
        let cards = self.cards.len();
        if cards == 0 || cards > MAX_CARDS_PER_SET {
            return Err(DomainError::CardSetSize { cards });
        }
        let threshold = self.threshold;
        if threshold == 0 || usize::from(threshold) > cards {
            return Err(DomainError::CardSetThreshold { threshold, cards });
        }
        for (i, card) in self.cards.iter().enumerate() {
            let earlier = &self.cards[..i];
            if earlier.iter().any(|c| c.serial == card.serial) {
                return Err(DomainError::CardSetDuplicateSerial {
                    serial: card.serial.clone(),
                });
            }
            if earlier.iter().any(|c| c.signing_key == card.signing_key) {
                return Err(DomainError::CardSetDuplicateSigningKey {
                    serial: card.serial.clone(),
                });
            }
        }
        if self.kind == CardSetKind::DeviceSo {
            if threshold < 2 {
                return Err(DomainError::DeviceSoThreshold { threshold });
            }
            if self.distinct_holders() < 2 {
                return Err(DomainError::DeviceSoSingleHolder);
            }
        }
        Ok(())
    }

    /// How many different people hold the set's cards (see [`HolderName::same_person_as`]).
    pub fn distinct_holders(&self) -> usize {
        let mut seen: Vec<&HolderName> = Vec::new();
        for card in &self.cards {
            if !seen.iter().any(|h| h.same_person_as(&card.holder)) {
                seen.push(&card.holder);
            }
        }
        seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(holder: &str, n: u8) -> CardDescription {
        CardDescription {
            holder: HolderName::new(holder).unwrap(),
            serial: CardSerial::new(format!("000F:1A2B3C{n:02X}")).unwrap(),
            signing_key: [n; 32],
            soft_card: false,
        }
    }

    fn set(kind: CardSetKind, threshold: u8, cards: Vec<CardDescription>) -> CardSetDescription {
        CardSetDescription {
            kind,
            set_number: 1,
            threshold,
            cards,
        }
    }

    #[test]
    fn holder_names_are_checked() {
        assert!(HolderName::new("Anna Müller").is_ok());
        assert!(HolderName::new("x".repeat(64)).is_ok());
        assert_eq!(
            HolderName::new(""),
            Err(DomainError::HolderNameLength { len: 0 })
        );
        assert_eq!(
            HolderName::new("x".repeat(65)),
            Err(DomainError::HolderNameLength { len: 65 })
        );
        for bad in [
            " Anna",
            "Anna ",
            "An\nna",
            "\u{1b}]0;pwned\u{7}",
            "Ann\u{200B}a",
        ] {
            assert_eq!(
                HolderName::new(bad),
                Err(DomainError::HolderNameCharacters),
                "{bad:?}"
            );
        }
        let a = HolderName::new("Anna Muster").unwrap();
        assert!(a.same_person_as(&HolderName::new("anna  MUSTER").unwrap()));
        assert!(!a.same_person_as(&HolderName::new("Anna Muster-Keller").unwrap()));
    }

    #[test]
    fn serials_are_checked() {
        assert!(CardSerial::new("000F:1A2B3C4D").is_ok());
        assert!(CardSerial::new("x".repeat(32)).is_ok());
        assert_eq!(
            CardSerial::new(""),
            Err(DomainError::CardSerialLength { len: 0 })
        );
        assert_eq!(
            CardSerial::new("x".repeat(33)),
            Err(DomainError::CardSerialLength { len: 33 })
        );
        for bad in ["000F 1A2B", "000F:\u{7f}", "000F:\t", "Ä000F"] {
            assert_eq!(
                CardSerial::new(bad),
                Err(DomainError::CardSerialCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_and_serials_deserialise_checked() {
        let bytes = postcard::to_stdvec(&"x".repeat(65)).unwrap();
        assert!(postcard::from_bytes::<HolderName>(&bytes).is_err());
        let bytes = postcard::to_stdvec("tab\there").unwrap();
        assert!(postcard::from_bytes::<HolderName>(&bytes).is_err());
        let bytes = postcard::to_stdvec(&"0".repeat(33)).unwrap();
        assert!(postcard::from_bytes::<CardSerial>(&bytes).is_err());
        let bytes = postcard::to_stdvec("000F:1A2B3C4D").unwrap();
        assert_eq!(
            postcard::from_bytes::<CardSerial>(&bytes).unwrap().as_str(),
            "000F:1A2B3C4D"
        );
    }

    #[test]
    fn card_sets_are_validated() {
        let pso = set(
            CardSetKind::Pso,
            2,
            vec![card("Anna", 1), card("Ben", 2), card("Cleo", 3)],
        );
        pso.validate().unwrap();
        assert_eq!(pso.kind.role(), Role::Pso);

        let one_of_one = set(CardSetKind::Pso, 1, vec![card("Anna", 1)]);
        one_of_one.validate().unwrap();

        // m > n
        let over = set(CardSetKind::Pso, 4, pso.cards.clone());
        assert_eq!(
            over.validate(),
            Err(DomainError::CardSetThreshold {
                threshold: 4,
                cards: 3
            })
        );
        // m = 0
        let zero = set(CardSetKind::Auditor, 0, pso.cards.clone());
        assert_eq!(
            zero.validate(),
            Err(DomainError::CardSetThreshold {
                threshold: 0,
                cards: 3
            })
        );
        // n = 0, n = 17
        assert_eq!(
            set(CardSetKind::Pso, 1, vec![]).validate(),
            Err(DomainError::CardSetSize { cards: 0 })
        );
        let seventeen: Vec<_> = (0..17).map(|i| card(&format!("Holder {i}"), i)).collect();
        assert_eq!(
            set(CardSetKind::Pso, 2, seventeen.clone()).validate(),
            Err(DomainError::CardSetSize { cards: 17 })
        );
        set(CardSetKind::Pso, 16, seventeen[..16].to_vec())
            .validate()
            .unwrap();
        // duplicate serial
        let mut dup = card("Ben", 2);
        dup.serial = pso.cards[0].serial.clone();
        assert_eq!(
            set(CardSetKind::Pso, 1, vec![card("Anna", 1), dup]).validate(),
            Err(DomainError::CardSetDuplicateSerial {
                serial: CardSerial::new("000F:1A2B3C01").unwrap()
            })
        );
        // duplicate signing key
        let mut same_key = card("Ben", 2);
        same_key.signing_key = [1; 32];
        assert_eq!(
            set(CardSetKind::Pso, 1, vec![card("Anna", 1), same_key]).validate(),
            Err(DomainError::CardSetDuplicateSigningKey {
                serial: CardSerial::new("000F:1A2B3C02").unwrap()
            })
        );
    }

    #[test]
    fn device_so_sets_keep_four_eyes() {
        let so = set(
            CardSetKind::DeviceSo,
            2,
            vec![card("Anna", 1), card("Ben", 2)],
        );
        so.validate().unwrap();
        // Threshold 1: one SO alone could log in.
        let single = set(CardSetKind::DeviceSo, 1, so.cards.clone());
        assert_eq!(
            single.validate(),
            Err(DomainError::DeviceSoThreshold { threshold: 1 })
        );
        // Every card held by one person (written two ways).
        let one_holder = set(
            CardSetKind::DeviceSo,
            2,
            vec![
                card("Anna Muster", 1),
                card("anna muster", 2),
                card("Anna Muster", 3),
            ],
        );
        assert_eq!(one_holder.distinct_holders(), 1);
        assert_eq!(
            one_holder.validate(),
            Err(DomainError::DeviceSoSingleHolder)
        );
        // The same set is a valid PSO set: the four-eyes rule is the device SOs'.
        let pso = CardSetDescription {
            kind: CardSetKind::Pso,
            ..one_holder
        };
        pso.validate().unwrap();
    }

    #[test]
    fn over_long_card_list_is_refused_on_deserialise() {
        let cards: Vec<_> = (0..17).map(|i| card(&format!("Holder {i}"), i)).collect();
        let bytes = postcard::to_stdvec(&set(CardSetKind::Pso, 2, cards.clone())).unwrap();
        assert!(postcard::from_bytes::<CardSetDescription>(&bytes).is_err());
        let ok = set(CardSetKind::Pso, 2, cards[..16].to_vec());
        let bytes = postcard::to_stdvec(&ok).unwrap();
        assert_eq!(
            postcard::from_bytes::<CardSetDescription>(&bytes).unwrap(),
            ok
        );
    }
}
