//! Setting an OpenPGP card up for enrolment, UI-free: the steps the enrol ceremony asks of each
//! card before it takes a share, in an order that leaves a card whose set-up failed part-way
//! still reachable with the admin PIN it came with.
//!
//! 1. The holder chooses a user PIN and enters it twice ([`NewPin::confirm`]); so does the
//!    keeper of the admin PIN. Two entries that differ, a PIN too short, the factory default,
//!    or a user PIN equal to the admin PIN are refused before the card is touched; so is a PIN
//!    longer than this card accepts ([`prepare`] asks the card first).
//! 2. With the card's current admin PIN (the factory default on a new card): the ECC algorithm
//!    attributes, both keys generated **on the card**, the holder's name, the holder's user
//!    PIN (its retry counter full), and last the new admin PIN: the factory default never
//!    stays, since it would let a thief reset the user PIN and escape its retry counter.
//! 3. The result names who keeps the admin PIN, for the terminal to say so.
//!
//! The card then goes to [`crate::ceremony::Enrolment::add_card`] (after [`crate::Card::verify`]
//! with the holder's new PIN) or to an auditor enrolment.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::card::{Card, Pin, check_holder};
use crate::error::{CardError, QuorumError};
use crate::pcsc::{
    FACTORY_ADMIN_PIN, FACTORY_USER_PIN, GeneratedKeys, MAX_CARD_HOLDER_LEN, MIN_ADMIN_PIN_LEN,
    MIN_USER_PIN_LEN, PcscCard,
};

/// Which PIN a holder is choosing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinRole {
    /// The user PIN (PW1), which the holder enters at every ceremony.
    User,
    /// The admin PIN (PW3), which unblocks the user PIN.
    Admin,
}

impl PinRole {
    fn min_len(self) -> usize {
        match self {
            PinRole::User => MIN_USER_PIN_LEN,
            PinRole::Admin => MIN_ADMIN_PIN_LEN,
        }
    }
}

impl fmt::Display for PinRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinRole::User => "user PIN",
            PinRole::Admin => "admin PIN",
        })
    }
}

/// Why a chosen PIN is not taken. Nothing was sent to the card.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinChoiceError {
    /// The two entries differ.
    #[error("the two entries of the new {0} differ: enter it twice again")]
    Mismatch(PinRole),
    /// Too short for the card.
    #[error("the new {role} needs at least {min} characters")]
    TooShort {
        /// Which PIN.
        role: PinRole,
        /// The least length.
        min: usize,
    },
    /// Not UTF-8 text, or longer than [`crate::card::MAX_PIN_LEN`].
    #[error("the new {0} must be text of at most 1024 bytes")]
    Format(PinRole),
    /// The PIN chosen is the factory default of its role.
    #[error("the new {0} is the factory default: choose another")]
    FactoryDefault(PinRole),
    /// Longer than the card accepts.
    #[error("the new {role} is longer than this card accepts ({max} bytes at most)")]
    TooLong {
        /// Which PIN.
        role: PinRole,
        /// The card's limit.
        max: usize,
    },
    /// The user PIN and the admin PIN are the same: whoever knows the one could unblock the
    /// other.
    #[error("the new user PIN and admin PIN are the same: choose two different PINs")]
    SameAsAdmin,
}

/// A PIN a holder chose and entered twice. Not `Clone`; its `Debug` shows nothing.
pub struct NewPin {
    role: PinRole,
    pin: Pin,
}

impl NewPin {
    /// Takes a new PIN entered twice: refuses entries that differ (compared in constant time),
    /// a PIN too short for its role (in characters, as the login counts them), one that is not
    /// text or too long, and the factory admin PIN. Both entries are in NFC already ([`Pin`]),
    /// so one typed composed and one typed decomposed agree. Both are wiped when this returns.
    pub fn confirm(role: PinRole, first: Pin, second: Pin) -> Result<NewPin, PinChoiceError> {
        if !bool::from(first.expose().ct_eq(second.expose())) {
            return Err(PinChoiceError::Mismatch(role));
        }
        drop(second);
        let text = std::str::from_utf8(first.expose()).map_err(|_| PinChoiceError::Format(role))?;
        if text.len() > crate::card::MAX_PIN_LEN {
            return Err(PinChoiceError::Format(role));
        }
        if text.chars().count() < role.min_len() {
            return Err(PinChoiceError::TooShort {
                role,
                min: role.min_len(),
            });
        }
        let factory = match role {
            PinRole::User => FACTORY_USER_PIN,
            PinRole::Admin => FACTORY_ADMIN_PIN,
        };
        if first.expose() == factory {
            return Err(PinChoiceError::FactoryDefault(role));
        }
        Ok(NewPin { role, pin: first })
    }

    /// Which PIN this is.
    pub fn role(&self) -> PinRole {
        self.role
    }
}

impl fmt::Debug for NewPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NewPin({}, ..)", self.role)
    }
}

/// What a card's set-up needs: the holder, the holder's new user PIN, the new admin PIN and
/// who keeps it.
#[derive(Debug)]
pub struct CardSetup {
    /// The holder's name, written to the card (printable ASCII, 1 to 39 characters).
    pub holder: String,
    /// The holder's new user PIN ([`PinRole::User`]).
    pub user_pin: NewPin,
    /// The new admin PIN ([`PinRole::Admin`]).
    pub admin_pin: NewPin,
    /// Who keeps the admin PIN (shown by the terminal; not written to the card).
    pub admin_pin_keeper: String,
}

/// A card set up for enrolment.
pub struct PreparedCard {
    /// The card, unverified: verify it with the holder's new user PIN.
    pub card: PcscCard,
    /// The keys generated on it.
    pub keys: GeneratedKeys,
    /// Who keeps its admin PIN.
    pub admin_pin_keeper: String,
}

impl fmt::Debug for PreparedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedCard")
            .field("card", &Card::info(&self.card))
            .field("admin_pin_keeper", &self.admin_pin_keeper)
            .finish_non_exhaustive()
    }
}

/// The set-up's PINs against each other and against the card's limits (`(user, admin)` bytes).
fn check_pins(
    setup: &CardSetup,
    (user_max, admin_max): (usize, usize),
) -> Result<(), PinChoiceError> {
    let user = setup.user_pin.pin.expose();
    if bool::from(user.ct_eq(setup.admin_pin.pin.expose())) {
        return Err(PinChoiceError::SameAsAdmin);
    }
    for (pin, max) in [(&setup.user_pin, user_max), (&setup.admin_pin, admin_max)] {
        if pin.pin.expose().len() > max {
            return Err(PinChoiceError::TooLong {
                role: pin.role,
                max,
            });
        }
    }
    Ok(())
}

impl PinChoiceError {
    /// A fixed text for [`CardError::PinFormat`].
    fn reason(&self) -> &'static str {
        match self {
            PinChoiceError::SameAsAdmin => {
                "the new user PIN and admin PIN are the same: choose two different PINs"
            }
            PinChoiceError::TooLong {
                role: PinRole::User,
                ..
            } => "the new user PIN is longer than this card accepts",
            PinChoiceError::TooLong { .. } => "the new admin PIN is longer than this card accepts",
            _ => "the new PIN is not one this card takes",
        }
    }
}

/// A step of [`prepare`] that changes the card, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupStep {
    /// Both keys generated on the card (the earlier ones, if any, are gone).
    Keys,
    /// The holder's name written.
    Holder,
    /// The holder's user PIN set, its retry counter full.
    UserPin,
    /// The admin PIN changed from the one the card came with.
    AdminPin,
}

/// Every step of [`prepare`] that changes the card, in order.
pub const SETUP_STEPS: [SetupStep; 4] = [
    SetupStep::Keys,
    SetupStep::Holder,
    SetupStep::UserPin,
    SetupStep::AdminPin,
];

impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetupStep::Keys => "keys generated on the card",
            SetupStep::Holder => "holder's name written",
            SetupStep::UserPin => "user PIN set",
            SetupStep::AdminPin => "admin PIN changed",
        })
    }
}

/// Why a card's set-up stopped, and the card if it could be had back.
#[derive(Debug)]
pub struct SetupFailed {
    /// The card, unverified (none if it could not be reopened after the failure).
    pub card: Option<PcscCard>,
    /// What went wrong.
    pub error: QuorumError,
    /// The steps that changed the card before it stopped, in order (none when the card was
    /// not changed: a refusal before it was touched, or a wrong admin PIN). The step after
    /// the last of them is the one that failed; a failed key generation may have replaced
    /// the first key already.
    pub done: Vec<SetupStep>,
    /// The card accepted the admin PIN and the steps began (false: the card is as it was).
    pub started: bool,
}

impl SetupFailed {
    fn new(card: Option<PcscCard>, error: impl Into<QuorumError>) -> Box<SetupFailed> {
        Box::new(SetupFailed {
            card,
            error: error.into(),
            done: Vec::new(),
            started: false,
        })
    }

    /// The step that failed: the one after those done (none when the steps never began, or
    /// when every step was done and only reopening the card failed).
    pub fn failed_step(&self) -> Option<SetupStep> {
        if !self.started {
            return None;
        }
        SETUP_STEPS.get(self.done.len()).copied()
    }
}

/// Sets `card` up as [`CardSetup`] says, with its current admin PIN `admin_pin` (the factory
/// default on a new card). Refuses a setup whose PINs have the wrong roles or whose holder the
/// card cannot store before touching the card. A wrong admin PIN hands the card back with the
/// tries left (as [`PcscCard::admin`] does); a failure after that leaves the card's admin PIN
/// as it was, since the admin PIN changes last.
pub fn prepare(
    card: PcscCard,
    admin_pin: &Pin,
    setup: CardSetup,
) -> Result<PreparedCard, Box<SetupFailed>> {
    if setup.user_pin.role != PinRole::User || setup.admin_pin.role != PinRole::Admin {
        return Err(SetupFailed::new(
            Some(card),
            CardError::PinFormat {
                reason: "the set-up's user and admin PINs are swapped",
            },
        ));
    }
    if let Err(e) = check_holder(&setup.holder).and_then(|()| check_card_holder(&setup.holder)) {
        return Err(SetupFailed::new(Some(card), e));
    }
    if let Err(e) = check_pins(&setup, card.pin_max_lens()) {
        return Err(SetupFailed::new(
            Some(card),
            CardError::PinFormat { reason: e.reason() },
        ));
    }
    let mut admin = card
        .admin(admin_pin)
        .map_err(|(card, e)| SetupFailed::new(Some(card), e))?;
    let mut done = Vec::new();
    let steps = (|| -> Result<GeneratedKeys, QuorumError> {
        let keys = admin.generate_keys()?;
        done.push(SetupStep::Keys);
        admin.set_holder(&setup.holder)?;
        done.push(SetupStep::Holder);
        admin.set_user_pin(&setup.user_pin.pin)?;
        done.push(SetupStep::UserPin);
        admin.change_admin_pin(&setup.admin_pin.pin)?;
        done.push(SetupStep::AdminPin);
        Ok(keys)
    })();
    let failed = |card, e, done| {
        let mut failed = SetupFailed::new(card, e);
        failed.done = done;
        failed.started = true;
        failed
    };
    match steps {
        Ok(keys) => {
            let card = admin.finish().map_err(|e| failed(None, e.into(), done))?;
            Ok(PreparedCard {
                card,
                keys,
                admin_pin_keeper: setup.admin_pin_keeper,
            })
        }
        Err(e) => Err(failed(admin.finish().ok(), e, done)),
    }
}

/// What an OpenPGP card stores as its holder (printable ASCII, at most
/// [`MAX_CARD_HOLDER_LEN`] characters), checked before the card is touched: the name is
/// written after the keys are generated.
fn check_card_holder(name: &str) -> Result<(), QuorumError> {
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(QuorumError::CardLabel {
            field: "holder",
            reason: "an OpenPGP card stores printable ASCII characters only",
        });
    }
    if name.len() > MAX_CARD_HOLDER_LEN {
        return Err(QuorumError::CardLabel {
            field: "holder",
            reason: "an OpenPGP card stores at most 39 characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(bytes: &[u8]) -> Pin {
        Pin::from_slice(bytes)
    }

    #[test]
    fn a_new_pin_is_taken_only_when_both_entries_agree_and_the_card_would_take_it() {
        let user = NewPin::confirm(PinRole::User, pin(b"246810"), pin(b"246810")).unwrap();
        assert_eq!(user.role(), PinRole::User);
        assert_eq!(format!("{user:?}"), "NewPin(user PIN, ..)");
        assert_eq!(
            NewPin::confirm(PinRole::User, pin(b"246810"), pin(b"246811")).unwrap_err(),
            PinChoiceError::Mismatch(PinRole::User)
        );
        assert_eq!(
            NewPin::confirm(PinRole::User, pin(b"12345"), pin(b"12345")).unwrap_err(),
            PinChoiceError::TooShort {
                role: PinRole::User,
                min: 6
            }
        );
        assert_eq!(
            NewPin::confirm(PinRole::Admin, pin(b"1234567"), pin(b"1234567")).unwrap_err(),
            PinChoiceError::TooShort {
                role: PinRole::Admin,
                min: 8
            }
        );
        assert_eq!(
            NewPin::confirm(
                PinRole::Admin,
                pin(FACTORY_ADMIN_PIN),
                pin(FACTORY_ADMIN_PIN)
            )
            .unwrap_err(),
            PinChoiceError::FactoryDefault(PinRole::Admin)
        );
        assert_eq!(
            NewPin::confirm(PinRole::User, pin(FACTORY_USER_PIN), pin(FACTORY_USER_PIN))
                .unwrap_err(),
            PinChoiceError::FactoryDefault(PinRole::User)
        );
        assert_eq!(
            NewPin::confirm(
                PinRole::User,
                pin(b"\xff\xfe123456"),
                pin(b"\xff\xfe123456")
            )
            .unwrap_err(),
            PinChoiceError::Format(PinRole::User)
        );
        // Against each other and the card's limits.
        let setup = |user: &[u8], admin: &[u8]| CardSetup {
            holder: "Ada".to_owned(),
            user_pin: NewPin::confirm(PinRole::User, pin(user), pin(user)).unwrap(),
            admin_pin: NewPin::confirm(PinRole::Admin, pin(admin), pin(admin)).unwrap(),
            admin_pin_keeper: "Ben".to_owned(),
        };
        assert_eq!(
            check_pins(&setup(b"24681012", b"24681012"), (127, 127)),
            Err(PinChoiceError::SameAsAdmin)
        );
        assert_eq!(
            check_pins(&setup(b"2468101214", b"tessera-admin"), (8, 127)),
            Err(PinChoiceError::TooLong {
                role: PinRole::User,
                max: 8
            })
        );
        assert_eq!(
            check_pins(&setup(b"246810", b"tessera-admin"), (127, 8)),
            Err(PinChoiceError::TooLong {
                role: PinRole::Admin,
                max: 8
            })
        );
        assert_eq!(
            check_pins(&setup(b"246810", b"tessera-admin"), (127, 127)),
            Ok(())
        );
        // The card's own holder rule, before any key is generated.
        assert!(check_card_holder("Ada Lovelace").is_ok());
        assert!(check_card_holder("Adà").is_err());
        assert!(check_card_holder(&"a".repeat(40)).is_err());
        let message = PinChoiceError::Mismatch(PinRole::Admin).to_string();
        assert!(
            message.contains("admin PIN") && message.contains("twice"),
            "{message}"
        );
    }
}
