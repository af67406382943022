//! `tessera card …`.

use terminal_app::{Error, cards};

use super::args::CardCommand;

/// `tessera card list|export-key`.
pub(crate) fn card_command(command: CardCommand, policy: quorum::CardPolicy) -> Result<(), Error> {
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
