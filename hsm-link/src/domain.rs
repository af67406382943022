//! The domain types both ends of the link share, as plain data: the partition's configuration
//! and staged changes to it, key object summaries, card sets, quota usage.
//!
//! Every string and list that can arrive from the peer is bounded and checked on
//! deserialisation, so that a hostile peer can neither make us allocate without limit nor put
//! control characters on an operator's screen. Consistency across fields (an unlicensed option
//! turned on, a threshold above the number of cards) is checked by the `validate` methods.

pub mod bounded;
mod cards;
mod change;
mod config;
mod ids;
mod keys;
mod network;
mod usage;

pub use audit_log::{Actor, Role};
pub use cards::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, MAX_CARD_SERIAL_LEN,
    MAX_CARDS_PER_SET, MAX_HOLDER_NAME_LEN,
};
pub use change::{Parameter, ParameterChange};
pub use config::{
    ApiProviders, BYOK_PARTITION_SIZE, ByokTier, KeyExport, LicensedOption, MB, PartitionConfig,
    Quota, ServiceTier,
};
pub use ids::{CeremonyId, MAX_PARTITION_ID_LEN, PartitionId};
pub use keys::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, MAX_KEY_LABEL_LEN,
};
pub use network::{IpAllowList, IpNetwork, MAX_ALLOW_LIST_ENTRIES};
pub use usage::PartitionUsage;

use std::net::IpAddr;

/// A domain value that failed validation. Each message says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A partition id must be 1 to 64 bytes long.
    #[error("partition id is {len} bytes long: use 1 to 64 characters")]
    PartitionIdLength {
        /// The rejected id's length in bytes.
        len: usize,
    },
    /// A partition id may hold only `A-Z a-z 0-9 . _ -` and must start with a letter or digit.
    #[error(
        "partition id has a character outside A-Z a-z 0-9 . _ - or does not start with a letter or digit"
    )]
    PartitionIdCharacters,

    /// A key label is longer than [`MAX_KEY_LABEL_LEN`] bytes.
    #[error("key label is {len} bytes long: use at most 128 bytes")]
    KeyLabelLength {
        /// The rejected label's length in bytes.
        len: usize,
    },
    /// A key label holds a control or invisible formatting character.
    #[error(
        "key label holds a control or invisible formatting character: use printable characters only"
    )]
    KeyLabelCharacters,

    /// A card holder name is empty or longer than [`MAX_HOLDER_NAME_LEN`] bytes.
    #[error("card holder name is {len} bytes long: use 1 to 64 bytes")]
    HolderNameLength {
        /// The rejected name's length in bytes.
        len: usize,
    },
    /// A card holder name holds a control or invisible formatting character, or starts or ends
    /// with whitespace.
    #[error(
        "card holder name holds a control or invisible formatting character or surrounding spaces: use printable characters with no leading or trailing space"
    )]
    HolderNameCharacters,

    /// A card serial is empty or longer than [`MAX_CARD_SERIAL_LEN`] bytes.
    #[error("card serial is {len} bytes long: use 1 to 32 characters as the card reports them")]
    CardSerialLength {
        /// The rejected serial's length in bytes.
        len: usize,
    },
    /// A card serial holds something other than printable ASCII without spaces.
    #[error(
        "card serial holds a space or a character outside printable ASCII: write it as the card reports it, e.g. 000F:1A2B3C4D"
    )]
    CardSerialCharacters,

    /// A network's prefix is longer than its address.
    #[error(
        "network {addr}/{prefix_len} has a prefix longer than the address: use a prefix of 0 to {max}"
    )]
    NetworkPrefixTooLong {
        /// The network's address.
        addr: IpAddr,
        /// The rejected prefix length.
        prefix_len: u8,
        /// The longest prefix of the address family (32 or 128).
        max: u8,
    },
    /// A network's address has bits set after the prefix (`10.0.0.1/8`).
    #[error(
        "network {addr}/{prefix_len} has address bits set after the prefix: write {network}/{prefix_len} for the network, or {addr} alone for the single address"
    )]
    NetworkHostBitsSet {
        /// The address as given.
        addr: IpAddr,
        /// The prefix length as given.
        prefix_len: u8,
        /// The network the prefix denotes.
        network: IpAddr,
    },
    /// Text that is neither an IP address nor a CIDR network.
    #[error(
        "{text:?} is not an IP address or network: write e.g. 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32"
    )]
    NetworkSyntax {
        /// The rejected text (at most its first 64 characters).
        text: String,
    },
    /// An IP allow-list with more than [`MAX_ALLOW_LIST_ENTRIES`] entries.
    #[error(
        "IP allow-list has {len} entries: use at most 256, merging neighbouring addresses into networks"
    )]
    AllowListTooLong {
        /// The rejected list's length.
        len: usize,
    },
    /// An IP allow-list that names an entry twice.
    #[error("IP allow-list names {entry} twice: remove the duplicate")]
    AllowListDuplicate {
        /// The repeated entry.
        entry: IpNetwork,
    },

    /// A licensed option is on although the subscription does not include it.
    #[error(
        "{} is on but not licensed: turn it off, or have the HSM operator record the licence first",
        parameter.label()
    )]
    UnlicensedOptionEnabled {
        /// The option.
        parameter: Parameter,
    },
    /// A quota of zero bytes.
    #[error("partition size quota is 0 bytes: use the size of the partition's service tier")]
    QuotaSizeZero,
    /// An object limit of zero.
    #[error("object limit is 0, so no key could be created: use no limit or a limit of at least 1")]
    ObjectLimitZero,
    /// A parameter name that names no parameter.
    #[error(
        "{name:?} is not a configuration parameter: use one of {}",
        change::parameter_names()
    )]
    UnknownParameter {
        /// The rejected name (at most its first 64 characters).
        name: String,
    },

    /// A card set with no cards or more than [`MAX_CARDS_PER_SET`].
    #[error("card set has {cards} cards: use 1 to 16 cards")]
    CardSetSize {
        /// The number of cards.
        cards: usize,
    },
    /// A card set threshold of 0 or above the number of cards.
    #[error(
        "card set threshold is {threshold} of {cards} cards: use a threshold from 1 to the number of cards"
    )]
    CardSetThreshold {
        /// The rejected threshold (m).
        threshold: u8,
        /// The number of cards (n).
        cards: usize,
    },
    /// A card listed twice in a set.
    #[error("card {serial} appears twice in the card set: list each card once")]
    CardSetDuplicateSerial {
        /// The repeated serial.
        serial: CardSerial,
    },
    /// Two cards of a set with the same signing key.
    #[error(
        "card {serial} has the same signing key as another card of the set: every card needs its own key, so re-initialise one of them"
    )]
    CardSetDuplicateSigningKey {
        /// The serial of the later card with the repeated key.
        serial: CardSerial,
    },
    /// A device-SO set whose threshold would let one card log in.
    #[error(
        "device-SO card set threshold is {threshold}: four eyes need a threshold of at least 2"
    )]
    DeviceSoThreshold {
        /// The rejected threshold.
        threshold: u8,
    },
    /// A device-SO set whose cards all belong to one person.
    #[error(
        "device-SO card set has cards of only one holder: enrol cards of at least two different people"
    )]
    DeviceSoSingleHolder,
}
