//! The real `tessera demo` binary in a real terminal, on its second partition, from the
//! on-screen hints alone: the first screen lists the demo HSM's two partitions, the second
//! ("Passports") has no PSO set; opened, a 2-of-3 PSO set is enrolled card by card on its
//! Cards screen (no login needed on a fresh partition) with the spare soft cards, a new soft
//! card is made (`n`), two of the new set's cards log in and the dashboard shows; Esc goes back
//! to the list, which now says the set is enrolled. After a restart both partitions are there,
//! the set still enrolled, and the card made with `n` is still offered. Skipped, saying so,
//! where tmux is not installed (scripts/setup installs it).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use tessera_tests::tmux::Tmux;

#[test]
fn a_pso_set_is_enrolled_on_the_demos_second_partition_and_logs_in() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let state_env = format!("XDG_STATE_HOME={}", state.path().display());
    let env = ["NO_COLOR=1", &state_env];
    let binary = env!("CARGO_BIN_EXE_tessera");
    let tmux = Tmux::start("tessera-tui-partitions", 80, 24, &env, binary, &["demo"]);

    // The first screen: both partitions, the spare cards' PINs; once the fixture is built,
    // the first partition's set is enrolled and the second has none.
    let screen = tmux.wait_for("choose a partition");
    assert!(screen.contains("hana-demo-pin"), "{screen}");
    let screen = tmux.wait_for_within("✓ PSO set enrolled (2 of 3)", 120);
    assert!(
        screen.contains("1 Demo partition (demo-partition)"),
        "{screen}"
    );
    assert!(screen.contains("2 Passports (passports)"), "{screen}");
    assert!(screen.contains("○ no PSO set yet"), "{screen}");

    // The second partition's welcome screen: its spare cards; Cards without a login.
    let screen = tmux.demo_open_partition(2);
    assert!(
        screen.contains("Partition Passports (passports)"),
        "{screen}"
    );
    assert!(
        screen.contains("Esc: back to the demo HSM's partitions"),
        "{screen}"
    );
    assert!(screen.contains("c cards"), "{screen}");
    tmux.keys(&["c"]);
    let screen = tmux.wait_for("e enrol");
    assert!(screen.contains("Hana Spare"), "{screen}");

    // A PSO set, 2 of 3 (the default), card by card: Hana's, Ivo's and Jun's spare cards.
    tmux.keys(&["e"]);
    tmux.wait_for("Which set?");
    tmux.keys(&["1"]);
    let screen = tmux.wait_for("Enter opens the ceremony");
    assert!(screen.contains("m = 2"), "{screen}");
    assert!(screen.contains("n = 3"), "{screen}");
    tmux.keys(&["Enter"]);
    let cards = [
        ("1", "hana-demo-pin"),
        ("2", "ivo-demo-pin"),
        ("3", "jun-demo-pin"),
    ];
    for (i, (slot, pin)) in cards.iter().enumerate() {
        tmux.wait_for(&format!("Insert card {} of 3", i + 1));
        tmux.keys(&[slot]);
        tmux.wait_for("Tries");
        tmux.text(pin);
        tmux.keys(&["Enter"]);
    }
    let screen = tmux.wait_for_within("is registered as set", 120);
    assert!(screen.contains("2 of 3"), "{screen}");
    assert!(screen.contains("Hana Spare"), "{screen}");

    // A new soft card from the same screen (`n`): it joins the slots.
    tmux.escape();
    tmux.wait_for("n new card");
    tmux.keys(&["n"]);
    tmux.wait_for("Type the holder's name");
    tmux.text("Kai Newcard");
    tmux.keys(&["Enter"]);
    for _ in 0..2 {
        tmux.text("kai-long-passphrase");
        tmux.keys(&["Enter"]);
    }
    tmux.wait_for("is made");
    tmux.escape();
    tmux.wait_for("(Kai Newcard, new)");

    // Back on the welcome screen: a PSO login with two cards of the new set.
    tmux.escape();
    tmux.wait_for("Log in as PSO");
    let screen = tmux.login(
        "1",
        &[
            ("1", "Hana Spare", "hana-demo-pin"),
            ("3", "Jun Spare", "jun-demo-pin"),
        ],
    );
    assert!(screen.contains("Logged in as PSO"), "{screen}");
    assert!(screen.contains("Hana Spare, Jun Spare"), "{screen}");
    let screen = tmux.wait_for("Objects");
    assert!(screen.contains("Passports"), "{screen}");

    // Logged out, Esc goes back to the list: the second partition's set is enrolled now.
    tmux.keys(&["o"]);
    tmux.wait_for("Logged out");
    tmux.escape();
    let screen = tmux.wait_for("choose a partition");
    assert!(!screen.contains("no PSO set yet"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for_exit();

    // A restart: both partitions, both sets; the card made with `n` is offered again.
    tmux.respawn(&env, binary, &["demo"]);
    tmux.wait_for("choose a partition");
    let screen = tmux.wait_for("HSM key");
    assert_eq!(
        screen.matches("✓ PSO set enrolled (2 of 3)").count(),
        2,
        "{screen}"
    );
    tmux.demo_open_partition(2);
    tmux.keys(&["c"]);
    tmux.wait_for("(Kai Newcard, new)");
    tmux.escape();
    tmux.wait_for("Log in as PSO");
    tmux.keys(&["q"]);
    tmux.wait_for_exit();

    // No PIN of the new set, nor the new card's passphrase, in the diagnostics log.
    let log = std::fs::read_to_string(state.path().join("tessera/logs/tessera.log")).unwrap();
    assert!(log.contains("demo terminal paired"), "{log}");
    for secret in terminal_app::tui::demo::SPARE_CARDS
        .map(|c| c.pin)
        .into_iter()
        .chain(["kai-long-passphrase"])
    {
        assert!(!log.contains(secret), "the log holds a secret:\n{log}");
    }
}
