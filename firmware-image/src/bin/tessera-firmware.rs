//! `tessera-firmware`: build, sign, verify and inspect terminal firmware images, and install
//! them on a device (provision, install, start, confirm, status).
//!
//! Release keys live on officer cards (`quorum`): an OpenPGP card in a PC/SC reader
//! (`--reader`), or a passphrase-sealed soft card (`--soft-card`, refused unless
//! `--allow-soft-cards`). PINs and passphrases are read from the terminal without echo, or
//! one line each from standard input when it is not a terminal.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use firmware_image::device::{Device, MAX_BOOT_ATTEMPTS};
use firmware_image::image::{build::build_image, read_unverified, write_signed};
use firmware_image::keys::{DetachedSignature, manifest_digest, short, sign_with_card};
use firmware_image::{Manifest, ReleaseKeySet, Trust};
use hex::encode as hex;
use quorum::card::{Card, Pin, VerifiedCard};
use quorum::pcsc::{FACTORY_ADMIN_PIN, MIN_ADMIN_PIN_LEN, MIN_USER_PIN_LEN, PcscCard};
use quorum::setup::{CardSetup, NewPin, PinRole};
use quorum::{Argon2Params, CardPolicy, SoftCard};
use zeroize::Zeroizing;

/// Terminal firmware images: build, sign, verify, install.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Makes a release key: a new soft card, or keys generated on an OpenPGP card (with its
    /// admin PIN). Prints the public key for the key set file.
    Keygen(KeygenArgs),
    /// Builds an unsigned image from a directory and a manifest template (TOML).
    Build {
        /// The directory holding the terminal's root.
        #[arg(long)]
        dir: PathBuf,
        /// The manifest template.
        #[arg(long)]
        template: PathBuf,
        /// The image to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Signs an image's manifest with one release key and writes a detached signature.
    Sign {
        /// The image.
        image: PathBuf,
        #[command(flatten)]
        card: CardArgs,
        /// The signature file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Adds detached signatures to an image (each checked against the image's manifest).
    Merge {
        /// The image.
        image: PathBuf,
        /// A signature file (repeatable).
        #[arg(long = "signature", required = true)]
        signatures: Vec<PathBuf>,
        /// The signed image to write (may be the image itself).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verifies an image and prints every check; exits non-zero if any fails.
    Verify {
        /// The image.
        image: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Shows an image's manifest and signatures, unverified.
    Inspect {
        /// The image.
        image: PathBuf,
    },
    /// Factory provisioning: installs the first image to slot A of a new device root.
    Provision {
        /// The device's root directory.
        #[arg(long)]
        root: PathBuf,
        /// The release key set file.
        #[arg(long)]
        keys: PathBuf,
        /// The device's hardware id.
        #[arg(long)]
        hardware_id: String,
        /// The image.
        image: PathBuf,
    },
    /// Verifies an image and installs it to the inactive slot, pending its first start.
    Install {
        /// The device's root directory.
        #[arg(long)]
        root: PathBuf,
        /// The image.
        image: PathBuf,
    },
    /// The launcher: picks the slot to start, counts a trial start, checks the slot's files,
    /// and prints the directory to start from, or runs a program from it (`--exec`).
    Start {
        /// The device's root directory.
        #[arg(long)]
        root: PathBuf,
        /// Replace this process with this file of the slot (a path in its manifest, e.g.
        /// `bin/tessera`), with TESSERA_FIRMWARE_SLOT and TESSERA_FIRMWARE_TRIAL (1: confirm
        /// once healthy) set.
        #[arg(long, value_name = "PATH")]
        exec: Option<String>,
        /// Arguments for the program.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Confirms the pending slot after a healthy start (the floor rises now).
    Confirm {
        /// The device's root directory.
        #[arg(long)]
        root: PathBuf,
    },
    /// Prints slots, versions and the pending/confirmed state as tab-separated lines.
    Status {
        /// The device's root directory.
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Create a soft card file holding the new key.
    #[arg(long, conflicts_with = "reader", required_unless_present = "reader")]
    soft_card: Option<PathBuf>,
    /// The soft card's serial.
    #[arg(long, requires = "soft_card")]
    serial: Option<String>,
    /// The key holder's name.
    #[arg(long)]
    holder: Option<String>,
    /// Allow soft cards (a passphrase file has no PIN retry counter).
    #[arg(long)]
    allow_soft_cards: bool,
    /// Generate the keys on the OpenPGP card in this reader (its admin PIN is asked).
    #[arg(long)]
    reader: Option<String>,
    /// Replace keys the card already holds.
    #[arg(long)]
    replace: bool,
}

#[derive(Args, Debug)]
struct CardArgs {
    /// The OpenPGP card in this reader signs.
    #[arg(
        long,
        conflicts_with = "soft_card",
        required_unless_present = "soft_card"
    )]
    reader: Option<String>,
    /// This soft card signs.
    #[arg(long)]
    soft_card: Option<PathBuf>,
    /// Allow soft cards (a passphrase file has no PIN retry counter).
    #[arg(long)]
    allow_soft_cards: bool,
}

#[derive(Args, Debug)]
struct TrustArgs {
    /// Verify against this device's state (keys, hardware id, floor).
    #[arg(long, conflicts_with_all = ["keys", "hardware_id"], required_unless_present = "keys")]
    root: Option<PathBuf>,
    /// The release key set file.
    #[arg(long, requires = "hardware_id")]
    keys: Option<PathBuf>,
    /// The device's hardware id.
    #[arg(long)]
    hardware_id: Option<String>,
    /// The device's rollback floor.
    #[arg(long, default_value_t = 0)]
    rollback_floor: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("tessera-firmware: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    quorum::disable_core_dumps().context("could not disable core dumps for this process")?;
    match Cli::parse().command {
        Command::Keygen(args) => keygen(&args),
        Command::Build { dir, template, out } => {
            let m = build_image(&dir, &template, build_time()?, &out)?;
            println!(
                "built {} ({} {} for {}, rollback index {}, {} file(s), {} bytes), unsigned",
                out.display(),
                m.product,
                m.version,
                m.hardware_id,
                m.rollback_index,
                m.files.len(),
                m.payload_size
            );
            Ok(())
        }
        Command::Sign { image, card, out } => sign(&image, &card, &out),
        Command::Merge {
            image,
            signatures,
            out,
        } => merge(&image, &signatures, &out),
        Command::Verify { image, trust } => verify(&image, &trust),
        Command::Inspect { image } => inspect(&image),
        Command::Provision {
            root,
            keys,
            hardware_id,
            image,
        } => {
            let keys = ReleaseKeySet::read_file(&keys)?;
            let device = Device::provision(&root, &hardware_id, keys, &image)?;
            print!("{}", device.status()?);
            Ok(())
        }
        Command::Install { root, image } => install(&root, &image),
        Command::Start { root, exec, args } => start(&root, exec.as_deref(), &args),
        Command::Confirm { root } => {
            let c = Device::open(&root)?.confirm()?;
            println!(
                "confirmed slot {} ({}); rollback floor {}{}",
                c.slot,
                c.version,
                c.rollback_floor,
                if c.keys_rotated {
                    "; release keys rotated"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::Status { root } => {
            print!("{}", Device::open(&root)?.status()?);
            Ok(())
        }
    }
}

fn build_time() -> anyhow::Result<u64> {
    if let Some(epoch) = std::env::var_os("SOURCE_DATE_EPOCH") {
        return epoch
            .to_str()
            .and_then(|s| s.parse().ok())
            .context("SOURCE_DATE_EPOCH is not a number of seconds");
    }
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = if let Some(path) = &args.soft_card {
        let policy = soft_policy(args.allow_soft_cards);
        let serial = args
            .serial
            .as_deref()
            .context("a soft card needs --serial")?;
        let first = read_secret("new soft card passphrase: ")?;
        let second = read_secret("the same passphrase again: ")?;
        if *first != *second {
            bail!("the two passphrases differ; nothing was written");
        }
        let card = SoftCard::create(
            path,
            args.holder.as_deref(),
            serial,
            &Pin::from(first),
            Argon2Params::production(),
            policy,
        )?;
        card.info().signing_public
    } else {
        let reader = args.reader.as_deref().expect("clap requires one");
        let card = PcscCard::open(reader)?;
        if card.has_keys() && !args.replace {
            bail!(
                "the {} in \"{reader}\" already holds keys; pass --replace to generate new ones \
                 (the old ones are lost)",
                card.info()
            );
        }
        let admin_pin = read_secret("admin PIN of the card: ")?;
        if admin_pin.as_slice() == FACTORY_ADMIN_PIN {
            set_up_factory_card(card, admin_pin, args.holder.as_deref())?
        } else {
            let mut admin = card.admin(&Pin::from(admin_pin)).map_err(|(_, e)| e)?;
            let keys = admin.generate_keys()?;
            if let Some(holder) = &args.holder {
                admin.set_holder(holder)?;
            }
            admin.finish()?;
            keys.signing_public
        }
    };
    println!("release key {}", hex(key));
    Ok(())
}

/// A card still on its factory admin PIN gets its release key only together with new PINs:
/// with the factory PINs a thief could sign, or reset the user PIN and escape its retry
/// counter. The quorum's card set-up does it in an order that keeps a card whose set-up failed
/// part-way reachable (keys on the card, holder, user PIN, the admin PIN last).
fn set_up_factory_card(
    card: PcscCard,
    admin_pin: Zeroizing<Vec<u8>>,
    holder: Option<&str>,
) -> anyhow::Result<[u8; 32]> {
    let Some(holder) = holder else {
        bail!(
            "the card still has its factory PINs: pass --holder NAME to set it up as a release \
             card (keys generated on the card, the holder's name, a new user PIN and a new admin \
             PIN)"
        );
    };
    eprintln!("tessera-firmware: the card still has its factory PINs; choose new ones now");
    let new_pin = |role: PinRole, what: &str| -> anyhow::Result<NewPin> {
        let first = read_secret(&format!("new {what}: "))?;
        let second = read_secret(&format!("new {what} again: "))?;
        Ok(NewPin::confirm(role, Pin::from(first), Pin::from(second))?)
    };
    let user_pin = new_pin(
        PinRole::User,
        &format!("user PIN (the officer's, at least {MIN_USER_PIN_LEN} characters)"),
    )?;
    let new_admin = new_pin(
        PinRole::Admin,
        &format!("admin PIN (at least {MIN_ADMIN_PIN_LEN} characters)"),
    )?;
    let setup = CardSetup {
        holder: holder.to_owned(),
        user_pin,
        admin_pin: new_admin,
        admin_pin_keeper: holder.to_owned(),
    };
    let prepared = quorum::setup::prepare(card, &Pin::from(admin_pin), setup)
        .map_err(|failed| anyhow::anyhow!("setting the card up failed: {}", failed.error))?;
    Ok(prepared.keys.signing_public)
}

fn soft_policy(allowed: bool) -> CardPolicy {
    if allowed {
        CardPolicy::allowed_by_configuration()
    } else {
        CardPolicy::hardware_only()
    }
}

fn sign(image: &Path, args: &CardArgs, out: &Path) -> anyhow::Result<()> {
    let unverified = read_unverified(image)?;
    let manifest = Manifest::parse(&unverified.manifest)
        .with_context(|| format!("{}: not signed", image.display()))?;
    let digest = manifest_digest(&unverified.manifest);
    eprintln!(
        "signing {} {} for {} (rollback index {}, {} file(s), payload {} bytes)",
        manifest.product,
        manifest.version,
        manifest.hardware_id,
        manifest.rollback_index,
        manifest.files.len(),
        manifest.payload_size
    );
    let signature = if let Some(reader) = &args.reader {
        let card = PcscCard::open(reader)?;
        sign_verified(card, &digest)?
    } else {
        let path = args.soft_card.as_deref().expect("clap requires one");
        let card = SoftCard::open(path, soft_policy(args.allow_soft_cards))?;
        sign_verified(card, &digest)?
    };
    let detached = DetachedSignature {
        manifest_digest: digest,
        signature,
    };
    // A new file only: an officer's earlier signature is never overwritten.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing file is not overwritten)",
                out.display()
            )
        })?;
    file.write_all(&detached.encode())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "signed by release key {}; signature in {}",
        short(&detached.signature.key),
        out.display()
    );
    Ok(())
}

fn sign_verified<C: Card>(
    card: C,
    digest: &[u8; 64],
) -> anyhow::Result<firmware_image::ReleaseSignature> {
    let info = card.info();
    let pin = read_secret(&format!("PIN of the {info}: "))?;
    let mut verified = card.verify(&Pin::from(pin)).map_err(|(_, e)| e)?;
    Ok(sign_with_card(
        &mut verified as &mut dyn VerifiedCard,
        digest,
    )?)
}

fn merge(image: &Path, files: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let unverified = read_unverified(image)?;
    let digest = manifest_digest(&unverified.manifest);
    let mut signatures = unverified.signatures;
    for path in files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let d = DetachedSignature::parse(&bytes)
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
        if d.manifest_digest != digest {
            bail!(
                "{} signs another manifest than {}'s",
                path.display(),
                image.display()
            );
        }
        if !d.signature.verifies(&digest) {
            bail!("{}: the signature does not verify", path.display());
        }
        if signatures.iter().any(|s| s.key == d.signature.key) {
            eprintln!(
                "tessera-firmware: release key {} already signed; {} skipped",
                short(&d.signature.key),
                path.display()
            );
            continue;
        }
        signatures.push(d.signature);
    }
    write_signed(image, &signatures, out)?;
    println!(
        "{} now carries {} signature(s)",
        out.display(),
        signatures.len()
    );
    Ok(())
}

fn verify(image: &Path, args: &TrustArgs) -> anyhow::Result<()> {
    let trust = match &args.root {
        Some(root) => Device::open(root)?.trust()?,
        None => Trust {
            keys: ReleaseKeySet::read_file(args.keys.as_deref().expect("clap requires it"))?,
            hardware_id: args.hardware_id.clone().expect("clap requires it"),
            rollback_floor: args.rollback_floor,
        },
    };
    let verification = firmware_image::image::verify::verify_file(image, &trust)?;
    print!("{}", verification.report);
    if !verification.report.passed() {
        bail!("{} is refused", image.display());
    }
    println!("verified: {}", image.display());
    Ok(())
}

fn inspect(image: &Path) -> anyhow::Result<()> {
    let u = read_unverified(image)?;
    println!("UNVERIFIED: nothing below is checked against any key");
    println!("manifest_sha512\t{}", hex(manifest_digest(&u.manifest)));
    let m = Manifest::parse(&u.manifest)?;
    println!("product\t{}", m.product);
    println!("hardware_id\t{}", m.hardware_id);
    println!("version\t{}", m.version);
    println!("rollback_index\t{}", m.rollback_index);
    println!("build_time\t{}", m.build_time);
    println!("payload\t{}\t{}", m.payload_size, hex(m.payload_sha512));
    if let Some(keys) = &m.new_key_set {
        let list: Vec<String> = keys.keys().iter().map(short).collect();
        println!("new_key_set\t{}\t{}", keys.threshold(), list.join(","));
    }
    for f in &m.files {
        let mode = if f.executable { "x" } else { "-" };
        println!(
            "file\t{mode}\t{}\t{}\t{}",
            f.size,
            hex(&f.sha512[..16]),
            f.path.escape_debug()
        );
    }
    for s in &u.signatures {
        println!("signature\t{}", hex(s.key));
    }
    Ok(())
}

fn install(root: &Path, image: &Path) -> anyhow::Result<()> {
    let device = Device::open(root)?;
    let mut last = 0;
    let installed = device.install_with(
        image,
        &mut firmware_image::device::Faults::none(),
        &mut |done, total| {
            let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
            if percent >= last + 10 {
                last = percent;
                eprintln!("tessera-firmware: written {percent} %");
            }
        },
    )?;
    println!(
        "installed {} {} to slot {}, pending: it must confirm its first start within {} starts",
        installed.manifest.product, installed.manifest.version, installed.slot, MAX_BOOT_ATTEMPTS
    );
    Ok(())
}

fn start(root: &Path, exec: Option<&str>, args: &[String]) -> anyhow::Result<()> {
    let boot = Device::open(root)?.start()?;
    if let Some((slot, why)) = &boot.fell_back {
        eprintln!("tessera-firmware: fell back from slot {slot}: {why}");
    }
    if boot.trial {
        eprintln!(
            "tessera-firmware: slot {} on trial, start {} of {MAX_BOOT_ATTEMPTS}; confirm once healthy",
            boot.slot, boot.attempt
        );
    }
    let Some(program) = exec else {
        println!(
            "{}\t{}\t{}",
            boot.slot,
            boot.manifest.version,
            boot.files.display()
        );
        return Ok(());
    };
    // Only a file the verified manifest lists, and only an executable one.
    match boot.manifest.file(program) {
        Some(entry) if entry.executable => {}
        Some(_) => bail!("{program} is not executable in slot {}", boot.slot),
        None => bail!("slot {}'s manifest lists no file {program}", boot.slot),
    }
    use std::os::unix::process::CommandExt as _;
    let e = std::process::Command::new(boot.files.join(program))
        .args(args)
        .current_dir(&boot.files)
        .env("TESSERA_FIRMWARE_SLOT", boot.slot.to_string())
        .env("TESSERA_FIRMWARE_TRIAL", if boot.trial { "1" } else { "0" })
        .exec();
    Err(anyhow::Error::new(e).context(format!("starting {program} from slot {}", boot.slot)))
}

/// A PIN or passphrase: from the terminal without echo, else one line of standard input.
fn read_secret(prompt: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(String::with_capacity(128));
    if stdin.is_terminal() {
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        let read = stdin.lock().read_line(&mut line);
        tcsetattr(&stdin, OptionalActions::Now, &saved)?;
        eprintln!();
        read?;
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    let trimmed = line.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() || trimmed.len() > 1024 {
        bail!("no PIN or passphrase was given (or one longer than 1024 bytes)");
    }
    Ok(Zeroizing::new(trimmed.as_bytes().to_vec()))
}
