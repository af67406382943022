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
        let db = Database::create(dir.join(STORE_FILE))?;
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
        Self::init(Database::create(dir.join(STORE_FILE))?, false)
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
        }
        txn.commit()?;
        Ok(Store { db, durable })
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
}
