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
    /// The TUI against an in-process demo HSM with soft cards (holders and PINs on screen).
    Demo(DemoArgs),
    /// Officer cards: list them, export a card's signing key.
    #[command(subcommand)]
    Card(CardCommand),
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Print the demo's walk-through instead of opening the TUI (works without a terminal).
    #[arg(long)]
    transcript: bool,
    /// Seconds of idleness after which a logged-in session is locked (ended at the HSM).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    idle_lock: u64,
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
    let loaded = TerminalConfig::load(config::config_path(
        cli.config,
        std::env::var_os(config::CONFIG_ENV),
    ))?;
    match cli.command {
        Some(Command::Demo(args)) if !args.transcript => {
            use std::io::IsTerminal;
            if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "`tessera demo` opens a full-screen TUI and needs a terminal; without one, \
                     run `tessera demo --transcript` for the printed walk-through"
                );
            }
            terminal_app::tui::run_demo(args.idle_lock, quorum::Argon2Params::production())
                .context("the TUI failed")?;
        }
        None | Some(Command::Demo(_)) => {
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
