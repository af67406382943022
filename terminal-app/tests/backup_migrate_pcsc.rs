//! A migration with OpenPGP cards over the real PC/SC stack (pcscd, vpcd and opcard, started by
//! `scripts/pcsc-up`): HSM A's PSO set is two cards of the stack (2 of 2); a backup made at A
//! is restored at HSM B (both in process) through the terminal's migration path, the recovery
//! cards named by their readers as `tessera backup restore --migrate --recovery-card` names
//! them. One card is not enough; both are, and B then holds A's keys.
//!
//! Like the other card tests: without `readers.tsv` in the stack's directory
//! (`TESSERA_PCSC_DIR`, or `target/pcsc`) the test fails saying to run `scripts/pcsc-up`; it
//! holds the stack's lock for its whole run and factory-resets the cards it takes (0 and 1).

#![cfg(feature = "embedded")] // the HSMs are partition-service, a dependency of the embedded default

use std::net::{IpAddr, Ipv4Addr};

use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, ServiceTier};
use hsm_link::message::{AdminRequest, AdminResponse, BackupProblem, KeyFilter, OfficerRole};
use partition_service::access::ApiProvider;
use partition_service::app_link::{AppConnection, AppRequest, AppResponse};
use quorum::card::Card as _;
use quorum::ceremony::{CeremonyError, Enrolment, Link, LoginCeremony};
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, PcscCard};
use quorum::{CardPolicy, Pin};
use terminal_app::cli::backup;
use terminal_app::cli::backup_migrate::{RecoveryCards, SourceBackup, dry_run, rewrap};
use terminal_app::cli::login::CardChoice;
use terminal_app::error::Error;
use tessera_tests::partition::{Fixture, Terminal, with_psos};
use tessera_tests::pcsc_stack::{Stack, factory_reset};
use zeroize::Zeroizing;

const HOLDERS: [&str; 2] = ["Alice Meier", "Bruno Rossi"];

/// Prepares the card in `reader` as enrolment does (keys generated on the card, holder, admin
/// PIN changed from the factory default), with its user PIN verified.
fn prepared(reader: &str, holder: &str) -> quorum::pcsc::VerifiedPcscCard {
    let mut admin = PcscCard::open(reader)
        .unwrap()
        .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
        .unwrap();
    admin.set_ecc_algorithms().unwrap();
    admin.generate_keys().unwrap();
    admin.set_holder(holder).unwrap();
    admin
        .change_admin_pin(&Pin::from_slice(b"tessera-admin-1"))
        .unwrap();
    let card = admin.finish().unwrap();
    card.verify(&Pin::from_slice(FACTORY_USER_PIN)).unwrap()
}

fn keys(t: &mut Terminal) -> Vec<hsm_link::domain::KeyObjectSummary> {
    let request = AdminRequest::ListKeys(hsm_link::message::KeyQuery::first(KeyFilter::All, 100));
    match t.conn.admin(request).unwrap() {
        AdminResponse::Keys { keys, .. } => keys,
        other => panic!("{other:?}"),
    }
}

fn generate(f: &Fixture, label: &str) {
    let record = f.hsm.partition(&f.partition).unwrap();
    let mut connection = AppConnection {
        session_objects: Default::default(),
        credentials_epoch: record.credentials.epoch,
    };
    let request = AppRequest::Generate {
        kind: KeyKind::Ed25519,
        label: KeyLabel::new(label).unwrap(),
        attributes: KeyAttributes {
            extractable: false,
            sensitive: true,
            modifiable: false,
        },
        session: false,
    };
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let made = f.hsm.app_execute(
        &mut connection,
        peer,
        &f.partition,
        ApiProvider::Jce,
        request,
    );
    assert!(matches!(made, Ok(AppResponse::Key(_))), "{made:?}");
}

fn rewrap_with(
    t: &mut Terminal,
    source: &SourceBackup,
    readers: &[&str],
) -> Result<[u8; 80], Error> {
    let choice = CardChoice {
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        soft: Vec::new(),
    };
    let mut ask = |_: &str| Ok(Zeroizing::new(FACTORY_USER_PIN.to_vec()));
    let cards = RecoveryCards {
        choice: &choice,
        policy: CardPolicy::hardware_only(),
        ask: &mut ask,
        retry: false,
    };
    rewrap(&mut t.conn, source, cards, &mut Vec::new())
}

#[test]
fn a_backup_moves_to_another_hsm_with_two_opcard_recovery_cards() {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let readers: Vec<String> = (0..2)
        .map(|i| {
            let (reader, _) = stack.expect_card(i);
            factory_reset(&reader);
            reader
        })
        .collect();

    // HSM A: a 2-of-2 PSO set on the two cards, two keys, a PSO login, a backup.
    let a = Fixture::new(ServiceTier::Economy);
    let mut ta = a.pair();
    let mut enrolment = Enrolment::begin(&mut ta.conn, 2, 2).unwrap();
    for (reader, holder) in readers.iter().zip(HOLDERS) {
        enrolment.add_card(&mut prepared(reader, holder)).unwrap();
    }
    enrolment.finish(&mut ta.conn).unwrap();
    generate(&a, "signer");
    generate(&a, "second");
    let mut login = LoginCeremony::start(&mut ta.conn, OfficerRole::Pso).unwrap();
    for reader in &readers {
        let card = PcscCard::open(reader).unwrap();
        let mut card = card.verify(&Pin::from_slice(FACTORY_USER_PIN)).unwrap();
        login.present(&mut card).unwrap();
    }
    login.submit(&mut ta.conn).unwrap();
    let drive = tempfile::tempdir().unwrap();
    let a_key = a.hsm.keys().audit_public();
    let (_, stored) = backup::create(
        &mut ta.conn,
        &[terminal_app::cli::backup::Drive::Dir(
            drive.path().to_path_buf(),
        )],
        Some(&a_key),
        None,
    )
    .unwrap();
    let file = drive.path().join(&stored[0].file_name);
    let source = SourceBackup::check(&file, &a_key).unwrap();

    // HSM B, its own PSOs logged in: a plain restore is refused; one recovery card is not
    // enough; both are, and only the re-wrapped key goes to B.
    let (_b, mut tb, b_cards) = with_psos(ServiceTier::Economy);
    tb.login(OfficerRole::Pso, &[&b_cards[0], &b_cards[1]])
        .unwrap();
    match backup::dry_run(&mut tb.conn, &file) {
        Err(Error::Refused(hsm_link::message::RemoteError::Admin(
            hsm_link::message::AdminError::Backup(BackupProblem::OtherHsm),
        ))) => {}
        other => panic!("{other:?}"),
    }
    match rewrap_with(&mut tb, &source, &[&readers[1]]) {
        Err(Error::Ceremony(CeremonyError::BackupNotRecovered { cards: 1 })) => {}
        other => panic!("{other:?}"),
    }
    let wrapped = rewrap_with(&mut tb, &source, &[&readers[1], &readers[0]]).unwrap();
    let diff = dry_run(&mut tb.conn, &file, &source, wrapped).unwrap();
    assert_eq!(diff.returning.count, 2);
    backup::commit(&mut tb.conn, &diff).unwrap();
    assert_eq!(keys(&mut tb), keys(&mut ta));
    drop(stack);
}
