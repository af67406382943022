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
mod log;
mod so;
mod terminals;

pub use check::{CheckError, PartitionCheck};
pub use clock::Clock;
pub(crate) use event::Event;
pub use event::genesis;

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
