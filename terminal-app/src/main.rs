//! `tessera`: the partition administration terminal.
//!
//! Without a subcommand it runs the embedded default (until the TUI arrives): an in-process HSM
//! (the reference partition service, its store in memory), a terminal paired with it over the
//! in-memory link, three demo soft cards enrolled as a 2-of-3 PSO set, a login with two of
//! them, and a report of what an operator would see. `tessera card …` are scriptable card
//! commands (the library's [`terminal_app::cards`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use terminal_app::config::{self, TerminalConfig};
use terminal_app::{cards, embedded};

/// Tessera: administer an HSM partition. Without a command: the embedded demo.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The terminal configuration file (TOML, `version = 1`). Without it, the file
    /// $TESSERA_CONFIG names; without either, the defaults (hardware cards only).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Bytes to move through the link's throughput check after pairing (the embedded demo).
    #[arg(long, default_value_t = 4 << 20)]
    link_test_bytes: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Officer cards: list them, export a card's signing key.
    #[command(subcommand)]
    Card(CardCommand),
    /// Exported logs: verify one offline (exit 0 verified, 1 tampered, 2 unreadable or wrong key).
    #[command(subcommand)]
    Log(terminal_app::log_verify::LogCommand),
}

#[derive(Subcommand, Debug)]
enum CardCommand {
    /// Lists every card reader with its card (holder, serial, keys, PIN tries left), and the
    /// soft cards given with --soft, as tab-separated rows under a header.
    List {
        /// A soft card file to list too (repeatable). Refused unless the configuration sets
        /// `allow_soft_cards = true` in `[cards]`.
        #[arg(long, value_name = "FILE")]
        soft: Vec<PathBuf>,
    },
    /// Writes the Ed25519 signing public key of the card in a reader to a new file, in the
    /// format `tessera-hsm so add --key` reads, and prints its holder and serial.
    ExportKey {
        /// The reader, exactly as `tessera card list` shows it.
        #[arg(long)]
        reader: String,
        /// The file to create (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    harden_process().context("could not disable core dumps for this process")?;
    let cli = Cli::parse();
    // Before the configuration: a log check needs none, and its exit code must be its own.
    if let Some(Command::Log(command)) = &cli.command {
        use terminal_app::log_verify::{NoPinnedKeys, run};
        let out = run(command, &NoPinnedKeys);
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        std::process::exit(out.code);
    }
    let loaded = TerminalConfig::load(config::config_path(
        cli.config,
        std::env::var_os(config::CONFIG_ENV),
    ))?;
    match cli.command {
        None => {
            let report = embedded::run_demo(
                cli.link_test_bytes,
                quorum::Argon2Params::production(),
                false,
            )?;
            print!("{report}");
        }
        Some(Command::Card(CardCommand::List { soft })) => {
            let listing = cards::list_cards(&soft, loaded.config.card_policy())?;
            for note in &listing.notes {
                eprintln!("tessera: {note}");
            }
            print!("{}", listing.to_tsv());
        }
        Some(Command::Card(CardCommand::ExportKey { reader, out })) => {
            print!("{}", cards::export_key(&reader, &out)?.report());
        }
        Some(Command::Log(_)) => {} // handled above
    }
    Ok(())
}

/// The terminal holds secrets (its link key, later PINs and shares): keep them out of core
/// dumps and away from ptrace by other users.
fn harden_process() -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}
