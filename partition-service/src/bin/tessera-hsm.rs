//! `tessera-hsm`: the reference HSM (a simulator with real cryptography, not a certified HSM).
//!
//! The HSM owner's ("Genesis") commands set it up — keys, partitions, SO cards, the first
//! pairing code and the application's first setup password — and `serve` runs it for terminals
//! (admin link over TCP or a serial line) and applications (TCP).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hex::encode as hex;
use hsm_link::domain::{
    ByokTier, CardDescription, CardSerial, HolderName, PartitionId, ServiceTier,
};
use hsm_link::server::{ServeOptions, TcpServer};
use hsm_link::transport::{StreamTransport, TransportError};
use partition_service::admin::AdminLink;
use partition_service::app_link::AppServer;
use partition_service::application::HsmApplications;
use partition_service::model::LogFullPolicy;
use partition_service::service::{Clock, Hsm, describe, genesis};

/// The reference HSM for Tessera terminals: a simulator with real cryptography, not a
/// certified HSM.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The HSM's data directory (keys, store).
    #[arg(long, short = 'd', env = "TESSERA_HSM_DATA", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates the HSM's keys and store in DATA_DIR; prints the HSM id and the audit key's
    /// fingerprint (pin it to verify logs).
    Init {
        /// The data directory to create.
        data_dir: PathBuf,
    },
    /// Partitions.
    #[command(subcommand)]
    Partition(PartitionCommand),
    /// Device Security Officer cards.
    #[command(subcommand)]
    So(SoCommand),
    /// Whether card sets may hold soft cards (passphrase files without a PIN retry counter):
    /// refused unless allowed here. For demos and laboratories, not production.
    SoftCards {
        /// `allow`, `refuse`, or `show`.
        #[arg(value_parser = ["allow", "refuse", "show"])]
        choice: String,
    },
    /// Issues a partition's one-time management pairing code (shown once).
    PairingCode {
        /// The partition.
        partition: PartitionId,
    },
    /// Issues the application's one-time setup password for a partition (shown once).
    Credentials {
        /// The partition.
        partition: PartitionId,
    },
    /// Verifies the store: every log chain and checkpoint, and keys against their log.
    Check,
    /// Serves terminals and applications until stopped.
    Serve {
        /// Admin link over TCP.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin link over a serial line (device path).
        #[arg(long)]
        serial: Option<String>,
        /// Baud rate of the serial line.
        #[arg(long, default_value_t = 115_200)]
        baud: u32,
        /// The application listener (technical user).
        #[arg(long)]
        app_listen: Option<SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
enum PartitionCommand {
    /// Creates a partition with its tier's defaults.
    Create {
        /// Its id (letters, digits, `.`, `_`, `-`).
        id: PartitionId,
        /// A human name.
        #[arg(long)]
        name: String,
        /// economy, sandbox, platinum, byok-3, byok-10 or byok-200.
        #[arg(long, value_parser = parse_tier)]
        tier: ServiceTier,
    },
    /// Lists partitions with their usage.
    List,
    /// Shows one partition's configuration, card sets and log state.
    Show {
        /// The partition.
        id: PartitionId,
    },
    /// Sets the licensed options of a partition (its order form).
    Licences {
        /// The partition.
        id: PartitionId,
        /// Smart Key Attributes licensed.
        #[arg(long)]
        ska: bool,
        /// Crypto-currency functions licensed.
        #[arg(long)]
        crypto_currency: bool,
    },
    /// Sets the partition log's size and what happens when it is full.
    Log {
        /// The partition.
        id: PartitionId,
        /// Most entries kept.
        #[arg(long)]
        capacity: u64,
        /// `refuse` (default: refuse every logged operation except export and its
        /// confirmation) or `prune-confirmed` (drop entries already confirmed as exported).
        #[arg(long, value_parser = parse_full_policy, default_value = "refuse")]
        when_full: LogFullPolicy,
    },
}

fn parse_full_policy(s: &str) -> Result<LogFullPolicy, String> {
    match s {
        "refuse" => Ok(LogFullPolicy::Refuse),
        "prune-confirmed" => Ok(LogFullPolicy::PruneConfirmed),
        other => Err(format!(
            "unknown policy {other:?}: use refuse or prune-confirmed"
        )),
    }
}

#[derive(Subcommand, Debug)]
enum SoCommand {
    /// Registers an SO card's public signing key, belonging to one named person.
    Add {
        /// The person who holds the card.
        #[arg(long)]
        holder: String,
        /// The card's serial.
        #[arg(long)]
        serial: String,
        /// A file with the card's Ed25519 public key: 64 hex digits, optionally after
        /// `ed25519:`, as the card tooling exports it.
        #[arg(long)]
        key: PathBuf,
    },
    /// Sets how many SO cards (of at least two people) an SO session needs.
    Threshold {
        /// At least 2.
        threshold: u8,
    },
    /// Lists the registered SO cards.
    List,
}

fn parse_tier(s: &str) -> Result<ServiceTier, String> {
    Ok(match s {
        "economy" => ServiceTier::Economy,
        "sandbox" => ServiceTier::Sandbox,
        "platinum" => ServiceTier::Platinum,
        "byok-3" => ServiceTier::Byok(ByokTier::Entry3),
        "byok-10" => ServiceTier::Byok(ByokTier::Entry10),
        "byok-200" => ServiceTier::Byok(ByokTier::Entry200),
        other => {
            return Err(format!(
                "unknown tier {other:?}: use economy, sandbox, platinum, byok-3, byok-10 or byok-200"
            ));
        }
    })
}

fn main() -> anyhow::Result<()> {
    // The HSM holds every key: no core dumps, no ptrace by other users.
    hsm_link::process::disable_core_dumps().context("disabling core dumps and ptrace")?;
    let cli = Cli::parse();
    if let Command::Init { data_dir } = &cli.command {
        return init(data_dir);
    }
    let Some(dir) = cli.data.as_deref() else {
        bail!("no data directory: pass --data DIR or set TESSERA_HSM_DATA");
    };
    let hsm = Arc::new(open(dir)?);
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Partition(command) => partition(&hsm, command)?,
        Command::So(command) => so(&hsm, command)?,
        Command::SoftCards { choice } => soft_cards(&hsm, &choice)?,
        Command::PairingCode { partition } => {
            let code = hsm.issue_pairing_code(&partition, genesis())?;
            println!("One-time management pairing code for {partition} (shown once):");
            println!("  {}", &*code.display());
            println!(
                "  HSM key fingerprint: {}",
                hsm.keys().identity_public().fingerprint()
            );
        }
        Command::Credentials { partition } => {
            let (password, expires) = hsm.reset_credentials(&partition, genesis())?;
            println!("One-time setup password for the application of {partition} (shown once):");
            println!("  {}", &*password);
            println!("  valid until {expires} (Unix time) unless traded for a permanent secret");
        }
        Command::Check => check(&hsm)?,
        Command::Serve {
            listen,
            serial,
            baud,
            app_listen,
        } => serve(hsm, listen, serial, baud, app_listen)?,
    }
    Ok(())
}

fn init(data_dir: &Path) -> anyhow::Result<()> {
    let report = Hsm::init(data_dir)
        .with_context(|| format!("initialising the HSM in {}", data_dir.display()))?;
    println!("HSM initialised in {}", data_dir.display());
    println!("  HSM id                    {}", report.hsm_id);
    println!("  audit key fingerprint     {}", report.audit_fingerprint);
    println!("  link key fingerprint      {}", report.link_fingerprint);
    println!("This is a software simulator with real cryptography, not a certified HSM.");
    Ok(())
}

fn partition(hsm: &Hsm, command: PartitionCommand) -> anyhow::Result<()> {
    match command {
        PartitionCommand::Create { id, name, tier } => {
            let record = hsm.create_partition(id, &name, tier)?;
            println!("partition {} created ({})", record.id, tier.as_str());
        }
        PartitionCommand::List => {
            for record in hsm.partitions()? {
                let usage = hsm.usage(&record.id)?;
                println!("{}", describe(&record, &usage));
            }
        }
        PartitionCommand::Show { id } => show(hsm, &id)?,
        PartitionCommand::Licences {
            id,
            ska,
            crypto_currency,
        } => {
            let config = hsm.set_licences(&id, ska, crypto_currency)?;
            println!(
                "licences of {id}: Smart Key Attributes {}, crypto currency {}",
                config.ska.as_str(),
                config.crypto_currency.as_str()
            );
        }
        PartitionCommand::Log {
            id,
            capacity,
            when_full,
        } => {
            let log = hsm.set_log_policy(&id, capacity, when_full)?;
            println!(
                "log of {id}: {} entries kept, {:?} when full",
                log.capacity, log.full_policy
            );
        }
    }
    Ok(())
}

fn so(hsm: &Hsm, command: SoCommand) -> anyhow::Result<()> {
    match command {
        SoCommand::Add {
            holder,
            serial,
            key,
        } => {
            let signing_key = read_key(&key)?;
            let registry = hsm.add_so_card(CardDescription {
                holder: HolderName::new(holder)?,
                serial: CardSerial::new(serial)?,
                signing_key,
                soft_card: false,
            })?;
            println!(
                "SO card registered; {} cards, an SO session needs {}",
                registry.cards.len(),
                registry.threshold
            );
        }
        SoCommand::Threshold { threshold } => {
            let registry = hsm.set_so_threshold(threshold)?;
            println!(
                "an SO session now needs {} cards of at least two people",
                registry.threshold
            );
        }
        SoCommand::List => {
            let registry = hsm.so_registry()?;
            for card in &registry.cards {
                println!(
                    "{:<24} {:<16} {}",
                    card.holder.as_str(),
                    card.serial.as_str(),
                    hex(&card.signing_key[..8])
                );
            }
            println!("threshold {}", registry.threshold);
        }
    }
    Ok(())
}

fn soft_cards(hsm: &Hsm, choice: &str) -> anyhow::Result<()> {
    if choice != "show" {
        hsm.set_soft_cards_allowed(choice == "allow")?;
    }
    if hsm.soft_cards_allowed()? {
        println!("soft cards allowed in card sets registered from now on (not for production)");
    } else {
        println!("soft cards refused in card sets registered from now on");
    }
    // Sets registered before keep their soft cards: name them, so they can be replaced.
    for record in hsm.partitions()? {
        for set in [&record.pso, &record.auditor].into_iter().flatten() {
            let soft = set.set.soft_serials();
            if !soft.is_empty() {
                println!(
                    "  partition {}: {:?} set {} holds soft cards {soft}",
                    record.id, set.set.kind, set.set.set_number,
                );
            }
        }
    }
    Ok(())
}

fn check(hsm: &Hsm) -> anyhow::Result<()> {
    let checks = hsm.check()?;
    for c in &checks {
        println!(
            "{}: {} log entries verified ({} after the last checkpoint), {} keys consistent",
            c.partition, c.entries, c.unsigned_tail, c.keys
        );
    }
    println!("store consistent: {} partitions", checks.len());
    Ok(())
}

fn open(dir: &Path) -> anyhow::Result<Hsm> {
    Hsm::open(dir, Clock::system()).with_context(|| format!("opening the HSM in {}", dir.display()))
}

fn show(hsm: &Hsm, id: &PartitionId) -> anyhow::Result<()> {
    let record = hsm.partition(id)?;
    let usage = hsm.usage(id)?;
    println!("{}", describe(&record, &usage));
    let config = &record.config;
    for parameter in hsm_link::domain::Parameter::ALL {
        println!(
            "  {:<28} {}",
            parameter.label(),
            config.value_text(parameter)
        );
    }
    println!("  {:<28} {}", "Configuration revision", config.revision);
    for (name, set) in [("PSO set", &record.pso), ("Auditor set", &record.auditor)] {
        match set {
            Some(s) => println!(
                "  {name:<28} number {}, {} of {}",
                s.set.set_number,
                s.set.threshold,
                s.set.cards.len()
            ),
            None => println!("  {name:<28} not enrolled"),
        }
    }
    println!(
        "  {:<28} {}",
        "Pinned terminals",
        record.pairing.terminals.len()
    );
    println!(
        "  {:<28} {} stored of {}, confirmed exported up to {}",
        "Log",
        record.log.stored(),
        record.log.capacity,
        record
            .log
            .confirmed_up_to
            .map_or("nothing".into(), |s| s.to_string())
    );
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 1024 {
        bail!(
            "{} is {} bytes: a key file holds 64 hex digits",
            path.display(),
            meta.len()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.trim();
    let text = text.strip_prefix("ed25519:").unwrap_or(text);
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{} does not hold 64 hex digits (an Ed25519 public key)",
            path.display()
        );
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| anyhow::anyhow!("{} is not a valid Ed25519 public key", path.display()))?;
    Ok(key)
}

fn serve(
    hsm: Arc<Hsm>,
    listen: Option<SocketAddr>,
    serial: Option<String>,
    baud: u32,
    app_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    if listen.is_none() && serial.is_none() && app_listen.is_none() {
        bail!("nothing to serve: pass --listen, --serial and/or --app-listen");
    }
    println!(
        "tessera-hsm {} — a software simulator, not a certified HSM",
        hsm.keys().hsm_id()
    );
    let identity = Arc::new(hsm_link::keys::StaticKeypair::from_secret(
        zeroize::Zeroizing::new(*hsm.keys().identity().secret_bytes()),
    ));
    let admin = Arc::new(AdminLink::new(Arc::clone(&hsm)));
    let _tcp = match listen {
        Some(addr) => {
            let server = TcpServer::spawn(
                addr,
                Arc::clone(&identity),
                ServeOptions::default(),
                Arc::clone(&hsm) as Arc<dyn hsm_link::trust::TrustStore>,
                Arc::clone(&admin) as Arc<dyn hsm_link::server::AdminService>,
                |result| {
                    if let Err(e) = result {
                        eprintln!("admin session ended: {e}");
                    }
                },
            )
            .with_context(|| format!("listening on {addr}"))?;
            println!("admin link on {}", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let _app = match app_listen {
        Some(addr) => {
            let server = AppServer::spawn(addr, Arc::new(HsmApplications(Arc::clone(&hsm))))
                .with_context(|| format!("listening for applications on {addr}"))?;
            println!("application listener on {}", server.local_addr());
            Some(server)
        }
        None => None,
    };
    use std::io::Write as _;
    std::io::stdout().flush()?;
    match serial {
        Some(path) => {
            let mut line = StreamTransport::open_serial(&path, baud)
                .with_context(|| format!("opening the serial line {path}"))?;
            println!("admin link on serial line {path}");
            std::io::stdout().flush()?;
            loop {
                match hsm_link::server::serve_connection(
                    &mut line,
                    &identity,
                    &ServeOptions::default(),
                    &*hsm,
                    &*admin,
                ) {
                    Err(hsm_link::Error::Transport(TransportError::Timeout)) => {}
                    Err(hsm_link::Error::Transport(TransportError::Closed)) => {
                        bail!("the serial line {path} closed")
                    }
                    Err(e) => eprintln!("admin session on {path} ended: {e}"),
                    Ok(_) => {}
                }
            }
        }
        None => loop {
            std::thread::park();
        },
    }
}
