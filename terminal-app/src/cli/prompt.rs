//! Asking the operator: secrets (a pairing code, a PIN) without echo when the input is a
//! terminal, else one line from standard input (for scripts and tests); and yes/no questions.
//! Secrets never come from arguments or the environment, and live in zeroizing buffers.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions};
use zeroize::Zeroizing;

use crate::error::Error;

/// The longest line read for a secret or an answer: longer input is refused, not kept.
pub const MAX_LINE: usize = 1024;

/// Reads one line (without its line break) from `input`, at most [`MAX_LINE`] bytes, into a
/// zeroizing buffer. End of input before a line is an error naming `what`.
pub fn read_line(
    input: &mut impl BufRead,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut line = Zeroizing::new(Vec::with_capacity(64));
    let failed = |source| Error::Prompt { what, source };
    let n = Read::take(input, MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(failed)?;
    if n == 0 {
        return Err(failed(io::ErrorKind::UnexpectedEof.into()));
    }
    if line.len() > MAX_LINE {
        return Err(failed(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {MAX_LINE} bytes"),
        )));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(line)
}

/// Asks for a secret on standard error and reads it from standard input: without echo when
/// standard input is a terminal (the echo comes back afterwards, also on failure).
pub fn secret(question: &str, what: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let stdin = io::stdin();
    let mut err = io::stderr();
    // The echo goes off before the question shows, so nothing typed after it is echoed.
    let _echo = if stdin.is_terminal() {
        Some(EchoOff::new(&stdin).map_err(|source| Error::Prompt { what, source })?)
    } else {
        None
    };
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let line = read_line(&mut stdin.lock(), what);
    if _echo.is_some() {
        let _ = writeln!(err);
    }
    line
}

/// Asks a yes/no question on standard error; true only for `yes` or `y`.
pub fn confirm(question: &str) -> Result<bool, Error> {
    let mut err = io::stderr();
    let _ = write!(err, "{question} [yes/no] ");
    let _ = err.flush();
    let line = read_line(&mut io::stdin().lock(), "an answer")?;
    Ok(is_yes(&line))
}

/// `yes` or `y`, in any case, surrounding blanks ignored.
pub fn is_yes(answer: &[u8]) -> bool {
    let answer = String::from_utf8_lossy(answer).trim().to_ascii_lowercase();
    answer == "yes" || answer == "y"
}

/// The terminal's echo, off until dropped.
struct EchoOff<'a> {
    fd: &'a io::Stdin,
    saved: termios::Termios,
}

impl<'a> EchoOff<'a> {
    fn new(fd: &'a io::Stdin) -> io::Result<EchoOff<'a>> {
        let saved = termios::tcgetattr(fd)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        termios::tcsetattr(fd, OptionalActions::Flush, &quiet)?;
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, OptionalActions::Flush, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_bounded_and_without_their_break() {
        let mut input = io::Cursor::new(b"7K3Q-ABCD\r\nsecond\n".to_vec());
        assert_eq!(&*read_line(&mut input, "a code").unwrap(), b"7K3Q-ABCD");
        assert_eq!(&*read_line(&mut input, "a code").unwrap(), b"second");
        let e = read_line(&mut input, "a code").unwrap_err();
        assert!(e.to_string().contains("reading a code"), "{e}");
        let mut long = io::Cursor::new(vec![b'x'; MAX_LINE + 2]);
        let e = read_line(&mut long, "a PIN").unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let mut exact = io::Cursor::new(vec![b'x'; MAX_LINE]);
        assert_eq!(read_line(&mut exact, "a PIN").unwrap().len(), MAX_LINE);
    }

    #[test]
    fn only_yes_confirms() {
        for yes in [&b"yes"[..], b"Y", b"  YES \r"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in [&b""[..], b"no", b"yess", b"ok"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
