//! Officer roles and the messages their cards sign: a login, an enrolment, a drill.

use super::*;

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
