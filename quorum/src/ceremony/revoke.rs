//! Revocation of a card: a fresh recovery secret for a new PSO set without it.

use hsm_link::domain::CardDescription;
use hsm_link::domain::CeremonyId;
use hsm_link::message::CeremonyKind;

use super::members::{NewSet, Registered, check_size};
use super::{ActiveSet, CardRef, CeremonyError, Link, Progress, begin};
use crate::card::VerifiedCard;
use crate::secret::RecoverySecret;

/// Revoking a card: a fresh recovery secret and quorum backup key for a new set without it
/// (set number + 1). The caller is logged in as PSO (m cards of the active set).
///
/// Once registered, the revoked card's signing key is no longer in the active set: the HSM
/// refuses its login signatures at once.
pub struct Revocation {
    id: CeremonyId,
    current: ActiveSet,
    revoked: CardDescription,
    new: NewSet,
}

/// What a revocation did.
#[derive(Clone, Debug)]
pub struct RevocationDone {
    /// The new set.
    pub registered: Registered,
    /// The revoked card.
    pub revoked: CardRef,
    /// Cards of the old set (other than the revoked one) that are not in the new set: they
    /// still hold a share of the old secret.
    pub old_shares_left: Vec<CardRef>,
}

impl RevocationDone {
    /// What the terminal says about backups once a revocation is done: backups made before it
    /// stay restorable on this HSM (its own backup key unwraps them), but onto another HSM
    /// only with shares of the old set, which the revoked card and any old card listed still
    /// hold; hence the offer of a fresh backup, wrapped to the new set's key.
    pub fn backup_notice(&self) -> String {
        let old_set = self.registered.set_number - 1;
        let mut holders = vec![self.revoked.to_string()];
        holders.extend(self.old_shares_left.iter().map(ToString::to_string));
        format!(
            "Backups made before this revocation stay restorable on this HSM. Onto another HSM \
             they open only with shares of the old set {old_set}, still held by {}. Make a fresh \
             backup now: it is wrapped to set {}'s new quorum backup key.",
            holders.join(", "),
            self.registered.set_number
        )
    }
}

impl Revocation {
    /// Opens a revoke ceremony for the card with serial `revoked_serial`, and makes a fresh
    /// secret split m'-of-n' for the new set.
    pub fn begin(
        link: &mut (impl Link + ?Sized),
        revoked_serial: &str,
        threshold: u8,
        n: u8,
    ) -> Result<Revocation, CeremonyError> {
        check_size(threshold, n)?;
        let (id, session) = begin(link, CeremonyKind::Revoke)?;
        let current = ActiveSet::fetch(link)?.ok_or(CeremonyError::NoActiveSet)?;
        let Some(revoked) = current
            .cards
            .iter()
            .find(|c| c.serial.as_str() == revoked_serial)
            .cloned()
        else {
            return Err(CeremonyError::NotInSet {
                card: CardRef {
                    holder: None,
                    serial: revoked_serial.to_owned(),
                    soft: false,
                },
            });
        };
        let secret = RecoverySecret::generate()?;
        let new = NewSet::split(&secret, session, id, current.set_number + 1, threshold, n)?;
        drop(secret);
        Ok(Revocation {
            id,
            current,
            revoked,
            new,
        })
    }

    /// The ceremony's id.
    pub fn id(&self) -> CeremonyId {
        self.id
    }

    /// Cards of the new set enrolled, of n'.
    pub fn progress(&self) -> Progress {
        self.new.progress()
    }

    /// Seals the next new share to `card`; the revoked card is refused and named, and so is a
    /// card that carries its serial.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let info = card.info();
        if info.signing_public == self.revoked.signing_key {
            return Err(CeremonyError::RevokedCard {
                card: CardRef::of_description(&self.revoked),
            });
        }
        if info.serial == self.revoked.serial.as_str() {
            // Not the revoked card (another key), but its serial: name both.
            return Err(CeremonyError::TwinSerial {
                card: CardRef::of(&info),
                other: CardRef::of_description(&self.revoked),
            });
        }
        self.new.add(card)
    }

    /// Cards that failed after their share was written and could not have it removed (pulled
    /// from the reader): insert each again and [`Revocation::wipe_leftover`] it; any left are named
    /// in the result as holding a share to wipe.
    pub fn leftovers(&self) -> Vec<CardRef> {
        self.new.leftovers()
    }

    /// Removes this ceremony's envelope from a card of [`Revocation::leftovers`]; how many such
    /// cards are left.
    pub fn wipe_leftover<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<usize, CeremonyError> {
        self.new.wipe_leftover(card)
    }

    /// Registers the new set with the revocation.
    pub fn finish(self, link: &mut (impl Link + ?Sized)) -> Result<RevocationDone, CeremonyError> {
        let left: Vec<&CardDescription> = self
            .current
            .cards
            .iter()
            .filter(|c| c.signing_key != self.revoked.signing_key)
            .filter(|c| {
                !self
                    .new
                    .cards()
                    .iter()
                    .any(|n| n.signing_key == c.signing_key)
            })
            .collect();
        let old_shares_left: Vec<CardRef> =
            left.iter().map(|c| CardRef::of_description(c)).collect();
        let serials = left.iter().map(|c| c.serial.clone()).collect();
        let revoked = CardRef::of_description(&self.revoked);
        let registered = self
            .new
            .register(link, Some(self.revoked.serial.clone()), serials)?;
        Ok(RevocationDone {
            registered,
            revoked,
            old_shares_left,
        })
    }
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("id", &format_args!("{}", self.id))
            .field("revoked", &self.revoked.serial)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
