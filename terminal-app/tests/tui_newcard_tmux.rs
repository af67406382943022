//! The real `tessera demo --pcsc` in tmux: after a PSO login with two of the demo's virtual
//! OpenPGP cards, the Cards screen's `o` sets up a factory-fresh card behind the real pcscd from
//! the on-screen hints alone: the reader chosen, the card shown factory-fresh, the holder's name,
//! the factory admin PIN, a new admin PIN twice and a user PIN twice; the keys made on the card
//! are shown, and the card then opens with the new user PIN only.
//!
//! Needs the PC/SC test stack (`TESSERA_PCSC_DIR`) and takes its lock. Skipped, saying so,
//! where tmux is not installed.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use quorum::card::{Card as _, Pin};
use quorum::pcsc::{FACTORY_USER_PIN, PcscCard};
use tessera_tests::pcsc_stack::{Stack, factory_reset};
use tessera_tests::tmux::{Tmux, card_slot};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

#[test]
fn tessera_demo_pcsc_sets_up_a_fresh_openpgp_card_from_the_cards_screen() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let stack = Stack::lock().unwrap_or_else(|e| panic!("{e}"));
    // The demo enrols cards 0 to 2; card 3 is the one set up here.
    let serials: Vec<String> = (0..3)
        .map(|index| {
            let (reader, serial) = stack.expect_card(index);
            factory_reset(&reader);
            serial
        })
        .collect();
    let (reader, serial) = stack.expect_card(3);
    factory_reset(&reader);
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "tessera-newcard-pcsc-test",
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
    tmux.wait_for_within("link: up", 120);
    let screen = tmux.login_by_serial(
        "1",
        &[
            (&serials[0], "Ada Card", "123456"),
            (&serials[2], "Cleo Card", "123456"),
        ],
    );
    assert!(screen.contains("Logged in as PSO"), "{screen}");

    // Cards (8): the key line names o; the reader of the fresh card.
    tmux.keys(&["8"]);
    tmux.wait_for("o OpenPGP");
    tmux.keys(&["o"]);
    let screen = tmux.wait_for("Choose the reader with the card");
    tmux.keys(&[&card_slot(&screen, &serial)]);
    tmux.wait_for("factory-fresh: no keys, no holder");
    tmux.text("Quinn Officer");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("a new card's: 12345678");
    assert!(screen.contains("Admin PIN now"), "{screen}");
    for pin in ["12345678", "quinn-admin", "quinn-admin", "246810", "246810"] {
        tmux.text(pin);
        tmux.keys(&["Enter"]);
    }
    let screen = tmux.wait_for_within("is set up", 60);
    assert!(screen.contains("Signing"), "{screen}");
    assert!(
        screen.contains(&format!("card {serial} (Quinn Officer)")),
        "{screen}"
    );
    assert!(!screen.contains("246810"), "no PIN on the screen");
    tmux.escape();
    tmux.wait_for("Choose the card to drill");
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
    tmux.wait_for_exit();

    // The card itself: the holder's new PIN opens it, the factory one no longer does.
    let card = PcscCard::open(&reader).unwrap();
    assert_eq!(card.info().holder.as_deref(), Some("Quinn Officer"));
    let (card, _) = quorum::Card::verify(card, &Pin::from_slice(FACTORY_USER_PIN))
        .map(|_| ())
        .expect_err("the factory PIN still verifies");
    assert!(quorum::Card::verify(card, &Pin::from_slice(b"246810")).is_ok());
    for index in 0..4 {
        factory_reset(&stack.expect_card(index).0);
    }
}
