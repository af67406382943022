//! An officer login from the command line, through `quorum`'s login ceremony: the cards are
//! named in arguments (`--card READER`, `--soft FILE`: not secrets), and each card's PIN or
//! passphrase is asked for as the card's turn comes, never taken from arguments or the
//! environment. A wrong PIN ends the command with the tries left ([`Error::WrongPin`]); run it
//! again.

use std::io::Write;
use std::path::PathBuf;

use hsm_link::message::OfficerRole;
use quorum::ceremony::{CardRef, LoginCeremony};
use quorum::{Card as _, CardPolicy, PcscCard, Pin, SoftCard};
use zeroize::Zeroizing;

use crate::error::{CardName, Error};
use crate::pair::AnyConnection;

/// The cards to log in with, in the order they are presented.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardChoice {
    /// PC/SC readers, each with an OpenPGP card.
    pub readers: Vec<String>,
    /// Soft card files (refused unless the configuration allows soft cards).
    pub soft: Vec<PathBuf>,
}

/// Asks for a card's PIN or passphrase; the question names the card.
pub type AskPin<'a> = dyn FnMut(&str) -> Result<Zeroizing<Vec<u8>>, Error> + 'a;

/// Logs in as `role` with the cards of `choice`, asking each one's PIN with `ask` and telling
/// the progress on `progress`; the holders the HSM logged in.
pub fn login(
    conn: &mut AnyConnection,
    role: OfficerRole,
    choice: &CardChoice,
    policy: CardPolicy,
    ask: &mut AskPin<'_>,
    progress: &mut dyn Write,
) -> Result<Vec<String>, Error> {
    if choice.readers.is_empty() && choice.soft.is_empty() {
        return Err(Error::Usage(
            "this needs an officer login: name the cards with --card READER (see `tessera card \
             list`) or --soft FILE; each PIN is asked on the terminal"
                .to_owned(),
        ));
    }
    let mut login = LoginCeremony::start(conn, role)?;
    let _ = writeln!(
        progress,
        "login: {} of the {} cards of the set must sign",
        login.progress().need,
        login.cards().len()
    );
    for reader in &choice.readers {
        let card = PcscCard::open(reader).map_err(|source| Error::OpenReader {
            reader: super::printable(reader),
            source,
        })?;
        let info = card.info();
        let name = CardName::of(card_ref(&info));
        let tries = info
            .pin_retries_left
            .map_or_else(String::new, |n| format!(" ({n} tries left)"));
        let pin = Pin::from_slice(&ask(&format!("PIN of {info}{tries}: "))?);
        let mut verified = card.verify(&pin).map_err(|(_, e)| Error::card(name, e))?;
        let step = login.present(&mut verified)?;
        let _ = writeln!(progress, "login: {info} signed — {step}");
    }
    for path in &choice.soft {
        let card = SoftCard::open(path, policy)?;
        let info = card.info();
        let name = CardName::of(card_ref(&info));
        let pin = Pin::from_slice(&ask(&format!("passphrase of {info}: "))?);
        let mut verified = card.verify(&pin).map_err(|(_, e)| Error::card(name, e))?;
        let step = login.present(&mut verified)?;
        let _ = writeln!(progress, "login: {info} signed — {step}");
    }
    let holders = login.submit(conn)?;
    Ok(holders.iter().map(|h| h.as_str().to_owned()).collect())
}

fn card_ref(info: &quorum::CardInfo) -> CardRef {
    CardRef {
        holder: info.holder.clone(),
        serial: info.serial.clone(),
        soft: info.soft,
    }
}
