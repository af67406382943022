//! Enrolment of an auditor set: the cards' keys and proofs of possession, no share.

use hsm_link::domain::CeremonyId;
use hsm_link::domain::{CardDescription, CardSetKind};
use hsm_link::message::{AdminRequest, AdminResponse, CeremonyKind};

use super::members::{Members, check_size};
use super::{CeremonyError, Link, LinkError, Progress, begin};
use crate::card::VerifiedCard;

/// Enrolling a partition's auditor set: n cards with their holders, threshold m; no share and
/// no secret (only the PSO set carries the recovery secret). Each card, verified with its PIN,
/// signs its proof of possession for this ceremony, so the HSM registers only keys that are on
/// the cards presented. The caller is logged in as PSO.
///
/// The set replaces the active auditor set, if any (its number follows the active one's).
pub struct AuditorEnrolment {
    members: Members,
}

/// An auditor set the HSM registered.
#[derive(Clone, Debug)]
pub struct AuditorsRegistered {
    /// The ceremony that registered it.
    pub ceremony: CeremonyId,
    /// The set's number.
    pub set_number: u32,
    /// m.
    pub threshold: u8,
    /// The cards.
    pub cards: Vec<CardDescription>,
}

impl AuditorEnrolment {
    /// Opens an auditor enrolment ceremony at the HSM for an m-of-n set.
    pub fn begin(
        link: &mut (impl Link + ?Sized),
        threshold: u8,
        n: u8,
    ) -> Result<AuditorEnrolment, CeremonyError> {
        check_size(threshold, n)?;
        let (id, session) = begin(link, CeremonyKind::EnrolAuditors)?;
        let set_number = match link.admin(AdminRequest::GetCardSets)? {
            AdminResponse::CardSets { auditor, .. } => auditor.map_or(1, |s| s.set_number + 1),
            _ => return Err(LinkError::Unexpected.into()),
        };
        Ok(AuditorEnrolment {
            members: Members::new(session, id, CardSetKind::Auditor, set_number, threshold, n),
        })
    }

    /// The ceremony's id (show it: the HSM logs it).
    pub fn id(&self) -> CeremonyId {
        self.members.ceremony
    }

    /// Cards enrolled, of n.
    pub fn progress(&self) -> Progress {
        self.members.progress()
    }

    /// Takes the next card (which must carry its holder's name): it signs its proof of
    /// possession. A card presented twice is refused and named.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let description = self.members.describe(card)?;
        let proof = self.members.prove(card, &description)?;
        Ok(self.members.push(description, proof))
    }

    /// Registers the set, once every card joined.
    pub fn finish(
        self,
        link: &mut (impl Link + ?Sized),
    ) -> Result<AuditorsRegistered, CeremonyError> {
        let request = self.members.request(None, None, Vec::new())?;
        let (ceremony, set_number, threshold) = (
            self.members.ceremony,
            self.members.set_number,
            self.members.threshold,
        );
        Ok(AuditorsRegistered {
            ceremony,
            set_number,
            threshold,
            cards: self.members.register(link, request)?,
        })
    }
}

impl std::fmt::Debug for AuditorEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditorEnrolment")
            .field("id", &format_args!("{}", self.members.ceremony))
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
