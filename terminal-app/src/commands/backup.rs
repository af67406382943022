//! `tessera backup …`: create, list, clean, verify (offline, and `--deep` at the HSM) and
//! restore (a migration too).

use std::path::PathBuf;

use terminal_app::Error;
use terminal_app::cli::{self, login::CardChoice, prompt};
use terminal_app::pair::{self, AnyConnection};
use terminal_app::state::{PairedPartition, StateDir};

use super::args::{BackupCommand, MigrationArgs, Officer};
use super::session::officer_session;

/// `tessera backup …`.
pub(crate) fn backup_command(
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
        BackupCommand::Drives { json } => {
            print!("{}", cli::backup_drives::drives()?.render(json))
        }
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
