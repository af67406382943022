//! `tessera firmware …`.

use terminal_app::cli::{self, exit};
use terminal_app::config::TerminalConfig;

use super::args::{FirmwareArgs, FirmwareCommand};

/// `tessera firmware …`: prints, and exits with the firmware command's own status.
pub(crate) fn firmware_command(args: FirmwareArgs, config: &TerminalConfig) {
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
