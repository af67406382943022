//! Writing a new PSO set: enrolment (a fresh secret), and the part of re-share and revocation
//! that seals the new shares to the new cards and registers the set.
//!
//! A card's share object holds up to two envelopes, one per card set (see
//! [`crate::card::ShareObject`]). Writing a new set's share to a card that is also in the active
//! set keeps the active set's envelope beside the new one, so a ceremony aborted before the
//! registration leaves the active set whole: every card of it still opens its share. Once the
//! HSM registered the new set, [`Registered::drop_old_share`] removes the old envelope from each
//! card in both sets, and [`ReshareWipe::wipe`](super::ReshareWipe::wipe) empties the old cards
//! that left.

use hsm_link::domain::{CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName};
use hsm_link::message::{
    AdminRequest, AdminResponse, CardSignature, CeremonyKind, RecoveryPublic, enrolment_message,
};

use super::{
    ActiveSet, CardRef, CeremonyError, Link, LinkError, Progress, Session, begin, read_checked,
};
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
    ceremony: [u8; 16],
    kind: CardSetKind,
    set_number: u32,
    threshold: u8,
    n: usize,
    cards: Vec<CardDescription>,
    proofs: Vec<CardSignature>,
}

impl Members {
    pub(super) fn new(
        session: Session,
        ceremony: [u8; 16],
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

    /// The registered description of the next card: refuses a card already in the set, a
    /// card without a holder name, and a card beyond n.
    fn describe<C: VerifiedCard + ?Sized>(
        &self,
        card: &C,
    ) -> Result<CardDescription, CeremonyError> {
        let info = card.info();
        if self
            .cards
            .iter()
            .any(|c| c.signing_key == info.signing_public || c.serial.as_str() == info.serial)
        {
            return Err(CeremonyError::SameCardTwice {
                card: CardRef::of(&info),
            });
        }
        if self.progress().complete() {
            return Err(CeremonyError::Step("every card of the new set is enrolled"));
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
    fn prove<C: VerifiedCard + ?Sized>(
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

    fn push(&mut self, description: CardDescription, proof: CardSignature) -> Progress {
        self.cards.push(description);
        self.proofs.push(proof);
        self.progress()
    }

    /// The registration request, once every card has joined.
    fn request(
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
            proofs: self.proofs.clone(),
        })
    }

    /// Sends `request` (from [`Members::request`]); the registered cards.
    fn register(
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
    shares: Vec<Option<Share>>,
    commitments: Commitments,
    backup_public: QuorumBackupPublicKey,
}

impl NewSet {
    /// Splits `secret` m-of-n for set `set_number`, whose cards join in ceremony `ceremony`.
    pub(super) fn split(
        secret: &RecoverySecret,
        session: Session,
        ceremony: [u8; 16],
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
            shares: shares.into_iter().map(Some).collect(),
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
    /// new envelope is removed from the card again (as far as the card allows) and the share
    /// stays for the next card.
    pub(super) fn add<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let description = self.members.describe(card)?;
        let proof = self.members.prove(card, &description)?;
        let position = self.members.cards.len();
        let share = self
            .shares
            .get_mut(position)
            .and_then(Option::take)
            .ok_or(CeremonyError::Step("the share was already given out"))?;
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
        match stored {
            Ok(_back) => Ok(self.members.push(description, proof)),
            Err(e) => {
                // Best effort: the card failed already, and the error to report is that one.
                let _ = card.remove_share(ctx.set_number);
                self.shares[position] = Some(share);
                Err(e)
            }
        }
    }

    /// The registration request, once every card has its share.
    pub(super) fn request(
        &self,
        ceremony: [u8; 16],
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
        if let AdminRequest::RegisterCardSetInCeremony { ceremony: id, .. } = &mut request {
            *id = ceremony;
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
        Ok(Registered {
            ceremony,
            set_number,
            threshold,
            cards: self.members.register(link, request)?,
            backup_public: self.backup_public,
        })
    }
}

/// A set the HSM registered.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The ceremony that registered it.
    pub ceremony: [u8; 16],
    /// The set's number.
    pub set_number: u32,
    /// m.
    pub threshold: u8,
    /// The cards, in share order.
    pub cards: Vec<CardDescription>,
    /// The quorum backup public key registered with it.
    pub backup_public: QuorumBackupPublicKey,
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

/// Enrolling a PSO set: a fresh recovery secret split m-of-n, a share sealed to each of the n
/// cards, every card's share read back and checked, then the registration.
///
/// The secret exists only inside [`Enrolment::begin`]: it is split, the backup key pair is
/// derived, and it is zeroized before `begin` returns. Each share is zeroized once its card holds
/// it; dropping the enrolment at any step zeroizes the rest and registers nothing.
pub struct Enrolment {
    id: [u8; 16],
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
        let id = begin(link, CeremonyKind::Enrol)?;
        let set_number = ActiveSet::fetch(link)?.map_or(1, |s| s.set_number + 1);
        let secret = RecoverySecret::generate()?;
        let new = NewSet::split(&secret, Session::of(link), id, set_number, threshold, n)?;
        drop(secret);
        Ok(Enrolment { id, new })
    }

    /// The ceremony's id (show it: the HSM logs it).
    pub fn id(&self) -> [u8; 16] {
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

    /// Registers the set, once every card's share is read back and checked.
    pub fn finish(self, link: &mut (impl Link + ?Sized)) -> Result<Registered, CeremonyError> {
        self.new.register(link, None, Vec::new())
    }

    /// The registration request, with another ceremony id (for tests of the HSM's refusal).
    #[doc(hidden)]
    pub fn request_with_id(&self, ceremony: [u8; 16]) -> Result<AdminRequest, CeremonyError> {
        self.new.request(ceremony, None, Vec::new())
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("id", &super::ceremony_id_text(&self.id))
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

/// Revoking a card: a fresh recovery secret and quorum backup key for a new set without it
/// (set number + 1). The caller is logged in as PSO (m cards of the active set).
///
/// Once registered, the revoked card's signing key is no longer in the active set: the HSM
/// refuses its login signatures at once.
pub struct Revocation {
    id: [u8; 16],
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
        let id = begin(link, CeremonyKind::Revoke)?;
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
        let new = NewSet::split(
            &secret,
            Session::of(link),
            id,
            current.set_number + 1,
            threshold,
            n,
        )?;
        drop(secret);
        Ok(Revocation {
            id,
            current,
            revoked,
            new,
        })
    }

    /// The ceremony's id.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// Cards of the new set enrolled, of n'.
    pub fn progress(&self) -> Progress {
        self.new.progress()
    }

    /// Seals the next new share to `card`; the revoked card is refused and named.
    pub fn add_card<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<Progress, CeremonyError> {
        let info = card.info();
        if info.signing_public == self.revoked.signing_key
            || info.serial == self.revoked.serial.as_str()
        {
            return Err(CeremonyError::RevokedCard {
                card: CardRef::of_description(&self.revoked),
            });
        }
        self.new.add(card)
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
            .field("id", &super::ceremony_id_text(&self.id))
            .field("revoked", &self.revoked.serial)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

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
    pub ceremony: [u8; 16],
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
        let id = begin(link, CeremonyKind::EnrolAuditors)?;
        let set_number = match link.admin(AdminRequest::GetCardSets)? {
            AdminResponse::CardSets { auditor, .. } => auditor.map_or(1, |s| s.set_number + 1),
            _ => return Err(LinkError::Unexpected.into()),
        };
        Ok(AuditorEnrolment {
            members: Members::new(
                Session::of(link),
                id,
                CardSetKind::Auditor,
                set_number,
                threshold,
                n,
            ),
        })
    }

    /// The ceremony's id (show it: the HSM logs it).
    pub fn id(&self) -> [u8; 16] {
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
            .field("id", &super::ceremony_id_text(&self.members.ceremony))
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
