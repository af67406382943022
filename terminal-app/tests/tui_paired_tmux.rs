//! `tessera` against a real HSM in a real terminal: the real `tessera-hsm serve` on loopback
//! TCP, `tessera pair` with its one-time code, then `tessera` alone in tmux shows the chooser;
//! choosing the partition opens the TUI over the pinned link; a PSO logs in with two OpenPGP
//! cards behind the real pcscd (virtual opcard cards, default PIN); the dashboard shows the
//! partition and the log verifies against the pinned audit key; the paired terminals screen
//! marks this one, refuses to revoke it, shows a new pairing code from the HSM with which a
//! second terminal pairs, and revokes that one with its first group typed; the HSM stopped, the link shows lost and the session ended; the HSM back,
//! Enter connects again; quit.
//!
//! And `tessera demo --pcsc`: the demo HSM with its PSO set on three virtual cards, a login with
//! two of them; and the PC/SC card reader itself: its slots, a card opened and verified, and no
//! reader event from the reset that letting a card go causes.
//!
//! Needs the PC/SC test stack (`scripts/pcsc-up`; `TESSERA_PCSC_DIR` names its run directory)
//! and takes its lock for the whole run. Skipped, saying so, where tmux is not installed.
#![cfg(feature = "embedded")] // the HSM's audit key is read with the partition-service library

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use quorum::card::{Card as _, Pin};
use quorum::ceremony::Enrolment;
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN, PcscCard};
use terminal_app::pair;
use terminal_app::state::StateDir;
use tessera_tests::hsm_process::{HsmDir, tessera_hsm};
use tessera_tests::pcsc_stack::{Stack, factory_reset};
use tessera_tests::tmux::{Tmux, card_slot};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// The stack's cards this test uses, and their holders.
const CARDS: [(usize, &str); 2] = [(0, "Ada Card"), (1, "Ben Card")];

/// Factory-resets the card in `reader`, generates its keys on the card and names its holder.
fn prepare(reader: &str, holder: &str) {
    factory_reset(reader);
    let mut admin = PcscCard::open(reader)
        .unwrap()
        .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
        .map_err(|(_, e)| e)
        .unwrap();
    admin.set_ecc_algorithms().unwrap();
    admin.generate_keys().unwrap();
    admin.set_holder(holder).unwrap();
    admin.finish().unwrap();
}

/// `tessera pair` with the code and the confirmation on standard input.
fn pair_terminal(state: &Path, config: &Path, address: &str, code: &str) {
    let mut child = Command::new(TESSERA)
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .args([
            "pair",
            "--tcp",
            address,
            "--partition",
            "p1",
            "--name",
            "pay",
        ])
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{code}\nyes\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pins the HSM's audit key for `pay`, as a pairing that carries it does (a pairing without it
/// leaves the TUI unable to verify the log, and it says so).
fn pin_audit_key(state: &StateDir, key: [u8; 32]) {
    state
        .update_paired(|list| {
            let mut entry = list.get("pay").unwrap().clone();
            entry.audit_key = Some(key);
            list.upsert(entry).map(|()| ((), true))
        })
        .unwrap()
        .unwrap();
}

/// The first PSO set: the two cards, 2 of 2, enrolled over the pinned link (the first terminal
/// paired may enrol the first set).
fn enrol(state: &StateDir, readers: &[String]) {
    let entry = state.paired().unwrap().get("pay").unwrap().clone();
    let mut conn = pair::connect_pinned(state, &entry, pair::now_unix()).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, 2, 2).unwrap();
    for reader in readers {
        let mut card = PcscCard::open(reader)
            .unwrap()
            .verify(&Pin::from_slice(FACTORY_USER_PIN))
            .map_err(|(_, e)| e)
            .unwrap();
        enrolment.add_card(&mut card).unwrap();
    }
    enrolment.finish(&mut conn).unwrap();
    conn.close().unwrap();
}

#[test]
fn tessera_chooses_the_paired_hsm_and_a_pso_logs_in_with_two_pcsc_cards() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (readers, serials): (Vec<String>, Vec<String>) = CARDS
        .iter()
        .map(|(index, holder)| {
            let (reader, serial) = stack.expect_card(*index);
            prepare(&reader, holder);
            (reader, serial)
        })
        .unzip();

    let dir = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let hsm = HsmDir::init(
        tessera_hsm(Path::new(TESSERA), &workspace),
        dir.path().join("hsm"),
    );
    hsm.run(&[
        "partition",
        "create",
        "p1",
        "--name",
        "Payments",
        "--tier",
        "economy",
    ]);
    let (code, _) = hsm.pairing_code("p1");
    // The audit key, read before `serve` holds the store.
    let audit_key = partition_service::service::Hsm::open(
        hsm.data(),
        partition_service::service::Clock::system(),
    )
    .unwrap()
    .audit_key()
    .to_bytes();
    let serving = hsm.serve_tcp();

    let state_path = dir.path().join("state");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n").unwrap();
    pair_terminal(&state_path, &config, &serving.address, &code);
    let state = StateDir::open(&state_path).unwrap();
    pin_audit_key(&state, audit_key);
    enrol(&state, &readers);

    let tmux = Tmux::start(
        "tessera-paired-test",
        80,
        24,
        &["NO_COLOR=1"],
        TESSERA,
        &[
            "--state-dir",
            state_path.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    // `tessera` alone: the chooser, with the partition, its address and fingerprint.
    let screen = tmux.wait_for("Paired HSM partitions");
    assert!(screen.contains("pay · tcp:127.0.0.1:"), "{screen}");
    assert!(screen.contains("partition p1"), "{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("link: up");
    assert!(screen.contains("Noise KK, HSM key pinned"), "{screen}");

    // A PSO login: the readers listed with their cards, each PIN typed as bullets.
    tmux.keys(&["1"]);
    let screen = tmux.wait_for("Choose the card to insert");
    let ada = card_slot(&screen, &serials[0]);
    let ben = card_slot(&screen, &serials[1]);
    tmux.keys(&[&ada]);
    let screen = tmux.wait_for("Holder  Ada Card");
    assert!(screen.contains("3 tries left"), "{screen}");
    tmux.text("123456");
    let screen = tmux.wait_for("••••••");
    assert!(!screen.contains("123456"), "{screen}");
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 of 2");
    tmux.keys(&[&ben]);
    tmux.wait_for("Holder  Ben Card");
    tmux.text("123456");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Logged in as PSO");
    assert!(screen.contains("Ada Card, Ben Card"), "{screen}");
    let screen = tmux.wait_for("Objects");
    assert!(screen.contains("link: up"), "{screen}");
    assert!(screen.contains("last checkpoint"), "{screen}");

    // The log, verified against the pinned audit key.
    tmux.keys(&["4"]);
    tmux.wait_for("chain verified");
    tmux.escape();

    // The paired terminals: this one, marked.
    tmux.keys(&["9"]);
    tmux.wait_for("t paired terminals");
    tmux.keys(&["t"]);
    let screen = tmux.wait_for("1 paired terminals");
    assert!(screen.contains("◆"), "{screen}");
    tmux.keys(&["v"]);
    tmux.wait_for("That is this terminal");

    // A new pairing code from the HSM, shown once; a second terminal pairs with it, shows up
    // in the list, and is revoked with its fingerprint's first group typed.
    tmux.keys(&["N"]);
    let screen = tmux.wait_for("New one-time pairing code");
    let code = screen
        .lines()
        .skip_while(|l| !l.contains("New one-time pairing code"))
        .skip(2)
        .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
        .next()
        .unwrap()
        .to_owned();
    let other_state = dir.path().join("other");
    pair_terminal(&other_state, &config, &serving.address, &code);
    let other = StateDir::open(&other_state)
        .unwrap()
        .identity()
        .unwrap()
        .public()
        .fingerprint()
        .to_string();
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("2 paired terminals");
    assert!(screen.contains(&other), "{screen}");
    assert!(
        !screen.contains(&code),
        "a refresh wipes the code: {screen}"
    );
    // The other terminal's row, in the HSM's order.
    let row = screen
        .lines()
        .skip_while(|l| !l.contains("fingerprint"))
        .skip(1)
        .take_while(|l| !l.contains("paired terminals"))
        .filter(|l| {
            !l.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .is_empty()
        })
        .position(|l| l.contains(&other))
        .unwrap();
    tmux.keys(&["g"]);
    for _ in 0..row {
        tmux.keys(&["j"]);
    }
    tmux.keys(&["v"]);
    tmux.wait_for("Type the first group");
    tmux.text(other.split_whitespace().next().unwrap());
    tmux.keys(&["Enter"]);
    tmux.wait_for("Revoked terminal");
    tmux.wait_for("1 paired terminals");

    // Quitting while logged in asks first; n stays.
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["n"]);
    tmux.escape();
    tmux.escape();
    tmux.wait_for("o log out");

    // The HSM goes away: the next request finds the link lost, the session ended with it;
    // once the HSM is back, Enter connects again.
    let address = serving.address.clone();
    drop(serving);
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("Enter connects again");
    assert!(screen.contains("link: LOST"), "{screen}");
    assert!(screen.contains("not logged in"), "{screen}");
    let serving = hsm.serve_tcp_on(&address);
    tmux.keys(&["Enter"]);
    tmux.wait_for("link: up");
    tmux.keys(&["1"]);
    tmux.wait_for("Choose the card to insert");
    tmux.escape();

    // Not logged in: q quits at once.
    tmux.keys(&["q"]);
    tmux.wait_for_exit();
    drop(serving);
}

#[test]
fn tessera_demo_pcsc_logs_a_pso_in_with_two_virtual_cards() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    // Fresh cards: the demo gives them keys and holders, and enrols them with PIN 123456.
    let serials: Vec<String> = (0..3)
        .map(|index| {
            let (reader, serial) = stack.expect_card(index);
            factory_reset(&reader);
            serial
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "tessera-demo-pcsc-test",
        80,
        24,
        &["NO_COLOR=1"],
        TESSERA,
        &[
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "demo",
            "--pcsc",
        ],
    );
    tmux.wait_for("Card PIN 123456");
    tmux.wait_for_within("link: up", 120);
    tmux.keys(&["1"]);
    let screen = tmux.wait_for("Choose the card to insert");
    assert!(screen.contains("Cleo Card"), "{screen}");
    for (serial, holder, then) in [
        (&serials[0], "Ada Card", "1 of 2"),
        (&serials[2], "Cleo Card", "Logged in as PSO"),
    ] {
        let screen = tmux.wait_for("Choose the card to insert");
        tmux.keys(&[&card_slot(&screen, serial)]);
        tmux.wait_for(&format!("Holder  {holder}"));
        tmux.text("123456");
        tmux.keys(&["Enter"]);
        tmux.wait_for(then);
    }
    let screen = tmux.wait_for("Objects");
    assert!(screen.contains("PSO: Ada Card, Cleo Card"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
    tmux.wait_for_exit();
}

#[test]
fn the_pcsc_reader_lists_the_readers_opens_a_card_and_a_reset_is_no_event() {
    use terminal_app::tui::pcsc_reader::PcscReader;
    use terminal_app::tui::worker::CardReader;

    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    let (reader_name, serial) = stack.expect_card(0);
    prepare(&reader_name, "Ada Card");
    let mut reader = PcscReader::new(None, quorum::CardPolicy::hardware_only());
    let slots = reader.slots();
    let slot = slots
        .iter()
        .position(|s| s.label.starts_with(&reader_name))
        .unwrap_or_else(|| panic!("no slot for {reader_name}: {slots:?}"));
    assert_eq!(
        slots[slot].label,
        format!("{reader_name} · card {serial} (Ada Card) · 3 tries left")
    );
    let report = reader.report().unwrap();
    assert!(report.present.contains(&serial), "{report:?}");
    // Nothing changed: no event.
    assert_eq!(reader.poll(), None);
    // A card opened, verified and let go is reset by PC/SC: still no event (the poll compares
    // presence and ATR, not the reader's event counter).
    let card = reader.insert(slot).unwrap();
    assert_eq!(card.info().serial, serial);
    let verified = card
        .verify(&Pin::from_slice(FACTORY_USER_PIN))
        .map_err(|(_, e)| e)
        .unwrap();
    drop(verified);
    assert_eq!(reader.poll(), None);
    // No such slot.
    assert!(reader.insert(slots.len() + 5).is_err());
}
