//! A program in a real terminal: a tmux server of its own (its own socket, killed when dropped),
//! one session running the program, keys sent (send-keys) and the screen read (capture-pane).
//! For the TUI tests that drive the real binary from its on-screen hints.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of this test's own, with one session named `demo`.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Whether tmux is installed (a test says it skips, and why, when not).
    pub fn installed() -> bool {
        Command::new("tmux").arg("-V").output().is_ok()
    }

    /// Starts `command` (program and arguments, after `env` assignments) in a `width`×`height`
    /// terminal, kept on screen when it exits. `name` makes the socket this test's own.
    pub fn start(name: &str, width: u16, height: u16, command: &[&str]) -> Tmux {
        let tmux = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec![
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            &w,
            "-y",
            &h,
            "env",
        ];
        args.extend_from_slice(command);
        tmux.run(&args);
        tmux.run(&["set-option", "-t", "demo", "remain-on-exit", "on"]);
        tmux
    }

    /// Runs a tmux command against this server; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "demo"])
    }

    /// Named keys (`Enter`, `Escape`, `j`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "demo"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Escape alone: a key sent right after it would read as Alt+key.
    pub fn escape(&self) {
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Literal text.
    pub fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "demo", "-l", text]);
    }

    /// Waits (at most 60 s: Argon2 runs take seconds) until the screen shows `what`; the
    /// screen then. Panics with the screen if it never does.
    pub fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
