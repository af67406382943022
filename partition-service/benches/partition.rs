//! A partition at scale behind the in-memory admin link: 10,000 keys and a log of (almost)
//! 1,000,000 entries, all created through the real application path, then listed, paged and
//! filtered by a logged-in PSO, and exported whole. Every page asks for 1,000 items and stops at
//! its byte budget; a filtered log page stops after a bounded scan and says where to go on. Page
//! latencies are printed against the terminal's frame budget (a frame < 2 ms with 1,000,000 log
//! entries behind the link), with what each page carried, the export with its throughput and the
//! process's memory before and after.
//!
//! Run with `cargo bench -p partition-service --bench partition`. The store is opened with
//! non-durable commits (`Store::open_fast_for_benchmarks`) so that filling it takes minutes, not
//! hours. `TESSERA_BENCH_LOG_ENTRIES` (default 1,000,000) and `TESSERA_BENCH_FILL_SECS` (default
//! 300) shrink the fill for a quick run.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hsm_link::domain::{
    CardSetKind, KeyAttributes, KeyId, KeyKind, KeyLabel, PartitionId, Role, ServiceTier,
};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::limits::MAX_PLAINTEXT;
use hsm_link::message::{
    AdminRequest, AdminResponse, CeremonyKind, KeyCursor, KeyFilter, KeyPosition, KeyQuery,
    LogPage, LogQuery, MAX_PAGE_BYTES, OfficerRole, Request, Response,
};
use partition_service::access::ApiProvider;
use partition_service::admin::MAX_SCANNED_PER_PAGE;
use partition_service::app_link::AppConnection;
use partition_service::app_link::{AppError, AppRequest, AppResponse, SecretBytes};
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, DEFAULT_LOG_CAPACITY, Hsm, genesis};
use partition_service::store::Store;
use tessera_tests::partition::{Card, Terminal, card_set, recovery};

/// Key objects created before the log is filled.
const KEYS: u64 = 10_000;
/// Keys or log lines asked for per page (the protocol's maximum for both).
const PAGE: u32 = 1_000;
/// The terminal's budget for one frame, which may wait on one page.
const FRAME_BUDGET: Duration = Duration::from_millis(2);
/// Timed repetitions of each page in the printed summary.
const REPEATS: usize = 20;
/// Log exports timed in the printed summary (each adds one `log.export` entry to the log).
const EXPORTS: usize = 3;

const OPEN: KeyAttributes = KeyAttributes {
    extractable: true,
    sensitive: false,
    modifiable: true,
};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A second handle on the terminal's key, for a later session.
fn copy_key(key: &StaticKeypair) -> StaticKeypair {
    StaticKeypair::from_secret(zeroize::Zeroizing::new(*key.secret_bytes()))
}

/// A page of keys for the PSO session: how many, and whether more follow.
fn list_keys(pso: &mut Terminal, after: Option<KeyId>) -> (usize, bool) {
    // In id order only the id of a position counts.
    let from = after.map_or(KeyCursor::First, |id| {
        KeyCursor::After(KeyPosition {
            id,
            label: label(String::new()),
            size_bytes: 0,
            created_unix: 0,
        })
    });
    let query = KeyQuery {
        from,
        count: false,
        ..KeyQuery::first(KeyFilter::All, PAGE)
    };
    match pso.admin(AdminRequest::ListKeys(query)) {
        Ok(AdminResponse::Keys { keys, more, .. }) => (keys.len(), more),
        other => panic!("list keys: {other:?}"),
    }
}

/// A page of the log for the PSO session.
fn read_log(pso: &mut Terminal, query: &LogQuery) -> LogPage {
    match pso.admin(AdminRequest::ReadLog {
        query: query.clone(),
    }) {
        Ok(AdminResponse::LogPage(page)) => page,
        other => panic!("read log: {other:?}"),
    }
}

/// Counts what an export streams, and samples the resident set size as it goes.
#[derive(Default)]
struct CountingSink {
    bytes: u64,
    lines: u64,
    since_sample: u64,
    max_rss_kib: u64,
}

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.since_sample += buf.len() as u64;
        if self.since_sample >= 1 << 20 {
            self.since_sample = 0;
            self.max_rss_kib = self.max_rss_kib.max(memory_kib().rss);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's resident set size and its peak, from `/proc/self/status` (0 where unknown).
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss: u64,
    hwm: u64,
}

fn memory_kib() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
    }
}

/// Resets the peak resident set size to the current one (Linux: `clear_refs` 5).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Median, fastest and slowest of `REPEATS` timed runs.
struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn time_it(mut f: impl FnMut()) -> Stats {
    let mut times: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    Stats {
        median: times[times.len() / 2],
        min: times[0],
        max: times[times.len() - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn label(text: String) -> KeyLabel {
    KeyLabel::new(text).unwrap()
}

/// Application connection state as the listener keeps it after a hello (the bench calls the
/// backend in process, without the TCP listener).
fn connection(hsm: &Hsm, partition: &PartitionId) -> AppConnection {
    AppConnection {
        credentials_epoch: hsm.partition(partition).unwrap().credentials.epoch,
        ..AppConnection::default()
    }
}

/// Uses key `id` once through the application path: a signature with an Ed25519 key, an
/// encryption with an AES key. Each use is one logged, committed event.
fn use_key(
    hsm: &Hsm,
    session: &mut AppConnection,
    partition: &PartitionId,
    id: u64,
) -> Result<(), AppError> {
    let request = if id % 2 == 1 {
        AppRequest::Sign {
            id: KeyId(id),
            message: b"payment order 4711".to_vec(),
        }
    } else {
        AppRequest::Encrypt {
            id: KeyId(id),
            plaintext: SecretBytes::from_slice(b"payment order 4711"),
        }
    };
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match hsm.app_execute(session, peer, partition, ApiProvider::Jce, request)? {
        AppResponse::Signature(_) | AppResponse::Ciphertext(_) => Ok(()),
        other => panic!("unexpected application response {other:?}"),
    }
}

struct Fill {
    keys_took: Duration,
    log_took: Duration,
    events: u64,
    stopped_by: &'static str,
}

/// Creates the keys, then uses them until the log holds `target` entries (or is full, or the
/// time is up), from one application session per core.
fn fill(hsm: &Arc<Hsm>, partition: &PartitionId, target: u64, budget: Duration) -> Fill {
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let started = Instant::now();
    let mut session = connection(hsm, partition);
    for i in 1..=KEYS {
        // Odd ids Ed25519 (signed with), even ids AES-256 (encrypted with).
        let kind = if i % 2 == 1 {
            KeyKind::Ed25519
        } else {
            KeyKind::Aes256
        };
        let request = AppRequest::Generate {
            kind,
            label: label(format!("payments-{i:05}")),
            attributes: OPEN,
            session: false,
        };
        match hsm.app_execute(&mut session, peer, partition, ApiProvider::Jce, request) {
            Ok(AppResponse::Key(k)) => assert_eq!(k.id, KeyId(i), "key ids are sequential"),
            other => panic!("generating key {i}: {other:?}"),
        }
        if i % 2_000 == 0 {
            eprintln!(
                "  {i} keys generated ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let keys_took = started.elapsed();

    let stored = hsm.partition(partition).unwrap().log.stored();
    let wanted = target.saturating_sub(stored);
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let full = Arc::new(AtomicBool::new(false));
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let deadline = started + budget;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (hsm, partition) = (Arc::clone(hsm), partition.clone());
            let (issued, done, full) = (Arc::clone(&issued), Arc::clone(&done), Arc::clone(&full));
            thread::spawn(move || {
                let mut session = connection(&hsm, &partition);
                let mut n = t as u64;
                loop {
                    if full.load(Ordering::Relaxed) || Instant::now() >= deadline {
                        return;
                    }
                    if issued.fetch_add(1, Ordering::Relaxed) >= wanted {
                        return;
                    }
                    let id = n % KEYS + 1;
                    n += threads as u64;
                    match use_key(&hsm, &mut session, &partition, id) {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(AppError::LogFull) => {
                            full.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => panic!("using key {id}: {e:?}"),
                    }
                }
            })
        })
        .collect();
    let mut last_report = Instant::now();
    while workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(200));
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            let n = done.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  {n} of {wanted} application events ({secs:.0} s, {:.0} /s)",
                n as f64 / secs
            );
        }
    }
    for w in workers {
        w.join().expect("fill thread");
    }
    let events = done.load(Ordering::Relaxed);
    let stopped_by = if full.load(Ordering::Relaxed) {
        "the log is full (capacity less its reserve)"
    } else if events >= wanted {
        "the target was reached"
    } else {
        "THE TIME BUDGET RAN OUT"
    };
    Fill {
        keys_took,
        log_took: started.elapsed(),
        events,
        stopped_by,
    }
}

/// What one page carried.
struct Carried {
    /// Keys or log lines in the page.
    items: usize,
    /// Bytes of the page's log lines, a newline each (`None` for keys).
    bytes: Option<usize>,
    /// Where the next page starts, and how far this one went.
    next: String,
}

fn keys_carried((items, more): (usize, bool)) -> Carried {
    Carried {
        items,
        bytes: None,
        next: if more { "more follow" } else { "the last" }.into(),
    }
}

/// A log page read from `from`: its lines and bytes, and how many lines it examined (up to its
/// `next_seq`).
fn log_carried(page: &LogPage, from: u64) -> Carried {
    Carried {
        items: page.lines.len(),
        bytes: Some(page.lines.iter().map(|l| l.len() + 1).sum()),
        next: page.next_seq.map_or("end of log".into(), |next| {
            format!("{next} (+{})", next.saturating_sub(from))
        }),
    }
}

struct Page {
    name: String,
    stats: Stats,
    carried: Carried,
}

fn record_page(pages: &mut Vec<Page>, name: String, f: &mut dyn FnMut() -> Carried) {
    let carried = f();
    let stats = time_it(|| {
        std::hint::black_box(f());
    });
    pages.push(Page {
        name,
        stats,
        carried,
    });
}

fn print_pages(pages: &[Page]) {
    println!(
        "    {:<50} {:>5} {:>7}  {:<18} {:>10}  {:<17} {:>7}",
        "page", "items", "bytes", "next (scanned)", "median ms", "(min .. max)", "ratio"
    );
    for p in pages {
        println!(
            "    {:<50} {:>5} {:>7}  {:<18} {:>10.3}  ({:.3} .. {:.3}) {:>7.2}",
            p.name,
            p.carried.items,
            p.carried.bytes.map_or("-".into(), |b| b.to_string()),
            p.carried.next,
            ms(p.stats.median),
            ms(p.stats.min),
            ms(p.stats.max),
            p.stats.median.as_secs_f64() / FRAME_BUDGET.as_secs_f64()
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let target = env_u64("TESSERA_BENCH_LOG_ENTRIES", DEFAULT_LOG_CAPACITY);
    let fill_budget = Duration::from_secs(env_u64("TESSERA_BENCH_FILL_SECS", 300));

    // The HSM: a data directory, its keys, and a store with non-durable commits.
    let dir = tempfile::tempdir().expect("temporary directory");
    Hsm::init(dir.path()).expect("hsm init");
    let store = Store::open_fast_for_benchmarks(dir.path()).expect("store");
    let keys = HsmKeys::load(dir.path()).expect("hsm keys");
    let hsm = Arc::new(Hsm::with_parts(keys, store, Clock::system()));
    // The benchmark's cards are labelled soft cards.
    hsm.set_soft_cards_allowed(true).expect("allow soft cards");
    let partition = PartitionId::new("bench-1").unwrap();
    let tier = ServiceTier::Platinum;
    let record = hsm
        .create_partition(partition.clone(), "Benchmark payments", tier)
        .expect("partition");
    let quota = record.config.quota;

    // The first terminal pairs and registers a 2-of-3 PSO set.
    let terminal_key = StaticKeypair::generate().unwrap();
    let code = hsm.issue_pairing_code(&partition, genesis()).unwrap();
    let mut pso = Terminal::connect(
        &hsm,
        &partition,
        copy_key(&terminal_key),
        ClientMode::Pairing(code),
    );
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
        Card::new("Chiara Bianchi", "C-3"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1], &cards[2]]);
    // Each card proves its key for this session and this ceremony; the recovery parts have the
    // shape the quorum crate writes for a 2-of-n set (the bench never recovers anything).
    pso.register(CeremonyKind::Enrol, set, Some(recovery()))
        .expect("register the PSO set");
    // The PSO logs in before the fill and keeps the session through it (a successful login
    // with the log full uses the export reserve: the summary tries one at the end).
    pso.login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .expect("PSO login");
    // Platinum leaves object usage on; the PSO makes sure of it, as a real set-up would.
    let AdminResponse::Config(mut config) = pso.admin(AdminRequest::GetConfig).unwrap() else {
        panic!("no configuration")
    };
    if !config.object_usage {
        config.object_usage = true;
        pso.admin(AdminRequest::ChangeConfig {
            expected_revision: config.revision,
            config,
        })
        .expect("object usage on");
    }

    eprintln!(
        "filling: {KEYS} keys, then application events up to {target} log entries (store commits NOT durable)"
    );
    let fill = fill(&hsm, &partition, target, fill_budget);
    let record = hsm.partition(&partition).unwrap();
    let entries = record.log.stored();
    eprintln!(
        "filled: {entries} log entries in {:.1} s",
        (fill.keys_took + fill.log_took).as_secs_f64()
    );
    // The PSO session sat idle through the fill: a ping shows it is still there.
    pso.conn
        .call(Request::Ping)
        .expect("the PSO session survived the fill");

    // Pages stop at their byte budget (hsm_link::message::MAX_PAGE_BYTES), so a page of keys
    // carries fewer than PAGE: the last page starts that many keys before the end.
    let (keys_per_page, _) = list_keys(&mut pso, None);
    assert!(keys_per_page > 0, "the first page of keys is empty");
    let middle_key = KeyId(KEYS / 2 - 1);
    let end_key = KeyId(KEYS.saturating_sub(keys_per_page as u64));
    // The middle of the log, rounded up to a thousand (seq 500,000 for a full log).
    let middle_seq = (entries / 2).div_ceil(1000).max(1) * 1000;
    let end_seq = record.log.next_seq.saturating_sub(u64::from(PAGE)).max(1);
    let key_gen = |from: u64| LogQuery {
        operation_prefix: Some("key.gen".into()),
        ..LogQuery::from(from, PAGE)
    };
    let pso_only = |from: u64| LogQuery {
        role: Some(Role::Pso),
        ..LogQuery::from(from, PAGE)
    };

    let mut group = criterion.benchmark_group("partition-admin-memory-link");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("list keys: first page, limit 1000", |b| {
        b.iter(|| list_keys(&mut pso, None))
    });
    group.bench_function("list keys: middle page, limit 1000", |b| {
        b.iter(|| list_keys(&mut pso, Some(middle_key)))
    });
    group.bench_function("list keys: last page, limit 1000", |b| {
        b.iter(|| list_keys(&mut pso, Some(end_key)))
    });
    group.bench_function("read log: first page, limit 1000", |b| {
        b.iter(|| read_log(&mut pso, &LogQuery::from(1, PAGE)))
    });
    group.bench_function("read log: middle page, limit 1000", |b| {
        b.iter(|| read_log(&mut pso, &LogQuery::from(middle_seq, PAGE)))
    });
    group.bench_function("read log: last page, limit 1000", |b| {
        b.iter(|| read_log(&mut pso, &LogQuery::from(end_seq, PAGE)))
    });
    group.bench_function("read log: filter operation key.gen*, limit 1000", |b| {
        b.iter(|| read_log(&mut pso, &key_gen(1)))
    });
    // The rare filter: one page examines at most MAX_SCANNED_PER_PAGE lines (milliseconds, not
    // microseconds, so more time for its samples).
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("read log: filter role PSO, limit 1000", |b| {
        b.iter(|| read_log(&mut pso, &pso_only(1)))
    });
    group.finish();

    // The same pages once more outside criterion, for the summary.
    let mut link = Vec::new();
    record_page(&mut link, "list keys, first page".into(), &mut || {
        keys_carried(list_keys(&mut pso, None))
    });
    record_page(
        &mut link,
        format!("list keys, middle page (after {})", middle_key.0),
        &mut || keys_carried(list_keys(&mut pso, Some(middle_key))),
    );
    record_page(
        &mut link,
        format!("list keys, last page (after {})", end_key.0),
        &mut || keys_carried(list_keys(&mut pso, Some(end_key))),
    );
    for (what, from) in [("first", 1), ("middle", middle_seq), ("last", end_seq)] {
        record_page(
            &mut link,
            format!("read log, {what} page (seq {from})"),
            &mut || log_carried(&read_log(&mut pso, &LogQuery::from(from, PAGE)), from),
        );
    }
    for from in [1, middle_seq] {
        record_page(
            &mut link,
            format!("read log, filter operation key.gen* (seq {from})"),
            &mut || log_carried(&read_log(&mut pso, &key_gen(from)), from),
        );
    }
    for from in [1, middle_seq] {
        record_page(
            &mut link,
            format!("read log, filter role PSO (seq {from})"),
            &mut || log_carried(&read_log(&mut pso, &pso_only(from)), from),
        );
    }

    // The rare filter followed page by page through the whole log, as a terminal would.
    struct Walk {
        pages: usize,
        lines: usize,
        took: Duration,
        slowest: Duration,
        ended: bool,
    }
    let walk = {
        let mut walk = Walk {
            pages: 0,
            lines: 0,
            took: Duration::ZERO,
            slowest: Duration::ZERO,
            ended: false,
        };
        let mut from = 1;
        // Far more pages than a full log needs: a page that does not advance stops the walk.
        let most_pages = (record.log.next_seq / MAX_SCANNED_PER_PAGE as u64 + 10) * 2;
        while walk.pages < most_pages as usize {
            let started = Instant::now();
            let page = read_log(&mut pso, &pso_only(from));
            let took = started.elapsed();
            walk.pages += 1;
            walk.lines += page.lines.len();
            walk.took += took;
            walk.slowest = walk.slowest.max(took);
            match page.next_seq {
                Some(next) if next > from => from = next,
                Some(_) => break,
                None => {
                    walk.ended = true;
                    break;
                }
            }
        }
        walk
    };

    // The whole log exported into a counting sink, the peak RSS reset before each run.
    struct Export {
        took: Duration,
        bytes: u64,
        lines: u64,
        before: Memory,
        after: Memory,
        sampled_max_rss: u64,
    }
    let mut exports = Vec::new();
    let peak_resettable = reset_peak_rss();
    for _ in 0..EXPORTS {
        reset_peak_rss();
        let before = memory_kib();
        let mut sink = CountingSink::default();
        let started = Instant::now();
        let done = pso
            .conn
            .call_download(
                Request::Admin(AdminRequest::ExportLog {
                    query: LogQuery::from(1, 0),
                }),
                &mut sink,
            )
            .expect("log export");
        let took = started.elapsed();
        let Response::Admin(AdminResponse::ExportDone { lines, .. }) = done else {
            panic!("export ended with {done:?}")
        };
        assert_eq!(lines, sink.lines, "the export's line count");
        exports.push(Export {
            took,
            bytes: sink.bytes,
            lines: sink.lines,
            before,
            after: memory_kib(),
            sampled_max_rss: sink.max_rss_kib,
        });
    }

    // Last, as they end sessions: the PSO session closes, then a fresh PSO login with the log
    // full.
    let _ = pso.conn.close();
    let pso_server = match pso.server.take().expect("served").join() {
        Ok(Ok(summary)) => format!("ended normally ({summary:?})"),
        Ok(Err(e)) => format!("ended with: {e}"),
        Err(_) => "panicked".to_string(),
    };
    let full_login = {
        let mut fresh = Terminal::connect(
            &hsm,
            &partition,
            copy_key(&terminal_key),
            ClientMode::Pinned {
                hsm: hsm.keys().identity_public(),
            },
        );
        let result = fresh.login(OfficerRole::Pso, &[&cards[1], &cards[2]]);
        let _ = fresh.conn.close();
        let _ = fresh.server.take().map(|s| s.join());
        match result {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("REFUSED: {e}"),
        }
    };

    let final_entries = hsm.partition(&partition).unwrap().log.stored();
    println!();
    println!("partition benchmark (one PSO session over the in-memory admin link)");
    println!(
        "  store: redb with NON-DURABLE commits (Store::open_fast_for_benchmarks): fill times are not those of a durable HSM"
    );
    println!(
        "  partition: tier {} (quota {} bytes, object limit {})",
        tier.as_str(),
        quota.size_bytes,
        quota.object_limit.map_or("none".into(), |l| l.to_string())
    );
    println!(
        "  fill: {KEYS} keys generated in {:.1} s ({:.0} /s), then {} application events (sign/encrypt) in {:.1} s ({:.0} /s) on {} threads; total {:.1} s",
        fill.keys_took.as_secs_f64(),
        KEYS as f64 / fill.keys_took.as_secs_f64(),
        fill.events,
        fill.log_took.as_secs_f64(),
        fill.events as f64 / fill.log_took.as_secs_f64(),
        thread::available_parallelism().map_or(2, |n| n.get()),
        (fill.keys_took + fill.log_took).as_secs_f64()
    );
    println!(
        "  log: {entries} entries after the fill (target {target}; capacity {}, of which {} are reserved for export and confirmation); stopped because {}",
        record.log.capacity, record.log.reserve, fill.stopped_by
    );
    if entries < target.min(record.log.capacity - record.log.reserve) {
        println!(
            "  !!! THE LOG HOLDS ONLY {entries} ENTRIES, NOT {target}: the fill was cut short; everything below is measured on the smaller log !!!"
        );
    }
    println!(
        "  pages ask for {PAGE} items and stop at {MAX_PAGE_BYTES} bytes (one link packet carries at most {MAX_PLAINTEXT}); a filtered log page examines at most {MAX_SCANNED_PER_PAGE} lines, its next seq says where to go on"
    );
    println!(
        "  over the in-memory link, median of {REPEATS} (min .. max), ratio against the {:.0} ms frame budget:",
        ms(FRAME_BUDGET)
    );
    print_pages(&link);
    println!(
        "  filter role PSO followed through the whole log: {} pages, {} lines found, {:.1} ms in all, slowest page {:.3} ms (ratio {:.2}){}",
        walk.pages,
        walk.lines,
        ms(walk.took),
        ms(walk.slowest),
        walk.slowest.as_secs_f64() / FRAME_BUDGET.as_secs_f64(),
        if walk.ended {
            ""
        } else {
            "; STOPPED BEFORE THE END OF THE LOG"
        }
    );
    println!("  log export (whole log, streamed over the link into a counting sink):");
    for (i, e) in exports.iter().enumerate() {
        println!(
            "    run {}: {} lines, {:.1} MiB in {:.2} s = {:.1} MiB/s; RSS {:.1} -> {:.1} MiB (max sampled {:.1}); peak RSS {:.1} -> {:.1} MiB",
            i + 1,
            e.lines,
            e.bytes as f64 / (1 << 20) as f64,
            e.took.as_secs_f64(),
            e.bytes as f64 / (1 << 20) as f64 / e.took.as_secs_f64(),
            mib(e.before.rss),
            mib(e.after.rss),
            mib(e.sampled_max_rss),
            mib(e.before.hwm),
            mib(e.after.hwm),
        );
    }
    if !peak_resettable {
        println!("    (the peak RSS could not be reset: it includes the fill)");
    }
    println!("  the HSM's side of the PSO session {pso_server}");
    println!("  a fresh PSO login with the log full: {full_login}");
    println!("  log entries at the end: {final_entries}");
}
