//! The active PSO set as the HSM describes it, and its shares collected from the cards: what
//! the drill, the recovery and the re-share read.

use hsm_link::domain::{CardDescription, PartitionId};
use hsm_link::message::{AdminError, AdminRequest, AdminResponse, LoginRefusal};

use super::{CardRef, CeremonyError, Link, LinkError, Progress};
use crate::card::{CardInfo, SET_NUMBER_NOT_RECORDED, ShareEntry, ShareObject, VerifiedCard};
use crate::envelope::{EnvelopeHeader, ShareContext, open_share};
use crate::error::QuorumError;
use crate::secret::{
    self, Commitments, QuorumBackupKey, QuorumBackupPublicKey, RecoverySecret, Share,
};

/// The active PSO set as the HSM describes it ([`AdminRequest::GetRecoveryPublic`]): the card
/// at position i holds share i + 1.
#[derive(Clone, Debug)]
pub struct ActiveSet {
    /// The set's number.
    pub set_number: u32,
    /// m.
    pub threshold: u8,
    /// The cards, in share order.
    pub cards: Vec<CardDescription>,
    /// The Feldman commitments.
    pub commitments: Commitments,
    /// The quorum backup public key.
    pub backup_public: QuorumBackupPublicKey,
}

impl ActiveSet {
    /// Asks the HSM; `None` if the partition has no PSO set yet.
    pub fn fetch(link: &mut (impl Link + ?Sized)) -> Result<Option<ActiveSet>, CeremonyError> {
        match link.admin(AdminRequest::GetRecoveryPublic) {
            Ok(AdminResponse::RecoveryPublic {
                set_number,
                threshold,
                cards,
                recovery,
            }) => {
                let commitments = Commitments::from_bytes(&recovery.commitments)?;
                if commitments.threshold() != usize::from(threshold) {
                    return Err(QuorumError::ThresholdMismatch {
                        given: usize::from(threshold),
                        stored: commitments.threshold(),
                    }
                    .into());
                }
                let backup_public = QuorumBackupPublicKey::from_bytes(&recovery.backup_public_key)?;
                Ok(Some(ActiveSet {
                    set_number,
                    threshold,
                    cards,
                    commitments,
                    backup_public,
                }))
            }
            Ok(_) => Err(LinkError::Unexpected.into()),
            Err(e) if e.admin_error() == Some(&AdminError::Login(LoginRefusal::NoCardSet)) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The share a card holds in this set (1 to n), if the card is in it, by its signing key:
    /// for card management's "which set is this card in" and before a drill.
    pub fn share_index_of(&self, info: &CardInfo) -> Option<u8> {
        // Sets hold at most MAX_CARDS_PER_SET (16) cards.
        self.position_of(info).map(|p| (p + 1) as u8)
    }

    /// The position of a card in the set (by its signing key).
    pub(super) fn position_of(&self, info: &CardInfo) -> Option<usize> {
        self.cards
            .iter()
            .position(|c| c.signing_key == info.signing_public)
    }

    /// The share context of the card at `position`.
    pub(super) fn context(&self, partition: &PartitionId, position: usize) -> ShareContext {
        ShareContext {
            partition: partition.clone(),
            set_number: self.set_number,
            // Positions are below MAX_CARDS_PER_SET (16).
            share_index: (position + 1) as u8,
            card_serial: self.cards[position].serial.to_string(),
        }
    }
}

impl ActiveSet {
    /// The set numbers of the envelopes on `card`, sealed for `partition`, that this set does
    /// not account for: every such envelope on a card that is not in the set, and on a card in
    /// it every such envelope but the set's own. Each is a share that no registered set counts
    /// on (an old set's not yet dropped, or one of a set never registered: a ceremony
    /// abandoned, or a card pulled after its share was written, before the envelope could be
    /// removed): wipe it with [`ActiveSet::wipe_leftovers`].
    ///
    /// Whether an envelope was sealed for `partition` is found by opening it (one ECDH on the
    /// card per envelope, the share zeroized at once): a card may carry another partition's
    /// share, which is not this partition's to wipe. One of this set's number counts only if
    /// its share is one of this set's secret (checked against the commitments); one of another
    /// set's number is judged by the partition alone (the HSM keeps no other set's
    /// commitments). An envelope whose set was not recorded (written by an earlier build) is
    /// not judged, except as a member's own.
    pub fn leftover_envelopes<C: VerifiedCard + ?Sized>(
        &self,
        partition: &PartitionId,
        card: &mut C,
    ) -> Result<Vec<u32>, CeremonyError> {
        let object = share_object(card)?;
        self.leftovers_in(partition, card, &object)
    }

    /// Removes the envelopes [`ActiveSet::leftover_envelopes`] finds from `card`, keeping a
    /// member's own share and any other partition's; the set numbers removed (none: the card
    /// is left untouched).
    pub fn wipe_leftovers<C: VerifiedCard + ?Sized>(
        &self,
        partition: &PartitionId,
        card: &mut C,
    ) -> Result<Vec<u32>, CeremonyError> {
        let mut object = share_object(card)?;
        let sets = self.leftovers_in(partition, card, &object)?;
        if sets.is_empty() {
            return Ok(sets);
        }
        for set in &sets {
            object.remove(*set);
        }
        card.write_share_object(&object.encode()?)
            .map_err(|source| CeremonyError::Wipe {
                card: CardRef::of(&card.info()),
                source,
            })?;
        Ok(sets)
    }

    fn leftovers_in<C: VerifiedCard + ?Sized>(
        &self,
        partition: &PartitionId,
        card: &mut C,
        object: &ShareObject,
    ) -> Result<Vec<u32>, CeremonyError> {
        let info = card.info();
        let member = self.position_of(&info).is_some();
        let entries = object.entries();
        let own_recorded = entries.iter().any(|e| e.set_number == self.set_number);
        // A member's envelope from a build that did not record its set counts as its own.
        let own = |set: u32| {
            member && (set == self.set_number || (!own_recorded && set == SET_NUMBER_NOT_RECORDED))
        };
        let mut sets = Vec::new();
        for entry in entries {
            let set = entry.set_number;
            if own(set) || set == SET_NUMBER_NOT_RECORDED {
                continue;
            }
            let Some(share) = opened(card, &info, partition, entry)? else {
                continue;
            };
            // Of this set's number, it must be a share of this set's secret: a card of another
            // HSM's partition of the same name is not this partition's to wipe.
            if set != self.set_number || secret::verify_share(&self.commitments, &share).is_ok() {
                sets.push(set);
            }
        }
        Ok(sets)
    }
}

/// The share in `entry` if it opens on `card` as an envelope of `partition` (of its set, with
/// any index): one ECDH on the card; the caller drops the share (zeroized) at once. A
/// malformed envelope holds no share.
pub(super) fn opened<C: VerifiedCard + ?Sized>(
    card: &mut C,
    info: &CardInfo,
    partition: &PartitionId,
    entry: &ShareEntry,
) -> Result<Option<Share>, CeremonyError> {
    let Ok(header) = EnvelopeHeader::parse(&entry.envelope) else {
        return Ok(None);
    };
    let shared =
        card.decipher(header.ephemeral_public())
            .map_err(|source| CeremonyError::BadShare {
                card: CardRef::of(info),
                source: source.into(),
            })?;
    // Indices are 1 to MAX_CARDS (16).
    Ok((1..=secret::MAX_CARDS as u8).find_map(|share_index| {
        let ctx = ShareContext {
            partition: partition.clone(),
            set_number: entry.set_number,
            share_index,
            card_serial: info.serial.clone(),
        };
        let ecdh = |_: &[u8; 32]| Ok::<_, QuorumError>(shared.clone());
        open_share(&header, &info.decryption_public, ecdh, &ctx).ok()
    }))
}

/// The card's share object, parsed (empty when it has none); a failure names the card.
pub(super) fn share_object<C: VerifiedCard + ?Sized>(
    card: &mut C,
) -> Result<ShareObject, CeremonyError> {
    let name = CardRef::of(&card.info());
    let bad = |source: QuorumError| CeremonyError::BadShare {
        card: name.clone(),
        source,
    };
    let bytes = card
        .read_share_object()
        .map_err(|e| bad(e.into()))?
        .unwrap_or_default();
    ShareObject::parse(&bytes).map_err(bad)
}

/// Reads a card's share under `ctx` and checks it against `commitments` and the expected
/// index; any failure names the card.
pub(super) fn read_checked<C: VerifiedCard + ?Sized>(
    card: &mut C,
    ctx: &ShareContext,
    commitments: &Commitments,
) -> Result<crate::secret::Share, CeremonyError> {
    let name = CardRef::of(&card.info());
    let bad = |source| CeremonyError::BadShare {
        card: name.clone(),
        source,
    };
    let share = card.read_share(ctx).map_err(bad)?;
    if share.index() != ctx.share_index {
        return Err(bad(QuorumError::ShareMismatch {
            index: share.index(),
        }));
    }
    crate::secret::verify_share(commitments, &share).map_err(bad)?;
    Ok(share)
}

/// Shares of the active set, each checked against the commitments as it arrives.
pub(super) struct Collector {
    partition: PartitionId,
    pub(super) set: ActiveSet,
    shares: Vec<Share>,
    pub(super) present: Vec<usize>,
}

impl Collector {
    pub(super) fn new(partition: &PartitionId, set: ActiveSet) -> Collector {
        Collector {
            partition: partition.clone(),
            set,
            shares: Vec::new(),
            present: Vec::new(),
        }
    }

    pub(super) fn progress(&self) -> Progress {
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

    pub(super) fn present<C: VerifiedCard + ?Sized>(
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
    pub(super) fn combine(&self) -> Result<RecoverySecret, CeremonyError> {
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
