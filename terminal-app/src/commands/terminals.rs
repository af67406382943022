//! `tessera terminals list|revoke` and `tessera pairing-code`, after an officer login.

use terminal_app::Error;
use terminal_app::cli;
use terminal_app::state::StateDir;

use super::args::{Officer, TerminalsCommand};
use super::session::{officer_read, officer_session};

/// `tessera terminals …`.
pub(crate) fn terminals_command(
    state: &StateDir,
    command: TerminalsCommand,
    policy: quorum::CardPolicy,
) -> Result<(), Error> {
    match command {
        TerminalsCommand::List(officer) => officer_read(state, &officer, policy, |conn, _| {
            Ok(cli::terminals::list(conn)?.render(officer.target.json))
        }),
        TerminalsCommand::Revoke {
            officer,
            fingerprint,
            this_terminal,
        } => officer_read(state, &officer, policy, |conn, _| {
            Ok(cli::terminals::revoke(conn, &fingerprint, this_terminal)?
                .render(officer.target.json))
        }),
    }
}

/// `tessera pairing-code`: shown once, for a person to type (no JSON).
pub(crate) fn pairing_code(
    state: &StateDir,
    officer: &Officer,
    policy: quorum::CardPolicy,
) -> Result<(), Error> {
    if officer.target.json {
        return Err(Error::Usage(
            "a pairing code is shown once, for a person to type: `tessera pairing-code` has no \
             --json"
                .to_owned(),
        ));
    }
    let (mut conn, _) = officer_session(state, officer, policy)?;
    let shown = cli::terminals::pairing_code(&mut conn)?;
    let _ = conn.close();
    print!("{}", *shown);
    Ok(())
}
