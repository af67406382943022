//! The real `tessera demo` binary in a real terminal: tmux runs it, the test types what the
//! screens ask for (send-keys) and reads the screen (capture-pane): the Firmware screen before
//! a login (the demo update's checks, the refused image's reason), a PSO login with two soft
//! cards, the dashboard, a resize to 40×12 mid-flow, a loosening configuration change confirmed
//! and found in the log, the log exported to the demo drive and the file verified offline, a
//! backup to the demo drive directory verified, a key restored from the bin and one purged, the
//! backup's restore dry run and its diff, a credential reset, a share
//! drill, a re-share to 2 of 2 with the leaving card wiped, an SO login refused with one person's cards and accepted with two people's, and
//! quitting (asked first), all with `NO_COLOR=1`. Skipped, saying so, where tmux is not
//! installed (scripts/setup installs it).
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use std::process::Command;
use std::time::Duration;

use tessera_tests::tmux::Tmux;

#[test]
fn the_demo_is_driven_from_its_screens_in_a_real_terminal() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_tessera");
    // The demo keeps its state under the state directory: a fresh one, not the user's.
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let state_dir = state_dir.to_str().unwrap();
    let env = ["NO_COLOR=1"];
    let demo = ["--state-dir", state_dir, "demo"];
    let tmux = Tmux::start("tessera-tui-test", 80, 24, &env, binary, &demo);

    // The first screen: the demo HSM's partitions, the cards' holders and PINs, what the first
    // start prepares; then the first partition's welcome screen and its link.
    tmux.wait_for("ada-demo-pin");
    tmux.wait_for("preparing the demo HSM");
    let first_screen = tmux.demo_open_first_partition();
    let hsm_line = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("HSM hsm-"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no HSM line:\n{screen}"))
    };
    let hsm = hsm_line(&first_screen);

    // The terminal's own firmware from the welcome screen's hints, without a login: every
    // check of the demo update, then the refused image's reason; Esc back.
    tmux.wait_for("f firmware");
    tmux.keys(&["f"]);
    let screen = tmux.wait_for("✓ file digests");
    assert!(screen.contains("✓ signatures     2 distinct"), "{screen}");
    assert!(screen.contains("Version 1.0.0"), "{screen}");
    tmux.keys(&["j"]);
    tmux.wait_for("FAILED too-few-signatures");
    tmux.escape();
    tmux.wait_for("Log in as PSO");
    let screen = tmux.demo_pso_login();
    assert!(screen.contains("Logged in as PSO"), "{screen}");
    assert!(screen.contains("Ada Demo, Ben Demo"), "{screen}");
    let screen = tmux.wait_for("Objects");
    assert!(screen.contains("14 used"), "{screen}");
    assert!(!screen.contains("ben-demo-pin"));

    // Smaller than usable, mid-flow: no panic, and back.
    tmux.resize(40, 12);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(tmux.alive(), "the TUI died at 40x12:\n{}", tmux.screen());
    tmux.resize(80, 24);
    tmux.wait_for("revision");

    // A loosening configuration change (REST API on): reviewed, the partition id typed,
    // applied, and visible in the log.
    tmux.keys(&["j", "j", "j", "Space", "a"]);
    tmux.wait_for("Review the change");
    tmux.keys(&["y"]);
    tmux.wait_for("Type its id");
    tmux.text("demo-partition");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Applied as revision");
    tmux.escape();
    tmux.keys(&["4"]);
    tmux.wait_for("chain verified");
    tmux.keys(&["/"]);
    tmux.text("config.");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("config.change");
    assert!(screen.contains("✓ ok"), "{screen}");

    // The log exported since the last export (the default) to the demo drive: written, read
    // back and verified, confirmed; the file then verifies with `tessera log verify --key`
    // given the audit key the screen showed.
    tmux.keys(&["e"]);
    tmux.wait_for("demo/drive");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("confirmed at the HSM up to entry");
    assert!(
        screen.contains("✓ read back from the drive and verified"),
        "{screen}"
    );
    let key: String = screen
        .lines()
        .filter_map(|l| l.split("audit key ").nth(1))
        .find(|k| k.starts_with(|c: char| c.is_ascii_hexdigit()))
        .expect("the audit key is shown")
        .chars()
        .take(39)
        .collect();
    let drive = std::path::Path::new(state_dir).join("demo/drive");
    let export = std::fs::read_dir(&drive)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("the export is on the demo drive");
    let verified = Command::new(binary)
        .args(["--state-dir", state_dir, "log", "verify"])
        .arg(&export)
        .args(["--key", &key])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("e export");

    // A backup to the demo drive directory, from the hints: Space chooses it, c creates it;
    // written, read back and verified; the dashboard names it.
    tmux.escape();
    tmux.keys(&["5"]);
    tmux.wait_for("c create backup");
    tmux.wait_for("[ ] directory");
    tmux.keys(&["Space"]);
    tmux.wait_for("[x] directory");
    tmux.keys(&["c"]);
    let screen = tmux.wait_for("Digest");
    assert!(
        screen.contains("✓ Step 2 of 2: read back and verified"),
        "{screen}"
    );
    tmux.escape();
    tmux.wait_for("verified, on");
    tmux.escape();
    let drive = std::path::Path::new(state_dir).join("demo/drive");
    // Beside the log export and the demo's firmware images: one backup, nothing partial.
    let files: Vec<_> = std::fs::read_dir(&drive)
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().contains(".tsbk"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one backup file, nothing partial: {files:?}"
    );

    // The bin: one key restored, the next purged with its label typed.
    tmux.escape();
    tmux.keys(&["3"]);
    tmux.wait_for("payments-signing-2025");
    tmux.keys(&["R"]);
    tmux.wait_for("Restore payments-signing-2025?");
    tmux.keys(&["y"]);
    tmux.wait_for("Restored payments-signing-2025");
    tmux.keys(&["P"]);
    tmux.wait_for("Type the key's label");
    tmux.text("tls-frontend-old");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Purged tls-frontend-old");
    assert!(screen.contains("the bin holds 4 keys"), "{screen}");

    // The restore's dry run of that backup: its diff brings the purged key back; n backs out
    // without a change.
    tmux.escape();
    tmux.keys(&["5"]);
    tmux.wait_for("Enter backups");
    tmux.keys(&["Enter"]);
    tmux.wait_for("✓ verified");
    tmux.keys(&["R"]);
    let screen = tmux.wait_for("dry run passed");
    assert!(screen.contains("keys coming back"), "{screen}");
    assert!(screen.contains("y: confirm"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("R restore");
    tmux.escape();
    tmux.escape();

    // A credential reset: the new setup password shown once.
    tmux.escape();
    tmux.keys(&["9"]);
    tmux.wait_for("R: reset");
    tmux.keys(&["R"]);
    tmux.wait_for("Reset the application's credentials?");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("New setup password (shown once)");
    assert!(screen.contains("Expires"), "{screen}");

    // A share drill of Cleo's card.
    tmux.escape();
    tmux.keys(&["8"]);
    tmux.wait_for("Choose the card to drill");
    tmux.keys(&["3"]);
    tmux.wait_for("Tries");
    tmux.text("cleo-demo-pin");
    tmux.keys(&["Enter"]);
    tmux.wait_for("its share is valid");

    // A re-share to 2 of 2 (Ben and Cleo), from the hints alone: `r` on the Cards screen,
    // ↓ to n and `-`, Enter; Ada's and Ben's old shares; Ben's and Cleo's new ones written
    // and read back; Ada's old share wiped; Esc ends it and says what changed.
    let screen = tmux.wait_for("r re-share");
    assert!(screen.contains("Enter choose"), "{screen}");
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("Choose the new set");
    assert!(screen.contains("← h - fewer"), "{screen}");
    tmux.keys(&["j", "-"]);
    tmux.wait_for("new set: 2 of 2");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Insert a card of the active set");
    assert!(screen.contains("ceremony"), "{screen}");
    let card = |slot: &str, pin: &str, then: &str| {
        tmux.keys(&[slot]);
        tmux.wait_for("Tries");
        tmux.text(pin);
        tmux.keys(&["Enter"]);
        tmux.wait_for(then)
    };
    card("1", "ada-demo-pin", "1 of 2 cards read and checked");
    card("2", "ben-demo-pin", "Insert the next card of the new set");
    card("2", "ben-demo-pin", "1 of 2 written and read back");
    card("3", "cleo-demo-pin", "set 2 registered");
    card("1", "ada-demo-pin", "old share wiped");
    tmux.escape();
    let screen = tmux.wait_for("Re-share done");
    assert!(screen.contains("set 2 is active"), "{screen}");
    tmux.escape();
    tmux.wait_for("Choose the card to drill");

    // Log out; a device-SO login with one person's two cards is refused, with two people's
    // cards accepted (four eyes).
    tmux.escape();
    tmux.keys(&["o"]);
    tmux.wait_for("Logged out");
    let so_login = |cards: [(&str, &str); 2]| {
        for (slot, pin) in cards {
            tmux.wait_for("Choose the card to insert");
            tmux.keys(&[slot]);
            tmux.wait_for("Holder");
            tmux.text(pin);
            tmux.keys(&["Enter"]);
        }
    };
    tmux.keys(&["3"]);
    so_login([("6", "finn-demo-pin"), ("7", "finn-spare-pin")]);
    tmux.wait_for("two different people");
    tmux.keys(&["Enter"]);
    so_login([("6", "finn-demo-pin"), ("8", "gia-demo-pin")]);
    let screen = tmux.wait_for("Logged in as device SO");
    assert!(screen.contains("Finn Operator, Gia Operator"), "{screen}");

    // Quitting while logged in asks first.
    tmux.keys(&["q"]);
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
    tmux.wait_for_exit();

    // The diagnostics log: what happened, and no PIN or key of the session in it.
    let state_path = std::path::Path::new(state_dir);
    let log = std::fs::read_to_string(state_path.join("logs/tessera.log")).unwrap();
    for said in ["first frame drawn", "worker ready", "logged in", "quit"] {
        assert!(log.contains(said), "the log lacks {said:?}:\n{log}");
    }
    let fixture = state_path.join("demo/fixture");
    let secrets = [
        hex::encode(&std::fs::read(fixture.join("terminal/terminal.key")).unwrap()[5..]),
        hex::encode(std::fs::read(fixture.join("hsm/device.key")).unwrap()),
    ];
    let pins = terminal_app::tui::demo::DEMO_CARDS.map(|c| c.pin.to_owned());
    for secret in pins.into_iter().chain(secrets) {
        assert!(!log.contains(&secret), "the log holds a secret:\n{log}");
    }

    // A restart opens the same demo HSM (its state survived); `--reset` builds a new one.
    tmux.respawn(&env, binary, &demo);
    let screen = tmux.demo_open_first_partition();
    assert_eq!(hsm_line(&screen), hsm, "the same HSM after a restart");
    tmux.keys(&["q"]);
    tmux.wait_for_exit();
    tmux.respawn(&env, binary, &[&demo[..], &["--reset"]].concat());
    tmux.wait_for("preparing the demo HSM");
    let screen = tmux.demo_open_first_partition();
    assert_ne!(hsm_line(&screen), hsm, "a new HSM after --reset");
    tmux.keys(&["q"]);
    tmux.wait_for_exit();
}
