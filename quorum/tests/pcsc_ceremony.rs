//! The ceremonies with OpenPGP cards over the real PC/SC stack (pcscd, vpcd and Nitrokey's
//! opcard in `tools/vcard-runner`, started by `scripts/pcsc-up`; scripts/test does it) against
//! the in-process partition service over the in-memory link: enrol 2-of-3, log in with any two,
//! fail with one, fail with a wrong PIN (the card counts down and blocks at zero), fail with a
//! card of another set, drill a card, re-share to 3-of-5, revoke a card (its signature is
//! refused), recover the quorum backup key with the new set.
//!
//! Same scheme as `pcsc.rs`: without `target/pcsc/readers.tsv` (or
//! `$TESSERA_PCSC_DIR/readers.tsv`) a test fails with "run scripts/pcsc-up first"; each test
//! holds the exclusive lock on `target/pcsc/lock` for its whole run (so it never overlaps
//! another PC/SC test, whatever runs it), and factory-resets the cards it takes first. The
//! tests take cards 0 to 5 (`scripts/pcsc-up 6`).

use tessera_tests::pcsc_stack::{Stack, factory_reset};

use std::sync::Arc;
use std::time::Instant;

use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{HolderName, PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, CardSignature, LoginRefusal, OfficerRole, RemoteError,
    login_message,
};
use hsm_link::transport::memory::MemoryTransport;
use partition_service::service::{Clock, Hsm, genesis};
use quorum::card::{Card, Pin, ShareObject, VerifiedCard};
use quorum::ceremony::{
    ActiveSet, AuditorEnrolment, CeremonyError, Drill, Enrolment, Link, LinkError, LoginCeremony,
    Recovery, Registered, Reshare, Revocation,
};
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, PcscCard, VerifiedPcscCard};
use quorum::secret::{unwrap_with, wrap_to};
use quorum::{CardError, QuorumError};
use tessera_tests::partition::serve_session;
use zeroize::Zeroizing;

/// The holder of card i.
const HOLDERS: [&str; 6] = [
    "Alice Meier",
    "Bruno Rossi",
    "Chiara Bianchi",
    "Dario Neri",
    "Elena Conti",
    "Fabio Greco",
];

/// The admin PIN each card gets at enrolment (no card keeps the factory default).
const ADMIN_PIN: &[u8] = b"tessera-admin-1";

/// The user PIN a holder sets when the admin PIN unblocks the card.
const NEW_USER_PIN: &[u8] = b"246810";

/// Cards of the stack, factory-reset, with the stack's lock held until dropped. `readers[i]`
/// and `serials[i]` are card i of the stack (`None` for a card this test did not take).
struct TestCards {
    readers: Vec<Option<String>>,
    serials: Vec<Option<String>>,
    _stack: Stack,
}

impl TestCards {
    fn reader(&self, index: usize) -> &str {
        self.readers[index]
            .as_deref()
            .unwrap_or_else(|| panic!("this test did not take card {index}"))
    }

    fn serial(&self, index: usize) -> &str {
        self.serials[index]
            .as_deref()
            .unwrap_or_else(|| panic!("this test did not take card {index}"))
    }
}

fn take_cards(indices: &[usize]) -> TestCards {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let mut readers = vec![None; 6];
    let mut serials = vec![None; 6];
    for &index in indices {
        let (reader, serial) = stack.expect_card(index);
        factory_reset(&reader);
        readers[index] = Some(reader);
        serials[index] = Some(serial);
    }
    TestCards {
        readers,
        serials,
        _stack: stack,
    }
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

/// Sets a card up as its enrolment does: ECC attributes, both keys generated on the card, the
/// holder's name, and the admin PIN changed from the factory default.
fn prepare(reader: &str, holder: &str) -> PcscCard {
    let mut admin = PcscCard::open(reader)
        .unwrap()
        .admin(&pin(FACTORY_ADMIN_PIN))
        .unwrap();
    admin.set_ecc_algorithms().unwrap();
    admin.generate_keys().unwrap();
    admin.set_holder(holder).unwrap();
    admin.change_admin_pin(&pin(ADMIN_PIN)).unwrap();
    admin.finish().unwrap()
}

type Conn = Connection<MemoryTransport>;

/// One HSM, its partitions, and the terminal paired to each.
struct Fixture {
    _dir: tempfile::TempDir,
    hsm: Arc<Hsm>,
    terminals: Vec<(PartitionId, StaticKeypair)>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let hsm = Arc::new(Hsm::open(dir.path(), Clock::system()).unwrap());
        Fixture {
            _dir: dir,
            hsm,
            terminals: Vec::new(),
        }
    }

    fn serve(&self) -> MemoryTransport {
        serve_session(&self.hsm).0
    }

    /// Creates partition `name` and pairs a terminal to it: its first session.
    fn pair(&mut self, name: &str) -> Conn {
        let partition = PartitionId::new(name).unwrap();
        self.hsm
            .create_partition(partition.clone(), "Bank payments", ServiceTier::Economy)
            .unwrap();
        let code = self.hsm.issue_pairing_code(&partition, genesis()).unwrap();
        let key = StaticKeypair::generate().unwrap();
        let conn = client::connect(
            self.serve(),
            &key,
            partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )
        .unwrap();
        self.terminals.push((partition, key));
        conn
    }

    /// A new session (no login) of the terminal paired to partition `name`.
    fn session(&self, name: &str) -> Conn {
        let (partition, key) = self
            .terminals
            .iter()
            .find(|(p, _)| p.as_str() == name)
            .expect("a paired partition");
        let key = StaticKeypair::from_secret(Zeroizing::new(*key.secret_bytes()));
        client::connect(
            self.serve(),
            &key,
            partition.clone(),
            ClientMode::Pinned {
                hsm: self.hsm.keys().identity_public(),
            },
            ConnectOptions::default(),
        )
        .unwrap()
    }
}

/// Enrols cards `indices` (prepared first) as an m-of-n PSO set.
fn enrol(conn: &mut Conn, cards: &TestCards, indices: &[usize], threshold: u8) -> Registered {
    let n = u8::try_from(indices.len()).unwrap();
    let mut enrolment = Enrolment::begin(conn, threshold, n).unwrap();
    for (i, &index) in indices.iter().enumerate() {
        let card = prepare(cards.reader(index), HOLDERS[index]);
        let mut card = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
        let progress = enrolment.add_card(&mut card).unwrap();
        assert_eq!((progress.have, progress.need), (i + 1, indices.len()));
    }
    let registered = enrolment.finish(conn).unwrap();
    assert!(registered.cards.iter().all(|c| !c.soft_card));
    registered
}

/// A PSO login with cards `indices`, each opened, verified and dropped (reset) in turn; the
/// holders the HSM logged in.
fn login(
    conn: &mut Conn,
    cards: &TestCards,
    indices: &[usize],
) -> Result<Vec<String>, CeremonyError> {
    let mut ceremony = LoginCeremony::start(conn, OfficerRole::Pso)?;
    for &index in indices {
        ceremony.present(&mut verified(cards.reader(index)))?;
    }
    Ok(names(ceremony.submit(conn)?))
}

fn names(holders: Vec<HolderName>) -> Vec<String> {
    holders.iter().map(|h| h.as_str().to_owned()).collect()
}

fn holders(indices: &[usize]) -> Vec<String> {
    indices.iter().map(|&i| HOLDERS[i].to_owned()).collect()
}

fn refusal(e: CeremonyError) -> AdminError {
    match e {
        CeremonyError::Link(LinkError::Refused(RemoteError::Admin(e))) => e,
        other => panic!("expected an HSM refusal, got {other:?}"),
    }
}

/// A PSO login answered with raw signatures by cards `indices`, so that a card the ceremony
/// would refuse reaches the HSM: the HSM's own refusal.
fn raw_login(conn: &mut Conn, cards: &TestCards, indices: &[usize]) -> Result<(), LinkError> {
    let AdminResponse::Challenge { nonce, .. } = conn
        .admin(AdminRequest::LoginChallenge {
            role: OfficerRole::Pso,
        })
        .unwrap()
    else {
        panic!("no challenge")
    };
    let message = login_message(
        &conn.channel_binding(),
        &nonce,
        Link::partition(conn),
        OfficerRole::Pso,
    );
    let signatures = indices
        .iter()
        .map(|&index| {
            let mut card = verified(cards.reader(index));
            CardSignature {
                signing_key: card.info().signing_public,
                signature: card.sign(&message).unwrap(),
            }
        })
        .collect();
    conn.admin(AdminRequest::Login {
        role: OfficerRole::Pso,
        signatures,
    })
    .map(|_| ())
}

/// The set numbers of the envelopes on the card in `reader` (empty: no share).
fn envelope_sets(reader: &str) -> Vec<u32> {
    verified(reader)
        .read_share_object()
        .unwrap()
        .map(|bytes| {
            ShareObject::parse(&bytes)
                .unwrap()
                .entries()
                .iter()
                .map(|e| e.set_number)
                .collect()
        })
        .unwrap_or_default()
}

/// Recovers the quorum backup key with cards `indices` of the active set.
fn recover(conn: &mut Conn, cards: &TestCards, indices: &[usize]) -> quorum::QuorumBackupKey {
    let mut recovery = Recovery::begin(conn).unwrap();
    for (i, &index) in indices.iter().enumerate() {
        let progress = recovery
            .present(&mut verified(cards.reader(index)))
            .unwrap();
        assert_eq!(progress.have, i + 1);
    }
    recovery.finish().unwrap()
}

#[test]
fn enrol_two_of_three_on_opcard_cards_log_in_with_any_two_and_drill() {
    let cards = take_cards(&[0, 1, 2]);
    let mut f = Fixture::new();
    let mut conn = f.pair("bank-1");

    let start = Instant::now();
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    for (index, holder) in HOLDERS.iter().enumerate().take(3) {
        let card = prepare(cards.reader(index), holder);
        assert!(card.has_keys());
        assert_eq!(card.info().serial, cards.serial(index));
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
    assert_eq!(registered.threshold, 2);
    assert!(registered.cards.iter().all(|c| !c.soft_card));
    let enrolled = start.elapsed();

    // Any two of the three log in; the HSM logs the holders the cards proved.
    let start = Instant::now();
    assert_eq!(login(&mut conn, &cards, &[0, 1]).unwrap(), holders(&[0, 1]));
    let logged_in = start.elapsed();
    assert_eq!(login(&mut conn, &cards, &[2, 0]).unwrap(), holders(&[2, 0]));
    assert_eq!(login(&mut conn, &cards, &[1, 2]).unwrap(), holders(&[1, 2]));

    // One card is not enough: the HSM refuses.
    assert_eq!(
        refusal(login(&mut conn, &cards, &[1]).unwrap_err()),
        AdminError::Login(LoginRefusal::TooFewCards { have: 1, need: 2 })
    );

    // The same card twice is refused and named before anything is sent; the login goes on.
    let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    let progress = ceremony.present(&mut verified(cards.reader(1))).unwrap();
    assert_eq!(progress.to_string(), "1 of 2 — insert the next card");
    match ceremony.present(&mut verified(cards.reader(1))) {
        Err(CeremonyError::SameCardTwice { card }) => {
            assert_eq!(card.serial, cards.serial(1));
            assert_eq!(card.holder.as_deref(), Some(HOLDERS[1]));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        ceremony
            .present(&mut verified(cards.reader(0)))
            .unwrap()
            .complete()
    );
    assert_eq!(ceremony.submit(&mut conn).unwrap().len(), 2);

    // A drill of one card, in a session without a login.
    let mut holder_session = f.session("bank-1");
    let drill = Drill::begin(&mut holder_session).unwrap();
    let outcome = drill
        .run(&mut holder_session, &mut verified(cards.reader(2)))
        .unwrap();
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!(outcome.card.serial, cards.serial(2));
    assert_eq!(outcome.card.holder.as_deref(), Some(HOLDERS[2]));

    println!(
        "PC/SC ceremonies (opcard): enrol 2-of-3 incl. key generation {enrolled:?}, \
         2-card login incl. opening and verifying the cards {logged_in:?}"
    );
}

#[test]
fn a_wrong_pin_counts_down_and_blocks_the_card_and_the_login_goes_on() {
    let cards = take_cards(&[0, 1, 2]);
    let mut f = Fixture::new();
    let mut conn = f.pair("bank-1");
    enrol(&mut conn, &cards, &[0, 1, 2], 2);

    // Enrolment changed the admin PIN: the factory default no longer opens the card.
    let card = PcscCard::open(cards.reader(1)).unwrap();
    let (card, e) = card.admin(&pin(FACTORY_ADMIN_PIN)).unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ),
        "{e:?}"
    );
    drop(card);

    let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    ceremony.present(&mut verified(cards.reader(0))).unwrap();

    // Card 1: each wrong PIN costs a try, and the card comes back to be asked again; the
    // ceremony is untouched.
    let mut card = PcscCard::open(cards.reader(1)).unwrap();
    assert_eq!(card.info().pin_retries_left, Some(3));
    for left in [2u8, 1] {
        let (back, e) = card.verify(&pin(b"000000")).unwrap_err();
        assert!(
            matches!(e, CardError::WrongPin { retries_left: Some(n) } if n == left),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "wrong PIN; {left} {} left before the card blocks",
                if left == 1 { "try" } else { "tries" }
            )
        );
        assert_eq!(back.info().pin_retries_left, Some(left));
        card = back;
        assert_eq!(ceremony.progress().have, 1);
    }
    // At zero the card blocks, says how to unblock it, and refuses the right PIN too.
    let (card, e) = card.verify(&pin(b"000000")).unwrap_err();
    assert!(matches!(e, CardError::Blocked), "{e:?}");
    assert!(e.to_string().contains("admin PIN"), "{e}");
    assert_eq!(card.info().pin_retries_left, Some(0));
    let (card, e) = card.verify(&pin(FACTORY_USER_PIN)).unwrap_err();
    assert!(matches!(e, CardError::Blocked), "{e:?}");
    drop(card);
    // Reopened, it is still blocked: the counter lives on the card.
    let card = PcscCard::open(cards.reader(1)).unwrap();
    assert_eq!(card.info().pin_retries_left, Some(0));
    drop(card);

    // Another holder's card completes the login.
    assert_eq!(
        ceremony.progress().to_string(),
        "1 of 2 — insert the next card"
    );
    assert!(
        ceremony
            .present(&mut verified(cards.reader(2)))
            .unwrap()
            .complete()
    );
    assert_eq!(ceremony.submit(&mut conn).unwrap().len(), 2);

    // The admin PIN set at enrolment unblocks card 1 with a new user PIN; its keys and its
    // share survive: it logs in and passes a drill.
    let mut admin = PcscCard::open(cards.reader(1))
        .unwrap()
        .admin(&pin(ADMIN_PIN))
        .unwrap();
    admin.set_user_pin(&pin(NEW_USER_PIN)).unwrap();
    let card = admin.finish().unwrap();
    assert_eq!(card.info().pin_retries_left, Some(3));
    let (card, e) = card.verify(&pin(FACTORY_USER_PIN)).unwrap_err();
    assert!(matches!(e, CardError::WrongPin { .. }), "{e:?}");
    let mut unblocked = card.verify(&pin(NEW_USER_PIN)).unwrap();
    let mut session = f.session("bank-1");
    let drill = Drill::begin(&mut session).unwrap();
    assert!(drill.run(&mut session, &mut unblocked).unwrap().ok());
    drop(unblocked);
    let mut ceremony = LoginCeremony::start(&mut session, OfficerRole::Pso).unwrap();
    ceremony
        .present(
            &mut PcscCard::open(cards.reader(1))
                .unwrap()
                .verify(&pin(NEW_USER_PIN))
                .unwrap(),
        )
        .unwrap();
    ceremony.present(&mut verified(cards.reader(0))).unwrap();
    assert_eq!(
        names(ceremony.submit(&mut session).unwrap()),
        holders(&[1, 0])
    );
}

#[test]
fn a_card_of_another_set_is_refused_and_named() {
    let cards = take_cards(&[0, 1, 2, 5]);
    let mut f = Fixture::new();
    let mut conn = f.pair("bank-1");
    enrol(&mut conn, &cards, &[0, 1, 2], 2);
    // Card 5 is the only card (1 of 1) of another partition's set on the same HSM.
    let mut other = f.pair("bank-2");
    let other_set = enrol(&mut other, &cards, &[5], 1);
    assert_eq!(other_set.threshold, 1);
    assert_eq!(login(&mut other, &cards, &[5]).unwrap(), holders(&[5]));

    // The login ceremony refuses it and names it, and goes on with the next card.
    let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    ceremony.present(&mut verified(cards.reader(0))).unwrap();
    match ceremony.present(&mut verified(cards.reader(5))) {
        Err(CeremonyError::NotInSet { card }) => {
            assert_eq!(card.serial, cards.serial(5));
            assert_eq!(card.holder.as_deref(), Some(HOLDERS[5]));
            let shown = card.to_string();
            assert_eq!(shown, format!("card {} ({})", cards.serial(5), HOLDERS[5]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ceremony.progress().have, 1);
    ceremony.present(&mut verified(cards.reader(2))).unwrap();
    assert_eq!(names(ceremony.submit(&mut conn).unwrap()), holders(&[0, 2]));

    // Its signature sent to the HSM anyway is refused there, and names its position.
    let mut session = f.session("bank-1");
    let e = raw_login(&mut session, &cards, &[0, 5]).unwrap_err();
    assert_eq!(
        e.admin_error(),
        Some(&AdminError::Login(LoginRefusal::UnknownCard { index: 1 }))
    );

    // Nor does it take part in a drill or a recovery of this partition.
    let drill = Drill::begin(&mut session).unwrap();
    match drill.run(&mut session, &mut verified(cards.reader(5))) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, cards.serial(5)),
        other => panic!("{other:?}"),
    }
    let mut recovery = Recovery::begin(&mut session).unwrap();
    match recovery.present(&mut verified(cards.reader(5))) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, cards.serial(5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(recovery.progress().have, 0);

    // And a card of this set is refused in the other partition.
    let mut ceremony = LoginCeremony::start(&mut other, OfficerRole::Pso).unwrap();
    match ceremony.present(&mut verified(cards.reader(1))) {
        Err(CeremonyError::NotInSet { card }) => {
            assert_eq!(card.serial, cards.serial(1));
            assert_eq!(card.holder.as_deref(), Some(HOLDERS[1]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reshare_to_three_of_five_revoke_a_card_and_recover_with_the_new_set() {
    let cards = take_cards(&[0, 1, 2, 3, 4]);
    let mut f = Fixture::new();
    let mut conn = f.pair("bank-1");
    let first = enrol(&mut conn, &cards, &[0, 1, 2], 2);
    // A backup made under the first set: its data key is wrapped to the quorum backup key.
    let backup = wrap_to(&first.backup_public, &[0x42; 32]).unwrap();

    // Re-share from two old cards to 3-of-5 on cards 0 to 4 (cards 0 to 2 are in both sets).
    login(&mut conn, &cards, &[0, 1]).unwrap();

    // First a re-share abandoned after writing the new shares of the cards in both sets: each
    // keeps its old envelope beside the new one, and the old set recovers with those cards.
    let mut aborted = Reshare::begin(&mut conn).unwrap();
    aborted.present_old(&mut verified(cards.reader(0))).unwrap();
    aborted.present_old(&mut verified(cards.reader(2))).unwrap();
    let mut aborted = aborted.split(3, 5).unwrap();
    for index in 0..3 {
        aborted
            .add_card(&mut verified(cards.reader(index)))
            .unwrap();
    }
    drop(aborted);
    for index in 0..3 {
        assert_eq!(envelope_sets(cards.reader(index)), [1, 2], "card {index}");
    }
    let key = recover(&mut conn, &cards, &[2, 1]);
    assert_eq!(key.public_key(), first.backup_public);
    assert_eq!(*unwrap_with(&key, &backup).unwrap(), [0x42; 32]);
    drop(key);

    let start = Instant::now();
    let mut reshare = Reshare::begin(&mut conn).unwrap();
    reshare.present_old(&mut verified(cards.reader(1))).unwrap();
    // Fewer than m old shares are never combined.
    let (mut reshare, refused) = reshare.split(3, 5).unwrap_err();
    assert!(matches!(
        refused,
        CeremonyError::Quorum(QuorumError::NotEnoughShares { got: 1, needed: 2 })
    ));
    assert!(
        reshare
            .present_old(&mut verified(cards.reader(2)))
            .unwrap()
            .complete()
    );
    let mut reshare = reshare.split(3, 5).unwrap();
    for index in [3, 4] {
        drop(prepare(cards.reader(index), HOLDERS[index]));
    }
    for index in 0..5 {
        let progress = reshare
            .add_card(&mut verified(cards.reader(index)))
            .unwrap();
        assert_eq!((progress.have, progress.need), (index + 1, 5));
    }
    let done = reshare.finish(&mut conn).unwrap();
    let reshared = start.elapsed();
    assert_eq!(done.registered.set_number, 2);
    assert_eq!(done.registered.threshold, 3);
    assert_eq!(done.registered.backup_public, first.backup_public);
    // Every old card is in the new set: none is left holding an old share, none to wipe.
    assert!(
        done.old_shares_left.is_empty(),
        "{:?}",
        done.old_shares_left
    );
    assert!(done.pending().is_empty());
    // The last step: the old envelopes go, the new ones stay.
    for index in 0..5 {
        let removed = done
            .registered
            .drop_old_share(&mut verified(cards.reader(index)))
            .unwrap();
        assert_eq!(removed, index < 3, "card {index}");
        assert_eq!(envelope_sets(cards.reader(index)), [2], "card {index}");
    }

    // Three cards of the new set log in (a new session), two do not.
    let mut session = f.session("bank-1");
    assert_eq!(
        refusal(login(&mut session, &cards, &[3, 0]).unwrap_err()),
        AdminError::Login(LoginRefusal::TooFewCards { have: 2, need: 3 })
    );
    let start = Instant::now();
    assert_eq!(
        login(&mut session, &cards, &[3, 4, 0]).unwrap(),
        holders(&[3, 4, 0])
    );
    let logged_in = start.elapsed();

    // Recovery with the new set: three shares, checked and combined; the key opens the backup
    // made under the first set (a re-share keeps the secret).
    let start = Instant::now();
    let key = recover(&mut session, &cards, &[4, 1, 3]);
    let recovered = start.elapsed();
    assert_eq!(key.public_key(), first.backup_public);
    assert_eq!(*unwrap_with(&key, &backup).unwrap(), [0x42; 32]);
    drop(key);
    // Two shares of the new set are never combined.
    let mut short = Recovery::begin(&mut session).unwrap();
    short.present(&mut verified(cards.reader(0))).unwrap();
    short.present(&mut verified(cards.reader(2))).unwrap();
    assert!(matches!(
        short.finish(),
        Err(CeremonyError::Quorum(QuorumError::NotEnoughShares { .. }))
    ));

    // Revoke card 4: a fresh secret for 3-of-4 on cards 0 to 3.
    let start = Instant::now();
    let mut revocation = Revocation::begin(&mut session, cards.serial(4), 3, 4).unwrap();
    match revocation.add_card(&mut verified(cards.reader(4))) {
        Err(CeremonyError::RevokedCard { card }) => {
            assert_eq!(card.serial, cards.serial(4));
            assert_eq!(card.holder.as_deref(), Some(HOLDERS[4]));
        }
        other => panic!("{other:?}"),
    }
    for index in 0..4 {
        revocation
            .add_card(&mut verified(cards.reader(index)))
            .unwrap();
    }
    let revoked = revocation.finish(&mut session).unwrap();
    let revoke_time = start.elapsed();
    assert_eq!(revoked.registered.set_number, 3);
    assert_eq!(revoked.revoked.serial, cards.serial(4));
    assert!(revoked.old_shares_left.is_empty());
    assert_ne!(revoked.registered.backup_public, first.backup_public);
    for index in 0..4 {
        assert_eq!(envelope_sets(cards.reader(index)), [2, 3], "card {index}");
        assert!(
            revoked
                .registered
                .drop_old_share(&mut verified(cards.reader(index)))
                .unwrap()
        );
        assert_eq!(envelope_sets(cards.reader(index)), [3], "card {index}");
    }

    // The revoked card's login signature is refused by the HSM at once; the ceremony refuses
    // the card and names it.
    let mut session = f.session("bank-1");
    let e = raw_login(&mut session, &cards, &[0, 1, 4]).unwrap_err();
    assert_eq!(
        e.admin_error(),
        Some(&AdminError::Login(LoginRefusal::UnknownCard { index: 2 }))
    );
    let mut ceremony = LoginCeremony::start(&mut session, OfficerRole::Pso).unwrap();
    match ceremony.present(&mut verified(cards.reader(4))) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, cards.serial(4)),
        other => panic!("{other:?}"),
    }
    drop(ceremony);
    // Three remaining cards log in.
    assert_eq!(
        login(&mut session, &cards, &[2, 3, 1]).unwrap(),
        holders(&[2, 3, 1])
    );

    // Recovery with the set after the revocation: its fresh key opens a data key wrapped to
    // the newly registered public key, and not the backup of the first set.
    let active = ActiveSet::fetch(&mut session)
        .unwrap()
        .expect("an active set");
    assert_eq!(active.set_number, 3);
    assert_eq!(active.backup_public, revoked.registered.backup_public);
    let fresh = wrap_to(&active.backup_public, &[7; 32]).unwrap();
    let key = recover(&mut session, &cards, &[3, 0, 2]);
    assert_eq!(key.public_key(), active.backup_public);
    assert_eq!(*unwrap_with(&key, &fresh).unwrap(), [7; 32]);
    assert!(matches!(
        unwrap_with(&key, &backup),
        Err(QuorumError::Unwrap)
    ));
    // The revoked card takes no part in a recovery.
    let mut recovery = Recovery::begin(&mut session).unwrap();
    assert!(matches!(
        recovery.present(&mut verified(cards.reader(4))),
        Err(CeremonyError::NotInSet { .. })
    ));

    println!(
        "PC/SC ceremonies (opcard): re-share 2-of-3 -> 3-of-5 incl. key generation on 2 cards \
         {reshared:?}, 3-card login {logged_in:?}, 3-of-5 recovery {recovered:?}, revoke to \
         3-of-4 {revoke_time:?}"
    );
}

#[test]
fn an_auditor_set_is_enrolled_in_a_ceremony_and_so_cards_of_two_people_log_in() {
    let cards = take_cards(&[0, 1, 2, 3, 4, 5]);
    let mut f = Fixture::new();
    let mut conn = f.pair("bank-1");
    enrol(&mut conn, &cards, &[0, 1], 2);
    assert_eq!(login(&mut conn, &cards, &[0, 1]).unwrap(), holders(&[0, 1]));

    // Auditors 1-of-2: each card, verified with its PIN, signs its proof for this ceremony.
    let mut enrolment = AuditorEnrolment::begin(&mut conn, 1, 2).unwrap();
    let id = enrolment.id();
    for index in [2, 3] {
        let mut card = prepare(cards.reader(index), HOLDERS[index])
            .verify(&pin(FACTORY_USER_PIN))
            .unwrap();
        enrolment.add_card(&mut card).unwrap();
        // The same card twice is named.
        match enrolment.add_card(&mut card) {
            Err(CeremonyError::SameCardTwice { card }) => {
                assert_eq!(card.serial, cards.serial(index))
            }
            other => panic!("{other:?}"),
        }
    }
    let registered = enrolment.finish(&mut conn).unwrap();
    assert_eq!((registered.set_number, registered.threshold), (1, 1));
    assert_eq!(registered.ceremony, id);
    // Auditor cards carry keys and no share.
    assert!(envelope_sets(cards.reader(2)).is_empty());
    assert!(envelope_sets(cards.reader(3)).is_empty());

    // The auditor logs in with one card of the set; a PSO card is not an auditor card.
    let mut session = f.session("bank-1");
    let mut auditor = LoginCeremony::start(&mut session, OfficerRole::Auditor).unwrap();
    match auditor.present(&mut verified(cards.reader(0))) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, cards.serial(0)),
        other => panic!("{other:?}"),
    }
    auditor.present(&mut verified(cards.reader(3))).unwrap();
    assert_eq!(names(auditor.submit(&mut session).unwrap()), holders(&[3]));

    // SO cards 4 and 5, of two people, registered by the HSM's owner from the cards' keys;
    // an SO session needs both.
    for index in [4, 5] {
        let card = prepare(cards.reader(index), HOLDERS[index]);
        f.hsm
            .add_so_card(hsm_link::domain::CardDescription {
                holder: HolderName::new(HOLDERS[index]).unwrap(),
                serial: hsm_link::domain::CardSerial::new(cards.serial(index)).unwrap(),
                signing_key: card.info().signing_public,
                soft_card: false,
            })
            .unwrap();
    }
    f.hsm.set_so_threshold(2).unwrap();
    let mut so_session = f.session("bank-1");
    let mut so = LoginCeremony::start(&mut so_session, OfficerRole::DeviceSo).unwrap();
    so.present(&mut verified(cards.reader(4))).unwrap();
    match so.submit(&mut so_session) {
        Err(e) => assert!(matches!(
            refusal(e),
            AdminError::Login(LoginRefusal::TooFewCards { have: 1, need: 2 })
        )),
        Ok(_) => panic!("one SO card logged in"),
    }
    let mut so = LoginCeremony::start(&mut so_session, OfficerRole::DeviceSo).unwrap();
    for index in [4, 5] {
        so.present(&mut verified(cards.reader(index))).unwrap();
    }
    assert_eq!(names(so.submit(&mut so_session).unwrap()), holders(&[4, 5]));
}
