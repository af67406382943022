//! PINs checked for length before they reach the card, and the card's and PC/SC's errors
//! mapped to [`CardError`].

use super::*;

/// The PIN as `openpgp-card` takes it (a zeroizing string), after the checks that spare the
/// card a try: UTF-8, at least the least length in characters (as [`crate::setup`] counts
/// them when the PIN is chosen, both on the NFC form [`Pin`] keeps), and at most the card's
/// limit in bytes (the card counts bytes).
pub(super) fn pin_secret(pin: &Pin, kind: PinKind, max_len: u8) -> Result<SecretString, CardError> {
    let text = std::str::from_utf8(pin.expose()).map_err(|_| CardError::PinFormat {
        reason: "an OpenPGP card PIN must be UTF-8 text",
    })?;
    let (min_len, too_short) = match kind {
        PinKind::User => (MIN_USER_PIN_LEN, "a user PIN needs at least 6 characters"),
        PinKind::Admin => (
            MIN_ADMIN_PIN_LEN,
            "an admin PIN needs at least 8 characters",
        ),
        PinKind::ResetCode => (
            MIN_RESET_CODE_LEN,
            "a resetting code needs at least 8 characters",
        ),
    };
    if text.chars().count() < min_len {
        return Err(CardError::PinFormat { reason: too_short });
    }
    if text.len() > usize::from(max_len) {
        return Err(CardError::PinFormat {
            reason: "the PIN is longer than this card accepts",
        });
    }
    Ok(SecretString::from(text))
}

/// The two PINs of an OpenPGP card that this module presents.
#[derive(Clone, Copy)]
pub(super) enum PinKind {
    /// PW1.
    User,
    /// PW3.
    Admin,
    /// The resetting code (RC), which unblocks PW1.
    ResetCode,
}

/// Errors of a verified card: "security status not satisfied" means the card no longer holds
/// the verified PIN (it was reset, e.g. by removal).
pub(super) fn verified_error(e: openpgp_card::Error) -> CardError {
    match e {
        openpgp_card::Error::CardStatus(StatusBytes::SecurityStatusNotSatisfied) => {
            CardError::Backend(
                "the card no longer accepts the verified PIN (was it reset or removed?); \
                 remove it, insert it and enter the PIN again"
                    .to_owned(),
            )
        }
        e => card_error(e),
    }
}

pub(super) fn card_error(e: openpgp_card::Error) -> CardError {
    match e {
        openpgp_card::Error::CardStatus(
            StatusBytes::PasswordNotChecked(0) | StatusBytes::AuthenticationMethodBlocked,
        ) => CardError::Blocked,
        openpgp_card::Error::CardStatus(StatusBytes::PasswordNotChecked(n)) => {
            CardError::WrongPin {
                retries_left: Some(n),
            }
        }
        openpgp_card::Error::Smartcard(e) => smartcard_error(&e),
        e => CardError::Backend(e.to_string()),
    }
}

pub(super) fn smartcard_error(e: &SmartcardError) -> CardError {
    // `NotTransacted` (SCARD_E_NOT_TRANSACTED) is what the reader answers when the card left in
    // the middle of a transaction.
    const GONE: [&str; 6] = [
        "RemovedCard",
        "NoSmartcard",
        "ReaderUnavailable",
        "UnknownReader",
        "UnpoweredCard",
        "NotTransacted",
    ];
    match e {
        SmartcardError::CardNotFound(_) | SmartcardError::NotTransacted => CardError::Removed,
        SmartcardError::Error(text) if GONE.iter().any(|gone| text.contains(gone)) => {
            CardError::Removed
        }
        e => CardError::Backend(e.to_string()),
    }
}
