//! Ceremonies that read the active set's shares: drill, recovery and re-share.

use hsm_link::domain::{CardDescription, CardSerial, PartitionId};
use hsm_link::message::{AdminError, AdminRequest, AdminResponse, CeremonyKind, drill_message};

use super::new_set::{NewSet, Registered};
use super::{
    ActiveSet, CardRef, CeremonyError, Link, LinkError, Progress, Session, begin, read_checked,
};
use crate::card::VerifiedCard;
use crate::secret::{self, QuorumBackupKey, RecoverySecret, Share};

/// Shares of the active set, each checked against the commitments as it arrives.
struct Collector {
    partition: PartitionId,
    set: ActiveSet,
    shares: Vec<Share>,
    present: Vec<usize>,
}

impl Collector {
    fn new(partition: &PartitionId, set: ActiveSet) -> Collector {
        Collector {
            partition: partition.clone(),
            set,
            shares: Vec::new(),
            present: Vec::new(),
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            have: self.present.len(),
            need: usize::from(self.set.threshold),
        }
    }

    /// The card's position in the set, or the card named.
    fn position<C: VerifiedCard + ?Sized>(&self, card: &C) -> Result<usize, CeremonyError> {
        let info = card.info();
        let position = self
            .set
            .position_of(&info)
            .ok_or_else(|| CeremonyError::NotInSet {
                card: CardRef::of(&info),
            })?;
        if self.present.contains(&position) {
            return Err(CeremonyError::SameCardTwice {
                card: CardRef::of_description(&self.set.cards[position]),
            });
        }
        Ok(position)
    }

    fn present<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let position = self.position(card)?;
        let ctx = self.set.context(&self.partition, position);
        let share = read_checked(card, &ctx, &self.set.commitments)?;
        self.shares.push(share);
        self.present.push(position);
        Ok(self.progress())
    }

    /// Combines the shares (refusing fewer than m) and checks the backup key it gives against
    /// the HSM's. Each share passed its Feldman check in [`Collector::present`].
    fn combine(&self) -> Result<RecoverySecret, CeremonyError> {
        let secret = secret::combine_checked(
            &self.set.commitments,
            usize::from(self.set.threshold),
            &self.shares,
        )?;
        let (_, public) = QuorumBackupKey::derive(&secret);
        if public != self.set.backup_public {
            return Err(CeremonyError::BackupKeyMismatch);
        }
        Ok(secret)
    }
}

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

/// A recovery: m cards of the active set yield their shares (each checked as it arrives), the
/// secret is combined and the quorum backup key derived (and checked against the HSM's).
pub struct Recovery {
    collector: Collector,
}

impl Recovery {
    /// Reads the active set and its commitments from the HSM.
    pub fn begin(link: &mut (impl Link + ?Sized)) -> Result<Recovery, CeremonyError> {
        let set = ActiveSet::fetch(link)?.ok_or(CeremonyError::NoActiveSet)?;
        Ok(Recovery {
            collector: Collector::new(link.partition(), set),
        })
    }

    /// Reads and checks `card`'s share.
    pub fn present<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        self.collector.present(card)
    }

    /// Shares so far, of m.
    pub fn progress(&self) -> Progress {
        self.collector.progress()
    }

    /// Combines the shares (never fewer than m) and derives the quorum backup key; the secret
    /// and the shares are zeroized before this returns.
    pub fn finish(self) -> Result<QuorumBackupKey, CeremonyError> {
        let secret = self.collector.combine()?;
        let (key, _) = QuorumBackupKey::derive(&secret);
        Ok(key)
    }
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

/// A re-share: the same recovery secret moved from m cards of the active set to a new set
/// (new m, n, holders; set number + 1; the same quorum backup key). The caller is logged in as
/// PSO.
///
/// Steps: [`Reshare::present_old`] m old cards; [`Reshare::split`] into the new set;
/// [`Reshare::add_card`] each new card; [`Reshare::finish`] registers; then
/// [`ReshareWipe::wipe`] each old card present that is not in the new set.
pub struct Reshare {
    id: [u8; 16],
    session: Session,
    collector: Collector,
    new: Option<NewSet>,
}

impl Reshare {
    /// Opens a re-share ceremony and reads the active set.
    pub fn begin(link: &mut (impl Link + ?Sized)) -> Result<Reshare, CeremonyError> {
        let id = begin(link, CeremonyKind::Reshare)?;
        let set = ActiveSet::fetch(link)?.ok_or(CeremonyError::NoActiveSet)?;
        Ok(Reshare {
            id,
            session: Session::of(link),
            collector: Collector::new(link.partition(), set),
            new: None,
        })
    }

    /// The ceremony's id.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// Old shares read so far, of the old m.
    pub fn old_progress(&self) -> Progress {
        self.collector.progress()
    }

    /// New cards written so far, of the new n (zero of zero before [`Reshare::split`]).
    pub fn new_progress(&self) -> Progress {
        self.new
            .as_ref()
            .map_or(Progress { have: 0, need: 0 }, NewSet::progress)
    }

    /// Reads and checks an old card's share.
    pub fn present_old<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        if self.new.is_some() {
            return Err(CeremonyError::Step("the new set is already split"));
        }
        self.collector.present(card)
    }

    /// Combines the old shares (refusing fewer than m), splits the secret m'-of-n' for the new
    /// set, and zeroizes the secret and the old shares.
    pub fn split(&mut self, threshold: u8, n: u8) -> Result<(), CeremonyError> {
        if self.new.is_some() {
            return Err(CeremonyError::Step("the new set is already split"));
        }
        super::new_set::check_size(threshold, n)?;
        let secret = self.collector.combine()?;
        let new = NewSet::split(
            &secret,
            self.session.clone(),
            self.id,
            self.collector.set.set_number + 1,
            threshold,
            n,
        )?;
        drop(secret);
        self.collector.shares.clear();
        self.new = Some(new);
        Ok(())
    }

    /// Seals the next new share to `card`, stores it, reads it back and checks it.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        self.new
            .as_mut()
            .ok_or(CeremonyError::Step(
                "split the secret for the new set first",
            ))?
            .add(card)
    }

    /// Registers the new set. The old cards that were not present and are not in the new set
    /// still hold an old share: they are logged by the HSM and listed in the answer, which then
    /// wipes the old cards present.
    pub fn finish(self, link: &mut (impl Link + ?Sized)) -> Result<ReshareWipe, CeremonyError> {
        let new = self.new.ok_or(CeremonyError::Step(
            "split the secret for the new set first",
        ))?;
        let old = &self.collector.set.cards;
        let in_new =
            |c: &CardDescription| new.cards().iter().any(|n| n.signing_key == c.signing_key);
        let left: Vec<&CardDescription> = old
            .iter()
            .enumerate()
            .filter(|(i, c)| !self.collector.present.contains(i) && !in_new(c))
            .map(|(_, c)| c)
            .collect();
        let to_wipe: Vec<CardDescription> = self
            .collector
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

impl std::fmt::Debug for Reshare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reshare")
            .field("id", &super::ceremony_id_text(&self.id))
            .field("old", &self.old_progress())
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
        card.write_share_object(&[])?;
        self.to_wipe.remove(position);
        Ok(self.to_wipe.len())
    }
}
