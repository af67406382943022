//! A restore's staging: the upload authenticated, decrypted and re-sealed as it arrives, into
//! the store's staging table, in buffers bounded by the chunk size whatever the backup's size.
//!
//! The link delivers the file in pieces ([`StagedRestore::push`]). Each container chunk is
//! decrypted (GCM authenticates it at its STREAM position) as soon as its last byte arrived; its
//! plaintext is cut into records, a record split across chunks carried over (at most
//! [`MAX_RECORD_LEN`]), and each key re-sealed under the master key for the target partition
//! and written to the staging table, one unsynced write transaction per chunk (a crash loses
//! staging, and the store drops it when it opens anyway). Nothing staged is trusted before
//! [`StagedRestore::finish`] has verified the trailer, signature and chain and the counts: a
//! commit requires it.
//!
//! A failure (a chunk that does not authenticate, a malformed record) is remembered, the
//! staging dropped and the rest of the upload discarded; the dry run reports it, as when the
//! HSM held the whole file.

use std::collections::VecDeque;
use std::io::Read;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use hsm_link::domain::{KeyId, KeyObjectSummary, PartitionId};
use hsm_link::message::{AdminError, BackupProblem};
use usb_backup::container::{BackupReader, DecryptingReader, Header, Layout};
use zeroize::Zeroizing;

use super::{Item, MAX_RECORD_LEN, Migration, PAYLOAD_MAGIC, PAYLOAD_VERSION, PartitionItem};
use super::{internal, refused, rejected};
use crate::crypto;
use crate::model::{KeyRecord, PartitionRecord};
use crate::service::{Hsm, ServiceError};
use crate::store::WriteTxn;

/// The uploaded bytes not decrypted yet, shared with the decrypting reader that reads them: at
/// most a chunk and one link piece (and at the end the trailer).
#[derive(Clone, Default)]
struct Feed(Arc<Mutex<VecDeque<u8>>>);

impl Feed {
    fn push(&self, bytes: &[u8]) {
        if let Ok(mut q) = self.0.lock() {
            q.extend(bytes);
        }
    }

    fn len(&self) -> usize {
        self.0.lock().map_or(0, |q| q.len())
    }
}

impl Read for Feed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut q = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("restore feed poisoned"))?;
        q.read(out)
    }
}

/// What the staged key objects add up to (for the quota, the usage and the diff).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StagedTotals {
    /// Key objects.
    pub objects: u64,
    /// Their quota size.
    pub bytes: u64,
    /// Those in the bin.
    pub invalidated: u64,
    /// The highest key id.
    pub highest: u64,
}

/// The next piece of the plaintext the record decoder waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// The magic and version.
    Head,
    /// A record's 4-byte length.
    Len,
    /// A record's body of this length.
    Body(usize),
    /// Nothing: the `End` record was read.
    Done,
}

/// Cuts the plaintext, as chunks of it decrypt, into records; a record split across chunks is
/// carried over (plaintext: wiped).
struct Records {
    want: Want,
    carry: Zeroizing<Vec<u8>>,
    /// The partition the records must be of (`None` in a migration: any).
    expect: Option<PartitionId>,
    /// The most key records the header announced.
    announced: u64,
    partition: Option<PartitionItem>,
    totals: StagedTotals,
    last: Option<KeyId>,
    peak_carry: usize,
}

/// Where the record decoder sends each key record: its summary and plain material.
type StageKey<'a> = &'a mut dyn FnMut(KeyObjectSummary, &[u8]) -> Result<(), ServiceError>;

fn malformed() -> ServiceError {
    refused(BackupProblem::Malformed)
}

impl Records {
    fn new(expect: Option<PartitionId>, announced: u64) -> Self {
        Records {
            want: Want::Head,
            carry: Zeroizing::new(Vec::new()),
            expect,
            announced,
            partition: None,
            totals: StagedTotals::default(),
            last: None,
            peak_carry: 0,
        }
    }

    fn unit_len(&self) -> Option<usize> {
        match self.want {
            Want::Head => Some(PAYLOAD_MAGIC.len() + 2),
            Want::Len => Some(4),
            Want::Body(n) => Some(n),
            Want::Done => None,
        }
    }

    /// Takes the next plaintext bytes; each key record goes to `stage`.
    fn feed(&mut self, mut plain: &[u8], stage: StageKey<'_>) -> Result<(), ServiceError> {
        loop {
            let Some(want) = self.unit_len() else {
                // Anything after `End` is refused.
                return if plain.is_empty() {
                    Ok(())
                } else {
                    Err(malformed())
                };
            };
            if self.carry.is_empty() && plain.len() >= want {
                let (unit, rest) = plain.split_at(want);
                self.unit(unit, stage)?;
                plain = rest;
            } else if plain.is_empty() {
                return Ok(());
            } else {
                let take = (want - self.carry.len()).min(plain.len());
                self.carry.extend_from_slice(&plain[..take]);
                self.peak_carry = self.peak_carry.max(self.carry.len());
                plain = &plain[take..];
                if self.carry.len() == want {
                    let carry = std::mem::take(&mut self.carry);
                    let result = self.unit(&carry, stage);
                    self.carry = carry;
                    self.carry.clear();
                    result?;
                }
            }
        }
    }

    fn unit(&mut self, unit: &[u8], stage: StageKey<'_>) -> Result<(), ServiceError> {
        match self.want {
            Want::Head => {
                if unit[..8] != PAYLOAD_MAGIC || unit[8..] != PAYLOAD_VERSION.to_le_bytes() {
                    return Err(malformed());
                }
                self.want = Want::Len;
            }
            Want::Len => {
                let len = u32::from_le_bytes(unit.try_into().map_err(|_| malformed())?) as usize;
                if len > MAX_RECORD_LEN {
                    return Err(malformed());
                }
                self.want = Want::Body(len);
            }
            Want::Body(_) => {
                self.want = Want::Len;
                self.record(unit, stage)?;
            }
            Want::Done => return Err(malformed()),
        }
        Ok(())
    }

    fn record(&mut self, body: &[u8], stage: StageKey<'_>) -> Result<(), ServiceError> {
        let item: Item<'_> = postcard::from_bytes(body).map_err(|_| malformed())?;
        match (self.partition.is_some(), item) {
            (false, Item::Partition(partition)) => {
                if self.expect.as_ref().is_some_and(|id| *id != partition.id) {
                    return Err(refused(BackupProblem::OtherPartition));
                }
                self.partition = Some(partition);
            }
            (true, Item::Key { summary, material }) => {
                // In id order, and never more than announced: staging stays within the
                // header's bounds, which the quota bounded.
                if self.last.is_some_and(|last| last >= summary.id)
                    || self.totals.objects >= self.announced
                {
                    return Err(malformed());
                }
                self.last = Some(summary.id);
                self.totals.objects += 1;
                self.totals.bytes = self.totals.bytes.saturating_add(summary.size_bytes);
                self.totals.invalidated += u64::from(summary.state.is_invalidated());
                self.totals.highest = self.totals.highest.max(summary.id.0);
                stage(summary, material)?;
            }
            (true, Item::End { keys }) if keys == self.totals.objects => self.want = Want::Done,
            _ => return Err(malformed()),
        }
        Ok(())
    }
}

/// A restore upload at the HSM: staged as it arrives, verified by [`StagedRestore::finish`],
/// applied by [`StagedRestore::apply`]. Dropping it drops its staging.
pub struct StagedRestore<H: Deref<Target = Hsm>> {
    pub(super) hsm: H,
    /// The partition restored into.
    pub(super) partition: PartitionId,
    /// This upload's number in the staging table.
    pub(super) upload: u64,
    header: Header,
    layout: Layout,
    received: u64,
    feed: Feed,
    reader: Option<DecryptingReader<Feed>>,
    /// Chunks decrypted and staged.
    decrypted: u64,
    records: Records,
    failure: Option<BackupProblem>,
    verified: bool,
    peak_feed: usize,
}

impl<H: Deref<Target = Hsm>> std::fmt::Debug for StagedRestore<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedRestore")
            .field("partition", &self.partition)
            .field("upload", &self.upload)
            .field("received", &self.received)
            .field("decrypted", &self.decrypted)
            .field("failure", &self.failure)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

impl<H: Deref<Target = Hsm>> StagedRestore<H> {
    /// Begins the upload of a backup whose header (`header_bytes`, parsed as `header`) the
    /// caller checked for `record`'s partition ([`Hsm::check_upload_header`]). The data key is
    /// unwrapped here (for a migration, from its re-wrapping); a failure is reported by the dry
    /// run, as every failure of the file's contents.
    pub fn begin(
        hsm: H,
        record: &PartitionRecord,
        header: Header,
        header_bytes: &[u8],
        migration: Option<&Migration>,
    ) -> Result<Self, ServiceError> {
        let upload = hsm.store().next_upload();
        let layout = header.layout();
        let records = Records::new(
            migration.is_none().then(|| record.id.clone()),
            header.facts().object_count,
        );
        let mut staged = StagedRestore {
            hsm,
            partition: record.id.clone(),
            upload,
            header,
            layout,
            received: header_bytes.len() as u64,
            feed: Feed::default(),
            reader: None,
            decrypted: 0,
            records,
            failure: None,
            verified: false,
            peak_feed: 0,
        };
        staged.feed.push(header_bytes);
        let opened = staged.open_reader(migration);
        staged.settle(opened)?;
        Ok(staged)
    }

    fn open_reader(&mut self, migration: Option<&Migration>) -> Result<(), ServiceError> {
        let signer = match migration {
            None => self.hsm.keys().audit_public(),
            Some(m) => ed25519_dalek::VerifyingKey::from_bytes(&m.source_key)
                .map_err(|_| refused(BackupProblem::SourceKeyMismatch))?,
        };
        let reader = BackupReader::open(self.feed.clone(), &signer).map_err(rejected)?;
        if reader.header() != &self.header {
            return Err(malformed());
        }
        let backup_secret = self.hsm.keys().backup_secret();
        let key = match migration {
            None => self
                .header
                .unwrap_for_hsm(backup_secret)
                .map_err(rejected)?,
            Some(m) => self
                .header
                .unwrap_migrated(backup_secret, &m.wrapped_key)
                .map_err(|_| refused(BackupProblem::MigrationKey))?,
        };
        self.reader = Some(reader.decrypt(key).map_err(rejected)?);
        Ok(())
    }

    /// The backup's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The partition as the backup records it (once its first record was read).
    pub fn partition_item(&self) -> Option<&PartitionItem> {
        self.records.partition.as_ref()
    }

    /// What the staged keys add up to.
    pub fn totals(&self) -> StagedTotals {
        self.records.totals
    }

    /// Whether [`StagedRestore::finish`] verified the whole backup.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The most bytes the upload held in memory at once: the undecrypted bytes, a chunk being
    /// decrypted and a record carried across chunks. For the tests that show memory flat.
    pub fn peak_buffered(&self) -> usize {
        self.peak_feed + self.layout.chunk_stored_len(0) + self.records.peak_carry
    }

    /// Takes the next bytes of the file: every chunk now complete is decrypted and staged.
    /// More bytes than the header announced, or bytes after the dry run, are out of order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ServiceError> {
        if self.verified || self.received + bytes.len() as u64 > self.layout.file_len() {
            return Err(refused(BackupProblem::UploadOutOfOrder));
        }
        self.received += bytes.len() as u64;
        if self.failure.is_some() {
            return Ok(());
        }
        self.feed.push(bytes);
        self.peak_feed = self.peak_feed.max(self.feed.len());
        let staged = self.stage_ready();
        self.settle(staged)
    }

    /// Decrypts and stages every chunk whose bytes are all here.
    fn stage_ready(&mut self) -> Result<(), ServiceError> {
        while self.decrypted < self.layout.chunks
            && self.feed.len() >= self.layout.chunk_stored_len(self.decrypted)
        {
            let reader = self.reader.as_mut().ok_or_else(internal)?;
            let plain = reader
                .next_chunk()
                .map_err(rejected)?
                .ok_or_else(internal)?;
            self.decrypted += 1;
            let (hsm, records) = (&self.hsm, &mut self.records);
            let (partition, upload) = (&self.partition, self.upload);
            hsm.store().write_unsynced(|tx| {
                records.feed(plain, &mut |summary, material| {
                    stage_key(hsm, tx, partition, upload, summary, material)
                })
            })?;
        }
        Ok(())
    }

    /// A refusal of the backup's contents is remembered and its staging dropped (reported by
    /// the dry run); any other error is the caller's.
    fn settle(&mut self, result: Result<(), ServiceError>) -> Result<(), ServiceError> {
        match result {
            Ok(()) => Ok(()),
            Err(ServiceError::Admin(AdminError::Backup(problem))) => {
                self.failure.get_or_insert(problem);
                self.reader = None;
                self.verified = false;
                self.clear()
            }
            Err(other) => Err(other),
        }
    }

    fn clear(&self) -> Result<(), ServiceError> {
        self.hsm
            .store()
            .write_unsynced(|tx| tx.clear_staged(&self.partition, self.upload))
            .map_err(ServiceError::from)
    }

    /// Completes the check once the whole file arrived: the trailer (signature, chain, chunk
    /// count), the end record, the key count the header announced, and `record`'s quota and
    /// object limit. Any refusal of the contents, here or while staging, is returned now.
    pub fn finish(&mut self, record: &PartitionRecord) -> Result<(), ServiceError> {
        if self.received != self.layout.file_len() {
            return Err(refused(BackupProblem::Incomplete));
        }
        if self.failure.is_none() && !self.verified {
            let checked = self.check_complete(record);
            self.settle(checked)?;
        }
        match self.failure {
            Some(problem) => Err(refused(problem)),
            None => {
                self.verified = true;
                Ok(())
            }
        }
    }

    fn check_complete(&mut self, record: &PartitionRecord) -> Result<(), ServiceError> {
        let reader = self.reader.as_mut().ok_or_else(internal)?;
        if reader.next_chunk().map_err(rejected)?.is_some() || self.decrypted != self.layout.chunks
        {
            return Err(internal());
        }
        if self.records.want != Want::Done
            || self.records.totals.objects != self.header.facts().object_count
        {
            return Err(malformed());
        }
        super::restore::check_quota(&record.config, &self.records.totals)
    }
}

impl<H: Deref<Target = Hsm>> Drop for StagedRestore<H> {
    fn drop(&mut self) {
        // Best effort: what a failure here leaves, the store drops when it next opens.
        let _ = self.clear();
    }
}

/// Re-seals one key of the backup for the target partition and stages it.
fn stage_key(
    hsm: &Hsm,
    tx: &mut WriteTxn<'_>,
    partition: &PartitionId,
    upload: u64,
    summary: KeyObjectSummary,
    material: &[u8],
) -> Result<(), ServiceError> {
    let material = crypto::import_plain(summary.kind, material).map_err(|_| malformed())?;
    // A restored key comes back untrusted as a wrapping key: the backup does not carry the
    // officers' trust mark, so they mark it again (a logged PSO act).
    let sealed = crypto::seal_object(
        hsm.keys().master(),
        crypto::ObjectBinding {
            partition,
            key_id: summary.id,
            attributes: summary.attributes,
        },
        &material,
        false,
    )?;
    tx.put_staged_key(partition, upload, &KeyRecord { summary, sealed })?;
    Ok(())
}

/// Decodes a whole plaintext for `record`'s partition in pieces of `piece` bytes, without a
/// container or staging: the record parser's own tests.
#[cfg(test)]
pub(super) fn decode_plaintext(
    hsm: &Hsm,
    record: &PartitionRecord,
    plain: &[u8],
    piece: usize,
) -> Result<(PartitionItem, StagedTotals), ServiceError> {
    let _ = hsm;
    let mut records = Records::new(Some(record.id.clone()), u64::MAX);
    for part in plain.chunks(piece.max(1)) {
        records.feed(part, &mut |summary, material| {
            crypto::import_plain(summary.kind, material)
                .map(|_| ())
                .map_err(|_| malformed())
        })?;
    }
    match (records.want, records.partition) {
        (Want::Done, Some(partition)) => Ok((partition, records.totals)),
        _ => Err(malformed()),
    }
}
