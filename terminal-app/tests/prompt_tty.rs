//! The pairing code typed at a real terminal is not echoed, and the terminal's echo comes back
//! afterwards: `tessera pair` with its standard input on one end of a socat pseudo-terminal
//! pair, the operator typing on the other.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use tessera_tests::SocatPair;

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// A code of the right shape whose check symbols are wrong: refused before any connection.
const MISTYPED: &str = "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA";

/// What arrives on `end` within `wait`.
fn drain(end: &mut File, wait: Duration) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match end.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reading the operator's end: {e}"),
        }
    }
    seen
}

#[test]
fn the_pairing_code_is_read_without_echo_at_a_terminal() {
    let line = SocatPair::start().unwrap();
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&line.a)
        .unwrap();
    let mut operator = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&line.b)
        .unwrap();
    fcntl_setfl(
        &operator,
        fcntl_getfl(&operator).unwrap() | OFlags::NONBLOCK,
    )
    .unwrap();
    // The terminal echoes, as a login terminal does.
    let mut modes = tcgetattr(&tty).unwrap();
    modes.local_modes.insert(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Now, &modes).unwrap();

    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(TESSERA)
        .arg("--state-dir")
        .arg(state.path().join("s"))
        .args(["pair", "--tcp", "127.0.0.1:9", "--partition", "p1"])
        .env_remove("TESSERA_CONFIG")
        .stdin(tty.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&said).contains("pairing code for p1") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "tessera ended before asking"
        );
        said.push(byte[0]);
    }
    // The echo is off before the question shows.
    operator
        .write_all(format!("{MISTYPED}\n").as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    stderr.read_to_end(&mut said).unwrap();
    let said = String::from_utf8_lossy(&said);
    assert_eq!(status.code(), Some(3), "{said}");
    assert!(said.contains("mistyped"), "{said}");

    let echoed = drain(&mut operator, Duration::from_millis(300));
    let echoed = String::from_utf8_lossy(&echoed);
    assert!(!echoed.contains("AAAA"), "the code was echoed: {echoed:?}");
    assert!(
        tcgetattr(&tty)
            .unwrap()
            .local_modes
            .contains(LocalModes::ECHO),
        "the echo did not come back"
    );
    // With the echo back, what is typed now shows (so the check above could fail).
    let mut reader = tty.try_clone().unwrap();
    operator.write_all(b"visible\n").unwrap();
    let mut got = [0u8; 8];
    reader.read_exact(&mut got).unwrap();
    let echoed = drain(&mut operator, Duration::from_millis(300));
    assert!(
        String::from_utf8_lossy(&echoed).contains("visible"),
        "{echoed:?}"
    );
}
