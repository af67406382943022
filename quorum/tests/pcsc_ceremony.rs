//! The enrol and login ceremonies with OpenPGP cards over the real PC/SC stack (pcscd, vpcd and
//! Nitrokey's opcard in `tools/vcard-runner`, started by `scripts/pcsc-up`; scripts/test does it)
//! against the in-process partition service over the in-memory link.
//!
//! Same scheme as `pcsc.rs`: without `target/pcsc/readers.tsv` (or
//! `$TESSERA_PCSC_DIR/readers.tsv`) the test fails with "run scripts/pcsc-up first"; it holds the
//! exclusive lock on `target/pcsc/lock` for its whole run (so it never overlaps a `pcsc.rs` test,
//! whatever runs it), and factory-resets the cards it takes first. It takes cards 0, 1 and 2.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use card_backend_pcsc::PcscBackend;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{AdminError, LoginRefusal, OfficerRole, RemoteError};
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory::{self, MemoryTransport};
use openpgp_card::state::Open;
use partition_service::admin::AdminLink;
use partition_service::service::{Clock, Hsm, genesis};
use quorum::CardError;
use quorum::card::{Card, Pin};
use quorum::ceremony::{CeremonyError, Drill, Enrolment, LinkError, LoginCeremony};
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, PcscCard, VerifiedPcscCard};

const HOLDERS: [&str; 3] = ["Alice Meier", "Bruno Rossi", "Chiara Bianchi"];

fn pcsc_dir() -> PathBuf {
    match std::env::var_os("TESSERA_PCSC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pcsc"),
    }
}

/// Cards `indices` of the stack, factory-reset, with the stack's lock held until dropped.
struct TestCards {
    readers: Vec<String>,
    _lock: File,
}

fn take_cards(indices: &[usize]) -> TestCards {
    let dir = pcsc_dir();
    let table = dir.join("readers.tsv");
    let text = std::fs::read_to_string(&table).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; these tests need the PC/SC test stack: run scripts/pcsc-up first \
             (scripts/test does), then run the tests again",
            table.display()
        )
    });
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .expect("open target/pcsc/lock");
    lock.lock().expect("lock target/pcsc/lock");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect();
    let mut readers = Vec::new();
    for &index in indices {
        let row = rows.get(index).unwrap_or_else(|| {
            panic!(
                "{} lists {} cards; this test needs {}: run scripts/pcsc-up 6",
                table.display(),
                rows.len(),
                index + 1
            )
        });
        assert_eq!(row[0], index.to_string(), "malformed {}", table.display());
        factory_reset(row[1]);
        readers.push(row[1].to_owned());
    }
    TestCards {
        readers,
        _lock: lock,
    }
}

fn factory_reset(reader: &str) {
    let name = CString::new(reader).unwrap();
    let context =
        pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context (is pcscd running?)");
    let deadline = Instant::now() + Duration::from_secs(10);
    let handle = loop {
        match context.connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY) {
            Ok(handle) => break handle,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no card in \"{reader}\" after 10 s: {e}; run scripts/pcsc-up 6"),
        }
    };
    let backend = PcscBackend::from_pcsc_card(&name, pcsc::ShareMode::Exclusive, handle).unwrap();
    let mut card = openpgp_card::Card::<Open>::new(backend).unwrap();
    let mut tx = card.transaction().unwrap();
    tx.factory_reset().unwrap();
}

fn pin(bytes: &[u8]) -> Pin {
    Pin::from_slice(bytes)
}

/// Opens the card in `reader` and verifies its user PIN.
fn verified(reader: &str) -> VerifiedPcscCard {
    PcscCard::open(reader)
        .unwrap()
        .verify(&pin(FACTORY_USER_PIN))
        .unwrap()
}

/// An HSM with one partition, a paired terminal's session to it.
fn hsm_session() -> (tempfile::TempDir, Connection<MemoryTransport>) {
    let dir = tempfile::tempdir().unwrap();
    Hsm::init(dir.path()).unwrap();
    let hsm = Arc::new(Hsm::open(dir.path(), Clock::system()).unwrap());
    let partition = PartitionId::new("bank-1").unwrap();
    hsm.create_partition(partition.clone(), "Bank payments", ServiceTier::Economy)
        .unwrap();
    let code = hsm.issue_pairing_code(&partition, genesis()).unwrap();
    let (near, mut far) = memory::pair();
    let served = Arc::clone(&hsm);
    thread::spawn(move || {
        let admin = AdminLink::new(Arc::clone(&served));
        let identity = served.keys().identity();
        server::serve_connection(
            &mut far,
            identity,
            &ServeOptions::default(),
            &*served,
            &admin,
        )
    });
    let key = StaticKeypair::generate().unwrap();
    let conn = client::connect(
        near,
        &key,
        partition,
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .unwrap();
    (dir, conn)
}

fn login(conn: &mut Connection<MemoryTransport>, readers: &[&str]) -> Result<usize, CeremonyError> {
    let mut ceremony = LoginCeremony::start(conn, OfficerRole::Pso)?;
    for reader in readers {
        // Each card is opened and verified in turn, and dropped (reset) after signing.
        ceremony.present(&mut verified(reader))?;
    }
    Ok(ceremony.submit(conn)?.len())
}

#[test]
fn enrol_two_of_three_on_opcard_cards_and_log_in_with_two() {
    let cards = take_cards(&[0, 1, 2]);
    let (_dir, mut conn) = hsm_session();

    let start = Instant::now();
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    for (reader, holder) in cards.readers.iter().zip(HOLDERS) {
        let mut admin = PcscCard::open(reader)
            .unwrap()
            .admin(&pin(FACTORY_ADMIN_PIN))
            .unwrap();
        admin.set_ecc_algorithms().unwrap();
        admin.generate_keys().unwrap();
        admin.set_holder(holder).unwrap();
        let card = admin.finish().unwrap();
        // A wrong PIN is the card's business: it counts down and hands the card back.
        let card = match card.verify(&pin(b"999999")) {
            Err((card, CardError::WrongPin { retries_left })) => {
                assert_eq!(retries_left, Some(2));
                card
            }
            Err((_, e)) => panic!("{e:?}"),
            Ok(_) => panic!("a wrong PIN verified"),
        };
        let mut card = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
        enrolment.add_card(&mut card).unwrap();
    }
    let registered = enrolment.finish(&mut conn).unwrap();
    assert_eq!(registered.set_number, 1);
    assert!(registered.cards.iter().all(|c| !c.soft_card));
    let enrolled = start.elapsed();

    let readers: Vec<&str> = cards.readers.iter().map(String::as_str).collect();
    let start = Instant::now();
    assert_eq!(login(&mut conn, &[readers[0], readers[1]]).unwrap(), 2);
    let logged_in = start.elapsed();
    assert_eq!(login(&mut conn, &[readers[2], readers[0]]).unwrap(), 2);
    match login(&mut conn, &[readers[1]]) {
        Err(CeremonyError::Link(LinkError::Refused(RemoteError::Admin(AdminError::Login(
            LoginRefusal::TooFewCards { have: 1, need: 2 },
        ))))) => {}
        other => panic!("{other:?}"),
    }

    // A drill of one card over PC/SC.
    let drill = Drill::begin(&mut conn).unwrap();
    let outcome = drill.run(&mut conn, &mut verified(readers[2])).unwrap();
    assert!(outcome.ok(), "{outcome:?}");

    println!(
        "PC/SC ceremonies (opcard): enrol 2-of-3 incl. key generation {enrolled:?}, \
         2-card login incl. opening and verifying the cards {logged_in:?}"
    );
}
