//! The real `tessera` binary run as a process against a given state directory and
//! configuration (never the user's: `TESSERA_CONFIG` is removed), its input as text. Included
//! with `#[path]` by the command-line tests that need it.

use std::path::Path;
use std::process::{Command, Output};

use tessera_tests::process::output_with_stdin;

/// The binary of this build.
pub(crate) const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// Runs `tessera` with `args` (and the state directory and configuration), `stdin` as its
/// input.
pub(crate) fn tessera(state: &Path, config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(TESSERA);
    command
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TESSERA_CONFIG");
    output_with_stdin(&mut command, stdin)
}

/// Output as text (the binary writes UTF-8).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}
