//! The time from start to the first frame of `tessera demo` (budget < 150 ms): the real binary
//! in a real pseudo-terminal (80×24), timed from the spawn until the first frame's text (the
//! first screen's demo cards) arrives at the terminal's other end.
//!
//! Two cases, each with a state directory of its own:
//! - the first start: the demo state is made (the HSM's keys and its store; the fixture's slow
//!   part, Argon2 for each soft card and the ceremonies, runs after the first frame);
//! - a later start: the fixture built by a former start is opened.
//!
//! `cargo bench -p terminal-app --bench demo_start` (the binary is built with the bench
//! profile). Printed against the budget; never asserted.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// The budget from start to the first frame.
const BUDGET: Duration = Duration::from_millis(150);
/// Text of the first frame (the partition list with the demo cards).
const FIRST_FRAME: &[u8] = b"ada-demo-pin";
/// What the diagnostics log says once the fixture is built or opened (on its thread, while the
/// first screen shows). The log, not the screen: a redraw sends only the cells that changed, so
/// no screen text is sure to arrive whole.
const READY: &str = "demo fixture ready";
/// Runs of each case.
const FIRST_STARTS: usize = 5;
const LATER_STARTS: usize = 15;

/// One `tessera demo` in a pseudo-terminal, its output read on a thread.
struct Demo {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
    writer: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Demo {
    fn spawn(state: &Path) -> Demo {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_tessera"));
        // A directory of its own below the temporary one (made 0700 by tessera).
        let state = state.join("state");
        command.args(["--state-dir", state.to_str().expect("a UTF-8 path"), "demo"]);
        command.env("TERM", "xterm-256color");
        command.env("NO_COLOR", "1");
        let child = pty.slave.spawn_command(command).expect("tessera demo");
        let mut reader = pty
            .master
            .try_clone_reader()
            .expect("the terminal's output");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            output,
            seen: Vec::new(),
            writer: pty.master.take_writer().expect("the terminal's input"),
            _master: pty.master,
        }
    }

    /// Waits until `text` has arrived (bounded).
    fn wait_for(&mut self, text: &[u8], within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.windows(text.len()).any(|w| w == text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(_) => panic!(
                    "{} did not appear; the terminal showed (its start):\n{}",
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(&self.seen[..self.seen.len().min(4096)])
                ),
            }
        }
    }

    /// Waits (bounded) until the diagnostics log in `state` says the worker is ready for the
    /// `nth` time.
    fn wait_ready(&mut self, state: &Path, nth: usize, within: Duration) {
        let log = state.join("state/logs/tessera.log");
        let deadline = Instant::now() + within;
        loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.matches(READY).count() >= nth {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the worker was not ready; the log says:\n{said}"
            );
            // Keep reading the terminal so that its output never blocks the demo.
            while let Ok(chunk) = self.output.try_recv() {
                self.seen.extend_from_slice(&chunk);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn quit(mut self) {
        let _ = self.writer.write_all(b"q");
        let _ = self.writer.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

/// Time to the first frame of one start on `state`; with `ready`, the start then also waits
/// until the worker has been ready that many times on this state (so that a first start leaves
/// a built fixture, and a later one has let go of it before the next).
fn start(state: &Path, ready: Option<usize>) -> Duration {
    let begun = Instant::now();
    let mut demo = Demo::spawn(state);
    demo.wait_for(FIRST_FRAME, Duration::from_secs(30));
    let first_frame = begun.elapsed();
    if let Some(nth) = ready {
        demo.wait_ready(state, nth, Duration::from_secs(300));
    }
    demo.quit();
    first_frame
}

fn report(case: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "tessera demo, start to first frame, {case}: median {:.1} ms, max {:.1} ms over {} runs \
         (budget < {} ms: median at {:.0}% of it)",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        times.len(),
        BUDGET.as_millis(),
        100.0 * median.as_secs_f64() / BUDGET.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names something else skips this.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"demo_start".contains(&f)) {
        return;
    }
    let first: Vec<Duration> = (0..FIRST_STARTS)
        .map(|_| {
            let state = tempfile::tempdir().expect("a state directory");
            start(state.path(), None)
        })
        .collect();
    report("first start (demo state made)", first);

    let state = tempfile::tempdir().expect("a state directory");
    println!("building one demo fixture for the later starts (production Argon2) …");
    start(state.path(), Some(1));
    let later: Vec<Duration> = (2..LATER_STARTS + 2)
        .map(|nth| start(state.path(), Some(nth)))
        .collect();
    report("later start (fixture opened)", later);
}
