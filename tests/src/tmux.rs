//! A real terminal for TUI tests: a private tmux server (its own socket, killed when dropped)
//! running one program in a window of a given size; the test types (`send-keys`) and reads the
//! screen (`capture-pane`).

use std::process::Command;
use std::time::{Duration, Instant};

/// The window's name.
const WINDOW: &str = "tui";

/// A tmux server with one window, running the program it was started with.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Whether tmux is installed (tests skip, saying so, where it is not).
    pub fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok()
    }

    /// Starts `program` with `args` in a `width`×`height` window, with `env` (`NAME=value`)
    /// and `TERM=xterm-256color`. The pane stays after the program ends, so that its end can
    /// be seen ([`Tmux::alive`]).
    pub fn start(
        name: &str,
        width: u16,
        height: u16,
        env: &[&str],
        program: &str,
        args: &[&str],
    ) -> Tmux {
        let tmux = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let session = ["-f", "/dev/null", "new-session", "-d", "-s", WINDOW];
        let size = ["-x", &w, "-y", &h];
        tmux.run(&[&session[..], &size, &Self::command(env, program, args)].concat());
        tmux.run(&["set-option", "-t", WINDOW, "remain-on-exit", "on"]);
        tmux
    }

    /// `env TERM=xterm-256color ENV… PROGRAM ARGS…`: what the pane runs.
    fn command<'a>(env: &[&'a str], program: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut command = vec!["env", "TERM=xterm-256color"];
        command.extend_from_slice(env);
        command.push(program);
        command.extend_from_slice(args);
        command
    }

    /// Starts `program` again in the pane once the one before has ended (as [`Tmux::start`]
    /// does: with `env` and `TERM=xterm-256color`).
    pub fn respawn(&self, env: &[&str], program: &str, args: &[&str]) {
        let respawn = ["respawn-pane", "-t", WINDOW];
        self.run(&[&respawn[..], &Self::command(env, program, args)].concat());
    }

    /// Resizes the window to `width`×`height`.
    pub fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        self.run(&["resize-window", "-t", WINDOW, "-x", &w, "-y", &h]);
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
        self.run(&["capture-pane", "-p", "-t", WINDOW])
    }

    /// Presses keys (tmux key names: `Enter`, `Escape`, `j`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", WINDOW];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Escape alone: a key sent right after it would read as Alt+key.
    pub fn escape(&self) {
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Types `text` literally.
    pub fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", WINDOW, "-l", text]);
    }

    /// Waits (up to `secs` seconds) until the screen shows `what`; the screen then. Panics
    /// with the screen when it never does.
    pub fn wait_for_within(&self, what: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
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

    /// [`Tmux::wait_for_within`] 60 seconds.
    pub fn wait_for(&self, what: &str) -> String {
        self.wait_for_within(what, 60)
    }

    /// Whether the program still runs.
    pub fn alive(&self) -> bool {
        self.run(&["list-panes", "-t", WINDOW, "-F", "#{pane_dead}"])
            .trim()
            == "0"
    }

    /// `tessera demo`'s first screen, the demo HSM's partitions: opens partition `number`
    /// (1: the demo partition with its card sets and history; 2: the fresh one) and waits (up
    /// to 120 s: a first start builds the fixture) until its welcome screen has the link up;
    /// that screen.
    pub fn demo_open_partition(&self, number: u8) -> String {
        self.wait_for("choose a partition");
        self.keys(&[&number.to_string()]);
        self.wait_for("Log in as PSO");
        self.wait_for_within("link: up", 120)
    }

    /// [`Tmux::demo_open_partition`] 1: the demo partition every flow of the demo starts from.
    pub fn demo_open_first_partition(&self) -> String {
        self.demo_open_partition(1)
    }

    /// A login from a welcome screen, from its hints: `role` is the menu key (`1` PSO, `2`
    /// auditor, `3` device SO), then each card in turn: its slot's key (`1`–`9`), its holder
    /// (waited for), its PIN; after each but the last the screen says how many are in. Waits
    /// until the login is accepted; that screen.
    pub fn login(&self, role: &str, cards: &[(&str, &str, &str)]) -> String {
        self.login_choosing(role, cards, |_, slot| slot.to_owned())
    }

    /// [`Tmux::login`] with cards in PC/SC readers, each named by its serial (`FFFF:…`): its
    /// slot's key is read from the screen ([`card_slot`]), since readers list in any order.
    pub fn login_by_serial(&self, role: &str, cards: &[(&str, &str, &str)]) -> String {
        self.login_choosing(role, cards, card_slot)
    }

    fn login_choosing(
        &self,
        role: &str,
        cards: &[(&str, &str, &str)],
        slot_key: impl Fn(&str, &str) -> String,
    ) -> String {
        self.keys(&[role]);
        for (i, (card, holder, pin)) in cards.iter().enumerate() {
            let screen = self.wait_for("Choose the card to insert");
            self.keys(&[&slot_key(&screen, card)]);
            self.wait_for(&format!("Holder  {holder}"));
            self.text(pin);
            self.keys(&["Enter"]);
            if i + 1 < cards.len() {
                self.wait_for(&format!("{} of {}", i + 1, cards.len()));
            }
        }
        self.wait_for("Logged in as")
    }

    /// The demo's PSO login with Ada's and Ben's soft cards (slots 1 and 2 of the first
    /// partition); the screen once it is accepted.
    pub fn demo_pso_login(&self) -> String {
        self.login(
            "1",
            &[
                ("1", "Ada Demo", "ada-demo-pin"),
                ("2", "Ben Demo", "ben-demo-pin"),
            ],
        )
    }

    /// Waits (up to 20 s) for the program to end; panics with the screen if it does not.
    pub fn wait_for_exit(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.alive() {
            assert!(
                Instant::now() < deadline,
                "the program did not end; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The key of the card slot that shows the card `serial` (`› 4 … · card FFFF:…`), in the
/// right-hand pane where the screen has two.
pub fn card_slot(screen: &str, serial: &str) -> String {
    let shown = format!("· card {serial}");
    let line = screen
        .lines()
        .find(|l| l.contains(&shown))
        .unwrap_or_else(|| panic!("no slot shows {serial}:\n{screen}"));
    let line = line.rsplit("││").next().unwrap_or(line);
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no slot number in {line:?}"))
        .to_owned()
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // This server only: its own socket.
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
