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

/// Milliseconds since the Unix epoch; replaceable in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        }))
    }

    /// A clock that reads `f`.
    pub fn from_fn(f: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// One logged event, before it is chained.
pub(crate) struct Event {
    pub(crate) actor: Actor,
    pub(crate) operation: KnownOperation,
    pub(crate) object: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) details: Vec<(&'static str, String)>,
    /// Administrative events are followed by a signed checkpoint.
    pub(crate) administrative: bool,
}

impl Event {
    pub(crate) fn new(actor: Actor, operation: KnownOperation) -> Self {
        Event {
            actor,
            operation,
            object: None,
            outcome: Outcome::Ok,
            details: Vec::new(),
            administrative: true,
        }
    }

    pub(crate) fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub(crate) fn refused(mut self, reason: impl std::fmt::Display) -> Self {
        self.outcome = Outcome::refused(truncate(reason.to_string()));
        self
    }

    pub(crate) fn failed(mut self, reason: impl std::fmt::Display) -> Self {
        self.outcome = Outcome::failed(truncate(reason.to_string()));
        self
    }

    pub(crate) fn detail(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.details.push((key, truncate(value.into())));
        self
    }

    /// An application event: checkpointed by count, not after each one.
    pub(crate) fn application(mut self) -> Self {
        self.administrative = false;
        self
    }
}

fn truncate(mut text: String) -> String {
    let max = audit_log::MAX_REASON_LEN.min(audit_log::MAX_DETAIL_VALUE_LEN);
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The actor for the HSM owner acting through `tessera-hsm`.
pub fn genesis() -> Actor {
    Actor::new(Role::Genesis, Vec::<String>::new())
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

impl Hsm {
    /// The outstanding pairing code's key, if a code is outstanding.
    fn outstanding_psk(&self, record: &PartitionRecord) -> Option<Zeroizing<[u8; 32]>> {
        let (sealed_psk, _) = record.pairing.sealed_psk.as_ref()?;
        match sealed::open(self.keys.master(), &psk_aad(&record.id), sealed_psk) {
            Ok(psk) if psk.len() == 32 => {
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(&psk);
                Some(out)
            }
            _ => None,
        }
    }

    /// Counts how many terminals were revoked since the HSM started: a session that saw
    /// another count checks whether its own terminal is still pinned.
    pub(crate) fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// The pinned terminals of `id` with when each paired and was last seen.
    pub(crate) fn terminals(
        &self,
        id: &PartitionId,
    ) -> Result<Vec<(PublicKey, TerminalSeen)>, ServiceError> {
        self.store.read(|tx| {
            let record = tx
                .partition(id)?
                .ok_or_else(|| ServiceError::NoSuchPartition(id.clone()))?;
            let mut out = Vec::with_capacity(record.pairing.terminals.len());
            for key in record.pairing.terminals {
                let seen = tx.terminal_seen(id, &key.fingerprint())?;
                out.push((key, seen));
            }
            Ok(out)
        })
    }

    /// Records that `terminal` opened a session now. A terminal not (or no longer) pinned is
    /// not recorded.
    pub(crate) fn terminal_seen_now(
        &self,
        id: &PartitionId,
        terminal: &Fingerprint,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_s();
        self.store.write(|tx| {
            let pinned = tx.partition(id)?.is_some_and(|r| {
                r.pairing
                    .terminals
                    .iter()
                    .any(|k| k.fingerprint() == *terminal)
            });
            if !pinned {
                return Ok(());
            }
            let mut seen = tx.terminal_seen(id, terminal)?;
            seen.last_seen_unix = Some(now);
            tx.put_terminal_seen(id, terminal, &seen)?;
            Ok(())
        })
    }

    /// Unpins `terminal` in the caller's transaction and forgets its record; the sessions it
    /// has open end once the transaction committed and [`Hsm::terminal_revoked`] was called.
    /// Whether it was pinned.
    pub(crate) fn unpin_terminal(
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        terminal: &Fingerprint,
    ) -> Result<bool, ServiceError> {
        let before = record.pairing.terminals.len();
        record
            .pairing
            .terminals
            .retain(|k| k.fingerprint() != *terminal);
        if record.pairing.terminals.len() == before {
            return Ok(false);
        }
        // `first_terminal` stays as it is: the privilege of enrolling the first PSO set belongs
        // to the first terminal ever paired and to no other. Cleared, it would pass to whichever
        // terminal paired next; kept, an unpinned first terminal cannot connect to use it.
        tx.delete_terminal_seen(&record.id, terminal)?;
        Ok(true)
    }

    /// Tells open sessions that a terminal was revoked (after the revocation committed).
    pub(crate) fn terminal_revoked(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
    }
}

fn psk_aad(id: &PartitionId) -> Vec<u8> {
    let mut aad = PSK_AAD.to_vec();
    aad.extend_from_slice(id.as_str().as_bytes());
    aad
}

fn fingerprint_text(key: &PublicKey) -> String {
    key.fingerprint().to_string()
}

impl TrustStore for Hsm {
    fn partition_exists(&self, partition: &PartitionId) -> bool {
        self.partition(partition).is_ok()
    }

    /// Every partition's log is signed with the HSM's one audit key.
    fn audit_key(&self, partition: &PartitionId) -> Option<AuditKey> {
        self.partition_exists(partition)
            .then(|| Hsm::audit_key(self))
    }

    fn pinned_terminal(
        &self,
        partition: &PartitionId,
        terminal: &Fingerprint,
    ) -> Option<PublicKey> {
        let record = self.partition(partition).ok()?;
        record
            .pairing
            .terminals
            .iter()
            .find(|k| k.fingerprint() == *terminal)
            .copied()
    }

    fn pairing_offer(&self, partition: &PartitionId) -> PairingOffer {
        let Ok(record) = self.partition(partition) else {
            return PairingOffer::None;
        };
        match self.outstanding_psk(&record) {
            Some(psk) => PairingOffer::Open(psk),
            None => PairingOffer::None,
        }
    }

    fn pairing_failed(&self, partition: &PartitionId, psk: &[u8; 32]) -> u32 {
        let result = self.modify(partition, |hsm, tx, record| {
            // A handshake begun under a code reissued since then: its failure says nothing
            // about the new code, and is not counted against it.
            if !hsm
                .outstanding_psk(record)
                .is_some_and(|c| same_code(&c, psk))
            {
                return Ok(0);
            }
            let Some((_, failures)) = record.pairing.sealed_psk.as_mut() else {
                return Ok(0);
            };
            *failures += 1;
            let left = PAIRING_FAILURES.saturating_sub(*failures);
            let mut event = Event::new(
                Actor::new(Role::Unauthenticated, Vec::<String>::new()),
                KnownOperation::PairingAttempt,
            )
            .object(partition.as_str())
            .refused("the pairing code did not match")
            .detail("attempts-left", left.to_string());
            if left == 0 {
                record.pairing.sealed_psk = None;
                event = event.detail("code", "burned");
            }
            // The count is kept even when the log is full and cannot take the entry: a code
            // is burned after three failures, always.
            match hsm.append(tx, record, event) {
                Err(ServiceError::Admin(AdminError::LogFull)) => Ok(left),
                other => other.map(|()| left),
            }
        });
        result.unwrap_or(0)
    }

    fn pairing_succeeded(
        &self,
        partition: &PartitionId,
        psk: &[u8; 32],
        terminal: PublicKey,
    ) -> bool {
        let result = self.modify(partition, |hsm, tx, record| {
            // Only the outstanding code pairs: one reissued since the handshake began ended it.
            if !hsm
                .outstanding_psk(record)
                .is_some_and(|c| same_code(&c, psk))
            {
                return Ok(false);
            }
            record.pairing.sealed_psk = None;
            let now = hsm.clock.now_s();
            let seen = TerminalSeen {
                paired_unix: Some(now),
                last_seen_unix: Some(now),
            };
            tx.put_terminal_seen(partition, &terminal.fingerprint(), &seen)?;
            if !record.pairing.terminals.contains(&terminal) {
                record.pairing.terminals.push(terminal);
            }
            record.pairing.first_terminal.get_or_insert(terminal);
            let event = Event::new(
                Actor::new(Role::Unauthenticated, Vec::<String>::new()),
                KnownOperation::PairingComplete,
            )
            .object(partition.as_str())
            .detail("terminal", fingerprint_text(&terminal));
            hsm.append(tx, record, event)?;
            Ok(true)
        });
        result.unwrap_or(false)
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

/// What [`Hsm::check`] found in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCheck {
    /// The partition.
    pub partition: PartitionId,
    /// Log entries verified (chain, hashes, checkpoint signatures).
    pub entries: u64,
    /// Entries after the last checkpoint (not yet signed; signed at the next export).
    pub unsigned_tail: u64,
    /// Key objects stored.
    pub keys: u64,
}

impl Hsm {
    /// Checks the whole store: every partition's log verifies against this HSM's audit key and
    /// ends where the partition record says; every stored key was created by a logged event and
    /// every key the log says exists is stored. After a crash, this is what proves that no
    /// transaction was half-applied.
    pub fn check(&self) -> Result<Vec<PartitionCheck>, CheckError> {
        let partitions = self.partitions().map_err(CheckError::Service)?;
        let mut out = Vec::new();
        for record in partitions {
            out.push(self.check_partition(&record)?);
        }
        Ok(out)
    }

    fn check_partition(&self, record: &PartitionRecord) -> Result<PartitionCheck, CheckError> {
        let id = &record.id;
        let anchor = self.log_anchor(record)?;
        let mut verifier = audit_log::Verifier::new(self.audit_key(), Some(anchor));
        let (alive, last_seq) = self.verify_log_lines(record, &mut verifier)?;
        let report = verifier
            .finish()
            .map_err(|e| inconsistent(id, format!("log: {e}")))?;
        if record.log.next_seq != last_seq + 1 {
            return Err(inconsistent(
                id,
                format!(
                    "the record says the next log entry is {}, the log ends at {last_seq}",
                    record.log.next_seq
                ),
            ));
        }
        let keys = self.check_keys(record, alive.as_ref())?;
        Ok(PartitionCheck {
            partition: id.clone(),
            entries: report.entries(),
            unsigned_tail: report.unsigned_tail().map_or(0, |t| t.entries),
            keys,
        })
    }

    /// Where the stored log starts: the genesis hash, or the signed checkpoint that anchors a
    /// pruned log.
    fn log_anchor(&self, record: &PartitionRecord) -> Result<(u64, audit_log::Hash), CheckError> {
        let id = &record.id;
        if record.log.first_seq <= 1 {
            return Ok((0, audit_log::genesis_hash(id.as_str())));
        }
        let seq = record.log.first_seq - 1;
        let line = self
            .store
            .read(|tx| Ok::<_, ServiceError>(tx.checkpoint_at(id, seq)?))
            .map_err(CheckError::Service)?
            .ok_or_else(|| {
                inconsistent(
                    id,
                    format!("the pruned log has no anchoring checkpoint at {seq}"),
                )
            })?;
        let checkpoint = audit_log::Checkpoint::from_canonical(&line)
            .map_err(|e| inconsistent(id, format!("the anchoring checkpoint: {e}")))?;
        checkpoint
            .verify(&self.audit_key())
            .map_err(|e| inconsistent(id, format!("the anchoring checkpoint: {e}")))?;
        Ok((checkpoint.seq, checkpoint.hash))
    }

    /// Pushes every stored line through `verifier`: the keys the log says exist, and the last
    /// sequence number stored.
    fn verify_log_lines(
        &self,
        record: &PartitionRecord,
        verifier: &mut audit_log::Verifier,
    ) -> Result<(Option<BTreeSet<u64>>, u64), CheckError> {
        let id = &record.id;
        // `None` after a restore: the key set then is the backup's, which no entry lists.
        let mut alive = Some(BTreeSet::new());
        let mut problem = None;
        let mut last_seq = record.log.first_seq - 1;
        self.store
            .read(|tx| {
                tx.log_lines(id, record.log.first_seq, |seq, line, checkpoint| {
                    last_seq = seq;
                    if let Err(e) = verifier.push_line(line) {
                        problem = Some(format!("log entry {seq}: {e}"));
                        return false;
                    }
                    if let Some(cp) = checkpoint
                        && let Err(e) = verifier.push_line(cp)
                    {
                        problem = Some(format!("checkpoint after {seq}: {e}"));
                        return false;
                    }
                    if restored_keys(line) {
                        alive = None;
                    } else if let Some(alive) = alive.as_mut() {
                        track_key(alive, line);
                    }
                    true
                })?;
                Ok::<_, ServiceError>(())
            })
            .map_err(CheckError::Service)?;
        match problem {
            Some(problem) => Err(inconsistent(id, problem)),
            None => Ok((alive, last_seq)),
        }
    }

    /// Compares the stored keys with those the log created (when the log is whole and no
    /// restore replaced them since) and the recorded usage with what is stored: how many keys
    /// are stored.
    fn check_keys(
        &self,
        record: &PartitionRecord,
        alive: Option<&BTreeSet<u64>>,
    ) -> Result<u64, CheckError> {
        let id = &record.id;
        let mut stored = BTreeSet::new();
        self.store
            .read(|tx| {
                tx.for_each_key(id, |k| {
                    stored.insert(k.summary.id.0);
                })
                .map_err(ServiceError::from)
            })
            .map_err(CheckError::Service)?;
        if let Some(alive) = alive
            && record.log.first_seq == 1
            && &stored != alive
        {
            return Err(inconsistent(
                id,
                format!(
                    "stored keys {:?} differ from the keys the log created {:?}",
                    stored
                        .symmetric_difference(alive)
                        .take(5)
                        .collect::<Vec<_>>(),
                    alive.len()
                ),
            ));
        }
        let computed = self.usage(id).map_err(CheckError::Service)?;
        if computed != record.usage {
            return Err(inconsistent(
                id,
                format!(
                    "the recorded usage {:?} differs from what is stored {computed:?}",
                    record.usage
                ),
            ));
        }
        if stored.iter().any(|&k| k >= record.next_key_id) {
            return Err(inconsistent(
                id,
                "a stored key id is not below the next key id".into(),
            ));
        }
        Ok(stored.len() as u64)
    }
}

fn inconsistent(partition: &PartitionId, what: String) -> CheckError {
    CheckError::Inconsistent {
        partition: partition.clone(),
        what,
    }
}

/// Follows one log line's effect on which keys exist: created by a generate, an import or an
/// unwrap; gone after a purge or a destroying delete.
/// Whether `line` is a restore that replaced the partition's keys.
fn restored_keys(line: &[u8]) -> bool {
    matches!(
        audit_log::LogLine::from_canonical(line),
        Ok(audit_log::LogLine::Entry(entry))
            if entry.outcome() == &Outcome::Ok
                && entry.operation().as_str() == KnownOperation::BackupRestore.as_str()
    )
}

fn track_key(alive: &mut BTreeSet<u64>, line: &[u8]) {
    let Ok(audit_log::LogLine::Entry(entry)) = audit_log::LogLine::from_canonical(line) else {
        return;
    };
    let key = entry
        .object()
        .and_then(|o| o.strip_prefix("key "))
        .and_then(|k| k.parse::<u64>().ok());
    let Some(key) = key.filter(|_| entry.outcome() == &Outcome::Ok) else {
        return;
    };
    match KnownOperation::from_name(entry.operation().as_str()) {
        Some(
            KnownOperation::KeyGenerate | KnownOperation::KeyImport | KnownOperation::KeyUnwrap,
        ) => {
            alive.insert(key);
        }
        Some(KnownOperation::KeyPurge) => {
            alive.remove(&key);
        }
        Some(KnownOperation::KeyDelete)
            if entry.details().get("to").map(String::as_str) == Some("destroyed") =>
        {
            alive.remove(&key);
        }
        _ => {}
    }
}

/// What [`Hsm::check`] can find.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store could not be read.
    #[error(transparent)]
    Service(ServiceError),
    /// Two things the store holds disagree.
    #[error("partition {partition}: {what}")]
    Inconsistent {
        /// The partition.
        partition: PartitionId,
        /// What disagrees.
        what: String,
    },
}

#[cfg(test)]
mod tests {
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
