//! Sessions with a paired partition: pinned, and with an officer logged in as the command
//! line names the role and the cards (each PIN asked on the terminal).

use hsm_link::message::OfficerRole;
use terminal_app::Error;
use terminal_app::cli::{self, login::CardChoice, prompt};
use terminal_app::pair::{self, AnyConnection};
use terminal_app::state::{PairedPartition, StateDir};

use super::args::{Officer, RoleArg, Target};

/// The paired partition `target` names (or the only one), in a pinned session.
pub(crate) fn session(
    state: &StateDir,
    target: &Target,
) -> Result<(AnyConnection, PairedPartition), Error> {
    let list = state.paired()?;
    let entry = pair::choose(&list, target.name.as_deref())?;
    let conn = pair::connect_pinned(state, entry, pair::now_unix())?;
    Ok((conn, entry.clone()))
}

/// A pinned session with an officer logged in, as `officer` names the cards.
pub(crate) fn officer_session(
    state: &StateDir,
    officer: &Officer,
    policy: quorum::CardPolicy,
) -> Result<(AnyConnection, PairedPartition), Error> {
    let (mut conn, entry) = session(state, &officer.target)?;
    let role = match officer.role {
        RoleArg::Pso => OfficerRole::Pso,
        RoleArg::Auditor => OfficerRole::Auditor,
        RoleArg::DeviceSo => OfficerRole::DeviceSo,
    };
    let choice = CardChoice {
        readers: officer.readers.clone(),
        soft: officer.soft.clone(),
    };
    let mut ask = |question: &str| prompt::secret(question, "a PIN");
    let holders = cli::login::login(
        &mut conn,
        role,
        &choice,
        policy,
        &mut ask,
        std::io::IsTerminal::is_terminal(&std::io::stdin()),
        &mut std::io::stderr(),
    )?;
    eprintln!("login: logged in ({})", holders.join(", "));
    Ok((conn, entry))
}

/// A read after an officer login: the login, the read, the session closed, then what the read
/// shows printed.
pub(crate) fn officer_read(
    state: &StateDir,
    officer: &Officer,
    policy: quorum::CardPolicy,
    read: impl FnOnce(&mut AnyConnection, &PairedPartition) -> Result<String, Error>,
) -> Result<(), Error> {
    let (mut conn, entry) = officer_session(state, officer, policy)?;
    let out = read(&mut conn, &entry)?;
    let _ = conn.close();
    print!("{out}");
    Ok(())
}
