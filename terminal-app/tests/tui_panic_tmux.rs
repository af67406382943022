//! A panic in the real `tessera demo` binary, in a real terminal: the terminal is restored
//! (main screen, cursor shown, mouse off, the tty's modes as they were, so typing echoes) and
//! the message names the diagnostics log, which holds the panic. The panic comes from a test
//! hook compiled into debug builds only (`tui::runtime::TEST_HOOK_PANIC_ENV`). The pane runs a
//! plain `sh`, which (unlike an interactive bash) does not repair the tty's modes itself, so
//! what the test sees is what the binary left. Skipped, saying so, where tmux is not installed.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use tessera_tests::tmux::Tmux;

#[test]
fn a_panic_restores_the_terminal_and_names_the_log() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_tessera");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let before = dir.path().join("tty-before");
    let tmux = Tmux::start("tessera-panic-test", 100, 30, &["PS1=$ "], "sh", &[]);
    tmux.wait_for("$");
    // The tty's modes before, then the demo with the test hook, then its exit status.
    tmux.text(&format!(
        "stty -g > {}; env NO_COLOR=1 RUST_BACKTRACE=0 \
         TESSERA_TEST_HOOK_PANIC=after-first-frame {binary} --state-dir {} demo; \
         echo ended-with-$?",
        before.display(),
        state.display()
    ));
    tmux.keys(&["Enter"]);
    // The hook fires after the TUI's first frame, which comes once a partition is open.
    tmux.wait_for("choose a partition");
    tmux.keys(&["1"]);
    let screen = tmux.wait_for("ended-with-1");
    let log = state.join("logs/tessera.log");
    assert!(
        screen.contains(&format!("the diagnostics log is {}", log.display())),
        "{screen}"
    );
    assert!(screen.contains("ended-with-101"), "{screen}");
    assert!(screen.contains("a panic on purpose"), "{screen}");

    // Main screen, cursor visible, mouse reporting off.
    let flags = tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "tui",
        "#{alternate_on} #{cursor_flag} #{mouse_any_flag}",
    ]);
    assert_eq!(flags.trim(), "0 1 0", "alternate screen, cursor, mouse");
    // The tty's modes as before (raw mode left, echo on), and what is typed is echoed.
    tmux.text(&format!(
        "stty -g | cmp -s - {} && echo tty-modes-restored",
        before.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("\ntty-modes-restored");
    tmux.text("echo typed-$((6 * 7))");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("\ntyped-42");
    assert!(screen.contains("$ echo typed-$((6 * 7))"), "{screen}");

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("panic"), "{logged}");
    assert!(
        logged.contains("a panic on purpose after the first frame"),
        "{logged}"
    );
}
