//! `tessera card list` and `tessera card export-key`, end to end: the real `tessera` binary
//! against the real PC/SC stack (pcscd with virtual OpenPGP cards, started by
//! `scripts/pcsc-up`; scripts/test does it), and the exported key registered with the real
//! `tessera-hsm`.
//!
//! Without `target/pcsc/readers.tsv` every test here fails with "run scripts/pcsc-up first".
//! Each test holds the stack's lock (`target/pcsc/lock`) for its whole run and factory-resets
//! the cards it uses; nextest puts this binary in the `pcsc` test group too
//! (`.config/nextest.toml`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quorum::card::{Card as _, Pin};
use quorum::pcsc::{FACTORY_ADMIN_PIN, PcscCard};
use quorum::{Argon2Params, CardPolicy, SoftCard};
use tessera_tests::pcsc_stack::{Stack, factory_reset};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// The card that gets keys and a holder, and the one left without keys.
const ENROLLED: usize = 5;
const BLANK: usize = 4;
const HOLDER: &str = "Erika Export";

fn tessera(args: &[&str], config_env: Option<&Path>) -> Output {
    let mut command = Command::new(TESSERA);
    command
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    if let Some(path) = config_env {
        command.env("TESSERA_CONFIG", path);
    }
    command.output().expect("run tessera")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Factory-resets the card in `reader`, generates its keys and sets its holder; its signing
/// key.
fn enrol(reader: &str) -> [u8; 32] {
    factory_reset(reader);
    let mut admin = PcscCard::open(reader)
        .unwrap()
        .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
        .map_err(|(_, e)| e)
        .unwrap();
    admin.set_ecc_algorithms().unwrap();
    let keys = admin.generate_keys().unwrap();
    admin.set_holder(HOLDER).unwrap();
    let card = admin.finish().unwrap();
    assert_eq!(card.info().signing_public, keys.signing_public);
    keys.signing_public
}

fn row<'a>(table: &'a str, location: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|row| row[0] == location)
        .unwrap_or_else(|| panic!("no row for {location:?} in\n{table}"))
}

fn config(dir: &Path, allow: bool) -> PathBuf {
    let path = dir.join(format!("tessera-{allow}.toml"));
    std::fs::write(
        &path,
        format!("version = 1\n\n[cards]\nallow_soft_cards = {allow}\n"),
    )
    .unwrap();
    path
}

#[test]
fn card_list_shows_every_reader_and_labels_soft_cards_only_when_allowed() {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (enrolled_reader, enrolled_serial) = stack.expect_card(ENROLLED);
    let (blank_reader, blank_serial) = stack.expect_card(BLANK);
    enrol(&enrolled_reader);
    factory_reset(&blank_reader);

    let out = tessera(&["card", "list"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert_eq!(
        table.lines().next(),
        Some("location\tkind\tserial\tholder\tkeys\tpin_tries\tnote")
    );
    for index in 0.. {
        let Some((reader, _)) = stack.card(index) else {
            break;
        };
        assert_eq!(row(&table, &reader).len(), 7, "{table}");
    }
    assert_eq!(
        row(&table, &enrolled_reader)[1..],
        ["card", enrolled_serial.as_str(), HOLDER, "yes", "3", "-"]
    );
    let blank = row(&table, &blank_reader);
    assert_eq!(blank[1..6], ["card", blank_serial.as_str(), "-", "no", "3"]);
    assert!(blank[6].contains("no keys"), "{table}");

    // A soft card (production passphrase hashing: the binary refuses test cards).
    let dir = tempfile::tempdir().unwrap();
    let soft = dir.path().join("ada.card");
    SoftCard::create(
        &soft,
        Some("Ada Soft"),
        "SOFT:0042",
        &Pin::from_slice(b"ada's long passphrase"),
        Argon2Params::production(),
        CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    let soft_arg = soft.to_str().unwrap();

    // Refused by default, by a configuration that does not allow it, and named so.
    for config_arg in [None, Some(config(dir.path(), false))] {
        let mut args = vec!["card", "list", "--soft", soft_arg];
        if let Some(path) = &config_arg {
            args.extend(["--config", path.to_str().unwrap()]);
        }
        let out = tessera(&args, None);
        assert!(!out.status.success());
        assert_eq!(
            stdout(&out),
            "",
            "nothing is listed when a soft card is refused"
        );
        let error = stderr(&out);
        assert!(error.contains(soft_arg), "{error}");
        assert!(error.contains("allow_soft_cards = true"), "{error}");
        assert!(error.contains("[cards]"), "{error}");
        assert!(error.contains("no PIN retry counter"), "{error}");
    }

    // Allowed by the configuration, from --config and from $TESSERA_CONFIG: labelled.
    let allow = config(dir.path(), true);
    for out in [
        tessera(
            &[
                "card",
                "list",
                "--soft",
                soft_arg,
                "--config",
                allow.to_str().unwrap(),
            ],
            None,
        ),
        tessera(&["card", "list", "--soft", soft_arg], Some(&allow)),
    ] {
        assert!(out.status.success(), "{}", stderr(&out));
        let table = stdout(&out);
        let soft_row = row(&table, soft_arg);
        assert_eq!(
            soft_row[1..6],
            ["soft card", "SOFT:0042", "Ada Soft", "yes", "-"]
        );
        assert!(soft_row[6].contains("no PIN retry counter"), "{table}");
        assert_eq!(row(&table, &enrolled_reader)[1], "card");
    }

    // A broken configuration is an error that names the file and the line, before any card.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "version = 1\n[cards]\nallow_soft_cards = 1\n").unwrap();
    let out = tessera(
        &["card", "list", "--config", broken.to_str().unwrap()],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "");
    let error = stderr(&out);
    assert!(error.contains(broken.to_str().unwrap()), "{error}");
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("cards.allow_soft_cards"), "{error}");
}

#[test]
fn export_key_writes_the_signing_key_that_tessera_hsm_registers() {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (reader, serial) = stack.expect_card(ENROLLED);
    let (blank_reader, _) = stack.expect_card(BLANK);
    let signing_key = enrol(&reader);
    factory_reset(&blank_reader);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("erika.key");
    let key_arg = key_file.to_str().unwrap();

    let out = tessera(
        &["card", "export-key", "--reader", &reader, "--out", key_arg],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hex: String = signing_key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        format!("ed25519:{hex}\n")
    );
    // The card still says the same key (read after the binary let go of the card).
    assert_eq!(
        PcscCard::open(&reader).unwrap().info().signing_public,
        signing_key
    );
    let report = stdout(&out);
    assert!(
        report.lines().any(|l| l == format!("holder: {HOLDER}")),
        "{report}"
    );
    assert!(
        report.lines().any(|l| l == format!("serial: {serial}")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "tessera-hsm so add --holder '{HOLDER}' --serial {serial} --key {key_arg}"
        )),
        "{report}"
    );

    // An existing file is never overwritten.
    let again = tessera(
        &["card", "export-key", "--reader", &reader, "--out", key_arg],
        None,
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        format!("ed25519:{hex}\n")
    );

    // A card without keys has nothing to export, and no file is left behind.
    let none = dir.path().join("blank.key");
    let out = tessera(
        &[
            "card",
            "export-key",
            "--reader",
            &blank_reader,
            "--out",
            none.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no keys yet"), "{}", stderr(&out));
    assert!(!none.exists());

    // The real tessera-hsm registers the exported key as an SO card.
    let hsm_bin = Path::new(TESSERA).with_file_name("tessera-hsm");
    assert!(
        hsm_bin.exists(),
        "{} is missing: build it with `cargo build -p partition-service --bin tessera-hsm` \
         (a workspace build or test run builds it)",
        hsm_bin.display()
    );
    let data = dir.path().join("hsm");
    let hsm = |args: &[&str]| {
        let out = Command::new(&hsm_bin)
            .args(["--data", data.to_str().unwrap()])
            .args(args)
            .env_remove("TESSERA_HSM_DATA")
            .output()
            .expect("run tessera-hsm");
        assert!(
            out.status.success(),
            "tessera-hsm {args:?}: {}",
            stderr(&out)
        );
        stdout(&out)
    };
    hsm(&["init", data.to_str().unwrap()]);
    let added = hsm(&[
        "so", "add", "--holder", HOLDER, "--serial", &serial, "--key", key_arg,
    ]);
    assert!(added.contains("SO card registered"), "{added}");
    let listed = hsm(&["so", "list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(HOLDER))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains(&serial), "{listed}");
    assert!(line.ends_with(&hex[..16]), "{listed}");
}
