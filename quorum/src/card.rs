//! Officer cards behind one interface, with a typestate: a card must be verified with its PIN
//! before it signs or gives up its share.
//!
//! [`Card`] is the card as inserted: it tells who it belongs to ([`CardInfo`]) and can be
//! verified, nothing more. [`Card::verify`] consumes it and, with the right PIN, returns the
//! [`VerifiedCard`] — the only type that signs, deciphers, and reads or writes the share object.
//! With a wrong PIN it hands the unverified card back with [`CardError::WrongPin`], so a ceremony
//! can ask again without re-opening the card. (This follows openpgp-card-sequoia's
//! `Card<Open> -> Card<User>`.)
//!
//! The guarantee is made by the compiler. An unverified soft card has no `sign`:
//!
//! ```compile_fail
//! use quorum::card::{Card as _, VerifiedCard as _};
//! fn sign_unverified(card: &mut quorum::soft::SoftCard) {
//!     let _ = card.sign(b"challenge");
//! }
//! ```
//!
//! while the verified one has:
//!
//! ```
//! use quorum::card::VerifiedCard as _;
//! fn sign_verified(card: &mut quorum::soft::VerifiedSoftCard) {
//!     let _ = card.sign(b"challenge");
//! }
//! ```
//!
//! Smartcards (OpenPGP cards over PC/SC, [`crate::pcsc`]) implement the same traits: the card
//! checks its own PIN with its own retry counter, signs with its on-card Ed25519 key (PSO:CDS),
//! does the X25519 ECDH for [`VerifiedCard::decipher`] on the card (PSO:DECIPHER), and keeps the
//! share envelope in a private-use data object that needs the PIN to read.

use std::fmt;

use zeroize::Zeroizing;

use crate::envelope::{self, EnvelopeHeader, MAX_ENVELOPE_LEN, ShareContext};
use crate::error::{CardError, QuorumError};
use crate::secret::Share;

/// The largest share object a card stores (one share envelope).
pub const MAX_SHARE_OBJECT_LEN: usize = MAX_ENVELOPE_LEN;

/// The longest card serial, in bytes.
pub const MAX_SERIAL_LEN: usize = 64;

/// The longest holder name, in bytes.
pub const MAX_HOLDER_LEN: usize = 64;

/// The longest PIN or passphrase accepted, in bytes.
pub const MAX_PIN_LEN: usize = 1024;

/// A PIN or a soft card's passphrase. Zeroized when dropped, never a `String`, not `Clone`, and
/// its `Debug` shows nothing.
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// Takes ownership of the bytes (no copy is left behind by this call).
    pub fn new(bytes: Vec<u8>) -> Pin {
        Pin(Zeroizing::new(bytes))
    }

    /// Copies the bytes; wiping the source is the caller's business.
    pub fn from_slice(bytes: &[u8]) -> Pin {
        Pin(Zeroizing::new(bytes.to_vec()))
    }

    /// The PIN's bytes, to hand to the card.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in characters if the PIN is UTF-8, otherwise in bytes.
    pub fn char_count(&self) -> usize {
        std::str::from_utf8(&self.0).map_or(self.0.len(), |s| s.chars().count())
    }
}

impl From<Zeroizing<Vec<u8>>> for Pin {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Pin(bytes)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// What a card says about itself without a PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInfo {
    /// The cardholder's name, if the card carries one.
    pub holder: Option<String>,
    /// The card's serial (for an OpenPGP card, manufacturer and serial number).
    pub serial: String,
    /// The card's Ed25519 signing public key.
    pub signing_public: [u8; 32],
    /// The card's X25519 decryption public key: shares are sealed to it.
    pub decryption_public: [u8; 32],
    /// A soft card (a passphrase-sealed file), not a smartcard. Shown wherever the card is.
    pub soft: bool,
    /// PIN tries left before the card blocks, if the card counts them (a soft card does not).
    pub pin_retries_left: Option<u8>,
}

impl CardInfo {
    /// "soft card" or "card": the word every screen and log line uses for this card.
    pub fn kind(&self) -> &'static str {
        if self.soft { "soft card" } else { "card" }
    }
}

/// `soft card TSC-0001 (Alice Example)` or `card 000F:1234ABCD (Bob)`. Control characters from
/// the card are replaced, so a card cannot write to the operator's terminal.
impl fmt::Display for CardInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), Printable(&self.serial))?;
        if let Some(holder) = &self.holder {
            write!(f, " ({})", Printable(holder))?;
        }
        Ok(())
    }
}

struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let shown = if c.is_control() { '\u{fffd}' } else { c };
            fmt::Write::write_char(f, shown)?;
        }
        Ok(())
    }
}

/// A card as inserted, before its PIN: it identifies itself and can be verified. It offers no
/// signature and no share.
pub trait Card: Sized {
    /// The card after a successful PIN check.
    type Verified: VerifiedCard;

    /// The card's identity and public keys.
    fn info(&self) -> CardInfo;

    /// Checks the PIN. On success the verified card comes back; on failure the unverified card
    /// comes back with the reason ([`CardError::WrongPin`] carries the tries left, so the
    /// ceremony can ask again).
    fn verify(self, pin: &Pin) -> Result<Self::Verified, (Self, CardError)>;
}

/// A card whose PIN was verified: it signs, deciphers, and reads and writes its share object.
pub trait VerifiedCard {
    /// The card's identity and public keys.
    fn info(&self) -> CardInfo;

    /// An Ed25519 signature over `message` with the card's signing key.
    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError>;

    /// X25519 with the card's decryption key and `ephemeral_public`: the shared secret. On a
    /// smartcard this happens on the card.
    fn decipher(&mut self, ephemeral_public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError>;

    /// The share object (a sealed share envelope), if the card holds one.
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError>;

    /// Stores `object` (at most [`MAX_SHARE_OBJECT_LEN`] bytes) as the share object, replacing
    /// any earlier one.
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError>;

    /// Seals `share` to this card's decryption key under `ctx` and stores the envelope.
    /// `ctx.card_serial` must be this card's serial.
    fn store_share(&mut self, ctx: &ShareContext, share: &Share) -> Result<(), QuorumError> {
        let info = self.info();
        check_context_names(ctx, &info)?;
        let sealed = envelope::seal_share(&info.decryption_public, ctx, share)?;
        self.write_share_object(&sealed)?;
        Ok(())
    }

    /// Reads this card's share envelope and opens it under `ctx` (the ECDH through
    /// [`VerifiedCard::decipher`]). Check the share against the commitments with
    /// [`crate::secret::verify_share`] before using it.
    fn read_share(&mut self, ctx: &ShareContext) -> Result<Share, QuorumError> {
        let info = self.info();
        check_context_names(ctx, &info)?;
        let object = self.read_share_object()?.ok_or(CardError::NoShare)?;
        let header = EnvelopeHeader::parse(&object)?;
        envelope::open_share(
            &header,
            &info.decryption_public,
            |ephemeral| self.decipher(ephemeral),
            ctx,
        )
    }
}

fn check_context_names(ctx: &ShareContext, info: &CardInfo) -> Result<(), QuorumError> {
    if ctx.card_serial != info.serial {
        return Err(QuorumError::ShareContext {
            reason: "the context names another card's serial",
        });
    }
    Ok(())
}

/// Checks a serial: 1 to 64 bytes of printable ASCII (space included).
pub(crate) fn check_serial(serial: &str) -> Result<(), QuorumError> {
    let bad = |reason| QuorumError::CardLabel {
        field: "serial",
        reason,
    };
    if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
        return Err(bad("it must be 1 to 64 bytes long"));
    }
    if !serial.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("it may hold printable ASCII characters only"));
    }
    Ok(())
}

/// Checks a holder name: 1 to 64 bytes of UTF-8 without control characters.
pub(crate) fn check_holder(holder: &str) -> Result<(), QuorumError> {
    let bad = |reason| QuorumError::CardLabel {
        field: "holder",
        reason,
    };
    if holder.is_empty() || holder.len() > MAX_HOLDER_LEN {
        return Err(bad("it must be 1 to 64 bytes long"));
    }
    if holder.chars().any(char::is_control) {
        return Err(bad("it may not hold control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(soft: bool, holder: Option<&str>) -> CardInfo {
        CardInfo {
            holder: holder.map(str::to_owned),
            serial: "TSC-0001".to_owned(),
            signing_public: [1; 32],
            decryption_public: [2; 32],
            soft,
            pin_retries_left: None,
        }
    }

    #[test]
    fn display_labels_soft_cards_and_strips_control_characters() {
        assert_eq!(
            info(true, Some("Alice")).to_string(),
            "soft card TSC-0001 (Alice)"
        );
        assert_eq!(info(false, None).to_string(), "card TSC-0001");
        assert_eq!(
            info(false, Some("Eve\u{1b}[2J")).to_string(),
            "card TSC-0001 (Eve\u{fffd}[2J)"
        );
    }

    #[test]
    fn pin_debug_is_redacted() {
        let pin = Pin::from_slice(b"123456");
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        assert_eq!(pin.char_count(), 6);
        assert_eq!(Pin::new("päss".as_bytes().to_vec()).char_count(), 4);
    }

    #[test]
    fn labels_are_checked() {
        assert!(check_serial("000F:1234ABCD").is_ok());
        assert!(check_serial("").is_err());
        assert!(check_serial("a\nb").is_err());
        assert!(check_serial(&"x".repeat(65)).is_err());
        assert!(check_holder("Zoë Example").is_ok());
        assert!(check_holder("bad\u{7}").is_err());
        assert!(check_holder("").is_err());
    }

    #[test]
    fn wrong_pin_messages_count_down() {
        let msg = |n| CardError::WrongPin { retries_left: n }.to_string();
        assert_eq!(
            msg(Some(2)),
            "wrong PIN; 2 tries left before the card blocks"
        );
        assert_eq!(msg(Some(1)), "wrong PIN; 1 try left before the card blocks");
        assert!(msg(None).contains("soft card has no retry counter"));
    }
}
