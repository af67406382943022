//! The ceremonies end to end with soft cards against the in-process partition service over the
//! in-memory link: enrol, log in, drill, re-share, revoke, recover, and the ceremony id's
//! protection against a step slipped in from another ceremony.

use tessera_tests::timed_card::Timed;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, CardSignature, LogQuery, LoginRefusal, OfficerRole,
    RemoteError, login_message,
};
use hsm_link::transport::memory::MemoryTransport;
use partition_service::service::{Clock, Hsm, genesis};
use quorum::card::{Card, CardInfo, Pin, ShareObject, VerifiedCard};
use quorum::ceremony::{
    ActiveSet, AuditorEnrolment, BackupRecovery, CeremonyError, Drill, Enrolment, Link, LinkError,
    LoginCeremony, Recovery, Reshare, Revocation,
};
use quorum::envelope::ShareContext;
use quorum::secret::{unwrap_with, wrap_to};
use quorum::soft::{Argon2Params, SoftCard, VerifiedSoftCard};
use quorum::{CardError, QuorumBackupKey, QuorumBackupPublicKey, QuorumError};
use tessera_tests::partition::serve_session;
use zeroize::Zeroizing;

const PASSPHRASE: &[u8] = b"correct horse battery";

/// An HSM with one partition, served over the in-memory link.
struct Fixture {
    _dir: tempfile::TempDir,
    cards: tempfile::TempDir,
    hsm: Arc<Hsm>,
    partition: PartitionId,
    first_terminal: Option<StaticKeypair>,
}

type Conn = Connection<MemoryTransport>;

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let hsm = Arc::new(Hsm::open(dir.path(), Clock::system()).unwrap());
        // These ceremonies run on soft cards.
        hsm.set_soft_cards_allowed(true).unwrap();
        let partition = PartitionId::new("bank-1").unwrap();
        hsm.create_partition(partition.clone(), "Bank payments", ServiceTier::Economy)
            .unwrap();
        Fixture {
            _dir: dir,
            cards: tempfile::tempdir().unwrap(),
            hsm,
            partition,
            first_terminal: None,
        }
    }

    fn serve(&self) -> MemoryTransport {
        serve_session(&self.hsm).0
    }

    /// Pairs the first terminal.
    fn pair(&mut self) -> Conn {
        let key = StaticKeypair::generate().unwrap();
        let code = self
            .hsm
            .issue_pairing_code(&self.partition, genesis())
            .unwrap();
        let conn = client::connect(
            self.serve(),
            &key,
            self.partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )
        .unwrap();
        self.first_terminal = Some(key);
        conn
    }

    /// A new session of the first terminal (no login).
    fn session(&self) -> Conn {
        let key = self.first_terminal.as_ref().unwrap();
        let key = StaticKeypair::from_secret(Zeroizing::new(*key.secret_bytes()));
        client::connect(
            self.serve(),
            &key,
            self.partition.clone(),
            ClientMode::Pinned {
                hsm: self.hsm.keys().identity_public(),
            },
            ConnectOptions::default(),
        )
        .unwrap()
    }

    fn new_card(&self, holder: &str, serial: &str) {
        self.new_card_of(Some(holder), serial);
    }

    fn new_card_of(&self, holder: Option<&str>, serial: &str) {
        SoftCard::create(
            &self.cards.path().join(serial),
            holder,
            serial,
            &Pin::from_slice(PASSPHRASE),
            Argon2Params::insecure_for_tests(),
            quorum::CardPolicy::allowed_by_configuration(),
        )
        .unwrap();
    }

    fn card(&self, serial: &str) -> VerifiedSoftCard {
        open(self.cards.path(), serial)
    }
}

fn open(dir: &Path, serial: &str) -> VerifiedSoftCard {
    let card = SoftCard::open_test_card(&dir.join(serial)).unwrap();
    // A wrong PIN hands the card back with the tries left: the caller asks again.
    let card = match card.verify(&Pin::from_slice(b"not the passphrase")) {
        Err((card, CardError::WrongPin { retries_left: None })) => card,
        other => panic!("a wrong passphrase must be refused, got {other:?}"),
    };
    card.verify(&Pin::from_slice(PASSPHRASE)).unwrap()
}

const OLD: [(&str, &str); 3] = [
    ("Alice Meier", "A-1"),
    ("Bruno Rossi", "B-2"),
    ("Chiara Bianchi", "C-3"),
];

/// A fixture with a 2-of-3 PSO set enrolled by the enrol ceremony on soft cards A-1, B-2, C-3.
fn enrolled() -> (Fixture, Conn) {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    for (holder, serial) in OLD {
        f.new_card(holder, serial);
    }
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    for (i, (_, serial)) in OLD.iter().enumerate() {
        let progress = enrolment.add_card(&mut f.card(serial)).unwrap();
        assert_eq!((progress.have, progress.need), (i + 1, 3));
    }
    let registered = enrolment.finish(&mut conn).unwrap();
    assert_eq!(registered.set_number, 1);
    (f, conn)
}

fn login(f: &Fixture, conn: &mut Conn, serials: &[&str]) -> Result<Vec<String>, CeremonyError> {
    let mut ceremony = LoginCeremony::start(conn, OfficerRole::Pso)?;
    for serial in serials {
        ceremony.present(&mut f.card(serial))?;
    }
    Ok(ceremony
        .submit(conn)?
        .iter()
        .map(|h| h.as_str().to_owned())
        .collect())
}

fn refusal(e: CeremonyError) -> AdminError {
    match e {
        CeremonyError::Link(LinkError::Refused(RemoteError::Admin(e))) => e,
        other => panic!("expected an HSM refusal, got {other:?}"),
    }
}

fn log_text(conn: &mut Conn) -> String {
    match conn.admin(AdminRequest::ReadLog {
        query: LogQuery::from(1, 1000),
    }) {
        Ok(AdminResponse::LogPage(page)) => page.lines.join("\n"),
        other => panic!("no log page: {other:?}"),
    }
}

fn active(conn: &mut Conn) -> ActiveSet {
    ActiveSet::fetch(conn).unwrap().expect("an active set")
}

#[test]
fn enrol_two_of_three_and_log_in_with_any_two() {
    let (f, mut conn) = enrolled();
    // Card management shows which share of which set a card holds.
    let set = active(&mut conn);
    assert_eq!(set.set_number, 1);
    assert_eq!(set.share_index_of(&f.card("B-2").info()), Some(2));
    f.new_card("Zoe Stranger", "Z-9");
    assert_eq!(set.share_index_of(&f.card("Z-9").info()), None);
    for pair in [["A-1", "B-2"], ["A-1", "C-3"], ["C-3", "B-2"]] {
        let holders = login(&f, &mut conn, &pair).unwrap();
        assert_eq!(holders.len(), 2, "{pair:?}");
    }

    // One card is not enough: the HSM refuses.
    let e = refusal(login(&f, &mut conn, &["B-2"]).unwrap_err());
    assert_eq!(
        e,
        AdminError::Login(LoginRefusal::TooFewCards { have: 1, need: 2 })
    );

    // The same card twice is refused and named, before anything is sent.
    let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    let progress = ceremony.present(&mut f.card("A-1")).unwrap();
    assert_eq!(progress.to_string(), "1 of 2 — insert the next card");
    match ceremony.present(&mut f.card("A-1")).unwrap_err() {
        CeremonyError::SameCardTwice { card } => {
            assert_eq!(card.serial, "A-1");
            assert_eq!(card.holder.as_deref(), Some("Alice Meier"));
        }
        other => panic!("{other:?}"),
    }
    // A card of another partition's set is refused and named.
    let (other, _other_conn) = enrolled();
    let stranger = other.card("A-1");
    let mut stranger = stranger;
    match ceremony.present(&mut stranger).unwrap_err() {
        CeremonyError::NotInSet { card } => {
            assert_eq!(card.serial, "A-1");
            assert!(card.to_string().starts_with("soft card A-1"), "{card}");
        }
        other => panic!("{other:?}"),
    }
    // The ceremony is unharmed: the next good card completes it.
    assert!(ceremony.present(&mut f.card("C-3")).unwrap().complete());
    ceremony.submit(&mut conn).unwrap();

    // The log carries the ceremony id with its beginning and its registration.
    let log = log_text(&mut conn);
    assert!(log.contains("ceremony.begin"), "{log}");
    let begin = log.lines().find(|l| l.contains("ceremony.begin")).unwrap();
    let register = log
        .lines()
        .find(|l| l.contains("cardset.register"))
        .unwrap();
    let id = begin.split("ceremony ").nth(1).unwrap()[..32].to_owned();
    assert!(register.contains(&id), "{register}");
}

#[test]
fn an_aborted_enrolment_registers_nothing() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    for (holder, serial) in OLD {
        f.new_card(holder, serial);
    }
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    enrolment.add_card(&mut f.card("A-1")).unwrap();
    enrolment.add_card(&mut f.card("B-2")).unwrap();
    // Finishing early is refused locally.
    assert!(matches!(
        enrolment.request_with_id(enrolment.id()),
        Err(CeremonyError::NotEnoughCards { have: 2, need: 3 })
    ));
    drop(enrolment);
    assert!(ActiveSet::fetch(&mut conn).unwrap().is_none());

    // With a set active, an aborted second enrolment leaves it as it was.
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    for (_, serial) in OLD {
        enrolment.add_card(&mut f.card(serial)).unwrap();
    }
    let first = enrolment.finish(&mut conn).unwrap();
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    f.new_card("Dario Neri", "D-4");
    f.new_card("Elena Conti", "E-5");
    let mut second = Enrolment::begin(&mut conn, 2, 3).unwrap();
    second.add_card(&mut f.card("D-4")).unwrap();
    second.add_card(&mut f.card("E-5")).unwrap();
    drop(second);
    let set = active(&mut conn);
    assert_eq!(set.set_number, 1);
    assert_eq!(set.backup_public, first.backup_public);
}

#[test]
fn a_step_of_another_ceremony_is_refused() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    for (holder, serial) in OLD {
        f.new_card(holder, serial);
    }
    let mut first = Enrolment::begin(&mut conn, 2, 3).unwrap();
    for (_, serial) in OLD {
        first.add_card(&mut f.card(serial)).unwrap();
    }
    // A made-up id is refused.
    let forged = first
        .request_with_id(hsm_link::domain::CeremonyId([0x55; 16]))
        .unwrap();
    assert_eq!(
        conn.admin(forged).unwrap_err().admin_error(),
        Some(&AdminError::CeremonyMismatch)
    );
    // Another ceremony opened since: the first one's registration is refused.
    let second = Enrolment::begin(&mut conn, 2, 3).unwrap();
    assert_ne!(second.id(), first.id());
    let first_id = first.id();
    let e = refusal(first.finish(&mut conn).unwrap_err());
    assert_eq!(e, AdminError::CeremonyMismatch);
    assert!(ActiveSet::fetch(&mut conn).unwrap().is_none());
    drop(second);

    // A ceremony on another session cannot be finished here either.
    let mut other = f.session();
    let mut third = Enrolment::begin(&mut other, 2, 3).unwrap();
    for (_, serial) in OLD {
        third.add_card(&mut f.card(serial)).unwrap();
    }
    let stolen = third.request_with_id(third.id()).unwrap();
    assert_eq!(
        conn.admin(stolen).unwrap_err().admin_error(),
        Some(&AdminError::CeremonyMismatch)
    );
    third.finish(&mut other).unwrap();
    login(&f, &mut other, &["A-1", "C-3"]).unwrap();
    let log = log_text(&mut other);
    assert!(log.contains(&first_id.to_string()), "{log}");
    assert!(
        log.contains("CeremonyMismatch") || log.contains("another ceremony"),
        "{log}"
    );
}

#[test]
fn drill_a_card_without_a_login() {
    let (f, mut conn) = enrolled();
    let mut holder_session = f.session();
    let drill = Drill::begin(&mut holder_session).unwrap();
    let outcome = drill.run(&mut holder_session, &mut f.card("B-2")).unwrap();
    assert!(outcome.ok() && outcome.reported, "{outcome:?}");
    assert_eq!(outcome.card.holder.as_deref(), Some("Bruno Rossi"));

    // A card whose share is damaged: the drill says so, names it, and the HSM logs it.
    let mut damaged = f.card("C-3");
    let mut object = damaged.read_share_object().unwrap().unwrap();
    let last = object.len() - 1;
    object[last] ^= 1;
    damaged.write_share_object(&object).unwrap();
    let outcome = drill.run(&mut holder_session, &mut damaged).unwrap();
    assert!(!outcome.ok());
    assert!(
        outcome.problem.unwrap().to_string().contains("C-3"),
        "the failure names the card"
    );

    // A card of another partition is refused and named, and not reported.
    let (other, _other_conn) = enrolled();
    match drill.run(&mut holder_session, &mut other.card("A-1")) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, "A-1"),
        other => panic!("{other:?}"),
    }

    // Drill reports without a login are rationed: past the ration, the holder still learns
    // the result, which is not on record.
    let ration = partition_service::admin::UNAUTHENTICATED_ENTRIES_PER_WINDOW;
    let mut rationed = None;
    for _ in 0..ration {
        let outcome = drill.run(&mut holder_session, &mut f.card("A-1")).unwrap();
        assert!(outcome.ok());
        if !outcome.reported {
            rationed = Some(outcome);
            break;
        }
    }
    assert!(rationed.is_some(), "no drill report was rationed");

    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    let log = log_text(&mut conn);
    let drills: Vec<&str> = log.lines().filter(|l| l.contains("quorum.drill")).collect();
    // The enrolment's opening, made without a login by the first terminal, took one entry of
    // the same ration.
    assert_eq!(drills.len(), ration - 1, "{log}");
    assert!(drills[0].contains("B-2") && drills[0].contains("unauthenticated"));
    assert!(drills[1].contains("C-3") && drills[1].contains("failed"));
}

const NEW: [(&str, &str); 4] = [
    ("Dario Neri", "D-4"),
    ("Elena Conti", "E-5"),
    ("Fabio Greco", "F-6"),
    ("Giulia Russo", "G-7"),
];

#[test]
fn reshare_to_three_of_five_and_recover_with_the_new_set() {
    let (f, mut conn) = enrolled();
    let before = active(&mut conn);
    for (holder, serial) in NEW {
        f.new_card(holder, serial);
    }
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    let mut reshare = Reshare::begin(&mut conn).unwrap();
    // Fewer than m old shares are never combined.
    reshare.present_old(&mut f.card("A-1")).unwrap();
    let (mut reshare, refused) = reshare.split(3, 5).unwrap_err();
    assert!(matches!(
        refused,
        CeremonyError::Quorum(quorum::QuorumError::NotEnoughShares { got: 1, needed: 2 })
    ));
    assert!(reshare.present_old(&mut f.card("B-2")).unwrap().complete());
    let mut reshare = reshare.split(3, 5).unwrap();
    // B-2 stays in the new set; A-1 leaves it; C-3 is absent.
    for serial in ["B-2", "D-4", "E-5", "F-6", "G-7"] {
        reshare.add_card(&mut f.card(serial)).unwrap();
    }
    let mut done = reshare.finish(&mut conn).unwrap();
    assert_eq!(done.registered.set_number, 2);
    assert_eq!(done.registered.backup_public, before.backup_public);
    let left: Vec<&str> = done
        .old_shares_left
        .iter()
        .map(|c| c.serial.as_str())
        .collect();
    assert_eq!(left, ["C-3"]);
    let pending: Vec<String> = done.pending().into_iter().map(|c| c.serial).collect();
    assert_eq!(pending, ["A-1"]);
    let mut a = f.card("A-1");
    assert_eq!(done.wipe(&mut a).unwrap(), 0);
    assert_eq!(a.read_share_object().unwrap(), None);
    // Reopened from its file, the card still holds no share.
    assert_eq!(f.card("A-1").read_share_object().unwrap(), None);

    let log = log_text(&mut conn);
    let register = log
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(
        register.contains("old-shares-left") && register.contains("C-3"),
        "{register}"
    );
    assert!(register.contains("reshare"), "{register}");

    // Three new cards log in (a new session); an old card that left is refused and named.
    let mut session = f.session();
    let spent = std::cell::Cell::new(Duration::ZERO);
    let start = Instant::now();
    let mut ceremony = LoginCeremony::start(&mut session, OfficerRole::Pso).unwrap();
    let challenge_done = start.elapsed();
    assert!(matches!(
        ceremony.present(&mut f.card("A-1")),
        Err(CeremonyError::NotInSet { .. })
    ));
    let mut owned: Vec<VerifiedSoftCard> =
        ["D-4", "F-6", "G-7"].iter().map(|s| f.card(s)).collect();
    let mut cards: Vec<Timed<'_, VerifiedSoftCard>> = owned
        .iter_mut()
        .map(|card| Timed {
            card,
            spent: &spent,
        })
        .collect();
    spent.set(Duration::ZERO);
    let local = Instant::now();
    for card in &mut cards {
        ceremony.present(card).unwrap();
    }
    let request = ceremony.finish();
    let local = local.elapsed().saturating_sub(spent.get());
    let sent = Instant::now();
    match session.admin(request).unwrap() {
        AdminResponse::LoggedIn { holders, .. } => assert_eq!(holders.len(), 3),
        other => panic!("{other:?}"),
    }
    println!(
        "3-of-5 login: terminal-side {local:?} (card time {:?} excluded), challenge round trip \
         {challenge_done:?}, login round trip with the HSM's checks {:?}",
        spent.get(),
        sent.elapsed()
    );

    // Recover the quorum backup key with three new cards: it unwraps a data key wrapped to the
    // registered public key.
    let registered = active(&mut session);
    let wrapped = wrap_to(&registered.backup_public, &[0x42; 32]).unwrap();
    let spent = std::cell::Cell::new(Duration::ZERO);
    let mut owned: Vec<VerifiedSoftCard> =
        ["E-5", "B-2", "G-7"].iter().map(|s| f.card(s)).collect();
    let mut cards: Vec<Timed<'_, VerifiedSoftCard>> = owned
        .iter_mut()
        .map(|card| Timed {
            card,
            spent: &spent,
        })
        .collect();
    let start = Instant::now();
    let mut recovery = Recovery::begin(&mut session).unwrap();
    let fetched = start.elapsed();
    let local = Instant::now();
    for card in &mut cards {
        recovery.present(card).unwrap();
    }
    let key = recovery.finish().unwrap();
    let local = local.elapsed().saturating_sub(spent.get());
    println!(
        "3-of-5 recovery: terminal-side {local:?} (card time {:?} excluded; share checks, combine, \
         X-Wing derivation), fetching the recovery parts {fetched:?}",
        spent.get()
    );
    assert_eq!(*unwrap_with(&key, &wrapped).unwrap(), [0x42; 32]);

    // Two new cards are not enough.
    let mut short = Recovery::begin(&mut session).unwrap();
    short.present(&mut f.card("D-4")).unwrap();
    short.present(&mut f.card("E-5")).unwrap();
    assert!(matches!(
        short.finish(),
        Err(CeremonyError::Quorum(
            quorum::QuorumError::NotEnoughShares { .. }
        ))
    ));
}

#[test]
fn revoke_a_card_and_its_signature_is_refused() {
    let (f, mut conn) = enrolled();
    let before = active(&mut conn);
    login(&f, &mut conn, &["A-1", "C-3"]).unwrap();
    let mut revocation = Revocation::begin(&mut conn, "C-3", 2, 2).unwrap();
    revocation.add_card(&mut f.card("A-1")).unwrap();
    match revocation.add_card(&mut f.card("C-3")) {
        Err(CeremonyError::RevokedCard { card }) => assert_eq!(card.serial, "C-3"),
        other => panic!("{other:?}"),
    }
    revocation.add_card(&mut f.card("B-2")).unwrap();
    let done = revocation.finish(&mut conn).unwrap();
    assert_eq!(done.registered.set_number, 2);
    assert!(done.old_shares_left.is_empty());
    assert_ne!(done.registered.backup_public, before.backup_public);
    // The terminal says what becomes of older backups, and offers a fresh one.
    let notice = done.backup_notice();
    assert!(
        notice.contains("old set 1") && notice.contains("C-3") && notice.contains("fresh backup"),
        "{notice}"
    );

    // The revoked card's signature is refused by the HSM at once.
    let mut session = f.session();
    let AdminResponse::Challenge { nonce, .. } = session
        .admin(AdminRequest::LoginChallenge {
            role: OfficerRole::Pso,
        })
        .unwrap()
    else {
        panic!("no challenge")
    };
    let message = login_message(
        &session.channel_binding(),
        &nonce,
        &f.partition,
        OfficerRole::Pso,
    );
    let signatures = ["A-1", "C-3"]
        .iter()
        .map(|s| {
            let mut card = f.card(s);
            CardSignature {
                signing_key: card.info().signing_public,
                signature: card.sign(&message).unwrap(),
            }
        })
        .collect();
    let e = session
        .admin(AdminRequest::Login {
            role: OfficerRole::Pso,
            signatures,
        })
        .unwrap_err();
    assert_eq!(
        e.admin_error(),
        Some(&AdminError::Login(LoginRefusal::UnknownCard { index: 1 }))
    );
    // The remaining two log in, and recover the new backup key.
    login(&f, &mut session, &["B-2", "A-1"]).unwrap();
    let registered = active(&mut session);
    let wrapped = wrap_to(&registered.backup_public, &[7; 32]).unwrap();
    let mut recovery = Recovery::begin(&mut session).unwrap();
    recovery.present(&mut f.card("A-1")).unwrap();
    recovery.present(&mut f.card("B-2")).unwrap();
    let key = recovery.finish().unwrap();
    assert_eq!(*unwrap_with(&key, &wrapped).unwrap(), [7; 32]);
    let new_public: QuorumBackupPublicKey = key.public_key();
    assert_eq!(new_public, registered.backup_public);

    let log = log_text(&mut session);
    let register = log
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(
        register.contains("revoked") && register.contains("C-3"),
        "{register}"
    );
}

#[test]
fn reshare_and_revoke_need_a_login() {
    let (f, mut conn) = enrolled();
    let mut session = f.session();
    match Reshare::begin(&mut session) {
        Err(e) => assert!(matches!(refusal(e), AdminError::NotLoggedIn { .. })),
        Ok(_) => panic!("a re-share without a login"),
    }
    // A re-share whose new set has another backup key is refused by the HSM.
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    let revocation = Revocation::begin(&mut conn, "Z-9", 2, 2);
    assert!(matches!(revocation, Err(CeremonyError::NotInSet { .. })));
}

#[test]
fn one_of_two_enrols_logs_in_and_recovers_with_one_card() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    f.new_card("Alice Meier", "A-1");
    f.new_card("Bruno Rossi", "B-2");
    f.new_card_of(None, "N-0");
    let mut enrolment = Enrolment::begin(&mut conn, 1, 2).unwrap();
    assert!(matches!(
        enrolment.add_card(&mut f.card("N-0")),
        Err(CeremonyError::NoHolder { .. })
    ));
    enrolment.add_card(&mut f.card("A-1")).unwrap();
    match enrolment.add_card(&mut f.card("A-1")) {
        Err(CeremonyError::SameCardTwice { card }) => assert_eq!(card.serial, "A-1"),
        other => panic!("{other:?}"),
    }
    assert!(enrolment.add_card(&mut f.card("B-2")).unwrap().complete());
    let registered = enrolment.finish(&mut conn).unwrap();
    assert_eq!(registered.threshold, 1);

    for serial in ["A-1", "B-2"] {
        assert_eq!(login(&f, &mut conn, &[serial]).unwrap().len(), 1);
        let mut recovery = Recovery::begin(&mut conn).unwrap();
        recovery.present(&mut f.card(serial)).unwrap();
        let key = recovery.finish().unwrap();
        assert_eq!(key.public_key(), registered.backup_public);
    }
    // Too many cards for a quorum are refused before anything is written.
    assert!(matches!(
        Enrolment::begin(&mut conn, 2, 17),
        Err(CeremonyError::Quorum(
            quorum::QuorumError::QuorumSize { .. }
        ))
    ));
}

/// The set numbers of the envelopes in a card's share object (empty: no share).
fn envelope_sets(card: &mut VerifiedSoftCard) -> Vec<u32> {
    card.read_share_object()
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

#[test]
fn an_aborted_reshare_leaves_the_old_set_whole_and_a_completed_one_cleans_up() {
    let (f, mut conn) = enrolled();
    let before = active(&mut conn);
    let backup = wrap_to(&before.backup_public, &[0x42; 32]).unwrap();
    for (holder, serial) in NEW {
        f.new_card(holder, serial);
    }
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();

    // A re-share to 3-of-5 that writes the new shares of B-2 and C-3 (in both sets) and D-4,
    // then is abandoned before the registration.
    let mut reshare = Reshare::begin(&mut conn).unwrap();
    reshare.present_old(&mut f.card("A-1")).unwrap();
    reshare.present_old(&mut f.card("B-2")).unwrap();
    let mut reshare = reshare.split(3, 5).unwrap();
    for serial in ["B-2", "C-3", "D-4"] {
        reshare.add_card(&mut f.card(serial)).unwrap();
    }
    drop(reshare);
    // The cards in both sets hold both envelopes; the old one is still the first set's.
    assert_eq!(envelope_sets(&mut f.card("B-2")), [1, 2]);
    assert_eq!(envelope_sets(&mut f.card("C-3")), [1, 2]);
    assert_eq!(envelope_sets(&mut f.card("D-4")), [2]);
    assert_eq!(active(&mut conn).set_number, 1);

    // The old set is whole: its shares, read from the same cards, check against the old
    // commitments and combine; it logs in, drills and recovers the same key.
    let shares: Vec<_> = ["B-2", "C-3"]
        .iter()
        .map(|serial| {
            let position = before
                .cards
                .iter()
                .position(|c| c.serial.as_str() == *serial)
                .unwrap();
            let ctx = ShareContext {
                partition: f.partition.clone(),
                set_number: 1,
                share_index: u8::try_from(position + 1).unwrap(),
                card_serial: (*serial).to_owned(),
            };
            let share = f.card(serial).read_share(&ctx).unwrap();
            quorum::secret::verify_share(&before.commitments, &share).unwrap();
            share
        })
        .collect();
    let secret = quorum::secret::combine(&before.commitments, 2, &shares).unwrap();
    assert_eq!(secret.public_point(), before.commitments.secret_point());
    drop(secret);
    let mut session = f.session();
    assert_eq!(
        login(&f, &mut session, &["B-2", "C-3"]).unwrap(),
        ["Bruno Rossi", "Chiara Bianchi"]
    );
    let drill = Drill::begin(&mut session).unwrap();
    for serial in ["A-1", "B-2", "C-3"] {
        let outcome = drill.run(&mut session, &mut f.card(serial)).unwrap();
        assert!(outcome.ok(), "{serial}: {outcome:?}");
    }
    let mut recovery = Recovery::begin(&mut session).unwrap();
    recovery.present(&mut f.card("C-3")).unwrap();
    recovery.present(&mut f.card("B-2")).unwrap();
    let key = recovery.finish().unwrap();
    assert_eq!(*unwrap_with(&key, &backup).unwrap(), [0x42; 32]);
    drop(key);

    // A re-share carried through: A-1 leaves, B-2 and C-3 stay, D-4 to F-6 join.
    let mut reshare = Reshare::begin(&mut session).unwrap();
    reshare.present_old(&mut f.card("A-1")).unwrap();
    reshare.present_old(&mut f.card("B-2")).unwrap();
    let mut reshare = reshare.split(3, 5).unwrap();
    for serial in ["B-2", "C-3", "D-4", "E-5", "F-6"] {
        reshare.add_card(&mut f.card(serial)).unwrap();
    }
    let mut done = reshare.finish(&mut session).unwrap();
    assert_eq!(done.registered.set_number, 2);
    assert!(done.old_shares_left.is_empty());
    // Until each card's last step, the old envelopes are still there.
    assert_eq!(envelope_sets(&mut f.card("B-2")), [1, 2]);
    assert_eq!(done.wipe(&mut f.card("A-1")).unwrap(), 0);
    for serial in ["B-2", "C-3"] {
        assert!(done.registered.drop_old_share(&mut f.card(serial)).unwrap());
    }
    for serial in ["D-4", "E-5", "F-6"] {
        assert!(!done.registered.drop_old_share(&mut f.card(serial)).unwrap());
    }
    match done.registered.drop_old_share(&mut f.card("A-1")) {
        Err(CeremonyError::NotInSet { card }) => assert_eq!(card.serial, "A-1"),
        other => panic!("{other:?}"),
    }
    // Exactly one envelope per card of the new set, the new one; the card that left is empty.
    for serial in ["B-2", "C-3", "D-4", "E-5", "F-6"] {
        assert_eq!(envelope_sets(&mut f.card(serial)), [2], "{serial}");
    }
    assert_eq!(f.card("A-1").read_share_object().unwrap(), None);

    // The new set recovers the same key, with a card that was in both sets.
    let mut session = f.session();
    login(&f, &mut session, &["C-3", "D-4", "E-5"]).unwrap();
    let mut recovery = Recovery::begin(&mut session).unwrap();
    for serial in ["F-6", "B-2", "D-4"] {
        recovery.present(&mut f.card(serial)).unwrap();
    }
    let key = recovery.finish().unwrap();
    assert_eq!(*unwrap_with(&key, &backup).unwrap(), [0x42; 32]);
}

#[test]
fn share_objects_are_bounded_and_a_bare_envelope_still_reads() {
    let (f, mut conn) = enrolled();
    let set = active(&mut conn);
    let ctx = ShareContext {
        partition: f.partition.clone(),
        set_number: 1,
        share_index: 1,
        card_serial: "A-1".to_owned(),
    };
    let mut card = f.card("A-1");
    let object = ShareObject::parse(&card.read_share_object().unwrap().unwrap()).unwrap();
    let [entry] = object.entries() else {
        panic!("{object:?}")
    };
    assert_eq!(entry.set_number, 1);
    let envelope = entry.envelope.clone();

    // A bare envelope, as earlier builds wrote it, reads as before.
    card.write_share_object(&envelope).unwrap();
    let share = card.read_share(&ctx).unwrap();
    quorum::secret::verify_share(&set.commitments, &share).unwrap();
    // Writing a new set's share keeps it (its set is not recorded), and it still opens.
    let mut next = ctx.clone();
    next.set_number = 2;
    card.store_share(&next, &share).unwrap();
    assert_eq!(envelope_sets(&mut card), [0, 2]);
    assert_eq!(card.read_share(&ctx).unwrap().index(), 1);
    assert_eq!(card.read_share(&next).unwrap().index(), 1);
    // A third set's share drops the oldest: at most two envelopes.
    let mut third = ctx.clone();
    third.set_number = 3;
    card.store_share(&third, &share).unwrap();
    assert_eq!(envelope_sets(&mut card), [2, 3]);
    assert!(matches!(
        card.read_share(&ctx),
        Err(QuorumError::EnvelopeOpen)
    ));

    // A container of three entries is refused on read, and says why.
    let entry = |set: u32| {
        let mut out = set.to_be_bytes().to_vec();
        out.extend_from_slice(&u16::try_from(envelope.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&envelope);
        out
    };
    let mut three = b"TSSO\x01\x03".to_vec();
    for set in [1, 2, 3] {
        three.extend(entry(set));
    }
    assert!(three.len() <= 512);
    card.write_share_object(&three).unwrap();
    let e = card.read_share(&ctx).unwrap_err();
    assert!(matches!(e, QuorumError::ShareEncoding { .. }), "{e:?}");
    assert!(e.to_string().contains("one or two envelopes"), "{e}");

    // Oversize, truncated, trailing bytes, two envelopes for one set: refused.
    let e = ShareObject::parse(&[0x54; 513]).unwrap_err();
    assert!(
        matches!(
            e,
            QuorumError::Card(CardError::ShareObjectTooLarge { len: 513, max: 512 })
        ),
        "{e:?}"
    );
    let mut two = b"TSSO\x01\x02".to_vec();
    two.extend(entry(1));
    two.extend(entry(2));
    assert_eq!(ShareObject::parse(&two).unwrap().entries().len(), 2);
    assert!(ShareObject::parse(&two[..two.len() - 1]).is_err());
    let mut longer = two.clone();
    longer.push(0);
    assert!(ShareObject::parse(&longer).is_err());
    let mut twice = b"TSSO\x01\x02".to_vec();
    twice.extend(entry(1));
    twice.extend(entry(1));
    assert!(ShareObject::parse(&twice).is_err());
    assert!(ShareObject::parse(b"TSSO\x02\x01").is_err());
    assert!(ShareObject::parse(b"TSSO\x01\x00").is_err());
    assert!(ShareObject::parse(b"junk").is_err());
    assert!(ShareObject::parse(&[]).unwrap().is_empty());
}

#[test]
fn auditors_are_enrolled_in_a_ceremony_with_their_keys_only() {
    let (f, mut conn) = enrolled();
    // Without a PSO login no auditor ceremony opens.
    assert!(matches!(
        refusal(AuditorEnrolment::begin(&mut conn, 1, 2).unwrap_err()),
        AdminError::NotLoggedIn { .. }
    ));
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    f.new_card("Dora Keller", "D-4");
    f.new_card("Emil Frei", "E-5");
    f.new_card_of(None, "N-0");

    let mut enrolment = AuditorEnrolment::begin(&mut conn, 2, 2).unwrap();
    enrolment.add_card(&mut f.card("D-4")).unwrap();
    // A card without a holder name is named and refused; the ceremony goes on.
    match enrolment.add_card(&mut f.card("N-0")) {
        Err(CeremonyError::NoHolder { card }) => assert_eq!(card.serial, "N-0"),
        other => panic!("{other:?}"),
    }
    // Not all n cards yet: nothing is sent.
    let enrolment = match enrolment.finish(&mut conn) {
        Err(CeremonyError::NotEnoughCards { have: 1, need: 2 }) => {
            let mut again = AuditorEnrolment::begin(&mut conn, 2, 2).unwrap();
            again.add_card(&mut f.card("D-4")).unwrap();
            again
        }
        other => panic!("{other:?}"),
    };
    let mut enrolment = enrolment;
    enrolment.add_card(&mut f.card("E-5")).unwrap();
    let id = enrolment.id();
    let registered = enrolment.finish(&mut conn).unwrap();
    assert_eq!(registered.set_number, 1);
    assert!(registered.cards.iter().all(|c| c.soft_card));
    // No share was written to an auditor card.
    assert!(f.card("D-4").read_share_object().unwrap().is_none());
    let text = log_text(&mut conn);
    let line = text
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(
        line.contains(&id.to_string()) && line.contains("Auditor set 1"),
        "{line}"
    );

    // Both auditors log in (2 of 2); one is not enough.
    let mut session = f.session();
    let mut ceremony = LoginCeremony::start(&mut session, OfficerRole::Auditor).unwrap();
    ceremony.present(&mut f.card("E-5")).unwrap();
    ceremony.present(&mut f.card("D-4")).unwrap();
    let holders = ceremony.submit(&mut session).unwrap();
    assert_eq!(holders.len(), 2);
}

/// A card whose storage returns its share object altered (a fault no real card produces on
/// demand): the read-back after a write fails its checks.
struct CorruptingReads<C> {
    card: C,
}

impl<C: VerifiedCard> VerifiedCard for CorruptingReads<C> {
    fn info(&self) -> CardInfo {
        self.card.info()
    }
    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError> {
        self.card.sign(message)
    }
    fn decipher(&mut self, e: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError> {
        self.card.decipher(e)
    }
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        Ok(self.card.read_share_object()?.map(|mut bytes| {
            if let Some(last) = bytes.last_mut() {
                *last ^= 1;
            }
            bytes
        }))
    }
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError> {
        self.card.write_share_object(object)
    }
}

#[test]
fn a_card_that_fails_its_read_back_keeps_no_share_and_the_share_goes_to_the_next() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    for (holder, serial) in OLD {
        f.new_card(holder, serial);
    }
    f.new_card("Zoe Faulty", "Z-9");
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).unwrap();
    enrolment.add_card(&mut f.card("A-1")).unwrap();
    let mut faulty = CorruptingReads {
        card: f.card("Z-9"),
    };
    match enrolment.add_card(&mut faulty) {
        Err(CeremonyError::BadShare { card, .. }) => assert_eq!(card.serial, "Z-9"),
        other => panic!("{other:?}"),
    }
    // The envelope written to it was removed again: the card holds no share of the new set.
    assert!(f.card("Z-9").read_share_object().unwrap().is_none());
    // Its share went to the next card; the set completes with the others.
    let progress = enrolment.add_card(&mut f.card("B-2")).unwrap();
    assert_eq!((progress.have, progress.need), (2, 3));
    enrolment.add_card(&mut f.card("C-3")).unwrap();
    let registered = enrolment.finish(&mut conn).unwrap();
    assert!(!registered.cards.iter().any(|c| c.serial.as_str() == "Z-9"));
    login(&f, &mut conn, &["B-2", "C-3"]).unwrap();
}

/// A card pulled from its reader after `writes_left` more share-object writes (at once with
/// 0): from then on every operation fails as a card that left its reader does.
struct Pulled {
    card: VerifiedSoftCard,
    writes_left: usize,
}

impl Pulled {
    fn after_writes(card: VerifiedSoftCard, writes_left: usize) -> Pulled {
        Pulled { card, writes_left }
    }

    fn present(&self) -> Result<(), CardError> {
        if self.writes_left == 0 {
            Err(CardError::Removed)
        } else {
            Ok(())
        }
    }
}

impl VerifiedCard for Pulled {
    fn info(&self) -> CardInfo {
        self.card.info()
    }
    fn sign(&mut self, message: &[u8]) -> Result<[u8; 64], CardError> {
        self.present()?;
        self.card.sign(message)
    }
    fn decipher(&mut self, e: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CardError> {
        self.present()?;
        self.card.decipher(e)
    }
    fn read_share_object(&mut self) -> Result<Option<Vec<u8>>, CardError> {
        self.present()?;
        self.card.read_share_object()
    }
    fn write_share_object(&mut self, object: &[u8]) -> Result<(), CardError> {
        self.present()?;
        self.writes_left -= 1;
        self.card.write_share_object(object)
    }
}

#[test]
fn a_card_pulled_during_a_login_is_named() {
    let (f, mut conn) = enrolled();
    let mut ceremony = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    let error = ceremony
        .present(&mut Pulled::after_writes(f.card("B-2"), 0))
        .unwrap_err();
    assert!(matches!(
        &error,
        CeremonyError::Proof {
            source: CardError::Removed,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "soft card B-2 (Bruno Rossi) could not sign: the card was removed; insert it again; \
         check that it is still in its reader and present it again"
    );
    // The ceremony is unchanged: the card, inserted again, signs.
    assert_eq!(ceremony.progress().have, 0);
    ceremony.present(&mut f.card("B-2")).unwrap();
    ceremony.present(&mut f.card("A-1")).unwrap();
    ceremony.submit(&mut conn).unwrap();
}

/// A soft card with the serial of another and a holder of its own, in the file `file`.
fn twin_card(f: &Fixture, file: &str, holder: &str, serial: &str) -> VerifiedSoftCard {
    SoftCard::create(
        &f.cards.path().join(file),
        Some(holder),
        serial,
        &Pin::from_slice(PASSPHRASE),
        Argon2Params::insecure_for_tests(),
        quorum::CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    open(f.cards.path(), file)
}

#[test]
fn a_card_twice_and_a_twin_serial_are_named_for_what_they_are() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    f.new_card("Alice Meier", "A-1");
    let mut enrolment = Enrolment::begin(&mut conn, 1, 2).unwrap();
    enrolment.add_card(&mut f.card("A-1")).unwrap();
    // The same card again: named as it joined.
    assert_eq!(
        enrolment
            .add_card(&mut f.card("A-1"))
            .unwrap_err()
            .to_string(),
        "soft card A-1 (Alice Meier) was already presented in this ceremony: each card counts once"
    );
    // Another card with the same serial was never presented: it is named, and so is the card
    // whose serial it carries.
    let mut twin = twin_card(&f, "A-1-twin", "Eve Twin", "A-1");
    assert_eq!(
        enrolment.add_card(&mut twin).unwrap_err().to_string(),
        "soft card A-1 (Eve Twin) carries the same serial as soft card A-1 (Alice Meier), already \
         named in this ceremony: a serial must name one card; set it aside"
    );
    assert_eq!(enrolment.progress().have, 1);
}

#[test]
fn a_twin_of_the_revoked_card_is_not_taken_for_it() {
    let (f, mut conn) = enrolled();
    login(&f, &mut conn, &["A-1", "C-3"]).unwrap();
    let mut revocation = Revocation::begin(&mut conn, "C-3", 2, 2).unwrap();
    assert_eq!(
        revocation
            .add_card(&mut f.card("C-3"))
            .unwrap_err()
            .to_string(),
        "soft card C-3 (Chiara Bianchi) is the card being revoked: it cannot join the new set"
    );
    let mut twin = twin_card(&f, "C-3-twin", "Eve Twin", "C-3");
    assert_eq!(
        revocation.add_card(&mut twin).unwrap_err().to_string(),
        "soft card C-3 (Eve Twin) carries the same serial as soft card C-3 (Chiara Bianchi), \
         already named in this ceremony: a serial must name one card; set it aside"
    );
    assert_eq!(revocation.progress().have, 0);
}

fn serials(cards: &[quorum::ceremony::CardRef]) -> Vec<&str> {
    cards.iter().map(|c| c.serial.as_str()).collect()
}

/// An enrolment of A-1, B-2, C-3 in which Z-9 is pulled from its reader right after its share
/// was written, before the read-back: neither the read-back nor the removal reaches it.
fn enrolment_with_a_card_pulled(f: &mut Fixture, conn: &mut Conn) -> Enrolment {
    for (holder, serial) in OLD {
        f.new_card(holder, serial);
    }
    f.new_card("Zoe Pulled", "Z-9");
    let mut enrolment = Enrolment::begin(conn, 2, 3).unwrap();
    enrolment.add_card(&mut f.card("A-1")).unwrap();
    let mut pulled = Pulled::after_writes(f.card("Z-9"), 1);
    match enrolment.add_card(&mut pulled) {
        Err(CeremonyError::BadShare { card, .. }) => assert_eq!(card.serial, "Z-9"),
        other => panic!("{other:?}"),
    }
    // It keeps the envelope of set 1: a live share, the one the next card gets.
    assert_eq!(envelope_sets(&mut f.card("Z-9")), [1]);
    assert_eq!(serials(&enrolment.leftovers()), ["Z-9"]);
    enrolment
}

#[test]
fn a_card_pulled_before_its_read_back_is_named_and_a_later_drill_wipes_its_share() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    let mut enrolment = enrolment_with_a_card_pulled(&mut f, &mut conn);
    enrolment.add_card(&mut f.card("B-2")).unwrap();
    enrolment.add_card(&mut f.card("C-3")).unwrap();
    // The HSM refuses a registration that says a card of the set holds a leftover share.
    let mut contradictory = enrolment.request_with_id(enrolment.id()).unwrap();
    if let AdminRequest::RegisterCardSetInCeremony {
        leftover_shares, ..
    } = &mut contradictory
    {
        assert_eq!(leftover_shares.len(), 1);
        leftover_shares.push(hsm_link::domain::CardSerial::new("B-2").unwrap());
    }
    assert!(matches!(
        conn.admin(contradictory),
        Err(LinkError::Refused(RemoteError::Admin(AdminError::CardSet(
            _
        ))))
    ));
    let registered = enrolment.finish(&mut conn).unwrap();
    // The result names the card that holds a share of the set without being in it.
    assert_eq!(serials(&registered.leftover_shares), ["Z-9"]);
    assert_eq!(
        registered.leftover_shares[0].holder.as_deref(),
        Some("Zoe Pulled")
    );
    // And so does the HSM's log entry of the registration.
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    let log = log_text(&mut conn);
    let register = log
        .lines()
        .rfind(|l| l.contains("cardset.register"))
        .unwrap();
    assert!(
        register.contains("leftover-shares") && register.contains("Z-9"),
        "{register}"
    );

    // A later ceremony recognises the leftover envelope and offers to wipe it.
    let drill = Drill::begin(&mut conn).unwrap();
    let error = drill.run(&mut conn, &mut f.card("Z-9")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "soft card Z-9 (Zoe Pulled) is not in this partition's active card set but still holds a \
         share envelope of set 1, left by an earlier ceremony: wipe it before the card is used \
         again"
    );
    assert_eq!(
        active(&mut conn)
            .leftover_envelopes(&f.partition, &mut f.card("Z-9"))
            .unwrap(),
        [1]
    );
    assert_eq!(drill.wipe_leftovers(&mut f.card("Z-9")).unwrap(), [1]);
    assert!(envelope_sets(&mut f.card("Z-9")).is_empty());
    // Now it is only a card outside the set.
    assert!(matches!(
        drill.run(&mut conn, &mut f.card("Z-9")),
        Err(CeremonyError::NotInSet { .. })
    ));
    // The members hold nothing left over, and wiping leftovers keeps a member's own share.
    let outcome = drill.run(&mut conn, &mut f.card("B-2")).unwrap();
    assert!(
        outcome.ok() && outcome.leftover_sets.is_empty(),
        "{outcome:?}"
    );
    assert!(drill.wipe_leftovers(&mut f.card("B-2")).unwrap().is_empty());
    assert_eq!(envelope_sets(&mut f.card("B-2")), [1]);

    // An enrolment abandoned after writing A-1's envelope of set 2 (never registered): the
    // drill of A-1 lists it, and wiping keeps A-1's share of the active set.
    login(&f, &mut conn, &["A-1", "B-2"]).unwrap();
    let mut abandoned = Enrolment::begin(&mut conn, 1, 1).unwrap();
    abandoned.add_card(&mut f.card("A-1")).unwrap();
    drop(abandoned);
    let outcome = drill.run(&mut conn, &mut f.card("A-1")).unwrap();
    assert!(outcome.ok());
    assert_eq!(outcome.leftover_sets, [2]);
    assert_eq!(drill.wipe_leftovers(&mut f.card("A-1")).unwrap(), [2]);
    assert_eq!(envelope_sets(&mut f.card("A-1")), [1]);
    assert!(drill.run(&mut conn, &mut f.card("A-1")).unwrap().ok());
}

#[test]
fn a_pulled_card_inserted_again_before_the_registration_is_wiped_by_the_ceremony() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    let mut enrolment = enrolment_with_a_card_pulled(&mut f, &mut conn);
    // Any other card is not a leftover.
    assert!(matches!(
        enrolment.wipe_leftover(&mut f.card("B-2")),
        Err(CeremonyError::NotInSet { .. })
    ));
    assert_eq!(enrolment.wipe_leftover(&mut f.card("Z-9")).unwrap(), 0);
    assert!(envelope_sets(&mut f.card("Z-9")).is_empty());
    assert!(enrolment.leftovers().is_empty());
    enrolment.add_card(&mut f.card("B-2")).unwrap();
    enrolment.add_card(&mut f.card("C-3")).unwrap();
    let registered = enrolment.finish(&mut conn).unwrap();
    assert!(registered.leftover_shares.is_empty());
}

#[test]
fn a_soft_card_is_refused_before_a_share_is_written_when_the_hsm_accepts_none() {
    let mut f = Fixture::new();
    let mut conn = f.pair();
    f.new_card("Alice Meier", "A-1");
    // The HSM's owner refuses soft cards: the ceremony learns it when it begins.
    f.hsm.set_soft_cards_allowed(false).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, 1, 1).unwrap();
    let mut card = f.card("A-1");
    match enrolment.add_card(&mut card).unwrap_err() {
        CeremonyError::SoftCardRefusedByHsm { card } => assert_eq!(card.serial, "A-1"),
        other => panic!("expected the soft card refused, got {other}"),
    }
    assert!(
        envelope_sets(&mut card).is_empty(),
        "no share was written to it"
    );
    assert_eq!(enrolment.progress().have, 0);
    // Where the HSM accepts them, the same card joins.
    f.hsm.set_soft_cards_allowed(true).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, 1, 1).unwrap();
    enrolment.add_card(&mut card).unwrap();
    assert_eq!(envelope_sets(&mut card), vec![1]);
}

#[test]
fn a_backup_is_recovered_from_its_cards_alone_and_only_with_enough_of_its_set() {
    let (f, mut conn) = enrolled();
    let set = active(&mut conn);
    let wrapped = wrap_to(&set.backup_public, &[0x5a; 32]).unwrap();
    let key_id = set.backup_public.fingerprint();
    f.new_card("Dora Keller", "D-4");

    // One card of a 2-of-3 set is not enough, and says so.
    let mut one = BackupRecovery::new(f.partition.clone(), key_id);
    assert!(!one.present(&mut f.card("B-2")).unwrap());
    assert!(matches!(
        one.present(&mut f.card("B-2")),
        Err(CeremonyError::SameCardTwice { .. })
    ));
    match one.present(&mut f.card("D-4")) {
        Err(CeremonyError::NoShareForBackup { card, partition }) => {
            assert_eq!(
                (card.serial.as_str(), partition.as_str()),
                ("D-4", "bank-1")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one.finish(),
        Err(CeremonyError::BackupNotRecovered { cards: 1 })
    ));

    // Any two: the key opens the backup's wrapping; a card after that is not read.
    let mut two = BackupRecovery::new(f.partition.clone(), key_id);
    assert!(!two.present(&mut f.card("C-3")).unwrap());
    assert!(two.present(&mut f.card("A-1")).unwrap());
    assert_eq!(two.set_number(), Some(1));
    assert!(two.present(&mut f.card("D-4")).unwrap());
    let key = two.finish().unwrap();
    assert_eq!(*unwrap_with(&key, &wrapped).unwrap(), [0x5a; 32]);

    // A backup of another partition, or wrapped to another quorum: the same cards do not
    // recover it.
    let other = PartitionId::new("bank-2").unwrap();
    let mut elsewhere = BackupRecovery::new(other, key_id);
    assert!(matches!(
        elsewhere.present(&mut f.card("A-1")),
        Err(CeremonyError::NoShareForBackup { .. })
    ));
    let mut another_quorum = BackupRecovery::new(f.partition.clone(), [9; 32]);
    for serial in ["A-1", "B-2", "C-3"] {
        assert!(!another_quorum.present(&mut f.card(serial)).unwrap());
    }
    assert!(matches!(
        another_quorum.finish(),
        Err(CeremonyError::BackupNotRecovered { cards: 3 })
    ));
}

#[test]
fn a_backup_recovery_takes_the_cards_of_one_set_only() {
    // One secret split twice (as a re-share does): set 1 on X-1 and Y-2, set 2 on Z-3 and
    // W-4, each 2 of 2, all for partition bank-1. Either set recovers the key; a card of the
    // other set than the first card's is refused and named.
    let f = Fixture::new();
    let secret = quorum::secret::RecoverySecret::generate().unwrap();
    let (_, public) = QuorumBackupKey::derive(&secret);
    let (first, _) = quorum::secret::split(&secret, 2, 2).unwrap();
    let (second, _) = quorum::secret::split(&secret, 2, 2).unwrap();
    let place = |serial: &str, set_number: u32, share: &quorum::secret::Share| {
        f.new_card(serial, serial);
        let ctx = ShareContext {
            partition: f.partition.clone(),
            set_number,
            share_index: share.index(),
            card_serial: serial.to_owned(),
        };
        f.card(serial).store_share(&ctx, share).unwrap();
    };
    place("X-1", 1, &first[0]);
    place("Y-2", 1, &first[1]);
    place("Z-3", 2, &second[0]);
    place("W-4", 2, &second[1]);
    drop(secret);

    let mut mixed = BackupRecovery::new(f.partition.clone(), public.fingerprint());
    assert!(!mixed.present(&mut f.card("Z-3")).unwrap());
    assert_eq!(mixed.set_number(), Some(2));
    match mixed.present(&mut f.card("X-1")) {
        Err(CeremonyError::OtherSet {
            card,
            found,
            expected,
        }) => assert_eq!((card.serial.as_str(), found, expected), ("X-1", 1, 2)),
        other => panic!("{other:?}"),
    }
    // Set 2's own cards recover it, and so do set 1's.
    assert!(mixed.present(&mut f.card("W-4")).unwrap());
    let mut old = BackupRecovery::new(f.partition.clone(), public.fingerprint());
    assert!(!old.present(&mut f.card("Y-2")).unwrap());
    assert!(old.present(&mut f.card("X-1")).unwrap());
    let wrapped = wrap_to(&public, &[0x11; 32]).unwrap();
    assert_eq!(
        *unwrap_with(&old.finish().unwrap(), &wrapped).unwrap(),
        [0x11; 32]
    );
}
