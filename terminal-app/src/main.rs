//! `tessera`: the partition administration terminal.
//!
//! Until the TUI arrives, running it on the embedded default starts an in-process HSM (the
//! reference partition service, its store in memory), pairs a terminal with it over the
//! in-memory link, enrols three demo soft cards as a 2-of-3 PSO set, logs in with two of them,
//! and reports what an operator would see.

mod embedded;

use anyhow::Context;
use clap::Parser;

/// Tessera: administer an HSM partition.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Bytes to move through the link's throughput check after pairing.
    #[arg(long, default_value_t = 4 << 20)]
    link_test_bytes: u64,
}

fn main() -> anyhow::Result<()> {
    harden_process().context("could not disable core dumps for this process")?;
    let cli = Cli::parse();
    let report = embedded::run_demo(
        cli.link_test_bytes,
        quorum::Argon2Params::production(),
        false,
    )?;
    print!("{report}");
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
