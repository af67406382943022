//! `tessera`: the partition administration terminal.
//!
//! `tessera demo` runs the embedded default: the TUI against an in-process HSM (the reference
//! partition service) with demo soft cards, its state kept in `STATE_DIR/demo` across restarts
//! (`--reset` starts afresh); `tessera demo --transcript` prints a walk-through instead (its HSM
//! in memory: pairing, enrolment, a login, a share drill, a verified log export). A build
//! without the `embedded` feature says that the embedded default is not in it.
//! `tessera completions SHELL` and `tessera man [COMMAND]` print what clap generates from the
//! definitions below; diagnostics go to `STATE_DIR/logs/tessera.log`. `tessera pair` pairs with a real HSM's
//! partition; `tessera` without a subcommand lists the paired partitions (or says how to pair);
//! `status`, `config show`, `keys list`, `bin list` and `log show` read a paired partition;
//! `tessera card …` are scriptable card commands. The logic is the library's
//! ([`terminal_app`]); this file parses arguments, asks on the terminal, prints, and exits with
//! the documented status ([`terminal_app::cli::exit`]).

use std::path::PathBuf;
use std::process::ExitCode;

use audit_log::KeyPin;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hsm_link::domain::PartitionId;
use hsm_link::message::OfficerRole;
use hsm_link::pairing::PairingCode;
use terminal_app::cli::log_export::ExportRange;
use terminal_app::cli::{self, exit, login::CardChoice, prompt, reads::LogFilter};
use terminal_app::config::{self, TerminalConfig};
use terminal_app::pair::{self, AnyConnection};
use terminal_app::state::{self, Address, PairedPartition, StateDir};
use terminal_app::{Error, cards, log_verify};

/// Tessera: administer an HSM partition. Without a command: the paired partitions.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, after_help = exit::EXIT_CODES_HELP)]
struct Cli {
    /// The terminal configuration file (TOML, `version = 1`). Without it, the file
    /// $TESSERA_CONFIG names; without either, the defaults (hardware cards only).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The terminal's state directory (its identity key, the paired partitions). Default:
    /// $XDG_STATE_HOME/tessera, else ~/.local/state/tessera.
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The embedded default: the TUI against an in-process HSM simulator with demo soft cards
    /// (holders and PINs on the first screen). With --transcript, a printed walk-through of
    /// pairing, enrolment, a PSO login, the configuration, a share drill and a verified log
    /// export instead. Not in builds without the `embedded` feature.
    Demo {
        /// Print the walk-through as text instead of opening the TUI (works without a
        /// terminal).
        #[arg(long)]
        transcript: bool,
        /// Bytes to move through the link's throughput check at the end of the transcript.
        #[arg(long, default_value_t = 4 << 20)]
        link_test_bytes: u64,
        /// Seconds of idleness after which a logged-in session is locked (ended at the HSM).
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        idle_lock: u64,
        /// The PSO set on the virtual OpenPGP cards behind pcscd (`scripts/pcsc-up`; PIN
        /// 123456) instead of soft cards.
        #[arg(long, conflicts_with = "transcript")]
        pcsc: bool,
        /// Remove the demo's state (STATE_DIR/demo: its HSM, soft cards, terminal key, drive
        /// directory) first, and start afresh with the original fixture.
        #[arg(long, conflicts_with = "transcript")]
        reset: bool,
    },
    /// Pairs with a partition of a running `tessera-hsm serve`, with the one-time code its
    /// owner issued (`tessera-hsm pairing-code`), asked for on the terminal (no echo), then
    /// shows the HSM's fingerprint to compare with the one `tessera-hsm` printed.
    Pair {
        #[command(flatten)]
        address: AddressArgs,
        /// The partition's id.
        #[arg(long)]
        partition: PartitionId,
        /// This terminal's name for it (default: the partition's id).
        #[arg(long)]
        name: Option<String>,
    },
    /// Opens the TUI against a paired partition (what choosing it in `tessera`'s list does).
    Open {
        /// The paired partition's name (see `tessera list`); optional when only one is paired.
        name: Option<String>,
        /// The HSM's audit key, when none is pinned for the partition: its key file (log
        /// checkpoints are verified against it).
        #[arg(long, value_name = "KEY_FILE")]
        key: Option<String>,
        /// Seconds of idleness after which a logged-in session is locked (ended at the HSM).
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        idle_lock: u64,
    },
    /// Lists the paired partitions (what `tessera` alone shows without the TUI).
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// A pinned session with a paired partition: the link, the HSM's fingerprint, the PSO
    /// card set and the log's status (entries, not yet exported, limit; no login needed).
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// The partition's configuration (needs an officer login).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The partition's keys (needs an officer login).
    #[command(subcommand)]
    Keys(ListCommand),
    /// The bin of invalidated keys (needs an officer login).
    #[command(subcommand)]
    Bin(ListCommand),
    /// The partition's log (`show` needs an officer login), and exported logs checked offline
    /// (`verify`, `convert`: exit 0 verified, 1 tampered, 2 unreadable or wrong key).
    #[command(subcommand)]
    Log(LogCommand),
    /// Officer cards: list them, export a card's signing key.
    #[command(subcommand)]
    Card(CardCommand),
    /// Partition backups: made and restored at the HSM (officer login), written to
    /// directories and read back, listed and verified offline (`verify`: exit 0 verified, 1
    /// rejected, 2 unreadable or no key).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The terminals paired with the partition: list them (PSO, auditor or device SO), revoke
    /// one (PSO or device SO).
    #[command(subcommand)]
    Terminals(TerminalsCommand),
    /// A new one-time pairing code for another terminal (PSO or device-SO login), shown once;
    /// an outstanding code is replaced.
    PairingCode(Officer),
    /// This terminal device's own firmware (no login): status, verify an image, install it,
    /// confirm the update on trial. Exit: 0 done, 1 refused, 2 a file unreadable or
    /// unwritable, 3 no usable device root.
    #[command(after_help = cli::firmware::FIRMWARE_EXIT_CODES_HELP)]
    Firmware(FirmwareArgs),
    /// Prints the completion script for SHELL, generated from this command line (e.g.
    /// `tessera completions bash > /etc/bash_completion.d/tessera`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), generated from this command line, with every command
    /// and the exit statuses (`tessera man | man -l -`); with COMMAND, that command's page.
    Man {
        /// A command, e.g. `demo` or `log verify` (their pages are tessera-demo(1) and
        /// tessera-log-verify(1)).
        command: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct FirmwareArgs {
    /// The device's firmware root (default: `root` in the configuration's [firmware] table).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// As JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: FirmwareCommand,
}

#[derive(Subcommand, Debug)]
enum FirmwareCommand {
    /// Slots A and B (version, role), pending or confirmed, boot attempts, the rollback floor.
    Status,
    /// Verifies an image against this device and prints every check; installs nothing.
    Verify {
        /// The image (`*.tsfw`).
        #[arg(value_name = "FILE")]
        image: PathBuf,
    },
    /// Verifies an image and writes it to the inactive slot, pending its first confirmed start.
    Install {
        /// The image (`*.tsfw`).
        #[arg(value_name = "FILE")]
        image: PathBuf,
    },
    /// Confirms the update on trial after a healthy start: its slot becomes active and the
    /// rollback floor rises.
    Confirm,
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Seals the partition at the HSM and writes the backup to DIR or to a FAT drive (two of
    /// them mirror it to two drives), each copy read back from its drive and verified before
    /// success.
    Create {
        #[command(flatten)]
        officer: Officer,
        /// A directory on the drive (repeat once to mirror to a second drive).
        #[arg(
            long = "to",
            value_name = "DIR",
            required_unless_present = "fat_device"
        )]
        to: Vec<PathBuf>,
        /// A FAT drive (block device such as /dev/sdb1, or an image file), written in user
        /// space, never mounted.
        #[arg(long, value_name = "PATH")]
        fat_device: Vec<PathBuf>,
        /// Then keep only the newest K backups of the partition in each directory (never the
        /// only verified one).
        #[arg(long, value_name = "K")]
        keep: Option<usize>,
    },
    /// The backups in DIR (or on a FAT drive) with their header facts (read without
    /// decrypting), and apart, the files interrupted writes left.
    List {
        #[command(flatten)]
        drive: DriveArgs,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes the `.partial` files interrupted writes left in DIR or on a FAT drive (with
    /// --failed, also `.failed` ones). Backups are never touched.
    Clean {
        #[command(flatten)]
        drive: DriveArgs,
        /// Also the files whose read-back check failed.
        #[arg(long)]
        failed: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Proves FILE complete and made by the paired HSM, offline, against the HSM key pinned
    /// at pairing (or --key); with --deep, the HSM also decrypts and checks every chunk and
    /// object (an officer login, nothing changed).
    Verify {
        #[command(flatten)]
        officer: Officer,
        /// The backup file (with --fat-device, its name on the drive).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Read FILE from this FAT drive (block device or image) in user space.
        #[arg(long, value_name = "PATH")]
        fat_device: Option<PathBuf>,
        /// The HSM's audit key, 64 hex digits (default: the one pinned for the partition).
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Also ask the HSM for a dry run of the file.
        #[arg(long)]
        deep: bool,
    },
    /// Restores the partition from FILE: the HSM's dry run and the diff first, then (unless
    /// --dry-run) a confirmation and one atomic swap. The log is never restored.
    Restore {
        #[command(flatten)]
        officer: Officer,
        /// The backup file (with --fat-device, its name on the drive).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Read FILE from this FAT drive (block device or image) in user space.
        #[arg(long, value_name = "PATH")]
        fat_device: Option<PathBuf>,
        /// Only the dry run and the diff.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        migration: MigrationArgs,
    },
    /// The removable drives, each volume with how a backup uses it (--to its mount point, or
    /// --fat-device when not mounted), or refused with why by the drive allow-list.
    Drives {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `backup restore --migrate`: a backup made by another HSM, or of another partition.
#[derive(Args, Debug)]
struct MigrationArgs {
    /// Restore a backup made by another HSM, or of another partition (a migration): the
    /// recovery cards of the PSO set that made it are asked for on the terminal. The file is
    /// read from a directory (copy it off a FAT drive first).
    #[arg(long, conflicts_with = "fat_device")]
    migrate: bool,
    /// The source HSM's audit key: its fingerprint as `tessera-hsm init` showed it, or an
    /// audit key file (default: the key pinned for the HSM the backup names).
    #[arg(long, value_name = "KEY", requires = "migrate")]
    source_key: Option<String>,
    /// A PC/SC reader holding a recovery card of the source PSO set (repeatable).
    #[arg(long = "recovery-card", value_name = "READER", requires = "migrate")]
    recovery_readers: Vec<String>,
    /// A soft recovery card file of the source PSO set (repeatable).
    #[arg(long = "recovery-soft", value_name = "FILE", requires = "migrate")]
    recovery_soft: Vec<PathBuf>,
}

/// A drive for `backup list` and `backup clean`: a directory or a FAT device.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct DriveArgs {
    /// The directory.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A FAT drive (block device or image), read in user space, never mounted.
    #[arg(long, value_name = "PATH")]
    fat_device: Option<PathBuf>,
}

impl DriveArgs {
    fn drive(self) -> terminal_app::cli::backup::Drive {
        use terminal_app::cli::backup::Drive;
        match (self.dir, self.fat_device) {
            (_, Some(device)) => Drive::Fat(device),
            (Some(dir), None) => Drive::Dir(dir),
            (None, None) => Drive::Dir(PathBuf::from(".")),
        }
    }
}

/// Where `backup verify` and `backup restore` read FILE.
fn backup_source(file: PathBuf, fat_device: Option<PathBuf>) -> terminal_app::cli::backup::Source {
    use terminal_app::cli::backup::Source;
    match fat_device {
        Some(device) => Source::Fat {
            device,
            name: file.display().to_string(),
        },
        None => Source::File(file),
    }
}

#[derive(Subcommand, Debug)]
enum TerminalsCommand {
    /// One line per paired terminal: fingerprint, paired when, last seen, this one marked.
    List(Officer),
    /// Revokes a paired terminal: its open sessions end at once and it can no longer connect.
    Revoke {
        #[command(flatten)]
        officer: Officer,
        /// The terminal's fingerprint, as `tessera terminals list` shows it.
        fingerprint: String,
        /// Needed to revoke the terminal this command runs on (refused without it).
        #[arg(long)]
        this_terminal: bool,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct AddressArgs {
    /// The HSM's admin link over TCP.
    #[arg(long, value_name = "HOST:PORT")]
    tcp: Option<String>,
    /// The HSM's admin link over a serial line.
    #[arg(long, value_name = "DEVICE")]
    serial: Option<PathBuf>,
}

/// Which paired partition, and how to show the result.
#[derive(Args, Debug)]
struct Target {
    /// The paired partition's name (see `tessera list`); optional when only one is paired.
    #[arg(long)]
    name: Option<String>,
    /// As JSON.
    #[arg(long)]
    json: bool,
}

/// The officer login of a read: the role and the cards, whose PINs are asked on the terminal.
#[derive(Args, Debug)]
struct Officer {
    #[command(flatten)]
    target: Target,
    /// The role to log in as.
    #[arg(long, value_enum, default_value_t = RoleArg::Pso)]
    role: RoleArg,
    /// A PC/SC reader holding one of the set's cards (repeatable; `tessera card list`).
    #[arg(long = "card", value_name = "READER")]
    readers: Vec<String>,
    /// A soft card file of the set (repeatable; needs `allow_soft_cards` in the configuration).
    #[arg(long, value_name = "FILE")]
    soft: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Pso,
    Auditor,
    DeviceSo,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Every parameter with its value, and the configuration's revision.
    Show(Officer),
}

#[derive(Subcommand, Debug)]
enum ListCommand {
    /// One line per key (id, label, type, size, created, flags or when it went to the bin).
    List(Officer),
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Verifies an exported log file against the HSM's audit key, offline. Exit codes: 0
    /// verified, 1 tampered, 2 unreadable or wrong key.
    Verify(log_verify::VerifyArgs),
    /// Verifies an exported log like `verify`, then writes one syslog (RFC 5424) or CEF record
    /// per entry to a new file, for a SIEM. The records carry no proof: keep the export.
    Convert(log_verify::ConvertArgs),
    /// Exports the log into a new file in a directory (or a mounted drive), reads it back,
    /// verifies it against the pinned audit key, and only then confirms it at the HSM.
    /// Without a range: everything since the last confirmed export.
    Export {
        #[command(flatten)]
        officer: Officer,
        /// The directory to write the export file to.
        #[arg(long = "to", value_name = "DIR")]
        dir: PathBuf,
        /// Everything since the last confirmed export (the default).
        #[arg(long, conflicts_with_all = ["from", "until", "all"])]
        since_last: bool,
        /// Every entry stored.
        #[arg(long, conflicts_with_all = ["from", "until"])]
        all: bool,
        /// From this sequence number (with --until).
        #[arg(long, value_name = "SEQ", requires = "until")]
        from: Option<u64>,
        /// Up to this sequence number (with --from).
        #[arg(long, value_name = "SEQ", requires = "from")]
        until: Option<u64>,
        /// The audit key, when none is pinned for this partition: its fingerprint (as
        /// `tessera-hsm init` printed it) or a key file.
        #[arg(long)]
        key: Option<String>,
    },
    /// Entries (and checkpoints) in sequence order; with --json, the canonical JSON lines.
    Show {
        #[command(flatten)]
        officer: Officer,
        /// From this sequence number.
        #[arg(long)]
        from: Option<u64>,
        /// Up to this sequence number.
        #[arg(long)]
        to: Option<u64>,
        /// Only entries of this role (pso, auditor, device-so, technical-user, genesis,
        /// unauthenticated).
        #[arg(long = "actor-role", value_name = "ROLE")]
        actor_role: Option<String>,
        /// Only operations starting with this (e.g. `config.`).
        #[arg(long)]
        operation: Option<String>,
        /// Only entries in which this holder took part.
        #[arg(long)]
        holder: Option<String>,
        /// Only `ok`, `refused` or `failed`.
        #[arg(long)]
        outcome: Option<String>,
        /// At most this many lines.
        #[arg(long)]
        limit: Option<u64>,
    },
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

fn main() -> ExitCode {
    // The terminal holds its link key, PINs and shares for moments: no core dumps and no
    // ptrace by other users, before anything is parsed or read.
    if let Err(e) = hsm_link::process::disable_core_dumps() {
        eprintln!("tessera: could not disable core dumps for this process: {e}");
        return ExitCode::from(exit::FAILURE);
    }
    let cli = Cli::parse();
    // Generated from the definitions above; they need no configuration and no state.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            print!("{}", completions(*shell));
            return ExitCode::from(exit::OK);
        }
        Some(Command::Man { command }) => {
            return match man_page(command) {
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
        let command = match command {
            LogCommand::Verify(args) => log_verify::LogCommand::Verify(args),
            LogCommand::Convert(args) => log_verify::LogCommand::Convert(args),
            LogCommand::Show { .. } | LogCommand::Export { .. } => unreachable!("matched above"),
        };
        let out = log_verify::run(&command, &paired_for_verify(cli.state_dir.clone()));
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        return ExitCode::from(u8::try_from(out.code).unwrap_or(exit::FAILURE));
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let loaded = TerminalConfig::load(config::config_path(
        cli.config,
        std::env::var_os(config::CONFIG_ENV),
    ))
    .map_err(Error::from)?;
    let policy = loaded.config.card_policy();
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
    match cli.command {
        None if !terminal_app::tui::paired::is_terminal() => {
            print!("{}", cli::list::paired(&state()?.paired()?).render(false));
        }
        None => tui_paired(&state, None, &loaded.config, None, 300)?,
        Some(Command::Open {
            name,
            key,
            idle_lock,
        }) => tui_paired(
            &state,
            Some(name.as_deref()),
            &loaded.config,
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
        }) => tui_demo_pcsc(idle_lock)?,
        Some(Command::Demo {
            transcript: true,
            link_test_bytes,
            ..
        }) => print!("{}", demo(link_test_bytes)?),
        Some(Command::Demo {
            transcript: false,
            idle_lock,
            reset,
            ..
        }) => tui_demo(idle_lock, &state()?.path().join("demo"), reset)?,
        Some(Command::Pair {
            address,
            partition,
            name,
        }) => pair_command(&state()?, address, partition, name)?,
        Some(Command::Status { target }) => {
            let state = state()?;
            let (mut conn, entry) = session(&state, &target)?;
            let shown = cli::status::status(&mut conn, &entry)?;
            let _ = conn.close();
            print!("{}", shown.render(target.json));
        }
        Some(Command::Card(command)) => card_command(command, policy)?,
        Some(Command::Backup(command)) => {
            let rules = cli::backup_drives::DriveRules::configured(loaded.config.backup.allow);
            return cli::backup_drives::with_rules(rules, || {
                backup_command(&state, command, policy)
            });
        }
        Some(Command::Firmware(args)) => firmware_command(args, &loaded.config),
        Some(command) => read_command(&state()?, command, policy)?,
    }
    Ok(())
}

/// `tessera pair`: the code from the terminal, the pairing, the fingerprint confirmed, the pin
/// stored.
fn pair_command(
    state: &StateDir,
    address: AddressArgs,
    partition: PartitionId,
    name: Option<String>,
) -> Result<(), Error> {
    let address = match (address.tcp, address.serial) {
        (Some(tcp), _) => format!("tcp:{tcp}"),
        (None, Some(serial)) => format!("serial:{}", serial.display()),
        (None, None) => unreachable!("clap requires --tcp or --serial"),
    };
    let address: Address = address.parse().map_err(Error::Usage)?;
    let typed = prompt::secret(
        &format!("One-time pairing code for {partition} (as tessera-hsm printed it): "),
        "the pairing code",
    )?;
    let typed = std::str::from_utf8(&typed)
        .map_err(|_| Error::Usage("the pairing code is letters, digits and dashes".to_owned()))?;
    let code = PairingCode::parse(typed)?;
    let pending = pair::pair(state, address, partition, name, code, pair::now_unix())?;
    let entry = pending.entry();
    println!(
        "The HSM at {} accepted the code for partition {}.",
        entry.address, entry.partition
    );
    println!("  HSM key fingerprint: {}", pending.fingerprint());
    match pending.audit_fingerprint() {
        Some(audit) => println!("  audit key fingerprint: {audit} (pinned for log verification)"),
        None => println!("  the HSM sent no audit key: logs will need --key to verify"),
    }
    println!("Compare it with the fingerprint tessera-hsm printed beside the code.");
    if !prompt::confirm("Is it the same?")? {
        return Err(Error::NotConfirmed);
    }
    let stored = pending.confirm(state)?;
    println!(
        "Paired: {} is partition {} at {} (state in {}).",
        stored.name,
        stored.partition,
        stored.address,
        state.path().display()
    );
    Ok(())
}

/// The TUI against a paired partition: chosen from the list (`which` is `None`), or the one
/// named (or the only one).
fn tui_paired(
    state: &dyn Fn() -> Result<StateDir, Error>,
    which: Option<Option<&str>>,
    config: &TerminalConfig,
    key: Option<&str>,
    idle_lock: u64,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use terminal_app::tui::{chooser, paired, theme::Theme};
    if !paired::is_terminal() {
        anyhow::bail!(
            "the TUI needs a terminal; without one, `tessera list` lists the paired partitions \
             and `tessera status`, `tessera keys list` … read them"
        );
    }
    let state = state()?;
    let list = state.paired()?;
    let entry = match which {
        Some(name) => pair::choose(&list, name)?.clone(),
        None => {
            let theme = Theme::for_terminal(Theme::no_color_from_env());
            match chooser::choose(&list, &theme).context("the TUI failed")? {
                Some(i) => list.partitions()[i].clone(),
                None => return Ok(()),
            }
        }
    };
    let given = key.map(paired::parse_audit_key).transpose()?;
    let audit_key = paired::audit_key(&entry, given)?;
    let options = paired::PairedOptions {
        idle_lock_secs: idle_lock,
        policy: config.card_policy(),
        soft_card_dir: config.cards.soft_card_dir.clone(),
        end_on_card_removal: !config.cards.keep_session_on_card_removal,
        firmware_root: config.firmware.root.clone(),
        drive_allow: config.backup.allow.clone(),
    };
    paired::run_paired(state.path().to_owned(), entry, audit_key, options).context("the TUI failed")
}

/// The paired partition `target` names (or the only one), in a pinned session.
fn session(state: &StateDir, target: &Target) -> Result<(AnyConnection, PairedPartition), Error> {
    let list = state.paired()?;
    let entry = pair::choose(&list, target.name.as_deref())?;
    let conn = pair::connect_pinned(state, entry, pair::now_unix())?;
    Ok((conn, entry.clone()))
}

/// The commands that need an officer login.
fn read_command(
    state: &StateDir,
    command: Command,
    policy: quorum::CardPolicy,
) -> Result<(), Error> {
    let officer = officer_of(&command);
    let json = officer.target.json;
    if matches!(command, Command::PairingCode(_)) && json {
        return Err(Error::Usage(
            "a pairing code is shown once, for a person to type: `tessera pairing-code` has no \
             --json"
                .to_owned(),
        ));
    }
    // An export's key is settled before the login, and so before anything is exported.
    let pin = match &command {
        Command::Log(LogCommand::Export { key, .. }) => {
            let list = state.paired()?;
            let entry = pair::choose(&list, officer.target.name.as_deref())?;
            Some(export_pin(entry, key.as_deref())?)
        }
        _ => None,
    };
    let (mut conn, entry) = officer_session(state, officer, policy)?;
    let out = match command {
        Command::Config(ConfigCommand::Show(_)) => cli::reads::config_show(&mut conn)?.render(json),
        Command::Keys(ListCommand::List(_)) => cli::reads::keys(&mut conn, false)?.render(json),
        Command::Bin(ListCommand::List(_)) => cli::reads::keys(&mut conn, true)?.render(json),
        Command::Terminals(TerminalsCommand::List(_)) => {
            cli::terminals::list(&mut conn)?.render(json)
        }
        Command::Terminals(TerminalsCommand::Revoke {
            fingerprint,
            this_terminal,
            ..
        }) => cli::terminals::revoke(&mut conn, &fingerprint, this_terminal)?.render(json),
        Command::PairingCode(_) => {
            let shown = cli::terminals::pairing_code(&mut conn)?;
            let _ = conn.close();
            print!("{}", *shown);
            return Ok(());
        }
        Command::Log(LogCommand::Show {
            from,
            to,
            actor_role,
            operation,
            holder,
            outcome,
            limit,
            ..
        }) => {
            let filter = LogFilter {
                from_seq: from,
                to_seq: to,
                role: actor_role,
                operation,
                holder,
                outcome,
                limit,
            };
            let (text, lines) = cli::reads::log_show(&mut conn, &filter)?;
            if json { lines } else { text }
        }
        Command::Log(LogCommand::Export {
            dir,
            all,
            from,
            until,
            ..
        }) => {
            let range = match (all, from, until) {
                (true, _, _) => ExportRange::All,
                (_, Some(from), Some(to)) => ExportRange::Span { from, to },
                _ => ExportRange::SinceLast,
            };
            let pin = pin.expect("settled above for an export");
            let now = pair::now_unix();
            cli::log_export::export(&mut conn, &entry.partition, &dir, range, &pin, now)?
                .render(json)
        }
        _ => unreachable!("officer_of() names the same commands"),
    };
    let _ = conn.close();
    print!("{out}");
    Ok(())
}

/// The officer (role, cards, partition) a command that needs a login names.
fn officer_of(command: &Command) -> &Officer {
    match command {
        Command::Config(ConfigCommand::Show(o))
        | Command::Keys(ListCommand::List(o))
        | Command::Bin(ListCommand::List(o))
        | Command::Terminals(TerminalsCommand::List(o))
        | Command::PairingCode(o) => o,
        Command::Log(LogCommand::Show { officer, .. })
        | Command::Log(LogCommand::Export { officer, .. })
        | Command::Terminals(TerminalsCommand::Revoke { officer, .. }) => officer,
        _ => unreachable!("run() dispatches the other commands"),
    }
}

/// `tessera backup …`.
fn backup_command(
    state: &dyn Fn() -> Result<StateDir, Error>,
    command: BackupCommand,
    policy: quorum::CardPolicy,
) -> anyhow::Result<()> {
    use terminal_app::cli::backup;
    match command {
        BackupCommand::List { drive, json } => {
            print!("{}", backup::list(&drive.drive())?.render(json))
        }
        BackupCommand::Clean {
            drive,
            failed,
            json,
        } => print!("{}", backup::clean(&drive.drive(), failed)?.render(json)),
        BackupCommand::Create {
            officer,
            to,
            fat_device,
            keep,
        } => {
            let state = state()?;
            let (mut conn, entry) = officer_session(&state, &officer, policy)?;
            let pinned = pinned_key(&entry)?;
            let drives: Vec<backup::Drive> = (to.into_iter().map(backup::Drive::Dir))
                .chain(fat_device.into_iter().map(backup::Drive::Fat))
                .collect();
            let (shown, _) = backup::create(&mut conn, &drives, pinned.as_ref(), keep)?;
            let _ = conn.close();
            print!("{}", shown.render(officer.target.json));
        }
        BackupCommand::Verify {
            officer,
            file,
            fat_device,
            key,
            deep,
        } => backup_verify(
            state,
            &officer,
            file,
            fat_device,
            key.as_deref(),
            deep,
            policy,
        )?,
        BackupCommand::Restore {
            officer,
            file,
            fat_device,
            dry_run,
            migration,
        } => backup_restore(
            state, &officer, file, fat_device, dry_run, &migration, policy,
        )?,
        BackupCommand::Drives { json } => print!("{}", cli::backup_drives::drives()?.render(json)),
    }
    Ok(())
}

/// `tessera backup verify`: offline against the pinned key (or `--key`), then with `--deep`
/// the HSM's dry run.
fn backup_verify(
    state: &dyn Fn() -> Result<StateDir, Error>,
    officer: &Officer,
    file: PathBuf,
    fat_device: Option<PathBuf>,
    key: Option<&str>,
    deep: bool,
    policy: quorum::CardPolicy,
) -> anyhow::Result<()> {
    use terminal_app::cli::backup;
    let source = backup_source(file.clone(), fat_device);
    // `--key` needs no pairing: a file is checked anywhere against a key given by hand.
    let key = match key {
        Some(hex) => Some(hex_key(hex)?),
        None => {
            let state = state()?;
            let list = state.paired()?;
            let entry = pair::choose(&list, officer.target.name.as_deref())?;
            pinned_key(entry)?
        }
    };
    let Some(key) = key else {
        eprintln!("tessera: no audit key pinned for this partition: re-pair or pass --key");
        std::process::exit(2);
    };
    let verified = match &source {
        backup::Source::File(file) => backup::verify(file, &key),
        backup::Source::Fat { device, name } => {
            backup::verify_on(&backup::Drive::Fat(device.clone()), name, &key)
        }
    };
    match verified {
        Ok(shown) => print!("{}", shown.render(officer.target.json)),
        Err(e) => {
            eprintln!("tessera: {}: {e}", file.display());
            std::process::exit(if e.rejection().is_some() { 1 } else { 2 });
        }
    }
    if deep {
        let state = state()?;
        let (mut conn, _) = officer_session(&state, officer, policy)?;
        let diff = backup::dry_run_from(&mut conn, &source)?;
        let _ = conn.close();
        print!("{}", backup::show_diff(&diff).render(officer.target.json));
    }
    Ok(())
}

/// `tessera backup restore`: the HSM's dry run (a migration first recovers and re-wraps the
/// data key), its diff, and the swap once confirmed.
fn backup_restore(
    state: &dyn Fn() -> Result<StateDir, Error>,
    officer: &Officer,
    file: PathBuf,
    fat_device: Option<PathBuf>,
    dry_run: bool,
    migration: &MigrationArgs,
    policy: quorum::CardPolicy,
) -> anyhow::Result<()> {
    use terminal_app::cli::backup;
    let state = state()?;
    let source = if migration.migrate {
        let key = cli::backup_migrate::source_key(
            &file,
            migration.source_key.as_deref(),
            &state.paired()?,
        )?;
        let source = cli::backup_migrate::SourceBackup::check(&file, &key)?;
        print!("{}", source.facts().render(officer.target.json));
        Some(source)
    } else {
        None
    };
    let (mut conn, _) = officer_session(&state, officer, policy)?;
    let diff = match &source {
        Some(source) => migrate_dry_run(&mut conn, &file, source, migration, policy)?,
        None => backup::dry_run_from(&mut conn, &backup_source(file, fat_device))?,
    };
    print!("{}", backup::show_diff(&diff).render(officer.target.json));
    if !dry_run {
        if !prompt::confirm("Replace the partition's keys and configuration with these?")? {
            return Err(Error::NotConfirmed.into());
        }
        print!(
            "{}",
            backup::commit(&mut conn, &diff)?.render(officer.target.json)
        );
    }
    let _ = conn.close();
    Ok(())
}

/// A migration's recovery (the source set's cards asked on the terminal), re-wrapping and
/// dry run.
fn migrate_dry_run(
    conn: &mut AnyConnection,
    file: &std::path::Path,
    source: &cli::backup_migrate::SourceBackup,
    migration: &MigrationArgs,
    policy: quorum::CardPolicy,
) -> Result<hsm_link::message::RestoreDiff, Error> {
    use cli::backup_migrate::{RecoveryCards, dry_run, rewrap};
    let choice = CardChoice {
        readers: migration.recovery_readers.clone(),
        soft: migration.recovery_soft.clone(),
    };
    let mut ask = |question: &str| prompt::secret(question, "a PIN");
    let cards = RecoveryCards {
        choice: &choice,
        policy,
        ask: &mut ask,
        retry: std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let wrapped = rewrap(conn, source, cards, &mut std::io::stderr())?;
    dry_run(conn, file, source, wrapped)
}

/// The HSM's audit key pinned at pairing, that backups are checked against.
fn pinned_key(entry: &PairedPartition) -> Result<Option<ed25519_dalek::VerifyingKey>, Error> {
    entry.audit_key.map(|b| key_of(&b)).transpose()
}

/// `--key`: the HSM's audit key as 64 hex digits.
fn hex_key(hex: &str) -> Result<ed25519_dalek::VerifyingKey, Error> {
    let hex = hex.trim();
    let bad = || Error::Usage("--key takes the HSM's audit key as 64 hex digits".into());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    key_of(&out)
}

fn key_of(bytes: &[u8; 32]) -> Result<ed25519_dalek::VerifyingKey, Error> {
    ed25519_dalek::VerifyingKey::from_bytes(bytes)
        .map_err(|_| Error::Usage("the HSM key is not an Ed25519 public key".into()))
}

/// A pinned session with an officer logged in, as `officer` names the cards.
fn officer_session(
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

fn card_command(command: CardCommand, policy: quorum::CardPolicy) -> Result<(), Error> {
    match command {
        CardCommand::List { soft } => {
            let listing = cards::list_cards(&soft, policy)?;
            for note in &listing.notes {
                eprintln!("tessera: {note}");
            }
            print!("{}", listing.to_tsv());
        }
        CardCommand::ExportKey { reader, out } => {
            print!("{}", cards::export_key(&reader, &out)?.report());
        }
    }
    Ok(())
}

/// The embedded demo's transcript.
#[cfg(feature = "embedded")]
fn demo(link_test_bytes: u64) -> Result<String, Error> {
    use terminal_app::embedded::{DemoOptions, run_demo};
    let report = run_demo(DemoOptions {
        link_test_bytes,
        params: quorum::Argon2Params::production(),
        test_cards: false,
    })?;
    Ok(report.transcript)
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
fn demo(_link_test_bytes: u64) -> Result<String, Error> {
    Err(Error::EmbeddedNotBuilt)
}

/// `tessera firmware …`: prints, and exits with the firmware command's own status.
fn firmware_command(args: FirmwareArgs, config: &TerminalConfig) {
    use cli::firmware::{self as fw, FirmwareCommand as Step};
    let step = match args.command {
        FirmwareCommand::Status => Step::Status,
        FirmwareCommand::Verify { image } => Step::Verify(image),
        FirmwareCommand::Install { image } => Step::Install(image),
        FirmwareCommand::Confirm => Step::Confirm,
    };
    let ran = fw::run(
        &step,
        fw::device_root(args.root, &config.firmware),
        args.json,
    );
    print!("{}", ran.stdout);
    eprint!("{}", ran.stderr);
    if ran.code != exit::OK {
        std::process::exit(i32::from(ran.code));
    }
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

/// The completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page, from the command line's definitions: the synopsis, the options, the
/// commands (each has a page of its own: `command`), and the exit statuses.
fn man_page(command: &[String]) -> Result<String, String> {
    use clap::CommandFactory;
    let mut page = Cli::command();
    for (i, name) in command.iter().enumerate() {
        let sub = page.find_subcommand(name).cloned().ok_or_else(|| {
            format!(
                "`tessera man {}`: there is no command {name:?} there (see `tessera man`)",
                command.join(" ")
            )
        })?;
        let path = &command[..=i];
        page = sub
            .name(format!("tessera-{}", path.join("-")))
            .bin_name(format!("tessera {}", path.join(" ")))
            .version(env!("CARGO_PKG_VERSION"));
    }
    let man = clap_mangen::Man::new(page.clone());
    let mut out = Vec::new();
    let written: std::io::Result<()> = (|| {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        if page.has_subcommands() {
            man.render_subcommands_section(&mut out)?;
        }
        out.extend_from_slice(exit_status_section().as_bytes());
        man.render_version_section(&mut out)
    })();
    written.map_err(|e| format!("writing the manual page: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The EXIT STATUS section of the manual page, from the same table as `tessera --help`.
fn exit_status_section() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for line in exit::EXIT_CODES_HELP.lines().skip(1) {
        if let Some((code, text)) = line.trim().split_once(char::is_whitespace) {
            roff.push_str(&format!(
                ".TP\n\\fB{code}\\fR\n{}\n",
                roff_text(text.trim())
            ));
        }
    }
    roff
}

/// `text` as a roff text line: backslashes and dashes escaped, no leading control character.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The TUI against the embedded demo HSM, its state in `demo_dir`; it needs a terminal.
#[cfg(feature = "embedded")]
fn tui_demo(idle_lock: u64, demo_dir: &std::path::Path, reset: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::IsTerminal;
    use terminal_app::tui::demo;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "`tessera demo` opens a full-screen TUI and needs a terminal; without one, \
             run `tessera demo --transcript` for the printed walk-through"
        );
    }
    if reset {
        println!(
            "tessera demo --reset: removing the demo state in {}: the demo HSM (its keys, \
             partition, configuration, keys and log), the soft cards, the demo terminal's key \
             and pin, the demo drive directory and the demo's firmware device.",
            demo_dir.display()
        );
        demo::reset(demo_dir).map_err(anyhow::Error::msg)?;
    }
    terminal_app::tui::run_demo(idle_lock, quorum::Argon2Params::production(), demo_dir)
        .context("the TUI failed")
}

/// `tessera demo --pcsc`: the TUI against the embedded demo HSM with the virtual OpenPGP cards.
#[cfg(feature = "embedded")]
fn tui_demo_pcsc(idle_lock: u64) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if !terminal_app::tui::paired::is_terminal() {
        anyhow::bail!("`tessera demo --pcsc` opens a full-screen TUI and needs a terminal");
    }
    terminal_app::tui::demo_pcsc::run(idle_lock).context("the TUI failed")
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
fn tui_demo_pcsc(_idle_lock: u64) -> anyhow::Result<()> {
    Err(Error::EmbeddedNotBuilt.into())
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
fn tui_demo(_idle_lock: u64, _demo_dir: &std::path::Path, _reset: bool) -> anyhow::Result<()> {
    Err(Error::EmbeddedNotBuilt.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn the_man_page_names_every_command_and_exit_status_and_each_has_a_page() {
        use clap::CommandFactory;
        let page = man_page(&[]).unwrap();
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let roff = format!("tessera\\-{}(1)", name.replace('-', "\\-"));
            assert!(page.contains(&roff), "{roff} missing");
            if name == "help" {
                continue;
            }
            let own = man_page(&[name.to_owned()]).unwrap();
            assert!(own.contains(&format!(".TH tessera-{name} 1")), "{own}");
            for nested in sub.get_subcommands().filter(|n| n.get_name() != "help") {
                let path = [name.to_owned(), nested.get_name().to_owned()];
                assert!(man_page(&path).unwrap().contains(".SH OPTIONS"));
            }
        }
        assert!(page.contains(".SH \"EXIT STATUS\""));
        for code in 0..=exit::NOT_IN_BUILD {
            assert!(page.contains(&format!("\\fB{code}\\fR\n")), "status {code}");
        }
        assert!(
            man_page(&["nosuch".to_owned()])
                .unwrap_err()
                .contains("nosuch")
        );
    }

    #[test]
    fn the_completion_scripts_name_the_commands_and_bash_parses_its_own() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = completions(shell);
            assert!(
                script.contains("demo") && script.contains("reset"),
                "{shell}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tessera.bash");
        std::fs::write(&file, completions(clap_complete::Shell::Bash)).unwrap();
        let checked = std::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .expect("bash runs");
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
