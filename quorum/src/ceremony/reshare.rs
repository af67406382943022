//! The re-share: the same recovery secret moved from m cards of the active set to a new set.
//!
//! The steps are types: [`Reshare`] takes the old cards; [`Reshare::split`] consumes it and
//! returns [`ReshareNewSet`], which takes only the new cards; its `finish` registers the set
//! and returns [`ReshareWipe`], which only wipes. An old card cannot be presented after the
//! split, nor a new card before it: the compiler refuses the call.
//!
//! ```compile_fail
//! fn old_card_after_the_split(
//!     new: &mut quorum::ceremony::ReshareNewSet,
//!     card: &mut quorum::soft::VerifiedSoftCard,
//! ) {
//!     let _ = new.present_old(card);
//! }
//! ```

use hsm_link::domain::CeremonyId;
use hsm_link::domain::{CardDescription, CardSerial};
use hsm_link::message::CeremonyKind;

use super::active_set::{ActiveSet, Collector};
use super::members::{NewSet, Registered, check_size};
use super::{CardRef, CeremonyError, Link, Progress, Session, begin};
use crate::card::VerifiedCard;

/// A re-share, taking the old cards: the same recovery secret moved from m cards of the
/// active set to a new set (new m, n, holders; set number + 1; the same quorum backup key). The
/// caller is logged in as PSO.
///
/// Steps: [`Reshare::present_old`] m old cards; [`Reshare::split`] into the new set, which
/// gives a [`ReshareNewSet`]; [`ReshareNewSet::add_card`] each new card;
/// [`ReshareNewSet::finish`] registers; then [`ReshareWipe::wipe`] each old card present that
/// is not in the new set.
pub struct Reshare {
    id: CeremonyId,
    session: Session,
    collector: Collector,
}

impl Reshare {
    /// Opens a re-share ceremony and reads the active set.
    pub fn begin(link: &mut (impl Link + ?Sized)) -> Result<Reshare, CeremonyError> {
        let (id, session) = begin(link, CeremonyKind::Reshare)?;
        let set = ActiveSet::fetch(link)?.ok_or(CeremonyError::NoActiveSet)?;
        Ok(Reshare {
            id,
            session,
            collector: Collector::new(link.partition(), set),
        })
    }

    /// The ceremony's id.
    pub fn id(&self) -> CeremonyId {
        self.id
    }

    /// Old shares read so far, of the old m.
    pub fn old_progress(&self) -> Progress {
        self.collector.progress()
    }

    /// Reads and checks an old card's share.
    pub fn present_old<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        self.collector.present(card)
    }

    /// Combines the old shares (refusing fewer than m), splits the secret m'-of-n' for the new
    /// set, and zeroizes the secret and the old shares. On a refusal (too few old shares, a
    /// quorum size out of range) the re-share comes back unchanged with the reason (boxed: it
    /// is large), so more old cards can be presented, as a card comes back from a wrong PIN.
    pub fn split(
        self,
        threshold: u8,
        n: u8,
    ) -> Result<ReshareNewSet, (Box<Reshare>, CeremonyError)> {
        if let Err(e) = check_size(threshold, n) {
            return Err((Box::new(self), e));
        }
        let secret = match self.collector.combine() {
            Ok(secret) => secret,
            Err(e) => return Err((Box::new(self), e)),
        };
        let new = match NewSet::split(
            &secret,
            self.session.clone(),
            self.id,
            self.collector.set.set_number + 1,
            threshold,
            n,
        ) {
            Ok(new) => new,
            Err(e) => return Err((Box::new(self), e)),
        };
        drop(secret);
        let Collector { set, present, .. } = self.collector;
        Ok(ReshareNewSet {
            id: self.id,
            old: set.cards,
            present,
            new,
        })
    }
}

impl std::fmt::Debug for Reshare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reshare")
            .field("id", &format_args!("{}", self.id))
            .field("old", &self.old_progress())
            .finish_non_exhaustive()
    }
}

/// A re-share after the split, taking the new cards. The old shares and the secret are gone
/// (zeroized by [`Reshare::split`]); what is left of the old set is which of its cards were
/// present.
pub struct ReshareNewSet {
    id: CeremonyId,
    old: Vec<CardDescription>,
    present: Vec<usize>,
    new: NewSet,
}

impl ReshareNewSet {
    /// The ceremony's id.
    pub fn id(&self) -> CeremonyId {
        self.id
    }

    /// New cards written so far, of the new n.
    pub fn new_progress(&self) -> Progress {
        self.new.progress()
    }

    /// Seals the next new share to `card`, stores it, reads it back and checks it.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        self.new.add(card)
    }

    /// Cards that failed after their share was written and could not have it removed (pulled
    /// from the reader): insert each again and [`ReshareNewSet::wipe_leftover`] it; any left are named
    /// in the result as holding a share to wipe.
    pub fn leftovers(&self) -> Vec<CardRef> {
        self.new.leftovers()
    }

    /// Removes this ceremony's envelope from a card of [`ReshareNewSet::leftovers`]; how many such
    /// cards are left.
    pub fn wipe_leftover<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<usize, CeremonyError> {
        self.new.wipe_leftover(card)
    }

    /// Registers the new set. The old cards that were not present and are not in the new set
    /// still hold an old share: they are logged by the HSM and listed in the answer, which then
    /// wipes the old cards present.
    pub fn finish(self, link: &mut (impl Link + ?Sized)) -> Result<ReshareWipe, CeremonyError> {
        let new = self.new;
        let old = &self.old;
        let in_new =
            |c: &CardDescription| new.cards().iter().any(|n| n.signing_key == c.signing_key);
        let left: Vec<&CardDescription> = old
            .iter()
            .enumerate()
            .filter(|(i, c)| !self.present.contains(i) && !in_new(c))
            .map(|(_, c)| c)
            .collect();
        let to_wipe: Vec<CardDescription> = self
            .present
            .iter()
            .map(|&i| &old[i])
            .filter(|c| !in_new(c))
            .cloned()
            .collect();
        let old_shares_left = left.iter().map(|c| CardRef::of_description(c)).collect();
        let serials: Vec<CardSerial> = left.iter().map(|c| c.serial.clone()).collect();
        let registered = new.register(link, None, serials)?;
        Ok(ReshareWipe {
            registered,
            old_shares_left,
            to_wipe,
        })
    }
}

impl std::fmt::Debug for ReshareNewSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReshareNewSet")
            .field("id", &format_args!("{}", self.id))
            .field("new", &self.new_progress())
            .finish_non_exhaustive()
    }
}

/// A registered re-share: the old cards present (and not in the new set) still to be wiped.
#[derive(Debug)]
pub struct ReshareWipe {
    /// The new set.
    pub registered: Registered,
    /// Old cards that were not present and are not in the new set: they still hold an old
    /// share (the HSM logged them with the registration).
    pub old_shares_left: Vec<CardRef>,
    to_wipe: Vec<CardDescription>,
}

impl ReshareWipe {
    /// Old cards present that are not in the new set and still hold their old share, to wipe.
    /// Cards in both sets keep their old envelope beside the new one until
    /// `registered.drop_old_share` is called for them (after the registration, so that an
    /// aborted re-share never leaves the old set short).
    pub fn pending(&self) -> Vec<CardRef> {
        self.to_wipe.iter().map(CardRef::of_description).collect()
    }

    /// Wipes an old card's share (writes an empty share object); how many cards are still
    /// to wipe.
    pub fn wipe<C: VerifiedCard + ?Sized>(&mut self, card: &mut C) -> Result<usize, CeremonyError> {
        let info = card.info();
        let Some(position) = self
            .to_wipe
            .iter()
            .position(|c| c.signing_key == info.signing_public)
        else {
            return Err(CeremonyError::NotInSet {
                card: CardRef::of(&info),
            });
        };
        card.write_share_object(&[])
            .map_err(|source| CeremonyError::Wipe {
                card: CardRef::of_description(&self.to_wipe[position]),
                source,
            })?;
        self.to_wipe.remove(position);
        Ok(self.to_wipe.len())
    }
}
