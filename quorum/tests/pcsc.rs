//! OpenPGP cards over the real PC/SC stack: pcscd with the vpcd reader driver and Nitrokey's
//! opcard in `tools/vcard-runner`, started by `scripts/pcsc-up` (scripts/test does it). Nothing
//! here is a mock.
//!
//! Without `target/pcsc/readers.tsv` (or `$TESSERA_PCSC_DIR/readers.tsv`) every test here fails
//! with "run scripts/pcsc-up first": a machine without the stack must not pass silently.
//!
//! Isolation: each test uses its own card (`readers.tsv` lists six; `scripts/pcsc-up 6`) and
//! factory-resets it first, so a test that failed half-way (or an earlier run) leaves nothing
//! behind for the next; tests that change PINs also restore the factory PINs at the end. The
//! tests run one at a time: nextest puts this binary in the test group `pcsc` (max-threads = 1,
//! `.config/nextest.toml`), and each test holds an exclusive lock on `target/pcsc/lock` for its
//! whole run, which also serialises `cargo test`'s threads and any other process that takes the
//! lock. Cards are opened by reader name only; nothing lists or probes readers.

use tessera_tests::pcsc_stack::{Stack, factory_reset};

use std::ffi::CString;
use std::time::{Duration, Instant};

use card_backend_pcsc::PcscBackend;
use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::PartitionId;
use hsm_link::message::{OfficerRole, login_message};
use openpgp_card::ocard::StatusBytes;
use openpgp_card::state::Open;
use quorum::card::{Card, MAX_SHARE_OBJECT_LEN, Pin, VerifiedCard};
use quorum::envelope::{EnvelopeHeader, ShareContext, open_share, seal_share};
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, MAX_SIGNED_MESSAGE_LEN, PcscCard};
use quorum::secret::{RecoverySecret, split, verify_share};
use quorum::{CardError, QuorumError};
use x25519_dalek::{PublicKey, StaticSecret};

const NEW_USER_PIN: &[u8] = b"246810";
const NEW_ADMIN_PIN: &[u8] = b"tessera-admin-1";

/// One card of the stack, locked for this test.
struct TestCard {
    reader: String,
    serial: String,
    _stack: Stack,
}

/// Takes the stack's lock (held until the returned card is dropped), finds card `index` in
/// readers.tsv and factory-resets it.
fn take_card(index: usize) -> TestCard {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (reader, serial) = stack.expect_card(index);
    factory_reset(&reader);
    TestCard {
        reader,
        serial,
        _stack: stack,
    }
}

fn pin(bytes: &[u8]) -> Pin {
    Pin::from_slice(bytes)
}

fn open(card: &TestCard) -> PcscCard {
    PcscCard::open(&card.reader).unwrap()
}

fn enrol(card: &TestCard) -> PcscCard {
    let mut admin = open(card).admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.generate_keys().unwrap();
    admin.finish().unwrap()
}

fn context(index: u8, serial: &str) -> ShareContext {
    ShareContext {
        partition: PartitionId::new("payments").unwrap(),
        set_number: 1,
        share_index: index,
        card_serial: serial.to_owned(),
    }
}

#[test]
fn admin_setup_generates_keys_on_the_card_and_its_signatures_verify() {
    let test_card = take_card(0);
    let card = open(&test_card);
    let info = card.info();
    assert_eq!(info.serial, test_card.serial);
    assert!(!info.soft);
    assert_eq!(info.holder, None);
    assert_eq!(info.pin_retries_left, Some(3));
    assert!(!card.has_keys());
    assert_eq!(info.to_string(), format!("card {}", test_card.serial));

    // Enrolment: ECC attributes, keys generated on the card, holder, admin PIN changed.
    let mut admin = card.admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.set_ecc_algorithms().unwrap();
    let keys = admin.generate_keys().unwrap();
    assert_ne!(keys.signing_public, [0; 32]);
    assert_ne!(keys.decryption_public, [0; 32]);
    admin.set_holder("Alice Example").unwrap();
    assert!(matches!(
        admin.set_holder("Zoë"),
        Err(QuorumError::CardLabel { .. })
    ));
    assert!(matches!(
        admin.change_admin_pin(&pin(FACTORY_ADMIN_PIN)),
        Err(QuorumError::Card(CardError::PinFormat { .. }))
    ));
    admin.change_admin_pin(&pin(NEW_ADMIN_PIN)).unwrap();
    let mut card = admin.finish().unwrap();

    let info = card.info();
    assert!(card.has_keys());
    assert_eq!(info.holder.as_deref(), Some("Alice Example"));
    assert_eq!(info.signing_public, keys.signing_public);
    assert_eq!(info.decryption_public, keys.decryption_public);
    assert_eq!(
        info.to_string(),
        format!("card {} (Alice Example)", test_card.serial)
    );

    // The factory admin PIN no longer works; the new one does.
    let (card2, e) = card.admin(&pin(FACTORY_ADMIN_PIN)).unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ),
        "{e:?}"
    );
    assert_eq!(card2.admin_pin_retries_left(), 2);
    card = card2.admin(&pin(NEW_ADMIN_PIN)).unwrap().finish().unwrap();
    assert_eq!(card.admin_pin_retries_left(), 3);

    // The officer changes the user PIN from the factory one.
    let e = card
        .change_user_pin(&pin(b"999999"), &pin(NEW_USER_PIN))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ),
        "{e:?}"
    );
    card.change_user_pin(&pin(FACTORY_USER_PIN), &pin(NEW_USER_PIN))
        .unwrap();
    assert_eq!(card.info().pin_retries_left, Some(3));
    let (card, e) = card.verify(&pin(FACTORY_USER_PIN)).unwrap_err();
    assert!(matches!(e, CardError::WrongPin { .. }), "{e:?}");

    // Signatures by the card's Ed25519 key over the raw message verify with ed25519-dalek;
    // the second one needs the PIN again on this card (valid for one signature), which the
    // verified card presents itself.
    let mut verified = card.verify(&pin(NEW_USER_PIN)).unwrap();
    let public = VerifyingKey::from_bytes(&info.signing_public).unwrap();
    let message = login_message(
        &[7; 32],
        &[9; 32],
        &PartitionId::new("payments").unwrap(),
        OfficerRole::Pso,
    );
    for m in [
        &message[..],
        b"a second challenge",
        &[0xA5; MAX_SIGNED_MESSAGE_LEN],
    ] {
        let signature = verified.sign(m).unwrap();
        public
            .verify_strict(m, &Signature::from_bytes(&signature))
            .unwrap();
    }
    assert!(matches!(
        verified.sign(&[0; MAX_SIGNED_MESSAGE_LEN + 1]),
        Err(CardError::Backend(_))
    ));

    // The fingerprints stored on the card are the real v4 ones we computed.
    let reader = verified.reader().to_owned();
    drop(verified);
    {
        let name = CString::new(reader.as_str()).unwrap();
        let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let handle = context
            .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
            .unwrap();
        let backend =
            PcscBackend::from_pcsc_card(&name, pcsc::ShareMode::Exclusive, handle).unwrap();
        let mut raw = openpgp_card::Card::<Open>::new(backend).unwrap();
        let mut tx = raw.transaction().unwrap();
        let fingerprints = tx.fingerprints().unwrap();
        assert_eq!(
            fingerprints.signature().unwrap().as_bytes(),
            keys.signing_fingerprint
        );
        assert_eq!(
            fingerprints.decryption().unwrap().as_bytes(),
            keys.decryption_fingerprint
        );
    }

    // Back to the factory PINs.
    let mut admin = open(&test_card).admin(&pin(NEW_ADMIN_PIN)).unwrap();
    admin.set_user_pin(&pin(FACTORY_USER_PIN)).unwrap();
    admin.restore_factory_admin_pin().unwrap();
    let card = admin.finish().unwrap();
    card.verify(&pin(FACTORY_USER_PIN)).unwrap();
}

#[test]
fn a_wrong_pin_counts_down_and_the_right_pin_resets_the_counter() {
    let test_card = take_card(1);
    let card = open(&test_card);
    assert_eq!(card.info().pin_retries_left, Some(3));
    // The connection is exclusive: nothing else can reset the card under us.
    let e = PcscCard::open(&test_card.reader).unwrap_err();
    assert!(e.to_string().contains("in use by another program"), "{e}");

    let (card, e) = card.verify(&pin(b"000000")).unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "wrong PIN; 2 tries left before the card blocks"
    );
    assert_eq!(card.info().pin_retries_left, Some(2));

    // A PIN the card would refuse anyway is refused here and costs no try.
    let (card, e) = card.verify(&pin(b"123")).unwrap_err();
    assert!(matches!(e, CardError::PinFormat { .. }), "{e:?}");
    assert_eq!(card.info().pin_retries_left, Some(2));
    // So is a PIN of six bytes but three characters ("ééé"), which set-up refuses.
    let (card, e) = card
        .verify(&pin("\u{e9}\u{e9}\u{e9}".as_bytes()))
        .unwrap_err();
    assert!(matches!(e, CardError::PinFormat { .. }), "{e:?}");
    assert_eq!(card.info().pin_retries_left, Some(2));

    let (card, e) = card.verify(&pin(b"111111")).unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(1)
            }
        ),
        "{e:?}"
    );
    assert_eq!(card.info().pin_retries_left, Some(1));

    let verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
    assert_eq!(verified.info().pin_retries_left, Some(3));
    drop(verified);
    assert_eq!(open(&test_card).info().pin_retries_left, Some(3));
}

#[test]
fn three_wrong_pins_block_the_card_and_the_admin_pin_unblocks_it() {
    let test_card = take_card(2);
    let card = enrol(&test_card);
    let mut verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
    let object = b"TSSH share envelope stand-in".to_vec();
    verified.write_share_object(&object).unwrap();
    drop(verified);

    let mut card = open(&test_card);
    for left in [2u8, 1] {
        let (back, e) = card.verify(&pin(b"000000")).unwrap_err();
        assert!(
            matches!(e, CardError::WrongPin { retries_left: Some(n) } if n == left),
            "{e:?}"
        );
        card = back;
    }
    let (card, e) = card.verify(&pin(b"000000")).unwrap_err();
    assert!(matches!(e, CardError::Blocked), "{e:?}");
    assert_eq!(card.info().pin_retries_left, Some(0));
    // Blocked means blocked: the right PIN is refused too.
    let (card, e) = card.verify(&pin(FACTORY_USER_PIN)).unwrap_err();
    assert!(matches!(e, CardError::Blocked), "{e:?}");

    // The admin PIN sets a new user PIN and unblocks it; the share object survives.
    let mut admin = card.admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.set_user_pin(&pin(NEW_USER_PIN)).unwrap();
    assert_eq!(admin.info().pin_retries_left, Some(3));
    let card = admin.finish().unwrap();
    assert_eq!(card.info().pin_retries_left, Some(3));
    let mut verified = card.verify(&pin(NEW_USER_PIN)).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), Some(object));
    drop(verified);

    // Back to the factory user PIN.
    let mut admin = open(&test_card).admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.set_user_pin(&pin(FACTORY_USER_PIN)).unwrap();
    admin
        .finish()
        .unwrap()
        .verify(&pin(FACTORY_USER_PIN))
        .unwrap();
}

#[test]
fn a_share_sealed_to_the_card_opens_through_the_cards_ecdh() {
    let test_card = take_card(3);
    let card = enrol(&test_card);
    let info = card.info();
    let mut verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();

    // The card's ECDH is X25519 in RFC 7748 byte order: it agrees with x25519-dalek.
    let ephemeral = StaticSecret::from([0x5A; 32]);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let expected = ephemeral.diffie_hellman(&PublicKey::from(info.decryption_public));
    assert_eq!(
        *verified.decipher(&ephemeral_public).unwrap(),
        *expected.as_bytes()
    );

    // Envelopes sealed to the card's public key open with open_share and the card's decipher.
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 2, 3).unwrap();
    for share in &shares {
        let ctx = context(share.index(), &info.serial);
        let sealed = seal_share(&info.decryption_public, &ctx, share).unwrap();
        let header = EnvelopeHeader::parse(&sealed).unwrap();
        let opened = open_share(
            &header,
            &info.decryption_public,
            |e| verified.decipher(e),
            &ctx,
        )
        .unwrap();
        assert_eq!(*opened.to_bytes(), *share.to_bytes());
        verify_share(&commitments, &opened).unwrap();
    }

    // An envelope sealed to another key does not open with this card.
    let other = PublicKey::from(&StaticSecret::from([0x33; 32])).to_bytes();
    let ctx = context(shares[0].index(), &info.serial);
    let sealed = seal_share(&other, &ctx, &shares[0]).unwrap();
    let header = EnvelopeHeader::parse(&sealed).unwrap();
    assert!(matches!(
        open_share(
            &header,
            &info.decryption_public,
            |e| verified.decipher(e),
            &ctx
        ),
        Err(QuorumError::EnvelopeOpen)
    ));

    // The whole path through the card traits: store, read back (from the card's DO), open.
    verified.store_share(&ctx, &shares[0]).unwrap();
    let read = verified.read_share(&ctx).unwrap();
    verify_share(&commitments, &read).unwrap();
    assert_eq!(*read.to_bytes(), *shares[0].to_bytes());
}

#[test]
fn the_share_object_is_written_and_read_only_after_the_pin() {
    let test_card = take_card(4);
    let mut verified = open(&test_card).verify(&pin(FACTORY_USER_PIN)).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), None);
    let object: Vec<u8> = (0..98u8).collect();
    verified.write_share_object(&object).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), Some(object.clone()));
    assert!(matches!(
        verified.write_share_object(&[1; MAX_SHARE_OBJECT_LEN + 1]),
        Err(CardError::ShareObjectTooLarge { .. })
    ));
    drop(verified); // resets the card: the PIN is forgotten

    // Without the PIN the card itself refuses DO 0103, for reading and for writing.
    {
        let name = CString::new(test_card.reader.as_str()).unwrap();
        let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let handle = context
            .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
            .unwrap();
        let backend =
            PcscBackend::from_pcsc_card(&name, pcsc::ShareMode::Exclusive, handle).unwrap();
        let mut raw = openpgp_card::Card::<Open>::new(backend).unwrap();
        let mut tx = raw.transaction().unwrap();
        let read = tx.private_use_do(3);
        assert!(
            matches!(
                read,
                Err(openpgp_card::Error::CardStatus(
                    StatusBytes::SecurityStatusNotSatisfied
                ))
            ),
            "{read:?}"
        );
        let write = tx.card().set_private_use_do(3, vec![1, 2, 3]);
        assert!(
            matches!(
                write,
                Err(openpgp_card::Error::CardStatus(
                    StatusBytes::SecurityStatusNotSatisfied
                ))
            ),
            "{write:?}"
        );
    }

    // With the PIN, the object is there, unchanged; an empty object removes it.
    let mut verified = open(&test_card).verify(&pin(FACTORY_USER_PIN)).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), Some(object));
    verified.write_share_object(&[]).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), None);
    assert!(matches!(
        verified.read_share(&context(1, &test_card.serial)),
        Err(QuorumError::Card(CardError::NoShare))
    ));
}

#[test]
fn timings() {
    let test_card = take_card(5);
    let rounds = 20u32;

    let start = Instant::now();
    let mut admin = open(&test_card).admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.generate_keys().unwrap();
    let generate = start.elapsed();
    drop(admin);

    let mut open_time = Duration::ZERO;
    let mut verify_time = Duration::ZERO;
    for _ in 0..rounds {
        let start = Instant::now();
        let card = open(&test_card);
        open_time += start.elapsed();
        let start = Instant::now();
        let verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
        verify_time += start.elapsed();
        drop(verified);
    }

    let card = open(&test_card);
    let public = card.info().decryption_public;
    let mut verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
    let start = Instant::now();
    for i in 0..rounds {
        verified.sign(&[i as u8; 160]).unwrap();
    }
    let sign_time = start.elapsed();
    let ephemeral = PublicKey::from(&StaticSecret::from([0x42; 32])).to_bytes();
    let start = Instant::now();
    for _ in 0..rounds {
        verified.decipher(&ephemeral).unwrap();
    }
    let decipher_time = start.elapsed();
    assert_ne!(public, [0; 32]);

    println!(
        "PC/SC timings on {} (opcard in vcard-runner):",
        test_card.reader
    );
    println!("  open + admin VERIFY + ECC attributes + 2 key generations: {generate:?}");
    println!(
        "  open (connect, SELECT, read identity and keys): {:?}",
        open_time / rounds
    );
    println!(
        "  VERIFY (PW1 0x81 + 0x82, then PW status):       {:?}",
        verify_time / rounds
    );
    println!(
        "  sign (VERIFY 0x81 again + PSO:CDS, 160 bytes):   {:?}",
        sign_time / rounds
    );
    println!(
        "  decipher (PSO:DECIPHER, X25519):                 {:?}",
        decipher_time / rounds
    );
}

#[test]
fn a_card_is_set_up_for_enrolment_with_the_holders_pin_and_a_new_admin_pin() {
    use quorum::setup::{CardSetup, NewPin, PinRole, prepare};

    let card = take_card(5);
    let setup = || CardSetup {
        holder: "Fabio Greco".to_owned(),
        user_pin: NewPin::confirm(PinRole::User, pin(NEW_USER_PIN), pin(NEW_USER_PIN)).unwrap(),
        admin_pin: NewPin::confirm(PinRole::Admin, pin(NEW_ADMIN_PIN), pin(NEW_ADMIN_PIN)).unwrap(),
        admin_pin_keeper: "Chiara Bianchi".to_owned(),
    };
    // A wrong admin PIN hands the card back with the tries left; nothing was set.
    let failed = prepare(open(&card), &pin(b"87654321"), setup()).unwrap_err();
    assert!(
        matches!(
            failed.error,
            QuorumError::Card(CardError::WrongPin {
                retries_left: Some(2)
            })
        ),
        "{:?}",
        failed.error
    );
    assert!(failed.done.is_empty() && !failed.started);
    assert_eq!(failed.failed_step(), None);
    assert!(!failed.card.expect("the card comes back").has_keys());

    let prepared = prepare(open(&card), &pin(FACTORY_ADMIN_PIN), setup()).unwrap();
    assert_eq!(prepared.admin_pin_keeper, "Chiara Bianchi");
    let info = prepared.card.info();
    assert_eq!(info.holder.as_deref(), Some("Fabio Greco"));
    assert_eq!(info.serial, card.serial);
    assert_eq!(info.signing_public, prepared.keys.signing_public);
    assert_eq!(info.pin_retries_left, Some(3));
    drop(prepared);

    // The factory PINs no longer open it; the holder's PIN and the new admin PIN do.
    match open(&card).verify(&pin(FACTORY_USER_PIN)) {
        Err((_, CardError::WrongPin { .. })) => {}
        other => panic!("the factory user PIN still verifies: {:?}", other.err()),
    }
    match open(&card).admin(&pin(FACTORY_ADMIN_PIN)) {
        Err((_, CardError::WrongPin { .. })) => {}
        other => panic!("the factory admin PIN still works: {:?}", other.err()),
    }
    let mut verified = open(&card).verify(&pin(NEW_USER_PIN)).unwrap();
    let signature = verified.sign(b"enrolment check").unwrap();
    VerifyingKey::from_bytes(&info.signing_public)
        .unwrap()
        .verify_strict(b"enrolment check", &Signature::from_bytes(&signature))
        .unwrap();
    drop(verified);
    let mut admin = open(&card).admin(&pin(NEW_ADMIN_PIN)).unwrap();
    admin.restore_factory_admin_pin().unwrap();
    admin.set_user_pin(&pin(FACTORY_USER_PIN)).unwrap();
    admin.finish().unwrap();
}

#[test]
fn the_resetting_code_unblocks_the_user_pin_without_the_admin_pin() {
    const RESET_CODE: &[u8] = b"reset-code-1";
    let test_card = take_card(3);
    let card = enrol(&test_card);
    let mut verified = card.verify(&pin(FACTORY_USER_PIN)).unwrap();
    let object = b"TSSH share envelope stand-in".to_vec();
    verified.write_share_object(&object).unwrap();
    drop(verified);

    // From the factory, no resetting code: it cannot unblock.
    let mut card = open(&test_card);
    assert_eq!(card.reset_code_retries_left().unwrap(), 0);
    let e = card
        .unblock_user_pin(&pin(RESET_CODE), &pin(NEW_USER_PIN))
        .unwrap_err();
    assert!(
        matches!(e, CardError::Blocked | CardError::WrongPin { .. }),
        "{e:?}"
    );
    // Too short a code is refused before the card sees it.
    let e = card
        .unblock_user_pin(&pin(b"short"), &pin(NEW_USER_PIN))
        .unwrap_err();
    assert!(matches!(e, CardError::PinFormat { .. }), "{e:?}");

    let mut admin = card.admin(&pin(FACTORY_ADMIN_PIN)).unwrap();
    admin.set_reset_code(&pin(RESET_CODE)).unwrap();
    let mut card = admin.finish().unwrap();
    assert_eq!(card.reset_code_retries_left().unwrap(), 3);

    // Block the user PIN.
    for _ in 0..3 {
        let (back, _) = card.verify(&pin(b"000000")).unwrap_err();
        card = back;
    }
    assert_eq!(card.info().pin_retries_left, Some(0));

    // A wrong resetting code costs one of its own tries and unblocks nothing.
    let e = card
        .unblock_user_pin(&pin(b"not-the-code"), &pin(NEW_USER_PIN))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CardError::WrongPin {
                retries_left: Some(2)
            }
        ),
        "{e:?}"
    );
    assert_eq!(card.info().pin_retries_left, Some(0));

    // The right one sets the new user PIN with a full counter; the share object survives.
    card.unblock_user_pin(&pin(RESET_CODE), &pin(NEW_USER_PIN))
        .unwrap();
    assert_eq!(card.info().pin_retries_left, Some(3));
    let mut verified = card.verify(&pin(NEW_USER_PIN)).unwrap();
    assert_eq!(verified.read_share_object().unwrap(), Some(object));
    drop(verified);

    // The user PIN changed back with the old one: the factory PIN again for other tests.
    let mut card = open(&test_card);
    card.change_user_pin(&pin(NEW_USER_PIN), &pin(FACTORY_USER_PIN))
        .unwrap();
    card.verify(&pin(FACTORY_USER_PIN)).unwrap();
    // And no resetting code left behind: the card as from the factory.
    factory_reset(&test_card.reader);
    assert_eq!(open(&test_card).reset_code_retries_left().unwrap(), 0);
}
