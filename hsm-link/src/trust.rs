//! What the HSM side knows about partitions, pairing codes and pinned terminals.
//!
//! The server handshake asks a [`TrustStore`]; the partition service keeps one in its redb
//! store, and [`MemoryTrustStore`] serves tests and the embedded demo.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use audit_log::AuditKey;
use zeroize::Zeroizing;

use crate::domain::PartitionId;
use crate::keys::{Fingerprint, PublicKey};
use crate::limits::DEFAULT_MAX_PAIRING_FAILURES;
use crate::pairing::PairingCode;

/// The pairing state of a partition.
pub enum PairingOffer {
    /// A code is outstanding: its pre-shared key for this partition.
    Open(Zeroizing<[u8; 32]>),
    /// No code outstanding (never issued, spent, or burned).
    None,
}

/// Trust decisions of the HSM side. Implementations are shared between connections and do
/// their own locking; each method is atomic.
pub trait TrustStore: Send + Sync {
    /// Whether the partition exists.
    fn partition_exists(&self, partition: &PartitionId) -> bool;
    /// The pinned key of a terminal paired with `partition`, by its fingerprint.
    fn pinned_terminal(&self, partition: &PartitionId, terminal: &Fingerprint)
    -> Option<PublicKey>;
    /// The outstanding pairing code's key, if any.
    fn pairing_offer(&self, partition: &PartitionId) -> PairingOffer;
    /// A pairing attempt under the code whose key is `psk` failed; returns the attempts left
    /// (0: the code is now burned). A failure under a code that is no longer the outstanding
    /// one (reissued since the handshake began) is not counted against the new code: 0.
    fn pairing_failed(&self, partition: &PartitionId, psk: &[u8; 32]) -> u32;
    /// A pairing under the code whose key is `psk` succeeded: spend the code and pin
    /// `terminal`. Returns `false`, pinning nothing, if that code is no longer outstanding:
    /// spent or burned meanwhile (a concurrent attempt won), or superseded by a new code.
    fn pairing_succeeded(
        &self,
        partition: &PartitionId,
        psk: &[u8; 32],
        terminal: PublicKey,
    ) -> bool;
    /// The audit public key the partition's log checkpoints are signed with, sent to a
    /// terminal in its pairing confirmation. `None` (the default): this endpoint keeps no log.
    fn audit_key(&self, _partition: &PartitionId) -> Option<AuditKey> {
        None
    }
}

/// Whether `offered` is the outstanding code's key `current`, compared in constant time.
pub fn same_code(current: &[u8; 32], offered: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(current.ct_eq(offered))
}

#[derive(Default)]
struct PartitionTrust {
    code: Option<(Zeroizing<[u8; 32]>, u32)>,
    terminals: BTreeMap<Fingerprint, PublicKey>,
}

/// An in-memory trust store.
pub struct MemoryTrustStore {
    max_failures: u32,
    partitions: Mutex<BTreeMap<PartitionId, PartitionTrust>>,
    // Partitions whose code was burned by failures, for tests and diagnostics.
    burned: Mutex<BTreeSet<PartitionId>>,
    // The audit key sent with a pairing confirmation, when this store stands for an HSM that
    // keeps a log (the embedded demo, tests).
    audit_key: Mutex<Option<AuditKey>>,
}

impl Default for MemoryTrustStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAIRING_FAILURES)
    }
}

impl MemoryTrustStore {
    /// An empty store that burns a code after `max_failures` failed attempts.
    pub fn new(max_failures: u32) -> Self {
        MemoryTrustStore {
            max_failures: max_failures.max(1),
            partitions: Mutex::default(),
            burned: Mutex::default(),
            audit_key: Mutex::default(),
        }
    }

    /// Adds a partition (no code, no terminals).
    pub fn add_partition(&self, partition: PartitionId) {
        self.partitions
            .lock()
            .expect("trust store lock")
            .entry(partition)
            .or_default();
    }

    /// Issues a fresh one-time pairing code for `partition`, replacing any outstanding one.
    /// The code is returned once, to be shown once.
    pub fn issue_pairing_code(
        &self,
        partition: &PartitionId,
    ) -> Result<PairingCode, getrandom::Error> {
        let code = PairingCode::generate()?;
        let mut map = self.partitions.lock().expect("trust store lock");
        let entry = map.entry(partition.clone()).or_default();
        entry.code = Some((code.psk(partition), 0));
        self.burned
            .lock()
            .expect("trust store lock")
            .remove(partition);
        Ok(code)
    }

    /// Whether the partition's code was burned by failed attempts.
    pub fn code_burned(&self, partition: &PartitionId) -> bool {
        self.burned
            .lock()
            .expect("trust store lock")
            .contains(partition)
    }

    /// Sends `key` as the audit key in every pairing confirmation from now on.
    pub fn set_audit_key(&self, key: AuditKey) {
        *self.audit_key.lock().expect("trust store lock") = Some(key);
    }

    /// The terminals pinned for a partition.
    pub fn pinned_terminals(&self, partition: &PartitionId) -> Vec<PublicKey> {
        self.partitions
            .lock()
            .expect("trust store lock")
            .get(partition)
            .map(|p| p.terminals.values().copied().collect())
            .unwrap_or_default()
    }
}

impl TrustStore for MemoryTrustStore {
    fn partition_exists(&self, partition: &PartitionId) -> bool {
        self.partitions
            .lock()
            .expect("trust store lock")
            .contains_key(partition)
    }

    fn pinned_terminal(
        &self,
        partition: &PartitionId,
        terminal: &Fingerprint,
    ) -> Option<PublicKey> {
        self.partitions
            .lock()
            .expect("trust store lock")
            .get(partition)?
            .terminals
            .get(terminal)
            .copied()
    }

    fn pairing_offer(&self, partition: &PartitionId) -> PairingOffer {
        match self
            .partitions
            .lock()
            .expect("trust store lock")
            .get(partition)
        {
            Some(PartitionTrust {
                code: Some((psk, _)),
                ..
            }) => PairingOffer::Open(Zeroizing::new(**psk)),
            _ => PairingOffer::None,
        }
    }

    fn pairing_failed(&self, partition: &PartitionId, psk: &[u8; 32]) -> u32 {
        let mut map = self.partitions.lock().expect("trust store lock");
        let Some(entry) = map.get_mut(partition) else {
            return 0;
        };
        let Some((current, failures)) = entry.code.as_mut() else {
            return 0;
        };
        if !same_code(current, psk) {
            return 0;
        }
        *failures += 1;
        let left = self.max_failures.saturating_sub(*failures);
        if left == 0 {
            entry.code = None;
            self.burned
                .lock()
                .expect("trust store lock")
                .insert(partition.clone());
        }
        left
    }

    fn pairing_succeeded(
        &self,
        partition: &PartitionId,
        psk: &[u8; 32],
        terminal: PublicKey,
    ) -> bool {
        let mut map = self.partitions.lock().expect("trust store lock");
        let Some(entry) = map.get_mut(partition) else {
            return false;
        };
        match &entry.code {
            Some((current, _)) if same_code(current, psk) => entry.code = None,
            _ => return false,
        }
        entry.terminals.insert(terminal.fingerprint(), terminal);
        true
    }

    fn audit_key(&self, _partition: &PartitionId) -> Option<AuditKey> {
        *self.audit_key.lock().expect("trust store lock")
    }
}
