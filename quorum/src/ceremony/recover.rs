//! The recovery of the quorum backup key: m shares of the active set, each checked as it
//! arrives, combined ([`Recovery`]); or, for one backup without its HSM (a migration onto
//! another HSM), shares of the set that made it, checked together against the key the backup
//! names ([`BackupRecovery`]).

use hsm_link::domain::PartitionId;

use super::active_set::{ActiveSet, Collector, opened, share_object};
use super::{CardRef, CeremonyError, Link, Progress};
use crate::card::{ShareEntry, VerifiedCard};
use crate::secret::{self, QuorumBackupKey, Share};

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

/// A recovery for one backup, without asking any HSM: the migration and exit path, where the
/// HSM that made the backup may be gone. The backup names its partition and the SHA-256 of
/// the quorum backup public key its data key is wrapped to; that is all this needs.
///
/// Each card's share is found on the card by opening its envelopes sealed for that partition
/// (the set number from the card's share object, the index from the envelope that opens); all
/// cards must be of one set. No commitments are at hand to check a share alone, so after each
/// card the shares so far are combined and the key derived from them is compared with the
/// backup's: equal once m good cards of the set that made the backup are in, never before
/// (fewer shares, or shares of another set, give another key). Shares, the secret and the
/// derived key live in zeroizing memory; what is not the result is wiped before `present`
/// returns, and the shares once the key is found.
pub struct BackupRecovery {
    partition: PartitionId,
    quorum_key_id: [u8; 32],
    set_number: Option<u32>,
    shares: Vec<Share>,
    presented: Vec<CardRef>,
    signing_keys: Vec<[u8; 32]>,
    key: Option<QuorumBackupKey>,
}

impl BackupRecovery {
    /// A recovery for a backup of `partition` whose data key is wrapped to the quorum backup
    /// key with this SHA-256 (`usb_backup::Header::quorum_backup_key_id`).
    pub fn new(partition: PartitionId, quorum_key_id: [u8; 32]) -> BackupRecovery {
        BackupRecovery {
            partition,
            quorum_key_id,
            set_number: None,
            // Never grown: a reallocation would leave a copy of the shares unwiped.
            shares: Vec::with_capacity(secret::MAX_CARDS),
            presented: Vec::new(),
            signing_keys: Vec::new(),
            key: None,
        }
    }

    /// Reads `card`'s share of the backup's partition; true once the shares presented recover
    /// the backup's quorum key (a card presented after that is not read).
    pub fn present<C: VerifiedCard + ?Sized>(
        &mut self,
        card: &mut C,
    ) -> Result<bool, CeremonyError> {
        let info = card.info();
        let name = CardRef::of(&info);
        if self.key.is_some() {
            return Ok(true);
        }
        if self.signing_keys.contains(&info.signing_public) {
            return Err(CeremonyError::SameCardTwice { card: name });
        }
        let object = share_object(card)?;
        // The newest set first: during a re-share a card holds the old set's envelope too.
        let mut entries: Vec<&ShareEntry> = object.entries().iter().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.set_number));
        let mut found = None;
        for entry in entries {
            if self.set_number.is_some_and(|n| n != entry.set_number) {
                continue;
            }
            if let Some(share) = opened(card, &info, &self.partition, entry)? {
                found = Some((entry.set_number, share));
                break;
            }
        }
        let Some((set_number, share)) = found else {
            // A share of this partition in another set than the first card's names both sets.
            if let Some(expected) = self.set_number
                && let Some(other) = object.entries().iter().find(|e| e.set_number != expected)
                && opened(card, &info, &self.partition, other)?.is_some()
            {
                return Err(CeremonyError::OtherSet {
                    card: name,
                    found: other.set_number,
                    expected,
                });
            }
            return Err(CeremonyError::NoShareForBackup {
                card: name,
                partition: self.partition.as_str().to_owned(),
            });
        };
        if self.shares.len() == self.shares.capacity() {
            return Err(CeremonyError::BackupNotRecovered {
                cards: self.presented.len(),
            });
        }
        self.shares.push(share);
        self.set_number = Some(set_number);
        self.presented.push(name);
        self.signing_keys.push(info.signing_public);
        let secret = secret::interpolate(&self.shares)?;
        let (key, public) = QuorumBackupKey::derive(&secret);
        if public.fingerprint() == self.quorum_key_id {
            self.key = Some(key);
            self.shares.clear();
        }
        Ok(self.key.is_some())
    }

    /// Cards presented so far.
    pub fn cards(&self) -> usize {
        self.presented.len()
    }

    /// The set the cards presented are of, once one was.
    pub fn set_number(&self) -> Option<u32> {
        self.set_number
    }

    /// The quorum backup key, if the cards presented recovered it; otherwise
    /// [`CeremonyError::BackupNotRecovered`] (too few cards, or cards of another set).
    pub fn finish(self) -> Result<QuorumBackupKey, CeremonyError> {
        let cards = self.presented.len();
        self.key.ok_or(CeremonyError::BackupNotRecovered { cards })
    }
}

impl std::fmt::Debug for BackupRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupRecovery")
            .field("partition", &self.partition)
            .field("set_number", &self.set_number)
            .field("cards", &self.presented.len())
            .field("recovered", &self.key.is_some())
            .finish_non_exhaustive()
    }
}
