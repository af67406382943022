//! Sealing: a partition's backup plaintext streamed from one store snapshot a page of keys at
//! a time, and what the container's header says of it.

use std::ops::Deref;

use hsm_link::domain::{KeyId, PartitionId};
use usb_backup::{BackupFacts, DEFAULT_CHUNK_SIZE, Recipients};
use zeroize::Zeroizing;

use super::{
    Item, PAYLOAD_MAGIC, PAYLOAD_VERSION, PartitionItem, encode, internal, push_record, refused,
};
use crate::crypto;
use crate::model::{KeyRecord, PartitionRecord};
use crate::service::{Hsm, ServiceError};
use crate::store::ReadTxn;
use hsm_link::message::BackupProblem;

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
}

#[cfg(feature = "test-support")]
impl Hsm {
    /// Stores `count` fresh AES-256 keys in partition `id` directly, in large transactions and
    /// without log entries: only for benchmarks that need a full partition (a 120 MB one holds
    /// about 1.8 million keys) in seconds. Built only with the `test-support` feature, never
    /// in the HSM binary.
    pub fn fill_for_benchmarks(&self, id: &PartitionId, count: u64) -> Result<(), ServiceError> {
        use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, KeyObjectSummary, KeyState};
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
