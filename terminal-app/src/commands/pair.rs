//! `tessera pair`.

use hsm_link::domain::PartitionId;
use hsm_link::pairing::PairingCode;
use terminal_app::Error;
use terminal_app::cli::prompt;
use terminal_app::pair;
use terminal_app::state::{Address, StateDir};

use super::args::AddressArgs;

/// `tessera pair`: the code from the terminal, the pairing, the fingerprint confirmed, the pin
/// stored.
pub(crate) fn pair_command(
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
