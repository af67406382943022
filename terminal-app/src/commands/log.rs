//! `tessera log …`: `show` and `export` after an officer login; `verify` and `convert`
//! offline, before the configuration is read (their exit statuses are their own).

use std::path::PathBuf;

use audit_log::KeyPin;
use terminal_app::cli::log_export::ExportRange;
use terminal_app::cli::{self, exit, reads::LogFilter};
use terminal_app::state::{self, PairedPartition, StateDir};
use terminal_app::{Error, log_verify, pair};

use super::args::LogCommand;
use super::session::officer_read;

/// `tessera log show|export`.
pub(crate) fn log_command(
    state: &StateDir,
    command: LogCommand,
    policy: quorum::CardPolicy,
) -> Result<(), Error> {
    match command {
        LogCommand::Show {
            officer,
            from,
            to,
            actor_role,
            operation,
            holder,
            outcome,
            limit,
        } => {
            let filter = LogFilter {
                from_seq: from,
                to_seq: to,
                role: actor_role,
                operation,
                holder,
                outcome,
                limit,
            };
            officer_read(state, &officer, policy, |conn, _| {
                let (text, lines) = cli::reads::log_show(conn, &filter)?;
                Ok(if officer.target.json { lines } else { text })
            })
        }
        LogCommand::Export {
            officer,
            dir,
            all,
            from,
            until,
            key,
            ..
        } => {
            // An export's key is settled before the login, and so before anything is exported.
            let list = state.paired()?;
            let pin = export_pin(
                pair::choose(&list, officer.target.name.as_deref())?,
                key.as_deref(),
            )?;
            let range = match (all, from, until) {
                (true, _, _) => ExportRange::All,
                (_, Some(from), Some(to)) => ExportRange::Span { from, to },
                _ => ExportRange::SinceLast,
            };
            officer_read(state, &officer, policy, |conn, entry| {
                let now = pair::now_unix();
                Ok(
                    cli::log_export::export(conn, &entry.partition, &dir, range, &pin, now)?
                        .render(officer.target.json),
                )
            })
        }
        LogCommand::Verify(_) | LogCommand::Convert(_) => {
            unreachable!("main() checks exported logs before the configuration is read")
        }
    }
}

/// `tessera log verify|convert`: prints the check's outcome and answers its exit status.
pub(crate) fn check_offline(command: LogCommand, state_dir: Option<PathBuf>) -> u8 {
    let command = match command {
        LogCommand::Verify(args) => log_verify::LogCommand::Verify(args),
        LogCommand::Convert(args) => log_verify::LogCommand::Convert(args),
        LogCommand::Show { .. } | LogCommand::Export { .. } => {
            unreachable!("main() passes only the offline checks")
        }
    };
    let out = log_verify::run(&command, &paired_for_verify(state_dir));
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    u8::try_from(out.code).unwrap_or(exit::FAILURE)
}

/// The paired list whose audit keys `tessera log verify` checks against: read without
/// creating the state directory (a check on another machine leaves nothing behind); none there
/// is an empty list.
fn paired_for_verify(state_dir: Option<PathBuf>) -> Result<state::PairedList, String> {
    let path = state::state_dir_path(
        state_dir,
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
    .map_err(|e| e.to_string())?;
    if !path.exists() {
        return Ok(state::PairedList::default());
    }
    let state = StateDir::open(path).map_err(|e| e.to_string())?;
    state.paired().map_err(|e| e.to_string())
}

/// The audit key an export is verified against: the one pinned for the partition, or the
/// one given (which must agree with a pinned one).
fn export_pin(entry: &PairedPartition, key: Option<&str>) -> Result<KeyPin, Error> {
    let given = key
        .map(|k| log_verify::parse_key(k).map_err(|e| Error::Usage(format!("--key: {e}"))))
        .transpose()?;
    let pinned = entry
        .audit_key
        .map(|bytes| audit_log::AuditKey::from_bytes(&bytes))
        .transpose()
        .map_err(|e| Error::Usage(format!("the pinned audit key: {e}")))?;
    match (pinned, given) {
        (Some(pinned), Some(given)) if !given.accepts(&pinned) => Err(Error::Usage(
            "--key is not the audit key pinned for this partition".to_owned(),
        )),
        (Some(pinned), _) => {
            KeyPin::from_key_file(KeyPin::key_file(&pinned).as_bytes()).map_err(Error::LogVerify)
        }
        (None, Some(given)) => Ok(given),
        (None, None) => Err(Error::NoAuditKey {
            partition: entry.name.clone(),
        }),
    }
}
