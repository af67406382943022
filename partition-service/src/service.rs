//! The HSM: its keys, its store, its partitions, and every operation on them. Each operation
//! that changes anything is one store transaction that also appends its log entry, so the log
//! and the state never disagree.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use audit_log::{
    Actor, AuditKey, Chain, CheckpointPolicy, EntryDraft, Hash, KnownOperation, Outcome, Role,
};
use hsm_link::domain::{
    CardDescription, CardSetKind, DomainError, PartitionConfig, PartitionId, PartitionUsage,
    ServiceTier,
};
use hsm_link::keys::{Fingerprint, PublicKey};
use hsm_link::message::AdminError;
use hsm_link::pairing::PairingCode;
use hsm_link::trust::{PairingOffer, TrustStore, same_code};
use zeroize::Zeroizing;

use crate::crypto::{self as sealed, CryptoError, HsmKeys};
use crate::model::{
    Credentials, LogFullPolicy, LogState, PairingRecord, PartitionRecord, SoRegistry, TerminalSeen,
    Throttle,
};
use crate::store::{Store, StoreError, WriteTxn};

mod check;
mod clock;
mod event;
mod terminals;

pub use check::{CheckError, PartitionCheck};
pub use clock::Clock;
pub(crate) use event::Event;
pub use event::genesis;
use terminals::*;

/// Log entries a new partition keeps before its full-log policy applies.
pub const DEFAULT_LOG_CAPACITY: u64 = 1_000_000;
/// Failed pairing attempts that burn a pairing code.
pub const PAIRING_FAILURES: u32 = hsm_link::limits::DEFAULT_MAX_PAIRING_FAILURES;
/// Longest partition name.
pub const MAX_PARTITION_NAME: usize = 64;

const PSK_AAD: &[u8] = b"tessera pairing psk v1";

/// A failure of the HSM service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cryptographic operation or key file failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Writing the log failed.
    #[error("writing the partition log failed: {0}")]
    Log(#[from] audit_log::LogError),
    /// No such partition.
    #[error("the HSM has no partition {0}: `tessera-hsm partition list` shows them")]
    NoSuchPartition(PartitionId),
    /// The partition exists already.
    #[error("partition {0} exists already: choose another id")]
    PartitionExists(PartitionId),
    /// A value failed validation.
    #[error("{0}")]
    Invalid(#[from] DomainError),
    /// A partition name that is empty, too long or unprintable.
    #[error("a partition name must be 1 to {MAX_PARTITION_NAME} printable characters")]
    BadName,
    /// An SO card that cannot be registered.
    #[error("SO card refused: {0}")]
    SoCard(&'static str),
    /// A log capacity too small to keep the reserve for exports.
    #[error("a partition log must hold at least {min} entries")]
    LogCapacity {
        /// The smallest capacity accepted.
        min: u64,
    },
    /// Refused by role or policy (the refusal is logged).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// The HSM.
pub struct Hsm {
    keys: HsmKeys,
    audit: audit_log::AuditSigner,
    store: Store,
    clock: Clock,
    checkpoints: CheckpointPolicy,
    /// The current management session of each partition: a newer login supersedes it.
    sessions: Mutex<HashMap<PartitionId, u64>>,
    next_session: AtomicU64,
    /// Each partition's ration of log entries written without an officer login (see
    /// [`Hsm::admit_unauthenticated_entry`]).
    unauthenticated: Mutex<HashMap<PartitionId, Ration>>,
    /// Each pinned terminal's failed logins (see [`Hsm::terminal_login_failed`]).
    terminal_failures: Mutex<HashMap<(PartitionId, Fingerprint), TerminalFailures>>,
    /// Refused application hellos, counted and summarised (see `application::refusals`).
    pub(crate) hello_refusals: Mutex<crate::application::refusals::HelloRefusals>,
    /// Rises with every terminal revoked: an open session then checks that its terminal is
    /// still pinned, and ends if not ([`Hsm::revocations`]).
    revocations: AtomicU64,
}

/// One terminal's failed logins within the window, and until when it is locked out.
#[derive(Default)]
struct TerminalFailures {
    times: Vec<u64>,
    locked_until: Option<u64>,
}

/// A partition's ration of entries written without a login: the times of those admitted within
/// the window, and how many were refused since the last one admitted.
#[derive(Default)]
struct Ration {
    times: Vec<u64>,
    unlogged: u64,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("id", &self.keys.hsm_id())
            .finish_non_exhaustive()
    }
}

/// What `tessera-hsm init` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    /// The HSM's id.
    pub hsm_id: String,
    /// Fingerprint of the audit public key (to pin for log verification).
    pub audit_fingerprint: String,
    /// Fingerprint of the HSM's link key.
    pub link_fingerprint: Fingerprint,
}

impl Hsm {
    /// Creates an HSM in `dir`: keys from the OS random generator, sealed at rest, and an empty
    /// store. Refuses a directory that already holds keys.
    pub fn init(dir: &Path) -> Result<InitReport, ServiceError> {
        let keys = HsmKeys::init(dir)?;
        Store::open(dir)?;
        Ok(InitReport {
            hsm_id: keys.hsm_id(),
            audit_fingerprint: keys.audit_fingerprint().to_string(),
            link_fingerprint: keys.identity_public().fingerprint(),
        })
    }

    /// Opens the HSM in `dir`.
    pub fn open(dir: &Path, clock: Clock) -> Result<Self, ServiceError> {
        let keys = HsmKeys::load(dir)?;
        let store = Store::open(dir)?;
        Ok(Self::with_parts(keys, store, clock))
    }

    /// An HSM from its parts (the embedded demo uses keys that never touch a disk).
    pub fn with_parts(keys: HsmKeys, store: Store, clock: Clock) -> Self {
        Hsm {
            audit: keys.audit_signer(),
            keys,
            store,
            clock,
            checkpoints: CheckpointPolicy::default(),
            sessions: Mutex::default(),
            unauthenticated: Mutex::default(),
            terminal_failures: Mutex::default(),
            hello_refusals: Mutex::default(),
            revocations: AtomicU64::new(0),
            next_session: AtomicU64::new(1),
        }
    }

    /// The HSM's keys (identity for the link, audit public key).
    pub fn keys(&self) -> &HsmKeys {
        &self.keys
    }

    /// The audit public key, for verifying this HSM's logs.
    pub fn audit_key(&self) -> AuditKey {
        self.audit.public()
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a partition of `tier` with the tier's defaults.
    pub fn create_partition(
        &self,
        id: PartitionId,
        name: &str,
        tier: ServiceTier,
    ) -> Result<PartitionRecord, ServiceError> {
        if name.is_empty()
            || name.len() > MAX_PARTITION_NAME
            || name.chars().any(|c| c.is_control())
        {
            return Err(ServiceError::BadName);
        }
        self.store.write(|tx| {
            if tx.partition(&id)?.is_some() {
                return Err(ServiceError::PartitionExists(id.clone()));
            }
            let mut record = PartitionRecord {
                id: id.clone(),
                name: name.to_string(),
                tier,
                config: PartitionConfig::for_tier(tier),
                pso: None,
                auditor: None,
                credentials: Credentials::default(),
                pairing: PairingRecord::default(),
                log: LogState::new(DEFAULT_LOG_CAPACITY, audit_log::genesis_hash(id.as_str()).0),
                next_key_id: 1,
                usage: PartitionUsage::default(),
                throttle: Throttle::default(),
            };
            let event = Event::new(genesis(), KnownOperation::PartitionCreate)
                .object(id.as_str())
                .detail("tier", tier.as_str());
            self.append(tx, &mut record, event)?;
            tx.put_partition(&record)?;
            Ok(record)
        })
    }

    /// Every partition.
    pub fn partitions(&self) -> Result<Vec<PartitionRecord>, ServiceError> {
        self.store.read(|tx| Ok(tx.partitions()?))
    }

    /// One partition.
    pub fn partition(&self, id: &PartitionId) -> Result<PartitionRecord, ServiceError> {
        self.store.read(|tx| {
            tx.partition(id)?
                .ok_or(ServiceError::NoSuchPartition(id.clone()))
        })
    }

    /// Usage computed from what is stored (invalidated keys included).
    pub fn usage(&self, id: &PartitionId) -> Result<PartitionUsage, ServiceError> {
        self.store.read(|tx| {
            let mut usage = PartitionUsage::default();
            tx.for_each_key(id, |key| {
                usage.bytes_used += key.summary.size_bytes;
                usage.objects_used += 1;
                if key.summary.state.is_invalidated() {
                    usage.invalidated_objects += 1;
                }
            })?;
            Ok(usage)
        })
    }

    /// Up to `limit` ids of stored key objects (active or in the bin) above `after`.
    pub fn key_ids(
        &self,
        id: &PartitionId,
        after: Option<hsm_link::domain::KeyId>,
        limit: usize,
    ) -> Result<Vec<u64>, ServiceError> {
        self.store.read(|tx| {
            let (keys, _) = tx.keys(id, after, limit, |_| true)?;
            Ok(keys.into_iter().map(|k| k.summary.id.0).collect())
        })
    }

    /// Registers an SO card, belonging to one named person.
    pub fn add_so_card(&self, card: CardDescription) -> Result<SoRegistry, ServiceError> {
        self.store.write(|tx| {
            let mut registry = tx.so_registry()?;
            if registry
                .cards
                .iter()
                .any(|c| c.signing_key == card.signing_key)
            {
                return Err(ServiceError::SoCard("this key is registered already"));
            }
            if registry.cards.iter().any(|c| c.serial == card.serial) {
                return Err(ServiceError::SoCard(
                    "a card with this serial is registered already",
                ));
            }
            if registry.cards.len() >= hsm_link::domain::MAX_CARDS_PER_SET {
                return Err(ServiceError::SoCard("the SO registry is full (16 cards)"));
            }
            registry.cards.push(card);
            registry.threshold = registry.threshold.max(2);
            tx.put_so_registry(&registry)?;
            Ok(registry)
        })
    }

    /// Sets how many SO cards (of at least two people) an SO session needs: 2 or more.
    pub fn set_so_threshold(&self, threshold: u8) -> Result<SoRegistry, ServiceError> {
        if threshold < 2 {
            return Err(ServiceError::SoCard(
                "four eyes: the SO threshold is at least 2",
            ));
        }
        self.store.write(|tx| {
            let mut registry = tx.so_registry()?;
            if usize::from(threshold) > registry.cards.len() {
                return Err(ServiceError::SoCard(
                    "the threshold exceeds the registered SO cards",
                ));
            }
            registry.threshold = threshold;
            tx.put_so_registry(&registry)?;
            Ok(registry)
        })
    }

    /// The SO registry.
    pub fn so_registry(&self) -> Result<SoRegistry, ServiceError> {
        self.store.read(|tx| Ok(tx.so_registry()?))
    }

    /// Whether card sets may hold soft cards (the HSM owner's choice; no by default). Sets
    /// registered before a change keep their cards.
    pub fn soft_cards_allowed(&self) -> Result<bool, ServiceError> {
        self.store.read(|tx| Ok(tx.soft_cards_allowed()?))
    }

    /// Allows or refuses soft cards in card sets registered from now on (the demo and test
    /// HSMs allow them; a production HSM should not). A change is logged in every partition's
    /// log, in the transaction that makes it, as the HSM owner's (`hsm.soft-cards`): if a
    /// partition's log cannot take the entry, nothing changes.
    pub fn set_soft_cards_allowed(&self, allowed: bool) -> Result<(), ServiceError> {
        self.store.write(|tx| {
            if tx.soft_cards_allowed()? == allowed {
                return Ok(());
            }
            tx.put_soft_cards_allowed(allowed)?;
            for mut record in tx.partitions()? {
                let event = Event::new(genesis(), KnownOperation::HsmSoftCards)
                    .detail("soft-cards", if allowed { "allowed" } else { "refused" });
                self.append(tx, &mut record, event)?;
                tx.put_partition(&record)?;
            }
            Ok(())
        })
    }

    /// The SO registry as a card set, for logins.
    pub(crate) fn so_set(
        &self,
    ) -> Result<Option<hsm_link::domain::CardSetDescription>, ServiceError> {
        let registry = self.so_registry()?;
        if registry.cards.len() < 2 {
            return Ok(None);
        }
        Ok(Some(hsm_link::domain::CardSetDescription {
            kind: CardSetKind::DeviceSo,
            set_number: 1,
            threshold: registry.threshold.max(2),
            cards: registry.cards,
        }))
    }

    /// Issues a fresh one-time management pairing code for `id` (replacing an outstanding
    /// one). The code is returned once, to be shown once; the store keeps only its sealed key.
    pub fn issue_pairing_code(
        &self,
        id: &PartitionId,
        actor: Actor,
    ) -> Result<PairingCode, ServiceError> {
        let code = PairingCode::generate().map_err(CryptoError::Rng)?;
        let psk = code.psk(id);
        let sealed = sealed::seal(self.keys.master(), &psk_aad(id), &psk[..])?;
        self.modify(id, |hsm, tx, record| {
            record.pairing.sealed_psk = Some((sealed, 0));
            hsm.append(
                tx,
                record,
                Event::new(actor, KnownOperation::PairingIssue).object(id.as_str()),
            )?;
            Ok(())
        })?;
        Ok(code)
    }

    /// Sets which licensed options the partition has (the HSM owner's order form): Smart Key
    /// Attributes and crypto-currency functions. Withdrawing a licence also switches the option
    /// off. A PSO can then switch on only what is licensed.
    pub fn set_licences(
        &self,
        id: &PartitionId,
        ska: bool,
        crypto_currency: bool,
    ) -> Result<PartitionConfig, ServiceError> {
        self.modify(id, |hsm, tx, record| {
            let config = &mut record.config;
            config.ska.licensed = ska;
            config.ska.enabled &= ska;
            config.crypto_currency.licensed = crypto_currency;
            config.crypto_currency.enabled &= crypto_currency;
            config.revision += 1;
            let event = Event::new(genesis(), KnownOperation::ConfigLicences)
                .detail(
                    "smart-key-attributes",
                    if ska { "licensed" } else { "not licensed" },
                )
                .detail(
                    "crypto-currency",
                    if crypto_currency {
                        "licensed"
                    } else {
                        "not licensed"
                    },
                )
                .detail("revision", config.revision.to_string());
            hsm.append(tx, record, event)?;
            Ok(record.config.clone())
        })
    }

    /// Sets the partition log's capacity and what happens when it is full (the HSM owner's
    /// decision). The capacity keeps room for the reserve that the freeing export needs.
    pub fn set_log_policy(
        &self,
        id: &PartitionId,
        capacity: u64,
        full_policy: LogFullPolicy,
    ) -> Result<LogState, ServiceError> {
        self.modify(id, |hsm, tx, record| {
            let reserve = record.log.reserve;
            if capacity <= reserve * 2 {
                return Err(ServiceError::LogCapacity {
                    min: reserve * 2 + 1,
                });
            }
            record.log.capacity = capacity;
            record.log.full_policy = full_policy;
            let event = Event::new(genesis(), KnownOperation::LogPolicy)
                .detail("capacity", capacity.to_string())
                .detail(
                    "when-full",
                    match full_policy {
                        LogFullPolicy::Refuse => "refuse",
                        LogFullPolicy::PruneConfirmed => "prune-confirmed",
                    },
                );
            hsm.append(tx, record, event)?;
            Ok(record.log.clone())
        })
    }

    /// Issues a new one-time setup password for the partition's application (ending its
    /// permanent secret). Returned once, to be shown once; the store keeps only its hash.
    pub fn reset_credentials(
        &self,
        id: &PartitionId,
        actor: Actor,
    ) -> Result<(Zeroizing<String>, u64), ServiceError> {
        let password = crate::credentials::new_setup_password()?;
        let expires = self.clock.now_s() + crate::admin::SETUP_PASSWORD_LIFETIME_S;
        let hash = crate::credentials::hash(&password);
        self.modify(id, |hsm, tx, record| {
            record.credentials.setup = Some((hash, expires));
            record.credentials.permanent = None;
            record.credentials.epoch += 1;
            let event = Event::new(actor, KnownOperation::CredentialsReset)
                .detail("expires", expires.to_string());
            hsm.append(tx, record, event)
        })?;
        Ok((password, expires))
    }

    /// Runs `f` on a partition's record inside one write transaction and stores the record.
    pub(crate) fn modify<T>(
        &self,
        id: &PartitionId,
        f: impl FnOnce(&Self, &mut WriteTxn<'_>, &mut PartitionRecord) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.store.write(|tx| {
            let mut record = tx
                .partition(id)?
                .ok_or_else(|| ServiceError::NoSuchPartition(id.clone()))?;
            let value = f(self, tx, &mut record)?;
            tx.put_partition(&record)?;
            Ok(value)
        })
    }

    /// Logs a refusal in its own transaction (the refused change itself is not made).
    pub(crate) fn log_refusal(&self, id: &PartitionId, event: Event) -> Result<(), ServiceError> {
        match self.modify(id, |hsm, tx, record| hsm.append(tx, record, event)) {
            // A full log refuses the refusal's entry too; the refusal still stands.
            Err(ServiceError::Admin(AdminError::LogFull)) => Ok(()),
            other => other,
        }
    }

    /// Appends a log entry (and a signed checkpoint when due) in the caller's transaction.
    pub(crate) fn append(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        event: Event,
    ) -> Result<(), ServiceError> {
        let exempt = matches!(
            event.operation,
            KnownOperation::LogExport | KnownOperation::LogConfirm | KnownOperation::LogPolicy
        )
            // An officer who logs in may be the one who exports: a successful login uses the
            // reserve too (it needs a quorum, so it cannot be used to exhaust it).
            || (event.operation == KnownOperation::Login && event.outcome == Outcome::Ok);
        self.make_room(tx, record, exempt)?;
        let now = self.clock.now_ms();
        let mut draft = EntryDraft::new(now, event.actor, event.operation.into(), event.outcome);
        if let Some(object) = event.object {
            draft = draft.with_object(object);
        }
        for (k, v) in event.details {
            draft = draft.with_detail(k, v);
        }
        let log = &mut record.log;
        let mut chain = Chain::resume(log.next_seq - 1, Hash(log.last_hash), log.since_checkpoint);
        let entry = chain.append(draft)?;
        tx.put_log_line(&record.id, entry.seq(), &entry.to_canonical())?;
        log.next_seq = entry.seq() + 1;
        log.last_hash = entry.hash().0;
        log.since_checkpoint += 1;
        if self
            .checkpoints
            .due(log.since_checkpoint, event.administrative)
        {
            let checkpoint = chain.checkpoint(&self.audit, now);
            tx.put_checkpoint(&record.id, entry.seq(), &checkpoint.to_canonical())?;
            log.since_checkpoint = 0;
        }
        Ok(())
    }

    /// Signs a checkpoint over entry `seq` whose hash is `hash` (the end of an export), stores
    /// it, and returns its line.
    pub(crate) fn checkpoint_at(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        seq: u64,
        hash: Hash,
    ) -> Result<Vec<u8>, ServiceError> {
        let line = self
            .audit
            .sign_checkpoint(seq, hash, self.clock.now_ms())
            .to_canonical();
        tx.put_checkpoint(&record.id, seq, &line)?;
        if seq + 1 == record.log.next_seq {
            record.log.since_checkpoint = 0;
        }
        Ok(line)
    }

    /// Signs the closing checkpoint of an export whose last entry's hash is `last_hash`.
    pub(crate) fn sign_export_end(
        &self,
        header: &audit_log::ExportHeader,
        last_hash: Hash,
    ) -> Result<audit_log::ExportEnd, ServiceError> {
        Ok(self
            .audit
            .sign_export_end(header, last_hash, self.clock.now_ms())?)
    }

    /// Makes room for one entry, or refuses: the partition's full-log policy, with a reserve
    /// kept for the export that frees space and its confirmation.
    fn make_room(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        exempt: bool,
    ) -> Result<(), ServiceError> {
        let log = &mut record.log;
        let limit = if exempt {
            log.capacity
        } else {
            log.capacity.saturating_sub(log.reserve)
        };
        if log.stored() < limit {
            return Ok(());
        }
        if log.full_policy == LogFullPolicy::PruneConfirmed
            && self.prune_confirmed(tx, record)?
            && record.log.stored() < limit
        {
            return Ok(());
        }
        Err(AdminError::LogFull.into())
    }

    /// Drops the entries confirmed as exported, up to the last signed checkpoint at or below
    /// the confirmation (kept: it anchors what is left, so the stored log still verifies).
    /// Whether anything was dropped. Under [`LogFullPolicy::Refuse`] a confirmation does this
    /// at once (the officers' export and confirm is what frees a full log); under
    /// [`LogFullPolicy::PruneConfirmed`] it waits until room is needed.
    pub(crate) fn prune_confirmed(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
    ) -> Result<bool, ServiceError> {
        let log = &mut record.log;
        if let Some(confirmed) = log.confirmed_up_to
            && confirmed >= log.first_seq
            && let Some(first) = tx.prune_log(&record.id, confirmed)?
        {
            log.first_seq = first;
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts a management session for `id`, ending any other (the other learns it at its next
    /// poll). Returns the session's generation.
    pub(crate) fn take_over(&self, id: &PartitionId) -> u64 {
        let generation = self.next_session.fetch_add(1, Ordering::SeqCst);
        self.sessions
            .lock()
            .expect("session table lock")
            .insert(id.clone(), generation);
        generation
    }

    /// Admits one log entry written for a session without an officer login (a share drill,
    /// a refusal), if the partition took fewer than `limit` such entries in the last
    /// `window_s` seconds: `Ok(n)`, where n entries were refused since the last one admitted
    /// (for the entry to say so). Otherwise the entry is counted as unlogged and the answer is
    /// the seconds until one is admitted again. Failed logins are not rationed here: they have
    /// their own throttle, and each is logged. Kept in memory: a restart forgets the count, as
    /// it forgets open sessions.
    pub(crate) fn admit_unauthenticated_entry(
        &self,
        id: &PartitionId,
        limit: usize,
        window_s: u64,
    ) -> Result<u64, u64> {
        let now = self.clock.now_s();
        let mut table = self.unauthenticated.lock().expect("ration table lock");
        let ration = table.entry(id.clone()).or_default();
        ration.times.retain(|&t| t + window_s > now);
        if ration.times.len() >= limit {
            ration.unlogged += 1;
            let oldest = ration.times.iter().min().copied().unwrap_or(now);
            return Err((oldest + window_s).saturating_sub(now).max(1));
        }
        ration.times.push(now);
        Ok(std::mem::take(&mut ration.unlogged))
    }

    /// The seconds until `terminal` may try to log in to `id` again, if it is locked out.
    pub(crate) fn terminal_locked(&self, id: &PartitionId, terminal: &Fingerprint) -> Option<u64> {
        let now = self.clock.now_s();
        let table = self.terminal_failures.lock().expect("terminal table lock");
        let until = table.get(&(id.clone(), *terminal))?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failed login from `terminal` (a pinned key: only paired terminals reach a
    /// login, so the table stays small). At `limit` failures within `window_s` seconds the
    /// terminal alone is locked out for `lockout_s`, so that one terminal cannot use up the
    /// partition's own limit ([`PartitionRecord::throttle`]) and lock every officer out.
    /// Returns whether it is now locked out. Kept in memory: a restart forgets it, the
    /// partition's count is stored.
    pub(crate) fn terminal_login_failed(
        &self,
        id: &PartitionId,
        terminal: Fingerprint,
        limit: usize,
        window_s: u64,
        lockout_s: u64,
    ) -> bool {
        let now = self.clock.now_s();
        let mut table = self.terminal_failures.lock().expect("terminal table lock");
        let entry = table.entry((id.clone(), terminal)).or_default();
        entry.times.retain(|&t| t + window_s > now);
        entry.times.push(now);
        if entry.times.len() < limit {
            return false;
        }
        entry.times.clear();
        entry.locked_until = Some(now + lockout_s);
        true
    }

    /// Whether `generation` is still the current management session of `id`.
    pub(crate) fn is_current(&self, id: &PartitionId, generation: u64) -> bool {
        self.sessions
            .lock()
            .expect("session table lock")
            .get(id)
            .is_none_or(|&g| g == generation)
    }
}

/// A summary line for `partition list`.
pub fn describe(record: &PartitionRecord, usage: &PartitionUsage) -> String {
    let limit = record
        .config
        .quota
        .object_limit
        .map_or("no limit".to_string(), |l| l.to_string());
    format!(
        "{}  {:<24} {:<10} {} of {} bytes, {} objects (limit {}), {} in the bin, log {} entries",
        record.id,
        record.name,
        record.tier.as_str(),
        usage.bytes_used,
        record.config.quota.size_bytes,
        usage.objects_used,
        limit,
        usage.invalidated_objects,
        record.log.stored()
    )
}

#[cfg(test)]
mod tests {
    use super::check::*;
    use super::*;
    use audit_log::EntryDraft;

    #[test]
    fn the_check_follows_which_keys_the_log_created_and_removed() {
        let mut chain = audit_log::Chain::new();
        let mut line = |op: KnownOperation, key: u64, outcome: Outcome, to: Option<&str>| {
            let mut draft = EntryDraft::new(1, technical(), op.into(), outcome)
                .with_object(format!("key {key}"));
            if let Some(to) = to {
                draft = draft.with_detail("to", to);
            }
            chain.append(draft).unwrap().to_canonical()
        };
        let mut alive = BTreeSet::new();
        for l in [
            line(KnownOperation::KeyGenerate, 1, Outcome::Ok, None),
            line(KnownOperation::KeyImport, 2, Outcome::Ok, None),
            line(KnownOperation::KeyUnwrap, 3, Outcome::Ok, None),
            // Refused: nothing was made.
            line(
                KnownOperation::KeyGenerate,
                4,
                Outcome::refused("quota"),
                None,
            ),
            // To the bin: still stored.
            line(KnownOperation::KeyDelete, 1, Outcome::Ok, Some("bin")),
            line(KnownOperation::KeyDelete, 2, Outcome::Ok, Some("destroyed")),
            line(KnownOperation::KeyPurge, 3, Outcome::Ok, None),
            // Not a key's creation.
            line(KnownOperation::KeySign, 5, Outcome::Ok, None),
        ] {
            track_key(&mut alive, &l);
        }
        track_key(&mut alive, b"not a log line");
        assert_eq!(alive, BTreeSet::from([1]));
    }

    fn technical() -> Actor {
        Actor::new(Role::TechnicalUser, Vec::<String>::new())
    }
}
