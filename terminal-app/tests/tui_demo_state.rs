//! The demo's state on disk: a change made through the worker survives a restart, a restart
//! opens the fixture instead of building it, `reset` brings the original fixture back, the
//! state is private, and two demos never share one state at once.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hsm_link::domain::PartitionConfig;
use hsm_link::message::OfficerRole;
use quorum::{Argon2Params, Pin};
use terminal_app::tui::demo::{self, DEMO_CARDS, Demo, layout};
use terminal_app::tui::message::{Command, Event, LoginCommand, LoginEvent};
use terminal_app::tui::worker::Worker;

/// Opens the demo state in `root`. A worker just dropped lets go of the HSM's store a moment
/// later (its link's server thread ends once it sees the link closed), so a reopen is retried
/// for a bounded time.
fn open(root: &Path) -> Demo {
    let mut last = String::new();
    for _ in 0..100 {
        match Demo::open(root, Argon2Params::insecure_for_tests(), true) {
            Ok(demo) => return demo,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the demo state did not open: {last}")
}

/// A PSO login with Ada's and Ben's cards.
fn login(w: &mut Worker) {
    w.handle(Command::Login(LoginCommand::Start(OfficerRole::Pso)));
    let mut last = Vec::new();
    for (slot, card) in DEMO_CARDS[..2].iter().enumerate() {
        w.handle(Command::Login(LoginCommand::Insert(slot)));
        let pin = Pin::from_slice(card.pin.as_bytes());
        last = w.handle(Command::Login(LoginCommand::Verify(pin)));
    }
    assert!(
        last.iter()
            .any(|e| matches!(e, Event::Login(LoginEvent::LoggedIn { .. }))),
        "{last:?}"
    );
}

fn config(w: &mut Worker) -> PartitionConfig {
    match w.handle(Command::LoadConfig).into_iter().next() {
        Some(Event::Config(config)) => *config,
        other => panic!("no configuration: {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_change_survives_a_restart_and_reset_brings_the_fixture_back() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("demo");

    // First start: the fixture is built, then a configuration change through the worker.
    let first = open(&root);
    assert!(first.first_start());
    let hsm_id = first.target().hsm_id;
    let mut w = first.into_worker().unwrap();
    login(&mut w);
    let before = config(&mut w);
    assert!(
        !before.api_providers.rest,
        "the fixture starts with REST off"
    );
    let mut staged = before.clone();
    staged.api_providers.rest = true;
    let applied = w.handle(Command::ApplyConfig {
        expected_revision: before.revision,
        config: Box::new(staged),
    });
    assert_eq!(
        applied,
        vec![Event::ConfigApplied {
            revision: before.revision + 1
        }]
    );
    drop(w);

    // What is on disk: the fixture published, nothing partial, private directories and keys.
    let fixture = root.join(layout::FIXTURE);
    assert!(!root.join(layout::PARTIAL).exists());
    for dir in [
        root.clone(),
        fixture.clone(),
        fixture.join(layout::HSM),
        fixture.join(layout::CARDS),
        fixture.join(layout::TERMINAL),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        fixture.join(layout::HSM).join("device.key"),
        fixture.join(layout::HSM).join("hsm-keys.sealed"),
        fixture.join(layout::TERMINAL).join("terminal.key"),
        fixture.join(layout::TERMINAL).join("paired.toml"),
        fixture.join(layout::CARDS).join("SOFT-0001.card"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // Second start: the same HSM, opened (not built), and the change is there.
    let second = open(&root);
    assert!(!second.first_start());
    assert_eq!(second.target().hsm_id, hsm_id);
    let mut w = second.into_worker().unwrap();
    login(&mut w);
    let after = config(&mut w);
    assert!(after.api_providers.rest, "the change survived the restart");
    assert_eq!(after.revision, before.revision + 1);
    drop(w);

    // Reset: everything gone, and the next start builds a new HSM with the original fixture.
    let mut reset = demo::reset(&root);
    for _ in 0..100 {
        if reset.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        reset = demo::reset(&root);
    }
    reset.unwrap();
    assert!(!root.exists());
    let third = open(&root);
    assert!(third.first_start());
    assert_ne!(third.target().hsm_id, hsm_id, "a new HSM");
    let mut w = third.into_worker().unwrap();
    login(&mut w);
    let fresh = config(&mut w);
    assert!(!fresh.api_providers.rest, "the original fixture again");
    assert_eq!(fresh.revision, before.revision);
}

#[test]
fn one_demo_at_a_time_per_state_and_an_interrupted_first_start_is_rebuilt() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("demo");
    let first = Demo::open(&root, Argon2Params::insecure_for_tests(), true).unwrap();
    // A second demo on the same state is refused while the first holds it, and so is a reset.
    let refused = Demo::open(&root, Argon2Params::insecure_for_tests(), true)
        .err()
        .expect("a second demo on the same state");
    assert!(refused.contains("another `tessera demo`"), "{refused}");
    assert!(demo::reset(&root).unwrap_err().contains("another"));
    // The first start was interrupted before the fixture was built: only a partial one is left.
    drop(first);
    assert!(root.join(layout::PARTIAL).exists());
    assert!(!root.join(layout::FIXTURE).exists());
    let again = open(&root);
    assert!(again.first_start(), "a partial fixture is built again");
    let mut w = again.into_worker().unwrap();
    login(&mut w);
    assert!(root.join(layout::FIXTURE).exists());
}

#[test]
fn a_state_directory_others_can_read_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("demo");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = Demo::open(&root, Argon2Params::insecure_for_tests(), true)
        .err()
        .expect("a demo state others can read");
    assert!(refused.contains("not private"), "{refused}");
}

#[test]
fn the_second_partition_is_fresh_and_paired_when_first_opened_and_spare_cards_come_back() {
    let state = tempfile::tempdir().unwrap();
    let root = state.path().join("demo");
    let fixture = root.join(layout::FIXTURE);
    let cards = fixture.join(layout::CARDS);
    let first = std::sync::Arc::new(open(&root));
    // The fixture prepares the first partition; the second is opened afterwards.
    let w = first.worker(0).unwrap();
    drop(w);
    let paired = || std::fs::read_to_string(fixture.join(layout::TERMINAL).join("paired.toml"));
    assert!(
        !paired().unwrap().contains("passports"),
        "paired when opened"
    );
    let mut w = first.worker(1).unwrap();
    assert!(paired().unwrap().contains("passports"));
    // Its own (spare) cards come first; no PSO set to log in with yet.
    let slots = w.slots();
    assert!(slots[0].label.contains("Hana Spare"), "{slots:?}");
    // The spare cards and the SO cards; not the first partition's sets.
    assert_eq!(slots.len(), 6, "{slots:?}");
    let refused = w.handle(Command::Login(LoginCommand::Start(OfficerRole::Pso)));
    assert!(
        !refused
            .iter()
            .any(|e| matches!(e, Event::Login(LoginEvent::LoggedIn { .. }))),
        "{refused:?}"
    );
    drop(w);
    drop(first);

    // A demo state without the spare cards (as one made before them): they come back on the
    // next start; a card file made here (as `n` makes them) is offered after the restart.
    for c in demo::SPARE_CARDS {
        std::fs::remove_file(cards.join(format!("{}.card", c.serial.replace(':', "-")))).unwrap();
    }
    quorum::SoftCard::create(
        &cards.join("SOFT-0900.card"),
        Some("Kai Newcard"),
        "SOFT:0900",
        &Pin::from_slice(b"kai-long-passphrase"),
        Argon2Params::insecure_for_tests(),
        demo::DEMO_CARD_POLICY,
    )
    .unwrap();
    let again = std::sync::Arc::new(open(&root));
    let w = again.worker(0).unwrap();
    for c in demo::SPARE_CARDS {
        let file = cards.join(format!("{}.card", c.serial.replace(':', "-")));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let labels: Vec<String> = w.slots().into_iter().map(|s| s.label).collect();
    // The first partition's cards, then the one made here (not the second's spare ones).
    assert_eq!(labels.len(), DEMO_CARDS.len() + 1, "{labels:?}");
    assert_eq!(
        labels[DEMO_CARDS.len()],
        "soft card SOFT:0900 (Kai Newcard, new)"
    );
}
