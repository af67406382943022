//! The partition's paired terminals and new pairing codes, after an officer login:
//! `tessera terminals list`, `tessera terminals revoke FINGERPRINT`, `tessera pairing-code`.
//!
//! A fingerprint is given as `terminals list` shows it (the first 128 bits, eight groups of four
//! hex digits) or whole (64 hex digits, as `--json` shows it); spaces, dashes and colons are
//! ignored. Revoking the terminal this command runs on needs `--this-terminal`: the HSM refuses
//! it otherwise, so that a mistyped fingerprint does not lock the officer out of their own
//! terminal.

use hsm_link::keys::Fingerprint;
use hsm_link::message::{AdminRequest, AdminResponse, TerminalInfo};
use quorum::ceremony::Link;
use serde_json::json;
use zeroize::Zeroizing;

use super::Shown;
use super::list::utc;
use crate::error::Error;
use hex::encode as hex;

fn listing(conn: &mut (impl Link + ?Sized)) -> Result<Vec<TerminalInfo>, Error> {
    match conn.admin(AdminRequest::ListTerminals)? {
        AdminResponse::Terminals { terminals } => Ok(terminals),
        _ => Err(Error::UnexpectedAnswer {
            request: "ListTerminals",
        }),
    }
}

fn when(unix: Option<u64>, unknown: &str) -> String {
    unix.map_or_else(|| unknown.to_owned(), utc)
}

/// `tessera terminals list`: fingerprint, paired when, last seen, and which one is this one.
pub fn list(conn: &mut (impl Link + ?Sized)) -> Result<Shown, Error> {
    let terminals = listing(conn)?;
    let mut text = format!(
        "{:<40} {:<22} {:<22} {}\n",
        "fingerprint", "paired", "last seen", ""
    );
    for t in &terminals {
        text.push_str(&format!(
            "{:<40} {:<22} {:<22} {}\n",
            t.fingerprint.to_string(),
            when(t.paired_unix, "before records"),
            when(t.last_seen_unix, "never"),
            if t.this_session { "this terminal" } else { "" }
        ));
    }
    text.push_str(&format!("{} paired terminals\n", terminals.len()));
    let json = json!({
        "terminals": terminals.iter().map(|t| json!({
            "fingerprint": t.fingerprint.to_string(),
            "fingerprint_sha256": hex(t.fingerprint.0),
            "paired_unix": t.paired_unix,
            "last_seen_unix": t.last_seen_unix,
            "this_terminal": t.this_session,
        })).collect::<Vec<_>>()
    });
    Ok(Shown { text, json })
}

/// The terminal of `listing` that `typed` names: a whole fingerprint or the shown prefix.
fn find(listing: &[TerminalInfo], typed: &str) -> Result<Fingerprint, Error> {
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | ':'))
        .collect::<String>()
        .to_ascii_lowercase();
    if digits.len() < 32 || digits.len() > 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "{typed:?} is not a terminal fingerprint: give it as `tessera terminals list` shows \
             it (eight groups of four hex digits)"
        )));
    }
    let matching: Vec<&TerminalInfo> = listing
        .iter()
        .filter(|t| hex(t.fingerprint.0).starts_with(&digits))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.fingerprint),
        [] => Err(Error::Usage(format!(
            "no terminal paired with this partition has the fingerprint {typed}: \
             `tessera terminals list` shows them"
        ))),
        _ => Err(Error::Usage(format!(
            "several terminals start with {typed}: give the whole fingerprint (`tessera \
             terminals list --json`)"
        ))),
    }
}

/// `tessera terminals revoke FINGERPRINT [--this-terminal]`: the HSM unpins the terminal and
/// ends its sessions; logged there.
pub fn revoke(
    conn: &mut (impl Link + ?Sized),
    typed: &str,
    this_terminal: bool,
) -> Result<Shown, Error> {
    let terminals = listing(conn)?;
    let terminal = find(&terminals, typed)?;
    match conn.admin(AdminRequest::RevokeTerminal {
        terminal,
        this_terminal,
    })? {
        AdminResponse::Done => {}
        _ => {
            return Err(Error::UnexpectedAnswer {
                request: "RevokeTerminal",
            });
        }
    }
    let own = terminals
        .iter()
        .any(|t| t.this_session && t.fingerprint == terminal);
    let mut text = format!("Revoked terminal {terminal}: it can no longer connect.\n");
    if own {
        text.push_str("That was this terminal: pair it again to administer this partition.\n");
    }
    let json = json!({
        "revoked": terminal.to_string(),
        "fingerprint_sha256": hex(terminal.0),
        "this_terminal": own,
    });
    Ok(Shown { text, json })
}

/// `tessera pairing-code`: a new one-time pairing code for another terminal, shown once (a code
/// outstanding before is replaced). Text only: the code is not for scripts to keep.
pub fn pairing_code(conn: &mut (impl Link + ?Sized)) -> Result<Zeroizing<String>, Error> {
    match conn.admin(AdminRequest::IssuePairingCode)? {
        AdminResponse::PairingCode(code) => {
            let shown = Zeroizing::new(code.code.clone());
            let mut code = code;
            zeroize::Zeroize::zeroize(&mut code.code);
            Ok(Zeroizing::new(format!(
                "One-time pairing code (shown once; three wrong tries burn it):\n\n    {}\n\n\
                 On the other terminal run `tessera pair --tcp HOST:PORT --partition ID` and \
                 type it.\n",
                super::printable(&shown)
            )))
        }
        _ => Err(Error::UnexpectedAnswer {
            request: "IssuePairingCode",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(first: u8) -> TerminalInfo {
        let mut fp = [0u8; 32];
        fp[0] = first;
        fp[31] = 7;
        TerminalInfo {
            fingerprint: Fingerprint(fp),
            paired_unix: None,
            last_seen_unix: None,
            this_session: false,
        }
    }

    #[test]
    fn a_fingerprint_is_found_as_shown_or_whole_and_a_bad_one_is_named() {
        let list = [info(0xab), info(0xcd)];
        let shown = list[1].fingerprint.to_string();
        assert_eq!(find(&list, &shown).unwrap(), list[1].fingerprint);
        let whole = hex(list[0].fingerprint.0).to_ascii_uppercase();
        assert_eq!(find(&list, &whole).unwrap(), list[0].fingerprint);
        let e = find(&list, "abcd").unwrap_err().to_string();
        assert!(e.contains("not a terminal fingerprint"), "{e}");
        let e = find(&list, &"e".repeat(32)).unwrap_err().to_string();
        assert!(e.contains("no terminal paired"), "{e}");
        let twins = [info(0xab), info(0xab)];
        let e = find(&twins, &twins[0].fingerprint.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole fingerprint"), "{e}");
    }
}
