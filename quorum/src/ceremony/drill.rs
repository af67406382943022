//! The share drill: one holder's card opens its share, checked against the HSM's commitments;
//! the card signs the result and the HSM logs it.

use hsm_link::domain::PartitionId;
use hsm_link::message::{AdminError, AdminRequest, AdminResponse, drill_message};

use super::active_set::{ActiveSet, read_checked};
use super::{CardRef, CeremonyError, Link, LinkError};
use crate::card::VerifiedCard;

/// A share drill: one holder's card opens its share, which is checked against the commitments
/// the HSM holds; the result goes to the HSM's log. Needs no login and combines nothing.
#[derive(Debug)]
pub struct Drill {
    partition: PartitionId,
    set: ActiveSet,
}

/// What a drill found.
#[derive(Debug)]
pub struct DrillOutcome {
    /// The card.
    pub card: CardRef,
    /// Why its share is not usable, if it is not (the HSM logged the drill as failed).
    pub problem: Option<CeremonyError>,
    /// Whether the HSM took the report and logged it. False when it rationed drill reports
    /// made without a login ([`AdminError::DrillsThrottled`]): the result above still holds,
    /// but is not on record; report it again later, or drill while logged in.
    pub reported: bool,
    /// Envelopes of other sets the card holds beside its own (an old set's not yet dropped, or
    /// one of a set never registered): offer [`Drill::wipe_leftovers`].
    pub leftover_sets: Vec<u32>,
}

impl DrillOutcome {
    /// Whether the card's share is good.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl Drill {
    /// Reads the active set and its commitments from the HSM.
    pub fn begin(link: &mut (impl Link + ?Sized)) -> Result<Drill, CeremonyError> {
        let set = ActiveSet::fetch(link)?.ok_or(CeremonyError::NoActiveSet)?;
        Ok(Drill {
            partition: link.partition().clone(),
            set,
        })
    }

    /// Removes from `card` every envelope the active set does not account for (see
    /// [`ActiveSet::leftover_envelopes`]), keeping a member's own share: what a drill offers
    /// for a card refused with [`CeremonyError::LeftoverShare`] or whose outcome lists
    /// leftover sets. The set numbers removed.
    pub fn wipe_leftovers<C: VerifiedCard + ?Sized>(
        &self,
        card: &mut C,
    ) -> Result<Vec<u32>, CeremonyError> {
        self.set.wipe_leftovers(&self.partition, card)
    }

    /// Checks `card`'s share and reports the result to the HSM. A card that is not in the
    /// active set is refused (named) and not reported: with [`CeremonyError::LeftoverShare`]
    /// if it still holds a share envelope, else with [`CeremonyError::NotInSet`].
    pub fn run<C: VerifiedCard + ?Sized>(
        &self,
        link: &mut (impl Link + ?Sized),
        card: &mut C,
    ) -> Result<DrillOutcome, CeremonyError> {
        let info = card.info();
        let Some(position) = self.set.position_of(&info) else {
            // A card outside the set that still holds a share is a ceremony's leftover.
            return Err(match self.set.leftover_envelopes(&self.partition, card) {
                Ok(sets) if !sets.is_empty() => CeremonyError::LeftoverShare {
                    card: CardRef::of(&info),
                    sets,
                },
                _ => CeremonyError::NotInSet {
                    card: CardRef::of(&info),
                },
            });
        };
        let registered = &self.set.cards[position];
        let ctx = self.set.context(&self.partition, position);
        let problem = read_checked(card, &ctx, &self.set.commitments).err();
        // Other envelopes beside its own (a failed read leaves nothing more to say).
        let leftover_sets = self
            .set
            .leftover_envelopes(&self.partition, card)
            .unwrap_or_default();
        let ok = problem.is_none();
        // The card signs its own report: the HSM logs it as the card's, not the terminal's.
        let message = drill_message(
            &link.channel_binding(),
            &self.partition,
            self.set.set_number,
            &registered.serial,
            ok,
        );
        let signature = card.sign(&message).map_err(|source| CeremonyError::Proof {
            card: CardRef::of_description(registered),
            source,
        })?;
        let outcome = |reported| DrillOutcome {
            card: CardRef::of_description(registered),
            problem,
            reported,
            leftover_sets,
        };
        match link.admin(AdminRequest::ReportDrill {
            card_serial: registered.serial.clone(),
            ok,
            signature,
        }) {
            Ok(AdminResponse::Done) => Ok(outcome(true)),
            Ok(_) => Err(LinkError::Unexpected.into()),
            Err(e) if matches!(e.admin_error(), Some(AdminError::DrillsThrottled { .. })) => {
                Ok(outcome(false))
            }
            Err(e) => Err(e.into()),
        }
    }
}
