//! A command-line program run as a child process with its standard input given as text (how
//! tests type passphrases, codes and confirmations without a terminal).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `command` with `stdin` written to its standard input (then closed); its exit status and
/// both outputs.
pub fn output_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    child
        .stdin
        .take()
        .expect("its standard input is piped")
        .write_all(stdin.as_bytes())
        .expect("its standard input takes the text");
    child.wait_with_output().expect("the program ends")
}
