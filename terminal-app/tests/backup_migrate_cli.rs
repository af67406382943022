//! `tessera backup restore FILE --migrate` end to end: the real `tessera` against two real
//! `tessera-hsm serve` over loopback TCP. A backup made on HSM A is refused by HSM B as a plain
//! restore and with a wrong source key; with A's key and the recovery card of A's PSO set it
//! is dry-run, shown and, once confirmed, committed at B, where A's keys then are.

#![cfg(feature = "embedded")] // the HSMs are partition-service, a dependency of the embedded default

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hsm_link::message::{AdminRequest, AdminResponse, KeyFilter, OfficerRole};
use quorum::ceremony::{Enrolment, Link, LoginCeremony};
use quorum::{Argon2Params, Card as _, CardPolicy, Pin, SoftCard};
use terminal_app::pair;
use terminal_app::state::StateDir;
use tessera_tests::hsm_process::{HsmDir, tessera_hsm};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

fn tessera(state: &Path, config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(TESSERA)
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that stops early closes its input: what it did not read does not matter.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn passphrase(holder: &str) -> String {
    format!("the passphrase of {holder}'s card")
}

/// Enrols a 1-of-1 PSO set on a new soft card of `holder` at the paired partition `name`; the
/// card's file.
fn enrol(state: &Path, dir: &Path, name: &str, holder: &str) -> PathBuf {
    let state = StateDir::open(state).unwrap();
    let entry = state.paired().unwrap().get(name).unwrap().clone();
    let mut conn = pair::connect_pinned(&state, &entry, pair::now_unix()).unwrap();
    let path = dir.join(format!("{holder}.card"));
    let pin = Pin::from_slice(passphrase(holder).as_bytes());
    let card = SoftCard::create(
        &path,
        Some(holder),
        &format!("SOFT:{holder}"),
        &pin,
        Argon2Params::production(),
        CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    let mut verified = card.verify(&pin).map_err(|(_, e)| e).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, 1, 1).unwrap();
    enrolment.add_card(&mut verified).unwrap();
    enrolment.finish(&mut conn).unwrap();
    conn.close().unwrap();
    path
}

/// The key ids and labels at the paired partition `name`, read with the PSO `card`.
fn keys(state: &Path, name: &str, card: &Path, holder: &str) -> Vec<(u64, String)> {
    let state = StateDir::open(state).unwrap();
    let entry = state.paired().unwrap().get(name).unwrap().clone();
    let mut conn = pair::connect_pinned(&state, &entry, pair::now_unix()).unwrap();
    let pin = Pin::from_slice(passphrase(holder).as_bytes());
    let card = SoftCard::open(card, CardPolicy::allowed_by_configuration()).unwrap();
    let mut verified = card.verify(&pin).map_err(|(_, e)| e).unwrap();
    let mut login = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    login.present(&mut verified).unwrap();
    login.submit(&mut conn).unwrap();
    let request = AdminRequest::ListKeys(hsm_link::message::KeyQuery::first(KeyFilter::All, 100));
    let listed = match conn.admin(request).unwrap() {
        AdminResponse::Keys { keys, .. } => keys
            .into_iter()
            .map(|k| (k.id.0, k.label.as_str().to_owned()))
            .collect(),
        other => panic!("{other:?}"),
    };
    conn.close().unwrap();
    listed
}

/// Keys made for the application at `partition`, in the HSM's data directory while it is not
/// served.
fn generate_keys(data: &str, partition: &str, labels: &[&str]) {
    use partition_service::access::ApiProvider;
    use partition_service::app_link::{AppConnection, AppRequest, AppResponse};
    let hsm = partition_service::service::Hsm::open(
        Path::new(data),
        partition_service::service::Clock::system(),
    )
    .unwrap();
    let partition = hsm_link::domain::PartitionId::new(partition).unwrap();
    for label in labels {
        let record = hsm.partition(&partition).unwrap();
        let mut connection = AppConnection {
            session_objects: Default::default(),
            credentials_epoch: record.credentials.epoch,
        };
        let request = AppRequest::Generate {
            kind: hsm_link::domain::KeyKind::Ed25519,
            label: hsm_link::domain::KeyLabel::new(*label).unwrap(),
            attributes: hsm_link::domain::KeyAttributes {
                extractable: false,
                sensitive: true,
                modifiable: false,
            },
            session: false,
        };
        let peer = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let made = hsm.app_execute(&mut connection, peer, &partition, ApiProvider::Jce, request);
        assert!(matches!(made, Ok(AppResponse::Key(_))), "{made:?}");
    }
}

#[test]
fn a_backup_of_one_hsm_is_restored_on_another_with_the_source_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = tessera_hsm(Path::new(TESSERA), &root);
    let (data_a, data_b) = (dir.path().join("hsm-a"), dir.path().join("hsm-b"));
    let (data_a, data_b) = (data_a.to_str().unwrap(), data_b.to_str().unwrap());
    let (hsm_a, audit_a, code_a) =
        HsmDir::with_partition(bin.clone(), data_a.into(), "pay", "Payments");
    let (hsm_b, audit_b, code_b) =
        HsmDir::with_partition(bin, data_b.into(), "pay-new", "Payments, on premises");
    generate_keys(data_a, "pay", &["signer", "kek"]);
    let serving_a = hsm_a.serve_tcp();
    let serving_b = hsm_b.serve_tcp();
    let state = dir.path().join("state");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n[cards]\nallow_soft_cards = true\n").unwrap();
    for (name, partition, address, code) in [
        ("a", "pay", &serving_a.address, &code_a),
        ("b", "pay-new", &serving_b.address, &code_b),
    ] {
        let args = [
            "pair",
            "--tcp",
            address,
            "--partition",
            partition,
            "--name",
            name,
        ];
        let out = tessera(&state, &config, &args, &format!("{code}\nyes\n"));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let ada = enrol(&state, dir.path(), "a", "ada");
    let bob = enrol(&state, dir.path(), "b", "bob");
    let (ada_s, bob_s) = (ada.to_str().unwrap(), bob.to_str().unwrap());
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    let drive_s = drive.to_str().unwrap();

    // A backup at A.
    let args = [
        "backup", "create", "--name", "a", "--to", drive_s, "--soft", ada_s, "--json",
    ];
    let out = tessera(&state, &config, &args, &format!("{}\n", passphrase("ada")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = drive.join(made["copies"][0]["file"].as_str().unwrap());
    let file_s = file.to_str().unwrap();
    let keys_a = keys(&state, "a", &ada, "ada");
    assert_eq!(keys_a.len(), 2, "{keys_a:?}");

    // At B, a plain restore: refused (another HSM's backup of another partition).
    let restore = |extra: &[&str], stdin: &str| {
        let mut args = vec!["backup", "restore", file_s, "--name", "b", "--soft", bob_s];
        args.extend_from_slice(extra);
        tessera(&state, &config, &args, stdin)
    };
    let bob_pin = format!("{}\n", passphrase("bob"));
    let out = restore(&["--dry-run"], &bob_pin);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("another partition: restore it here only as a migration"),
        "{}",
        text(&out.stderr)
    );

    // A wrong source key (B's own): refused offline, before any card is asked.
    let out = restore(
        &[
            "--migrate",
            "--source-key",
            &audit_b,
            "--recovery-soft",
            ada_s,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("another key"),
        "{}",
        text(&out.stderr)
    );
    // No source key: the audit key pinned for A at pairing is the source key, so the file
    // passes its offline check and the login asks for a card (here stdin is empty).
    let out = restore(&["--migrate", "--recovery-soft", ada_s], "");
    assert!(!out.status.success());
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains("--source-key"), "{said}");
    assert!(said.contains("cards of the set must sign"), "{said}");
    // Without the recovery card: the PSO of B logs in, then the migration asks for cards.
    let out = restore(&["--migrate", "--source-key", &audit_a], &bob_pin);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--recovery-soft"),
        "{}",
        text(&out.stderr)
    );
    // Not confirmed: nothing changes.
    let typed = format!("{}\n{}\nno\n", passphrase("bob"), passphrase("ada"));
    let migrate = [
        "--migrate",
        "--source-key",
        &audit_a,
        "--recovery-soft",
        ada_s,
    ];
    let out = restore(&migrate, &typed);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("dry run passed"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout)
            .contains("keys coming back (purged or deleted since): signer (1), kek (2)")
    );
    assert!(keys(&state, "b", &bob, "bob").is_empty());

    // Confirmed: A's keys are at B.
    let typed = format!("{}\n{}\nyes\n", passphrase("bob"), passphrase("ada"));
    let out = restore(&migrate, &typed);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("backup of partition pay"), "{shown}");
    assert!(shown.contains("restored"), "{shown}");
    assert!(
        text(&out.stderr).contains("the quorum backup key is recovered"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(keys(&state, "b", &bob, "bob"), keys_a);
    drop((serving_a, serving_b));
}
