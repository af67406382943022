//! `tessera status` (no login), and `tessera config show`, `keys list`, `bin list` (after an
//! officer login).

use terminal_app::Error;
use terminal_app::cli;
use terminal_app::state::StateDir;

use super::args::{Officer, Target};
use super::session::{officer_read, session};

/// `tessera status`: a pinned session's state and the partition's card set.
pub(crate) fn status(state: &StateDir, target: &Target) -> Result<(), Error> {
    let (mut conn, entry) = session(state, target)?;
    let shown = cli::status::status(&mut conn, &entry)?;
    let _ = conn.close();
    print!("{}", shown.render(target.json));
    Ok(())
}

/// `tessera config show`.
pub(crate) fn config_show(
    state: &StateDir,
    officer: &Officer,
    policy: quorum::CardPolicy,
) -> Result<(), Error> {
    officer_read(state, officer, policy, |conn, _| {
        Ok(cli::reads::config_show(conn)?.render(officer.target.json))
    })
}

/// `tessera keys list` (`bin` false) and `tessera bin list` (`bin` true).
pub(crate) fn keys(
    state: &StateDir,
    officer: &Officer,
    policy: quorum::CardPolicy,
    bin: bool,
) -> Result<(), Error> {
    officer_read(state, officer, policy, |conn, _| {
        Ok(cli::reads::keys(conn, bin)?.render(officer.target.json))
    })
}
