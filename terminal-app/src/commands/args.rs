//! The command line's definitions (clap): every command, its arguments and their help, from
//! which `--help`, the completions and the manual page are generated ([`super::man`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hsm_link::domain::PartitionId;
use terminal_app::cli::{self, exit};
use terminal_app::log_verify;

/// Tessera: administer an HSM partition. Without a command: the paired partitions.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, after_help = exit::EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// The terminal configuration file (TOML, `version = 1`). Without it, the file
    /// $TESSERA_CONFIG names; without either, the defaults (hardware cards only).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The terminal's state directory (its identity key, the paired partitions). Default:
    /// $XDG_STATE_HOME/tessera, else ~/.local/state/tessera.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
pub(crate) struct FirmwareArgs {
    /// The device's firmware root (default: `root` in the configuration's [firmware] table).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// As JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: FirmwareCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum FirmwareCommand {
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
pub(crate) enum BackupCommand {
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
pub(crate) struct MigrationArgs {
    /// Restore a backup made by another HSM, or of another partition (a migration): the
    /// recovery cards of the PSO set that made it are asked for on the terminal. The file is
    /// read from a directory (copy it off a FAT drive first).
    #[arg(long, conflicts_with = "fat_device")]
    pub(crate) migrate: bool,
    /// The source HSM's audit key: its fingerprint as `tessera-hsm init` showed it, or an
    /// audit key file (default: the key pinned for the HSM the backup names).
    #[arg(long, value_name = "KEY", requires = "migrate")]
    pub(crate) source_key: Option<String>,
    /// A PC/SC reader holding a recovery card of the source PSO set (repeatable).
    #[arg(long = "recovery-card", value_name = "READER", requires = "migrate")]
    pub(crate) recovery_readers: Vec<String>,
    /// A soft recovery card file of the source PSO set (repeatable).
    #[arg(long = "recovery-soft", value_name = "FILE", requires = "migrate")]
    pub(crate) recovery_soft: Vec<PathBuf>,
}

/// A drive for `backup list` and `backup clean`: a directory or a FAT device.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct DriveArgs {
    /// The directory.
    #[arg(value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// A FAT drive (block device or image), read in user space, never mounted.
    #[arg(long, value_name = "PATH")]
    pub(crate) fat_device: Option<PathBuf>,
}

impl DriveArgs {
    pub(crate) fn drive(self) -> terminal_app::cli::backup::Drive {
        use terminal_app::cli::backup::Drive;
        match (self.dir, self.fat_device) {
            (_, Some(device)) => Drive::Fat(device),
            (Some(dir), None) => Drive::Dir(dir),
            (None, None) => Drive::Dir(PathBuf::from(".")),
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum TerminalsCommand {
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
pub(crate) struct AddressArgs {
    /// The HSM's admin link over TCP.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) tcp: Option<String>,
    /// The HSM's admin link over a serial line.
    #[arg(long, value_name = "DEVICE")]
    pub(crate) serial: Option<PathBuf>,
}

/// Which paired partition, and how to show the result.
#[derive(Args, Debug)]
pub(crate) struct Target {
    /// The paired partition's name (see `tessera list`); optional when only one is paired.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// As JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The officer login of a read: the role and the cards, whose PINs are asked on the terminal.
#[derive(Args, Debug)]
pub(crate) struct Officer {
    #[command(flatten)]
    pub(crate) target: Target,
    /// The role to log in as.
    #[arg(long, value_enum, default_value_t = RoleArg::Pso)]
    pub(crate) role: RoleArg,
    /// A PC/SC reader holding one of the set's cards (repeatable; `tessera card list`).
    #[arg(long = "card", value_name = "READER")]
    pub(crate) readers: Vec<String>,
    /// A soft card file of the set (repeatable; needs `allow_soft_cards` in the configuration).
    #[arg(long, value_name = "FILE")]
    pub(crate) soft: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum RoleArg {
    Pso,
    Auditor,
    DeviceSo,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Every parameter with its value, and the configuration's revision.
    Show(Officer),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ListCommand {
    /// One line per key (id, label, type, size, created, flags or when it went to the bin).
    List(Officer),
}

#[derive(Subcommand, Debug)]
pub(crate) enum LogCommand {
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
pub(crate) enum CardCommand {
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
