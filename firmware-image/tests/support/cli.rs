//! The real `tessera-firmware` binary run as a process: arguments, standard input, and the
//! environment a test pins (`RUST_BACKTRACE=0` always, so that a failure's output is the
//! program's own). Included with `#[path]` by the tests that drive the binary.

use std::path::Path;
use std::process::{Command, Output};

use tessera_tests::process::output_with_stdin;

/// The binary of this build.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tessera-firmware");

/// Runs `tessera-firmware ARGS…` with `env` (name, value) set and `stdin` as its input.
pub(crate) fn run_with(env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied());
    output_with_stdin(&mut command, stdin)
}

/// [`run_with`], which must succeed (a failure panics with both outputs); its standard output.
pub(crate) fn ok_with(env: &[(&str, &str)], args: &[&str], stdin: &str) -> String {
    let out = run_with(env, args, stdin);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A path as an argument (test paths are UTF-8).
pub(crate) fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
