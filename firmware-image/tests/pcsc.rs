//! Release keys on OpenPGP cards behind the real PC/SC stack (pcscd with virtual opcard cards,
//! started by `scripts/pcsc-up`; scripts/test does it): `tessera-firmware keygen` generates each
//! card's key on the card, each officer signs with `sign --reader`, and the merged image
//! verifies 2 of 2. Nothing here is a mock.
//!
//! Without `target/pcsc/readers.tsv` (or `$TESSERA_PCSC_DIR/readers.tsv`) the test fails with
//! "run scripts/pcsc-up first". It holds the stack's lock (`target/pcsc/lock`) for its whole
//! run and factory-resets its cards first and last; nextest puts this binary in the `pcsc`
//! test group (`.config/nextest.toml`).

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::fs;
use std::process::Output;

use cli::{ok_with, p, run_with};
use quorum::card::Card as _;
use quorum::pcsc::PcscCard;
use tessera_tests::pcsc_stack::{Stack, factory_reset};

/// The two cards used as release keys.
const CARDS: [usize; 2] = [2, 3];

fn run(args: &[&str], stdin: &str) -> Output {
    run_with(&[], args, stdin)
}

fn ok(args: &[&str], stdin: &str) -> String {
    ok_with(&[], args, stdin)
}

#[test]
fn officers_sign_with_opcard_cards_and_the_merged_image_verifies() {
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let readers: Vec<String> = CARDS.iter().map(|i| stack.expect_card(*i).0).collect();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // Each card's release key, generated on the card with its factory admin PIN, which the
    // same run replaces together with the user PIN: a release card never keeps factory PINs.
    let mut keys = Vec::new();
    for (i, reader) in readers.iter().enumerate() {
        factory_reset(reader);
        let bare = run(&["keygen", "--reader", reader], "12345678\n");
        assert!(!bare.status.success());
        assert!(
            String::from_utf8_lossy(&bare.stderr).contains("--holder"),
            "{}",
            String::from_utf8_lossy(&bare.stderr)
        );
        assert!(
            !PcscCard::open(reader).unwrap().has_keys(),
            "nothing is generated before the new PINs are chosen"
        );
        let holder = format!("Release Officer {i}");
        let out = ok(
            &["keygen", "--reader", reader, "--holder", &holder],
            "12345678\n246810\n246810\n87654321\n87654321\n",
        );
        let key = out.trim().strip_prefix("release key ").unwrap().to_owned();
        let info = PcscCard::open(reader).unwrap().info();
        assert_eq!(key, fixtures::hex(&info.signing_public));
        assert_eq!(info.holder.as_deref(), Some(holder.as_str()));
        let again = run(&["keygen", "--reader", reader], "12345678\n");
        assert!(
            !again.status.success(),
            "keys are not replaced without --replace"
        );
        keys.push(key);
    }
    let key_file = dir.join("release-keys.toml");
    fs::write(
        &key_file,
        format!(
            "version = 1\nthreshold = 2\nkeys = [\"{}\", \"{}\"]\n",
            keys[0], keys[1]
        ),
    )
    .unwrap();
    let image = fixtures::build(dir, "card-signed", "1.3.0", 4, "");

    // A wrong PIN signs nothing (and costs a try on the card).
    let sig0 = dir.join("officer0.sig");
    let wrong = run(
        &[
            "sign",
            p(&image),
            "--reader",
            &readers[0],
            "--out",
            p(&sig0),
        ],
        "654321\n",
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong PIN"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(!sig0.exists());

    let mut merge = vec!["merge".to_owned(), p(&image).to_owned()];
    for (i, reader) in readers.iter().enumerate() {
        let sig = dir.join(format!("officer{i}.sig"));
        let out = ok(
            &["sign", p(&image), "--reader", reader, "--out", p(&sig)],
            "246810\n",
        );
        assert!(out.contains(&keys[i][..16]), "{out}");
        merge.extend(["--signature".to_owned(), p(&sig).to_owned()]);
    }
    let signed = dir.join("signed.tsfw");
    merge.extend(["--out".to_owned(), p(&signed).to_owned()]);
    ok(&merge.iter().map(String::as_str).collect::<Vec<_>>(), "");

    let verify = ok(
        &[
            "verify",
            p(&signed),
            "--keys",
            p(&key_file),
            "--hardware-id",
            fixtures::HARDWARE_ID,
        ],
        "",
    );
    assert!(
        verify.contains("ok       signatures: 2 distinct release key(s) signed, 2 needed (of 2)"),
        "{verify}"
    );
    assert_eq!(
        verify.lines().filter(|l| l.starts_with("ok ")).count(),
        7,
        "{verify}"
    );

    // The unsigned image, and one officer's signature alone, are refused.
    let refused = run(
        &[
            "verify",
            p(&image),
            "--keys",
            p(&key_file),
            "--hardware-id",
            fixtures::HARDWARE_ID,
        ],
        "",
    );
    assert!(!refused.status.success());

    for reader in &readers {
        factory_reset(reader);
    }
}
