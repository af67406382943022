//! The real `tessera demo` binary in a real terminal, on the Cards screen's newer entries, from
//! the on-screen hints alone: a PSO login, Ada's soft card passphrase changed (`p`) and the card
//! then drilled with the new one, and a new soft card made (`n`) that joins the slots. Skipped,
//! saying so, where tmux is not installed (scripts/setup installs it).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use tessera_tests::tmux::Tmux;

#[test]
fn a_pin_change_and_a_new_card_from_the_cards_screen_in_a_real_terminal() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let state_env = format!("XDG_STATE_HOME={}", state.path().display());
    let binary = env!("CARGO_BIN_EXE_tessera");
    let tmux = Tmux::start(
        "tessera-tui-cards",
        80,
        24,
        &["NO_COLOR=1", &state_env],
        binary,
        &["demo"],
    );
    tmux.demo_open_first_partition();
    // A PSO login with Ada's and Ben's cards.
    let screen = tmux.demo_pso_login();
    assert!(screen.contains("Logged in as PSO"), "{screen}");

    // Cards (8), `?` lists p, e and n.
    tmux.keys(&["8"]);
    tmux.wait_for("share drill");
    tmux.keys(&["?"]);
    let help = tmux.wait_for("new card");
    assert!(help.contains("enrol a set"), "{help}");
    tmux.escape();

    // Ada's passphrase changed: the old one, the new one twice.
    tmux.keys(&["p"]);
    tmux.wait_for("Enter changes its PIN, u unblocks it");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Old passphrase");
    tmux.text("ada-demo-pin");
    tmux.keys(&["Enter"]);
    for _ in 0..2 {
        tmux.text("ada-new-passphrase");
        tmux.keys(&["Enter"]);
    }
    tmux.wait_for("is changed");
    // Unblocking a soft card: it has nothing that unblocks it, and says so.
    tmux.keys(&["u"]);
    tmux.wait_for("cannot be unblocked");
    tmux.escape();

    // The drill opens Ada's card with the new passphrase only.
    tmux.wait_for("Choose the card to drill");
    tmux.keys(&["1"]);
    tmux.wait_for("Tries");
    tmux.text("ada-demo-pin");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Wrong PIN");
    tmux.text("ada-new-passphrase");
    tmux.keys(&["Enter"]);
    tmux.wait_for("its share is valid");

    // A new soft card: the holder, the passphrase twice; it joins the slots.
    tmux.keys(&["n"]);
    tmux.wait_for("Type the holder's name");
    tmux.text("Quinn Officer");
    tmux.keys(&["Enter"]);
    for _ in 0..2 {
        tmux.text("quinn-long-passphrase");
        tmux.keys(&["Enter"]);
    }
    tmux.wait_for("is made");
    tmux.escape();
    tmux.keys(&["p"]);
    tmux.wait_for("(Quinn Officer, new)");
}
