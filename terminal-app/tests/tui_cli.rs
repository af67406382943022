//! `tessera demo` without a terminal: it says so and points to `--transcript`, and opens
//! nothing.
#![cfg(feature = "embedded")] // the demo HSM is the embedded simulator

use std::process::{Command, Stdio};

#[test]
fn without_a_terminal_the_demo_points_to_the_transcript() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
    assert!(stderr.contains("tessera demo --transcript"), "{stderr}");
    // Nothing was drawn: no escape sequence (alternate screen, raw mode) reached stdout.
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
