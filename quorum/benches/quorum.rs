//! The terminal-side cost of a 3-of-5 login and of a 3-of-5 recovery, card time excluded, and
//! the card time measured against opcard over PC/SC. Run with
//! `cargo bench -p quorum --bench quorum`.
//!
//! - Terminal side: the ceremonies run on five soft cards of a 3-of-5 set enrolled at an
//!   in-process partition service. Every call into a card (signature, ECDH, reading the share
//!   object) is timed and subtracted, so what remains is the ceremony's own work. Login: the
//!   login message, the set and duplicate checks for three cards, the request. Recovery: the
//!   recovery parts parsed (commitments, backup public key), three share envelopes opened (HKDF,
//!   AES-GCM) and checked against the Feldman commitments, the combination, the X-Wing
//!   derivation and the check against the registered key. The HSM's answers are replayed from
//!   memory, so no link round trip is counted either (they are printed separately).
//! - Card time: with the PC/SC test stack up (`scripts/pcsc-up`; `target/pcsc/readers.tsv`, or
//!   `$TESSERA_PCSC_DIR/readers.tsv`), card 5 is factory-reset, given keys and a share, and each
//!   card operation is timed; the lock `target/pcsc/lock` is held meanwhile, as the PC/SC tests
//!   do. Without the stack this part is skipped with a note.

use tessera_tests::timed_card::Timed;

use tessera_tests::pcsc_stack::{Stack, factory_reset};

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{AdminRequest, AdminResponse, OfficerRole, login_message};
use hsm_link::transport::memory::MemoryTransport;
use partition_service::service::{Clock, Hsm, genesis};
use quorum::card::{Card, CardInfo, Pin, VerifiedCard};
use quorum::ceremony::{Challenge, Enrolment, Link, LinkError, LoginCeremony, Recovery};
use quorum::envelope::ShareContext;
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, PcscCard};
use quorum::secret::{QuorumBackupKey, RecoverySecret, combine, split, verify_share};
use quorum::soft::{Argon2Params, SoftCard, VerifiedSoftCard};
use tessera_tests::partition::serve_session;

const PASSPHRASE: &[u8] = b"correct horse battery";
const HOLDERS: [&str; 5] = [
    "Alice Meier",
    "Bruno Rossi",
    "Chiara Bianchi",
    "Dario Neri",
    "Elena Conti",
];
/// Rounds of the summary measurements outside criterion.
const ROUNDS: u32 = 200;
/// Rounds of each card operation over PC/SC.
const CARD_ROUNDS: u32 = 20;
/// The card of the PC/SC stack the benchmark takes.
const CARD: usize = 5;

/// The HSM's recovery parts, replayed from memory: a recovery without a link round trip.
struct Replay {
    recovery_public: AdminResponse,
    binding: [u8; 32],
    partition: PartitionId,
}

impl Link for Replay {
    fn admin(&mut self, request: AdminRequest) -> Result<AdminResponse, LinkError> {
        match request {
            AdminRequest::GetRecoveryPublic => Ok(self.recovery_public.clone()),
            _ => Err(LinkError::Unexpected),
        }
    }
    fn channel_binding(&self) -> [u8; 32] {
        self.binding
    }
    fn partition(&self) -> &PartitionId {
        &self.partition
    }
}

/// An HSM with a 3-of-5 PSO set enrolled on five soft cards.
struct Setup {
    _hsm_dir: tempfile::TempDir,
    _cards_dir: tempfile::TempDir,
    conn: Connection<MemoryTransport>,
    cards: Vec<VerifiedSoftCard>,
}

fn setup() -> Setup {
    let hsm_dir = tempfile::tempdir().unwrap();
    Hsm::init(hsm_dir.path()).unwrap();
    let hsm = Arc::new(Hsm::open(hsm_dir.path(), Clock::system()).unwrap());
    hsm.set_soft_cards_allowed(true).unwrap();
    let partition = PartitionId::new("bench").unwrap();
    hsm.create_partition(partition.clone(), "Benchmark", ServiceTier::Economy)
        .unwrap();
    let code = hsm.issue_pairing_code(&partition, genesis()).unwrap();
    let (near, _server) = serve_session(&hsm);
    let key = StaticKeypair::generate().unwrap();
    let mut conn = client::connect(
        near,
        &key,
        partition,
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .unwrap();

    let cards_dir = tempfile::tempdir().unwrap();
    let passphrase = Pin::from_slice(PASSPHRASE);
    let mut cards: Vec<VerifiedSoftCard> = HOLDERS
        .iter()
        .enumerate()
        .map(|(i, holder)| {
            let serial = format!("B-{i}");
            SoftCard::create(
                &cards_dir.path().join(&serial),
                Some(holder),
                &serial,
                &passphrase,
                Argon2Params::insecure_for_tests(),
                quorum::CardPolicy::allowed_by_configuration(),
            )
            .unwrap();
            SoftCard::open_test_card(&cards_dir.path().join(&serial))
                .unwrap()
                .verify(&passphrase)
                .unwrap()
        })
        .collect();
    let mut enrolment = Enrolment::begin(&mut conn, 3, 5).unwrap();
    for card in &mut cards {
        enrolment.add_card(card).unwrap();
    }
    enrolment.finish(&mut conn).unwrap();
    Setup {
        _hsm_dir: hsm_dir,
        _cards_dir: cards_dir,
        conn,
        cards,
    }
}

/// One 3-of-5 login's terminal-side work on `cards[0..3]`; (total, card time).
fn login_once(
    challenge: &Challenge,
    binding: &[u8; 32],
    partition: &PartitionId,
    cards: &mut [VerifiedSoftCard],
) -> (Duration, Duration) {
    let spent = Cell::new(Duration::ZERO);
    let start = Instant::now();
    let mut ceremony = LoginCeremony::new(challenge.clone(), OfficerRole::Pso, binding, partition);
    for card in &mut cards[..3] {
        ceremony
            .present(&mut Timed {
                card,
                spent: &spent,
            })
            .unwrap();
    }
    black_box(ceremony.finish());
    (start.elapsed(), spent.get())
}

/// One 3-of-5 recovery's terminal-side work with `cards[2..5]`; (total, card time).
fn recovery_once(replay: &mut Replay, cards: &mut [VerifiedSoftCard]) -> (Duration, Duration) {
    let spent = Cell::new(Duration::ZERO);
    let start = Instant::now();
    let mut recovery = Recovery::begin(replay).unwrap();
    for card in &mut cards[2..5] {
        recovery
            .present(&mut Timed {
                card,
                spent: &spent,
            })
            .unwrap();
    }
    black_box(recovery.finish().unwrap());
    (start.elapsed(), spent.get())
}

fn mean(total: Duration, n: u32) -> Duration {
    total / n
}

/// The medians of both parts of `ROUNDS` runs of `f`.
fn medians(mut f: impl FnMut() -> (Duration, Duration)) -> (Duration, Duration) {
    let (mut a, mut b): (Vec<Duration>, Vec<Duration>) = (0..ROUNDS).map(|_| f()).unzip();
    a.sort_unstable();
    b.sort_unstable();
    (a[a.len() / 2], b[b.len() / 2])
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let Setup {
        mut conn,
        mut cards,
        _hsm_dir,
        _cards_dir,
    } = setup();
    let challenge = Challenge::request(&mut conn, OfficerRole::Pso).unwrap();
    let binding = conn.channel_binding();
    let partition = Link::partition(&conn).clone();
    let mut replay = Replay {
        recovery_public: conn.admin(AdminRequest::GetRecoveryPublic).unwrap(),
        binding,
        partition: partition.clone(),
    };

    let mut group = criterion.benchmark_group("quorum-terminal-side");
    group.bench_function("3-of-5 login, card time excluded", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (total, card) = login_once(&challenge, &binding, &partition, &mut cards);
                    total.saturating_sub(card)
                })
                .sum()
        })
    });
    group.bench_function("3-of-5 recovery, card time excluded", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (total, card) = recovery_once(&mut replay, &mut cards);
                    total.saturating_sub(card)
                })
                .sum()
        })
    });
    group.finish();

    // The same, measured once more outside criterion for the summary (medians: one page fault
    // or preemption does not move them).
    let (login_local, login_card) = medians(|| {
        let (total, card) = login_once(&challenge, &binding, &partition, &mut cards);
        (total.saturating_sub(card), card)
    });
    let (recovery_local, recovery_card) = medians(|| {
        let (total, card) = recovery_once(&mut replay, &mut cards);
        (total.saturating_sub(card), card)
    });
    // For reference: the round trips of a real login to the in-process HSM (in-memory link).
    let (mut challenge_rtt, mut submit_rtt) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS / 10 {
        let start = Instant::now();
        let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
        challenge_rtt += start.elapsed();
        for card in &mut cards[..3] {
            ceremony.present(card).unwrap();
        }
        let start = Instant::now();
        assert_eq!(ceremony.submit(&mut conn).unwrap().len(), 3);
        submit_rtt += start.elapsed();
    }

    println!();
    println!(
        "quorum: terminal-side cost (card time excluded; 3-of-5 set on soft cards, median \
         of {ROUNDS}):"
    );
    println!(
        "  3-of-5 login:    {:>10.1?}  (login message, 3 cards checked against the set, \
         request; soft-card signing excluded: {:.1?})",
        login_local, login_card
    );
    println!(
        "  3-of-5 recovery: {:>10.1?}  (3 envelopes opened and Feldman-checked, combine, X-Wing \
         derivation, key check; soft-card ECDH and reads excluded: {:.1?})",
        recovery_local, recovery_card
    );
    println!(
        "  not included, for reference (in-process HSM, in-memory link): challenge round trip \
         {:.1?}, login round trip with the HSM's checks {:.1?}",
        mean(challenge_rtt, ROUNDS / 10),
        mean(submit_rtt, ROUNDS / 10)
    );
    recovery_breakdown();
    card_time();
}

/// Where a recovery's time goes: its steps alone, on a fresh 3-of-5 split.
fn recovery_breakdown() {
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 3, 5).unwrap();
    let (check, _) = medians(|| {
        let start = Instant::now();
        verify_share(&commitments, &shares[0]).unwrap();
        (start.elapsed(), Duration::ZERO)
    });
    let (combined, _) = medians(|| {
        let start = Instant::now();
        black_box(combine(&commitments, 3, &shares[..3]).unwrap());
        (start.elapsed(), Duration::ZERO)
    });
    let (derive, _) = medians(|| {
        let start = Instant::now();
        black_box(QuorumBackupKey::derive(&secret));
        (start.elapsed(), Duration::ZERO)
    });
    println!(
        "  recovery steps alone: Feldman check of one share {check:.1?}, public `combine` of 3 \
         shares {combined:.1?} (it checks each share again; the ceremony's combine does not), \
         X-Wing key derivation {derive:.1?}"
    );
}

/// The card time of each operation against opcard, if the PC/SC stack is up.
fn card_time() {
    let Ok(stack) = Stack::lock() else {
        println!("card time: skipped (run scripts/pcsc-up)");
        return;
    };
    let Some((reader, _)) = stack.card(CARD) else {
        println!("card time: skipped (readers.tsv lists no card {CARD}: run scripts/pcsc-up 6)");
        return;
    };
    factory_reset(&reader);

    // Keys on the card and a share of a 3-of-5 split in its share object.
    let pin = Pin::from_slice(FACTORY_USER_PIN);
    let mut admin = PcscCard::open(&reader)
        .unwrap()
        .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
        .unwrap();
    admin.generate_keys().unwrap();
    admin.set_holder(HOLDERS[0]).unwrap();
    let card = admin.finish().unwrap();
    let info = card.info();
    let ctx = ShareContext {
        partition: PartitionId::new("bench").unwrap(),
        set_number: 1,
        share_index: 1,
        card_serial: info.serial.clone(),
    };
    let secret = RecoverySecret::generate().unwrap();
    let (shares, _) = split(&secret, 3, 5).unwrap();
    let mut verified = card.verify(&pin).unwrap();
    verified.store_share(&ctx, &shares[0]).unwrap();
    drop(verified);
    let message = login_message(&[7; 32], &[9; 32], &ctx.partition, OfficerRole::Pso);

    let mut t = [Duration::ZERO; 7];
    for _ in 0..CARD_ROUNDS {
        let start = Instant::now();
        let card = PcscCard::open(&reader).unwrap();
        t[0] += start.elapsed();
        let start = Instant::now();
        let mut verified = card.verify(&pin).unwrap();
        t[1] += start.elapsed();
        let start = Instant::now();
        black_box(verified.sign(&message).unwrap());
        t[2] += start.elapsed();
        let start = Instant::now();
        let object = verified.read_share_object().unwrap().unwrap();
        t[3] += start.elapsed();
        // The object is a share container (quorum::card::ShareObject): this card's envelope
        // for set 1.
        let container = quorum::card::ShareObject::parse(&object).unwrap();
        let envelope = container.envelope_for(1).unwrap().to_vec();
        let header = quorum::EnvelopeHeader::parse(&envelope).unwrap();
        let start = Instant::now();
        let share = quorum::open_share(
            &header,
            &info.decryption_public,
            |e| {
                let start = Instant::now();
                let shared = verified.decipher(e);
                t[4] += start.elapsed();
                shared
            },
            &ctx,
        )
        .unwrap();
        t[5] += start.elapsed();
        assert_eq!(*share.to_bytes(), *shares[0].to_bytes());
        let start = Instant::now();
        drop(verified);
        t[6] += start.elapsed();
    }
    drop(stack);
    let [open, verify, sign, read, decipher, open_share, close] = t.map(|d| d / CARD_ROUNDS);
    let per_login_card = open + verify + sign + close;
    let per_recovery_card = open + verify + read + decipher + close;
    println!(
        "card time (opcard in vcard-runner over pcscd/vpcd, \"{reader}\", mean of {CARD_ROUNDS}):"
    );
    let object_len = object_len(&shares[0], &ctx, &info);
    let rows = [
        (
            "open (connect, SELECT, identity, keys, PIN status)".to_owned(),
            open,
        ),
        (
            "VERIFY (PW1 0x81 + 0x82, then PW status)".to_owned(),
            verify,
        ),
        (
            format!(
                "sign (PSO:CDS, Ed25519, {}-byte login message)",
                message.len()
            ),
            sign,
        ),
        (
            format!("read share object (DO 0103, {object_len} bytes)"),
            read,
        ),
        ("decipher (PSO:DECIPHER, X25519)".to_owned(), decipher),
        ("close (disconnect with card reset)".to_owned(), close),
        (
            "per card in a login (open, VERIFY, sign, close)".to_owned(),
            per_login_card,
        ),
        (
            "per card in a recovery (open, VERIFY, read, decipher, close)".to_owned(),
            per_recovery_card,
        ),
        ("3-of-5 login, card time".to_owned(), per_login_card * 3),
        (
            "3-of-5 recovery, card time".to_owned(),
            per_recovery_card * 3,
        ),
    ];
    for (label, time) in rows {
        println!("  {label:<62} {time:>10.1?}");
    }
    println!(
        "  (not card time: opening the envelope around the card's ECDH took {:.1?} more)",
        open_share.saturating_sub(decipher)
    );
}

/// The length of the share object sealed for `info` (what the card stores).
fn object_len(share: &quorum::Share, ctx: &ShareContext, info: &CardInfo) -> usize {
    quorum::seal_share(&info.decryption_public, ctx, share)
        .unwrap()
        .len()
}
