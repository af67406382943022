//! `tessera`: the partition administration terminal.
//!
//! `tessera demo` runs the embedded default: the TUI against an in-process HSM (the reference
//! partition service) with demo soft cards, its state kept in `STATE_DIR/demo` across restarts
//! (`--reset` starts afresh); `tessera demo --transcript` prints a walk-through instead (its HSM
//! in memory: pairing, enrolment, a login, a share drill, a verified log export). A build
//! without the `embedded` feature says that the embedded default is not in it.
//! `tessera completions SHELL` and `tessera man [COMMAND]` print what clap generates from the
//! definitions in `commands/args.rs`; diagnostics go to `STATE_DIR/logs/tessera.log`. `tessera pair` pairs with a real HSM's
//! partition; `tessera` without a subcommand lists the paired partitions (or says how to pair);
//! `status`, `config show`, `keys list`, `bin list` and `log show` read a paired partition;
//! `tessera card …` are scriptable card commands. The logic is the library's
//! ([`terminal_app`]); this file parses arguments, asks on the terminal, prints, and exits with
//! the documented status ([`terminal_app::cli::exit`]).

mod commands;

use std::process::ExitCode;

use clap::Parser;
use terminal_app::cli::{self, exit};
use terminal_app::config::{self, TerminalConfig};
use terminal_app::state::{self, StateDir};
use terminal_app::{Error, tui};

use commands::args::{Cli, Command, ConfigCommand, ListCommand, LogCommand};
use commands::{backup, card, demo, firmware, log, man, open, pair, reads, terminals};

fn main() -> ExitCode {
    // The terminal holds its link key, PINs and shares for moments: no core dumps and no
    // ptrace by other users, before anything is parsed or read.
    if let Err(e) = hsm_link::process::disable_core_dumps() {
        eprintln!("tessera: could not disable core dumps for this process: {e}");
        return ExitCode::from(exit::FAILURE);
    }
    let cli = Cli::parse();
    // Generated from the definitions; they need no configuration and no state.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            print!("{}", man::completions(*shell));
            return ExitCode::from(exit::OK);
        }
        Some(Command::Man { command }) => {
            return match man::man_page(command) {
                Ok(page) => {
                    print!("{page}");
                    ExitCode::from(exit::OK)
                }
                Err(e) => {
                    eprintln!("tessera: {e}");
                    ExitCode::from(exit::USAGE)
                }
            };
        }
        _ => {}
    }
    // Before the configuration: a log check needs none, and its exit code must be its own.
    if let Some(Command::Log(LogCommand::Verify(_) | LogCommand::Convert(_))) = &cli.command {
        let Some(Command::Log(command)) = cli.command else {
            unreachable!("matched above")
        };
        return ExitCode::from(log::check_offline(command, cli.state_dir));
    }
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::from(
                e.downcast_ref::<Error>()
                    .map_or(exit::FAILURE, Error::exit_code),
            )
        }
    }
}

/// The configuration and the state directory (opened when a command first needs it, and
/// diagnostics started then), and the command run.
fn run(cli: Cli) -> anyhow::Result<()> {
    let loaded = TerminalConfig::load(config::config_path(
        cli.config,
        std::env::var_os(config::CONFIG_ENV),
    ))
    .map_err(Error::from)?;
    let state_dir = cli.state_dir;
    let diagnostics = std::sync::Once::new();
    let state = || -> Result<StateDir, Error> {
        let path = state::state_dir_path(
            state_dir.clone(),
            std::env::var_os("XDG_STATE_HOME"),
            std::env::var_os("HOME"),
        )?;
        let state = StateDir::open(path)?;
        diagnostics.call_once(|| start_diagnostics(state.path()));
        Ok(state)
    };
    dispatch(cli.command, &state, &loaded.config)
}

/// Each command to its family's handler in `commands/`.
fn dispatch(
    command: Option<Command>,
    state: &dyn Fn() -> Result<StateDir, Error>,
    config: &TerminalConfig,
) -> anyhow::Result<()> {
    let policy = config.card_policy();
    match command {
        None if !tui::paired::is_terminal() => {
            print!("{}", cli::list::paired(&state()?.paired()?).render(false));
        }
        None => open::tui_paired(state, None, config, None, 300)?,
        Some(Command::Open {
            name,
            key,
            idle_lock,
        }) => open::tui_paired(
            state,
            Some(name.as_deref()),
            config,
            key.as_deref(),
            idle_lock,
        )?,
        Some(Command::List { json }) => {
            print!("{}", cli::list::paired(&state()?.paired()?).render(json));
        }
        Some(Command::Demo {
            pcsc: true,
            idle_lock,
            ..
        }) => demo::tui_demo_pcsc(idle_lock)?,
        Some(Command::Demo {
            transcript: true,
            link_test_bytes,
            ..
        }) => print!("{}", demo::demo(link_test_bytes)?),
        Some(Command::Demo {
            transcript: false,
            idle_lock,
            reset,
            ..
        }) => demo::tui_demo(idle_lock, &state()?.path().join("demo"), reset)?,
        Some(Command::Pair {
            address,
            partition,
            name,
        }) => pair::pair_command(&state()?, address, partition, name)?,
        Some(Command::Status { target }) => reads::status(&state()?, &target)?,
        Some(Command::Config(ConfigCommand::Show(officer))) => {
            reads::config_show(&state()?, &officer, policy)?
        }
        Some(Command::Keys(ListCommand::List(officer))) => {
            reads::keys(&state()?, &officer, policy, false)?
        }
        Some(Command::Bin(ListCommand::List(officer))) => {
            reads::keys(&state()?, &officer, policy, true)?
        }
        Some(Command::Log(command)) => log::log_command(&state()?, command, policy)?,
        Some(Command::Terminals(command)) => {
            terminals::terminals_command(&state()?, command, policy)?
        }
        Some(Command::PairingCode(officer)) => {
            terminals::pairing_code(&state()?, &officer, policy)?
        }
        Some(Command::Card(command)) => card::card_command(command, policy)?,
        Some(Command::Backup(command)) => {
            let rules = cli::backup_drives::DriveRules::configured(config.backup.allow.clone());
            return cli::backup_drives::with_rules(rules, || {
                backup::backup_command(state, command, policy)
            });
        }
        Some(Command::Firmware(args)) => firmware::firmware_command(args, config),
        Some(Command::Completions { .. } | Command::Man { .. }) => {
            unreachable!("main() prints what is generated before the configuration is read")
        }
    }
    Ok(())
}

/// Diagnostics to the log file in the state directory (best effort: a terminal that cannot
/// write its log still works), and a panic hook that names the file.
fn start_diagnostics(state: &std::path::Path) {
    use terminal_app::diagnostics;
    let level = std::env::var(diagnostics::LOG_LEVEL_ENV).ok();
    if let Ok(log) = diagnostics::init(state, level.as_deref()) {
        diagnostics::install_panic_hook(log);
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "tessera started");
    }
}
