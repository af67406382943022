//! `tessera`: the partition administration terminal.
//!
//! Until the TUI arrives, running it on the embedded default starts an in-process HSM (the
//! link's server side with a demo partition), pairs a terminal with it over the in-memory link,
//! reconnects with the pinned keys, and prints what both sides see.

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
    let report = embedded::run_demo(cli.link_test_bytes)?;
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
