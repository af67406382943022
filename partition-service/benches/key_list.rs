//! The HSM's cost of one page of the key list at 100,000 keys: from the listing index (the
//! store's `key-order` table), in id and label order, at the start, in the middle and at the
//! end, forwards and backwards, with a label or kind filter, and the count a terminal asks for
//! when the filter changes. For comparison, what a label-sorted page costs without the index
//! (read every key, sort). Prints median, p95 and worst per page; a benchmark, never an
//! assertion.
//!
//! `cargo bench -p partition-service --bench key_list`

use std::time::{Duration, Instant};

use hsm_link::domain::{
    KeyAttributes, KeyId, KeyKind, KeyLabel, KeyObjectSummary, KeyState, PartitionId,
};
use hsm_link::message::{KeyCursor, KeyFilter, KeyPosition, KeyQuery, KeySort};
use partition_service::model::KeyRecord;
use partition_service::store::{Store, StoreError};

const KEYS: u64 = 100_000;
/// Keys written per transaction while filling.
const BATCH: u64 = 5_000;
/// One key in this many is in the bin.
const BIN_EVERY: u64 = 100;
const PAGE: u32 = 100;
const RUNS: usize = 200;

const WORDS: [&str; 16] = [
    "payments",
    "settlement",
    "tokenisation",
    "archive",
    "backup",
    "clearing",
    "ledger",
    "treasury",
    "signing",
    "export",
    "import",
    "rotation",
    "fx",
    "cards",
    "iban",
    "swift",
];

fn key(i: u64) -> KeyRecord {
    // Labels in an order unrelated to ids: a word chosen by a multiplicative hash, then the id.
    let word = WORDS[((i.wrapping_mul(2_654_435_761)) >> 7) as usize % WORDS.len()];
    let kind = [KeyKind::Aes256, KeyKind::Ed25519, KeyKind::EcP256][(i % 3) as usize];
    KeyRecord {
        summary: KeyObjectSummary {
            id: KeyId(i),
            label: KeyLabel::new(format!("{word}-{:06}", (i * 7_919) % 1_000_003)).unwrap(),
            kind,
            attributes: KeyAttributes {
                extractable: false,
                sensitive: true,
                modifiable: false,
            },
            created_unix: 1_796_000_000 + i * 13,
            size_bytes: 64 + (i * 37) % 400,
            state: if i.is_multiple_of(BIN_EVERY) {
                KeyState::Invalidated {
                    invalidated_unix: 1_797_000_000,
                }
            } else {
                KeyState::Active
            },
        },
        sealed: vec![0x5a; 60],
    }
}

fn stats(name: &str, mut times: Vec<Duration>, rows: usize) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {name:<52} median {:>8.3} ms   p95 {:>8.3} ms   worst {:>8.3} ms   ({rows} keys)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
        ms(times[times.len() - 1]),
    );
}

fn page(store: &Store, partition: &PartitionId, query: &KeyQuery) -> (Vec<KeyObjectSummary>, bool) {
    store
        .read(|tx| tx.key_page(partition, query, query.limit as usize))
        .expect("page")
}

fn measure(name: &str, store: &Store, partition: &PartitionId, query: &KeyQuery) {
    let mut rows = 0;
    let times = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            rows = page(store, partition, query).0.len();
            started.elapsed()
        })
        .collect();
    stats(name, times, rows);
}

fn count(name: &str, store: &Store, partition: &PartitionId, query: &KeyQuery, runs: usize) {
    let mut n = 0;
    let times = (0..runs)
        .map(|_| {
            let started = Instant::now();
            n = store
                .read(|tx| tx.count_keys(partition, query))
                .expect("count");
            started.elapsed()
        })
        .collect();
    stats(name, times, n as usize);
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_fast_for_benchmarks(dir.path()).expect("store");
    let partition = PartitionId::new("bench-1").unwrap();
    let started = Instant::now();
    for batch in 0..KEYS / BATCH {
        store
            .write(|tx| {
                for i in batch * BATCH + 1..=(batch + 1) * BATCH {
                    tx.put_key(&partition, &key(i))?;
                }
                Ok::<_, StoreError>(())
            })
            .expect("fill");
    }
    let filled = started.elapsed();
    let size = std::fs::metadata(dir.path().join(partition_service::store::STORE_FILE))
        .map_or(0, |m| m.len());
    println!(
        "key list at the HSM: {KEYS} keys ({} in the bin), pages of {PAGE}, {RUNS} runs each",
        KEYS / BIN_EVERY
    );
    println!(
        "  filled in {:.1} s ({:.0} µs a key with its 4 index entries); store file {:.1} MB",
        filled.as_secs_f64(),
        filled.as_secs_f64() * 1e6 / KEYS as f64,
        size as f64 / 1e6
    );

    let active = |sort: KeySort, from: KeyCursor| KeyQuery {
        sort,
        from,
        count: false,
        ..KeyQuery::first(KeyFilter::Active, PAGE)
    };
    // The middle of the label order, as a terminal scrolled there would name it.
    let mut by_label: Vec<KeyObjectSummary> = (1..=KEYS)
        .map(|i| key(i).summary)
        .filter(|k| !k.state.is_invalidated())
        .collect();
    by_label.sort_by(|a, b| {
        (a.label.as_str().to_lowercase(), a.id).cmp(&(b.label.as_str().to_lowercase(), b.id))
    });
    let middle_label = KeyPosition::of(&by_label[by_label.len() / 2]);
    let middle_id = KeyPosition::of(&key(KEYS / 2).summary);

    for (name, query) in [
        (
            "id order, first page",
            active(KeySort::Id, KeyCursor::First),
        ),
        (
            "id order, middle page (after key 50,000)",
            active(KeySort::Id, KeyCursor::After(middle_id.clone())),
        ),
        ("id order, last page", active(KeySort::Id, KeyCursor::Last)),
        (
            "label order, first page",
            active(KeySort::Label, KeyCursor::First),
        ),
        (
            "label order, middle page (after the 49,500th label)",
            active(KeySort::Label, KeyCursor::After(middle_label.clone())),
        ),
        (
            "label order, page before the middle (backwards)",
            active(KeySort::Label, KeyCursor::Before(middle_label.clone())),
        ),
        (
            "label order, last page",
            active(KeySort::Label, KeyCursor::Last),
        ),
        (
            "label order descending, first page",
            KeyQuery {
                descending: true,
                ..active(KeySort::Label, KeyCursor::First)
            },
        ),
        ("size order, largest first, middle page", {
            // Key 50,001 is neither in the bin nor of the smallest size.
            let mut q = active(
                KeySort::Size,
                KeyCursor::After(KeyPosition::of(&key(KEYS / 2 + 1).summary)),
            );
            q.descending = true;
            q
        }),
        (
            "bin (1,000 keys), label order, first page",
            KeyQuery {
                filter: KeyFilter::Invalidated,
                ..active(KeySort::Label, KeyCursor::First)
            },
        ),
        (
            "all keys (active and bin merged), label order, middle",
            KeyQuery {
                filter: KeyFilter::All,
                ..active(KeySort::Label, KeyCursor::After(middle_label.clone()))
            },
        ),
        (
            "label contains \"ledger\" (1 in 16), label order",
            KeyQuery {
                label_contains: Some("ledger".into()),
                ..active(KeySort::Label, KeyCursor::First)
            },
        ),
        (
            "label contains \"ledger\", id order (scans ~1,600)",
            KeyQuery {
                label_contains: Some("ledger".into()),
                ..active(KeySort::Id, KeyCursor::First)
            },
        ),
        (
            "kind EC P-256 (1 in 3), label order",
            KeyQuery {
                kind: Some(KeyKind::EcP256),
                ..active(KeySort::Label, KeyCursor::First)
            },
        ),
    ] {
        measure(name, &store, &partition, &query);
    }
    // A label nobody has: the page reads the whole index to say so.
    let rare = KeyQuery {
        label_contains: Some("no-such-label".into()),
        ..active(KeySort::Label, KeyCursor::First)
    };
    let times = (0..10)
        .map(|_| {
            let started = Instant::now();
            page(&store, &partition, &rare);
            started.elapsed()
        })
        .collect();
    stats("label contains a text no key has (whole index)", times, 0);
    count(
        "count, label contains \"ledger\" (whole index)",
        &store,
        &partition,
        &KeyQuery {
            label_contains: Some("ledger".into()),
            ..active(KeySort::Id, KeyCursor::First)
        },
        10,
    );

    // Without the index: every key read and sorted for one label-ordered page.
    let times = (0..5)
        .map(|_| {
            let started = Instant::now();
            let (mut all, _) = store
                .read(|tx| {
                    tx.keys(&partition, None, usize::MAX, |k| {
                        !k.summary.state.is_invalidated()
                    })
                })
                .expect("all keys");
            all.sort_by(|a, b| a.summary.label.cmp(&b.summary.label));
            all.truncate(PAGE as usize);
            started.elapsed()
        })
        .collect();
    stats(
        "without the index: read all, sort, one page",
        times,
        PAGE as usize,
    );
}
