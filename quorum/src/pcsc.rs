//! OpenPGP cards over PC/SC: officer smartcards behind the [`Card`] → [`VerifiedCard`] traits.
//!
//! Built on `openpgp-card` (the OpenPGP card application, version 3.4 of the specification) and
//! `card-backend-pcsc` (the PC/SC connection). A card is opened **by reader name**
//! ([`PcscCard::open`]) and connects to no other one; [`list_readers`] lists the readers'
//! names, without connecting to any.
//!
//! # The connection
//!
//! The PC/SC connection is opened in **exclusive** mode and kept from [`PcscCard::open`] until
//! the card (unverified, verified or admin) is dropped; the PIN sequence lives on that one
//! connection. Dropping it disconnects with a card reset, which makes the card forget every
//! verified PIN — so a verified card that is dropped is locked again. While it is held, no
//! other program (gpg's scdaemon, opensc-tool, another test) can connect to the card, and so
//! none can reset it under us and erase the verified PIN; such a program gets a sharing
//! violation instead, and a second `open` of the same reader fails the same way. Each
//! operation runs in its own short PC/SC transaction, as `openpgp-card` asks (a transaction is
//! not meant to stay open while a person types a PIN).
//!
//! # PINs
//!
//! The card checks its own PINs with its own retry counters; this module never decides whether
//! a PIN is right. [`Card::verify`] presents the user PIN (PW1) twice on the same connection:
//! VERIFY 0x81, which allows PSO:COMPUTE DIGITAL SIGNATURE, then VERIFY 0x82, which allows
//! PSO:DECIPHER and reading the share object. A wrong PIN fails at the first VERIFY, so it costs
//! one try, and the card comes back with [`CardError::WrongPin`] and the tries left (from the
//! card's answer `63Cx`, or else from the PW status bytes read afresh), or [`CardError::Blocked`]
//! at zero. A PIN that is not UTF-8 or outside the card's length limits is refused before it
//! reaches the card (it would cost a try).
//!
//! OpenPGP cards may accept the signing PIN for one signature only (PW status byte 1; Nitrokey's
//! opcard ships that way). The verified card keeps the PIN in a zeroizing buffer and presents
//! it again (VERIFY 0x81) before a further signature on such a card, so that several login
//! signatures need one PIN entry. It is wiped when the verified card is dropped.
//!
//! # Keys and data
//!
//! - Signing: Ed25519 in the signature slot, PSO:COMPUTE DIGITAL SIGNATURE over the **raw
//!   message** (pure EdDSA: the card hashes; `openpgp-card` passes ECC input through as is), at
//!   most [`MAX_SIGNED_MESSAGE_LEN`] bytes so that it fits one short APDU on any card.
//! - Decryption: Curve25519 (X25519) in the decryption slot; [`VerifiedCard::decipher`] is
//!   PSO:DECIPHER with the ephemeral point as raw 32 bytes (RFC 7748 byte order, no 0x40
//!   prefix), and the card returns the raw shared secret.
//! - The share object lives in the private-use data object **0103** ([`SHARE_OBJECT_DO`]). Of
//!   the four private-use DOs of the OpenPGP card specification 3.4, 0101 and 0102 can be read
//!   by anyone, 0104 needs the admin PIN; 0103 is the only one that needs the **user** PIN (PW1
//!   verified with 0x82) both to read and to write. A share envelope is already encrypted to the
//!   card's key; with the PIN on top, a lost card does not even give up the ciphertext (opcard
//!   also encrypts 0103 under a key derived from the user PIN, and keeps it readable when the
//!   admin PIN resets the user PIN). An empty object means "no share". The object is a share
//!   container of one or two envelopes (at most 512 bytes; see [`crate::card::ShareObject`]),
//!   so a card in both sets of a re-share keeps its old envelope until the new set is
//!   registered.
//!
//! [`CardInfo`] for a smartcard: serial `MMMM:SSSSSSSS` (manufacturer and serial number from the
//! application identifier, hex), the cardholder name as holder (if set), the two public keys
//! (32 zero bytes when a slot holds no Ed25519 / X25519 key: check [`PcscCard::has_keys`]), and
//! the user PIN's tries left from the PW status bytes.
//!
//! # Administration
//!
//! [`PcscCard::admin`] verifies the admin PIN (PW3) and gives a [`PcscAdmin`], which sets the
//! ECC algorithm attributes, generates both keys on the card (with their real OpenPGP v4
//! fingerprints and creation times), sets the cardholder name, changes the admin PIN, and sets
//! the user PIN with RESET RETRY COUNTER (which also unblocks it). [`PcscAdmin::finish`] resets
//! the card, so the admin PIN is forgotten, and opens it again. [`PcscCard::change_user_pin`]
//! changes the user PIN with the old one (no admin PIN needed); [`PcscCard::unblock_user_pin`]
//! unblocks and sets it with the resetting code (RESET RETRY COUNTER, P1 = 00), which
//! [`PcscAdmin::set_reset_code`] sets (a card from the factory has none).
//!
//! # Limits
//!
//! - Secrets pass through `openpgp-card`'s and the PC/SC library's own buffers (the PIN in the
//!   VERIFY command, the shared secret in the response), which do not zeroize; the copies this
//!   module owns do.
//! - Card removal is recognised from the PC/SC error names (`RemovedCard`, `NoSmartcard`,
//!   `NotTransacted` for a card that left mid-transaction, …) that `card-backend-pcsc` passes
//!   on as text or as its own `NotTransacted`.
//! - PIN pads are not used: the PIN comes from the terminal.

mod fingerprint;

use std::ffi::CString;
use std::fmt;

use card_backend::SmartcardError;
use card_backend_pcsc::PcscBackend;
use openpgp_card::ocard::algorithm::{AlgoSimple, AlgorithmAttributes, Curve};
use openpgp_card::ocard::crypto::{Cryptogram, EccType, PublicKeyMaterial, SigningAlgo};
use openpgp_card::ocard::data::PWStatusBytes;
use openpgp_card::ocard::{KeyType, StatusBytes};
use openpgp_card::state::{Open, Transaction};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::card::{Card, CardInfo, MAX_SHARE_OBJECT_LEN, Pin, VerifiedCard, check_holder};
use crate::error::{CardError, QuorumError};

mod admin;
mod connection;
mod errors;

pub use connection::list_readers;
use connection::*;
use errors::*;

/// The user PIN (PW1) of a card fresh from the factory (OpenPGP card default).
pub const FACTORY_USER_PIN: &[u8] = b"123456";

/// The admin PIN (PW3) of a card fresh from the factory (OpenPGP card default).
pub const FACTORY_ADMIN_PIN: &[u8] = b"12345678";

/// The shortest user PIN an OpenPGP card accepts.
pub const MIN_USER_PIN_LEN: usize = 6;

/// The shortest admin PIN an OpenPGP card accepts.
pub const MIN_ADMIN_PIN_LEN: usize = 8;

/// The shortest resetting code an OpenPGP card accepts.
pub const MIN_RESET_CODE_LEN: usize = 8;

/// The longest message [`VerifiedCard::sign`] sends to the card: one short APDU. A Tessera login
/// message is well below it.
pub const MAX_SIGNED_MESSAGE_LEN: usize = 255;

/// The longest cardholder name (the OpenPGP name data object: ASCII, at most 39 characters).
pub const MAX_CARD_HOLDER_LEN: usize = 39;

/// The private-use data object holding the share object: 0103, which needs the user PIN to read
/// and to write (`openpgp-card` numbers the four private-use DOs 1 to 4).
pub const SHARE_OBJECT_DO: u8 = 3;

/// An OpenPGP card in a PC/SC reader, before its PIN: it identifies itself and can be verified.
pub struct PcscCard {
    conn: Connection,
    state: CardState,
}

/// An OpenPGP card whose user PIN the card accepted: it signs, deciphers, and reads and writes
/// the share object. Dropping it resets the card (the PIN is forgotten).
pub struct VerifiedPcscCard {
    conn: Connection,
    state: CardState,
    pin: Pin,
    /// The card needs VERIFY 0x81 again before the next signature.
    sign_needs_verify: bool,
}

/// An OpenPGP card whose admin PIN the card accepted: it configures the card for enrolment.
/// Dropping it resets the card (the admin PIN is forgotten); [`PcscAdmin::finish`] does the same
/// and opens the card again.
pub struct PcscAdmin {
    conn: Connection,
    state: CardState,
    admin_pin: Pin,
}

/// The public keys [`PcscAdmin::generate_keys`] made on the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKeys {
    /// The Ed25519 signing public key.
    pub signing_public: [u8; 32],
    /// The X25519 decryption public key.
    pub decryption_public: [u8; 32],
    /// The signing key's OpenPGP v4 fingerprint, as stored on the card.
    pub signing_fingerprint: [u8; 20],
    /// The decryption key's OpenPGP v4 fingerprint, as stored on the card.
    pub decryption_fingerprint: [u8; 20],
    /// The creation time stored with the signing key (Unix seconds).
    pub created: u32,
}

impl PcscCard {
    /// Opens the OpenPGP card in the reader named `reader` (exactly as PC/SC names it), in
    /// exclusive mode, and reads its identity, public keys and PIN counters. No other reader is
    /// touched.
    pub fn open(reader: &str) -> Result<PcscCard, CardError> {
        let mut conn = Connection::open(reader)?;
        let state = conn.read_state()?;
        Ok(PcscCard { conn, state })
    }

    /// The reader this card is in.
    pub fn reader(&self) -> &str {
        &self.conn.reader
    }

    /// Whether the card holds an Ed25519 signing key and an X25519 decryption key. If not, the
    /// missing public keys show as zeros in [`Card::info`]: enrol the card first.
    pub fn has_keys(&self) -> bool {
        self.state.has_signing_key && self.state.has_decryption_key
    }

    /// The longest user PIN and admin PIN this card accepts, in bytes.
    pub fn pin_max_lens(&self) -> (usize, usize) {
        (
            usize::from(self.state.pw1_max_len),
            usize::from(self.state.pw3_max_len),
        )
    }

    /// Admin PIN tries left before the admin PIN blocks (then only a factory reset helps).
    pub fn admin_pin_retries_left(&self) -> u8 {
        self.state.pw3_retries_left
    }

    /// Changes the user PIN from `old` to `new` (CHANGE REFERENCE DATA for PW1; no admin PIN
    /// needed). A wrong `old` costs a try and gives [`CardError::WrongPin`].
    pub fn change_user_pin(&mut self, old: &Pin, new: &Pin) -> Result<(), CardError> {
        let old = pin_secret(old, PinKind::User, self.state.pw1_max_len)?;
        let new = pin_secret(new, PinKind::User, self.state.pw1_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx.change_user_pin(old, new);
            refresh_after(&mut tx, result, Some(PinKind::User), Reread::Pins)
        };
        self.refresh_state(result)
    }

    /// Unblocks the user PIN with the card's resetting code and sets it to `new` (RESET RETRY
    /// COUNTER, P1 = 00; no admin PIN needed). A wrong resetting code costs one of its own tries
    /// and gives [`CardError::WrongPin`] with the resetting code's tries left, or
    /// [`CardError::Blocked`] when none is left (or none was ever set: see
    /// [`PcscCard::reset_code_retries_left`]). The share object stays readable with `new`.
    pub fn unblock_user_pin(&mut self, reset_code: &Pin, new: &Pin) -> Result<(), CardError> {
        let code = pin_secret(reset_code, PinKind::ResetCode, u8::MAX)?;
        let new = pin_secret(new, PinKind::User, self.state.pw1_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx.reset_user_pin(code, new);
            refresh_after(&mut tx, result, Some(PinKind::ResetCode), Reread::Pins)
        };
        self.refresh_state(result)
    }

    /// Tries left for the resetting code, read from the card now: 0 when the card has no
    /// resetting code set (the factory state) or it is blocked; then only the admin PIN
    /// unblocks the user PIN.
    pub fn reset_code_retries_left(&mut self) -> Result<u8, CardError> {
        let mut tx = self.conn.tx()?;
        let _ = tx.invalidate_cache();
        tx.pw_status_bytes()
            .map(|status| status.err_count_rc())
            .map_err(card_error)
    }

    /// Verifies the admin PIN (PW3) and returns the card for administration. On a wrong admin
    /// PIN the card comes back with [`CardError::WrongPin`] (the admin PIN's tries left) or
    /// [`CardError::Blocked`].
    #[expect(
        clippy::result_large_err,
        reason = "the shape of Card::verify: a wrong admin PIN gives the card back, once per entry"
    )]
    pub fn admin(mut self, admin_pin: &Pin) -> Result<PcscAdmin, (PcscCard, CardError)> {
        match self.verify_admin(admin_pin) {
            Ok(()) => Ok(PcscAdmin {
                conn: self.conn,
                state: self.state,
                admin_pin: Pin::from_slice(admin_pin.expose()),
            }),
            Err(e) => Err((self, e)),
        }
    }

    fn verify_admin(&mut self, admin_pin: &Pin) -> Result<(), CardError> {
        let secret = pin_secret(admin_pin, PinKind::Admin, self.state.pw3_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            let result = tx.verify_admin_pin(secret);
            refresh_after(&mut tx, result, Some(PinKind::Admin), Reread::Pins)
        };
        self.refresh_state(result)
    }

    fn verify_user(&mut self, pin: &Pin) -> Result<(), CardError> {
        let secret = pin_secret(pin, PinKind::User, self.state.pw1_max_len)?;
        let result = {
            let mut tx = self.conn.tx()?;
            // 0x81 for PSO:CDS, then 0x82 for PSO:DECIPHER and DO 0103. A wrong PIN stops at
            // the first: one try.
            let result = tx
                .verify_user_signing_pin(secret.clone())
                .and_then(|()| tx.verify_user_pin(secret));
            refresh_after(&mut tx, result, Some(PinKind::User), Reread::Pins)
        };
        self.refresh_state(result)
    }

    /// Takes what was read after an operation and returns the operation's result.
    fn refresh_state(&mut self, result: (Result<(), CardError>, Refresh)) -> Result<(), CardError> {
        let (result, refresh) = result;
        self.state.update(refresh);
        result
    }
}

impl Card for PcscCard {
    type Verified = VerifiedPcscCard;

    fn info(&self) -> CardInfo {
        self.state.info.clone()
    }

    /// VERIFY 0x81 and 0x82 with `pin` on this connection. A wrong PIN gives the card back with
    /// [`CardError::WrongPin`] and the tries left, or [`CardError::Blocked`].
    fn verify(mut self, pin: &Pin) -> Result<VerifiedPcscCard, (PcscCard, CardError)> {
        match self.verify_user(pin) {
            Ok(()) => Ok(VerifiedPcscCard {
                conn: self.conn,
                state: self.state,
                pin: Pin::from_slice(pin.expose()),
                sign_needs_verify: false,
            }),
            Err(e) => Err((self, e)),
        }
    }
}

impl VerifiedPcscCard {
    /// The reader this card is in.
    pub fn reader(&self) -> &str {
        &self.conn.reader
    }
}

impl VerifiedCard for VerifiedPcscCard {
    fn info(&self) -> CardInfo {
        self.state.info.clone()
    }

    /// PSO:COMPUTE DIGITAL SIGNATURE with the card's Ed25519 key over the raw `message` (at
    /// most [`MAX_SIGNED_MESSAGE_LEN`] bytes).
    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError> {
        if !self.state.has_signing_key {
            return Err(CardError::Backend(
                "the card has no Ed25519 signing key; enrol it first".to_owned(),
            ));
        }
        if message.len() > MAX_SIGNED_MESSAGE_LEN {
            return Err(CardError::Backend(format!(
                "a message of {} bytes is longer than the {MAX_SIGNED_MESSAGE_LEN} bytes sent to \
                 the card for a signature",
                message.len()
            )));
        }
        let mut tx = self.conn.tx()?;
        if self.sign_needs_verify {
            let secret = pin_secret(&self.pin, PinKind::User, u8::MAX)?;
            tx.verify_user_signing_pin(secret).map_err(card_error)?;
            self.sign_needs_verify = false;
        }
        let signature = tx
            .card()
            .signature_for_hash(SigningAlgo::ECC, message)
            .map_err(verified_error);
        // Once the card answered, a "valid once" PIN is used up, success or not.
        self.sign_needs_verify = self.state.sign_pin_valid_once;
        let signature = signature?;
        signature.as_slice().try_into().map_err(|_| {
            CardError::Backend(format!(
                "the card returned a signature of {} bytes, not the 64 of Ed25519",
                signature.len()
            ))
        })
    }

    /// PSO:DECIPHER with the card's X25519 key: `ephemeral_public` goes to the card as the raw
    /// 32-byte point and the card returns the raw shared secret.
    fn decipher(&mut self, ephemeral_public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError> {
        if !self.state.has_decryption_key {
            return Err(CardError::Backend(
                "the card has no X25519 decryption key; enrol it first".to_owned(),
            ));
        }
        let mut tx = self.conn.tx()?;
        let shared = Zeroizing::new(
            tx.card()
                .decipher(Cryptogram::ECDH(ephemeral_public))
                .map_err(verified_error)?,
        );
        // The raw 32 bytes; some cards prefix the point with 0x40 as OpenPGP does.
        let raw = match shared.as_slice() {
            [0x40, rest @ ..] if rest.len() == 32 => rest,
            all => all,
        };
        if raw.len() != 32 {
            return Err(CardError::Backend(format!(
                "the card returned a shared secret of {} bytes, not the 32 of X25519",
                shared.len()
            )));
        }
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(raw);
        Ok(out)
    }

    /// Reads private-use DO 0103; an empty object is no share.
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        let mut tx = self.conn.tx()?;
        match tx.private_use_do(SHARE_OBJECT_DO) {
            Ok(object) if object.is_empty() => Ok(None),
            Ok(object) => Ok(Some(object)),
            Err(openpgp_card::Error::CardStatus(StatusBytes::ReferencedDataNotFound)) => Ok(None),
            Err(e) => Err(verified_error(e)),
        }
    }

    /// Writes private-use DO 0103 (an empty `object` removes the share).
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError> {
        let max = MAX_SHARE_OBJECT_LEN.min(self.state.max_special_do_len);
        if object.len() > max {
            return Err(CardError::ShareObjectTooLarge {
                len: object.len(),
                max,
            });
        }
        let mut tx = self.conn.tx()?;
        tx.card()
            .set_private_use_do(SHARE_OBJECT_DO, object.to_vec())
            .map_err(verified_error)
    }
}

impl fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.conn.reader)
            .field("serial", &self.state.info.serial)
            .field("holder", &self.state.info.holder)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for VerifiedPcscCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedPcscCard")
            .field("reader", &self.conn.reader)
            .field("serial", &self.state.info.serial)
            .field("holder", &self.state.info.holder)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PcscAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcscAdmin")
            .field("reader", &self.conn.reader)
            .field("serial", &self.state.info.serial)
            .field("admin_pin", &self.admin_pin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_counted_in_characters_as_at_set_up_and_its_bytes_against_the_card() {
        // "ééé": 6 bytes but 3 characters, refused at set-up: refused here too, costing no try.
        let short = Pin::from_slice("\u{e9}\u{e9}\u{e9}".as_bytes());
        assert!(matches!(
            pin_secret(&short, PinKind::User, 127),
            Err(CardError::PinFormat { .. })
        ));
        assert!(
            crate::setup::NewPin::confirm(
                crate::setup::PinRole::User,
                Pin::from_slice(short.expose()),
                Pin::from_slice(short.expose()),
            )
            .is_err()
        );
        // Six characters pass both, typed composed or decomposed.
        let composed = "\u{e9}".repeat(6);
        let decomposed = "e\u{301}".repeat(6);
        for typed in [&composed, &decomposed] {
            let pin = Pin::from_slice(typed.as_bytes());
            assert!(pin_secret(&pin, PinKind::User, 127).is_ok());
            crate::setup::NewPin::confirm(
                crate::setup::PinRole::User,
                Pin::from_slice(composed.as_bytes()),
                Pin::from_slice(typed.as_bytes()),
            )
            .unwrap();
        }
        // The card's limit is in bytes: six 2-byte characters do not fit in 11.
        assert!(matches!(
            pin_secret(&Pin::from_slice(composed.as_bytes()), PinKind::User, 11),
            Err(CardError::PinFormat { .. })
        ));
    }

    #[test]
    fn a_card_leaving_mid_transaction_is_a_removed_card() {
        // As card-backend-pcsc reports it from a transmit, and as text from a transaction.
        for e in [
            SmartcardError::NotTransacted,
            SmartcardError::Error("Error: NotTransacted".to_owned()),
            SmartcardError::Error("Transmit failed: NotTransacted".to_owned()),
        ] {
            assert!(matches!(smartcard_error(&e), CardError::Removed), "{e:?}");
        }
        assert!(matches!(
            card_error(openpgp_card::Error::Smartcard(
                SmartcardError::NotTransacted
            )),
            CardError::Removed
        ));
        // Other faults are not taken for a removal.
        assert!(matches!(
            smartcard_error(&SmartcardError::Error(
                "Transmit failed: Timeout".to_owned()
            )),
            CardError::Backend(_)
        ));
    }

    #[test]
    fn the_longest_proof_of_possession_fits_what_a_card_signs() {
        use hsm_link::domain::{
            CardDescription, CardSerial, CardSetKind, HolderName, MAX_PARTITION_ID_LEN,
        };
        // The longest partition id, a holder as long as a card stores, and an OpenPGP serial.
        let partition =
            hsm_link::domain::PartitionId::new("p".repeat(MAX_PARTITION_ID_LEN)).unwrap();
        let card = CardDescription {
            holder: HolderName::new("h".repeat(MAX_CARD_HOLDER_LEN)).unwrap(),
            serial: CardSerial::new("FFFF:FFFFFFFF").unwrap(),
            signing_key: [0; 32],
            soft_card: false,
        };
        let message = hsm_link::message::enrolment_message(
            &[0; 32],
            &hsm_link::domain::CeremonyId([0; 16]),
            &partition,
            CardSetKind::Auditor,
            u32::MAX,
            &card,
        );
        assert!(
            message.len() <= MAX_SIGNED_MESSAGE_LEN,
            "{} bytes",
            message.len()
        );
        // And the login message, for the same partition.
        let login = hsm_link::message::login_message(
            &[0; 32],
            &[0; 32],
            &partition,
            hsm_link::message::OfficerRole::DeviceSo,
        );
        assert!(
            login.len() <= MAX_SIGNED_MESSAGE_LEN,
            "{} bytes",
            login.len()
        );
    }

    #[test]
    fn pins_are_checked_before_the_card_sees_them() {
        let short = Pin::from_slice(b"12345");
        assert!(matches!(
            pin_secret(&short, PinKind::User, 127),
            Err(CardError::PinFormat { .. })
        ));
        let not_utf8 = Pin::from_slice(&[0xff; 8]);
        assert!(matches!(
            pin_secret(&not_utf8, PinKind::User, 127),
            Err(CardError::PinFormat { .. })
        ));
        let long = Pin::from_slice(&[b'1'; 128]);
        assert!(matches!(
            pin_secret(&long, PinKind::User, 127),
            Err(CardError::PinFormat { .. })
        ));
        let admin = Pin::from_slice(b"1234567");
        assert!(matches!(
            pin_secret(&admin, PinKind::Admin, 127),
            Err(CardError::PinFormat { .. })
        ));
        assert!(pin_secret(&Pin::from_slice(FACTORY_USER_PIN), PinKind::User, 127).is_ok());
    }

    #[test]
    fn card_statuses_map_to_pin_errors() {
        let status = |s| card_error(openpgp_card::Error::CardStatus(s));
        assert!(matches!(
            status(StatusBytes::PasswordNotChecked(2)),
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ));
        assert!(matches!(
            status(StatusBytes::PasswordNotChecked(0)),
            CardError::Blocked
        ));
        assert!(matches!(
            status(StatusBytes::AuthenticationMethodBlocked),
            CardError::Blocked
        ));
        let removed = SmartcardError::Error("Transmit failed: RemovedCard".to_owned());
        assert!(matches!(smartcard_error(&removed), CardError::Removed));
    }
}
