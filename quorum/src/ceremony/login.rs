//! The login ceremony: m distinct cards of the active set sign the HSM's challenge.

use hsm_link::domain::{CardDescription, HolderName, PartitionId};
use hsm_link::message::{AdminRequest, AdminResponse, CardSignature, OfficerRole, login_message};

use super::{CardRef, CeremonyError, Link, LinkError, Progress};
use crate::card::VerifiedCard;

/// The HSM's login challenge: its nonce, the threshold, and the cards that may sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The HSM's fresh nonce.
    pub nonce: [u8; 32],
    /// Signatures needed (m).
    pub threshold: u8,
    /// The cards of the active set.
    pub cards: Vec<CardDescription>,
}

impl Challenge {
    /// Asks the HSM for a challenge for `role`.
    pub fn request(
        link: &mut (impl Link + ?Sized),
        role: OfficerRole,
    ) -> Result<Challenge, CeremonyError> {
        match link.admin(AdminRequest::LoginChallenge { role })? {
            AdminResponse::Challenge {
                nonce,
                threshold,
                cards,
            } => Ok(Challenge {
                nonce,
                threshold,
                cards,
            }),
            _ => Err(LinkError::Unexpected.into()),
        }
    }
}

/// A login in progress: cards are presented one at a time, each signs the login message bound
/// to this session's channel, this nonce, this partition and this role.
///
/// A card that is not in the challenge's set, or a card presented twice, is refused and named;
/// the ceremony's state is unchanged and the next card may be presented. The HSM checks the
/// signatures again and decides.
#[derive(Debug)]
pub struct LoginCeremony {
    role: OfficerRole,
    message: Vec<u8>,
    threshold: u8,
    cards: Vec<CardDescription>,
    signatures: Vec<CardSignature>,
    signed: Vec<CardRef>,
}

impl LoginCeremony {
    /// A login answering `challenge` on the session whose channel binding is
    /// `channel_binding`.
    pub fn new(
        challenge: Challenge,
        role: OfficerRole,
        channel_binding: &[u8; 32],
        partition: &PartitionId,
    ) -> LoginCeremony {
        LoginCeremony {
            role,
            message: login_message(channel_binding, &challenge.nonce, partition, role),
            threshold: challenge.threshold,
            cards: challenge.cards,
            signatures: Vec::new(),
            signed: Vec::new(),
        }
    }

    /// Asks the HSM for a challenge and starts the login.
    pub fn start(
        link: &mut (impl Link + ?Sized),
        role: OfficerRole,
    ) -> Result<LoginCeremony, CeremonyError> {
        let challenge = Challenge::request(link, role)?;
        let binding = link.channel_binding();
        Ok(LoginCeremony::new(
            challenge,
            role,
            &binding,
            link.partition(),
        ))
    }

    /// Cards signed so far, of the threshold.
    pub fn progress(&self) -> Progress {
        Progress {
            have: self.signatures.len(),
            need: usize::from(self.threshold),
        }
    }

    /// The cards that signed so far, in order.
    pub fn signed(&self) -> &[CardRef] {
        &self.signed
    }

    /// The set's cards (to show who may still sign).
    pub fn cards(&self) -> &[CardDescription] {
        &self.cards
    }

    /// Has `card` sign the login message.
    pub fn present<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let info = card.info();
        let Some(registered) = self
            .cards
            .iter()
            .find(|c| c.signing_key == info.signing_public)
        else {
            return Err(CeremonyError::NotInSet {
                card: CardRef::of(&info),
            });
        };
        if self
            .signatures
            .iter()
            .any(|s| s.signing_key == info.signing_public)
        {
            return Err(CeremonyError::SameCardTwice {
                card: CardRef::of(&registered_name(registered, &info)),
            });
        }
        let name = CardRef::of(&registered_name(registered, &info));
        let signature = card
            .sign(&self.message)
            .map_err(|source| CeremonyError::Proof {
                card: name.clone(),
                source,
            })?;
        self.signatures.push(CardSignature {
            signing_key: info.signing_public,
            signature,
        });
        self.signed.push(name);
        Ok(self.progress())
    }

    /// The login request to send (the HSM refuses it with fewer than m signatures).
    pub fn finish(self) -> AdminRequest {
        AdminRequest::Login {
            role: self.role,
            signatures: self.signatures,
        }
    }

    /// Sends the login; the holders the HSM logged in.
    pub fn submit(self, link: &mut (impl Link + ?Sized)) -> Result<Vec<HolderName>, CeremonyError> {
        match link.admin(self.finish())? {
            AdminResponse::LoggedIn { holders, .. } => Ok(holders),
            _ => Err(LinkError::Unexpected.into()),
        }
    }
}

/// The card's info with the holder the set registered (the name the HSM will log).
fn registered_name(
    registered: &CardDescription,
    info: &crate::card::CardInfo,
) -> crate::card::CardInfo {
    crate::card::CardInfo {
        holder: Some(registered.holder.as_str().to_owned()),
        ..info.clone()
    }
}
