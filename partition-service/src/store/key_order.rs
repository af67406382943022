//! The key listing index: one entry per key and order (id, label, size, created), keyed by
//! partition, order, class (active or in the bin) and the key's value in that order, holding
//! the key's summary. A page of keys in any order and at any depth is then a range read of
//! the page's length (plus what a label or kind filter skips), never a scan and sort of the
//! whole partition. Entries are written and removed in the transaction that writes or
//! deletes the key ([`super::WriteTxn::put_key`]), so the index never disagrees with the keys.

use std::ops::Bound;

use hsm_link::domain::{KeyObjectSummary, KeyState};
use hsm_link::message::{KeyCursor, KeyFilter, KeyPosition, KeyQuery, KeySort};
use redb::{ReadableTable, TableDefinition};

use super::{StoreError, record};
use crate::model;

/// (partition, order, class, value in that order, id) → the key's summary.
pub(super) type IndexKey<'a> = (&'a str, u8, u8, &'a [u8], u64);

pub(super) const KEY_ORDER: TableDefinition<IndexKey<'static>, &[u8]> =
    TableDefinition::new("key-order");

/// Every order the index keeps.
const SORTS: [KeySort; 4] = [KeySort::Id, KeySort::Label, KeySort::Size, KeySort::Created];

fn sort_byte(sort: KeySort) -> u8 {
    match sort {
        KeySort::Id => 0,
        KeySort::Label => 1,
        KeySort::Size => 2,
        KeySort::Created => 3,
    }
}

fn class(state: &KeyState) -> u8 {
    u8::from(state.is_invalidated())
}

/// A key's value in `sort` (the id follows it in the index key, so ties are ordered).
fn sort_value(sort: KeySort, position: &KeyPosition) -> Vec<u8> {
    match sort {
        KeySort::Id => Vec::new(),
        KeySort::Label => position.label.as_str().to_lowercase().into_bytes(),
        KeySort::Size => position.size_bytes.to_be_bytes().to_vec(),
        KeySort::Created => position.created_unix.to_be_bytes().to_vec(),
    }
}

/// The values of a key's entries, one per order, each with its order's byte.
fn entries(key: &KeyObjectSummary) -> impl Iterator<Item = (u8, Vec<u8>)> {
    let position = KeyPosition::of(key);
    SORTS
        .into_iter()
        .map(move |sort| (sort_byte(sort), sort_value(sort, &position)))
}

/// Writes a key's entries (one per order).
pub(super) fn insert(
    table: &mut redb::Table<IndexKey<'static>, &[u8]>,
    partition: &str,
    key: &KeyObjectSummary,
) -> Result<(), StoreError> {
    let summary = model::encode(key);
    for (order, value) in entries(key) {
        let index_key = (
            partition,
            order,
            class(&key.state),
            value.as_slice(),
            key.id.0,
        );
        table.insert(index_key, summary.as_slice())?;
    }
    Ok(())
}

/// Removes a key's entries.
pub(super) fn remove(
    table: &mut redb::Table<IndexKey<'static>, &[u8]>,
    partition: &str,
    key: &KeyObjectSummary,
) -> Result<(), StoreError> {
    for (order, value) in entries(key) {
        let index_key = (
            partition,
            order,
            class(&key.state),
            value.as_slice(),
            key.id.0,
        );
        table.remove(index_key)?;
    }
    Ok(())
}

fn classes(filter: KeyFilter) -> &'static [u8] {
    match filter {
        KeyFilter::Active => &[0],
        KeyFilter::Invalidated => &[1],
        KeyFilter::All => &[0, 1],
    }
}

/// Whether a key passes the query's label and kind filters (`needle` is the lowercased label
/// text).
fn matches(query: &KeyQuery, needle: Option<&str>, key: &KeyObjectSummary) -> bool {
    query.kind.is_none_or(|kind| key.kind == kind)
        && needle.is_none_or(|n| key.label.as_str().to_lowercase().contains(n))
}

/// One index entry, owned: its order value, its id and the key.
type Entry = (Vec<u8>, u64, KeyObjectSummary);

/// The entries of one class from the cursor on, in the direction the page is read.
fn class_entries<'t, T: ReadableTable<IndexKey<'static>, &'static [u8]>>(
    table: &'t T,
    partition: &str,
    query: &KeyQuery,
    class: u8,
    reverse: bool,
) -> Result<Box<dyn Iterator<Item = Result<Entry, StoreError>> + 't>, StoreError> {
    let sort = sort_byte(query.sort);
    let lower: IndexKey<'_> = (partition, sort, class, &[], 0);
    let upper: IndexKey<'_> = (partition, sort, class + 1, &[], 0);
    let value;
    let range = match &query.from {
        KeyCursor::First | KeyCursor::Last => {
            table.range((Bound::Included(lower), Bound::Excluded(upper)))?
        }
        KeyCursor::After(p) | KeyCursor::Before(p) => {
            value = sort_value(query.sort, p);
            let at: IndexKey<'_> = (partition, sort, class, value.as_slice(), p.id.0);
            if reverse {
                table.range((Bound::Included(lower), Bound::Excluded(at)))?
            } else {
                table.range((Bound::Excluded(at), Bound::Excluded(upper)))?
            }
        }
    };
    Ok(if reverse {
        Box::new(range.rev().map(owned))
    } else {
        Box::new(range.map(owned))
    })
}

type Item<'a> = (
    redb::AccessGuard<'a, IndexKey<'static>>,
    redb::AccessGuard<'a, &'static [u8]>,
);

fn owned(item: Result<Item<'_>, redb::StorageError>) -> Result<Entry, StoreError> {
    let (k, v) = item?;
    let (_, _, _, value, id) = k.value();
    let key: KeyObjectSummary = record("key index entry", v.value())?;
    Ok((value.to_vec(), id, key))
}

/// Up to `limit` keys matching `query` from its cursor on, nearest to the cursor first, and
/// whether more follow in that direction.
pub(super) fn page<T: ReadableTable<IndexKey<'static>, &'static [u8]>>(
    table: &T,
    partition: &str,
    query: &KeyQuery,
    limit: usize,
) -> Result<(Vec<KeyObjectSummary>, bool), StoreError> {
    // The index ascends; a descending list or a page before the cursor reads it backwards.
    let reverse = query.backwards() != query.descending;
    let needle = query.label_contains.as_ref().map(|t| t.to_lowercase());
    let mut streams = Vec::new();
    for &c in classes(query.filter) {
        streams.push(class_entries(table, partition, query, c, reverse)?);
    }
    let mut heads = Vec::new();
    for s in &mut streams {
        heads.push(s.next().transpose()?);
    }
    let mut out = Vec::new();
    loop {
        // The next entry of the merged classes: the smallest head (the largest, backwards).
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|(value, id, _)| (i, value, id)))
            .reduce(|a, b| {
                let order = (b.1, b.2).cmp(&(a.1, a.2));
                if order.is_lt() != reverse && order.is_ne() {
                    b
                } else {
                    a
                }
            })
            .map(|(i, _, _)| i);
        let Some(i) = next else {
            return Ok((out, false));
        };
        let (_, _, key) = heads[i].take().expect("the head chosen");
        heads[i] = streams[i].next().transpose()?;
        if matches(query, needle.as_deref(), &key) {
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(key);
        }
    }
}

/// How many keys match `query`'s filters: a read of the whole index (of the filter's
/// classes), for a label or kind filter the partition's counters cannot answer.
pub(super) fn count<T: ReadableTable<IndexKey<'static>, &'static [u8]>>(
    table: &T,
    partition: &str,
    query: &KeyQuery,
) -> Result<u64, StoreError> {
    let needle = query.label_contains.as_ref().map(|t| t.to_lowercase());
    let whole = KeyQuery {
        sort: KeySort::Id,
        from: KeyCursor::First,
        ..query.clone()
    };
    let mut n = 0;
    for &c in classes(query.filter) {
        for entry in class_entries(table, partition, &whole, c, false)? {
            let (_, _, key) = entry?;
            if matches(query, needle.as_deref(), &key) {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use hsm_link::domain::{KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId};

    use super::*;
    use crate::model::KeyRecord;
    use crate::store::Store;

    fn key(i: u64) -> KeyRecord {
        // Labels repeat (ties broken by id) and mix case (the order ignores case).
        let labels = ["beta", "Alpha", "gamma", "alpha", "Delta-7", "beta"];
        KeyRecord {
            summary: KeyObjectSummary {
                id: KeyId(i),
                label: KeyLabel::new(format!("{}{}", labels[(i % 6) as usize], i % 5)).unwrap(),
                kind: [KeyKind::Aes256, KeyKind::Ed25519, KeyKind::EcP256][(i % 3) as usize],
                attributes: KeyAttributes {
                    extractable: false,
                    sensitive: true,
                    modifiable: false,
                },
                created_unix: 1_000 + (i * 7) % 50,
                size_bytes: 32 + (i * 11) % 90,
                state: if i.is_multiple_of(4) {
                    KeyState::Invalidated {
                        invalidated_unix: 9,
                    }
                } else {
                    KeyState::Active
                },
            },
            sealed: vec![1; 8],
        }
    }

    /// What the index must give: the keys of the query sorted in memory.
    fn expected(all: &[KeyObjectSummary], q: &KeyQuery) -> Vec<KeyId> {
        let needle = q.label_contains.as_ref().map(|t| t.to_lowercase());
        let mut keys: Vec<&KeyObjectSummary> = all
            .iter()
            .filter(|k| match q.filter {
                KeyFilter::All => true,
                KeyFilter::Active => !k.state.is_invalidated(),
                KeyFilter::Invalidated => k.state.is_invalidated(),
            })
            .filter(|k| matches(q, needle.as_deref(), k))
            .collect();
        keys.sort_by_key(|k| (sort_value(q.sort, &KeyPosition::of(k)), k.id));
        if q.descending {
            keys.reverse();
        }
        keys.iter().map(|k| k.id).collect()
    }

    /// The whole list walked page by page from `from` (First: forwards; Last: backwards).
    fn walk(store: &Store, p: &PartitionId, q: &KeyQuery) -> Vec<KeyId> {
        let mut q = q.clone();
        let mut out: Vec<KeyId> = Vec::new();
        loop {
            let (mut page, more) = store
                .read(|tx| tx.key_page(p, &q, q.limit as usize))
                .unwrap();
            if q.backwards() {
                page.reverse();
                let ids: Vec<KeyId> = page.iter().map(|k| k.id).collect();
                out.splice(0..0, ids);
                let Some(first) = page.first() else { break };
                q.from = KeyCursor::Before(KeyPosition::of(first));
            } else {
                out.extend(page.iter().map(|k| k.id));
                let Some(last) = page.last() else { break };
                q.from = KeyCursor::After(KeyPosition::of(last));
            }
            if !more {
                break;
            }
        }
        out
    }

    fn check_all(store: &Store, p: &PartitionId, all: &[KeyObjectSummary]) {
        for sort in SORTS {
            for descending in [false, true] {
                for filter in [KeyFilter::All, KeyFilter::Active, KeyFilter::Invalidated] {
                    for (label, kind) in [
                        (None, None),
                        (Some("ALPHA"), None),
                        (None, Some(KeyKind::Ed25519)),
                        (Some("a2"), Some(KeyKind::EcP256)),
                    ] {
                        let q = KeyQuery {
                            sort,
                            descending,
                            label_contains: label.map(str::to_owned),
                            kind,
                            limit: 7,
                            ..KeyQuery::first(filter, 7)
                        };
                        let want = expected(all, &q);
                        assert_eq!(walk(store, p, &q), want, "forwards {q:?}");
                        let last = KeyQuery {
                            from: KeyCursor::Last,
                            ..q.clone()
                        };
                        assert_eq!(walk(store, p, &last), want, "backwards {q:?}");
                        let n = store.read(|tx| tx.count_keys(p, &q)).unwrap();
                        assert_eq!(n, want.len() as u64, "count {q:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_order_and_filter_pages_as_a_sort_in_memory_would_both_ways() {
        let store = Store::in_memory().unwrap();
        let p = PartitionId::new("p-1").unwrap();
        let other = PartitionId::new("p-2").unwrap();
        let mut all: Vec<KeyObjectSummary> = (1..=120).map(|i| key(i).summary).collect();
        store
            .write(|tx| {
                for i in 1..=120 {
                    tx.put_key(&p, &key(i))?;
                    // Another partition's keys never show.
                    tx.put_key(&other, &key(i + 1_000))?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        check_all(&store, &p, &all);

        // A key restored (its state changes), one purged, one binned: the index follows.
        let mut restored = key(8);
        restored.summary.state = KeyState::Active;
        let mut binned = key(9);
        binned.summary.state = KeyState::Invalidated {
            invalidated_unix: 10,
        };
        store
            .write(|tx| {
                tx.put_key(&p, &restored)?;
                tx.put_key(&p, &binned)?;
                tx.delete_key(&p, KeyId(12))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        all[7] = restored.summary;
        all[8] = binned.summary;
        all.retain(|k| k.id != KeyId(12));
        check_all(&store, &p, &all);
    }
}
