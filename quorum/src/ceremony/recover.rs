//! The recovery of the quorum backup key: m shares of the active set, each checked as it
//! arrives, combined.

use super::active_set::{ActiveSet, Collector};
use super::{CeremonyError, Link, Progress};
use crate::card::VerifiedCard;
use crate::secret::QuorumBackupKey;

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
