//! Enrolment of the first (or a fresh) PSO set: a new recovery secret split m-of-n, one share
//! per card, every share read back and checked before the registration.

use hsm_link::domain::CeremonyId;
use hsm_link::message::{AdminRequest, CeremonyKind};

use super::members::{NewSet, Registered, check_size};
use super::{ActiveSet, CardRef, CeremonyError, Link, Progress, begin};
use crate::card::VerifiedCard;
use crate::secret::{QuorumBackupPublicKey, RecoverySecret};

/// Enrolling a PSO set: a fresh recovery secret split m-of-n, a share sealed to each of the n
/// cards, every card's share read back and checked, then the registration.
///
/// The secret exists only inside [`Enrolment::begin`]: it is split, the backup key pair is
/// derived, and it is zeroized before `begin` returns. Each share is zeroized once its card holds
/// it; dropping the enrolment at any step zeroizes the rest and registers nothing.
pub struct Enrolment {
    id: CeremonyId,
    new: NewSet,
}

impl Enrolment {
    /// Opens an enrol ceremony at the HSM and makes the secret and the shares for an
    /// m-of-n set. The set's number follows the active set's (1 for the first set).
    pub fn begin(
        link: &mut (impl Link + ?Sized),
        threshold: u8,
        n: u8,
    ) -> Result<Enrolment, CeremonyError> {
        check_size(threshold, n)?;
        let (id, session) = begin(link, CeremonyKind::Enrol)?;
        let set_number = ActiveSet::fetch(link)?.map_or(1, |s| s.set_number + 1);
        let secret = RecoverySecret::generate()?;
        let new = NewSet::split(&secret, session, id, set_number, threshold, n)?;
        drop(secret);
        Ok(Enrolment { id, new })
    }

    /// The ceremony's id (show it: the HSM logs it).
    pub fn id(&self) -> CeremonyId {
        self.id
    }

    /// Cards enrolled, of n.
    pub fn progress(&self) -> Progress {
        self.new.progress()
    }

    /// The quorum backup public key the set will register.
    pub fn backup_public(&self) -> &QuorumBackupPublicKey {
        self.new.backup_public()
    }

    /// Seals the next share to `card` (which must carry its holder's name), stores it, reads it
    /// back and checks it; the card then signs its proof of possession for this ceremony.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        self.new.add(card)
    }

    /// Cards that failed after their share was written and could not have it removed (pulled
    /// from the reader): insert each again and [`Enrolment::wipe_leftover`] it; any left are named
    /// in the result as holding a share to wipe.
    pub fn leftovers(&self) -> Vec<CardRef> {
        self.new.leftovers()
    }

    /// Removes this ceremony's envelope from a card of [`Enrolment::leftovers`]; how many such
    /// cards are left.
    pub fn wipe_leftover<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<usize, CeremonyError> {
        self.new.wipe_leftover(card)
    }

    /// Registers the set, once every card's share is read back and checked.
    pub fn finish(self, link: &mut (impl Link + ?Sized)) -> Result<Registered, CeremonyError> {
        self.new.register(link, None, Vec::new())
    }

    /// The registration request, with another ceremony id (for tests of the HSM's refusal).
    #[doc(hidden)]
    pub fn request_with_id(&self, ceremony: CeremonyId) -> Result<AdminRequest, CeremonyError> {
        self.new.request(ceremony, None, Vec::new())
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("id", &format_args!("{}", self.id))
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
