//! What every ceremony that registers a new card set shares: the cards joining it with their
//! proofs of possession ([`Members`]), the shares of a new PSO set waiting for their cards
//! ([`NewSet`]), and the set once registered ([`Registered`]). The flows themselves live in
//! their own files: `enrol.rs`, `auditors.rs`, `reshare.rs`, `revoke.rs`.
//!
//! A card's share object holds up to two envelopes, one per card set (see
//! [`crate::card::ShareObject`]). Writing a new set's share to a card that is also in the active
//! set keeps the active set's envelope beside the new one, so a ceremony aborted before the
//! registration leaves the active set whole: every card of it still opens its share. Once the
//! HSM registered the new set, [`Registered::drop_old_share`] removes the old envelope from each
//! card in both sets, and [`ReshareWipe::wipe`](super::ReshareWipe::wipe) empties the old cards
//! that left.

use hsm_link::domain::CeremonyId;
use hsm_link::domain::{CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName};
use hsm_link::message::{
    AdminRequest, AdminResponse, CardSignature, RecoveryPublic, enrolment_message,
};

use super::active_set::read_checked;
use super::{CardRef, CeremonyError, Link, LinkError, Progress, Session};
use crate::card::VerifiedCard;
use crate::envelope::ShareContext;
use crate::secret::{
    self, Commitments, QuorumBackupKey, QuorumBackupPublicKey, RecoverySecret, Share,
};

/// Refuses a quorum size outside 1 ≤ m ≤ n ≤ 16 before anything is opened or written.
pub(super) fn check_size(threshold: u8, n: u8) -> Result<(), CeremonyError> {
    let (m, n) = (usize::from(threshold), usize::from(n));
    if m == 0 || m > n || n > secret::MAX_CARDS {
        return Err(crate::error::QuorumError::QuorumSize {
            m,
            n,
            max: secret::MAX_CARDS,
        }
        .into());
    }
    Ok(())
}

/// The cards joining a new set in a ceremony, each with its proof of possession: the card's
/// signature over [`enrolment_message`] for this session, this ceremony and this set, which the
/// HSM checks before it registers the set.
pub(super) struct Members {
    session: Session,
    pub(super) ceremony: CeremonyId,
    kind: CardSetKind,
    pub(super) set_number: u32,
    pub(super) threshold: u8,
    n: usize,
    cards: Vec<CardDescription>,
    proofs: Vec<CardSignature>,
}

impl Members {
    pub(super) fn new(
        session: Session,
        ceremony: CeremonyId,
        kind: CardSetKind,
        set_number: u32,
        threshold: u8,
        n: u8,
    ) -> Members {
        Members {
            session,
            ceremony,
            kind,
            set_number,
            threshold,
            n: usize::from(n),
            cards: Vec::new(),
            proofs: Vec::new(),
        }
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            have: self.cards.len(),
            need: self.n,
        }
    }

    /// The registered description of the next card: refuses a soft card when the HSM said it
    /// accepts none (before any share is written), a card already in the set (named as it
    /// joined), a card with the serial of one already in it (both named), a card without
    /// a holder name, and a card beyond n.
    pub(super) fn describe<C: VerifiedCard + ?Sized>(
        &self,
        card: &C,
    ) -> Result<CardDescription, CeremonyError> {
        let info = card.info();
        if info.soft && !self.session.soft_cards_allowed {
            return Err(CeremonyError::SoftCardRefusedByHsm {
                card: CardRef::of(&info),
            });
        }
        if let Some(joined) = self
            .cards
            .iter()
            .find(|c| c.signing_key == info.signing_public)
        {
            return Err(CeremonyError::SameCardTwice {
                card: CardRef::of_description(joined),
            });
        }
        if let Some(joined) = self.cards.iter().find(|c| c.serial.as_str() == info.serial) {
            // Another card (its own key) with a serial already taken: name both.
            return Err(CeremonyError::TwinSerial {
                card: CardRef::of(&info),
                other: CardRef::of_description(joined),
            });
        }
        if self.progress().complete() {
            return Err(self.complete(&info));
        }
        let Some(holder) = info.holder.clone() else {
            return Err(CeremonyError::NoHolder {
                card: CardRef::of(&info),
            });
        };
        Ok(CardDescription {
            holder: HolderName::new(holder)?,
            serial: CardSerial::new(info.serial.clone())?,
            signing_key: info.signing_public,
            soft_card: info.soft,
        })
    }

    /// Has `card` sign its proof of possession for `description`.
    pub(super) fn prove<C: VerifiedCard + ?Sized>(
        &self,
        card: &mut C,
        description: &CardDescription,
    ) -> Result<CardSignature, CeremonyError> {
        let message = enrolment_message(
            &self.session.binding,
            &self.ceremony,
            &self.session.partition,
            self.kind,
            self.set_number,
            description,
        );
        let signature = card.sign(&message).map_err(|source| CeremonyError::Proof {
            card: CardRef::of_description(description),
            source,
        })?;
        Ok(CardSignature {
            signing_key: description.signing_key,
            signature,
        })
    }

    /// The refusal of `card` once every card has joined.
    pub(super) fn complete(&self, card: &crate::card::CardInfo) -> CeremonyError {
        CeremonyError::SetComplete {
            card: CardRef::of(card),
            n: self.n,
        }
    }

    pub(super) fn push(&mut self, description: CardDescription, proof: CardSignature) -> Progress {
        self.cards.push(description);
        self.proofs.push(proof);
        self.progress()
    }

    /// The registration request, once every card has joined.
    pub(super) fn request(
        &self,
        recovery: Option<RecoveryPublic>,
        replaces_revoked: Option<CardSerial>,
        old_shares_left: Vec<CardSerial>,
    ) -> Result<AdminRequest, CeremonyError> {
        let progress = self.progress();
        if !progress.complete() {
            return Err(CeremonyError::NotEnoughCards {
                have: progress.have,
                need: progress.need,
            });
        }
        Ok(AdminRequest::RegisterCardSetInCeremony {
            ceremony: self.ceremony,
            set: Box::new(CardSetDescription {
                kind: self.kind,
                set_number: self.set_number,
                threshold: self.threshold,
                cards: self.cards.clone(),
            }),
            recovery: recovery.map(Box::new),
            replaces_revoked,
            old_shares_left,
            // Only a set with shares leaves any: NewSet::request names them.
            leftover_shares: Vec::new(),
            proofs: self.proofs.clone(),
        })
    }

    /// Sends `request` (from [`Members::request`]); the registered cards.
    pub(super) fn register(
        self,
        link: &mut (impl Link + ?Sized),
        request: AdminRequest,
    ) -> Result<Vec<CardDescription>, CeremonyError> {
        match link.admin(request)? {
            AdminResponse::Done => Ok(self.cards),
            _ => Err(LinkError::Unexpected.into()),
        }
    }
}

/// The shares of a new PSO set, waiting for their cards. The secret itself is not kept: each
/// share is zeroized when its card has it (or when this is dropped).
pub(super) struct NewSet {
    members: Members,
    /// The shares not yet given out, the next one last (share i + 1 goes to the card at
    /// position i).
    waiting: Vec<Share>,
    /// Cards that failed after their share was written and could not have it removed (pulled
    /// from the reader): they may hold an envelope of this set without being in it.
    leftovers: Vec<CardDescription>,
    commitments: Commitments,
    backup_public: QuorumBackupPublicKey,
}

impl NewSet {
    /// Splits `secret` m-of-n for set `set_number`, whose cards join in ceremony `ceremony`.
    pub(super) fn split(
        secret: &RecoverySecret,
        session: Session,
        ceremony: CeremonyId,
        set_number: u32,
        threshold: u8,
        n: u8,
    ) -> Result<NewSet, CeremonyError> {
        let (shares, commitments) = secret::split(secret, usize::from(threshold), usize::from(n))?;
        let (_, backup_public) = QuorumBackupKey::derive(secret);
        Ok(NewSet {
            members: Members::new(
                session,
                ceremony,
                CardSetKind::Pso,
                set_number,
                threshold,
                n,
            ),
            waiting: shares.into_iter().rev().collect(),
            leftovers: Vec::new(),
            commitments,
            backup_public,
        })
    }

    pub(super) fn progress(&self) -> Progress {
        self.members.progress()
    }

    pub(super) fn cards(&self) -> &[CardDescription] {
        &self.members.cards
    }

    pub(super) fn backup_public(&self) -> &QuorumBackupPublicKey {
        &self.backup_public
    }

    /// Has `card` sign its proof of possession, then seals the next share to it, stores it,
    /// reads it back through the card and checks it against the commitments. The proof comes
    /// first, so that a card that cannot sign never receives a share. On any later failure the
    /// new envelope is removed from the card again and the share stays for the next card; a
    /// card that cannot have it removed (pulled from its reader) is kept in
    /// [`NewSet::leftovers`] until it is wiped or joins after all, and is named in the result.
    pub(super) fn add<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let description = self.members.describe(card)?;
        let proof = self.members.prove(card, &description)?;
        // `describe` refused a card beyond n, so a share is waiting.
        let Some(share) = self.waiting.pop() else {
            return Err(self.members.complete(&card.info()));
        };
        let ctx = ShareContext {
            partition: self.members.session.partition.clone(),
            set_number: self.members.set_number,
            share_index: share.index(),
            card_serial: description.serial.to_string(),
        };
        let stored = card
            .store_share(&ctx, &share)
            .map_err(|source| CeremonyError::BadShare {
                card: CardRef::of_description(&description),
                source,
            })
            .and_then(|()| read_checked(card, &ctx, &self.commitments));
        self.forget_leftover(&description);
        match stored {
            // Its envelope of this set, if it had a leftover one, is replaced by this one.
            Ok(_back) => Ok(self.members.push(description, proof)),
            Err(e) => {
                // The error to report is the card's first failure; one that also keeps its
                // envelope is remembered, to be wiped.
                if card.remove_share(ctx.set_number).is_err() {
                    self.leftovers.push(description);
                }
                self.waiting.push(share);
                Err(e)
            }
        }
    }

    fn forget_leftover(&mut self, card: &CardDescription) {
        self.leftovers.retain(|c| c.signing_key != card.signing_key);
    }

    /// Cards that may hold an envelope of this set without being in it: each failed after its
    /// share was written, and the envelope could not be removed.
    pub(super) fn leftovers(&self) -> Vec<CardRef> {
        self.leftovers.iter().map(CardRef::of_description).collect()
    }

    /// Removes this set's envelope from a card of [`NewSet::leftovers`] (inserted again);
    /// how many such cards are left. Any other card is refused and named.
    pub(super) fn wipe_leftover<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<usize, CeremonyError> {
        let info = card.info();
        let Some(position) = self
            .leftovers
            .iter()
            .position(|c| c.signing_key == info.signing_public)
        else {
            return Err(CeremonyError::NotInSet {
                card: CardRef::of(&info),
            });
        };
        card.remove_share(self.members.set_number)
            .map_err(|source| CeremonyError::BadShare {
                card: CardRef::of_description(&self.leftovers[position]),
                source,
            })?;
        self.leftovers.remove(position);
        Ok(self.leftovers.len())
    }

    /// The registration request, once every card has its share.
    pub(super) fn request(
        &self,
        ceremony: CeremonyId,
        replaces_revoked: Option<CardSerial>,
        old_shares_left: Vec<CardSerial>,
    ) -> Result<AdminRequest, CeremonyError> {
        let recovery = RecoveryPublic {
            backup_public_key: self.backup_public.as_bytes().to_vec(),
            commitments: self.commitments.to_bytes(),
        };
        let mut request =
            self.members
                .request(Some(recovery), replaces_revoked, old_shares_left)?;
        if let AdminRequest::RegisterCardSetInCeremony {
            ceremony: id,
            leftover_shares,
            ..
        } = &mut request
        {
            *id = ceremony;
            // The log names the cards that hold a share of the set without being in it.
            *leftover_shares = self.leftovers.iter().map(|c| c.serial.clone()).collect();
        }
        Ok(request)
    }

    /// Registers the set; what was registered.
    pub(super) fn register(
        self,
        link: &mut (impl Link + ?Sized),
        replaces_revoked: Option<CardSerial>,
        old_shares_left: Vec<CardSerial>,
    ) -> Result<Registered, CeremonyError> {
        let request = self.request(self.members.ceremony, replaces_revoked, old_shares_left)?;
        let (ceremony, set_number, threshold) = (
            self.members.ceremony,
            self.members.set_number,
            self.members.threshold,
        );
        let leftover_shares = self.leftovers();
        Ok(Registered {
            ceremony,
            set_number,
            threshold,
            cards: self.members.register(link, request)?,
            backup_public: self.backup_public,
            leftover_shares,
        })
    }
}

/// A set the HSM registered.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The ceremony that registered it.
    pub ceremony: CeremonyId,
    /// The set's number.
    pub set_number: u32,
    /// m.
    pub threshold: u8,
    /// The cards, in share order.
    pub cards: Vec<CardDescription>,
    /// The quorum backup public key registered with it.
    pub backup_public: QuorumBackupPublicKey,
    /// Cards that are not in the set but may hold an envelope of it (a share of its secret):
    /// each was pulled after its share was written, before the envelope could be removed. The
    /// HSM logged them with the registration (`leftover-shares`).
    /// Wipe each: [`ActiveSet::wipe_leftovers`](super::ActiveSet::wipe_leftovers) (a drill
    /// offers it, [`Drill::wipe_leftovers`](super::Drill::wipe_leftovers)).
    pub leftover_shares: Vec<CardRef>,
}

impl Registered {
    /// The final step for a card of this set that was also in the old one (a re-share or a
    /// revocation): removes the old set's envelope from its share object and keeps this set's.
    /// Until the HSM registered this set the card kept both, so that an aborted ceremony left
    /// the old set whole. Whether an old envelope was removed. A card that is not in this set is
    /// refused and named; for an old card that is not in it, use
    /// [`ReshareWipe::wipe`](super::ReshareWipe::wipe).
    pub fn drop_old_share<C: VerifiedCard + ?Sized>(
        &self,
        card: &mut C,
    ) -> Result<bool, CeremonyError> {
        let info = card.info();
        if !self
            .cards
            .iter()
            .any(|c| c.signing_key == info.signing_public)
        {
            return Err(CeremonyError::NotInSet {
                card: CardRef::of(&info),
            });
        }
        card.retain_share(self.set_number)
            .map_err(|source| CeremonyError::BadShare {
                card: CardRef::of(&info),
                source,
            })
    }
}
