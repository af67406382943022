//! Which kinds of officer card the terminal accepts: the card policy.
//!
//! A smartcard keeps its keys on the card and counts wrong PINs: after three it blocks. A soft
//! card ([`crate::soft`]) is a file: whoever copies it can guess its passphrase offline, as
//! often and as fast as they like, and only the passphrase (stretched with Argon2id) stands in
//! the way. So soft cards are refused unless the terminal runs its embedded demo or its
//! configuration allows them ([`ALLOW_SOFT_CARDS_KEY`]), and a policy that allows them says why
//! ([`CardPolicy`]'s `Display`).
//!
//! The policy is checked where a soft card enters the terminal: [`SoftCard::open`] and
//! [`SoftCard::create`] take it and refuse with [`QuorumError::SoftCardRefused`], which names
//! the file and the configuration key. Smartcards are always accepted.
//!
//! ```
//! use quorum::card_policy::CardPolicy;
//!
//! assert!(!CardPolicy::default().allows_soft_cards());
//! assert!(CardPolicy::allowed_by_configuration().allows_soft_cards());
//! assert_eq!(CardPolicy::hardware_only().to_string(), "hardware cards only");
//! ```
//!
//! [`SoftCard::open`]: crate::soft::SoftCard::open
//! [`SoftCard::create`]: crate::soft::SoftCard::create

use std::fmt;
use std::path::Path;

use crate::error::QuorumError;

/// The terminal configuration key that allows soft cards: `allow_soft_cards` in the `[cards]`
/// section (`[cards]` / `allow_soft_cards = true`). The terminal's configuration reads it; this
/// crate only names it in its refusal.
pub const ALLOW_SOFT_CARDS_KEY: &str = "cards.allow_soft_cards";

/// Whether soft cards are accepted, and on what grounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CardPolicy {
    soft_cards: SoftCards,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum SoftCards {
    /// Hardware cards only: the default.
    #[default]
    Refused,
    /// The terminal configuration sets [`ALLOW_SOFT_CARDS_KEY`].
    AllowedByConfiguration,
    /// The embedded demo: an in-process HSM simulator and demo cards made for it.
    EmbeddedDemo,
}

impl CardPolicy {
    /// Hardware cards only (the default): every soft card is refused.
    pub const fn hardware_only() -> Self {
        CardPolicy {
            soft_cards: SoftCards::Refused,
        }
    }

    /// Soft cards accepted because the terminal configuration sets [`ALLOW_SOFT_CARDS_KEY`].
    pub const fn allowed_by_configuration() -> Self {
        CardPolicy {
            soft_cards: SoftCards::AllowedByConfiguration,
        }
    }

    /// The embedded demo: soft cards accepted (its demo cards are soft cards, made for it
    /// against an in-process HSM simulator).
    pub const fn embedded_demo() -> Self {
        CardPolicy {
            soft_cards: SoftCards::EmbeddedDemo,
        }
    }

    /// Whether soft cards are accepted.
    pub const fn allows_soft_cards(&self) -> bool {
        !matches!(self.soft_cards, SoftCards::Refused)
    }

    /// Refuses the soft card file at `path` unless soft cards are accepted, with an error that
    /// names the file, the configuration key and the reason.
    pub fn check_soft_card(&self, path: &Path) -> Result<(), QuorumError> {
        if self.allows_soft_cards() {
            Ok(())
        } else {
            Err(QuorumError::SoftCardRefused {
                path: path.to_owned(),
            })
        }
    }
}

/// "hardware cards only", "soft cards allowed by the terminal configuration
/// (cards.allow_soft_cards)" or "embedded demo: soft cards allowed".
impl fmt::Display for CardPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.soft_cards {
            SoftCards::Refused => f.write_str("hardware cards only"),
            SoftCards::AllowedByConfiguration => write!(
                f,
                "soft cards allowed by the terminal configuration ({ALLOW_SOFT_CARDS_KEY})"
            ),
            SoftCards::EmbeddedDemo => f.write_str("embedded demo: soft cards allowed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_only_is_the_default_and_refuses_soft_cards() {
        assert_eq!(CardPolicy::default(), CardPolicy::hardware_only());
        let error = CardPolicy::default()
            .check_soft_card(Path::new("/media/ada.card"))
            .unwrap_err();
        assert!(matches!(error, QuorumError::SoftCardRefused { .. }));
        let text = error.to_string();
        assert!(text.contains("/media/ada.card"), "{text}");
        assert!(text.contains("[cards]"), "{text}");
        assert!(text.contains("allow_soft_cards = true"), "{text}");
        assert!(text.contains("no PIN retry counter"), "{text}");
        assert!(text.contains("passphrase"), "{text}");
    }

    #[test]
    fn configuration_and_demo_allow_soft_cards_and_say_so() {
        for policy in [
            CardPolicy::allowed_by_configuration(),
            CardPolicy::embedded_demo(),
        ] {
            assert!(policy.allows_soft_cards());
            policy.check_soft_card(Path::new("ada.card")).unwrap();
        }
        assert!(!CardPolicy::hardware_only().allows_soft_cards());
        assert!(
            CardPolicy::allowed_by_configuration()
                .to_string()
                .contains(ALLOW_SOFT_CARDS_KEY)
        );
        assert!(CardPolicy::embedded_demo().to_string().contains("demo"));
    }
}
