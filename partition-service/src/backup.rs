//! What a partition backup holds, and how the HSM seals, checks and restores it. The file
//! around it (header, STREAM chunks, signed trailer) is `usb-backup`'s container; this module
//! decides the plaintext inside it and does the HSM's part:
//!
//! - **Sealing** ([`PlaintextStream`], [`Hsm::backup_recipients`]): from one store snapshot, kept
//!   while the terminal takes the stream and read a page of keys at a time (so memory stays
//!   flat whatever the partition's size), the partition's identity and configuration, then
//!   every key object (active and in the bin, each with its attributes and state) with its
//!   material unsealed from the master key. Not
//!   the log, the credentials, the card sets, the pairing or pinned terminals. The data key is
//!   wrapped to this HSM's X25519 backup key and, with HPKE X-Wing, to the quorum backup public
//!   key registered with the active PSO set; the trailer is signed with the HSM's Ed25519
//!   audit key (under the container's own signature domain, so no log checkpoint and no backup
//!   trailer can stand for each other), which terminals already pin.
//! - **Checking** ([`Hsm::open_backup`]): the whole file authenticated (every chunk, the chain,
//!   the signature) and every record decoded, bounded and re-sealable before anything is
//!   staged. Records are decoded as the chunks decrypt, one record in memory at a time; the
//!   uploaded file and the re-sealed keys it stages are bounded by the partition's quota.
//! - **Restoring** ([`Hsm::restore_diff`], [`Hsm::apply_restore`]): a diff against the
//!   partition, then one transaction that replaces the key objects and the configuration and
//!   appends the restore's log entry. The log is never restored or truncated.
//!
//! # Plaintext format, version 1
//!
//! [`PAYLOAD_MAGIC`] `TSPARTBK`, a 2-byte little-endian version ([`PAYLOAD_VERSION`]), then
//! records, each a 4-byte little-endian length (at most [`MAX_RECORD_LEN`]) and a postcard
//! encoded [`Item`]: first one `Partition`, then one `Key` per key object in id order, then
//! `End` with the key count. Anything after `End` is refused.

use std::collections::BTreeMap;
use std::ops::Deref;

use hsm_link::domain::{
    KeyId, KeyObjectSummary, PartitionConfig, PartitionId, PartitionUsage, ServiceTier,
};
use hsm_link::message::{BackupProblem, KeyIdList, MAX_DIFF_KEYS, RestoreDiff};
use serde::{Deserialize, Serialize};
use usb_backup::{BackupFacts, BackupReader, DEFAULT_CHUNK_SIZE, Recipients};
use zeroize::Zeroizing;

use crate::crypto;
use crate::model::{KeyRecord, PartitionRecord};
use crate::service::{Hsm, ServiceError};
use crate::store::{ReadTxn, WriteTxn};

/// The plaintext's first bytes.
pub const PAYLOAD_MAGIC: [u8; 8] = *b"TSPARTBK";
/// The plaintext format this build writes and reads.
pub const PAYLOAD_VERSION: u16 = 1;
/// Longest record (a key's summary and material are far shorter; the configuration with a
/// full IP allow-list is the longest).
pub const MAX_RECORD_LEN: usize = 64 * 1024;
/// Bytes a key object may take in the plaintext beyond its quota size: its record's length
/// prefix, summary and label. Bounds a backup's plaintext from the quota before any upload.
pub const RECORD_OVERHEAD: u64 = 512;

/// One record of the plaintext.
#[derive(Serialize, Deserialize)]
pub enum Item<'a> {
    /// The partition: who it is and its configuration.
    Partition(PartitionItem),
    /// A key object, active or in the bin, with its plain material.
    Key {
        /// Attributes, state, size.
        summary: KeyObjectSummary,
        /// The key material, in plain (inside the encrypted container only).
        material: &'a [u8],
    },
    /// The end, with the key count.
    End {
        /// Key records before it.
        keys: u64,
    },
}

/// The partition as a backup records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionItem {
    /// The id.
    pub id: PartitionId,
    /// Its name.
    pub name: String,
    /// Its service tier.
    pub tier: ServiceTier,
    /// Its configuration.
    pub config: PartitionConfig,
    /// The next key id then.
    pub next_key_id: u64,
}

/// A backup decrypted and checked at the HSM: the partition record and every key, its material
/// sealed again under the master key for this partition, ready to be stored.
#[derive(Debug)]
pub struct OpenedBackup {
    /// The backup's header hash.
    pub header_hash: [u8; 32],
    /// Creation time and sequence, from the header.
    pub created_unix: u64,
    /// The sequence number.
    pub sequence: u64,
    /// The partition as recorded.
    pub partition: PartitionItem,
    /// Every key object, re-sealed, in id order.
    pub keys: Vec<KeyRecord>,
}

/// A restore that is a migration: the backup made by another HSM (or of another partition),
/// its data key re-wrapped to this HSM's backup key by a quorum recovery on the terminal.
#[derive(Clone)]
pub struct Migration {
    /// The source HSM's Ed25519 key the trailer must verify under (the PSO supplied it).
    pub source_key: [u8; 32],
    /// The data key wrapped to this HSM (`usb_backup::DataKey::wrap_for_migration`).
    pub wrapped_key: [u8; usb_backup::container::MIGRATION_WRAPPED_KEY_LEN],
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("source_key", &hex::encode(&self.source_key[..8]))
            .finish_non_exhaustive()
    }
}

/// The most plaintext bytes a backup of a partition with this configuration can hold: the
/// quota, each object's record overhead, and the partition record.
pub fn plaintext_bound(config: &PartitionConfig) -> u64 {
    let objects = config
        .quota
        .object_limit
        .map_or(config.quota.size_bytes / 32 + 1, u64::from);
    config
        .quota
        .size_bytes
        .saturating_add(objects.saturating_mul(RECORD_OVERHEAD))
        .saturating_add(MAX_RECORD_LEN as u64 + 64)
}

fn encode(item: &Item<'_>) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let encoded = Zeroizing::new(postcard::to_stdvec(item).map_err(|_| internal())?);
    if encoded.len() > MAX_RECORD_LEN {
        return Err(internal());
    }
    Ok(encoded)
}

fn push_record(out: &mut Zeroizing<Vec<u8>>, item: &Item<'_>) -> Result<(), ServiceError> {
    let encoded = encode(item)?;
    out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    out.extend_from_slice(&encoded);
    Ok(())
}

fn internal() -> ServiceError {
    ServiceError::Crypto(crypto::CryptoError::CorruptRecord {
        what: "backup record",
    })
}

fn refused(problem: BackupProblem) -> ServiceError {
    ServiceError::Admin(hsm_link::message::AdminError::Backup(problem))
}

/// Length of every key's plain material in the plaintext (`crypto::export_plain`: a 32-byte
/// AES key, Ed25519 seed or P-256 scalar).
const MATERIAL_LEN: usize = 32;

/// Key records read from the snapshot at a time: memory holds one page, never the partition.
pub const PLAINTEXT_PAGE_KEYS: usize = 256;

/// A partition's backup plaintext as a stream, made from one store snapshot a page of keys at
/// a time, so the HSM never holds the whole partition in memory, whatever its size. Its length
/// and key count are known before the first byte (a first pass over the same snapshot), as the
/// container's header needs them.
pub struct PlaintextStream<H: Deref<Target = Hsm>> {
    hsm: H,
    snapshot: ReadTxn,
    record: PartitionRecord,
    len: u64,
    keys: u64,
    /// The last key id put out, and whether more may follow.
    after: Option<KeyId>,
    more_keys: bool,
    keys_out: u64,
    end_out: bool,
    /// Encoded bytes not read yet (plaintext: wiped when dropped).
    pending: Zeroizing<Vec<u8>>,
    at: usize,
    given: u64,
    /// The most bytes ever pending at once: what the stream holds beyond the caller's buffer.
    peak: usize,
}

impl<H: Deref<Target = Hsm>> std::fmt::Debug for PlaintextStream<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaintextStream")
            .field("len", &self.len)
            .field("keys", &self.keys)
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl<H: Deref<Target = Hsm>> PlaintextStream<H> {
    /// Opens a snapshot of partition `id` and measures its plaintext.
    pub fn new(hsm: H, id: &PartitionId) -> Result<Self, ServiceError> {
        let snapshot = hsm.store().snapshot()?;
        let record = snapshot
            .partition(id)?
            .ok_or_else(|| ServiceError::NoSuchPartition(id.clone()))?;
        let mut pending = Zeroizing::new(Vec::new());
        pending.extend_from_slice(&PAYLOAD_MAGIC);
        pending.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
        push_record(&mut pending, &partition_item(&record))?;
        // First pass: each key's record length and the count, without unsealing (every kind's
        // plain material is MATERIAL_LEN bytes; the second pass checks the total it makes).
        let (mut len, mut keys, mut failure) = (pending.len() as u64, 0u64, None);
        snapshot.for_each_key(id, |key| {
            if failure.is_some() {
                return;
            }
            let placeholder = Item::Key {
                summary: key.summary.clone(),
                material: &[0; MATERIAL_LEN],
            };
            match encode(&placeholder) {
                Ok(encoded) => {
                    len += 4 + encoded.len() as u64;
                    keys += 1;
                }
                Err(e) => failure = Some(e),
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        len += 4 + encode(&Item::End { keys })?.len() as u64;
        Ok(PlaintextStream {
            hsm,
            snapshot,
            record,
            len,
            keys,
            after: None,
            more_keys: true,
            keys_out: 0,
            end_out: false,
            peak: pending.len(),
            pending,
            at: 0,
            given: 0,
        })
    }

    /// The partition as the snapshot holds it.
    pub fn record(&self) -> &PartitionRecord {
        &self.record
    }

    /// The plaintext's exact length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty (never: it has a magic and records).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of key objects in it.
    pub fn key_count(&self) -> u64 {
        self.keys
    }

    /// The most plaintext bytes the stream held at once (a page of records), for the tests that
    /// show memory flat.
    pub fn peak_buffered(&self) -> usize {
        self.peak
    }

    /// Encodes the next page of keys (or the end record) once everything pending was read.
    fn refill(&mut self) -> Result<(), ServiceError> {
        self.pending.clear();
        self.at = 0;
        let id = self.record.id.clone();
        if self.more_keys {
            let (page, more) = self
                .snapshot
                .keys(&id, self.after, PLAINTEXT_PAGE_KEYS, |_| true)?;
            self.more_keys = more && !page.is_empty();
            for key in &page {
                let encoded = key_record(&self.hsm, &id, key)?;
                self.pending
                    .extend_from_slice(&(encoded.len() as u32).to_le_bytes());
                self.pending.extend_from_slice(&encoded);
                self.after = Some(key.summary.id);
                self.keys_out += 1;
            }
        }
        if !self.more_keys && !self.end_out {
            push_record(
                &mut self.pending,
                &Item::End {
                    keys: self.keys_out,
                },
            )?;
            self.end_out = true;
        }
        self.peak = self.peak.max(self.pending.len());
        Ok(())
    }

    /// Fills `buf` whole from the stream. Fewer bytes than measured, or a key count that
    /// changed, is an internal error (a snapshot does not change).
    pub fn read_exact_into(&mut self, mut buf: &mut [u8]) -> Result<(), ServiceError> {
        while !buf.is_empty() {
            if self.at == self.pending.len() {
                if self.end_out {
                    return Err(internal());
                }
                self.refill()?;
                continue;
            }
            let n = (self.pending.len() - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            self.given += n as u64;
            buf = &mut buf[n..];
        }
        if self.given > self.len || (self.end_out && self.keys_out != self.keys) {
            return Err(internal());
        }
        Ok(())
    }
}

impl<H: Deref<Target = Hsm>> std::io::Read for PlaintextStream<H> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.len - self.given).min(out.len() as u64) as usize;
        self.read_exact_into(&mut out[..n])
            .map_err(std::io::Error::other)?;
        Ok(n)
    }
}

fn partition_item(record: &PartitionRecord) -> Item<'static> {
    Item::Partition(PartitionItem {
        id: record.id.clone(),
        name: record.name.clone(),
        tier: record.tier,
        config: record.config.clone(),
        next_key_id: record.next_key_id,
    })
}

/// A key object's record, its material unsealed from the master key (plaintext: wiped).
fn key_record(
    hsm: &Hsm,
    id: &PartitionId,
    key: &KeyRecord,
) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let opened = crypto::open_object(
        hsm.keys().master(),
        crypto::ObjectBinding {
            partition: id,
            key_id: key.summary.id,
            attributes: key.summary.attributes,
        },
        &key.sealed,
    )?;
    let plain = crypto::export_plain(&opened.material);
    if plain.len() != MATERIAL_LEN {
        return Err(internal());
    }
    encode(&Item::Key {
        summary: key.summary.clone(),
        material: &plain,
    })
}

impl Hsm {
    /// The partition's whole backup plaintext, from one store snapshot, and its key count: for
    /// tests and checks; the link streams it instead ([`PlaintextStream`]).
    pub fn backup_plaintext(
        &self,
        id: &PartitionId,
    ) -> Result<(Zeroizing<Vec<u8>>, PartitionRecord, u64), ServiceError> {
        let mut stream = PlaintextStream::new(self, id)?;
        let mut out = Zeroizing::new(vec![0u8; stream.len() as usize]);
        stream.read_exact_into(&mut out)?;
        Ok((out, stream.record, stream.keys))
    }

    /// Who a backup of `record` is sealed to: this HSM's backup key and the quorum backup key
    /// of the active PSO set (a partition without one cannot be backed up: no quorum could
    /// ever restore it elsewhere).
    pub fn backup_recipients(&self, record: &PartitionRecord) -> Result<Recipients, ServiceError> {
        let quorum = record
            .pso
            .as_ref()
            .and_then(|p| p.recovery.as_ref())
            .ok_or(refused(BackupProblem::NoQuorumKey))?;
        Recipients::new(self.keys().backup_public(), &quorum.backup_public_key)
            .map_err(|_| refused(BackupProblem::NoQuorumKey))
    }

    /// The header facts of a backup of `record` with this plaintext.
    pub fn backup_facts(
        &self,
        record: &PartitionRecord,
        plaintext_len: u64,
        object_count: u64,
    ) -> BackupFacts {
        BackupFacts {
            partition_id: record.id.as_str().to_string(),
            partition_name: record.name.clone(),
            hsm_id: self.keys().identity_public().fingerprint().0,
            created: self.clock().now_s(),
            // The log's next sequence number: rises with every logged event, so two backups of
            // one partition never share one.
            sequence: record.log.next_seq,
            object_count,
            plaintext_len,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Checks a backup header before any upload: made by this HSM for `record`'s partition,
    /// within its quota and object limit, and as long as announced.
    pub fn check_backup_header(
        &self,
        record: &PartitionRecord,
        header: &usb_backup::Header,
        file_len: u64,
    ) -> Result<(), ServiceError> {
        self.check_upload_header(record, header, file_len, None)
    }

    /// [`Hsm::check_backup_header`], or for a migration: then the header may name another HSM
    /// and another partition, but it must be signed by the source key the PSO supplied.
    pub fn check_upload_header(
        &self,
        record: &PartitionRecord,
        header: &usb_backup::Header,
        file_len: u64,
        migration: Option<&Migration>,
    ) -> Result<(), ServiceError> {
        let facts = header.facts();
        match migration {
            None if facts.partition_id != record.id.as_str() => {
                return Err(refused(BackupProblem::OtherPartition));
            }
            None if header.hsm_signing_key() != self.keys().audit_public().to_bytes() => {
                return Err(refused(BackupProblem::OtherHsm));
            }
            Some(m) if header.hsm_signing_key() != m.source_key => {
                return Err(refused(BackupProblem::SourceKeyMismatch));
            }
            _ => {}
        }
        let over_objects = record
            .config
            .quota
            .object_limit
            .is_some_and(|limit| facts.object_count > u64::from(limit));
        if over_objects || facts.plaintext_len > plaintext_bound(&record.config) {
            return Err(refused(BackupProblem::OverQuota));
        }
        if header.layout().file_len() != file_len {
            return Err(refused(BackupProblem::Malformed));
        }
        Ok(())
    }

    /// Decrypts and checks a whole uploaded backup for `record`'s partition: the header (as
    /// [`Hsm::check_backup_header`]), the data key unwrapped with this HSM's backup key, every
    /// chunk and the trailer, every record, and the quota. Nothing is changed.
    pub fn open_backup(
        &self,
        record: &PartitionRecord,
        file: &[u8],
    ) -> Result<OpenedBackup, ServiceError> {
        self.open_upload(record, file, None)
    }

    /// [`Hsm::open_backup`], or for a migration: the trailer verified under the source key,
    /// the data key opened from its re-wrapping to this HSM, the records sealed for `record`'s
    /// partition whichever partition the backup was of.
    pub fn open_upload(
        &self,
        record: &PartitionRecord,
        file: &[u8],
        migration: Option<&Migration>,
    ) -> Result<OpenedBackup, ServiceError> {
        let signer = match migration {
            None => self.keys().audit_public(),
            Some(m) => ed25519_dalek::VerifyingKey::from_bytes(&m.source_key)
                .map_err(|_| refused(BackupProblem::SourceKeyMismatch))?,
        };
        let reader = BackupReader::open(file, &signer).map_err(rejected)?;
        let header = reader.header().clone();
        self.check_upload_header(record, &header, file.len() as u64, migration)?;
        let backup_secret = self.keys().backup_secret();
        let key = match migration {
            None => header.unwrap_for_hsm(backup_secret).map_err(rejected)?,
            Some(m) => header
                .unwrap_migrated(backup_secret, &m.wrapped_key)
                .map_err(|_| refused(BackupProblem::MigrationKey))?,
        };
        let mut decrypting = reader.decrypt(key).map_err(rejected)?;
        // Records are decoded as the chunks decrypt, one record in memory at a time; nothing
        // decoded counts before the end of the plaintext, which the reader gives only once the
        // trailer, chain and signature verified.
        let (partition, keys) =
            self.decode_plaintext(record, &mut decrypting, migration.is_some())?;
        decrypting.finish().map_err(rejected)?;
        if keys.len() as u64 != header.facts().object_count {
            return Err(refused(BackupProblem::Malformed));
        }
        check_quota(&record.config, &keys)?;
        Ok(OpenedBackup {
            header_hash: header.hash(),
            created_unix: header.facts().created,
            sequence: header.facts().sequence,
            partition,
            keys,
        })
    }

    /// Decodes the plaintext as it is read, one bounded record at a time, and seals each key
    /// under the master key for `record`'s partition (a backup of another partition only in a
    /// migration, `other_partition`).
    fn decode_plaintext(
        &self,
        record: &PartitionRecord,
        mut plain: impl std::io::Read,
        other_partition: bool,
    ) -> Result<(PartitionItem, Vec<KeyRecord>), ServiceError> {
        let malformed = || refused(BackupProblem::Malformed);
        let mut head = [0u8; PAYLOAD_MAGIC.len() + 2];
        plain.read_exact(&mut head).map_err(short_read)?;
        if head[..8] != PAYLOAD_MAGIC || head[8..] != PAYLOAD_VERSION.to_le_bytes() {
            return Err(malformed());
        }
        // One record's bytes (plaintext: wiped), reused for every record.
        let mut body = Zeroizing::new(Vec::new());
        let mut next_record = |body: &mut Zeroizing<Vec<u8>>| -> Result<(), ServiceError> {
            let mut len = [0u8; 4];
            plain.read_exact(&mut len).map_err(short_read)?;
            let len = u32::from_le_bytes(len) as usize;
            if len > MAX_RECORD_LEN {
                return Err(malformed());
            }
            body.resize(len, 0);
            plain.read_exact(body).map_err(short_read)
        };
        next_record(&mut body)?;
        let Ok(Item::Partition(partition)) = postcard::from_bytes(&body) else {
            return Err(malformed());
        };
        if partition.id != record.id && !other_partition {
            return Err(refused(BackupProblem::OtherPartition));
        }
        let mut keys: Vec<KeyRecord> = Vec::new();
        loop {
            next_record(&mut body)?;
            match postcard::from_bytes(&body).map_err(|_| malformed())? {
                Item::Key { summary, material } => {
                    if keys.last().is_some_and(|k| k.summary.id >= summary.id) {
                        return Err(malformed());
                    }
                    let material =
                        crypto::import_plain(summary.kind, material).map_err(|_| malformed())?;
                    // A restored key comes back untrusted as a wrapping key: the backup does not
                    // carry the officers' trust mark, so they mark it again (a logged PSO act).
                    let sealed = crypto::seal_object(
                        self.keys().master(),
                        crypto::ObjectBinding {
                            partition: &record.id,
                            key_id: summary.id,
                            attributes: summary.attributes,
                        },
                        &material,
                        false,
                    )?;
                    keys.push(KeyRecord { summary, sealed });
                }
                Item::End { keys: count } if count == keys.len() as u64 => break,
                _ => return Err(malformed()),
            }
        }
        let mut extra = [0u8; 1];
        match plain.read(&mut extra) {
            Ok(0) => Ok((partition, keys)),
            Ok(_) => Err(malformed()),
            Err(e) => Err(short_read(e)),
        }
    }

    /// What restoring `backup` would change in `record`'s partition.
    pub fn restore_diff(
        &self,
        record: &PartitionRecord,
        backup: &OpenedBackup,
    ) -> Result<RestoreDiff, ServiceError> {
        let mut now: BTreeMap<KeyId, bool> = BTreeMap::new();
        self.store().read(|tx| {
            tx.for_each_key(&record.id, |k| {
                now.insert(k.summary.id, k.summary.state.is_invalidated());
            })
            .map_err(ServiceError::from)
        })?;
        let mut diff = RestoreDiff {
            header_hash: backup.header_hash,
            created_unix: backup.created_unix,
            sequence: backup.sequence,
            objects_in_backup: backup.keys.len() as u64,
            objects_now: now.len() as u64,
            returning: KeyIdList::default(),
            removed: KeyIdList::default(),
            into_bin: KeyIdList::default(),
            out_of_bin: KeyIdList::default(),
            config: restored_config(&record.config, &backup.partition.config)
                .map(|c| record.config.diff(&c))
                .unwrap_or_default(),
        };
        let mut in_backup = BTreeMap::new();
        for key in &backup.keys {
            let binned = key.summary.state.is_invalidated();
            in_backup.insert(key.summary.id, binned);
            match now.get(&key.summary.id) {
                None => push(&mut diff.returning, key.summary.id),
                Some(false) if binned => push(&mut diff.into_bin, key.summary.id),
                Some(true) if !binned => push(&mut diff.out_of_bin, key.summary.id),
                Some(_) => {}
            }
        }
        for id in now.keys().filter(|id| !in_backup.contains_key(id)) {
            push(&mut diff.removed, *id);
        }
        Ok(diff)
    }

    /// Replaces the partition's key objects and configuration with `backup`'s, in the
    /// caller's transaction (which also appends the restore's entry). The quota and licences
    /// stay as the HSM owner set them; the key id counter never goes back.
    pub(crate) fn apply_restore(
        &self,
        tx: &mut WriteTxn<'_>,
        record: &mut PartitionRecord,
        backup: &OpenedBackup,
    ) -> Result<(), ServiceError> {
        check_quota(&record.config, &backup.keys)?;
        let config = restored_config(&record.config, &backup.partition.config)?;
        let mut old = Vec::new();
        tx.for_each_key(&record.id, |k| old.push(k.summary.id))?;
        for id in old {
            tx.delete_key(&record.id, id)?;
        }
        let mut usage = PartitionUsage::default();
        let mut highest = 0;
        for key in &backup.keys {
            tx.put_key(&record.id, key)?;
            usage.bytes_used += key.summary.size_bytes;
            usage.objects_used += 1;
            if key.summary.state.is_invalidated() {
                usage.invalidated_objects += 1;
            }
            highest = highest.max(key.summary.id.0);
        }
        record.usage = usage;
        record.config = config;
        record.next_key_id = record
            .next_key_id
            .max(backup.partition.next_key_id)
            .max(highest + 1);
        Ok(())
    }
}

#[cfg(feature = "test-support")]
impl Hsm {
    /// Stores `count` fresh AES-256 keys in partition `id` directly, in large transactions and
    /// without log entries: only for benchmarks that need a full partition (a 120 MB one holds
    /// about 1.8 million keys) in seconds. Built only with the `test-support` feature, never
    /// in the HSM binary.
    pub fn fill_for_benchmarks(&self, id: &PartitionId, count: u64) -> Result<(), ServiceError> {
        use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, KeyState};
        let attributes = KeyAttributes {
            extractable: true,
            sensitive: false,
            modifiable: true,
        };
        let mut done = 0;
        while done < count {
            let batch = (count - done).min(50_000);
            self.modify(id, |hsm, tx, record| {
                for _ in 0..batch {
                    let key_id = KeyId(record.next_key_id);
                    let material = crypto::KeyMaterial::generate(KeyKind::Aes256)?;
                    let binding = crypto::ObjectBinding {
                        partition: id,
                        key_id,
                        attributes,
                    };
                    let sealed =
                        crypto::seal_object(hsm.keys().master(), binding, &material, false)?;
                    let summary = KeyObjectSummary {
                        id: key_id,
                        label: KeyLabel::new(format!("bench-{}", key_id.0))
                            .map_err(|_| internal())?,
                        kind: KeyKind::Aes256,
                        attributes,
                        created_unix: 1,
                        size_bytes: material.size_bytes(),
                        state: KeyState::Active,
                    };
                    tx.put_key(id, &KeyRecord { summary, sealed })?;
                    record.usage.objects_used += 1;
                    record.usage.bytes_used += material.size_bytes();
                    record.next_key_id += 1;
                }
                Ok(())
            })?;
            done += batch;
        }
        Ok(())
    }
}

/// The configuration a restore applies: the backup's parameters, with the quota and licences
/// the HSM owner set now, at the next revision; refused if that is not a valid configuration.
fn restored_config(
    current: &PartitionConfig,
    backup: &PartitionConfig,
) -> Result<PartitionConfig, ServiceError> {
    let mut config = backup.clone();
    config.quota = current.quota;
    config.ska.licensed = current.ska.licensed;
    config.crypto_currency.licensed = current.crypto_currency.licensed;
    config.ska.enabled &= config.ska.licensed;
    config.crypto_currency.enabled &= config.crypto_currency.licensed;
    config.revision = current.revision + 1;
    config
        .validate()
        .map_err(|_| refused(BackupProblem::Malformed))?;
    Ok(config)
}

fn check_quota(config: &PartitionConfig, keys: &[KeyRecord]) -> Result<(), ServiceError> {
    let bytes: u64 = keys.iter().map(|k| k.summary.size_bytes).sum();
    let over_objects = config
        .quota
        .object_limit
        .is_some_and(|limit| keys.len() as u64 > u64::from(limit));
    if over_objects || bytes > config.quota.size_bytes {
        return Err(refused(BackupProblem::OverQuota));
    }
    Ok(())
}

fn push(list: &mut KeyIdList, id: KeyId) {
    list.count += 1;
    if list.first.len() < MAX_DIFF_KEYS {
        list.first.push(id);
    }
}

/// A plaintext that ended early is malformed, unless reading it failed because the container
/// was rejected (a chunk that does not authenticate, a bad trailer): then that is the problem.
fn short_read(e: std::io::Error) -> ServiceError {
    match e
        .into_inner()
        .map(|inner| inner.downcast::<usb_backup::BackupError>())
    {
        Some(Ok(backup)) => rejected(*backup),
        _ => refused(BackupProblem::Malformed),
    }
}

/// A container rejection as the link's typed problem (the detail stays in the HSM).
fn rejected(e: usb_backup::BackupError) -> ServiceError {
    use usb_backup::Rejection;
    let problem = match e.rejection() {
        Some(Rejection::WrongHsm { .. }) => BackupProblem::OtherHsm,
        Some(
            Rejection::BadMagic
            | Rejection::UnsupportedVersion { .. }
            | Rejection::HeaderField { .. },
        ) => BackupProblem::Malformed,
        _ => BackupProblem::NotAuthentic,
    };
    refused(problem)
}

#[cfg(test)]
mod tests {
    use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, KeyState};

    use super::*;
    use crate::crypto::HsmKeys;
    use crate::service::Clock;
    use crate::store::Store;

    fn hsm() -> (Hsm, PartitionId) {
        let hsm = Hsm::with_parts(
            HsmKeys::generate().unwrap(),
            Store::in_memory().unwrap(),
            Clock::system(),
        );
        let id = PartitionId::new("p").unwrap();
        hsm.create_partition(id.clone(), "P", ServiceTier::Economy)
            .unwrap();
        (hsm, id)
    }

    /// Stores a new key directly (the application's path is tested elsewhere).
    fn put(hsm: &Hsm, id: &PartitionId, n: u64, binned: bool) {
        let material = crypto::KeyMaterial::generate(KeyKind::Ed25519).unwrap();
        let attributes = KeyAttributes {
            extractable: false,
            sensitive: true,
            modifiable: false,
        };
        let binding = crypto::ObjectBinding {
            partition: id,
            key_id: KeyId(n),
            attributes,
        };
        let sealed = crypto::seal_object(hsm.keys().master(), binding, &material, false).unwrap();
        let summary = KeyObjectSummary {
            id: KeyId(n),
            label: KeyLabel::new(format!("k{n}")).unwrap(),
            kind: KeyKind::Ed25519,
            attributes,
            created_unix: 1,
            size_bytes: material.size_bytes(),
            state: if binned {
                KeyState::Invalidated {
                    invalidated_unix: 2,
                }
            } else {
                KeyState::Active
            },
        };
        hsm.modify(id, |_, tx, record| {
            tx.put_key(id, &KeyRecord { summary, sealed })?;
            record.usage.objects_used += 1;
            record.usage.bytes_used += material.size_bytes();
            record.usage.invalidated_objects += u64::from(binned);
            record.next_key_id = record.next_key_id.max(n + 1);
            Ok(())
        })
        .unwrap();
    }

    fn opened(hsm: &Hsm, id: &PartitionId) -> OpenedBackup {
        let (plain, record, _) = hsm.backup_plaintext(id).unwrap();
        let (partition, keys) = hsm.decode_plaintext(&record, &plain[..], false).unwrap();
        OpenedBackup {
            header_hash: [0; 32],
            created_unix: 0,
            sequence: 0,
            partition,
            keys,
        }
    }

    #[test]
    fn a_swap_that_fails_midway_leaves_the_partition_as_it_was() {
        let (hsm, id) = hsm();
        put(&hsm, &id, 1, false);
        put(&hsm, &id, 2, true);
        let backup = opened(&hsm, &id);
        assert_eq!(backup.keys.len(), 2);
        put(&hsm, &id, 3, false);
        let before = (
            hsm.backup_plaintext(&id).unwrap().0,
            hsm.partition(&id).unwrap(),
        );

        // Every key deleted and the backup's stored, then a failure before the commit.
        let failed: Result<(), ServiceError> = hsm.store().write(|tx| {
            let mut record = tx.partition(&id)?.unwrap();
            hsm.apply_restore(tx, &mut record, &backup)?;
            tx.put_partition(&record)?;
            assert_eq!(hsm_keys_in(tx, &id), vec![1, 2], "the swap was made");
            Err(ServiceError::BadName)
        });
        assert!(failed.is_err());
        let after = (
            hsm.backup_plaintext(&id).unwrap().0,
            hsm.partition(&id).unwrap(),
        );
        assert_eq!(*before.0, *after.0);
        assert_eq!(before.1, after.1);

        // The same swap committed: the backup's keys, usage recomputed, ids never reused.
        hsm.modify(&id, |hsm, tx, record| {
            hsm.apply_restore(tx, record, &backup)
        })
        .unwrap();
        let record = hsm.partition(&id).unwrap();
        assert_eq!(hsm.key_ids(&id, None, 10).unwrap(), vec![1, 2]);
        assert_eq!(record.usage, hsm.usage(&id).unwrap());
        assert_eq!(record.usage.invalidated_objects, 1);
        assert_eq!(record.next_key_id, 4);
    }

    #[test]
    fn ten_thousand_keys_in_many_chunks_round_trip() {
        let (hsm, id) = hsm();
        for n in 1..=10_000 {
            put(&hsm, &id, n, n % 97 == 0);
        }
        let (plain, record, objects) = hsm.backup_plaintext(&id).unwrap();
        assert_eq!(objects, 10_000);
        // Streamed from the snapshot, the plaintext never sits whole in the HSM's memory: the
        // stream holds one page of records, a small part of the whole.
        let mut stream = PlaintextStream::new(&hsm, &id).unwrap();
        assert_eq!(stream.len(), plain.len() as u64);
        let mut streamed = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut streamed).unwrap();
        assert_eq!(streamed, *plain);
        assert!(
            stream.peak_buffered() < 64 * 1024 && plain.len() > 16 * stream.peak_buffered(),
            "peak {} of {} bytes",
            stream.peak_buffered(),
            plain.len()
        );
        // The smallest chunks, so that the keys span many (the HSM itself seals 1 MiB ones).
        let mut facts = hsm.backup_facts(&record, plain.len() as u64, objects);
        facts.chunk_size = usb_backup::container::MIN_CHUNK_SIZE;
        let chunks = (plain.len() as u64).div_ceil(u64::from(facts.chunk_size));
        assert!(chunks > 5, "{chunks} chunks");
        let recipients = Recipients::new(
            hsm.keys().backup_public(),
            &usb_backup::fuzzing::quorum_public_key(),
        )
        .unwrap();
        let signer = hsm.keys().audit_signing_key();
        let mut writer =
            usb_backup::BackupWriter::new(Vec::new(), facts, &recipients, signer).unwrap();
        writer.write_plaintext(&plain).unwrap();
        let (file, _) = writer.finish().unwrap();

        let backup = hsm.open_backup(&record, &file).unwrap();
        assert_eq!(backup.keys.len(), 10_000);
        let before: Vec<KeyRecord> = hsm
            .store()
            .read(|tx| Ok::<_, ServiceError>(tx.keys(&id, None, 20_000, |_| true)?.0))
            .unwrap();
        hsm.modify(&id, |hsm, tx, record| {
            hsm.apply_restore(tx, record, &backup)
        })
        .unwrap();
        let after: Vec<KeyRecord> = hsm
            .store()
            .read(|tx| Ok::<_, ServiceError>(tx.keys(&id, None, 20_000, |_| true)?.0))
            .unwrap();
        // Same summaries; the material re-sealed (fresh nonces) opens to the same key.
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after).step_by(499) {
            assert_eq!(b.summary, a.summary);
            let open = |k: &KeyRecord| {
                let binding = crypto::ObjectBinding {
                    partition: &id,
                    key_id: k.summary.id,
                    attributes: k.summary.attributes,
                };
                crypto::export_plain(
                    &crypto::open_object(hsm.keys().master(), binding, &k.sealed)
                        .unwrap()
                        .material,
                )
            };
            assert_eq!(*open(b), *open(a));
        }
        // One flipped bit in the middle chunk: nothing is opened.
        let mut damaged = file.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x40;
        assert!(matches!(
            hsm.open_backup(&record, &damaged),
            Err(ServiceError::Admin(hsm_link::message::AdminError::Backup(
                BackupProblem::NotAuthentic
            )))
        ));
    }

    #[test]
    fn a_plaintext_stream_reads_one_snapshot_while_writers_go_on() {
        let (hsm, id) = hsm();
        put(&hsm, &id, 1, false);
        let mut stream = PlaintextStream::new(&hsm, &id).unwrap();
        // Written after the snapshot: not in this backup, and the measured length holds.
        for n in 2..=400 {
            put(&hsm, &id, n, false);
        }
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut plain).unwrap();
        assert_eq!(plain.len() as u64, stream.len());
        let record = hsm.partition(&id).unwrap();
        let (_, keys) = hsm.decode_plaintext(&record, &plain[..], false).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(stream.key_count(), 1);
    }

    fn hsm_keys_in(tx: &WriteTxn<'_>, id: &PartitionId) -> Vec<u64> {
        let mut ids = Vec::new();
        tx.for_each_key(id, |k| ids.push(k.summary.id.0)).unwrap();
        ids
    }

    #[test]
    fn the_plaintext_parser_refuses_what_it_did_not_write() {
        let (hsm, id) = hsm();
        put(&hsm, &id, 1, false);
        let (plain, record, _) = hsm.backup_plaintext(&id).unwrap();
        assert!(hsm.decode_plaintext(&record, &plain[..], false).is_ok());
        let malformed = |bytes: &[u8]| {
            matches!(
                hsm.decode_plaintext(&record, bytes, false),
                Err(ServiceError::Admin(hsm_link::message::AdminError::Backup(
                    BackupProblem::Malformed
                )))
            )
        };
        // Every cut, a trailing byte, another magic or version, and a count that lies.
        for cut in 0..plain.len() {
            assert!(malformed(&plain[..cut]), "cut at {cut}");
        }
        let mut longer = plain.to_vec();
        longer.push(0);
        assert!(malformed(&longer));
        for at in [0, 8] {
            let mut other = plain.to_vec();
            other[at] ^= 1;
            assert!(malformed(&other), "byte {at}");
        }
        // Another partition's plaintext.
        let other = PartitionId::new("q").unwrap();
        hsm.create_partition(other.clone(), "Q", ServiceTier::Economy)
            .unwrap();
        let theirs = hsm.partition(&other).unwrap();
        assert!(matches!(
            hsm.decode_plaintext(&theirs, &plain[..], false),
            Err(ServiceError::Admin(hsm_link::message::AdminError::Backup(
                BackupProblem::OtherPartition
            )))
        ));
    }
}
