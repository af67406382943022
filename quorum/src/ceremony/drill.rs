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

    /// Checks `card`'s share and reports the result to the HSM. A card that is not in the
    /// active set is refused (named) and not reported.
    pub fn run<C: VerifiedCard + ?Sized>(
        &self,
        link: &mut (impl Link + ?Sized),
        card: &mut C,
    ) -> Result<DrillOutcome, CeremonyError> {
        let info = card.info();
        let position = self
            .set
            .position_of(&info)
            .ok_or_else(|| CeremonyError::NotInSet {
                card: CardRef::of(&info),
            })?;
        let registered = &self.set.cards[position];
        let ctx = self.set.context(&self.partition, position);
        let problem = read_checked(card, &ctx, &self.set.commitments).err();
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
