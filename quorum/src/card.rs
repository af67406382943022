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
//! share object in a private-use data object that needs the PIN to read.
//!
//! # The share object
//!
//! A card keeps one share object of at most [`MAX_SHARE_OBJECT_LEN`] = 512 bytes, which holds
//! at most [`MAX_SHARE_ENTRIES`] = 2 share envelopes ([`ShareObject`]), each for one card set.
//! Two, so that a card in both the old and the new set of a re-share or revocation keeps its
//! old set's envelope while its new one is written: until the HSM registers the new set the old
//! one is the active set, and an aborted ceremony leaves it whole.
//!
//! ```text
//! empty                      no share
//! a bare envelope ("TSSH…")  one envelope; the set it was sealed for is not recorded
//! a container:
//!   offset  length  content
//!        0       4  magic "TSSO"
//!        4       1  version, 1
//!        5       1  count of entries, 1 or 2
//!        6       …  each entry: set number (u32 big-endian; 0 = not recorded),
//!                   envelope length (u16 big-endian, 1 to 512), the envelope
//! ```
//!
//! This build always writes a container (6 + 6 + 98 = 110 bytes for one version 1 envelope,
//! 6 + 2 × (6 + 98) = 214 for two); a bare envelope, as earlier builds wrote it, still reads as
//! a container of one entry whose set is not recorded, and is kept as such when a new set's
//! envelope is added.
//! [`VerifiedCard::store_share`] adds or replaces the envelope for its context's set and keeps
//! at most one other: the one with the highest set number below the new one (the active set's),
//! dropping anything else. [`VerifiedCard::read_share`] opens the envelope recorded for the
//! context's set, else the one whose set is not recorded, else the newest (the envelope binds
//! its set number in its associated data, so one of another set does not open). [`VerifiedCard::retain_share`] keeps
//! only one set's envelope, once the HSM has registered that set. A share object longer than
//! 512 bytes, with more than two entries, a truncated entry or trailing bytes is refused on read
//! with an error that says so.

use std::fmt;

use zeroize::Zeroizing;

use crate::envelope::{self, ENVELOPE_MAGIC, EnvelopeHeader, MAX_ENVELOPE_LEN, ShareContext};
use crate::error::{CardError, QuorumError};
use crate::secret::Share;

/// The largest share object a card stores (a bare envelope or a container of two).
pub const MAX_SHARE_OBJECT_LEN: usize = 512;

/// The most envelopes a share object holds: the active set's and a new set's.
pub const MAX_SHARE_ENTRIES: usize = 2;

/// The first four bytes of a share container (a share object of two envelopes).
pub const SHARE_CONTAINER_MAGIC: [u8; 4] = *b"TSSO";

/// The share container version this build writes and reads.
pub const SHARE_CONTAINER_VERSION: u8 = 1;

/// The set number of an envelope whose set is not recorded (a bare envelope).
pub const SET_NUMBER_NOT_RECORDED: u32 = 0;

/// Length of a container's fixed part: magic, version, count.
const CONTAINER_HEADER_LEN: usize = 4 + 1 + 1;

/// Length of an entry's fixed part: set number, envelope length.
const ENTRY_HEADER_LEN: usize = 4 + 2;

/// One envelope in a card's share object, with the set it was sealed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareEntry {
    /// The card set's number, or [`SET_NUMBER_NOT_RECORDED`].
    pub set_number: u32,
    /// The sealed share envelope (see [`crate::envelope`]).
    pub envelope: Vec<u8>,
}

/// A card's share object, parsed: no envelope, or one or two, each for one card set (see the
/// [module documentation](self#the-share-object) for the format).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShareObject {
    entries: Vec<ShareEntry>,
}

impl ShareObject {
    /// Parses a share object: empty, a bare envelope, or a container of one or two entries.
    /// Checks the length (at most [`MAX_SHARE_OBJECT_LEN`]) before anything else; the envelopes
    /// themselves are checked when they are opened.
    pub fn parse(bytes: &[u8]) -> Result<ShareObject, QuorumError> {
        let bad = |reason| Err(QuorumError::ShareEncoding { reason });
        if bytes.len() > MAX_SHARE_OBJECT_LEN {
            return Err(CardError::ShareObjectTooLarge {
                len: bytes.len(),
                max: MAX_SHARE_OBJECT_LEN,
            }
            .into());
        }
        if bytes.is_empty() {
            return Ok(ShareObject::default());
        }
        if bytes.starts_with(&ENVELOPE_MAGIC) {
            return Ok(ShareObject {
                entries: vec![ShareEntry {
                    set_number: SET_NUMBER_NOT_RECORDED,
                    envelope: bytes.to_vec(),
                }],
            });
        }
        if !bytes.starts_with(&SHARE_CONTAINER_MAGIC) {
            return bad(
                "the card's share object is neither a share envelope nor a share container",
            );
        }
        if bytes.len() < CONTAINER_HEADER_LEN {
            return bad("the card's share container is truncated");
        }
        if bytes[4] != SHARE_CONTAINER_VERSION {
            return bad("the card's share container has a version this build does not read");
        }
        let count = usize::from(bytes[5]);
        if count == 0 || count > MAX_SHARE_ENTRIES {
            return bad("the card's share container must hold one or two envelopes");
        }
        let mut rest = &bytes[CONTAINER_HEADER_LEN..];
        let mut entries: Vec<ShareEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let Some((head, tail)) = rest.split_first_chunk::<ENTRY_HEADER_LEN>() else {
                return bad("the card's share container is truncated");
            };
            let set_number = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            if len == 0 || len > MAX_ENVELOPE_LEN {
                return bad("an envelope in the card's share container has an impossible length");
            }
            if tail.len() < len {
                return bad("the card's share container is truncated");
            }
            let (envelope, tail) = tail.split_at(len);
            if entries.iter().any(|e| e.set_number == set_number) {
                return bad("the card's share container holds two envelopes for one set");
            }
            entries.push(ShareEntry {
                set_number,
                envelope: envelope.to_vec(),
            });
            rest = tail;
        }
        if !rest.is_empty() {
            return bad("the card's share container has bytes after its last envelope");
        }
        Ok(ShareObject { entries })
    }

    /// The bytes to store: empty for no envelope, a container otherwise (a lone envelope whose
    /// set is not recorded stays bare, as it was read).
    pub fn encode(&self) -> Result<Vec<u8>, QuorumError> {
        let bad = |reason| Err(QuorumError::ShareEncoding { reason });
        if self.entries.len() > MAX_SHARE_ENTRIES {
            return bad("a share object holds at most two envelopes");
        }
        if self
            .entries
            .iter()
            .any(|e| e.envelope.is_empty() || e.envelope.len() > MAX_ENVELOPE_LEN)
        {
            return bad("an envelope has an impossible length");
        }
        let bytes = match self.entries.as_slice() {
            [] => Vec::new(),
            // Bare only if the bytes read back as a bare envelope; anything else (a corrupt
            // card's entry) stays in a container, so the encoding always parses back.
            [only]
                if only.set_number == SET_NUMBER_NOT_RECORDED
                    && only.envelope.starts_with(&ENVELOPE_MAGIC) =>
            {
                only.envelope.clone()
            }
            entries => {
                let mut out = Vec::with_capacity(MAX_SHARE_OBJECT_LEN);
                out.extend_from_slice(&SHARE_CONTAINER_MAGIC);
                out.push(SHARE_CONTAINER_VERSION);
                // At most MAX_SHARE_ENTRIES (2), checked above.
                out.push(entries.len() as u8);
                for entry in entries {
                    out.extend_from_slice(&entry.set_number.to_be_bytes());
                    // At most MAX_ENVELOPE_LEN (512), checked above.
                    out.extend_from_slice(&(entry.envelope.len() as u16).to_be_bytes());
                    out.extend_from_slice(&entry.envelope);
                }
                out
            }
        };
        if bytes.len() > MAX_SHARE_OBJECT_LEN {
            return Err(CardError::ShareObjectTooLarge {
                len: bytes.len(),
                max: MAX_SHARE_OBJECT_LEN,
            }
            .into());
        }
        Ok(bytes)
    }

    /// The envelopes, each with its set number.
    pub fn entries(&self) -> &[ShareEntry] {
        &self.entries
    }

    /// Whether the object holds no envelope.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The envelope to open for set `set_number`: the one recorded for that set, else the one
    /// whose set is not recorded, else the newest. (An envelope binds its set number in its
    /// associated data: one of another set does not open, with the one opaque
    /// [`QuorumError::EnvelopeOpen`] of any mismatch.) `None` only when the object is empty.
    pub fn envelope_for(&self, set_number: u32) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.set_number == set_number)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.set_number == SET_NUMBER_NOT_RECORDED)
            })
            .or_else(|| self.entries.iter().max_by_key(|e| e.set_number))
            .map(|e| e.envelope.as_slice())
    }

    /// Adds `envelope` for set `set_number`, replacing that set's earlier one, and keeps at most
    /// one other: the one with the highest set number below `set_number` (an envelope whose
    /// set is not recorded counts as the lowest).
    pub fn insert(&mut self, set_number: u32, envelope: Vec<u8>) {
        let kept = self
            .entries
            .iter()
            .filter(|e| e.set_number < set_number)
            .max_by_key(|e| e.set_number)
            .cloned();
        self.entries = kept.into_iter().collect();
        self.entries.push(ShareEntry {
            set_number,
            envelope,
        });
    }

    /// Keeps only the envelope recorded for set `set_number` (nothing, if there is none).
    pub fn retain(&mut self, set_number: u32) {
        self.entries.retain(|e| e.set_number == set_number);
    }

    /// Removes the envelope of set `set_number`, keeping any other.
    pub fn remove(&mut self, set_number: u32) {
        self.entries.retain(|e| e.set_number != set_number);
    }
}

/// The longest card serial, in bytes.
pub const MAX_SERIAL_LEN: usize = 64;

/// The longest holder name, in bytes.
pub const MAX_HOLDER_LEN: usize = 64;

/// The longest PIN or passphrase accepted, in bytes.
pub const MAX_PIN_LEN: usize = 1024;

/// A PIN or a soft card's passphrase. Zeroized when dropped, never a `String`, not `Clone`, and
/// its `Debug` shows nothing.
///
/// A PIN that is UTF-8 text is kept in Unicode Normalization Form C (NFC), whichever form it
/// was typed in: "é" typed as one character or as "e" and a combining accent is the same PIN,
/// the same bytes for a smartcard, for Argon2 and for the set-up's checks, and its length in
/// characters ([`Pin::char_count`]) is the same everywhere (set-up, login, soft cards). Bytes
/// that are not UTF-8 are kept as they are (and a smartcard refuses them).
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// Takes ownership of the bytes (no copy is left behind by this call), normalised to NFC.
    pub fn new(bytes: Vec<u8>) -> Pin {
        Pin::from(Zeroizing::new(bytes))
    }

    /// Copies the bytes (normalised to NFC); wiping the source is the caller's business.
    pub fn from_slice(bytes: &[u8]) -> Pin {
        Pin::new(bytes.to_vec())
    }

    /// The PIN's bytes, to hand to the card.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in characters (of the NFC form) if the PIN is UTF-8, otherwise in bytes.
    pub fn char_count(&self) -> usize {
        std::str::from_utf8(&self.0).map_or(self.0.len(), |s| s.chars().count())
    }
}

/// `bytes` in NFC when they are UTF-8 text that is not NFC already; `None` otherwise (and for
/// more than [`MAX_PIN_LEN`] bytes, which every check refuses anyway). The normalised text is
/// measured first and written into a buffer of exactly its length, so the buffer never
/// reallocates and leaves no unzeroized copy behind.
fn nfc(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if bytes.len() > MAX_PIN_LEN {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        return None;
    }
    let len = text.nfc().map(char::len_utf8).sum();
    let mut out = Zeroizing::new(String::with_capacity(len));
    for c in text.nfc() {
        out.push(c);
    }
    if out.as_bytes() == bytes {
        return None;
    }
    Some(Zeroizing::new(std::mem::take(&mut *out).into_bytes()))
}

impl From<Zeroizing<Vec<u8>>> for Pin {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        // The bytes given are zeroized when dropped here if a normalised copy replaces them.
        Pin(nfc(&bytes).unwrap_or(bytes))
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

    /// The raw share object (see [`ShareObject`]), if the card holds one.
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError>;

    /// Stores `object` (at most [`MAX_SHARE_OBJECT_LEN`] bytes) as the raw share object,
    /// replacing any earlier one; an empty `object` leaves the card without a share.
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError>;

    /// Seals `share` to this card's decryption key under `ctx` and stores the envelope for
    /// `ctx.set_number`, keeping the card's envelope of an earlier set (see
    /// [`ShareObject::insert`]). `ctx.card_serial` must be this card's serial. A share object
    /// already on the card that does not parse is replaced.
    fn store_share(&mut self, ctx: &ShareContext, share: &Share) -> Result<(), QuorumError> {
        let info = self.info();
        check_context_names(ctx, &info)?;
        let sealed = envelope::seal_share(&info.decryption_public, ctx, share)?;
        let mut object = match self.read_share_object()? {
            Some(bytes) => ShareObject::parse(&bytes).unwrap_or_default(),
            None => ShareObject::default(),
        };
        object.insert(ctx.set_number, sealed);
        self.write_share_object(&object.encode()?)?;
        Ok(())
    }

    /// Reads this card's share object, picks the envelope for `ctx.set_number` (see
    /// [`ShareObject::envelope_for`]) and opens it under `ctx` (the ECDH through
    /// [`VerifiedCard::decipher`]). Check the share against the commitments with
    /// [`crate::secret::verify_share`] before using it.
    fn read_share(&mut self, ctx: &ShareContext) -> Result<Share, QuorumError> {
        let info = self.info();
        check_context_names(ctx, &info)?;
        let bytes = self.read_share_object()?.ok_or(CardError::NoShare)?;
        let object = ShareObject::parse(&bytes)?;
        let sealed = object
            .envelope_for(ctx.set_number)
            .ok_or(CardError::NoShare)?;
        let header = EnvelopeHeader::parse(sealed)?;
        envelope::open_share(
            &header,
            &info.decryption_public,
            |ephemeral| self.decipher(ephemeral),
            ctx,
        )
    }

    /// Keeps only the envelope of set `set_number` on the card and removes any other (an old
    /// set's, once the HSM registered the new one); with none for that set, the card is left
    /// without a share. Whether anything was removed.
    fn retain_share(&mut self, set_number: u32) -> Result<bool, QuorumError> {
        drop_entries(self, |object| object.retain(set_number))
    }

    /// Removes the envelope of set `set_number` from the card, keeping any other (a new set's
    /// share written to a card that then failed its read-back). Whether anything was removed.
    fn remove_share(&mut self, set_number: u32) -> Result<bool, QuorumError> {
        drop_entries(self, |object| object.remove(set_number))
    }
}

/// Reads `card`'s share object, lets `drop` remove entries, and writes it back if any went:
/// whether any did.
fn drop_entries<C: VerifiedCard + ?Sized>(
    card: &mut C,
    drop: impl FnOnce(&mut ShareObject),
) -> Result<bool, QuorumError> {
    let Some(bytes) = card.read_share_object()? else {
        return Ok(false);
    };
    let mut object = ShareObject::parse(&bytes)?;
    let before = object.entries().len();
    drop(&mut object);
    if object.entries().len() == before {
        return Ok(false);
    }
    card.write_share_object(&object.encode()?)?;
    Ok(true)
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
    fn a_pin_is_kept_in_nfc_whichever_form_it_was_typed_in() {
        let composed = "\u{e9}\u{e9}\u{e9}"; // "ééé", three precomposed characters
        let decomposed = "e\u{301}e\u{301}e\u{301}"; // "e" + combining acute accent, three times
        let a = Pin::from_slice(composed.as_bytes());
        let b = Pin::from_slice(decomposed.as_bytes());
        assert_eq!(a.expose(), composed.as_bytes());
        assert_eq!(b.expose(), composed.as_bytes());
        assert_eq!((a.char_count(), b.char_count()), (3, 3));
        // Text already in NFC and bytes that are not text stay as they are.
        assert_eq!(Pin::from_slice(b"123456").expose(), b"123456");
        assert_eq!(Pin::from_slice(&[0xff, 0x65]).expose(), [0xff, 0x65]);
        // A form that grows under NFC (a composition exclusion) is kept whole.
        let devanagari_qa = "\u{958}".repeat(4);
        assert_eq!(
            Pin::from_slice(devanagari_qa.as_bytes()).expose(),
            "\u{915}\u{93c}".repeat(4).as_bytes()
        );
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
