//! Soft cards: the file, the passphrase, the typestate, and the share they carry. All with
//! Argon2Params::insecure_for_tests, so that each passphrase check takes milliseconds.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use hsm_link::domain::PartitionId;
use quorum::card::{Card, Pin, VerifiedCard};
use quorum::envelope::ShareContext;
use quorum::secret::{RecoverySecret, combine, split, verify_share};
use quorum::soft::{Argon2Params, MIN_PASSPHRASE_CHARS, SoftCard};
use quorum::{CardError, QuorumError};

const PASSPHRASE: &[u8] = b"correct horse battery";

fn pass() -> Pin {
    Pin::from_slice(PASSPHRASE)
}

fn new_card(dir: &Path, serial: &str) -> PathBuf {
    let path = dir.join(format!("{serial}.tssc"));
    SoftCard::create(
        &path,
        Some("Alice Example"),
        serial,
        &pass(),
        Argon2Params::insecure_for_tests(),
        quorum::CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    path
}

fn context(index: u8, serial: &str) -> ShareContext {
    ShareContext {
        partition: PartitionId::new("demo").unwrap(),
        set_number: 1,
        share_index: index,
        card_serial: serial.to_owned(),
    }
}

#[test]
fn create_open_verify_sign_and_carry_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0001");

    let card = SoftCard::open_test_card(&path).unwrap();
    let info = card.info();
    assert!(info.soft);
    assert_eq!(info.pin_retries_left, None);
    assert_eq!(info.serial, "TSC-0001");
    assert_eq!(info.holder.as_deref(), Some("Alice Example"));
    assert_eq!(info.to_string(), "soft card TSC-0001 (Alice Example)");
    assert!(card.is_test_card());

    let mut verified = card.verify(&pass()).map_err(|(_, e)| e).unwrap();
    assert_eq!(verified.info(), info);

    let signature = verified.sign(b"login challenge").unwrap();
    VerifyingKey::from_bytes(&info.signing_public)
        .unwrap()
        .verify_strict(b"login challenge", &Signature::from_bytes(&signature))
        .unwrap();

    assert_eq!(verified.read_share_object().unwrap(), None);
    assert!(matches!(
        verified.read_share(&context(1, "TSC-0001")),
        Err(QuorumError::Card(CardError::NoShare))
    ));

    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 1, 2).unwrap();
    verified
        .store_share(&context(1, "TSC-0001"), &shares[0])
        .unwrap();
    drop(verified);

    // The share survives in the file; a fresh open and verify reads it back.
    let mut again = SoftCard::open_test_card(&path)
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap();
    let share = again.read_share(&context(1, "TSC-0001")).unwrap();
    verify_share(&commitments, &share).unwrap();
    let back = combine(&commitments, 1, [&share]).unwrap();
    assert!(bool::from(subtle::ConstantTimeEq::ct_eq(&back, &secret)));

    // Read under another card's serial or another set: refused.
    assert!(matches!(
        again.read_share(&context(1, "TSC-0002")),
        Err(QuorumError::ShareContext { .. })
    ));
    let stale = ShareContext {
        set_number: 2,
        ..context(1, "TSC-0001")
    };
    assert!(matches!(
        again.read_share(&stale),
        Err(QuorumError::EnvelopeOpen)
    ));
}

#[test]
fn a_wrong_passphrase_returns_the_card_for_another_try() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0002");
    let card = SoftCard::open_test_card(&path).unwrap();

    let (card, error) = card
        .verify(&Pin::from_slice(b"correct horse battery!"))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(error, CardError::WrongPin { retries_left: None }));
    assert!(error.to_string().contains("no retry counter"), "{error}");

    // The same card object, asked again with the right passphrase.
    let verified = card.verify(&pass()).map_err(|(_, e)| e).unwrap();
    assert_eq!(verified.info().serial, "TSC-0002");
}

#[test]
fn share_objects_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0003");
    let mut card = SoftCard::open_test_card(&path)
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap();
    assert!(matches!(
        card.write_share_object(&[0u8; 513]),
        Err(CardError::ShareObjectTooLarge { len: 513, max: 512 })
    ));
    card.write_share_object(&[7u8; 512]).unwrap();
    assert_eq!(card.read_share_object().unwrap(), Some(vec![7u8; 512]));
}

#[cfg(unix)]
#[test]
fn files_are_private_and_leave_no_partial_behind() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0004");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut card = SoftCard::open_test_card(&path)
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap();
    card.write_share_object(b"envelope").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("TSC-0004.tssc")]);
}

#[test]
fn create_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0005");
    let before = std::fs::read(&path).unwrap();
    let again = SoftCard::create(
        &path,
        None,
        "TSC-0005",
        &pass(),
        Argon2Params::insecure_for_tests(),
        quorum::CardPolicy::allowed_by_configuration(),
    );
    assert!(matches!(again, Err(QuorumError::SoftCardExists { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let other = dir.path().join("notes.txt");
    std::fs::write(&other, b"not a card").unwrap();
    assert!(matches!(
        SoftCard::create(
            &other,
            None,
            "TSC-0006",
            &pass(),
            Argon2Params::insecure_for_tests(),
            quorum::CardPolicy::allowed_by_configuration()
        ),
        Err(QuorumError::SoftCardExists { .. })
    ));
    assert_eq!(std::fs::read(&other).unwrap(), b"not a card");
}

#[test]
fn short_passphrases_and_bad_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.tssc");
    let create = |pin: &Pin, holder: Option<&str>, serial: &str| {
        SoftCard::create(
            &path,
            holder,
            serial,
            pin,
            Argon2Params::insecure_for_tests(),
            quorum::CardPolicy::allowed_by_configuration(),
        )
    };
    let eleven = Pin::from_slice("ä".repeat(MIN_PASSPHRASE_CHARS - 1).as_bytes());
    assert!(matches!(
        create(&eleven, None, "S1"),
        Err(QuorumError::WeakPassphrase { min: 12, .. })
    ));
    assert!(matches!(
        create(&Pin::new(vec![b'x'; 1025]), None, "S1"),
        Err(QuorumError::WeakPassphrase { .. })
    ));
    assert!(matches!(
        create(&pass(), Some("Mallory\u{1b}[2J"), "S1"),
        Err(QuorumError::CardLabel {
            field: "holder",
            ..
        })
    ));
    assert!(matches!(
        create(&pass(), None, ""),
        Err(QuorumError::CardLabel {
            field: "serial",
            ..
        })
    ));
    assert!(!path.exists());
    let twelve = Pin::from_slice("ä".repeat(MIN_PASSPHRASE_CHARS).as_bytes());
    create(&twelve, None, "S1").unwrap();
}

#[test]
fn test_cards_and_weak_parameters_are_refused_outside_tests() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0007");
    let refused =
        SoftCard::open(&path, quorum::CardPolicy::allowed_by_configuration()).unwrap_err();
    assert!(matches!(refused, QuorumError::SoftCardFormat { .. }));
    assert!(refused.to_string().contains("test card"), "{refused}");

    // Clear the test flag: the weak parameters alone are now refused, even by tests.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] = 0;
    let cleared = dir.path().join("cleared.tssc");
    std::fs::write(&cleared, &bytes).unwrap();
    for result in [
        SoftCard::open(&cleared, quorum::CardPolicy::allowed_by_configuration()),
        SoftCard::open_test_card(&cleared),
    ] {
        assert!(matches!(result, Err(QuorumError::Argon2Params { .. })));
    }

    // Parameters beyond the bounds are refused before Argon2 runs.
    let mut huge = std::fs::read(&path).unwrap();
    huge[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
    let huge_path = dir.path().join("huge.tssc");
    std::fs::write(&huge_path, &huge).unwrap();
    assert!(matches!(
        SoftCard::open_test_card(&huge_path),
        Err(QuorumError::Argon2Params { .. })
    ));
}

#[test]
fn every_tampered_byte_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0008");
    {
        let mut card = SoftCard::open_test_card(&path)
            .unwrap()
            .verify(&pass())
            .map_err(|(_, e)| e)
            .unwrap();
        card.write_share_object(&[0x5a; 98]).unwrap();
    }
    let original = std::fs::read(&path).unwrap();
    let tampered_path = dir.path().join("tampered.tssc");
    for byte in 0..original.len() {
        let mut tampered = original.clone();
        tampered[byte] ^= 0xff;
        std::fs::write(&tampered_path, &tampered).unwrap();
        let outcome = match SoftCard::open_test_card(&tampered_path) {
            Err(e) => format!("open: {e}"),
            Ok(card) => match card.verify(&pass()) {
                Err((_, e)) => format!("verify: {e}"),
                Ok(_) => panic!("byte {byte} flipped and the card still verified"),
            },
        };
        assert!(!outcome.is_empty());
    }
    // The untouched file still verifies.
    std::fs::write(&tampered_path, &original).unwrap();
    assert!(
        SoftCard::open_test_card(&tampered_path)
            .unwrap()
            .verify(&pass())
            .is_ok()
    );
}

#[test]
fn files_that_are_not_soft_cards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.tssc");
    std::fs::write(&path, b"PK\x03\x04 a zip file").unwrap();
    let error = SoftCard::open(&path, quorum::CardPolicy::allowed_by_configuration()).unwrap_err();
    assert!(
        error.to_string().contains("not a Tessera soft card"),
        "{error}"
    );

    std::fs::write(&path, vec![0u8; 5000]).unwrap();
    let error = SoftCard::open(&path, quorum::CardPolicy::allowed_by_configuration()).unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");

    let mut v2 = b"TSSC\x02".to_vec();
    v2.resize(200, 0);
    std::fs::write(&path, v2).unwrap();
    let error = SoftCard::open(&path, quorum::CardPolicy::allowed_by_configuration()).unwrap_err();
    assert!(error.to_string().contains("version 2"), "{error}");

    assert!(matches!(
        SoftCard::open(
            &dir.path().join("missing.tssc"),
            quorum::CardPolicy::allowed_by_configuration()
        ),
        Err(QuorumError::SoftCardIo { .. })
    ));
}

#[test]
fn debug_shows_no_keys_or_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0009");
    let card = SoftCard::open_test_card(&path).unwrap();
    let shown = format!("{card:?}");
    assert!(shown.contains("TSC-0009") && shown.contains("test_card: true"));
    let verified = card.verify(&pass()).map_err(|(_, e)| e).unwrap();
    let shown = format!("{verified:?}");
    assert!(shown.contains("keys: <redacted>"), "{shown}");
    assert!(!shown.contains("correct horse"));
    assert_eq!(format!("{:?}", pass()), "Pin(<redacted>)");
}

#[test]
fn a_two_of_three_quorum_on_soft_cards() {
    let dir = tempfile::tempdir().unwrap();
    let serials = ["TSC-A", "TSC-B", "TSC-C"];
    let paths: Vec<PathBuf> = serials.iter().map(|s| new_card(dir.path(), s)).collect();

    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 2, 3).unwrap();
    for ((path, serial), share) in paths.iter().zip(serials).zip(&shares) {
        let mut card = SoftCard::open_test_card(path)
            .unwrap()
            .verify(&pass())
            .map_err(|(_, e)| e)
            .unwrap();
        card.store_share(&context(share.index(), serial), share)
            .unwrap();
    }
    drop((secret, shares));

    // Card C and card A come; each share is checked as it arrives.
    let mut arrived = Vec::new();
    for (path, serial, index) in [(&paths[2], "TSC-C", 3), (&paths[0], "TSC-A", 1)] {
        let mut card = SoftCard::open_test_card(path)
            .unwrap()
            .verify(&pass())
            .map_err(|(_, e)| e)
            .unwrap();
        let share = card.read_share(&context(index, serial)).unwrap();
        verify_share(&commitments, &share).unwrap();
        arrived.push(share);
    }
    let back = combine(&commitments, 2, &arrived).unwrap();
    assert_eq!(back.public_point(), commitments.secret_point());

    // Card B's envelope copied onto card A does not open there.
    let envelope = SoftCard::open_test_card(&paths[1])
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap()
        .read_share_object()
        .unwrap()
        .unwrap();
    let mut card_a = SoftCard::open_test_card(&paths[0])
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap();
    card_a.write_share_object(&envelope).unwrap();
    assert!(matches!(
        card_a.read_share(&context(2, "TSC-A")),
        Err(QuorumError::EnvelopeOpen)
    ));
}

#[test]
fn a_passphrase_opens_its_card_whichever_unicode_form_it_is_typed_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoe.tssc");
    // "Zoë's café clé" with every accent typed as a combining character (NFD).
    let decomposed = "Zoe\u{308}'s cafe\u{301} cle\u{301}";
    let composed = "Zo\u{eb}'s caf\u{e9} cl\u{e9}";
    SoftCard::create(
        &path,
        Some("Zoe Example"),
        "SOFT-NFC",
        &Pin::from_slice(decomposed.as_bytes()),
        Argon2Params::insecure_for_tests(),
        quorum::CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    let card = SoftCard::open_test_card(&path).unwrap();
    let card = card
        .verify(&Pin::from_slice(composed.as_bytes()))
        .unwrap_or_else(|(_, e)| panic!("the composed form is the same passphrase: {e}"));
    drop(card);
    let card = SoftCard::open_test_card(&path).unwrap();
    assert!(card.verify(&Pin::from_slice(decomposed.as_bytes())).is_ok());
}

#[test]
fn a_file_asking_more_argon2_than_a_small_terminal_runs_is_refused_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0009");
    let with = |name: &str, m: u32, t: u32, p: u32| {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[5] = 0; // not a test card: as a terminal would meet it
        bytes[6..10].copy_from_slice(&m.to_be_bytes());
        bytes[10..14].copy_from_slice(&t.to_be_bytes());
        bytes[14..18].copy_from_slice(&p.to_be_bytes());
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        SoftCard::open(&file, quorum::CardPolicy::allowed_by_configuration())
    };
    // 2 GiB, 64 passes, 16 lanes: 8 to 110 s and 2 GiB a try, then "wrong PIN" when memory ran
    // out. Refused when the file is opened, before any passphrase, naming the parameter.
    let cases = [
        (
            "memory",
            2 * 1024 * 1024,
            64,
            16,
            "Argon2id memory cost 2097152 KiB is above the 262144 KiB",
        ),
        (
            "passes",
            64 * 1024,
            64,
            1,
            "Argon2id passes 64 is above the 8 a terminal accepts",
        ),
        (
            "lanes",
            64 * 1024,
            3,
            16,
            "Argon2id lanes 16 is above the 4 a terminal accepts",
        ),
    ];
    for (name, m, t, p, expected) in cases {
        let error = with(name, m, t, p).unwrap_err();
        assert!(
            matches!(error, QuorumError::Argon2Params { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
    // At the bounds, the file opens (its passphrase is then checked as usual).
    let at_bounds = with("bounds", 256 * 1024, 8, 4).unwrap();
    assert!(!at_bounds.is_test_card());
    assert!(Argon2Params::new(256 * 1024, 8, 4).is_ok());
    assert!(Argon2Params::new(256 * 1024 + 1, 8, 4).is_err());
}

#[test]
fn a_passphrase_change_reseals_the_file_and_keeps_keys_and_share() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_card(dir.path(), "TSC-0100");
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 1, 1).unwrap();
    let mut verified = SoftCard::open_test_card(&path)
        .unwrap()
        .verify(&pass())
        .map_err(|(_, e)| e)
        .unwrap();
    verified
        .store_share(&context(1, "TSC-0100"), &shares[0])
        .unwrap();
    let before = verified.info();
    let header_before = std::fs::read(&path).unwrap();
    drop(verified);

    let new = Pin::from_slice(b"a new and longer passphrase");
    let mut card = SoftCard::open_test_card(&path).unwrap();
    // A wrong old passphrase changes nothing.
    let wrong = card.change_passphrase(&Pin::from_slice(b"not the passphrase"), &new);
    assert!(
        matches!(
            wrong,
            Err(QuorumError::Card(CardError::WrongPin {
                retries_left: None
            }))
        ),
        "{wrong:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), header_before);
    // A new passphrase too short is refused before the old one is tried.
    let short = card.change_passphrase(&pass(), &Pin::from_slice(b"short"));
    assert!(
        matches!(short, Err(QuorumError::WeakPassphrase { min, .. }) if min == MIN_PASSPHRASE_CHARS),
        "{short:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), header_before);

    card.change_passphrase(&pass(), &new).unwrap();
    assert!(!dir.path().join("TSC-0100.tssc.partial").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let after = std::fs::read(&path).unwrap();
    // Same parameters (bytes 5..18: flags and Argon2 costs), a fresh salt.
    assert_eq!(after[..18], header_before[..18]);
    assert_ne!(after[18..34], header_before[18..34]);

    // The card object and a fresh open both take the new passphrase only.
    let (card, e) = card.verify(&pass()).map(|_| ()).unwrap_err();
    assert!(matches!(e, CardError::WrongPin { .. }), "{e:?}");
    let mut verified = card.verify(&new).map_err(|(_, e)| e).unwrap();
    assert_eq!(verified.info(), before);
    let share = verified.read_share(&context(1, "TSC-0100")).unwrap();
    verify_share(&commitments, &share).unwrap();
    assert_eq!(share.index(), shares[0].index());
    drop(verified);
    let reopened = SoftCard::open_test_card(&path).unwrap();
    assert!(reopened.verify(&new).is_ok());
}
