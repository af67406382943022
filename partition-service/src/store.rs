//! The HSM's store: one redb file. Every change is one write transaction, so a crash at any
//! point leaves the previous state or the new one, never a mix.

mod key_order;

use std::path::Path;

use hsm_link::domain::{KeyId, KeyObjectSummary, PartitionId};
use hsm_link::message::KeyQuery;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{self, KeyRecord, PartitionRecord, RecordError, SoRegistry, TerminalSeen};

/// The store file inside an HSM's data directory.
pub const STORE_FILE: &str = "hsm.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PARTITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("partitions");
const KEYS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("keys");
const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");
/// Checkpoints, keyed by the sequence number of the last entry they cover.
const CHECKPOINTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("checkpoints");
/// When each pinned terminal paired and last opened a session, keyed by partition and the
/// terminal's fingerprint. Kept beside the partition record (not in it), so that stores written
/// before it existed read unchanged; a terminal without an entry paired before it existed.
const TERMINALS: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("terminals");
/// Key objects of a restore being uploaded, re-sealed as its chunks decrypt, keyed by
/// partition, upload and key id. Never read by the application or a key listing: only the
/// restore's dry run (its diff) and its commit, which moves them into `keys` in the same
/// transaction that deletes the partition's keys. Cleared on a new upload, at session end,
/// after the commit and whenever the store opens (leftovers of a crash).
const STAGED_KEYS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("staged-keys");
/// The redb cache (read cache and write buffer, half each at most): bounded, so that a
/// restore's one large transaction, or a backup's scan of a large partition, runs in flat
/// memory (DESIGN.md: < 32 MiB peak for a 1 GiB partition); redb writes the excess of a
/// transaction in progress to the file, and the operating system's page cache still serves
/// reads.
const CACHE_BYTES: usize = 8 << 20;

const SO_REGISTRY: &str = "so-registry";
/// Whether card sets may hold soft cards: one byte, 1 for yes; absent means no.
const SOFT_CARDS: &str = "soft-cards-allowed";
const STORE_FORMAT: &str = "store-format";
/// Version 2 added the key listing index ([`key_order`]); a version 1 store gets it built on
/// its first open, and a version 1 binary then refuses the store rather than write keys
/// without their index entries.
const STORE_FORMAT_VERSION: &[u8] = b"2";
const STORE_FORMAT_WITHOUT_KEY_INDEX: &[u8] = b"1";

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, lock).
    #[error("the HSM store failed: {0}")]
    Db(Box<redb::Error>),
    /// A record could not be read.
    #[error("a stored {what} cannot be read: {source}")]
    Record {
        /// Which record.
        what: &'static str,
        /// Why.
        source: RecordError,
    },
    /// The store was written by an incompatible version.
    #[error("the store's format is not one this version reads; use the version that wrote it")]
    Format,
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Db(Box::new(e.into()))
    }
}

/// The store.
pub struct Store {
    db: Database,
    durable: bool,
    /// The last restore upload's number (staging rows are keyed by it; none survive a start).
    uploads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (or creates) the store file in `dir`. Every commit is durable (fsync'd) before
    /// it returns ([`Store::durability`]), and the directory is fsync'd after the open, so that
    /// a store file just created survives a power cut too, not only the file's contents.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(STORE_FILE))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(redb::Error::from)?;
        Self::init(db, true)
    }

    /// A store in memory, gone with the process: the terminal's embedded demo.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, true)
    }

    /// Opens the store file in `dir` with commits that are atomic but not flushed to disk one by
    /// one: for benchmarks that fill a store with a million entries. Never for an HSM that must
    /// survive a power cut.
    pub fn open_fast_for_benchmarks(dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(STORE_FILE))?;
        Self::init(db, false)
    }

    fn init(db: Database, durable: bool) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let existing = meta.get(STORE_FORMAT)?.map(|v| v.value().to_vec());
            match existing {
                None => {
                    meta.insert(STORE_FORMAT, STORE_FORMAT_VERSION)?;
                }
                Some(v) if v == STORE_FORMAT_VERSION => {}
                Some(v) if v == STORE_FORMAT_WITHOUT_KEY_INDEX => {
                    build_key_index(&txn)?;
                    meta.insert(STORE_FORMAT, STORE_FORMAT_VERSION)?;
                }
                Some(_) => return Err(StoreError::Format),
            }
            txn.open_table(PARTITIONS)?;
            txn.open_table(KEYS)?;
            txn.open_table(LOG)?;
            txn.open_table(CHECKPOINTS)?;
            txn.open_table(TERMINALS)?;
            txn.open_table(key_order::KEY_ORDER)?;
            // A restore's staging left by a crash: never applied, so dropped.
            txn.delete_table(STAGED_KEYS)?;
            txn.open_table(STAGED_KEYS)?;
        }
        txn.commit()?;
        Ok(Store {
            db,
            durable,
            uploads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Runs `f` in one write transaction; commits only if it returns `Ok`. An error of `f`
    /// leaves the store exactly as it was.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = self.db.begin_write().map_err(StoreError::from)?;
        // Set on every transaction, so the mode `durability` reports is the mode used.
        txn.set_durability(self.durability())
            .map_err(StoreError::from)?;
        let value = {
            let mut w = WriteTxn { txn: &txn };
            f(&mut w)?
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// [`Store::write`] with a commit that is atomic but not flushed: only for a restore's
    /// staging, which a crash may lose (the store drops staging when it opens anyway), so that
    /// staging a large backup does not cost an fsync per chunk. A later durable commit flushes
    /// it with everything else.
    pub fn write_unsynced<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = self.db.begin_write().map_err(StoreError::from)?;
        txn.set_durability(redb::Durability::None)
            .map_err(StoreError::from)?;
        let value = {
            let mut w = WriteTxn { txn: &txn };
            f(&mut w)?
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// A number for a new restore upload, unique while the store is open.
    pub fn next_upload(&self) -> u64 {
        self.uploads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// How commits reach the disk: [`redb::Durability::Immediate`] (fsync'd before `commit`
    /// returns) except in a store opened for benchmarks.
    pub fn durability(&self) -> redb::Durability {
        if self.durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        }
    }

    /// A consistent snapshot to keep: a stream that outlives one call (a backup sealed while
    /// the terminal takes it) reads everything from the same moment, while writers go on.
    pub fn snapshot(&self) -> Result<ReadTxn, StoreError> {
        Ok(ReadTxn {
            txn: self.db.begin_read()?,
        })
    }

    /// Runs `f` on a consistent snapshot.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTxn) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.db.begin_read().map_err(StoreError::from)?;
        f(&ReadTxn { txn })
    }
}

/// Writes the listing index of every key already stored (a store of format 1).
fn build_key_index(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let keys = txn.open_table(KEYS)?;
    let mut index = txn.open_table(key_order::KEY_ORDER)?;
    for item in keys.iter()? {
        let (k, v) = item?;
        let key: KeyRecord = record("key object", v.value())?;
        key_order::insert(&mut index, k.value().0, &key.summary)?;
    }
    Ok(())
}

fn record<T: for<'a> serde::Deserialize<'a>>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    model::decode(bytes).map_err(|source| StoreError::Record { what, source })
}

/// The next record of a range of key objects (live or staged).
fn next_record<K: redb::Key + 'static>(
    range: &mut redb::Range<'_, K, &'static [u8]>,
    what: &'static str,
) -> Result<Option<KeyRecord>, StoreError> {
    match range.next() {
        None => Ok(None),
        Some(item) => {
            let (_, v) = item?;
            Ok(Some(record(what, v.value())?))
        }
    }
}

/// Reads common to both transaction kinds.
macro_rules! reads {
    () => {
        /// A partition's record.
        pub fn partition(&self, id: &PartitionId) -> Result<Option<PartitionRecord>, StoreError> {
            let table = self.txn.open_table(PARTITIONS)?;
            let value = table.get(id.as_str())?;
            value.map(|v| record("partition", v.value())).transpose()
        }

        /// Every partition's record, in id order.
        pub fn partitions(&self) -> Result<Vec<PartitionRecord>, StoreError> {
            let table = self.txn.open_table(PARTITIONS)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                let (_, v) = item?;
                out.push(record("partition", v.value())?);
            }
            Ok(out)
        }

        /// A key object.
        pub fn key(
            &self,
            partition: &PartitionId,
            id: KeyId,
        ) -> Result<Option<KeyRecord>, StoreError> {
            let table = self.txn.open_table(KEYS)?;
            let value = table.get((partition.as_str(), id.0))?;
            value.map(|v| record("key object", v.value())).transpose()
        }

        /// Up to `limit` key objects of a partition with ids above `after`, that `keep` accepts.
        pub fn keys(
            &self,
            partition: &PartitionId,
            after: Option<KeyId>,
            limit: usize,
            mut keep: impl FnMut(&KeyRecord) -> bool,
        ) -> Result<(Vec<KeyRecord>, bool), StoreError> {
            let table = self.txn.open_table(KEYS)?;
            let start = after.map_or(0, |k| k.0.saturating_add(1));
            let p = partition.as_str();
            let mut out = Vec::new();
            for item in table.range((p, start)..=(p, u64::MAX))? {
                let (_, v) = item?;
                let key: KeyRecord = record("key object", v.value())?;
                if keep(&key) {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(key);
                }
            }
            Ok((out, false))
        }

        /// A page of a partition's keys from the listing index: up to `limit` keys matching
        /// `query` from its cursor on, nearest to the cursor first, and whether more follow.
        pub fn key_page(
            &self,
            partition: &PartitionId,
            query: &KeyQuery,
            limit: usize,
        ) -> Result<(Vec<KeyObjectSummary>, bool), StoreError> {
            let table = self.txn.open_table(key_order::KEY_ORDER)?;
            key_order::page(&table, partition.as_str(), query, limit)
        }

        /// How many of a partition's keys match `query`'s filters (reads the whole index).
        pub fn count_keys(
            &self,
            partition: &PartitionId,
            query: &KeyQuery,
        ) -> Result<u64, StoreError> {
            let table = self.txn.open_table(key_order::KEY_ORDER)?;
            key_order::count(&table, partition.as_str(), query)
        }

        /// Visits every key object of a partition (for usage), without holding them all.
        pub fn for_each_key(
            &self,
            partition: &PartitionId,
            mut visit: impl FnMut(&KeyRecord),
        ) -> Result<(), StoreError> {
            let table = self.txn.open_table(KEYS)?;
            let p = partition.as_str();
            for item in table.range((p, 0)..=(p, u64::MAX))? {
                let (_, v) = item?;
                visit(&record("key object", v.value())?);
            }
            Ok(())
        }

        /// Visits a restore upload's staged key objects in id order.
        pub fn for_each_staged_key(
            &self,
            partition: &PartitionId,
            upload: u64,
            mut visit: impl FnMut(&KeyRecord),
        ) -> Result<(), StoreError> {
            let table = self.txn.open_table(STAGED_KEYS)?;
            let p = partition.as_str();
            for item in table.range((p, upload, 0)..=(p, upload, u64::MAX))? {
                let (_, v) = item?;
                visit(&record("staged key object", v.value())?);
            }
            Ok(())
        }

        /// Walks a partition's key objects and a restore upload's staged ones side by side in
        /// id order, one pair at a time (`None` where one side lacks the id): the restore diff,
        /// in memory that does not grow with the partition.
        pub fn compare_staged(
            &self,
            partition: &PartitionId,
            upload: u64,
            mut visit: impl FnMut(Option<&KeyRecord>, Option<&KeyRecord>),
        ) -> Result<(), StoreError> {
            let live = self.txn.open_table(KEYS)?;
            let staged = self.txn.open_table(STAGED_KEYS)?;
            let p = partition.as_str();
            let mut live = live.range((p, 0)..=(p, u64::MAX))?;
            let mut staged = staged.range((p, upload, 0)..=(p, upload, u64::MAX))?;
            let mut a: Option<KeyRecord> = next_record(&mut live, "key object")?;
            let mut b: Option<KeyRecord> = next_record(&mut staged, "staged key object")?;
            loop {
                match (&a, &b) {
                    (None, None) => return Ok(()),
                    (Some(x), Some(y)) if x.summary.id == y.summary.id => {
                        visit(Some(x), Some(y));
                        a = next_record(&mut live, "key object")?;
                        b = next_record(&mut staged, "staged key object")?;
                    }
                    (Some(x), Some(y)) if x.summary.id < y.summary.id => {
                        visit(Some(x), None);
                        a = next_record(&mut live, "key object")?;
                    }
                    (Some(x), None) => {
                        visit(Some(x), None);
                        a = next_record(&mut live, "key object")?;
                    }
                    (_, Some(y)) => {
                        visit(None, Some(y));
                        b = next_record(&mut staged, "staged key object")?;
                    }
                }
            }
        }

        /// Log entries of a partition from `from_seq` on, each with the checkpoint that follows
        /// it (if one does), until `visit` returns `false`.
        pub fn log_lines(
            &self,
            partition: &PartitionId,
            from_seq: u64,
            mut visit: impl FnMut(u64, &[u8], Option<&[u8]>) -> bool,
        ) -> Result<(), StoreError> {
            let entries = self.txn.open_table(LOG)?;
            let checkpoints = self.txn.open_table(CHECKPOINTS)?;
            let p = partition.as_str();
            let mut cps = checkpoints.range((p, from_seq)..=(p, u64::MAX))?.peekable();
            for item in entries.range((p, from_seq)..=(p, u64::MAX))? {
                let (k, v) = item?;
                let seq = k.value().1;
                let mut checkpoint = None;
                while let Some(Ok((ck, _))) = cps.peek() {
                    if ck.value().1 < seq {
                        cps.next();
                    } else {
                        break;
                    }
                }
                if let Some(Ok((ck, cv))) = cps.peek()
                    && ck.value().1 == seq
                {
                    checkpoint = Some(cv.value().to_vec());
                }
                if !visit(seq, v.value(), checkpoint.as_deref()) {
                    break;
                }
            }
            Ok(())
        }

        /// The last checkpoint of a partition: the sequence it covers and its line.
        pub fn last_checkpoint(
            &self,
            partition: &PartitionId,
        ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
            let checkpoints = self.txn.open_table(CHECKPOINTS)?;
            let p = partition.as_str();
            let last = checkpoints
                .range((p, 0)..=(p, u64::MAX))?
                .next_back()
                .transpose()?;
            Ok(last.map(|(k, v)| (k.value().1, v.value().to_vec())))
        }

        /// The checkpoint that covers exactly `seq`, if there is one.
        pub fn checkpoint_at(
            &self,
            partition: &PartitionId,
            seq: u64,
        ) -> Result<Option<Vec<u8>>, StoreError> {
            let table = self.txn.open_table(CHECKPOINTS)?;
            let value = table.get((partition.as_str(), seq))?;
            Ok(value.map(|v| v.value().to_vec()))
        }

        /// The HSM's SO registry.
        pub fn so_registry(&self) -> Result<SoRegistry, StoreError> {
            let table = self.txn.open_table(META)?;
            let value = table.get(SO_REGISTRY)?;
            match value {
                Some(v) => record("SO registry", v.value()),
                None => Ok(SoRegistry::default()),
            }
        }

        /// Whether the HSM's owner allows soft cards in card sets (no by default).
        pub fn soft_cards_allowed(&self) -> Result<bool, StoreError> {
            let table = self.txn.open_table(META)?;
            let value = table.get(SOFT_CARDS)?;
            Ok(value.is_some_and(|v| v.value() == [1]))
        }

        /// When a pinned terminal paired and was last seen, if recorded.
        pub fn terminal_seen(
            &self,
            partition: &PartitionId,
            terminal: &hsm_link::keys::Fingerprint,
        ) -> Result<TerminalSeen, StoreError> {
            let table = self.txn.open_table(TERMINALS)?;
            let value = table.get((partition.as_str(), terminal.0.as_slice()))?;
            match value {
                Some(v) => record("terminal record", v.value()),
                None => Ok(TerminalSeen::default()),
            }
        }
    };
}

/// A read-only snapshot.
pub struct ReadTxn {
    txn: redb::ReadTransaction,
}

impl ReadTxn {
    reads!();
}

/// A write transaction in progress.
pub struct WriteTxn<'a> {
    txn: &'a redb::WriteTransaction,
}

impl WriteTxn<'_> {
    reads!();

    /// Stores a partition's record.
    pub fn put_partition(&mut self, record: &PartitionRecord) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(PARTITIONS)?;
        table.insert(record.id.as_str(), model::encode(record).as_slice())?;
        Ok(())
    }

    /// Stores a key object.
    pub fn put_key(&mut self, partition: &PartitionId, key: &KeyRecord) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(KEYS)?;
        let mut index = self.txn.open_table(key_order::KEY_ORDER)?;
        let old = table.insert(
            (partition.as_str(), key.summary.id.0),
            model::encode(key).as_slice(),
        )?;
        if let Some(old) = old {
            let old: KeyRecord = record("key object", old.value())?;
            key_order::remove(&mut index, partition.as_str(), &old.summary)?;
        }
        key_order::insert(&mut index, partition.as_str(), &key.summary)
    }

    /// Deletes a key object for good.
    pub fn delete_key(&mut self, partition: &PartitionId, id: KeyId) -> Result<bool, StoreError> {
        let mut table = self.txn.open_table(KEYS)?;
        let mut index = self.txn.open_table(key_order::KEY_ORDER)?;
        let Some(old) = table.remove((partition.as_str(), id.0))? else {
            return Ok(false);
        };
        let old: KeyRecord = record("key object", old.value())?;
        key_order::remove(&mut index, partition.as_str(), &old.summary)?;
        Ok(true)
    }

    /// Stages a key object of restore upload `upload`.
    pub fn put_staged_key(
        &mut self,
        partition: &PartitionId,
        upload: u64,
        key: &KeyRecord,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(STAGED_KEYS)?;
        table.insert(
            (partition.as_str(), upload, key.summary.id.0),
            model::encode(key).as_slice(),
        )?;
        Ok(())
    }

    /// Drops everything restore upload `upload` staged.
    pub fn clear_staged(&mut self, partition: &PartitionId, upload: u64) -> Result<(), StoreError> {
        let p = partition.as_str();
        self.txn
            .open_table(STAGED_KEYS)?
            .retain_in((p, upload, 0)..=(p, upload, u64::MAX), |_, _| false)?;
        Ok(())
    }

    /// The swap of a restore: deletes every key object of the partition and moves restore
    /// upload `upload`'s staged ones in their place, visiting each as it goes (for usage).
    /// Part of the caller's transaction, so a crash leaves either set, never a mix.
    pub fn swap_in_staged(
        &mut self,
        partition: &PartitionId,
        upload: u64,
        mut visit: impl FnMut(&KeyRecord),
    ) -> Result<(), StoreError> {
        let p = partition.as_str();
        let mut keys = self.txn.open_table(KEYS)?;
        let mut index = self.txn.open_table(key_order::KEY_ORDER)?;
        // The listing index follows the keys, in the same transaction.
        for item in keys.range((p, 0)..=(p, u64::MAX))? {
            let (_, v) = item?;
            let old: KeyRecord = record("key object", v.value())?;
            key_order::remove(&mut index, p, &old.summary)?;
        }
        keys.retain_in((p, 0)..=(p, u64::MAX), |_, _| false)?;
        let mut staged = self.txn.open_table(STAGED_KEYS)?;
        for item in staged.range((p, upload, 0)..=(p, upload, u64::MAX))? {
            let (k, v) = item?;
            let key: KeyRecord = record("staged key object", v.value())?;
            visit(&key);
            keys.insert((p, k.value().2), v.value())?;
            key_order::insert(&mut index, p, &key.summary)?;
        }
        staged.retain_in((p, upload, 0)..=(p, upload, u64::MAX), |_, _| false)?;
        Ok(())
    }

    /// Appends a log line (entry or checkpoint) under `seq`.
    pub fn put_log_line(
        &mut self,
        partition: &PartitionId,
        seq: u64,
        line: &[u8],
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(LOG)?;
        table.insert((partition.as_str(), seq), line)?;
        Ok(())
    }

    /// Stores a checkpoint covering entries up to `seq`.
    pub fn put_checkpoint(
        &mut self,
        partition: &PartitionId,
        seq: u64,
        line: &[u8],
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(CHECKPOINTS)?;
        table.insert((partition.as_str(), seq), line)?;
        Ok(())
    }

    /// Prunes log entries up to and including the last checkpoint at or below `up_to_seq`
    /// (only ever entries confirmed as exported). That checkpoint is kept: it anchors what
    /// remains. Returns the new first sequence number, or `None` if no checkpoint allows
    /// pruning.
    pub fn prune_log(
        &mut self,
        partition: &PartitionId,
        up_to_seq: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(anchor) = self.last_checkpoint_below(partition, up_to_seq.saturating_add(1))?
        else {
            return Ok(None);
        };
        let p = partition.as_str();
        self.txn
            .open_table(LOG)?
            .retain_in((p, 0)..=(p, anchor), |_, _| false)?;
        self.txn
            .open_table(CHECKPOINTS)?
            .retain_in((p, 0)..(p, anchor), |_, _| false)?;
        Ok(Some(anchor + 1))
    }

    fn last_checkpoint_below(
        &self,
        partition: &PartitionId,
        below_seq: u64,
    ) -> Result<Option<u64>, StoreError> {
        let table = self.txn.open_table(CHECKPOINTS)?;
        let p = partition.as_str();
        let last = table
            .range((p, 0)..(p, below_seq))?
            .next_back()
            .transpose()?;
        Ok(last.map(|(k, _)| k.value().1))
    }

    /// Stores the SO registry.
    pub fn put_so_registry(&mut self, registry: &SoRegistry) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(META)?;
        table.insert(SO_REGISTRY, model::encode(registry).as_slice())?;
        Ok(())
    }

    /// Records when a pinned terminal paired and was last seen.
    pub fn put_terminal_seen(
        &mut self,
        partition: &PartitionId,
        terminal: &hsm_link::keys::Fingerprint,
        seen: &TerminalSeen,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(TERMINALS)?;
        table.insert(
            (partition.as_str(), terminal.0.as_slice()),
            model::encode(seen).as_slice(),
        )?;
        Ok(())
    }

    /// Forgets a terminal's record (it was revoked).
    pub fn delete_terminal_seen(
        &mut self,
        partition: &PartitionId,
        terminal: &hsm_link::keys::Fingerprint,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(TERMINALS)?;
        table.remove((partition.as_str(), terminal.0.as_slice()))?;
        Ok(())
    }

    /// Allows or refuses soft cards in card sets registered from now on.
    pub fn put_soft_cards_allowed(&mut self, allowed: bool) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(META)?;
        table.insert(SOFT_CARDS, [u8::from(allowed)].as_slice())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hsm_store_commits_durably_and_only_the_benchmark_store_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(store.durability(), redb::Durability::Immediate));
        store.write(|_| Ok::<_, StoreError>(())).unwrap();
        drop(store);
        let fast = Store::open_fast_for_benchmarks(dir.path()).unwrap();
        assert!(matches!(fast.durability(), redb::Durability::None));
    }

    #[test]
    fn a_restores_staging_is_never_a_key_and_does_not_survive_a_restart() {
        use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, KeyObjectSummary, KeyState};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = PartitionId::new("p").unwrap();
        let key = |n| KeyRecord {
            summary: KeyObjectSummary {
                id: KeyId(n),
                label: KeyLabel::new(format!("k{n}")).unwrap(),
                kind: KeyKind::Aes256,
                attributes: KeyAttributes {
                    extractable: false,
                    sensitive: true,
                    modifiable: false,
                },
                created_unix: 1,
                size_bytes: 32,
                state: KeyState::Active,
            },
            sealed: vec![n as u8; 8],
        };
        let upload = store.next_upload();
        assert_ne!(store.next_upload(), upload);
        store
            .write(|tx| {
                tx.put_key(&p, &key(1))?;
                tx.put_key(&p, &key(2))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
            .write_unsynced(|tx| {
                tx.put_staged_key(&p, upload, &key(2))?;
                tx.put_staged_key(&p, upload, &key(3))?;
                tx.put_staged_key(&p, upload + 1, &key(4))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let listed = |store: &Store| {
            store
                .read(|tx| Ok::<_, StoreError>(tx.keys(&p, None, 10, |_| true)?.0))
                .unwrap()
                .iter()
                .map(|k| k.summary.id.0)
                .collect::<Vec<_>>()
        };
        let staged = |store: &Store, upload| {
            let mut ids = Vec::new();
            store
                .read(|tx| tx.for_each_staged_key(&p, upload, |k| ids.push(k.summary.id.0)))
                .unwrap();
            ids
        };
        // Staged keys are not keys; the walk side by side pairs them by id.
        assert_eq!(listed(&store), vec![1, 2]);
        assert_eq!(staged(&store, upload), vec![2, 3]);
        let mut pairs = Vec::new();
        store
            .read(|tx| {
                tx.compare_staged(&p, upload, |a, b| {
                    pairs.push((a.map(|k| k.summary.id.0), b.map(|k| k.summary.id.0)));
                })
            })
            .unwrap();
        assert_eq!(
            pairs,
            vec![(Some(1), None), (Some(2), Some(2)), (None, Some(3))]
        );
        // Reopened (as after a crash): the staging is gone, the keys are not.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(listed(&store), vec![1, 2]);
        assert!(staged(&store, upload).is_empty() && staged(&store, upload + 1).is_empty());
        // The swap moves one upload's staging in place of the keys, and only that upload's.
        store
            .write_unsynced(|tx| {
                tx.put_staged_key(&p, 9, &key(5))?;
                tx.put_staged_key(&p, 10, &key(6))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.write(|tx| tx.swap_in_staged(&p, 9, |_| {})).unwrap();
        assert_eq!(listed(&store), vec![5]);
        assert!(staged(&store, 9).is_empty());
        assert_eq!(staged(&store, 10), vec![6]);
    }
}
